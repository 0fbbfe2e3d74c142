/// What a decision read and what entries wrote, as keys, so a batch decided before the shared store's lock was held
/// can be kept when the entries other nodes appended meanwhile touch nothing it read (`Registry` on a cluster).
///
/// The rule is exact, not a heuristic: a command's decision depends only on the keys `reads` names, so when no
/// entry ordered before it writes one of them, deciding it after those entries gives the same events and result.
/// `SpeculationTests` checks that against deciding again, over random states and commands. A command that is not
/// listed here reads everything (nil), and any newer entry then makes the batch decided again under the lock.
///
/// Keys: `svc:` a service's record, `ns:` a namespace's, `live:S/I` whether an instance exists, `inst:S/I` its
/// record, `count:S` and `nscount:N` the instance counts the quotas read, `op:` an operation id, `token:` an
/// idempotency token.
extension RegistryState {
    /// The keys deciding `command` reads in this state; nil when it may read anything.
    public func speculativeReads(of command: Command, context: RequestContext) -> [String]? {
        switch command {
        case .registerInstance(let c):
            guard let service = try? service(c.serviceId, in: context), let ns = namespaces[service.namespaceId] else { return nil }
            var keys = ["svc:" + service.id, "ns:" + ns.id, "live:" + service.id + "/" + c.instanceId]
            if let token = c.creatorRequestId { keys.append("token:register|\(service.id)|\(token)") }
            if instances[service.id]?[c.instanceId] == nil {
                keys.append("count:" + service.id)
                keys.append("nscount:" + ns.id)
            }
            return keys
        case .deregisterInstance(let serviceId, let instanceId):
            guard let service = try? service(serviceId, in: context) else { return nil }
            return ["svc:" + service.id, "live:" + service.id + "/" + instanceId]
        case .setCustomHealth(let serviceId, let instanceId, _):
            guard let service = try? service(serviceId, in: context) else { return nil }
            return ["svc:" + service.id, "inst:" + service.id + "/" + instanceId]
        case .setProbedHealth(let serviceId, let instanceId, _, _):
            return ["svc:" + serviceId, "inst:" + serviceId + "/" + instanceId]
        case .renewLease(let serviceId, let instanceId):
            guard let service = try? service(serviceId, in: context) else { return nil }
            return ["svc:" + service.id, "inst:" + service.id + "/" + instanceId]
        case .expireLease(let serviceId, let instanceId, _):
            return ["svc:" + serviceId, "inst:" + serviceId + "/" + instanceId]
        default:
            return nil
        }
    }

    /// The keys `events` read as well as wrote: an operation id is chosen because no operation has it, a token is
    /// recorded because none was.
    public static func speculativeReads(ofEvents events: [RegistryEvent]) -> [String] {
        var keys: [String] = []
        for event in events {
            switch event {
            case .operationPut(let op): keys.append("op:" + op.id)
            case .tokenRecorded(let key, _): keys.append("token:" + key)
            case .operationsPruned(let ids): keys += ids.map { "op:" + $0 }
            default: break
            }
        }
        return keys
    }

    /// The keys `entries`, applied in order to this state, write; nil when they may change anything a decision
    /// reads (operations pruned: which ids are taken and which tokens stand).
    public func speculativeWrites(of entries: some Sequence<ChangeLogEntry>) -> Set<String>? {
        var keys = Set<String>()
        // Whether an instance exists after the entries so far, where they changed it.
        var present: [String: Bool] = [:]
        var namespaceOf: [String: String] = [:]
        func namespace(of serviceId: String) -> String? { namespaceOf[serviceId] ?? services[serviceId]?.namespaceId }
        for entry in entries {
            for event in entry.events {
                switch event {
                case .namespacePut(let ns): keys.insert("ns:" + ns.id)
                case .namespaceDeleted(let id): keys.insert("ns:" + id)
                case .servicePut(let service):
                    keys.insert("svc:" + service.id)
                    namespaceOf[service.id] = service.namespaceId
                case .serviceDeleted(let id): keys.insert("svc:" + id)
                case .instancePut(let instance):
                    let key = instance.serviceId + "/" + instance.id
                    keys.insert("inst:" + key)
                    if !(present[key] ?? (instances[instance.serviceId]?[instance.id] != nil)) {
                        guard let ns = namespace(of: instance.serviceId) else { return nil }
                        keys.insert("live:" + key)
                        keys.insert("count:" + instance.serviceId)
                        keys.insert("nscount:" + ns)
                    }
                    present[key] = true
                case .instanceDeleted(let serviceId, let instanceId):
                    let key = serviceId + "/" + instanceId
                    guard let ns = namespace(of: serviceId) else { return nil }
                    keys.insert("inst:" + key)
                    keys.insert("live:" + key)
                    keys.insert("count:" + serviceId)
                    keys.insert("nscount:" + ns)
                    present[key] = false
                case .healthSet(let serviceId, let instanceId, _), .leaseRenewed(let serviceId, let instanceId, _):
                    keys.insert("inst:" + serviceId + "/" + instanceId)
                case .operationPut(let op): keys.insert("op:" + op.id)
                case .tokenRecorded(let key, _): keys.insert("token:" + key)
                case .operationsPruned: return nil
                }
            }
        }
        return keys
    }
}

extension ChangeLogEntry {
    /// The entry moved `by` places later in the log, with the operations it records (their sequence is the entry's).
    public func renumbered(by offset: UInt64) -> ChangeLogEntry {
        guard offset > 0 else { return self }
        var moved = self
        moved.sequence += offset
        moved.events = events.map { event in
            guard case .operationPut(let op) = event else { return event }
            return .operationPut(op.recorded(at: op.sequence + offset))
        }
        return moved
    }
}

extension Operation {
    /// The same operation recorded by the change with sequence number `sequence`.
    func recorded(at sequence: UInt64) -> Operation {
        Operation(
            id: id, region: region, account: account, type: type, status: status, errorCode: errorCode, errorMessage: errorMessage,
            createDate: createDate, updateDate: updateDate, targets: targets, history: history, sequence: sequence)
    }
}
