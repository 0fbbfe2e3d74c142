import CairnCore
import CairnTesting
import Logging
import Testing

@testable import CairnHealth

@Suite("Which instances are probed, and how")
struct ProbeTargetTests {
    @Test("Targets come from services with HealthCheckConfig, with Route 53's defaults")
    func targets() throws {
        var f = RegistryFixture()
        let ns = try f.namespace("example.com", type: .DNS_PUBLIC)
        guard
            case .service(let checked) = try f.run(
                .createService(
                    CreateService(
                        name: "web", namespaceId: ns, dnsRecords: [DnsRecord(type: .A, ttl: 5)],
                        healthCheckConfig: HealthCheckConfig(type: .HTTPS))))
        else { return }
        let plain = try f.service("plain", in: ns, records: [.A])
        try f.register("v4", in: checked.id, ["AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "443"])
        try f.register("v4", in: plain, ["AWS_INSTANCE_IPV4": "10.0.0.2"])
        let targets = HealthCheckRunner.targets(f.state)
        #expect(targets.count == 1)
        let t = try #require(targets["\(checked.id)/v4"])
        #expect(t.type == .HTTPS && t.path == "/" && t.threshold == 3 && t.address == "10.0.0.1" && t.port == 443)
        #expect(t.hostHeader == "web.example.com")
        let before = t.registeredAt
        try f.register("v4", in: checked.id, ["AWS_INSTANCE_IPV4": "10.0.0.9", "AWS_INSTANCE_PORT": "443"])
        let again = try #require(HealthCheckRunner.targets(f.state)["\(checked.id)/v4"])
        #expect(again.registeredAt > before && again.address == "10.0.0.9", "a re-registration is a new target")
    }

    @Test("A probe result for an earlier registration is ignored")
    func staleResults() throws {
        var f = RegistryFixture()
        let ns = try f.namespace("hc", type: .HTTP)
        guard
            case .service(let s) = try f.run(
                .createService(CreateService(name: "s", namespaceId: ns, healthCheckConfig: HealthCheckConfig(type: .TCP))))
        else { return }
        try f.register("i", in: s.id, ["AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "1"])
        let first = try #require(f.state.instances(of: s.id)["i"]).registeredAt
        try f.run(.setProbedHealth(serviceId: s.id, instanceId: "i", registeredAt: first - 1, status: .UNHEALTHY))
        #expect(f.state.instances(of: s.id)["i"]?.health == .UNKNOWN)
        try f.run(.setProbedHealth(serviceId: s.id, instanceId: "i", registeredAt: first, status: .UNHEALTHY))
        #expect(f.state.instances(of: s.id)["i"]?.health == .UNHEALTHY)
    }

    /// Services `a` and `b` in one HTTP namespace, both with a TCP check.
    static func twoCheckedServices(_ f: inout RegistryFixture) throws -> (Service, Service) {
        let ns = try f.namespace("two", type: .HTTP)
        var made: [Service] = []
        for name in ["a", "b"] {
            guard
                case .service(let s) = try f.run(
                    .createService(CreateService(name: name, namespaceId: ns, healthCheckConfig: HealthCheckConfig(type: .TCP))))
            else { throw CairnError.invalid("no service") }
            made.append(s)
        }
        return (made[0], made[1])
    }

    @Test("A health write leaves the instances revision alone; a registration moves only its service's")
    func revisions() throws {
        var f = RegistryFixture()
        let (a, b) = try Self.twoCheckedServices(&f)
        try f.register("i", in: a.id, ["AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "1"])
        let (servicesVersion, revisionA, revisionB) =
            (f.state.servicesVersion, f.state.services[a.id]!.instancesRevision, f.state.services[b.id]!.instancesRevision)
        let registeredAt = f.state.instances(of: a.id)["i"]!.registeredAt
        try f.run(.setProbedHealth(serviceId: a.id, instanceId: "i", registeredAt: registeredAt, status: .UNHEALTHY))
        #expect(f.state.services[a.id]!.instancesRevision == revisionA && f.state.servicesVersion == servicesVersion)
        try f.register("j", in: a.id, ["AWS_INSTANCE_IPV4": "10.0.0.2", "AWS_INSTANCE_PORT": "1"])
        #expect(f.state.services[a.id]!.instancesRevision > revisionA && f.state.servicesVersion == servicesVersion)
        #expect(f.state.services[b.id]!.instancesRevision == revisionB)
    }

    @Test("Reconciling one service keeps the others' checks, drops its vanished instances, restarts changed ones")
    func scopedReconcile() async throws {
        var f = RegistryFixture()
        let (a, b) = try Self.twoCheckedServices(&f)
        for (i, service) in [(1, a.id), (2, a.id), (3, b.id)] {
            try f.register("i\(i)", in: service, ["AWS_INSTANCE_IPV4": "10.0.0.\(i)", "AWS_INSTANCE_PORT": "1"])
        }
        let registry = try await Registry.open(store: InMemoryRegistryStore(), seed: 1)
        let runner = try HealthCheckRunner(registry: registry, configuration: HealthCheckConfiguration(), logger: Logger(label: "test"))
        let all = HealthCheckRunner.targets(f.state)
        #expect(runner.reconcile(all, services: nil).count == 3 && runner.checkedCount == 3)
        #expect(runner.reconcile(all, services: nil).isEmpty, "nothing new: nothing to schedule")
        var onlyA: [String: ProbeTarget] = [:]
        HealthCheckRunner.targets(of: f.state.services[a.id]!, in: f.state, into: &onlyA)
        #expect(onlyA.count == 2)
        onlyA["\(a.id)/i2"] = nil
        #expect(runner.reconcile(onlyA, services: [a.id]).isEmpty && runner.checkedCount == 2)
        #expect(runner.history(serviceId: b.id, instanceId: "i3") != nil, "the other service's check stays")
        #expect(runner.history(serviceId: a.id, instanceId: "i2") == nil)
        onlyA["\(a.id)/i1"]!.address = "10.0.0.9"
        #expect(runner.reconcile(onlyA, services: [a.id]).map(\.address) == ["10.0.0.9"])
        #expect(runner.reconcile([:], services: [a.id]).isEmpty && runner.checkedCount == 1)
    }
}
