import CairnCore
import CairnTesting
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
}
