import CairnCore
import CairnDNS
import CairnTesting
import DNSWire
import Testing

/// One registry for every case: a private zone on network `lab` (127.0.0.1/32 only) and a public zone.
let world: RegistryState = {
    var f = RegistryFixture()
    let corp = try! f.namespace("corp.local", type: .DNS_PRIVATE, network: "lab")
    let web = try! f.service("web", in: corp, records: [.A, .AAAA], customHealth: true)
    for i in 1...10 {
        var attributes = ["AWS_INSTANCE_IPV4": "10.0.0.\(i)"]
        if i <= 5 { attributes["AWS_INSTANCE_IPV6"] = "2001:db8::\(i)" }
        try! f.register("web-\(i)", in: web, attributes)
    }
    for i in [2, 4, 9] { try! f.setHealth("web-\(i)", in: web, .UNHEALTHY) }
    let srv = try! f.service("_http._tcp", in: corp, records: [.SRV])
    try! f.register("i1", in: srv, ["AWS_INSTANCE_IPV4": "10.1.0.1", "AWS_INSTANCE_PORT": "8080"])
    try! f.register("i2", in: srv, ["AWS_INSTANCE_IPV6": "2001:db8::99", "AWS_INSTANCE_PORT": "8081"])
    let alias = try! f.service("alias", in: corp, records: [.CNAME], policy: .WEIGHTED)
    try! f.register("a1", in: alias, ["AWS_INSTANCE_CNAME": "one.example.net"])
    try! f.register("a2", in: alias, ["AWS_INSTANCE_CNAME": "two.example.net"])
    _ = try! f.service("empty", in: corp, records: [.A])
    let api = try! f.service("api", in: corp)
    try! f.register("h1", in: api, ["AWS_INSTANCE_IPV4": "10.2.0.1"])
    let down = try! f.service("down", in: corp, records: [.A], customHealth: true)
    for i in 1...3 {
        try! f.register("d\(i)", in: down, ["AWS_INSTANCE_IPV4": "10.3.0.\(i)"])
        try! f.setHealth("d\(i)", in: down, .UNHEALTHY)
    }
    let big = try! f.service("big", in: corp, records: [.A])
    for i in 1...20 { try! f.register("b\(i)", in: big, ["AWS_INSTANCE_IPV4": "10.4.0.\(i)"]) }
    let pub = try! f.namespace("example.com", type: .DNS_PUBLIC)
    let www = try! f.service("www", in: pub, records: [.A], policy: .WEIGHTED)
    for i in 1...3 { try! f.register("w\(i)", in: www, ["AWS_INSTANCE_IPV4": "192.0.2.\(i)"]) }
    return f.state
}()

let resolver = DNSResolver(configuration: DNSConfiguration(networks: ["lab": [CIDR("127.0.0.1/32")!], "default": [CIDR("127.0.0.0/8")!]]))
let inside: [UInt8] = [127, 0, 0, 1]
let outside: [UInt8] = [127, 0, 0, 2]

struct Case: CustomTestStringConvertible, Sendable {
    var name: String
    var type: UInt16
    var client: [UInt8] = inside
    var qclass: UInt16 = DNSClass.in
    var rcode: UInt16
    /// Expected number of answers (nil: don't check) and their type.
    var answers: Int?
    var answerType: UInt16? = nil
    var soaInAuthority = false
    var testDescription: String { "\(name) \(type) from \(client.map(String.init).joined(separator: "."))" }
}

@Suite("DNS answers from registry state")
struct AnswerTableTests {
    static let cases: [Case] = [
        Case(name: "web.corp.local", type: DNSType.a, rcode: DNSRcode.noError, answers: 7, answerType: DNSType.a),
        Case(name: "WEB.Corp.Local", type: DNSType.a, rcode: DNSRcode.noError, answers: 7, answerType: DNSType.a),
        Case(name: "web.corp.local", type: DNSType.aaaa, rcode: DNSRcode.noError, answers: 3, answerType: DNSType.aaaa),
        Case(name: "web.corp.local", type: DNSType.a, client: outside, rcode: DNSRcode.refused, answers: 0),
        Case(name: "web.corp.local", type: 16, rcode: DNSRcode.noError, answers: 0, soaInAuthority: true),
        Case(name: "web.corp.local", type: DNSType.a, qclass: 3, rcode: DNSRcode.refused, answers: 0),
        Case(name: "nope.corp.local", type: DNSType.a, rcode: DNSRcode.nxDomain, answers: 0, soaInAuthority: true),
        Case(name: "empty.corp.local", type: DNSType.a, rcode: DNSRcode.nxDomain, answers: 0, soaInAuthority: true),
        Case(name: "api.corp.local", type: DNSType.a, rcode: DNSRcode.nxDomain, answers: 0, soaInAuthority: true),
        Case(name: "_tcp.corp.local", type: DNSType.srv, rcode: DNSRcode.noError, answers: 0, soaInAuthority: true),
        Case(name: "_http._tcp.corp.local", type: DNSType.srv, rcode: DNSRcode.noError, answers: 2, answerType: DNSType.srv),
        Case(name: "_http._tcp.corp.local", type: DNSType.a, rcode: DNSRcode.noError, answers: 0, soaInAuthority: true),
        Case(name: "i1._http._tcp.corp.local", type: DNSType.a, rcode: DNSRcode.noError, answers: 1, answerType: DNSType.a),
        Case(name: "i2._http._tcp.corp.local", type: DNSType.aaaa, rcode: DNSRcode.noError, answers: 1, answerType: DNSType.aaaa),
        Case(name: "i2._http._tcp.corp.local", type: DNSType.a, rcode: DNSRcode.noError, answers: 0, soaInAuthority: true),
        Case(name: "i9._http._tcp.corp.local", type: DNSType.a, rcode: DNSRcode.nxDomain, answers: 0, soaInAuthority: true),
        Case(name: "alias.corp.local", type: DNSType.a, rcode: DNSRcode.noError, answers: 1, answerType: DNSType.cname),
        Case(name: "alias.corp.local", type: DNSType.cname, rcode: DNSRcode.noError, answers: 1, answerType: DNSType.cname),
        Case(name: "down.corp.local", type: DNSType.a, rcode: DNSRcode.noError, answers: 3, answerType: DNSType.a),
        Case(name: "big.corp.local", type: DNSType.a, rcode: DNSRcode.noError, answers: 8, answerType: DNSType.a),
        Case(name: "corp.local", type: DNSType.soa, rcode: DNSRcode.noError, answers: 1, answerType: DNSType.soa),
        Case(name: "corp.local", type: DNSType.ns, rcode: DNSRcode.noError, answers: 1, answerType: DNSType.ns),
        Case(name: "corp.local", type: DNSType.a, rcode: DNSRcode.noError, answers: 0, soaInAuthority: true),
        Case(name: "web.corp.local", type: DNSType.any, rcode: DNSRcode.noError, answers: 1, answerType: DNSType.hinfo),
        Case(name: "www.example.com", type: DNSType.a, client: outside, rcode: DNSRcode.noError, answers: 1, answerType: DNSType.a),
        Case(name: "WWW.example.com", type: DNSType.a, rcode: DNSRcode.noError, answers: 1, answerType: DNSType.a),
        Case(name: "x.www.example.com", type: DNSType.a, rcode: DNSRcode.nxDomain, answers: 0, soaInAuthority: true),
        Case(name: "example.org", type: DNSType.a, rcode: DNSRcode.refused, answers: 0),
        Case(name: "local", type: DNSType.soa, rcode: DNSRcode.refused, answers: 0),
    ]

    @Test("Question → rcode, answers, authority", arguments: cases)
    func answer(c: Case) {
        let question = DNSQuestion(name: DNSName(c.name)!, type: c.type, qclass: c.qclass)
        let answer = resolver.answer(question, client: c.client, state: world)
        #expect(answer.rcode == c.rcode)
        if let n = c.answers { #expect(answer.answers.count == n) }
        if let t = c.answerType { #expect(answer.answers.allSatisfy { $0.type == t }) }
        #expect(answer.answers.allSatisfy { $0.name == question.name && $0.name.description == question.name.description })
        #expect((answer.authority.first?.type == DNSType.soa) == c.soaInAuthority)
        #expect(answer.authoritative == (c.rcode != DNSRcode.refused))
    }

    @Test("Only healthy instances answer while some are healthy")
    func healthyOnly() {
        let answer = resolver.answer(DNSQuestion(name: DNSName("web.corp.local")!, type: DNSType.a), client: inside, state: world)
        let addresses = Set(answer.answers.compactMap { if case .a(let b) = $0.data { return b[3] } else { return nil } })
        #expect(addresses == [1, 3, 5, 6, 7, 8, 10])
    }

    @Test("SRV records are 1 1 port <instance>.<service>.<namespace> with the service's TTL")
    func srvShape() {
        let answer = resolver.answer(DNSQuestion(name: DNSName("_http._tcp.corp.local")!, type: DNSType.srv), client: inside, state: world)
        let targets = answer.answers.compactMap { r -> String? in
            guard case .srv(let p, let w, let port, let target) = r.data, p == 1, w == 1, r.ttl == 10 else { return nil }
            return "\(port) \(target)"
        }
        #expect(Set(targets) == ["8080 i1._http._tcp.corp.local.", "8081 i2._http._tcp.corp.local."])
    }

    @Test("More than 8 candidates: a different random subset per query")
    func randomSubsets() {
        var subsets = Set<[UInt8]>()
        for _ in 0..<20 {
            let answer = resolver.answer(DNSQuestion(name: DNSName("big.corp.local")!, type: DNSType.a), client: inside, state: world)
            subsets.insert(answer.answers.compactMap { if case .a(let b) = $0.data { return b[3] } else { return nil } }.sorted())
        }
        #expect(subsets.count > 5)
    }

    @Test("WEIGHTED: exactly one, spread across instances")
    func weighted() {
        var seen = Set<[UInt8]>()
        for _ in 0..<40 {
            let answer = resolver.answer(DNSQuestion(name: DNSName("www.example.com")!, type: DNSType.a), client: outside, state: world)
            #expect(answer.answers.count == 1)
            if case .a(let b)? = answer.answers.first?.data { seen.insert(b) }
        }
        #expect(seen.count == 3)
    }

    @Test("The negative TTL is min(SOA TTL, SOA minimum)")
    func negativeTTL() {
        let answer = resolver.answer(DNSQuestion(name: DNSName("nope.corp.local")!, type: DNSType.a), client: inside, state: world)
        guard case .soa(let soa)? = answer.authority.first?.data else {
            Issue.record("no SOA")
            return
        }
        #expect(answer.authority.first?.ttl == 900 && soa.minimum == 86_400 && soa.serial == UInt32(world.sequence))
    }

    @Test(
        "Published records: every healthy instance's records in instance order, all of them when none is healthy, SRV targets too",
        arguments: [
            (
                "web",
                [
                    "10.0.0.1", "10.0.0.10", "10.0.0.3", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "2001:db8::1", "2001:db8::3",
                    "2001:db8::5",
                ]
            ),
            ("down", ["10.3.0.1", "10.3.0.2", "10.3.0.3"]),
            ("_http._tcp", ["1 1 8080 i1._http._tcp.corp.local.", "1 1 8081 i2._http._tcp.corp.local.", "10.1.0.1", "2001:db8::99"]),
            ("alias", ["one.example.net.", "two.example.net."]),
            ("empty", []),
            ("api", []),
        ])
    func published(service name: String, expected: [String]) throws {
        let service = try #require(world.services.values.first { $0.name == name })
        let records = resolver.publishedRecords(of: service, state: world)
        #expect(records.map { "\($0.data)" } == expected)
        if name == "web" { #expect(records.first?.description == "web.corp.local. 10 IN A 10.0.0.1") }
    }
}
