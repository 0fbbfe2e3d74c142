import CairnCore
import Testing

/// A registry state driven by commands, as the writer drives it, with a fixed clock and seed.
struct Harness {
    var state = RegistryState()
    var ids = IdentifierGenerator(seed: 1)
    var now: Int64 = 1_700_000_000_000
    var rules = RegistryRules()
    let context = RequestContext(region: "us-east-1", account: "000000000000")

    @discardableResult
    mutating func run(_ command: Command, in context: RequestContext? = nil) throws(CairnError) -> CommandResult {
        now += 1
        let decision = try state.decide(command, context: context ?? self.context, now: now, rules: rules, ids: &ids)
        if !decision.events.isEmpty {
            state.apply(ChangeLogEntry(sequence: state.sequence + 1, time: now, events: decision.events))
        }
        return decision.result
    }

    mutating func namespace(_ name: String, type: NamespaceType = .HTTP, token: String? = nil) throws -> String {
        guard
            case .operation(let op) = try run(
                .createNamespace(
                    CreateNamespace(type: type, name: name, network: type == .DNS_PRIVATE ? "default" : nil, creatorRequestId: token)))
        else { throw CairnError.invalid("no operation") }
        return try #require(state.operations[op]?.targets["NAMESPACE"])
    }

    mutating func service(_ name: String, in ns: String, records: [DnsRecord]? = nil, custom: Bool = false) throws -> Service {
        guard
            case .service(let s) = try run(
                .createService(CreateService(name: name, namespaceId: ns, dnsRecords: records, customHealth: custom)))
        else { throw CairnError.invalid("no service") }
        return s
    }

    func code(_ body: () throws -> Void) -> CairnError.Code? {
        do {
            try body()
            return nil
        } catch { return (error as? CairnError)?.code }
    }
}

@Suite("Registry state machine")
struct RegistryStateTests {
    @Test("An asynchronous operation passes SUBMITTED → PENDING → SUCCESS with timestamps")
    func operationLifecycle() throws {
        var h = Harness()
        let ns = try h.namespace("demo")
        let op = try #require(h.state.operations.values.first)
        #expect(op.history.map(\.status) == [.SUBMITTED, .PENDING, .SUCCESS])
        #expect(op.status == .SUCCESS && op.targets == ["NAMESPACE": ns] && op.createDate <= op.updateDate)
    }

    @Test("A clashing private zone fails its operation and creates nothing")
    func failedOperation() throws {
        var h = Harness()
        _ = try h.namespace("corp.local", type: .DNS_PRIVATE)
        guard
            case .operation(let id) = try h.run(
                .createNamespace(CreateNamespace(type: .DNS_PRIVATE, name: "CORP.local", network: "default")))
        else { Issue.record("no operation"); return }
        let op = try #require(h.state.operations[id])
        #expect(op.status == .FAIL && op.errorCode == "CANNOT_CREATE_HOSTED_ZONE")
        #expect(op.history.map(\.status) == [.SUBMITTED, .PENDING, .FAIL])
        #expect(h.state.namespaces.count == 1)
    }

    @Test("Replaying a token returns the first result; another request with it is DuplicateRequest")
    func idempotency() throws {
        var h = Harness()
        let first = try h.run(.createNamespace(CreateNamespace(type: .HTTP, name: "a", creatorRequestId: "t")))
        let sequence = h.state.sequence
        #expect(try h.run(.createNamespace(CreateNamespace(type: .HTTP, name: "a", creatorRequestId: "t"))) == first)
        #expect(h.state.sequence == sequence, "a replay writes nothing")
        var failure: CairnError?
        do { try h.run(.createNamespace(CreateNamespace(type: .HTTP, name: "b", creatorRequestId: "t"))) } catch { failure = error }
        #expect(failure?.code == .duplicateRequest)
        if case .operation(let id) = first { #expect(failure?.extra["DuplicateOperationId"] == id) }
    }

    @Test("A RegisterInstance fingerprint worked out ahead decides as the one the writer encodes, by id or by ARN")
    func fingerprintAhead() throws {
        var h = Harness()
        let created = try h.service("api", in: try h.namespace("shop", type: .HTTP))
        let (service, arn) = (created.id, created.arn)
        var ids = IdentifierGenerator(seed: 3)
        for named in [service, arn] {
            let command = Command.registerInstance(
                RegisterInstance(serviceId: named, instanceId: "i-1", attributes: ["a": "1"], creatorRequestId: "tok-\(named.count)"))
            let ahead = try #require(command.fingerprintAhead)
            let rules = RegistryRules()
            var a = ids
            var b = ids
            let plain = try h.state.decide(command, context: h.context, now: 5, rules: rules, ids: &a)
            let fast = try h.state.decide(command, context: h.context, now: 5, rules: rules, ids: &b, fingerprint: ahead)
            #expect(plain == fast)
            ids = a
        }
        #expect(Command.registerInstance(RegisterInstance(serviceId: service, instanceId: "i", attributes: [:])).fingerprintAhead == nil)
        // A replay with the token recognised, a different request with it refused, as without the fingerprint ahead.
        let first = Command.registerInstance(
            RegisterInstance(serviceId: service, instanceId: "i-2", attributes: [:], creatorRequestId: "t"))
        let decided = try h.state.decide(
            first, context: h.context, now: 6, rules: RegistryRules(), ids: &ids, fingerprint: first.fingerprintAhead)
        h.state.apply(ChangeLogEntry(sequence: h.state.sequence + 1, time: 6, events: decided.events))
        let again = try h.state.decide(
            first, context: h.context, now: 7, rules: RegistryRules(), ids: &ids, fingerprint: first.fingerprintAhead)
        #expect(again.events.isEmpty && again.result == decided.result)
        let other = Command.registerInstance(
            RegisterInstance(serviceId: service, instanceId: "i-3", attributes: [:], creatorRequestId: "t"))
        #expect(
            h.code {
                _ = try h.state.decide(
                    other, context: h.context, now: 8, rules: RegistryRules(), ids: &ids, fingerprint: other.fingerprintAhead)
            } == .duplicateRequest)
    }

    @Test("Names: HTTP names clash exactly, DNS service names case-insensitively")
    func names() throws {
        var h = Harness()
        let http = try h.namespace("demo")
        #expect(h.code { try h.run(.createNamespace(CreateNamespace(type: .HTTP, name: "demo"))) } == .namespaceAlreadyExists)
        _ = try h.service("Web", in: http)
        _ = try h.service("web", in: http)
        let dns = try h.namespace("corp.local", type: .DNS_PRIVATE)
        _ = try h.service("Web", in: dns)
        #expect(h.code { try h.run(.createService(CreateService(name: "WEB", namespaceId: dns))) } == .serviceAlreadyExists)
    }

    @Test("Deletes are refused while something depends on the resource")
    func resourceInUse() throws {
        var h = Harness()
        let ns = try h.namespace("demo")
        let s = try h.service("web", in: ns)
        try h.run(.registerInstance(RegisterInstance(serviceId: s.id, instanceId: "i", attributes: [:])))
        #expect(h.code { try h.run(.deleteNamespace(id: ns)) } == .resourceInUse)
        #expect(h.code { try h.run(.deleteService(id: s.id)) } == .resourceInUse)
        try h.run(.deregisterInstance(serviceId: s.id, instanceId: "i"))
        try h.run(.deleteService(id: s.id))
        try h.run(.deleteNamespace(id: ns))
        #expect(h.state.namespaces.isEmpty && h.state.services.isEmpty)
    }

    @Test("InstancesRevision moves on (de)registration, never on health")
    func revisions() throws {
        var h = Harness()
        let ns = try h.namespace("demo")
        let s = try h.service("web", in: ns, custom: true)
        try h.run(.registerInstance(RegisterInstance(serviceId: s.id, instanceId: "i", attributes: [:])))
        let afterRegister = try #require(h.state.services[s.id]).instancesRevision
        let view = try #require(h.state.services[s.id]).viewVersion
        try h.run(.setCustomHealth(serviceId: s.id, instanceId: "i", status: .UNHEALTHY))
        #expect(h.state.services[s.id]?.instancesRevision == afterRegister)
        #expect((h.state.services[s.id]?.viewVersion ?? 0) > view)
        #expect(h.state.instances(of: s.id)["i"]?.health == .UNHEALTHY)
        try h.run(.deregisterInstance(serviceId: s.id, instanceId: "i"))
        #expect((h.state.services[s.id]?.instancesRevision ?? 0) > afterRegister)
    }

    @Test("Resources live in their region")
    func regions() throws {
        var h = Harness()
        let ns = try h.namespace("demo")
        let elsewhere = RequestContext(region: "eu-west-1", account: "000000000000")
        #expect(h.code { _ = try h.state.namespace(ns, in: elsewhere) } == .namespaceNotFound)
        _ = try h.run(.createNamespace(CreateNamespace(type: .HTTP, name: "demo")), in: elsewhere)
        #expect(h.state.namespaces(in: elsewhere).count == 1)
    }

    @Test("The state survives encoding (checkpoints) with its indexes rebuilt")
    func checkpointRoundTrip() throws {
        var h = Harness()
        let ns = try h.namespace("demo")
        let s = try h.service("web", in: ns)
        try h.run(.registerInstance(RegisterInstance(serviceId: s.id, instanceId: "i", attributes: ["a": "b"])))
        let decoded = try RegistryCodec.decodeState(try RegistryCodec.encode(h.state))
        #expect(decoded.sequence == h.state.sequence)
        let context = h.context
        #expect(try decoded.service(named: "web", in: decoded.namespace(httpName: "demo", in: context)).id == s.id)
        #expect(decoded.instanceCount(ofNamespace: ns) == 1)
    }

    @Test("Old operation records are pruned past the retention limit, with their tokens")
    func pruning() throws {
        var h = Harness()
        let ns = try h.namespace("demo")
        let s = try h.service("web", in: ns)
        for i in 0..<30 {
            try h.run(.registerInstance(RegisterInstance(serviceId: s.id, instanceId: "i\(i)", attributes: [:], creatorRequestId: "t\(i)")))
        }
        #expect(h.state.pruningEntry(keeping: 40, time: 0) == nil)
        let entry = try #require(h.state.pruningEntry(keeping: 10, time: h.now))
        h.state.apply(entry)
        #expect(h.state.operations.count == 10)
        #expect(h.state.operations.values.allSatisfy { $0.type == .REGISTER_INSTANCE })
        #expect(h.state.tokens.count == 10, "only the tokens of the 10 operations kept remain")
        #expect(h.state.instances(of: s.id).count == 30, "pruning touches only operation records")
    }
}
