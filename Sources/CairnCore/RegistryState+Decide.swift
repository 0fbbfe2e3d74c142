import Foundation

/// The outcome of deciding one command: the events to record and what the caller gets back.
public struct Decision: Sendable, Equatable {
    public var events: [RegistryEvent]
    public var result: CommandResult
}

/// Deciding commands: validate against the current state and produce events. Pure: time and ids come in.
extension RegistryState {
    /// `fingerprint`: `command.fingerprintAhead`, when the caller worked it out before the writer took the command.
    public func decide(
        _ command: Command, context: RequestContext, now: Int64, rules: RegistryRules, ids: inout IdentifierGenerator,
        fingerprint: String? = nil
    ) throws(CairnError) -> Decision {
        switch command {
        case .createNamespace(let c): return try decideCreateNamespace(c, context, now, rules, &ids)
        case .updateNamespace(let c): return try decideUpdateNamespace(c, context, now)
        case .deleteNamespace(let id): return try decideDeleteNamespace(id, context, now)
        case .createService(let c): return try decideCreateService(c, context, now, rules, &ids)
        case .updateService(let c): return try decideUpdateService(c, context, now, rules)
        case .deleteService(let id):
            let service = try service(id, in: context)
            if !(instances[service.id]?.isEmpty ?? true) {
                throw CairnError(.resourceInUse, "Service \(service.id) still has registered instances; deregister them first.")
            }
            return Decision(events: [.serviceDeleted(id: service.id)], result: .none)
        case .registerInstance(let c): return try decideRegister(c, context, now, rules, fingerprint: fingerprint)
        case .deregisterInstance(let serviceId, let instanceId):
            let service = try service(serviceId, in: context)
            _ = try instance(instanceId, of: service)
            let op = newOperation(
                .DEREGISTER_INSTANCE, target: "instance/\(service.id)/\(instanceId)",
                targets: ["INSTANCE": instanceId, "SERVICE": service.id], context, now)
            return Decision(
                events: [.instanceDeleted(serviceId: service.id, instanceId: instanceId), .operationPut(op)],
                result: .operation(id: op.id))
        case .setCustomHealth(let serviceId, let instanceId, let status):
            let service = try service(serviceId, in: context)
            guard service.hasCustomHealth else {
                throw CairnError(.customHealthNotFound, "Service \(service.id) has no HealthCheckCustomConfig.")
            }
            let instance = try instance(instanceId, of: service)
            if instance.health == status { return Decision(events: [], result: .none) }
            return Decision(events: [.healthSet(serviceId: service.id, instanceId: instanceId, status: status)], result: .none)
        case .setProbedHealth(let serviceId, let instanceId, let registeredAt, let status):
            guard let service = services[serviceId], service.healthCheckConfig != nil,
                let instance = instances[serviceId]?[instanceId], instance.registeredAt == registeredAt, instance.health != status
            else { return Decision(events: [], result: .none) }
            return Decision(events: [.healthSet(serviceId: serviceId, instanceId: instanceId, status: status)], result: .none)
        case .renewLease(let serviceId, let instanceId):
            let service = try service(serviceId, in: context)
            let instance = try instance(instanceId, of: service)
            guard let seconds = Lease.seconds(instance.attributes) else {
                throw CairnError(
                    .invalidInput, "Instance \(instanceId) has no lease: register it with \(Lease.attribute) to make it ephemeral.")
            }
            return Decision(
                events: [.leaseRenewed(serviceId: service.id, instanceId: instanceId, at: now)],
                result: .lease(expiresAt: now + seconds * 1000))
        case .expireLease(let serviceId, let instanceId, let renewedAt):
            guard let service = services[serviceId], instances[serviceId]?[instanceId] != nil,
                leases[Lease.key(serviceId, instanceId)] == renewedAt
            else { return Decision(events: [], result: .none) }
            let op = newOperation(
                .DEREGISTER_INSTANCE, target: "instance/\(service.id)/\(instanceId)",
                targets: ["INSTANCE": instanceId, "SERVICE": service.id], RequestContext(region: service.region, account: service.account),
                now)
            return Decision(
                events: [.instanceDeleted(serviceId: service.id, instanceId: instanceId), .operationPut(op)],
                result: .operation(id: op.id))
        case .updateServiceAttributes(let serviceId, let attributes):
            var service = try service(serviceId, in: context)
            service.attributes.merge(attributes) { _, new in new }
            if service.attributes.count > rules.limits.serviceAttributesPerService {
                throw CairnError(
                    .serviceAttributesLimitExceeded,
                    "A service can have at most \(rules.limits.serviceAttributesPerService) attributes; this request would leave \(service.attributes.count)."
                )
            }
            return Decision(events: [.servicePut(service)], result: .none)
        case .deleteServiceAttributes(let serviceId, let keys):
            var service = try service(serviceId, in: context)
            for key in keys { service.attributes[key] = nil }
            return Decision(events: [.servicePut(service)], result: .none)
        case .tagResource(let arn, let tags):
            switch try resource(arn, in: context) {
            case .namespace(var ns):
                ns.tags = try Validation.mergedTags(ns.tags, adding: tags, limit: rules.limits.tagsPerResource, resource: arn)
                return Decision(events: [.namespacePut(ns)], result: .none)
            case .service(var service):
                service.tags = try Validation.mergedTags(service.tags, adding: tags, limit: rules.limits.tagsPerResource, resource: arn)
                return Decision(events: [.servicePut(service)], result: .none)
            }
        case .dnssec(let id, let change): return try decideDNSSEC(id, change, context)
        case .untagResource(let arn, let keys):
            switch try resource(arn, in: context) {
            case .namespace(var ns):
                ns.tags.removeAll { keys.contains($0.key) }
                return Decision(events: [.namespacePut(ns)], result: .none)
            case .service(var service):
                service.tags.removeAll { keys.contains($0.key) }
                return Decision(events: [.servicePut(service)], result: .none)
            }
        }
    }

    func decideDNSSEC(_ id: String, _ change: SigningKeyChange, _ context: RequestContext) throws(CairnError) -> Decision {
        var ns = try namespace(id, in: context)
        guard ns.type == .DNS_PUBLIC else {
            throw CairnError(.invalidInput, "DNSSEC signs public DNS namespaces; namespace \(ns.id) is \(ns.type.rawValue).")
        }
        var keys = ns.signingKeys ?? []
        switch change {
        case .enable(let key):
            if !keys.isEmpty { return Decision(events: [], result: .none) }
            keys = [key]
        case .roll(let key):
            guard keys.count == 1 else {
                throw CairnError(
                    .invalidInput,
                    keys.isEmpty
                        ? "Namespace \(ns.id) is not signed; enable DNSSEC first."
                        : "Namespace \(ns.id) is in a key roll already (keys \(keys.map { String($0.keyTag) }.joined(separator: ", "))); retire one first."
                )
            }
            guard keys[0].keyTag != key.keyTag else {
                throw CairnError(.invalidInput, "The new key has the key tag of the current one; roll again.")
            }
            keys.append(key)
        case .retire(let tag):
            guard keys.contains(where: { $0.keyTag == tag }) else {
                throw CairnError(.invalidInput, "Namespace \(ns.id) has no DNSSEC key with tag \(tag).")
            }
            guard keys.count > 1 else {
                throw CairnError(.invalidInput, "Key \(tag) is the only key of namespace \(ns.id); disable DNSSEC instead.")
            }
            keys.removeAll { $0.keyTag == tag }
        case .disable:
            if keys.isEmpty { return Decision(events: [], result: .none) }
            keys = []
        case .restore(let given):
            guard (1...2).contains(given.count), Set(given.map(\.keyTag)).count == given.count else {
                throw CairnError(.invalidInput, "A zone is signed with one or two keys of different key tags.")
            }
            if given == keys { return Decision(events: [], result: .none) }
            keys = given
        }
        ns.signingKeys = keys.isEmpty ? nil : keys
        return Decision(events: [.namespacePut(ns)], result: .none)
    }

    // MARK: Operations and idempotency

    /// An asynchronous operation that completes within the request: SUBMITTED → PENDING → SUCCESS (or FAIL).
    func newOperation(
        _ type: OperationType, target: String, targets: [String: String], _ context: RequestContext, _ now: Int64,
        failure: (code: String, message: String)? = nil
    ) -> Operation {
        var stamp = now
        var id = IdentifierGenerator.operationId(target: target, milliseconds: stamp)
        while operations[id] != nil {
            stamp += 1
            id = IdentifierGenerator.operationId(target: target, milliseconds: stamp)
        }
        let final: OperationStatus = failure == nil ? .SUCCESS : .FAIL
        return Operation(
            id: id, region: context.region, account: context.account, type: type, status: final,
            errorCode: failure?.code, errorMessage: failure?.message, createDate: now, updateDate: now, targets: targets,
            history: [
                OperationTransition(status: .SUBMITTED, at: now), OperationTransition(status: .PENDING, at: now),
                OperationTransition(status: final, at: now),
            ],
            sequence: sequence + 1)
    }

    static func fingerprint(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// A replay of an earlier request with the same token: the earlier result if the request is the same,
    /// `DuplicateRequest` naming the earlier operation if it differs, nil when the token is new.
    func replay(tokenKey: String?, fingerprint: String) throws(CairnError) -> String? {
        guard let tokenKey, let record = tokens[tokenKey] else { return nil }
        if record.fingerprint == fingerprint { return record.resultId }
        throw CairnError(
            .duplicateRequest, "The request token was already used for a different request (operation \(record.resultId)).",
            extra: ["DuplicateOperationId": record.resultId])
    }

    // MARK: Namespaces

    func decideCreateNamespace(
        _ c: CreateNamespace, _ context: RequestContext, _ now: Int64, _ rules: RegistryRules, _ ids: inout IdentifierGenerator
    ) throws(CairnError) -> Decision {
        var unsigned = c
        unsigned.creatorRequestId = nil
        let tokenKey = c.creatorRequestId.map { "namespace|\(context.region)|\(context.account)|\($0)" }
        // Only a token compares or records the fingerprint: without one it would be encoded for nothing.
        let print = tokenKey == nil ? "" : Self.fingerprint(unsigned)
        if let opId = try replay(tokenKey: tokenKey, fingerprint: print) { return Decision(events: [], result: .operation(id: opId)) }

        if c.type == .DNS_PRIVATE {
            guard let network = c.network, rules.networks.contains(network) else {
                throw CairnError.invalid(
                    "Vpc '\(c.network ?? "")' is not a configured network; configured networks: \(rules.networks.sorted().joined(separator: ", "))."
                )
            }
        }
        if c.type.isDNS { try Validation.checkDomainName(c.name) }
        let tags = try Validation.mergedTags([], adding: c.tags, limit: rules.limits.tagsPerResource, resource: c.name)
        let existing = namespaces(in: context)
        if existing.count >= rules.limits.namespacesPerRegion {
            throw CairnError(
                .resourceLimitExceeded, "The account already has \(existing.count) namespaces in \(context.region), the maximum.")
        }
        let taken = { (httpName: String) in
            self.httpNameIndex[Self.httpNameKey(region: context.region, account: context.account, httpName: httpName)]
        }
        var httpName = c.name
        var failure: (code: String, message: String)?
        if c.type == .HTTP {
            if let other = taken(c.name), let ns = namespaces[other] {
                throw CairnError(
                    .namespaceAlreadyExists, "A namespace with the name \(c.name) already exists.",
                    extra: ["NamespaceId": ns.id, "CreatorRequestId": ns.creatorRequestId ?? ""])
            }
        } else {
            if let clash = zoneClash(c, context) {
                failure = (
                    "CANNOT_CREATE_HOSTED_ZONE",
                    clash.name.lowercased() == c.name.lowercased() && clash.region == context.region
                        ? "A hosted zone for \(c.name) already exists\(c.network.map { " on network \($0)" } ?? "")."
                        : "\(c.name) overlaps the hosted zone \(clash.name)\(c.network.map { " on network \($0)" } ?? ""), which another region or account owns."
                )
            }
            while taken(httpName) != nil { httpName = "\(c.name)-\(ids.httpNameSuffix())" }
        }
        let nsId = ids.namespaceId()
        let op = newOperation(.CREATE_NAMESPACE, target: "namespace/\(nsId)", targets: ["NAMESPACE": nsId], context, now, failure: failure)
        var events: [RegistryEvent] = []
        if failure == nil {
            let ns = Namespace(
                id: nsId, region: context.region, account: context.account, name: c.name, type: c.type,
                description: c.description, httpName: httpName, hostedZoneId: c.type.isDNS ? ids.hostedZoneId() : nil,
                soaTTL: c.soaTTL, network: c.type == .DNS_PRIVATE ? c.network : nil, createDate: now,
                creatorRequestId: c.creatorRequestId, tags: tags)
            events.append(.namespacePut(ns))
        }
        events.append(.operationPut(op))
        if let tokenKey { events.append(.tokenRecorded(key: tokenKey, record: IdempotencyRecord(resultId: op.id, fingerprint: print))) }
        return Decision(events: events, result: .operation(id: op.id))
    }

    /// The zone that keeps a new DNS namespace from being served, across every region and account (one server
    /// answers for all of them): the same name twice among the public zones, or twice on one network, as AWS refuses
    /// within a region; and a parent or child of another owner's zone of the same kind (public, or private on the
    /// same network), which would take over part of that owner's names. One owner may nest its own zones.
    func zoneClash(_ c: CreateNamespace, _ context: RequestContext) -> Namespace? {
        func key(_ name: String) -> String { name.hasSuffix(".") ? String(name.lowercased().dropLast()) : name.lowercased() }
        let name = key(c.name)
        for ns in namespaces.values where ns.type == c.type && ns.network == (c.type == .DNS_PRIVATE ? c.network : nil) {
            let other = key(ns.name)
            if other == name { return ns }
            let sameOwner = ns.region == context.region && ns.account == context.account
            if !sameOwner && (name.hasSuffix("." + other) || other.hasSuffix("." + name)) { return ns }
        }
        return nil
    }

    func decideUpdateNamespace(_ c: UpdateNamespace, _ context: RequestContext, _ now: Int64) throws(CairnError) -> Decision {
        var unsigned = c
        unsigned.updaterRequestId = nil
        let tokenKey = c.updaterRequestId.map { "namespace-update|\(context.region)|\(context.account)|\($0)" }
        // Only a token compares or records the fingerprint: without one it would be encoded for nothing.
        let print = tokenKey == nil ? "" : Self.fingerprint(unsigned)
        if let opId = try replay(tokenKey: tokenKey, fingerprint: print) { return Decision(events: [], result: .operation(id: opId)) }
        var ns = try namespace(c.id, in: context)
        guard ns.type == c.type else {
            throw CairnError.invalid("Namespace \(ns.id) is of type \(ns.type.rawValue), not \(c.type.rawValue).")
        }
        if let description = c.description { ns.description = description }
        if let ttl = c.soaTTL { ns.soaTTL = ttl }
        let op = newOperation(.UPDATE_NAMESPACE, target: "namespace/\(ns.id)", targets: ["NAMESPACE": ns.id], context, now)
        var events: [RegistryEvent] = [.namespacePut(ns), .operationPut(op)]
        if let tokenKey { events.append(.tokenRecorded(key: tokenKey, record: IdempotencyRecord(resultId: op.id, fingerprint: print))) }
        return Decision(events: events, result: .operation(id: op.id))
    }

    func decideDeleteNamespace(_ id: String, _ context: RequestContext, _ now: Int64) throws(CairnError) -> Decision {
        let ns = try namespace(id, in: context)
        let count = serviceCount(ofNamespace: ns.id)
        if count > 0 {
            throw CairnError(.resourceInUse, "Namespace \(ns.id) still contains \(count) service(s); delete them first.")
        }
        let op = newOperation(.DELETE_NAMESPACE, target: "namespace/\(ns.id)", targets: ["NAMESPACE": ns.id], context, now)
        return Decision(events: [.namespaceDeleted(id: ns.id), .operationPut(op)], result: .operation(id: op.id))
    }

    // MARK: Services

    func decideCreateService(
        _ c: CreateService, _ context: RequestContext, _ now: Int64, _ rules: RegistryRules, _ ids: inout IdentifierGenerator
    ) throws(CairnError) -> Decision {
        var unsigned = c
        unsigned.creatorRequestId = nil
        let tokenKey = c.creatorRequestId.map { "service|\(context.region)|\(context.account)|\($0)" }
        // Only a token compares or records the fingerprint: without one it would be encoded for nothing.
        let print = tokenKey == nil ? "" : Self.fingerprint(unsigned)
        if let tokenKey, let record = tokens[tokenKey], record.fingerprint == print, let existing = services[record.resultId] {
            return Decision(events: [], result: .service(existing))
        }
        if let top = c.namespaceId, let legacy = c.dnsConfigNamespaceId, top != legacy {
            throw CairnError.invalid("NamespaceId and DnsConfig.NamespaceId name different namespaces; give one of them.")
        }
        guard let nsRef = c.namespaceId ?? c.dnsConfigNamespaceId else {
            throw CairnError.invalid("NamespaceId is required.")
        }
        let ns = try namespace(nsRef, in: context)
        let hasDnsConfig = c.dnsRecords != nil
        if ns.type == .HTTP && hasDnsConfig {
            throw CairnError.invalid("When you specify an HTTP service, you can't include a DnsConfig element.")
        }
        if c.httpOnly && hasDnsConfig {
            throw CairnError.invalid("A service of Type HTTP can't include a DnsConfig element.")
        }
        var dnsConfig: DnsConfig?
        if let records = c.dnsRecords {
            let policy = c.routingPolicy ?? .MULTIVALUE
            try Validation.checkRecords(records, routingPolicy: policy)
            dnsConfig = DnsConfig(routingPolicy: policy, records: records)
        }
        if let check = c.healthCheckConfig {
            if c.customHealth {
                throw CairnError.invalid("Specify either HealthCheckConfig or HealthCheckCustomConfig, not both.")
            }
            if dnsConfig?.has(.CNAME) == true {
                throw CairnError.invalid("A service with a CNAME record can't have a HealthCheckConfig.")
            }
            if check.type == .TCP && check.resourcePath != nil {
                throw CairnError.invalid("HealthCheckConfig.ResourcePath can't be set for a TCP health check.")
            }
            if rules.strict && ns.type != .DNS_PUBLIC {
                throw CairnError.invalid("HealthCheckConfig is supported only for services in public DNS namespaces.")
            }
        }
        if let existingId = serviceNameIndex[serviceNameKey(namespace: ns, name: c.name)], let existing = services[existingId] {
            throw CairnError(
                .serviceAlreadyExists, "A service named \(c.name) already exists in namespace \(ns.id).",
                extra: [
                    "ServiceId": existing.id, "ServiceArn": existing.arn, "CreatorRequestId": existing.creatorRequestId ?? "",
                ])
        }
        let tags = try Validation.mergedTags([], adding: c.tags, limit: rules.limits.tagsPerResource, resource: c.name)
        let service = Service(
            id: ids.serviceId(), region: ns.region, account: ns.account, name: c.name, namespaceId: ns.id,
            description: c.description, type: dnsConfig == nil ? .HTTP : .DNS_HTTP, dnsConfig: dnsConfig,
            healthCheckConfig: c.healthCheckConfig, hasCustomHealth: c.customHealth, createDate: now,
            creatorRequestId: c.creatorRequestId, createdByAccount: context.account, tags: tags, attributes: [:],
            instancesRevision: 0, viewVersion: 0)
        var events: [RegistryEvent] = [.servicePut(service)]
        if let tokenKey {
            events.append(.tokenRecorded(key: tokenKey, record: IdempotencyRecord(resultId: service.id, fingerprint: print)))
        }
        var returned = service
        returned.viewVersion = sequence + 1
        return Decision(events: events, result: .service(returned))
    }

    func decideUpdateService(
        _ c: UpdateService, _ context: RequestContext, _ now: Int64, _ rules: RegistryRules
    ) throws(CairnError) -> Decision {
        var service = try service(c.id, in: context)
        guard let ns = namespaces[service.namespaceId] else { throw CairnError(.serviceNotFound, "No service \(c.id).") }
        if ns.type == .HTTP {
            throw CairnError.invalid("UpdateService isn't supported for services in HTTP namespaces.")
        }
        if let records = c.dnsRecords {
            guard let current = service.dnsConfig else {
                throw CairnError.invalid("Service \(service.id) has no DnsConfig; DNS records can't be added to it.")
            }
            guard Set(records.map(\.type)) == Set(current.records.map(\.type)), records.count == current.records.count else {
                throw CairnError.invalid(
                    "DNS record types can't change after a service is created; only their TTLs can (current types: \(current.records.map(\.type.rawValue).joined(separator: ", ")))."
                )
            }
            service.dnsConfig = DnsConfig(routingPolicy: current.routingPolicy, records: records)
        }
        var events: [RegistryEvent] = []
        if let check = c.healthCheckConfig {
            if service.hasCustomHealth {
                throw CairnError.invalid("Service \(service.id) uses HealthCheckCustomConfig; HealthCheckConfig can't be added.")
            }
            if service.dnsConfig?.has(.CNAME) == true {
                throw CairnError.invalid("A service with a CNAME record can't have a HealthCheckConfig.")
            }
            if check.type == .TCP && check.resourcePath != nil {
                throw CairnError.invalid("HealthCheckConfig.ResourcePath can't be set for a TCP health check.")
            }
            if let current = service.healthCheckConfig, current.type != check.type {
                throw CairnError.invalid("The health check type of a service can't change (it is \(current.type.rawValue)).")
            }
            if rules.strict && ns.type != .DNS_PUBLIC {
                throw CairnError.invalid("HealthCheckConfig is supported only for services in public DNS namespaces.")
            }
            if service.healthCheckConfig == nil {
                // A new check starts every instance from UNKNOWN until its first result.
                for instance in instances(of: service.id).values where instance.health != .UNKNOWN {
                    events.append(.healthSet(serviceId: service.id, instanceId: instance.id, status: .UNKNOWN))
                }
            }
        }
        service.healthCheckConfig = c.healthCheckConfig
        service.description = c.description
        let op = newOperation(.UPDATE_SERVICE, target: "service/\(service.id)", targets: ["SERVICE": service.id], context, now)
        events.insert(.servicePut(service), at: 0)
        events.append(.operationPut(op))
        return Decision(events: events, result: .operation(id: op.id))
    }

    // MARK: Instances

    func decideRegister(
        _ c: RegisterInstance, _ context: RequestContext, _ now: Int64, _ rules: RegistryRules, fingerprint ahead: String? = nil
    ) throws(CairnError) -> Decision {
        let service = try service(c.serviceId, in: context)
        var unsigned = c
        unsigned.creatorRequestId = nil
        unsigned.serviceId = service.id
        let tokenKey = c.creatorRequestId.map { "register|\(service.id)|\($0)" }
        // Only a token compares or records the fingerprint: without one it would be encoded for nothing. One worked
        // out ahead is of the command as sent, the same value when the id named the service as its id (not its ARN).
        let print = tokenKey == nil ? "" : (c.serviceId == service.id ? ahead : nil) ?? Self.fingerprint(unsigned)
        if let opId = try replay(tokenKey: tokenKey, fingerprint: print) { return Decision(events: [], result: .operation(id: opId)) }
        guard let ns = namespaces[service.namespaceId] else { throw CairnError(.serviceNotFound, "No service \(c.serviceId).") }
        try Validation.checkAttributes(c.attributes, instanceId: c.instanceId, service: service, namespace: ns, limits: rules.limits)
        let existing = instances[service.id]?[c.instanceId]
        if existing == nil {
            let inService = instances[service.id]?.count ?? 0
            if inService >= rules.limits.instancesPerService {
                throw CairnError(
                    .resourceLimitExceeded, "Service \(service.id) already has \(inService) instances, the maximum.")
            }
            let inNamespace = instanceCount(ofNamespace: ns.id)
            if inNamespace >= rules.limits.instancesPerNamespace {
                throw CairnError(
                    .resourceLimitExceeded, "Namespace \(ns.id) already has \(inNamespace) instances, the maximum.")
            }
        }
        let health: HealthStatus
        if service.hasCustomHealth {
            health = c.attributes["AWS_INIT_HEALTH_STATUS"] == "UNHEALTHY" ? .UNHEALTHY : .HEALTHY
        } else {
            health = .UNKNOWN
        }
        let instance = Instance(
            id: c.instanceId, serviceId: service.id, attributes: c.attributes, creatorRequestId: c.creatorRequestId,
            createdByAccount: context.account, health: health, registeredAt: now)
        let op = newOperation(
            .REGISTER_INSTANCE, target: "instance/\(service.id)/\(c.instanceId)",
            targets: ["INSTANCE": c.instanceId, "SERVICE": service.id], context, now)
        var events: [RegistryEvent] = [.instancePut(instance), .operationPut(op)]
        if let tokenKey { events.append(.tokenRecorded(key: tokenKey, record: IdempotencyRecord(resultId: op.id, fingerprint: print))) }
        return Decision(events: events, result: .operation(id: op.id))
    }
}
