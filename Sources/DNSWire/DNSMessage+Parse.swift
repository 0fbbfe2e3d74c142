import NIOCore

extension DNSMessage {
    /// Parses a whole message. Every length and count is checked against the data; compression pointers must
    /// point strictly before the previous jump, so a name always ends.
    public static func parse(_ bytes: [UInt8]) throws(DNSParseError) -> DNSMessage {
        var reader = DNSReader(bytes: bytes)
        let header = DNSHeader(id: try reader.u16(), flags: try reader.u16())
        let qd = Int(try reader.u16())
        let an = Int(try reader.u16())
        let ns = Int(try reader.u16())
        let ar = Int(try reader.u16())
        // Each question takes at least 5 bytes and each record 11: counts larger than the data fail early.
        guard qd * 5 + (an + ns + ar) * 11 <= bytes.count - 12 else { throw .truncated }
        var message = DNSMessage(header: header)
        for _ in 0..<qd {
            message.questions.append(DNSQuestion(name: try reader.readName(), type: try reader.u16(), qclass: try reader.u16()))
        }
        for _ in 0..<an { message.answers.append(try reader.record()) }
        for _ in 0..<ns { message.authority.append(try reader.record()) }
        for _ in 0..<ar {
            let record = try reader.record()
            if record.type == DNSType.opt {
                guard message.edns == nil, record.name.labels.isEmpty, case .raw(let options) = record.data else { throw .badOPT }
                message.edns = EDNS(
                    udpPayloadSize: record.rclass, extendedRcode: UInt8(record.ttl >> 24), version: UInt8((record.ttl >> 16) & 0xFF),
                    dnssecOK: record.ttl & 0x8000 != 0, options: options)
            } else {
                message.additional.append(record)
            }
        }
        guard reader.position == bytes.count else { throw .trailingBytes }
        return message
    }

    public static func parse(_ buffer: ByteBuffer) throws(DNSParseError) -> DNSMessage {
        try parse(Array(buffer.readableBytesView))
    }
}

struct DNSReader {
    let bytes: [UInt8]
    var position = 0

    mutating func u8() throws(DNSParseError) -> UInt8 {
        guard position < bytes.count else { throw .truncated }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u16() throws(DNSParseError) -> UInt16 {
        guard position + 2 <= bytes.count else { throw .truncated }
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    mutating func u32() throws(DNSParseError) -> UInt32 {
        UInt32(try u16()) << 16 | UInt32(try u16())
    }

    mutating func take(_ count: Int) throws(DNSParseError) -> [UInt8] {
        guard count >= 0, position + count <= bytes.count else { throw .truncated }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    mutating func readName() throws(DNSParseError) -> DNSName {
        var labels: [[UInt8]] = []
        var length = 1
        var p = position
        var floor = position  // every jump must land before this, so the walk ends
        var jumped = false
        while true {
            guard p < bytes.count else { throw .truncated }
            let len = Int(bytes[p])
            switch len & 0xC0 {
            case 0x00:
                if len == 0 {
                    if !jumped { position = p + 1 }
                    return DNSName(labels: labels)
                }
                guard p + 1 + len <= bytes.count else { throw .truncated }
                length += len + 1
                guard length <= 255 else { throw .nameTooLong }
                labels.append(Array(bytes[(p + 1)..<(p + 1 + len)]))
                p += 1 + len
            case 0xC0:
                guard p + 1 < bytes.count else { throw .truncated }
                let target = (len & 0x3F) << 8 | Int(bytes[p + 1])
                guard target < floor, target < p else { throw .badPointer }
                if !jumped {
                    position = p + 2
                    jumped = true
                }
                floor = target
                p = target
            default:
                throw .badLabelType
            }
        }
    }

    mutating func record() throws(DNSParseError) -> DNSRecord {
        let name = try readName()
        let type = try u16()
        let rclass = try u16()
        let ttl = try u32()
        let length = Int(try u16())
        guard position + length <= bytes.count else { throw .truncated }
        let end = position + length
        let data: RData
        switch type {
        case DNSType.a where length == 4: data = .a(try take(4))
        case DNSType.aaaa where length == 16: data = .aaaa(try take(16))
        case DNSType.ns: data = .ns(try readName())
        case DNSType.cname: data = .cname(try readName())
        case DNSType.soa:
            data = .soa(
                SOAData(
                    mname: try readName(), rname: try readName(), serial: try u32(), refresh: try u32(), retry: try u32(),
                    expire: try u32(),
                    minimum: try u32()))
        case DNSType.srv:
            data = .srv(priority: try u16(), weight: try u16(), port: try u16(), target: try readName())
        case DNSType.hinfo:
            let cpu = try take(Int(try u8()))
            data = .hinfo(cpu: cpu, os: try take(Int(try u8())))
        default:
            data = .raw(try take(length))
        }
        guard position == end else { throw .truncated }
        return DNSRecord(name: name, type: type, rclass: rclass, ttl: ttl, data: data)
    }
}

extension DNSMessage {
    /// Where each record of the message starts (answer, authority and additional sections in order), checked as
    /// `parse` checks them: for TSIG (RFC 8945), which signs the message's bytes up to its last record.
    public static func recordStarts(_ bytes: [UInt8]) throws(DNSParseError) -> [Int] {
        var reader = DNSReader(bytes: bytes)
        _ = try reader.u16()
        _ = try reader.u16()
        let qd = Int(try reader.u16())
        let records = Int(try reader.u16()) + Int(try reader.u16()) + Int(try reader.u16())
        guard qd * 5 + records * 11 <= bytes.count - 12 else { throw .truncated }
        for _ in 0..<qd {
            _ = try reader.readName()
            _ = try reader.u32()
        }
        var starts: [Int] = []
        starts.reserveCapacity(records)
        for _ in 0..<records {
            starts.append(reader.position)
            _ = try reader.record()
        }
        guard reader.position == bytes.count else { throw .trailingBytes }
        return starts
    }
}

extension DNSMessage {
    /// The record that starts at `offset` of `bytes` (an offset `recordStarts` gave).
    public static func record(in bytes: [UInt8], at offset: Int) throws(DNSParseError) -> DNSRecord {
        var reader = DNSReader(bytes: bytes)
        reader.position = offset
        return try reader.record()
    }
}
