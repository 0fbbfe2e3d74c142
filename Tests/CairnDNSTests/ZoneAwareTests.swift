import CairnCore
import CairnDNS
import CairnTesting
import DNSWire
import Testing

@Suite("Zone-aware answers: a client's availability zone first, the others when none there is healthy")
struct ZoneAwareTests {
    let resolver = DNSResolver(
        configuration: DNSConfiguration(
            networks: ["default": [CIDR("127.0.0.0/8")!]],
            availabilityZones: ["zone-a": [CIDR("127.0.0.0/16")!, CIDR("127.0.0.2/32")!], "zone-b": [CIDR("127.0.0.3/32")!]]))

    func world(tagged: Bool) throws -> (RegistryFixture, String) {
        var f = RegistryFixture()
        let ns = try f.namespace("az.test", type: .DNS_PUBLIC)
        let svc = try f.service("api", in: ns, records: [.A, .SRV], customHealth: true)
        for (n, zone) in [(1, "zone-a"), (2, "zone-a"), (3, "zone-b"), (4, nil)] as [(Int, String?)] {
            var attributes = ["AWS_INSTANCE_IPV4": "10.0.0.\(n)", "AWS_INSTANCE_PORT": "80"]
            if let zone { attributes["AVAILABILITY_ZONE"] = zone }
            try f.register("i\(n)", in: svc, attributes)
        }
        if tagged, let arn = f.state.services[svc]?.arn {
            try f.run(.tagResource(arn: arn, tags: [Tag(key: "cairn:zone-aware", value: "TRUE")]))
        }
        return (f, svc)
    }

    func pool(_ client: [UInt8], _ state: RegistryState, _ type: UInt16 = DNSType.a) -> Set<String> {
        let plan = resolver.plan(DNSQuestion(name: DNSName("api.az.test")!, type: type), client: client, state: state)
        return Set(
            plan.pool.compactMap { record -> String? in
                switch record.data {
                case .a(let b): return b.map(String.init).joined(separator: ".")
                case .srv(_, _, _, let target): return target.description
                default: return nil
                }
            })
    }

    @Test("The most specific block names the zone; its healthy instances are the pool, for A and SRV alike")
    func zones() throws {
        let (f, _) = try world(tagged: true)
        #expect(resolver.clientZone([127, 0, 0, 3]) == "zone-b" && resolver.clientZone([127, 0, 9, 9]) == "zone-a")
        #expect(resolver.clientZone([127, 1, 0, 1]) == nil)
        #expect(pool([127, 0, 0, 2], f.state) == ["10.0.0.1", "10.0.0.2"])
        #expect(pool([127, 0, 0, 3], f.state) == ["10.0.0.3"])
        #expect(pool([127, 0, 0, 3], f.state, DNSType.srv) == ["i3.api.az.test."])
        #expect(pool([127, 1, 0, 1], f.state) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
        // Different zones are different keys of the answer cache.
        #expect(resolver.networkMask(DNSClient(bytes: [127, 0, 0, 2])) != resolver.networkMask(DNSClient(bytes: [127, 0, 0, 3])))
    }

    @Test("None healthy in the client's zone: every healthy instance; untagged services: no preference")
    func fallback() throws {
        var (f, svc) = try world(tagged: true)
        try f.setHealth("i3", in: svc, .UNHEALTHY)
        #expect(pool([127, 0, 0, 3], f.state) == ["10.0.0.1", "10.0.0.2", "10.0.0.4"])
        let (plain, _) = try world(tagged: false)
        #expect(pool([127, 0, 0, 3], plain.state) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
        // The console's list and zone transfers carry every instance.
        #expect(
            resolver.publishedRecords(of: try #require(f.state.services[svc]), state: f.state).filter { $0.type == DNSType.a }.count >= 3)
    }
}
