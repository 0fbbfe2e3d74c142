import CairnCore
import Crypto
import DNSWire
import Foundation
import Synchronization

/// Online DNSSEC signing of public DNS namespaces (docs/dns.md, "DNSSEC"): ECDSA P-256 SHA-256 (algorithm 13,
/// RFC 6605), one combined signing key per zone (two during a roll, both signing), and compact denial of existence
/// (RFC 9824): a name or type that does not exist is answered NOERROR with one NSEC at the question's name whose next
/// name is the immediately following name (`\000.<name>`), so a negative answer needs one NSEC and reveals nothing
/// about the zone's other names. Signatures are made when an answer is sent to a query with the DO bit and kept per
/// signed data (record set, key, validity window), so an unchanged record set is signed once per hour and key.
public final class DNSSECSigner: Sendable {
    /// Signatures are valid from an hour before the hour they are made in until 14 days after it.
    static let validityBefore: Int64 = 3_600
    static let validityAfter: Int64 = 14 * 86_400
    /// Most signatures kept; past it the cache starts over.
    static let cacheLimit = 20_000
    /// How many different draws a signed MULTIVALUE answer with more records than it carries is made from, per
    /// snapshot (`DNSResponder`): what bounds the signatures such a name costs.
    public static let draws: UInt64 = 16
    /// The TTL of DNSKEY records.
    public static let dnskeyTTL: UInt32 = 3_600

    let signatures = Mutex<[[UInt8]: [UInt8]]>([:])
    let parsedKeys = Mutex<[String: P256.Signing.PrivateKey]>([:])
    let clock: @Sendable () -> Int64

    /// `clock`: seconds since 1970.
    public init(clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }) {
        self.clock = clock
    }

    /// Until when a signed answer made now may be kept ready (seconds): the end of this hour, when signing would
    /// start using the next validity window.
    func readyUntil() -> Int64 {
        let now = clock()
        return now - now % 3_600 + 3_600
    }

    /// A new key for a zone (the node that takes the request makes it; `SigningKeyChange`).
    public static func newKey(now: Int64) -> SigningKey {
        let key = P256.Signing.PrivateKey()
        return SigningKey(
            privateKey: Array(key.rawRepresentation), publicKey: Array(key.publicKey.rawRepresentation), createdAt: now)
    }

    /// The key whose private scalar is `privateKey` (32 bytes); nil when it is not a valid P-256 scalar.
    public static func key(privateKey: [UInt8], createdAt: Int64) -> SigningKey? {
        guard let key = try? P256.Signing.PrivateKey(rawRepresentation: privateKey) else { return nil }
        return SigningKey(privateKey: Array(key.rawRepresentation), publicKey: Array(key.publicKey.rawRepresentation), createdAt: createdAt)
    }

    /// The DNSKEY record of a key at the zone's apex.
    public static func dnskey(_ key: SigningKey, apex: DNSName) -> DNSRecord {
        DNSRecord(name: apex, type: DNSType.dnskey, ttl: dnskeyTTL, data: .raw(key.dnskeyData))
    }

    /// The DS record (digest type 2, SHA-256) the parent zone publishes for the key.
    public static func ds(_ key: SigningKey, apex: DNSName) -> DNSRecord {
        var input = canonicalName(apex)
        input += key.dnskeyData
        let digest = Array(SHA256.hash(data: input))
        let tag = key.keyTag
        return DNSRecord(
            name: apex, type: DNSType.ds, ttl: dnskeyTTL,
            data: .raw([UInt8(tag >> 8), UInt8(tag & 0xFF), SigningKey.algorithm, 2] + digest))
    }

    /// Presentation text of a DNSKEY (`257 3 13 <base64>`) and a DS (`<tag> 13 2 <hex>`), as zone files write them.
    public static func dnskeyText(_ key: SigningKey) -> String { "\(SigningKey.flags) 3 \(SigningKey.algorithm) \(key.publicKey)" }

    public static func dsText(_ key: SigningKey, apex: DNSName) -> String {
        guard case .raw(let data) = ds(key, apex: apex).data else { return "" }
        return "\(key.keyTag) \(SigningKey.algorithm) 2 " + data.dropFirst(4).map { String(format: "%02X", $0) }.joined()
    }

    /// Signs an answer for a query with the DO bit: RRSIGs for every record set in the answer and authority
    /// sections, and compact denial for a negative answer (NXDOMAIN becomes NOERROR with an NSEC whose types are
    /// RRSIG, NSEC and NXNAME; a NODATA answer gets an NSEC listing the types at the name, `typesAtName`).
    func sign(
        _ answer: inout DNSAnswer, question: DNSQuestion, zone: ZoneIndex.Zone, keys: [SigningKey], typesAtName: () -> [UInt16]
    ) {
        let now = clock()
        if answer.rcode == DNSRcode.nxDomain || (answer.rcode == DNSRcode.noError && answer.answers.isEmpty) {
            guard let soa = answer.authority.first(where: { $0.type == DNSType.soa }) else { return }
            let types = answer.rcode == DNSRcode.nxDomain ? [DNSType.rrsig, DNSType.nsec, DNSType.nxname] : typesAtName()
            answer.rcode = DNSRcode.noError
            answer.authority = [soa, Self.nsec(question.name, types: types, ttl: soa.ttl)]
        }
        answer.answers += rrsigs(answer.answers, zone: zone, keys: keys, now: now)
        answer.authority += rrsigs(answer.authority, zone: zone, keys: keys, now: now)
    }

    /// The NSEC of compact denial at `name`: next name `\000.<name>`, the types given plus RRSIG and NSEC.
    static func nsec(_ name: DNSName, types: [UInt16], ttl: UInt32) -> DNSRecord {
        var next = [UInt8(1), 0]
        next += canonicalName(name)
        let all = Set(types + [DNSType.rrsig, DNSType.nsec])
        return DNSRecord(name: name, type: DNSType.nsec, ttl: ttl, data: .raw(next + typeBitmap(all)))
    }

    /// RFC 4034 §4.1.2: windows of up to 256 types, each as its number, its length and the bits of its types.
    static func typeBitmap(_ types: Set<UInt16>) -> [UInt8] {
        var out: [UInt8] = []
        for window in Set(types.map { $0 >> 8 }).sorted() {
            let inWindow = types.filter { $0 >> 8 == window }.map { Int($0 & 0xFF) }
            let length = inWindow.max()! / 8 + 1
            var bits = [UInt8](repeating: 0, count: length)
            for t in inWindow { bits[t / 8] |= 0x80 >> UInt8(t % 8) }
            out.append(UInt8(window))
            out.append(UInt8(length))
            out += bits
        }
        return out
    }

    /// One RRSIG per record set in `records` (in the order the sets first appear) and key.
    func rrsigs(_ records: [DNSRecord], zone: ZoneIndex.Zone, keys: [SigningKey], now: Int64) -> [DNSRecord] {
        var sets: [(owner: DNSName, type: UInt16, records: [DNSRecord])] = []
        for record in records where record.type != DNSType.rrsig {
            if let i = sets.firstIndex(where: { $0.type == record.type && $0.owner == record.name }) {
                sets[i].records.append(record)
            } else {
                sets.append((record.name, record.type, [record]))
            }
        }
        var out: [DNSRecord] = []
        for set in sets {
            for key in keys {
                if let rrsig = rrsig(set.records, owner: set.owner, type: set.type, zone: zone, key: key, now: now) { out.append(rrsig) }
            }
        }
        return out
    }

    func rrsig(_ set: [DNSRecord], owner: DNSName, type: UInt16, zone: ZoneIndex.Zone, key: SigningKey, now: Int64) -> DNSRecord? {
        let ttl = set.map(\.ttl).min() ?? 0
        let hour = now - now % 3_600
        let inception = UInt32(truncatingIfNeeded: hour - Self.validityBefore)
        let expiration = UInt32(truncatingIfNeeded: hour + Self.validityAfter)
        let tag = key.keyTag
        var head: [UInt8] = []
        head.reserveCapacity(128)
        head.append(UInt8(type >> 8))
        head.append(UInt8(type & 0xFF))
        head.append(SigningKey.algorithm)
        head.append(UInt8(clamping: owner.labels.count))
        for v in [ttl, expiration, inception] {
            head += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
        }
        head.append(UInt8(tag >> 8))
        head.append(UInt8(tag & 0xFF))
        head += Self.canonicalName(zone.apex)
        var signed = head
        let ownerBytes = Self.canonicalName(owner)
        // RFC 4034 §6.3: the records in canonical order of their data, duplicates once.
        let datas = Set(set.map { Self.canonicalData($0.data) }).sorted { $0.lexicographicallyPrecedes($1) }
        for data in datas {
            signed += ownerBytes
            signed += [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
            signed += [UInt8(ttl >> 24), UInt8((ttl >> 16) & 0xFF), UInt8((ttl >> 8) & 0xFF), UInt8(ttl & 0xFF)]
            signed += [UInt8(truncatingIfNeeded: data.count >> 8), UInt8(truncatingIfNeeded: data.count)]
            signed += data
        }
        guard let signature = signature(signed, key: key) else { return nil }
        return DNSRecord(name: owner, type: DNSType.rrsig, ttl: ttl, data: .raw(head + signature))
    }

    /// The signature of `data` by `key`, from the cache when the same data was signed before.
    func signature(_ data: [UInt8], key: SigningKey) -> [UInt8]? {
        if let known = signatures.withLock({ $0[data] }) { return known }
        guard let privateKey = privateKey(key), let signature = try? privateKey.signature(for: data) else { return nil }
        let bytes = Array(signature.rawRepresentation)
        signatures.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[data] = bytes
        }
        return bytes
    }

    func privateKey(_ key: SigningKey) -> P256.Signing.PrivateKey? {
        if let known = parsedKeys.withLock({ $0[key.publicKey] }) { return known }
        guard let parsed = try? P256.Signing.PrivateKey(rawRepresentation: key.privateKeyBytes) else { return nil }
        parsedKeys.withLock { keys in
            if keys.count >= 1_000 { keys.removeAll() }
            keys[key.publicKey] = parsed
        }
        return parsed
    }

    /// A name on the wire, lower-cased and uncompressed (RFC 4034 §6.2).
    static func canonicalName(_ name: DNSName) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(name.wireLength)
        for label in name.labels {
            out.append(UInt8(truncatingIfNeeded: label.count))
            out += label.map(DNSName.lower)
        }
        out.append(0)
        return out
    }

    /// Record data in canonical form: names uncompressed and lower-cased (RFC 4034 §6.2; the types Cairn serves).
    static func canonicalData(_ data: RData) -> [UInt8] {
        func u16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
        func u32(_ v: UInt32) -> [UInt8] { u16(UInt16(v >> 16)) + u16(UInt16(v & 0xFFFF)) }
        switch data {
        case .a(let b), .aaaa(let b), .raw(let b): return b
        case .ns(let n), .cname(let n): return canonicalName(n)
        case .soa(let s):
            return canonicalName(s.mname) + canonicalName(s.rname) + [s.serial, s.refresh, s.retry, s.expire, s.minimum].flatMap(u32)
        case .srv(let priority, let weight, let port, let target): return u16(priority) + u16(weight) + u16(port) + canonicalName(target)
        case .hinfo(let cpu, let os): return [UInt8(truncatingIfNeeded: cpu.count)] + cpu + [UInt8(truncatingIfNeeded: os.count)] + os
        }
    }
}
