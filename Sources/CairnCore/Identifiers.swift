import Synchronization

/// Generates ids in AWS's forms from an injected random source.
public struct IdentifierGenerator: Sendable {
    static let base32: [Character] = Array("abcdefghijklmnopqrstuvwxyz234567")
    static let base32Bytes: [UInt8] = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
    static let upperAlnum: [Character] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

    private var rng: SplitMix64

    public init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func randomString(_ count: Int, from alphabet: [Character]) -> String {
        var s = ""
        s.reserveCapacity(count)
        for _ in 0..<count { s.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
        return s
    }

    /// `ns-` + 16 lower-case base32 characters.
    public mutating func namespaceId() -> String { "ns-" + randomString(16, from: Self.base32) }
    /// `srv-` + 16 lower-case base32 characters.
    public mutating func serviceId() -> String { "srv-" + randomString(16, from: Self.base32) }
    /// Route 53-style hosted zone id: `Z` + 20 upper-case alphanumerics.
    public mutating func hostedZoneId() -> String { "Z" + randomString(20, from: Self.upperAlnum) }
    /// A short suffix that tells two HttpNames of re-used namespace names apart.
    public mutating func httpNameSuffix() -> String { randomString(8, from: Self.base32) }

    public mutating func next() -> UInt64 { rng.next() }

    /// Operation id: 32 base32 characters derived from the target (the same for every operation on one
    /// target, as AWS does) + `-` + the base36 of the creation time in epoch milliseconds.
    public static func operationId(target: String, milliseconds: Int64) -> String {
        targetHash(target) + "-" + String(milliseconds, radix: 36)
    }

    /// 160 bits taken from three FNV-1a-64 passes with different offsets, as 32 base32 characters.
    static func targetHash(_ target: String) -> String {
        var hashes: (UInt64, UInt64, UInt64) = (0xcbf2_9ce4_8422_2325, 0x8422_2325_cbf2_9ce4, 0x9e37_79b9_7f4a_7c15)
        for byte in target.utf8 {
            hashes.0 = (hashes.0 ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            hashes.1 = (hashes.1 ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            hashes.2 = (hashes.2 ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        // MurmurHash3's finalizer, so near-identical targets get unrelated prefixes.
        func mixed(_ value: UInt64) -> UInt64 {
            var h = (value ^ (value >> 33)) &* 0xff51_afd7_ed55_8ccd
            h = (h ^ (h >> 33)) &* 0xc4ce_b9fe_1a85_ec53
            return h ^ (h >> 33)
        }
        let words = [mixed(hashes.0), mixed(hashes.1), mixed(hashes.2)]
        // Byte `i` of the 24 big-endian bytes of the three words.
        func byte(_ i: Int) -> UInt16 { UInt16(truncatingIfNeeded: words[i / 8] >> UInt64(56 - (i % 8) * 8)) }
        return String(unsafeUninitializedCapacity: 32) { out in
            for index in 0..<32 {
                let bit = index * 5
                let pair = (byte(bit / 8) << 8) | byte(bit / 8 + 1)
                out[index] = base32Bytes[Int((pair >> UInt16(11 - bit % 8)) & 0x1F)]
            }
            return 32
        }
    }
}

/// Seeds for per-request generators without a system call per request: a process-wide counter, started from the
/// system's randomness and scrambled by MurmurHash3's finalizer. (Stepping it by SplitMix64's own increment would
/// make each request's stream the previous one shifted by one draw: correlated shuffles.)
public enum FastSeed {
    static let start = UInt64.random(in: .min ... .max)
    static let counter = Atomic<UInt64>(0)

    public static func next() -> UInt64 {
        var h = start ^ counter.wrappingAdd(1, ordering: .relaxed).newValue
        h = (h ^ (h >> 33)) &* 0xff51_afd7_ed55_8ccd
        h = (h ^ (h >> 33)) &* 0xc4ce_b9fe_1a85_ec53
        return h ^ (h >> 33)
    }
}

/// Request and event ids in the form of a random (version 4) UUID, lower case, as AWS writes `x-amzn-RequestId`:
/// 128 bits from two `FastSeed` values, unique within a process (the seed counter never repeats) and unrelated
/// across processes (its random start). Foundation's `UUID()` opened, read and closed /dev/urandom on every call,
/// 2.7% of a DiscoverInstances request (issue 12). Not for secrets.
public enum RequestID {
    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    public static func next() -> String {
        let high = (FastSeed.next() & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000  // version 4
        let low = (FastSeed.next() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // RFC 4122 variant
        return String(unsafeUninitializedCapacity: 36) { out in
            var position = 0
            for nibble in 0..<32 {
                if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 {
                    out[position] = UInt8(ascii: "-")
                    position += 1
                }
                let word = nibble < 16 ? high : low
                out[position] = hex[Int((word >> UInt64(60 - (nibble % 16) * 4)) & 0xF)]
                position += 1
            }
            return position
        }
    }
}

/// A small, fast, seedable generator (SplitMix64); the registry's randomness is injected through it.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
