import CairnCore

/// A registry state built through the state machine, as the writer builds it, with a fixed clock and seed.
public struct RegistryFixture {
    public private(set) var state = RegistryState()
    public var rules: RegistryRules
    public let context: RequestContext
    var ids = IdentifierGenerator(seed: 1)
    var now: Int64 = 1_700_000_000_000

    public init(rules: RegistryRules = RegistryRules(networks: ["default", "lab"]), region: String = "us-east-1") {
        self.rules = rules
        self.context = RequestContext(region: region, account: "000000000000")
    }

    @discardableResult
    public mutating func run(_ command: Command) throws(CairnError) -> CommandResult {
        now += 1
        let decision = try state.decide(command, context: context, now: now, rules: rules, ids: &ids)
        if !decision.events.isEmpty { state.apply(ChangeLogEntry(sequence: state.sequence + 1, time: now, events: decision.events)) }
        return decision.result
    }

    /// Creates a namespace and returns its id.
    public mutating func namespace(_ name: String, type: NamespaceType, network: String? = nil) throws -> String {
        guard case .operation(let op) = try run(.createNamespace(CreateNamespace(type: type, name: name, network: network))),
            let id = state.operations[op]?.targets["NAMESPACE"]
        else { throw CairnError.invalid("namespace \(name) was not created") }
        return id
    }

    /// Creates a service with the given record types and returns its id.
    public mutating func service(
        _ name: String, in namespace: String, records: [RecordType]? = nil, policy: RoutingPolicy = .MULTIVALUE, ttl: Int64 = 10,
        customHealth: Bool = false
    ) throws -> String {
        let command = CreateService(
            name: name, namespaceId: namespace, dnsRecords: records?.map { DnsRecord(type: $0, ttl: ttl) }, routingPolicy: policy,
            customHealth: customHealth)
        guard case .service(let service) = try run(.createService(command)) else { throw CairnError.invalid("no service") }
        return service.id
    }

    public mutating func register(_ instance: String, in service: String, _ attributes: [String: String]) throws {
        try run(.registerInstance(RegisterInstance(serviceId: service, instanceId: instance, attributes: attributes)))
    }

    public mutating func deregister(_ instance: String, in service: String) throws {
        try run(.deregisterInstance(serviceId: service, instanceId: instance))
    }

    public mutating func setHealth(_ instance: String, in service: String, _ status: HealthStatus) throws {
        try run(.setCustomHealth(serviceId: service, instanceId: instance, status: status))
    }
}
