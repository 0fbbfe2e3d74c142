/// Records in the zone-file presentation format of RFC 1035 §5.1, as dig prints them:
/// `orders.corp.local. 10 IN A 10.0.1.10`.
extension DNSRecord: CustomStringConvertible {
    public var description: String {
        "\(name) \(ttl) \(rclass == DNSClass.in ? "IN" : "CLASS\(rclass)") \(DNSType.mnemonic(type)) \(data)"
    }
}

extension RData: CustomStringConvertible {
    public var description: String {
        switch self {
        case .a(let bytes): return bytes.map(String.init).joined(separator: ".")
        case .aaaa(let bytes): return Self.ipv6Text(bytes)
        case .ns(let name), .cname(let name): return name.description
        case .soa(let soa):
            return "\(soa.mname) \(soa.rname) \(soa.serial) \(soa.refresh) \(soa.retry) \(soa.expire) \(soa.minimum)"
        case .srv(let priority, let weight, let port, let target): return "\(priority) \(weight) \(port) \(target)"
        case .hinfo(let cpu, let os): return "\"\(String(decoding: cpu, as: UTF8.self))\" \"\(String(decoding: os, as: UTF8.self))\""
        case .raw(let bytes):
            // RFC 3597's generic form.
            let hex = bytes.map { String($0, radix: 16, uppercase: false) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
            return "\\# \(bytes.count)" + (bytes.isEmpty ? "" : " " + hex)
        }
    }

    /// RFC 5952 text: lower-case hex, leading zeros dropped, the longest run (two or more) of zero groups as `::`.
    static func ipv6Text(_ bytes: [UInt8]) -> String {
        guard bytes.count == 16 else { return "\\# \(bytes.count)" }
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var best = (start: -1, length: 0)
        var run = (start: -1, length: 0)
        for (i, group) in groups.enumerated() {
            if group == 0 {
                run = run.start < 0 ? (i, 1) : (run.start, run.length + 1)
                if run.length > best.length { best = run }
            } else {
                run = (-1, 0)
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.length >= 2 else { return hex.joined(separator: ":") }
        let head = hex[..<best.start].joined(separator: ":")
        let tail = hex[(best.start + best.length)...].joined(separator: ":")
        return head + "::" + tail
    }
}

extension DNSType {
    /// The type's mnemonic (`A`, `SRV`), or `TYPEn` for types without one here (RFC 3597).
    public static func mnemonic(_ type: UInt16) -> String {
        switch type {
        case a: return "A"
        case ns: return "NS"
        case cname: return "CNAME"
        case soa: return "SOA"
        case hinfo: return "HINFO"
        case aaaa: return "AAAA"
        case srv: return "SRV"
        case opt: return "OPT"
        case ds: return "DS"
        case rrsig: return "RRSIG"
        case nsec: return "NSEC"
        case dnskey: return "DNSKEY"
        case nxname: return "NXNAME"
        case any: return "ANY"
        default: return "TYPE\(type)"
        }
    }
}
