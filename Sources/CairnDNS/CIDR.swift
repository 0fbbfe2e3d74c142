import CairnCore

/// An address block such as `10.0.0.0/8` or `fd00::/8`: which clients a private namespace answers.
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    public let network: [UInt8]
    public let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let address = parts.first.flatMap({ IPAddress.ipv4(String($0)) ?? IPAddress.ipv6(String($0)) }) else { return nil }
        let bits = address.count * 8
        let prefix = parts.count == 2 ? Int(parts[1]) : bits
        guard let prefix, (0...bits).contains(prefix) else { return nil }
        self.network = address
        self.prefix = prefix
    }

    public func contains<C: Collection>(_ address: C) -> Bool where C.Element == UInt8 {
        guard address.count == network.count else { return false }
        var remaining = prefix
        for (a, n) in zip(address, network) where remaining > 0 {
            let take = min(8, remaining)
            let mask: UInt8 = take == 8 ? 0xFF : ~(0xFF >> UInt8(take))
            if a & mask != n & mask { return false }
            remaining -= take
        }
        return true
    }

    public var description: String {
        network.count == 4 ? "\(network.map(String.init).joined(separator: "."))/\(prefix)" : "ipv6/\(prefix)"
    }
}
