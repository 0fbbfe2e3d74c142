/// The regions a server accepts in SigV4 credential scopes. Every resource is scoped to its region, so an
/// unchecked region would be a free new tenant: its own quotas, its own throttle buckets, its own names.
public struct RegionSet: Sendable, Equatable {
    /// Every region botocore 1.43 knows for servicediscovery, in all partitions: the default.
    public static let aws: [String] = [
        "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
        "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
        "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1", "cn-north-1", "cn-northwest-1", "eu-central-1",
        "eu-central-2", "eu-isoe-west-1", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3",
        "eusc-de-east-1", "il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1", "us-east-1", "us-east-2",
        "us-gov-east-1", "us-gov-west-1", "us-iso-east-1", "us-iso-west-1", "us-isob-east-1", "us-isob-west-1",
        "us-isof-east-1", "us-isof-south-1", "us-west-1", "us-west-2",
    ]

    /// Exact names, and prefixes from entries that end in `*` (`test-*`).
    public private(set) var names: Set<String>
    public private(set) var prefixes: [String]

    /// `entries` as configured; nil when one is not a region name or a prefix pattern.
    public init?(_ entries: [String]) {
        names = []
        prefixes = []
        for entry in entries {
            if entry.hasSuffix("*") {
                let prefix = String(entry.dropLast())
                guard !prefix.isEmpty, prefix.utf8.allSatisfy(Self.allowed) else { return nil }
                prefixes.append(prefix)
            } else {
                guard Self.wellFormed(entry) else { return nil }
                names.insert(entry)
            }
        }
        if names.isEmpty && prefixes.isEmpty { return nil }
    }

    public static let `default` = RegionSet(aws)!

    /// Lower-case letters, digits and inner hyphens, 1 to 32 characters.
    public static func wellFormed(_ region: String) -> Bool {
        let bytes = region.utf8
        guard (1...32).contains(bytes.count), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy(allowed)
    }

    static func allowed(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-")
    }

    public func contains(_ region: String) -> Bool {
        guard Self.wellFormed(region) else { return false }
        return names.contains(region) || prefixes.contains { region.hasPrefix($0) }
    }

    /// The configured entries, for messages and docs.
    public var entries: [String] { names.sorted() + prefixes.map { $0 + "*" } }
}
