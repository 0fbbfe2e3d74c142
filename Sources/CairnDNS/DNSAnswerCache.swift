import CairnCore
import DNSWire
import Foundation
import NIOCore

/// The network a query came from, as its address bytes (4 or 16; an IPv4-mapped IPv6 address is its IPv4 client),
/// kept inline so a query that is answered from the cache allocates nothing for it.
public struct DNSClient: Sendable {
    private var storage: (UInt64, UInt64) = (0, 0)
    public private(set) var count = 0

    public init() {}

    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        let all = Array(bytes)
        // An IPv4-mapped IPv6 address is the IPv4 client it carries.
        let used =
            all.count == 16 && all.prefix(10).allSatisfy({ $0 == 0 }) && all[10] == 0xFF && all[11] == 0xFF ? Array(all.suffix(4)) : all
        guard used.count == 4 || used.count == 16 else { return }
        count = used.count
        withUnsafeMutableBytes(of: &storage) { raw in
            for (i, b) in used.enumerated() { raw[i] = b }
        }
    }

    public init(_ address: SocketAddress?) {
        switch address {
        case .v4(let a)?: self.init(ipv4: a.address.sin_addr)
        case .v6(let a)?: self.init(ipv6: a.address.sin6_addr)
        default: self.init()
        }
    }

    /// The client of a received `sockaddr_in` or `sockaddr_in6`.
    init(sockaddr address: UnsafePointer<sockaddr_storage>) {
        switch Int32(address.pointee.ss_family) {
        case AF_INET: self.init(ipv4: address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr })
        case AF_INET6: self.init(ipv6: address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr })
        default: self.init()
        }
    }

    private init(ipv4 address: in_addr) {
        var address = address
        count = 4
        withUnsafeMutableBytes(of: &storage) { raw in
            withUnsafeBytes(of: &address) { raw.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: 4) }
        }
    }

    /// An IPv4-mapped IPv6 address is the IPv4 client it carries.
    private init(ipv6 address: in6_addr) {
        var address = address
        let mapped = withUnsafeBytes(of: &address) { b in b.prefix(10).allSatisfy { $0 == 0 } && b[10] == 0xFF && b[11] == 0xFF }
        count = mapped ? 4 : 16
        withUnsafeMutableBytes(of: &storage) { raw in
            withUnsafeBytes(of: &address) {
                raw.baseAddress!.copyMemory(from: $0.baseAddress! + (mapped ? 12 : 0), byteCount: mapped ? 4 : 16)
            }
        }
    }

    public func withBytes<T>(_ body: (UnsafeRawBufferPointer) -> T) -> T {
        withUnsafeBytes(of: storage) { body(UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
    }

    public var bytes: [UInt8] { withBytes { Array($0) } }
}

/// Ready answers for UDP queries: the bytes of each record an answer may hold, worked out once per snapshot
/// (`RegistryState.sequence`), question and client network set, so a repeated question costs a header, the question
/// copied from the query, a random draw and a copy, instead of a parse, a resolution and an encoding.
///
/// A query takes this path only when it is plainly a query (opcode 0, one question with an uncompressed name, no
/// records but at most one OPT of version 0, nothing after it); everything else goes the full way. An entry holds
/// only answers whose records can be moved (owner names that are the pointer to the question, no compressed names in
/// the data) or answers of at most one record; others are never stored. The answer drawn is the one the full path
/// draws from the same `DNSAnswerPlan`, and a changed snapshot makes every entry stale at once (the SOA serial in
/// negative answers is the sequence). Entries go into a fixed number of slots, in sets of four chosen by the
/// lower-cased name, type, class and network set, so every case variant of a question shares one slot: what the
/// entries hold is bounded by the slots (answers without records) plus a small multiple of the registry's own records
/// (an entry with records exists only for a name and type the registry publishes), whatever names clients ask for.
/// Used on one thread only (each UDP socket's thread has its own).
public struct DNSAnswerCache {
    final class Entry {
        let sequence: UInt64
        let hash: UInt64
        /// The question's name on the wire as first asked (its case included).
        let name: [UInt8]
        let type: UInt16
        let qclass: UInt16
        let mask: UInt64
        /// The records carry the question's name as written (SRV targets): another case is another entry.
        let literalCase: Bool
        /// The query had the DO bit, which the reply's OPT repeats (RFC 3225).
        let dnssecOK: Bool
        /// QR, AA and the rcode; RD is the query's.
        let flags: UInt16
        let rcode: UInt16
        /// The answer records' bytes one after another, and where each ends.
        let records: [UInt8]
        let ends: [Int]
        /// How many records one answer draws at random; nil: all, in order.
        let pick: Int?
        let authority: [UInt8]
        let authorityCount: UInt16
        /// Records that follow the drawn ones in the answer section, always all of them: a signed zone's RRSIGs.
        let trailer: [UInt8]
        let trailerCount: UInt16
        /// When the entry stops being used (seconds since 1970): a signed answer is made again every hour, long before
        /// its signatures expire. `Int64.max` for unsigned answers.
        let expiresAt: Int64

        init(
            sequence: UInt64, hash: UInt64, name: [UInt8], type: UInt16, qclass: UInt16, mask: UInt64, literalCase: Bool,
            dnssecOK: Bool, flags: UInt16,
            rcode: UInt16, records: [UInt8], ends: [Int], pick: Int?, authority: [UInt8], authorityCount: UInt16,
            trailer: [UInt8] = [], trailerCount: UInt16 = 0, expiresAt: Int64 = .max
        ) {
            self.sequence = sequence
            self.hash = hash
            self.name = name
            self.type = type
            self.qclass = qclass
            self.mask = mask
            self.literalCase = literalCase
            self.dnssecOK = dnssecOK
            self.flags = flags
            self.rcode = rcode
            self.records = records
            self.ends = ends
            self.pick = pick
            self.authority = authority
            self.authorityCount = authorityCount
            self.trailer = trailer
            self.trailerCount = trailerCount
            self.expiresAt = expiresAt
        }
    }

    /// A query as the fast path reads it: where its question ends, and what it asks.
    struct Query {
        var id: UInt16
        var recursionDesired: Bool
        /// Offset just after the question's name; the question (name, type, class) is `12..<nameEnd + 4`.
        var nameEnd: Int
        var type: UInt16
        var qclass: UInt16
        /// The OPT's UDP payload size, nil without EDNS.
        var ednsSize: UInt16?
        /// The OPT's DO bit.
        var dnssecOK = false
        /// Of the lower-cased name, the type and the class.
        var hash: UInt64

        var questionEnd: Int { nameEnd + 4 }
    }

    private var slots: [Entry?]
    private var rng: SplitMix64
    public private(set) var hits = 0
    public private(set) var misses = 0
    /// Entries held now (at most the slot count).
    public var storedEntries: Int { slots.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    /// `slots` is rounded up to a power of two.
    public init(slots: Int = 16_384, seed: UInt64 = FastSeed.next()) {
        var size = 1
        while size < max(1, slots) { size <<= 1 }
        self.slots = Array(repeating: nil, count: size)
        self.rng = SplitMix64(seed: seed)
    }

    /// Reads a query the fast path can take; nil for anything else (which then goes the full way).
    static func read(_ p: UnsafeRawBufferPointer) -> Query? {
        let count = p.count
        guard count >= 17 else { return nil }
        // QR 0 and opcode 0; one question, no answer or authority records, at most one additional (the OPT).
        guard p[2] & 0xF8 == 0, p[4] == 0, p[5] == 1, p[6] == 0, p[7] == 0, p[8] == 0, p[9] == 0, p[10] == 0, p[11] <= 1
        else { return nil }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var i = 12
        while true {
            guard i < count else { return nil }
            let length = Int(p[i])
            hash = (hash ^ UInt64(length)) &* 0x0000_0100_0000_01B3
            if length == 0 { break }
            guard length <= 63, i + 1 + length < count else { return nil }
            for j in (i + 1)...(i + length) {
                hash = (hash ^ UInt64(DNSName.lowered(p[j]))) &* 0x0000_0100_0000_01B3
            }
            i += 1 + length
        }
        let nameEnd = i + 1
        guard nameEnd - 12 <= 255, nameEnd + 4 <= count else { return nil }
        let type = UInt16(p[nameEnd]) << 8 | UInt16(p[nameEnd + 1])
        let qclass = UInt16(p[nameEnd + 2]) << 8 | UInt16(p[nameEnd + 3])
        hash = (hash ^ UInt64(type) << 16 ^ UInt64(qclass)) &* 0x0000_0100_0000_01B3
        var ednsSize: UInt16?
        var dnssecOK = false
        let end = nameEnd + 4
        if p[11] == 0 {
            guard end == count else { return nil }
        } else {
            // The OPT: root owner, type 41, class the payload size, extended rcode, version 0, flags, options.
            guard end + 11 <= count, p[end] == 0, p[end + 1] == 0, p[end + 2] == 41, p[end + 6] == 0 else { return nil }
            let length = Int(p[end + 9]) << 8 | Int(p[end + 10])
            guard end + 11 + length == count else { return nil }
            ednsSize = UInt16(p[end + 3]) << 8 | UInt16(p[end + 4])
            dnssecOK = p[end + 7] & 0x80 != 0
            if dnssecOK { hash = (hash ^ 0xD0) &* 0x0000_0100_0000_01B3 }
        }
        return Query(
            id: UInt16(p[0]) << 8 | UInt16(p[1]), recursionDesired: p[2] & 0x01 != 0, nameEnd: nameEnd, type: type, qclass: qclass,
            ednsSize: ednsSize, dnssecOK: dnssecOK, hash: hash)
    }

    /// Slots per set: a question may sit in any slot of its set. Direct-mapped (one slot per set), 2,581 questions
    /// in 16,384 slots shared a slot with another in 15% of cases, and each pair evicted each other in turn: 7% of
    /// `bench/dns.sh`'s queries took the full path.
    static let ways = 4

    /// The first slot of the question's set.
    private func set(_ hash: UInt64, _ mask: UInt64) -> Int {
        let mixed = (hash ^ (mask &* 0x9E37_79B9_7F4A_7C15)) &* 0xBF58_476D_1CE4_E5B9
        return Int(truncatingIfNeeded: mixed >> 32) & (slots.count - 1) & ~(Self.ways - 1)
    }

    /// The slot an entry for this question goes in: its own earlier entry's, else an empty one, else one of an older
    /// snapshot, else one at random.
    private mutating func slot(forStoring hash: UInt64, _ mask: UInt64, sequence: UInt64) -> Int {
        let first = set(hash, mask)
        var empty: Int?
        var stale: Int?
        for i in first..<first + Self.ways {
            guard let entry = slots[i] else {
                if empty == nil { empty = i }
                continue
            }
            if entry.hash == hash && entry.mask == mask { return i }
            if entry.sequence != sequence && stale == nil { stale = i }
        }
        return empty ?? stale ?? first + Int(truncatingIfNeeded: rng.next() % UInt64(Self.ways))
    }

    /// The entry for the query when one is stored for this snapshot and client network set.
    func entry(for q: Query, in p: UnsafeRawBufferPointer, mask: UInt64, sequence: UInt64) -> Entry? {
        let first = set(q.hash, mask)
        var found: Entry?
        for i in first..<first + Self.ways {
            if let entry = slots[i], entry.hash == q.hash, entry.mask == mask {
                found = entry
                break
            }
        }
        guard let entry = found, entry.sequence == sequence, entry.type == q.type, entry.qclass == q.qclass,
            entry.dnssecOK == q.dnssecOK, entry.name.count == q.nameEnd - 12
        else { return nil }
        let same = entry.name.withUnsafeBufferPointer { name -> Bool in
            for k in 0..<name.count {
                let asked = p[12 + k]
                if name[k] == asked { continue }
                if entry.literalCase || DNSName.lowered(name[k]) != DNSName.lowered(asked) { return false }
            }
            return true
        }
        return same ? entry : nil
    }

    /// Writes the answer to the query from a stored entry; nil (nothing written) when there is none or the answer
    /// does not fit `limit`.
    mutating func answer(
        _ q: Query, in p: UnsafeRawBufferPointer, mask: UInt64, sequence: UInt64, limit: Int, ednsPayloadSize: Int,
        into out: inout ByteBuffer
    ) -> (type: UInt16, rcode: UInt16)? {
        guard let entry = entry(for: q, in: p, mask: mask, sequence: sequence),
            entry.expiresAt == .max || Int64(time(nil)) < entry.expiresAt
        else {
            misses += 1
            return nil
        }
        let available = entry.ends.count
        let take = entry.pick.map { min($0, available) } ?? available
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: max(1, take)) { chosen -> (type: UInt16, rcode: UInt16)? in
            var size = q.questionEnd + entry.trailer.count + entry.authority.count + (q.ednsSize == nil ? 0 : 11)
            if entry.pick == nil || available <= take {
                for k in 0..<take { chosen[k] = k }
                if entry.pick != nil && take > 1 {
                    for k in stride(from: take - 1, to: 0, by: -1) {
                        chosen.swapAt(k, Int(rng.next() % UInt64(k + 1)))
                    }
                }
            } else {
                // A random subset in random order: draws without repetition (take ≤ 8, far fewer than available).
                var k = 0
                while k < take {
                    let candidate = Int(rng.next() % UInt64(available))
                    var seen = false
                    for m in 0..<k where chosen[m] == candidate { seen = true }
                    if !seen {
                        chosen[k] = candidate
                        k += 1
                    }
                }
            }
            for k in 0..<take {
                let i = chosen[k]
                size += entry.ends[i] - (i == 0 ? 0 : entry.ends[i - 1])
            }
            guard size <= limit else { return nil }
            hits += 1
            out.reserveCapacity(minimumWritableBytes: size)
            out.writeInteger(q.id)
            out.writeInteger(entry.flags | (q.recursionDesired ? 0x0100 : 0))
            out.writeInteger(UInt16(1))
            out.writeInteger(UInt16(take) + entry.trailerCount)
            out.writeInteger(entry.authorityCount)
            out.writeInteger(UInt16(q.ednsSize == nil ? 0 : 1))
            out.writeBytes(UnsafeRawBufferPointer(rebasing: p[12..<q.questionEnd]))
            entry.records.withUnsafeBytes { records in
                for k in 0..<take {
                    let i = chosen[k]
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: records[(i == 0 ? 0 : entry.ends[i - 1])..<entry.ends[i]]))
                }
            }
            out.writeBytes(entry.trailer)
            out.writeBytes(entry.authority)
            if q.ednsSize != nil {
                out.writeInteger(UInt8(0))
                out.writeInteger(DNSType.opt)
                out.writeInteger(UInt16(clamping: ednsPayloadSize))
                out.writeInteger(UInt32(q.dnssecOK ? 0x8000 : 0))
                out.writeInteger(UInt16(0))
            }
            return (q.type, entry.rcode)
        }
    }

    /// Stores what the full path worked out for the query, when its answers can be drawn from ready bytes.
    mutating func store(
        _ q: Query, in p: UnsafeRawBufferPointer, mask: UInt64, sequence: UInt64, question: DNSQuestion, plan: DNSAnswerPlan
    ) {
        guard let entry = Self.entry(q, in: p, mask: mask, sequence: sequence, question: question, plan: plan) else { return }
        slots[slot(forStoring: q.hash, mask, sequence: sequence)] = entry
    }

    /// Stores a signed zone's answer to a DO query (`reply`, as the full path sent it) when every answer to it holds
    /// the same record sets: the plan's whole pool (in any order) with the same RRSIGs after it, or a negative answer
    /// whose authority section never changes. Kept until `expiresAt` (seconds) or the next snapshot.
    mutating func storeSigned(
        _ q: Query, in p: UnsafeRawBufferPointer, mask: UInt64, sequence: UInt64, question: DNSQuestion, plan: DNSAnswerPlan,
        reply: DNSMessage, expiresAt: Int64
    ) {
        guard q.dnssecOK, !reply.header.truncated, reply.header.rcode == reply.rcode, plan.pick.map({ plan.pool.count <= $0 }) ?? true
        else { return }
        let drawn = reply.answers.filter { $0.type != DNSType.rrsig }
        let signatures = reply.answers.filter { $0.type == DNSType.rrsig }
        guard drawn.count == plan.pool.count, signatures.allSatisfy({ $0.name == question.name }) else { return }
        let pool = DNSMessage.recordBytes(plan.pool, after: question)
        let movable = pool.allSatisfy(\.movable)
        guard movable || pool.count <= 1 else { return }
        // Authority records after the first must not point into what comes before them but the question: NSEC and
        // RRSIG data hold no compressed names, and their owners are the question or its zone (pointers into it).
        guard
            reply.authority.isEmpty
                || (pool.isEmpty
                    && reply.authority.dropFirst().allSatisfy { r in
                        (r.type == DNSType.nsec || r.type == DNSType.rrsig) && question.name.isSubdomain(of: r.name)
                    })
        else { return }
        let authority = DNSMessage.recordBytes(reply.authority, after: question).flatMap(\.bytes)
        let trailer = DNSMessage.recordBytes(signatures, after: question).flatMap(\.bytes)
        let (records, ends, literalCase) = Self.packed(pool, plan)
        let flags = 0x8000 | (reply.header.authoritative ? 0x0400 : 0) | reply.header.rcode
        slots[slot(forStoring: q.hash, mask, sequence: sequence)] = Entry(
            sequence: sequence, hash: q.hash, name: Array(p[12..<q.nameEnd]), type: q.type, qclass: q.qclass, mask: mask,
            literalCase: literalCase, dnssecOK: true, flags: flags, rcode: reply.header.rcode, records: records, ends: ends,
            pick: pool.count <= 1 ? nil : plan.pick, authority: authority, authorityCount: UInt16(reply.authority.count),
            trailer: trailer, trailerCount: UInt16(signatures.count), expiresAt: expiresAt)
    }

    /// The pool's record bytes one after another, where each ends, and whether they carry the question's case (SRV
    /// targets: another case is another entry).
    static func packed(_ pool: [(bytes: [UInt8], movable: Bool)], _ plan: DNSAnswerPlan) -> (
        records: [UInt8], ends: [Int], literalCase: Bool
    ) {
        var records: [UInt8] = []
        var ends: [Int] = []
        for record in pool {
            records += record.bytes
            ends.append(records.count)
        }
        return (records, ends, plan.pool.contains { if case .srv = $0.data { true } else { false } })
    }

    static func entry(
        _ q: Query, in p: UnsafeRawBufferPointer, mask: UInt64, sequence: UInt64, question: DNSQuestion, plan: DNSAnswerPlan
    ) -> Entry? {
        guard plan.rcode <= 0xF, plan.authority.count <= 1 else { return nil }
        let pool = DNSMessage.recordBytes(plan.pool, after: question)
        let authority = DNSMessage.recordBytes(plan.authority, after: question)
        // Movable answers go in any order; otherwise the answer is at most one record, always right after the question.
        let movable = plan.authority.isEmpty && pool.allSatisfy(\.movable)
        guard movable || pool.count + authority.count <= 1 else { return nil }
        let (records, ends, literalCase) = Self.packed(pool, plan)
        let flags = 0x8000 | (plan.authoritative ? 0x0400 : 0) | plan.rcode
        return Entry(
            sequence: sequence, hash: q.hash, name: Array(p[12..<q.nameEnd]), type: q.type, qclass: q.qclass, mask: mask,
            literalCase: literalCase, dnssecOK: q.dnssecOK, flags: flags, rcode: plan.rcode, records: records, ends: ends,
            pick: pool.count <= 1 && (plan.pick ?? 1) >= pool.count ? nil : plan.pick, authority: authority.first?.bytes ?? [],
            authorityCount: UInt16(authority.count))
    }
}

extension DNSName {
    /// ASCII lower case of one byte of a name.
    @inline(__always) public static func lowered(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }
}
