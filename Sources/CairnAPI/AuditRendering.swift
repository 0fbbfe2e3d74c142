import CairnCore
import CloudMapWire
import Synchronization

/// The audit record a call will produce, shared between the request and the writer that stores it.
final class AuditTicket: Sendable {
    private let storage: Mutex<(event: CloudTrailEvent, stored: Bool)>

    init(event: CloudTrailEvent) { storage = Mutex((event, false)) }

    var event: CloudTrailEvent {
        get { storage.withLock { $0.event } }
        set { storage.withLock { $0.event = newValue } }
    }

    /// Set once the record went to the writer with the change it describes.
    var stored: Bool {
        get { storage.withLock { $0.stored } }
        set { storage.withLock { $0.stored = newValue } }
    }
}

/// CloudTrail's rendering of requests and responses: member names in lower camel case (`ServiceId` →
/// `serviceId`), map keys as given.
enum AuditRendering {
    /// Members whose values are maps in the servicediscovery model; their keys are data, not member names.
    static let mapMembers: Set<String> = ["Attributes", "QueryParameters", "OptionalParameters", "Status", "Targets"]

    /// Longest `requestParameters` kept whole (bytes of JSON). A longer one is replaced by what says so: its size
    /// and its first `truncatedHead` characters, so a refused 1 MB request cannot cost 1 MB of audit trail.
    static let maxParameterBytes = 8 << 10
    static let truncatedHead = 1024
    /// Longest error message kept.
    static let maxErrorMessage = 2048

    static func parameters(_ input: JSONValue) -> String? {
        if case .object(let members) = input, members.isEmpty { return nil }
        return bounded(JSONWriter.renderString(camel(input)))
    }

    static func bounded(_ rendered: String) -> String {
        let size = rendered.utf8.count
        guard size > maxParameterBytes else { return rendered }
        return JSONWriter.renderString(
            .object([
                "cairnTruncated": .bool(true), "originalBytes": .int(Int64(size)),
                "head": .string(String(rendered.prefix(truncatedHead))),
            ]))
    }

    static func elements(_ output: JSONValue) -> String? {
        if case .object(let members) = output, members.isEmpty { return nil }
        return bounded(JSONWriter.renderString(camel(output)))
    }

    static func camel(_ value: JSONValue, keepKeys: Bool = false) -> JSONValue {
        switch value {
        case .object(let members):
            var result: [String: JSONValue] = [:]
            for (key, member) in members {
                result[keepKeys ? key : lowerCamel(key)] = camel(member, keepKeys: !keepKeys && mapMembers.contains(key))
            }
            return .object(result)
        case .array(let items):
            return .array(items.map { camel($0) })
        default:
            return value
        }
    }

    static func lowerCamel(_ key: String) -> String {
        guard let first = key.first, first.isUppercase else { return key }
        // CloudTrail lowers the first letter only: `DnsRecords` → `dnsRecords`, `TTL` → `tTL`.
        return first.lowercased() + key.dropFirst()
    }
}
