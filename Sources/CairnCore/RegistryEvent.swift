/// A fact recorded in the change log. Applying events is deterministic, so replaying the log rebuilds the state.
public enum RegistryEvent: Codable, Sendable, Equatable {
    case namespacePut(Namespace)
    case namespaceDeleted(id: String)
    case servicePut(Service)
    case serviceDeleted(id: String)
    case instancePut(Instance)
    case instanceDeleted(serviceId: String, instanceId: String)
    case healthSet(serviceId: String, instanceId: String, status: HealthStatus)
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
