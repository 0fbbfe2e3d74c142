/// ARNs of namespaces and services: `arn:<partition>:servicediscovery:<region>:<account>:<kind>/<id>`.
public enum ARN {
    /// Whether an ARN names a namespace (`…:namespace/ID`), by its bytes: Foundation's `contains` costs more than
    /// the audit record that asks.
    public static func isNamespace(_ arn: String) -> Bool {
        let needle = Array(":namespace/".utf8)
        var arn = arn
        return arn.withUTF8 { bytes in
            guard bytes.count >= needle.count else { return false }
            for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
                if (1..<needle.count).allSatisfy({ bytes[start + $0] == needle[$0] }) { return true }
            }
            return false
        }
    }

    public static func partition(for region: String) -> String {
        if region.hasPrefix("cn-") { return "aws-cn" }
        if region.hasPrefix("us-gov-") { return "aws-us-gov" }
        return "aws"
    }

    public static func namespace(region: String, account: String, id: String) -> String {
        "arn:\(partition(for: region)):servicediscovery:\(region):\(account):namespace/\(id)"
    }

    public static func service(region: String, account: String, id: String) -> String {
        "arn:\(partition(for: region)):servicediscovery:\(region):\(account):service/\(id)"
    }

    public struct Parsed: Equatable, Sendable {
        public var region: String
        public var account: String
        public var kind: String
        public var id: String
    }

    /// Parses a servicediscovery ARN; nil when `text` is not one.
    public static func parse(_ text: String) -> Parsed? {
        let parts = text.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "arn", parts[2] == "servicediscovery",
            partition(for: String(parts[3])) == parts[1]
        else { return nil }
        let resource = parts[5].split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard resource.count == 2, !resource[1].isEmpty else { return nil }
        return Parsed(region: String(parts[3]), account: String(parts[4]), kind: String(resource[0]), id: String(resource[1]))
    }
}
