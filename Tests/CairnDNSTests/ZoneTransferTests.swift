import CairnCore
import CairnDNS
import CairnTesting
import DNSWire
import Testing

@Suite("Zone transfers: AXFR and IXFR over TCP to allowed networks")
struct ZoneTransferTests {
    let responder = DNSResponder(resolver: DNSResolver(configuration: FuzzWorld.configuration))
    let allowed: [UInt8] = [127, 0, 0, 1]

    func query(_ name: String, _ type: UInt16, serial: UInt32? = nil) -> [UInt8] {
        var message = DNSMessage(header: DNSHeader(id: 0x4242, flags: 0), questions: [DNSQuestion(name: DNSName(name)!, type: type)])
        if let serial {
            message.authority = [
                DNSRecord(
                    name: DNSName(name)!, type: DNSType.soa, ttl: 0,
                    data: .soa(SOAData(mname: .root, rname: .root, serial: serial, refresh: 0, retry: 0, expire: 0, minimum: 0)))
            ]
        }
        return message.encode().bytes
    }

    func transfer(_ bytes: [UInt8], client: [UInt8]? = nil) throws -> [DNSMessage] {
        let (replies, _) = try #require(responder.respondTCP(to: bytes, client: client ?? allowed, state: FuzzWorld.state))
        return try replies.map { try DNSMessage.parse($0) }
    }

    @Test("AXFR: the SOA, the apex NS, every record of every service (not eight), the SOA again, in one snapshot")
    func axfr() throws {
        let messages = try transfer(query("corp.local", DNSType.axfr))
        let records = messages.flatMap(\.answers)
        #expect(messages.allSatisfy { $0.header.id == 0x4242 && $0.header.isResponse && $0.header.authoritative && $0.rcode == 0 })
        #expect(messages[0].questions.count == 1)
        #expect(records.first?.type == DNSType.soa && records.last == records.first)
        #expect(records.filter { $0.type == DNSType.soa }.count == 2)
        #expect(records[1].type == DNSType.ns)
        let web = records.filter { $0.name.key == "web.corp.local" && $0.type == DNSType.a }
        #expect(web.count == 11, "the healthy ones of 12: web-3 is unhealthy")
        #expect(records.filter { $0.name.key == "_http._tcp.corp.local" && $0.type == DNSType.srv }.count == 40)
        #expect(records.contains { $0.name.key == "i7._http._tcp.corp.local" && $0.type == DNSType.a })
        #expect(records.contains { $0.name.key == "alias.corp.local" && $0.type == DNSType.cname })
        #expect(Set(records.dropFirst().dropLast()).count == records.count - 2, "no record twice")
        guard case .soa(let soa) = records[0].data else { return #expect(Bool(false)) }
        #expect(soa.serial == UInt32(truncatingIfNeeded: FuzzWorld.state.sequence))
    }

    @Test("IXFR from the current serial or a newer one is the SOA alone; from an older one, the whole zone")
    func ixfr() throws {
        let current = UInt32(truncatingIfNeeded: FuzzWorld.state.sequence)
        for serial in [current, current &+ 1, current &+ (1 << 30)] {
            let replies = try transfer(query("corp.local", DNSType.ixfr, serial: serial))
            #expect(replies.count == 1 && replies[0].answers.map(\.type) == [DNSType.soa])
        }
        let full = try transfer(query("corp.local", DNSType.ixfr, serial: current &- 1)).flatMap(\.answers)
        #expect(full.count > 50 && full.first?.type == DNSType.soa && full.last?.type == DNSType.soa)
        // Without a serial: the whole zone too.
        #expect(try transfer(query("corp.local", DNSType.ixfr)).flatMap(\.answers).count == full.count)
    }

    @Test("IXFR from a serial a transfer gave: only the difference, in RFC 1995's form; from a serial never seen, the whole zone")
    func incremental() throws {
        var f = RegistryFixture()
        let ns = try f.namespace("inc.test", type: .DNS_PUBLIC)
        let svc = try f.service("web", in: ns, records: [.A, .SRV])
        for i in 1...5 { try f.register("i\(i)", in: svc, ["AWS_INSTANCE_IPV4": "10.0.0.\(i)", "AWS_INSTANCE_PORT": "80"]) }
        let responder = DNSResponder(resolver: DNSResolver(configuration: FuzzWorld.configuration))
        func transfer(_ bytes: [UInt8], _ state: RegistryState) throws -> [DNSRecord] {
            let (replies, _) = try #require(responder.respondTCP(to: bytes, client: allowed, state: state))
            return try replies.flatMap { try DNSMessage.parse($0).answers }
        }
        let first = f.state
        let full = try transfer(query("inc.test", DNSType.axfr), first)
        let serial1 = UInt32(truncatingIfNeeded: first.sequence)
        // One instance added, one removed.
        try f.register("i6", in: svc, ["AWS_INSTANCE_IPV4": "10.0.0.6", "AWS_INSTANCE_PORT": "80"])
        try f.deregister("i2", in: svc)
        let second = f.state
        let serial2 = UInt32(truncatingIfNeeded: second.sequence)
        let answer = try transfer(query("inc.test", DNSType.ixfr, serial: serial1), second)
        func serial(_ record: DNSRecord) -> UInt32? { if case .soa(let s) = record.data { s.serial } else { nil } }
        let soas = answer.enumerated().filter { $0.element.type == DNSType.soa }
        #expect(soas.map { serial($0.element) } == [serial2, serial1, serial2, serial2])
        let removed = answer[(soas[1].offset + 1)..<soas[2].offset]
        let added = answer[(soas[2].offset + 1)..<soas[3].offset]
        #expect(
            Set(removed.map(\.data)) == [.a([10, 0, 0, 2]), .srv(priority: 1, weight: 1, port: 80, target: DNSName("i2.web.inc.test")!)])
        #expect(
            Set(added.map(\.data)) == [.a([10, 0, 0, 6]), .srv(priority: 1, weight: 1, port: 80, target: DNSName("i6.web.inc.test")!)])
        #expect(removed.count == 3 && added.count == 3, "the service's A and SRV, and the SRV target's A")
        #expect(answer.count < full.count)
        // A serial the journal never saw: the whole zone, AXFR form.
        let unknown = try transfer(query("inc.test", DNSType.ixfr, serial: serial1 &- 1), second)
        #expect(unknown.filter { $0.type == DNSType.soa }.count == 2 && unknown.count == full.count)
        // From the second serial, once it was transferred: the SOA alone.
        #expect(try transfer(query("inc.test", DNSType.ixfr, serial: serial2), second).count == 1)
    }

    @Test("IXFR never removes a record the zone still has: one published by two services, dropped by one of them")
    func sharedRecord() throws {
        var f = RegistryFixture()
        let ns = try f.namespace("shared.test", type: .DNS_PUBLIC)
        let web = try f.service("web", in: ns, records: [.A, .SRV])
        try f.register("i1", in: web, ["AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80"])
        // A service named like web's SRV target, with the same address: both publish i1.web.shared.test A 10.0.0.1.
        let alias = try f.service("i1.web", in: ns, records: [.A], ttl: 60)
        try f.register("x", in: alias, ["AWS_INSTANCE_IPV4": "10.0.0.1"])
        try f.register("y", in: alias, ["AWS_INSTANCE_IPV4": "10.0.0.9"])
        let responder = DNSResponder(resolver: DNSResolver(configuration: FuzzWorld.configuration))
        func transfer(_ bytes: [UInt8], _ state: RegistryState) throws -> [DNSRecord] {
            let (replies, _) = try #require(responder.respondTCP(to: bytes, client: allowed, state: state))
            return try replies.flatMap { try DNSMessage.parse($0).answers }
        }
        let first = f.state
        _ = try transfer(query("shared.test", DNSType.axfr), first)
        try f.deregister("x", in: alias)
        let answer = try transfer(query("shared.test", DNSType.ixfr, serial: UInt32(truncatingIfNeeded: first.sequence)), f.state)
        let soas = answer.enumerated().filter { $0.element.type == DNSType.soa }.map(\.offset)
        #expect(soas.count == 4)
        let removed = answer[(soas[1] + 1)..<soas[2]]
        #expect(removed.isEmpty, "i1.web's A 10.0.0.1 is still web's SRV target: \(Array(removed))")
        #expect(
            try transfer(query("shared.test", DNSType.axfr), f.state).contains {
                $0.name.key == "i1.web.shared.test" && $0.data == .a([10, 0, 0, 1])
            })
        // A TTL that changes: the record removed with the old TTL and added with the new one, so a secondary that
        // deletes by data ends with the new TTL.
        let before = f.state
        _ = try transfer(query("shared.test", DNSType.axfr), before)
        try f.run(
            .updateService(
                UpdateService(
                    id: web, description: nil, dnsRecords: [DnsRecord(type: .A, ttl: 30), DnsRecord(type: .SRV, ttl: 30)],
                    healthCheckConfig: nil)))
        let ttl = try transfer(query("shared.test", DNSType.ixfr, serial: UInt32(truncatingIfNeeded: before.sequence)), f.state)
        let marks = ttl.enumerated().filter { $0.element.type == DNSType.soa }.map(\.offset)
        #expect(ttl[(marks[1] + 1)..<marks[2]].contains { $0.name.key == "i1.web.shared.test" && $0.ttl == 10 })
        #expect(ttl[(marks[2] + 1)..<marks[3]].contains { $0.name.key == "i1.web.shared.test" && $0.ttl == 30 })
    }

    @Test("Refused: a network not allowed, a name that is not a zone apex, an unknown zone, a private zone not visible")
    func refused() throws {
        for (name, client) in [
            ("corp.local", [127, 0, 0, 2] as [UInt8]), ("web.corp.local", allowed), ("nope.example.org", allowed),
            ("corp.local", [10, 0, 0, 1]),
        ] {
            let replies = try transfer(query(name, DNSType.axfr), client: client)
            #expect(replies.count == 1 && replies[0].rcode == DNSRcode.refused && replies[0].answers.isEmpty, "\(name)")
        }
        // Over UDP, always refused.
        let (udp, _) = try #require(
            responder.respond(to: query("corp.local", DNSType.axfr), client: allowed, transport: .udp, state: FuzzWorld.state))
        #expect(try DNSMessage.parse(udp).rcode == DNSRcode.refused)
    }

    @Test("A zone larger than one message's budget comes in several, each within 65,535 bytes, with every record once")
    func split() throws {
        var f = RegistryFixture()
        let ns = try f.namespace("big.test", type: .DNS_PUBLIC)
        let svc = try f.service("web", in: ns, records: [.A, .SRV])
        for i in 0..<900 {
            try f.register("instance-\(i)", in: svc, ["AWS_INSTANCE_IPV4": "10.\(i / 250).\(i % 250).1", "AWS_INSTANCE_PORT": "8080"])
        }
        let (replies, _) = try #require(
            responder.respondTCP(to: query("big.test", DNSType.axfr), client: allowed, state: f.state))
        #expect(replies.count > 4 && replies.allSatisfy { $0.count <= 65_535 })
        let messages = try replies.map { try DNSMessage.parse($0) }
        #expect(messages[0].questions.count == 1 && messages.dropFirst().allSatisfy { $0.questions.isEmpty })
        let records = messages.flatMap(\.answers)
        #expect(records.filter { $0.type == DNSType.srv }.count == 900)
        #expect(records.filter { $0.type == DNSType.a }.count == 1_800)
        #expect(records.count == 2 + 1 + 2_700)
    }

    @Test("NOTIFY targets: an IPv4 or bracketed IPv6 address and a port; anything else is refused")
    func targets() {
        #expect(DNSNotifier.Target("192.0.2.1:53")?.description == "192.0.2.1:53")
        #expect(DNSNotifier.Target("[2001:db8::1]:5353")?.description == "[2001:db8::1]:5353")
        for bad in [
            "192.0.2.1", "192.0.2.1:0", "192.0.2.1:65536", "host.example:53", "2001:db8::1:53", "[2001:db8::1]53", ":53", "1.2.3.4:+53", "",
        ] {
            #expect(DNSNotifier.Target(bad) == nil, "\(bad)")
        }
    }
}
