import NIOCore

extension DNSMessage {
    /// Encodes with name compression. When the message is longer than `maxSize`, the answer is cut to the header,
    /// question and OPT with TC set, so a UDP reply never exceeds what the client allowed.
    public func encode(maxSize: Int = 65_535) -> (bytes: [UInt8], truncated: Bool) {
        let full = encoded(includeRecords: true, truncated: false)
        if full.count <= maxSize { return (full, false) }
        return (encoded(includeRecords: false, truncated: true), true)
    }

    public func encode(into buffer: inout ByteBuffer, maxSize: Int = 65_535) -> Bool {
        let (bytes, truncated) = encode(maxSize: maxSize)
        buffer.writeBytes(bytes)
        return truncated
    }

    func encoded(includeRecords: Bool, truncated: Bool) -> [UInt8] {
        var writer = DNSWriter()
        var header = self.header
        header.truncated = truncated || header.truncated
        writer.u16(header.id)
        writer.u16(header.flags)
        writer.u16(UInt16(questions.count))
        writer.u16(includeRecords ? UInt16(answers.count) : 0)
        writer.u16(includeRecords ? UInt16(authority.count) : 0)
        writer.u16((includeRecords ? UInt16(additional.count) : 0) + (edns == nil ? 0 : 1))
        if questions.count == 1 { writer.questionName = questions[0].name }
        for q in questions {
            writer.name(q.name)
            writer.u16(q.type)
            writer.u16(q.qclass)
        }
        if includeRecords {
            for r in answers { writer.record(r) }
            for r in authority { writer.record(r) }
            for r in additional { writer.record(r) }
        }
        if let edns {
            writer.bytes.append(0)
            writer.u16(DNSType.opt)
            writer.u16(edns.udpPayloadSize)
            writer.u32(UInt32(edns.extendedRcode) << 24 | UInt32(edns.version) << 16 | (edns.dnssecOK ? 0x8000 : 0))
            writer.u16(UInt16(edns.options.count))
            writer.bytes.append(contentsOf: edns.options)
        }
        return writer.bytes
    }
}

struct DNSWriter {
    var bytes: [UInt8] = []
    /// Lower-cased suffix → offset of its first occurrence, for compression pointers.
    var offsets: [[UInt8]: Int] = [:]
    /// The single question's name, written at offset 12: owners equal to it become the pointer 0xC00C directly.
    var questionName: DNSName?

    init() { bytes.reserveCapacity(512) }

    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(v & 0xFF)) }
    mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(v & 0xFFFF)) }

    mutating func name(_ name: DNSName, compress: Bool = true) {
        if compress, bytes.count > 12, let question = questionName, !name.labels.isEmpty, name.labels == question.labels {
            u16(0xC00C)
            return
        }
        let labels = name.labels
        for i in 0..<labels.count {
            var key: [UInt8] = []
            if compress {
                for label in labels[i...] {
                    key.append(UInt8(label.count))
                    key.append(contentsOf: label.map(DNSName.lower))
                }
                if let offset = offsets[key] {
                    u16(0xC000 | UInt16(offset))
                    return
                }
                if bytes.count < 0x4000 { offsets[key] = bytes.count }
            }
            bytes.append(UInt8(labels[i].count))
            bytes.append(contentsOf: labels[i])
        }
        bytes.append(0)
    }

    mutating func record(_ r: DNSRecord) {
        name(r.name)
        u16(r.type)
        u16(r.rclass)
        u32(r.ttl)
        let lengthAt = bytes.count
        u16(0)
        switch r.data {
        case .a(let b), .aaaa(let b), .raw(let b): bytes.append(contentsOf: b)
        case .ns(let n), .cname(let n): name(n)
        case .soa(let s):
            name(s.mname)
            name(s.rname)
            for v in [s.serial, s.refresh, s.retry, s.expire, s.minimum] { u32(v) }
        case .srv(let priority, let weight, let port, let target):
            u16(priority)
            u16(weight)
            u16(port)
            name(target, compress: false)  // RFC 2782: the target is not compressed
        case .hinfo(let cpu, let os):
            bytes.append(UInt8(cpu.count))
            bytes.append(contentsOf: cpu)
            bytes.append(UInt8(os.count))
            bytes.append(contentsOf: os)
        }
        let length = bytes.count - lengthAt - 2
        bytes[lengthAt] = UInt8(length >> 8)
        bytes[lengthAt + 1] = UInt8(length & 0xFF)
    }
}

extension DNSMessage {
    /// Each record's bytes as the first record after `question` in a message with that one question, names
    /// compressed against the question only, and whether those bytes may stand anywhere after the question: true
    /// when no name in them can point into the record itself or another record (an owner equal to the question is
    /// the pointer 0xC00C, and the data holds no compressed name), so records can be put in any order.
    public static func recordBytes(_ records: [DNSRecord], after question: DNSQuestion) -> [(bytes: [UInt8], movable: Bool)] {
        records.map { record in
            var writer = DNSWriter()
            writer.bytes.append(contentsOf: repeatElement(0, count: 12))
            writer.questionName = question.name
            writer.name(question.name)
            writer.u16(question.type)
            writer.u16(question.qclass)
            let start = writer.bytes.count
            writer.record(record)
            let movable: Bool
            switch record.data {
            case .a, .aaaa, .srv, .hinfo: movable = !question.name.labels.isEmpty && record.name.labels == question.name.labels
            default: movable = false
            }
            return (Array(writer.bytes[start...]), movable)
        }
    }
}
