import HashTreeCollections

/// The whole registry as an immutable value: namespaces, services, instances, operations, idempotency tokens.
/// It changes only by applying change-log events, so replaying the log rebuilds it exactly.
///
/// The tables are persistent hash tries (`TreeDictionary`): the writer changes its copy while readers hold the
/// published one, and a change copies only the path to what it touches, so a commit costs O(log n) in the size
/// of the registry, not O(n) as a copy-on-write `Dictionary` would (issue 10, item 8).
public struct RegistryState: Sendable, Codable {
    public private(set) var sequence: UInt64 = 0
    public private(set) var namespaces: Table<Namespace> = [:]
    public private(set) var services: Table<Service> = [:]
    /// Service id → instance id → instance.
    public private(set) var instances: Table<Table<Instance>> = [:]
    public private(set) var operations: Table<Operation> = [:]
    public private(set) var tokens: Table<IdempotencyRecord> = [:]

    // Indexes, rebuilt from the above; never encoded.
    /// `region|account|httpName` → namespace id.
    private(set) var httpNameIndex: Table<String> = [:]
    /// `namespaceId|name key` → service id (name key lower-cased in DNS namespaces).
    private(set) var serviceNameIndex: Table<String> = [:]
    /// Namespace id → number of services / instances in it.
    private(set) var servicesPerNamespace: Table<Int> = [:]
    private(set) var instancesPerNamespace: Table<Int> = [:]
    /// Namespace id → ids of its services.
    public private(set) var servicesByNamespace: Table<Set<String>> = [:]
    /// Sequence number of the last namespace change; caches of the zone list key on it.
    public private(set) var namespacesVersion: UInt64 = 0
    /// Sequence number of the last service creation, change or deletion (not instance changes).
    public private(set) var servicesVersion: UInt64 = 0
    /// Ephemeral instances (`Lease.attribute`): `serviceId/instanceId` → when the lease was last taken or renewed
    /// (ms). Not in checkpoints: after a load it starts at each instance's registration, and the lease expirer waits
    /// one lease from its own start before it expires anything, so a renewal a checkpoint did not keep is never
    /// needed to keep an instance alive.
    public private(set) var leases: Table<Int64> = [:]

    private enum CodingKeys: String, CodingKey {
        case sequence, namespaces, services, instances, operations, tokens
    }

    public init() {}

    init(
        sequence: UInt64, namespaces: Table<Namespace>, services: Table<Service>, instances: Table<Table<Instance>>,
        operations: Table<Operation>, tokens: Table<IdempotencyRecord>
    ) {
        self.sequence = sequence
        self.namespaces = namespaces
        self.services = services
        self.instances = instances
        self.operations = operations
        self.tokens = tokens
        rebuildIndexes()
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sequence = try c.decode(UInt64.self, forKey: .sequence)
        namespaces = try c.decode(Table<Namespace>.self, forKey: .namespaces)
        services = try c.decode(Table<Service>.self, forKey: .services)
        instances = try c.decode(Table<Table<Instance>>.self, forKey: .instances)
        operations = try c.decode(Table<Operation>.self, forKey: .operations)
        tokens = try c.decode(Table<IdempotencyRecord>.self, forKey: .tokens)
        rebuildIndexes()
    }

    static func httpNameKey(region: String, account: String, httpName: String) -> String {
        "\(region)|\(account)|\(httpName)"
    }

    func serviceNameKey(namespace: Namespace, name: String) -> String {
        namespace.type.isDNS ? "\(namespace.id)|\(name.lowercased())" : "\(namespace.id)|\(name)"
    }

    mutating func rebuildIndexes() {
        httpNameIndex = [:]
        serviceNameIndex = [:]
        servicesPerNamespace = [:]
        instancesPerNamespace = [:]
        servicesByNamespace = [:]
        namespacesVersion = sequence
        servicesVersion = sequence
        leases = [:]
        for (serviceId, table) in instances {
            for instance in table.values where instance.attributes[Lease.attribute] != nil {
                leases[Lease.key(serviceId, instance.id)] = instance.registeredAt
            }
        }
        for ns in namespaces.values {
            httpNameIndex[Self.httpNameKey(region: ns.region, account: ns.account, httpName: ns.httpName)] = ns.id
        }
        for service in services.values {
            if let ns = namespaces[service.namespaceId] {
                serviceNameIndex[serviceNameKey(namespace: ns, name: service.name)] = service.id
            }
            servicesPerNamespace[service.namespaceId, default: 0] += 1
            servicesByNamespace[service.namespaceId, default: []].insert(service.id)
            instancesPerNamespace[service.namespaceId, default: 0] += instances[service.id]?.count ?? 0
        }
    }

    /// An entry that drops the oldest operation records once there are 10% more than `limit`; nil otherwise.
    public func pruningEntry(keeping limit: Int, time: Int64) -> ChangeLogEntry? {
        guard operations.count > limit + limit / 10 else { return nil }
        let oldest = operations.values.sorted { ($0.sequence, $0.id) < ($1.sequence, $1.id) }.prefix(operations.count - limit)
        return ChangeLogEntry(sequence: sequence + 1, time: time, events: [.operationsPruned(ids: oldest.map(\.id))])
    }

    /// Applies the events of one change-log entry.
    public mutating func apply(_ entry: ChangeLogEntry) {
        precondition(entry.sequence > sequence, "change log entries must be applied in order")
        sequence = entry.sequence
        for event in entry.events { apply(event, sequence: entry.sequence) }
    }

    private mutating func apply(_ event: RegistryEvent, sequence seq: UInt64) {
        switch event {
        case .namespacePut(let ns):
            if let old = namespaces[ns.id] {
                httpNameIndex[Self.httpNameKey(region: old.region, account: old.account, httpName: old.httpName)] = nil
            }
            namespaces[ns.id] = ns
            httpNameIndex[Self.httpNameKey(region: ns.region, account: ns.account, httpName: ns.httpName)] = ns.id
            namespacesVersion = seq
        case .namespaceDeleted(let id):
            if let old = namespaces.removeValue(forKey: id) {
                httpNameIndex[Self.httpNameKey(region: old.region, account: old.account, httpName: old.httpName)] = nil
            }
            servicesPerNamespace[id] = nil
            instancesPerNamespace[id] = nil
            servicesByNamespace[id] = nil
            namespacesVersion = seq
        case .servicePut(var service):
            service.viewVersion = seq
            servicesVersion = seq
            if services[service.id] == nil {
                servicesPerNamespace[service.namespaceId, default: 0] += 1
                servicesByNamespace[service.namespaceId, default: []].insert(service.id)
            }
            services[service.id] = service
            if let ns = namespaces[service.namespaceId] {
                serviceNameIndex[serviceNameKey(namespace: ns, name: service.name)] = service.id
            }
        case .serviceDeleted(let id):
            servicesVersion = seq
            if let old = services.removeValue(forKey: id) {
                if let ns = namespaces[old.namespaceId] {
                    serviceNameIndex[serviceNameKey(namespace: ns, name: old.name)] = nil
                }
                servicesPerNamespace[old.namespaceId, default: 1] -= 1
                servicesByNamespace[old.namespaceId]?.remove(id)
                instancesPerNamespace[old.namespaceId, default: 0] -= instances[id]?.count ?? 0
            }
            if let gone = instances[id] {
                for instanceId in gone.keys { leases[Lease.key(id, instanceId)] = nil }
            }
            instances[id] = nil
        case .instancePut(let instance):
            guard var service = services[instance.serviceId] else { return }
            if instances[instance.serviceId]?[instance.id] == nil {
                instancesPerNamespace[service.namespaceId, default: 0] += 1
            }
            instances[instance.serviceId, default: [:]][instance.id] = instance
            leases[Lease.key(instance.serviceId, instance.id)] = instance.attributes[Lease.attribute] == nil ? nil : instance.registeredAt
            service.instancesRevision = seq
            service.viewVersion = seq
            services[service.id] = service
        case .instanceDeleted(let serviceId, let instanceId):
            guard var service = services[serviceId] else { return }
            if instances[serviceId]?.removeValue(forKey: instanceId) != nil {
                instancesPerNamespace[service.namespaceId, default: 1] -= 1
            }
            leases[Lease.key(serviceId, instanceId)] = nil
            if instances[serviceId]?.isEmpty == true { instances[serviceId] = nil }
            service.instancesRevision = seq
            service.viewVersion = seq
            services[service.id] = service
        case .healthSet(let serviceId, let instanceId, let status):
            guard instances[serviceId]?[instanceId] != nil else { return }
            instances[serviceId]![instanceId]!.health = status
            services[serviceId]?.viewVersion = seq
        case .leaseRenewed(let serviceId, let instanceId, let at):
            // Nothing a reader sees changes: no revision moves.
            let key = Lease.key(serviceId, instanceId)
            if let renewed = leases[key], at > renewed { leases[key] = at }
        case .operationPut(let op):
            operations[op.id] = op
        case .tokenRecorded(let key, let record):
            tokens[key] = record
        case .operationsPruned(let ids):
            let gone = Set(ids)
            for id in ids { operations[id] = nil }
            tokens = tokens.filter { !gone.contains($0.value.resultId) }
        }
    }
}

/// A registry table keyed by id: a persistent hash trie, so snapshots share everything a change did not touch.
public typealias Table<Value> = TreeDictionary<String, Value>
