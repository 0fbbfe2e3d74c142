import CloudMapWire
import Testing

@testable import CairnAPI

@Suite("Prometheus service discovery: query, targets and label names")
struct PrometheusSDTests {
    @Test("A namespace, an optional service, health (HEALTHY unless asked) and region")
    func parsing() throws {
        let plain = try PrometheusSD.Query.parse(["namespace": "shop"])
        #expect(plain == PrometheusSD.Query(namespaceName: "shop", serviceName: nil, health: .HEALTHY, region: nil))
        let full = try PrometheusSD.Query.parse(["namespace": "shop", "service": "web", "health": "ALL", "region": "eu-west-1"])
        #expect(full == PrometheusSD.Query(namespaceName: "shop", serviceName: "web", health: .ALL, region: "eu-west-1"))
        #expect(throws: WireError.self) { try PrometheusSD.Query.parse([:]) }
        #expect(throws: WireError.self) { try PrometheusSD.Query.parse(["namespace": "shop", "health": "healthy"]) }
    }

    @Test("The target is IPv4, else bracketed IPv6, else the CNAME, with the port when there is one")
    func targets() {
        #expect(PrometheusSD.target(["AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "9100"]) == "10.0.0.1:9100")
        #expect(PrometheusSD.target(["AWS_INSTANCE_IPV6": "2001:db8::1", "AWS_INSTANCE_PORT": "80"]) == "[2001:db8::1]:80")
        #expect(PrometheusSD.target(["AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_IPV6": "::1"]) == "10.0.0.1")
        #expect(PrometheusSD.target(["AWS_INSTANCE_CNAME": "db.example.com"]) == "db.example.com")
        #expect(PrometheusSD.target(["zone": "a"]) == nil)
    }

    @Test("An attribute key becomes a label name of [a-zA-Z0-9_]")
    func labelNames() {
        #expect(PrometheusSD.labelName("AWS_INSTANCE_PORT") == "AWS_INSTANCE_PORT")
        #expect(PrometheusSD.labelName("build.id-2/x") == "build_id_2_x")
        #expect(PrometheusSD.labelName("zoné") == "zon__")
    }
}
