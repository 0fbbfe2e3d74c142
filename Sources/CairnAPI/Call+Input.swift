import CairnCore
import CloudMapWire

/// Typed reads of a validated request. The model validator has already checked types and constraints, so
/// these only convert; a missing required member cannot reach them.
extension CloudMapAPI.Call {
    func string(_ key: String) -> String? { input[key]?.stringValue }

    func required(_ key: String) throws(CairnError) -> String {
        guard let value = input[key]?.stringValue else { throw CairnError.invalid("\(key) is required.") }
        return value
    }

    func int(_ key: String) -> Int? { input[key]?.intValue.map { Int($0) } }

    func tags(_ key: String = "Tags") -> [Tag] {
        (input[key]?.arrayValue ?? []).compactMap { tag in
            guard let key = tag["Key"]?.stringValue else { return nil }
            return Tag(key: key, value: tag["Value"]?.stringValue ?? "")
        }
    }

    static func records(_ value: JSONValue?) -> [DnsRecord]? {
        guard let list = value?["DnsRecords"]?.arrayValue else { return nil }
        return list.compactMap { record in
            guard let type = record["Type"]?.stringValue.flatMap(RecordType.init(rawValue:)), let ttl = record["TTL"]?.intValue
            else { return nil }
            return DnsRecord(type: type, ttl: ttl)
        }
    }

    static func healthCheck(_ value: JSONValue?) -> HealthCheckConfig? {
        guard let value, let type = value["Type"]?.stringValue.flatMap(HealthCheckType.init(rawValue:)) else { return nil }
        return HealthCheckConfig(
            type: type, resourcePath: value["ResourcePath"]?.stringValue,
            failureThreshold: value["FailureThreshold"]?.intValue.map { Int($0) })
    }

    /// `Properties.DnsProperties.SOA.TTL` of namespace create and update requests.
    func soaTTL(_ root: JSONValue?) -> Int64? {
        root?["Properties"]?["DnsProperties"]?["SOA"]?["TTL"]?.intValue
    }

    /// `MaxResults` bounded to the model's range (already validated) with AWS's default of 100.
    var maxResults: Int { int("MaxResults") ?? 100 }
}
