import CairnCore
import CairnDNS

/// A small registry with every kind of DNS service, for the fuzzer and the DNS tests.
public enum FuzzWorld {
    /// 127.0.0.1 may transfer zones; 127.0.0.2 may not.
    public static let configuration = DNSConfiguration(
        networks: ["lab": [CIDR("127.0.0.1/32")!], "default": [CIDR("127.0.0.0/8")!]], transferAllow: [CIDR("127.0.0.1/32")!])

    public static let state: RegistryState = {
        var f = RegistryFixture()
        do {
            let corp = try f.namespace("corp.local", type: .DNS_PRIVATE, network: "lab")
            let web = try f.service("web", in: corp, records: [.A, .AAAA], customHealth: true)
            for i in 1...12 {
                try f.register("web-\(i)", in: web, ["AWS_INSTANCE_IPV4": "10.0.0.\(i)", "AWS_INSTANCE_IPV6": "2001:db8::\(i)"])
            }
            try f.setHealth("web-3", in: web, .UNHEALTHY)
            let srv = try f.service("_http._tcp", in: corp, records: [.SRV, .A])
            for i in 1...40 { try f.register("i\(i)", in: srv, ["AWS_INSTANCE_IPV4": "10.1.0.\(i)", "AWS_INSTANCE_PORT": "80\(i)"]) }
            let alias = try f.service("alias", in: corp, records: [.CNAME], policy: .WEIGHTED)
            try f.register("a1", in: alias, ["AWS_INSTANCE_CNAME": "one.example.net"])
            let pub = try f.namespace("example.com", type: .DNS_PUBLIC)
            let www = try f.service("www", in: pub, records: [.A], policy: .WEIGHTED)
            try f.register("w1", in: www, ["AWS_INSTANCE_IPV4": "192.0.2.1"])
            // Signed: queries with the DO bit get RRSIGs and compact denial.
            try f.run(.dnssec(namespaceId: pub, change: .enable(DNSSECSigner.newKey(now: 0))))
        } catch {
            fatalError("fuzz world: \(error)")
        }
        return f.state
    }()
}
