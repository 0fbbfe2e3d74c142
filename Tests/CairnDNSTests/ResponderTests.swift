import CairnCore
import CairnDNS
import CairnTesting
import DNSWire
import Testing

@Suite("DNS responder: bytes in, bytes out")
struct ResponderTests {
    let responder = DNSResponder(resolver: DNSResolver(configuration: FuzzWorld.configuration))
    let client: [UInt8] = [127, 0, 0, 1]

    func query(_ name: String, _ type: UInt16, flags: UInt16 = 0x0100, edns: EDNS? = nil, questions: Int = 1) -> [UInt8] {
        DNSMessage(
            header: DNSHeader(id: 0xBEEF, flags: flags),
            questions: Array(repeating: DNSQuestion(name: DNSName(name)!, type: type), count: questions), edns: edns
        ).encode().bytes
    }

    func reply(_ bytes: [UInt8], _ transport: DNSResponder.Transport = .udp) throws -> DNSMessage {
        let (out, _) = try #require(responder.respond(to: bytes, client: client, transport: transport, state: FuzzWorld.state))
        return try DNSMessage.parse(out)
    }

    @Test("A query gets an authoritative answer with its id, RD copied, RA clear")
    func basics() throws {
        let r = try reply(query("web.corp.local", DNSType.a))
        #expect(
            r.header.id == 0xBEEF && r.header.isResponse && r.header.authoritative && r.header.recursionDesired
                && !r.header.recursionAvailable)
        #expect(r.answers.count == 8 && r.edns == nil)
    }

    @Test("EDNS is echoed with our payload size; version 1 is BADVERS")
    func edns() throws {
        #expect(try reply(query("web.corp.local", DNSType.a, edns: EDNS(udpPayloadSize: 4096))).edns?.udpPayloadSize == 1232)
        let bad = try reply(query("web.corp.local", DNSType.a, edns: EDNS(udpPayloadSize: 4096, version: 1)))
        #expect(bad.rcode == DNSRcode.badVers && bad.answers.isEmpty)
    }

    @Test("Unsupported opcodes are NOTIMP, zero or two questions FORMERR, garbage FORMERR")
    func errors() throws {
        #expect(try reply(query("web.corp.local", DNSType.a, flags: 0x1000)).header.rcode == DNSRcode.notImp)
        #expect(try reply(query("web.corp.local", DNSType.a, questions: 2)).header.rcode == DNSRcode.formErr)
        #expect(try reply(query("web.corp.local", DNSType.a, questions: 0)).header.rcode == DNSRcode.formErr)
        #expect(try reply([0xBE, 0xEF, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0]).header.rcode == DNSRcode.formErr)
    }

    @Test("Responses and runts get no reply at all")
    func dropped() {
        #expect(
            responder.respond(
                to: query("web.corp.local", DNSType.a, flags: 0x8100), client: client, transport: .udp, state: FuzzWorld.state) == nil)
        #expect(responder.respond(to: [1, 2, 3], client: client, transport: .udp, state: FuzzWorld.state) == nil)
    }

    @Test("An answer too big for UDP is truncated within 512 bytes without EDNS, and whole over TCP")
    func truncation() throws {
        let q = query("_http._tcp.corp.local", DNSType.srv)
        let (udp, _) = try #require(responder.respond(to: q, client: client, transport: .udp, state: FuzzWorld.state))
        #expect(udp.count <= 512)
        let small = try DNSMessage.parse(udp)
        #expect(small.header.truncated || small.answers.count == 8)
        let tcp = try reply(q, .tcp)
        #expect(!tcp.header.truncated && tcp.answers.count == 8)
    }

    @Test("Fuzzing the parser and responder for 20,000 inputs finds nothing")
    func fuzz() {
        let resolver = DNSResolver(configuration: FuzzWorld.configuration)
        var fuzzer = DNSFuzzer(
            seed: 42, responder: responder, state: FuzzWorld.state, corpus: DNSFuzzer.seedCorpus(resolver: resolver, state: FuzzWorld.state)
        )
        let report = fuzzer.run(iterations: 20_000)
        #expect(report.failures.isEmpty, "\(report.failures)")
        #expect(report.parsed > 1_000 && report.replies > 10_000, "\(report)")
    }
}
