import Testing

@testable import CairnClient

@Suite("cairn agent's file and health debounce")
struct AgentConfigurationTests {
    @Test("A full file: names or an id, the reserved attributes set from ipv4, port and lease, every kind of check")
    func fullFile() throws {
        let yaml = """
            lease: 20
            endpoint: http://cairn.internal:8787
            services:
              - namespace: shop
                service: web
                ipv4: 10.0.0.5
                port: 8080
                attributes: {version: 2, canary: true, zone: a}
                check:
                  http: http://localhost:8080/healthz?deep=1
                  interval: 0.5
                  timeout: 1
                  failureThreshold: 2
              - serviceId: srv-abc
                instanceId: db-1
                ipv6: "::1"
                check: {tcp: "[::1]:5432"}
              - serviceId: srv-abc
                instanceId: batch
                check: {command: [/bin/test, -e, /tmp/ready], successThreshold: 3}
            """
        let file = try AgentConfiguration.parse(yaml: yaml, hostname: "box")
        #expect(file.leaseSeconds == 20 && file.endpoint == "http://cairn.internal:8787")
        #expect(file.registrations.count == 3)
        let web = file.registrations[0]
        #expect(web.service == .named(namespace: "shop", service: "web"))
        #expect(web.instanceId == "box-8080")
        #expect(
            web.attributes == [
                "AWS_INSTANCE_IPV4": "10.0.0.5", "AWS_INSTANCE_PORT": "8080", "CAIRN_LEASE_SECONDS": "20", "version": "2",
                "canary": "true", "zone": "a",
            ])
        #expect(web.check?.kind == .http(https: false, address: "127.0.0.1", port: 8080, path: "/healthz?deep=1"))
        #expect(web.check?.intervalSeconds == 0.5 && web.check?.timeoutSeconds == 1 && web.check?.failureThreshold == 2)
        #expect(web.check?.successThreshold == 1)
        #expect(file.registrations[1].service == .id("srv-abc"))
        #expect(file.registrations[1].check?.kind == .tcp(address: "::1", port: 5432))
        #expect(file.registrations[1].attributes == ["AWS_INSTANCE_IPV6": "::1", "CAIRN_LEASE_SECONDS": "20"])
        #expect(file.registrations[2].check?.kind == .command(["/bin/test", "-e", "/tmp/ready"]))
        #expect(file.registrations[2].check?.successThreshold == 3)
        #expect(file.registrations[2].check?.intervalSeconds == 10)
        // No lease given: 30 s; no instanceId and no port: the host's name.
        let plain = try AgentConfiguration.parse(yaml: "services: [{serviceId: srv-1}]", hostname: "box")
        #expect(plain.leaseSeconds == 30 && plain.registrations[0].instanceId == "box")
        #expect(plain.registrations[0].attributes == ["CAIRN_LEASE_SECONDS": "30"])
        #expect(
            try AgentConfiguration.parse(yaml: "services: [{serviceId: s, check: {https: 'https://[::1]/'}}]", hostname: "h")
                .registrations[0].check?.kind == .http(https: true, address: "::1", port: 443, path: "/"))
    }

    @Test(
        "Mistakes are named by their key",
        arguments: [
            ("", "the agent file"),
            ("services: []", "services"),
            ("lease: 4\nservices: [{serviceId: s}]", "lease"),
            ("lease: 864000\nservices: [{serviceId: s}]", "lease"),
            ("leases: 30\nservices: [{serviceId: s}]", "leases"),
            ("services: [{namespace: n}]", "services[0]"),
            ("services: [{serviceId: s, namespace: n, service: x}]", "services[0]"),
            ("services: [{serviceId: s, port: 70000}]", "services[0].port"),
            ("services: [{serviceId: s, attributes: {AWS_INSTANCE_IPV4: 1.2.3.4}}]", "services[0].attributes.AWS_INSTANCE_IPV4"),
            ("services: [{serviceId: s, attributes: {CAIRN_LEASE_SECONDS: 9}}]", "services[0].attributes.CAIRN_LEASE_SECONDS"),
            ("services: [{serviceId: s, check: {}}]", "services[0].check"),
            ("services: [{serviceId: s, check: {http: 'http://1.2.3.4/', tcp: '1.2.3.4:1'}}]", "services[0].check"),
            ("services: [{serviceId: s, check: {http: 'http://example.com/'}}]", "services[0].check.http"),
            ("services: [{serviceId: s, check: {http: 'ftp://1.2.3.4/'}}]", "services[0].check.http"),
            ("services: [{serviceId: s, check: {tcp: '1.2.3.4'}}]", "services[0].check.tcp"),
            ("services: [{serviceId: s, check: {command: []}}]", "services[0].check.command"),
            ("services: [{serviceId: s, check: {tcp: '1.2.3.4:1', interval: 0}}]", "services[0].check.interval"),
            ("services: [{serviceId: s, check: {tcp: '1.2.3.4:1', failureThreshold: 0}}]", "services[0].check.failureThreshold"),
            ("services: [{serviceId: s, check: {tcp: '1.2.3.4:1', every: 3}}]", "services[0].check.every"),
            ("services: [{serviceId: s, instanceId: a}, {serviceId: s, instanceId: a}]", "services"),
            ("services: [{serviceId: s, instanceId: ''}]", "services[0].instanceId"),
            ("services: {serviceId: s}", "services"),
            ("services: [{serviceId: [1]}]", "services[0].serviceId"),
        ])
    func mistakes(yaml: String, key: String) {
        #expect(throws: AgentConfiguration.Invalid.self) { try AgentConfiguration.parse(yaml: yaml, hostname: "h") }
        do {
            _ = try AgentConfiguration.parse(yaml: yaml, hostname: "h")
        } catch {
            #expect(error.key == key, "\(error)")
        }
    }

    @Test("The first result decides; then only a run of failures or successes as long as the threshold turns the status")
    func debounce() {
        var health = HealthDebounce(failureThreshold: 3, successThreshold: 2)
        #expect(health.status == nil)
        #expect(health.record(healthy: true) == true)
        #expect(health.record(healthy: false) == nil)
        #expect(health.record(healthy: false) == nil)
        #expect(health.record(healthy: true) == nil)  // the run of failures is broken
        #expect(health.record(healthy: false) == nil)
        #expect(health.record(healthy: false) == nil)
        #expect(health.record(healthy: false) == false)
        #expect(health.status == false)
        #expect(health.record(healthy: true) == nil)
        #expect(health.record(healthy: true) == true)
        var first = HealthDebounce(failureThreshold: 3, successThreshold: 1)
        #expect(first.record(healthy: false) == false)
        #expect(first.record(healthy: true) == true)
    }
}
