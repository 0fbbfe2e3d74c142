/// A fact recorded in the change log. Applying events is deterministic, so replaying the log rebuilds the state.
public enum RegistryEvent: Codable, Sendable, Equatable {
    case namespacePut(Namespace)
    case namespaceDeleted(id: String)
    case servicePut(Service)
    case serviceDeleted(id: String)
    case instancePut(Instance)
    case instanceDeleted(serviceId: String, instanceId: String)
    case healthSet(serviceId: String, instanceId: String, status: HealthStatus)
    /// An ephemeral instance's lease was renewed at `at` (ms); changes no answer.
    case leaseRenewed(serviceId: String, instanceId: String, at: Int64)
    case operationPut(Operation)
    case tokenRecorded(key: String, record: IdempotencyRecord)
    /// Operation records past the retention limit are dropped, with the idempotency tokens that named them.
    case operationsPruned(ids: [String])
}

/// One entry of the change log: the events of one command, with its sequence number and time.
public struct ChangeLogEntry: Codable, Sendable, Equatable {
    public var sequence: UInt64
    public var time: Int64
    public var events: [RegistryEvent]

    public init(sequence: UInt64, time: Int64, events: [RegistryEvent]) {
        self.sequence = sequence
        self.time = time
        self.events = events
    }
}

/// Ephemeral instances, a Cairn extension: an instance registered with the attribute `CAIRN_LEASE_SECONDS` is
/// deregistered by Cairn when its lease is neither renewed nor retaken (by registering it again) within that many
/// seconds.
public enum Lease {
    public static let attribute = "CAIRN_LEASE_SECONDS"
    public static let shortest: Int64 = 5
    public static let longest: Int64 = 86_400

    /// The key of an instance in `RegistryState.leases` (service ids have no `/`).
    public static func key(_ serviceId: String, _ instanceId: String) -> String { serviceId + "/" + instanceId }

    /// The lease's length in seconds, when the attribute is a whole number in range; nil otherwise.
    public static func seconds(_ attributes: [String: String]) -> Int64? {
        guard let text = attributes[attribute], !text.isEmpty, text.utf8.count <= 6, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let value = Int64(text), (shortest...longest).contains(value)
        else { return nil }
        return value
    }
}
