/// A domain name as its labels. Comparison and lookups are case-insensitive (ASCII), while the original bytes are
/// kept so an answer repeats the question's case (DNS 0x20).
public struct DNSName: Sendable, Hashable, CustomStringConvertible {
    /// Labels without length bytes, leftmost first; the root is no labels.
    public private(set) var labels: [[UInt8]]

    public static let root = DNSName(labels: [])

    public init(labels: [[UInt8]]) { self.labels = labels }

    /// Parses a dotted name (`orders.corp.local` or with a trailing dot); nil if a label is empty or too long.
    public init?(_ text: String) {
        var trimmed = Substring(text)
        if trimmed.hasSuffix(".") { trimmed = trimmed.dropLast() }
        if trimmed.isEmpty {
            self = .root
            return
        }
        var labels: [[UInt8]] = []
        for part in trimmed.split(separator: ".", omittingEmptySubsequences: false) {
            let bytes = Array(part.utf8)
            guard (1...63).contains(bytes.count) else { return nil }
            labels.append(bytes)
        }
        guard labels.reduce(1, { $0 + $1.count + 1 }) <= 255 else { return nil }
        self.labels = labels
    }

    /// Length on the wire without compression.
    public var wireLength: Int { labels.reduce(1) { $0 + $1.count + 1 } }

    public var description: String {
        labels.isEmpty ? "." : labels.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".") + "."
    }

    /// The name lower-cased, dotted, without the trailing dot: the key for lookups.
    public var key: String {
        labels.map { String(decoding: $0.map(Self.lower), as: UTF8.self) }.joined(separator: ".")
    }

    @inline(__always) public static func lower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }

    public static func == (a: DNSName, b: DNSName) -> Bool {
        guard a.labels.count == b.labels.count else { return false }
        for (x, y) in zip(a.labels, b.labels) {
            guard x.count == y.count else { return false }
            for (p, q) in zip(x, y) where lower(p) != lower(q) { return false }
        }
        return true
    }

    /// The wire form lower-cased, hashed in one call (a byte at a time costs a `Hasher` round per byte). Names are
    /// at most 255 bytes; a longer one made from labels hashes its first 255, which equal names share too.
    public func hash(into hasher: inout Hasher) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buffer in
            var n = 0
            for label in labels {
                guard n + 1 + label.count <= 256 else { break }
                buffer[n] = UInt8(truncatingIfNeeded: label.count)
                n += 1
                for b in label {
                    buffer[n] = Self.lower(b)
                    n += 1
                }
            }
            hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[..<n])))
        }
    }

    /// Whether this name is `other` or below it.
    public func isSubdomain(of other: DNSName) -> Bool {
        guard labels.count >= other.labels.count else { return false }
        return DNSName(labels: Array(labels.suffix(other.labels.count))) == other
    }

    /// The labels in front of `zone` (this name must be at or below it).
    public func relative(to zone: DNSName) -> [[UInt8]] { Array(labels.prefix(labels.count - zone.labels.count)) }

    /// `prefix` labels followed by this name.
    public func prepending(_ prefix: [[UInt8]]) -> DNSName { DNSName(labels: prefix + labels) }
}
