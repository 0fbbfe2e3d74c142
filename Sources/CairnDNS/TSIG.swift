import Crypto
import DNSWire

#if canImport(Glibc)
    import Glibc
#endif

/// A TSIG key (RFC 8945): its name and secret. HMAC-SHA256 only.
public struct TSIGKey: Sendable, Equatable {
    public let name: DNSName
    public let secret: [UInt8]

    public init?(name: String, secret: [UInt8]) {
        guard let parsed = DNSName(name), !parsed.labels.isEmpty, secret.count >= 16, secret.count <= 512 else { return nil }
        self.name = parsed
        self.secret = secret
    }
}

/// Transaction signatures (RFC 8945) with HMAC-SHA256, for zone transfers and NOTIFY: verifying a request's, signing
/// replies (each message of a transfer chained to the one before, §5.3.1) and the error answers of §5.2.
public enum TSIG {
    public static let type: UInt16 = 250
    public static let algorithm = DNSName("hmac-sha256")!
    public static let notAuth: UInt16 = 9
    public static let badSig: UInt16 = 16
    public static let badKey: UInt16 = 17
    public static let badTime: UInt16 = 18
    /// The seconds of clock difference a signature is accepted within, and what Cairn signs with.
    public static let fudge: UInt16 = 300

    /// The fields of a TSIG record.
    public struct Record: Sendable, Equatable {
        public var keyName: DNSName
        public var algorithm: DNSName
        public var timeSigned: UInt64
        public var fudge: UInt16
        public var mac: [UInt8]
        public var originalID: UInt16
        public var error: UInt16
        public var other: [UInt8]
    }

    /// What a request's signature says.
    public enum Check: Sendable, Equatable {
        case unsigned
        case valid(Record)
        /// BADKEY, BADSIG or BADTIME, and the record it was found in.
        case failed(UInt16, Record)
        /// A TSIG record that is not the last record, or does not parse: FORMERR.
        case malformed
    }

    public static func now() -> UInt64 {
        #if canImport(Glibc)
            return UInt64(max(0, time(nil)))
        #else
            return 0
        #endif
    }

    /// Checks the TSIG record of a request (the last record, if it is one) against `key`.
    public static func check(_ bytes: [UInt8], key: TSIGKey?, now: UInt64) -> Check {
        guard let starts = try? DNSMessage.recordStarts(bytes) else { return .unsigned }
        let found = starts.enumerated().compactMap { i, start -> (Int, Int)? in
            guard let record = try? DNSMessage.record(in: bytes, at: start), record.type == type else { return nil }
            return (i, start)
        }
        guard let (index, start) = found.first else { return .unsigned }
        guard found.count == 1, index == starts.count - 1, let parsed = try? DNSMessage.record(in: bytes, at: start),
            parsed.rclass == DNSClass.any, parsed.ttl == 0, case .raw(let rdata) = parsed.data,
            let record = record(keyName: parsed.name, rdata: rdata)
        else { return .malformed }
        guard let key, key.name.key == record.keyName.key, record.algorithm.key == algorithm.key else { return .failed(badKey, record) }
        var unsigned = Array(bytes[..<start])
        unsigned[0] = UInt8(record.originalID >> 8)
        unsigned[1] = UInt8(record.originalID & 0xFF)
        let count = (UInt16(unsigned[10]) << 8 | UInt16(unsigned[11])) &- 1
        unsigned[10] = UInt8(count >> 8)
        unsigned[11] = UInt8(count & 0xFF)
        let expected = mac(key, unsigned + variables(record, timersOnly: false))
        // The whole MAC only (RFC 8945 §5.2.2.1 allows truncation to half; no client Cairn meets truncates).
        guard record.mac.count == expected.count, constantTimeEqual(record.mac, expected) else { return .failed(badSig, record) }
        let skew = now > record.timeSigned ? now - record.timeSigned : record.timeSigned - now
        guard skew <= UInt64(record.fudge) else { return .failed(badTime, record) }
        return .valid(record)
    }

    /// `message` with a TSIG record appended (ARCOUNT raised). `prior`: the request's MAC for the first reply, the
    /// previous message's MAC for the later messages of a transfer (which sign the timers only), nil for a request.
    public static func sign(
        _ message: [UInt8], key: TSIGKey, prior: [UInt8]?, time: UInt64, timersOnly: Bool = false, error: UInt16 = 0,
        other: [UInt8] = []
    ) -> (bytes: [UInt8], mac: [UInt8]) {
        let id = UInt16(message[0]) << 8 | UInt16(message[1])
        var record = Record(
            keyName: key.name, algorithm: algorithm, timeSigned: time, fudge: fudge, mac: [], originalID: id, error: error, other: other)
        var digest: [UInt8] = []
        if let prior { digest += u16(UInt16(prior.count)) + prior }
        digest += message + variables(record, timersOnly: timersOnly)
        record.mac = mac(key, digest)
        return (append(record, to: message), record.mac)
    }

    /// An error answer's TSIG (BADKEY, BADSIG): the record with no MAC, unsigned (RFC 8945 §5.3.2).
    public static func appendUnsigned(error: UInt16, to message: [UInt8], request: Record, time: UInt64) -> [UInt8] {
        append(
            Record(
                keyName: request.keyName, algorithm: request.algorithm, timeSigned: time, fudge: fudge, mac: [],
                originalID: request.originalID, error: error, other: []), to: message)
    }

    static func append(_ record: Record, to message: [UInt8]) -> [UInt8] {
        var out = message
        out += canonical(record.keyName)
        out += u16(type) + u16(DNSClass.any) + [0, 0, 0, 0]
        var rdata = canonical(record.algorithm) + u48(record.timeSigned) + u16(record.fudge)
        rdata += u16(UInt16(record.mac.count)) + record.mac + u16(record.originalID) + u16(record.error)
        rdata += u16(UInt16(record.other.count)) + record.other
        out += u16(UInt16(rdata.count)) + rdata
        let count = (UInt16(out[10]) << 8 | UInt16(out[11])) &+ 1
        out[10] = UInt8(count >> 8)
        out[11] = UInt8(count & 0xFF)
        return out
    }

    static func record(keyName: DNSName, rdata: [UInt8]) -> Record? {
        var position = 0
        var labels: [[UInt8]] = []
        while true {
            guard position < rdata.count else { return nil }
            let length = Int(rdata[position])
            position += 1
            if length == 0 { break }
            guard length < 64, position + length <= rdata.count, labels.count < 128 else { return nil }
            labels.append(Array(rdata[position..<position + length]))
            position += length
        }
        func take(_ n: Int) -> ArraySlice<UInt8>? {
            guard position + n <= rdata.count else { return nil }
            defer { position += n }
            return rdata[position..<position + n]
        }
        func number(_ n: Int) -> UInt64? { take(n).map { $0.reduce(0) { $0 << 8 | UInt64($1) } } }
        guard let time = number(6), let fudge = number(2), let macSize = number(2), let mac = take(Int(macSize)),
            let originalID = number(2), let error = number(2), let otherSize = number(2), let other = take(Int(otherSize)),
            position == rdata.count
        else { return nil }
        return Record(
            keyName: keyName, algorithm: DNSName(labels: labels), timeSigned: time, fudge: UInt16(fudge), mac: Array(mac),
            originalID: UInt16(originalID), error: UInt16(error), other: Array(other))
    }

    /// The TSIG variables a MAC covers (RFC 8945 §4.3.3), or only its timers (§5.3.1).
    static func variables(_ record: Record, timersOnly: Bool) -> [UInt8] {
        if timersOnly { return u48(record.timeSigned) + u16(record.fudge) }
        var out = canonical(record.keyName) + u16(DNSClass.any) + [0, 0, 0, 0] + canonical(record.algorithm)
        out += u48(record.timeSigned) + u16(record.fudge) + u16(record.error) + u16(UInt16(record.other.count)) + record.other
        return out
    }

    static func mac(_ key: TSIGKey, _ data: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key.secret)))
    }

    static func canonical(_ name: DNSName) -> [UInt8] {
        var out: [UInt8] = []
        for label in name.labels {
            out.append(UInt8(label.count))
            out += label.map(DNSName.lower)
        }
        out.append(0)
        return out
    }

    static func u16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func u48(_ v: UInt64) -> [UInt8] { (0..<6).reversed().map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
