import CairnCore
import CairnTesting
import DNSWire
import NIOCore
import Testing

@testable import CairnDNS

@Suite("DNS ready answers: the same replies as the full path")
struct AnswerCacheTests {
    let resolver = DNSResolver(configuration: FuzzWorld.configuration)
    var responder: DNSResponder { DNSResponder(resolver: resolver) }

    func query(_ name: String, _ type: UInt16, id: UInt16 = 0x1234, flags: UInt16 = 0x0100, edns: EDNS? = nil) -> [UInt8] {
        DNSMessage(header: DNSHeader(id: id, flags: flags), questions: [DNSQuestion(name: DNSName(name)!, type: type)], edns: edns)
            .encode().bytes
    }

    func fast(_ q: [UInt8], client: [UInt8] = [127, 0, 0, 1], state: RegistryState = FuzzWorld.state, cache: inout DNSAnswerCache)
        -> [UInt8]?
    {
        var out = ByteBufferAllocator().buffer(capacity: 512)
        let answered = q.withUnsafeBytes {
            responder.respond(toUDP: $0, client: DNSClient(bytes: client), state: state, cache: &cache, into: &out)
        }
        return answered == nil ? nil : Array(out.readableBytesView)
    }

    func slow(_ q: [UInt8], client: [UInt8] = [127, 0, 0, 1], state: RegistryState = FuzzWorld.state) -> [UInt8]? {
        responder.respond(to: q, client: client, transport: .udp, state: state)?.reply
    }

    @Test("Every name, type, case, EDNS and client: first (stored) and repeated (ready) answers match the full path")
    func differential() throws {
        var cache = DNSAnswerCache()
        let names = [
            "web.corp.local", "WeB.CoRp.LoCaL", "_http._tcp.corp.local", "_HTTP._tcp.corp.local", "i1._http._tcp.corp.local",
            "I7._http._tcp.CORP.local", "_tcp.corp.local", "alias.corp.local", "corp.local", "www.example.com", "nope.example.com",
            "nope.example.org", "x.y.corp.local",
        ]
        let types = [DNSType.a, DNSType.aaaa, DNSType.srv, DNSType.cname, DNSType.soa, DNSType.ns, DNSType.any, 16, DNSType.axfr]
        let clients: [[UInt8]] = [[127, 0, 0, 1], [127, 0, 0, 2], [10, 9, 9, 9]]
        for name in names {
            for type in types {
                for edns in [nil, EDNS(udpPayloadSize: 4096), EDNS(udpPayloadSize: 1232, dnssecOK: true, options: [0, 10, 0, 2, 1, 2])] {
                    for client in clients {
                        let q = query(name, type, edns: edns)
                        for round in 0..<3 {
                            let f = try #require(fast(q, client: client, cache: &cache))
                            let s = try #require(slow(q, client: client))
                            let difference = DNSAnswerCheck.difference(
                                query: q, fast: f, slow: s, resolver: resolver, client: client, state: FuzzWorld.state)
                            #expect(difference == nil, "\(name) \(type) \(String(describing: edns)) \(client) round \(round)")
                        }
                    }
                }
            }
        }
        #expect(cache.hits > 1_000, "hits \(cache.hits), misses \(cache.misses)")
    }

    @Test("A multivalue answer draws 8 different healthy instances at random; a weighted one draws one")
    func draws() throws {
        var cache = DNSAnswerCache()
        var seen: Set<String> = []
        for _ in 0..<300 {
            let reply = try DNSMessage.parse(try #require(fast(query("web.corp.local", DNSType.a), cache: &cache)))
            let addresses = reply.answers.map { "\($0.data)" }
            #expect(addresses.count == 8 && Set(addresses).count == 8)
            seen.formUnion(addresses)
        }
        // 12 instances, web-3 unhealthy: every healthy one turns up, the unhealthy one never.
        #expect(seen.count == 11 && !seen.contains("10.0.0.3"))
        var orders: Set<[String]> = []
        for _ in 0..<50 {
            let reply = try DNSMessage.parse(try #require(fast(query("www.example.com", DNSType.a), cache: &cache)))
            #expect(reply.answers.count == 1)
            orders.insert(reply.answers.map { "\($0.data)" })
        }
        #expect(orders == [["192.0.2.1"]])
        #expect(cache.hits >= 340)
    }

    @Test("The id, RD and the question's case come from each query; SRV targets follow the case asked")
    func perQuery() throws {
        var cache = DNSAnswerCache()
        _ = fast(query("_http._tcp.corp.local", DNSType.srv, edns: EDNS(udpPayloadSize: 1232)), cache: &cache)
        let q = query("_HTTP._Tcp.corp.local", DNSType.srv, id: 0xBEEF, flags: 0, edns: EDNS(udpPayloadSize: 1232))
        let bytes = try #require(fast(q, cache: &cache))
        let reply = try DNSMessage.parse(bytes)
        #expect(reply.header.id == 0xBEEF && !reply.header.recursionDesired && reply.header.authoritative)
        #expect(Array(bytes[12..<(12 + 23 + 4)]) == Array(q[12..<(12 + 23 + 4)]))
        for case .srv(_, _, _, let target) in reply.answers.map(\.data) {
            #expect(target.description.hasSuffix("._HTTP._Tcp.corp.local."))
        }
    }

    @Test("A new snapshot is answered at once; a private zone stays invisible to other networks")
    func freshness() throws {
        var cache = DNSAnswerCache()
        var fixture = RegistryFixture()
        let ns = try fixture.namespace("lab.local", type: .DNS_PRIVATE, network: "lab")
        let api = try fixture.service("api", in: ns, records: [.A])
        try fixture.register("one", in: api, ["AWS_INSTANCE_IPV4": "10.5.0.1"])
        let before = fixture.state
        try fixture.register("two", in: api, ["AWS_INSTANCE_IPV4": "10.5.0.2"])
        let after = fixture.state
        let q = query("api.lab.local", DNSType.a)
        for _ in 0..<3 { #expect(try DNSMessage.parse(try #require(fast(q, state: before, cache: &cache))).answers.count == 1) }
        #expect(try DNSMessage.parse(try #require(fast(q, state: after, cache: &cache))).answers.count == 2)
        // 127.0.0.2 is in "default" but not in "lab": refused, though the cache holds the lab client's answer.
        let other = try DNSMessage.parse(try #require(fast(q, client: [127, 0, 0, 2], state: after, cache: &cache)))
        #expect(other.header.rcode == DNSRcode.refused && other.answers.isEmpty)
    }

    @Test("What the ready path does not take gets the full path's bytes: pointers, trailing bytes, BADVERS, NOTIMP, runts")
    func others() throws {
        var cache = DNSAnswerCache()
        let plain = query("www.example.com", DNSType.a)
        var pointer = Array(plain[0..<12]) + [3] + Array("www".utf8) + [0xC0, 0x1C] + [0, 1, 0, 1]
        pointer += [7] + Array("example".utf8) + [3] + Array("com".utf8) + [0]
        let cases: [[UInt8]] = [
            plain + [0], pointer, query("www.example.com", DNSType.a, edns: EDNS(udpPayloadSize: 1232, version: 1)),
            query("www.example.com", DNSType.a, flags: 0x2100), Array(plain.prefix(14)), query("www.example.com", DNSType.a, flags: 0x8100),
        ]
        for q in cases {
            for _ in 0..<2 {
                #expect(fast(q, cache: &cache) == slow(q))
            }
        }
        #expect(cache.hits == 0)
    }

    @Test("An answer over the client's size goes the full way and is truncated there")
    func truncation() throws {
        var cache = DNSAnswerCache()
        let q = query("_http._tcp.corp.local", DNSType.srv)
        for _ in 0..<3 {
            let f = try #require(fast(q, cache: &cache))
            #expect(f.count <= 512)
            let s = try #require(slow(q))
            #expect(
                DNSAnswerCheck.difference(query: q, fast: f, slow: s, resolver: resolver, client: [127, 0, 0, 1], state: FuzzWorld.state)
                    == nil)
        }
    }

    @Test("Questions whose slots would coincide are kept side by side: a second round of 24 questions in 64 slots all hit")
    func sets() throws {
        var cache = DNSAnswerCache(slots: 64)
        let questions = (0..<24).map { query("n\($0).example.com", DNSType.a) }
        for q in questions { _ = try #require(fast(q, cache: &cache)) }
        let stored = cache.misses
        for q in questions { _ = try #require(fast(q, cache: &cache)) }
        // Direct-mapped, these 24 shared slots and evicted each other in turn (6 misses in the second round).
        #expect(cache.misses == stored, "\(cache.misses - stored) misses in the second round")
        #expect(cache.hits == questions.count)
    }

    @Test("Memory is bounded: a flood of distinct names fills the fixed slots and no more")
    func bounded() throws {
        var cache = DNSAnswerCache(slots: 64)
        for i in 0..<5_000 { _ = fast(query("n\(i).example.com", DNSType.a), cache: &cache) }
        #expect(cache.storedEntries <= 64)
    }
}
