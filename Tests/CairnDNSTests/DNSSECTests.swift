import CairnCore
import CairnTesting
import Crypto
import DNSWire
import Foundation
import NIOCore
import Testing

@testable import CairnDNS

@Suite("DNSSEC: keys, DS, RRSIGs over the canonical form, compact denial")
struct DNSSECTests {
    /// RFC 6605 §6.1's example key (example.net., ECDSA P-256).
    static let rfcPrivateKey = Array(Data(base64Encoded: "GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=")!)
    static let rfcPublicKey = Array(
        Data(base64Encoded: "GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==")!)

    @Test("RFC 6605's example key has its key tag (55648) and DS digest")
    func rfcVector() throws {
        let key = SigningKey(privateKey: Self.rfcPrivateKey, publicKey: Self.rfcPublicKey, createdAt: 0)
        #expect(key.keyTag == 55648)
        let derived = try P256.Signing.PrivateKey(rawRepresentation: Self.rfcPrivateKey)
        #expect(Array(derived.publicKey.rawRepresentation) == Self.rfcPublicKey)
        #expect(
            DNSSECSigner.dsText(key, apex: DNSName("example.net")!)
                == "55648 13 2 B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17")
    }

    @Test("The NSEC type bitmap: one window per 256 types, as long as its highest type needs")
    func typeBitmap() {
        // RFC 4034 §4.3's example: A MX RRSIG NSEC TYPE1234.
        let bitmap = DNSSECSigner.typeBitmap([1, 15, 46, 47, 1234])
        #expect(
            bitmap == [0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1B]
                + [UInt8](repeating: 0, count: 26) + [0x20])
        // Compact denial of a name: RRSIG, NSEC and NXNAME (128).
        #expect(DNSSECSigner.typeBitmap([46, 47, 128]) == [0x00, 17, 0, 0, 0, 0, 0, 0x03] + [UInt8](repeating: 0, count: 10) + [0x80])
    }

    func signedWorld() throws -> (RegistryFixture, SigningKey) {
        var f = RegistryFixture()
        let ns = try f.namespace("signed.test", type: .DNS_PUBLIC)
        let svc = try f.service("web", in: ns, records: [.A, .SRV])
        for n in 1...3 { try f.register("i\(n)", in: svc, ["AWS_INSTANCE_IPV4": "192.0.2.\(n)", "AWS_INSTANCE_PORT": "80"]) }
        let key = DNSSECSigner.newKey(now: 0)
        try f.run(.dnssec(namespaceId: ns, change: .enable(key)))
        return (f, key)
    }

    func ask(_ name: String, _ type: UInt16, state: RegistryState, dnssecOK: Bool = true, responder: DNSResponder) throws -> DNSMessage {
        let query = DNSMessage(
            header: DNSHeader(id: 7, flags: 0), questions: [DNSQuestion(name: DNSName(name)!, type: type)],
            edns: EDNS(udpPayloadSize: 1232, dnssecOK: dnssecOK)
        ).encode().bytes
        let reply = try #require(responder.respond(to: query, client: [127, 0, 0, 1], transport: .udp, state: state))
        return try DNSMessage.parse(reply.reply)
    }

    @Test("An RRSIG verifies with the zone's public key over the RRset in canonical form, whatever the question's case")
    func rrsigVerifies() throws {
        let (f, key) = try signedWorld()
        let responder = DNSResponder(
            resolver: DNSResolver(configuration: DNSConfiguration(), signer: DNSSECSigner(clock: { 1_800_000_000 })))
        let reply = try ask("WeB.Signed.TEST", DNSType.a, state: f.state, responder: responder)
        #expect(reply.edns?.dnssecOK == true)
        let records = reply.answers.filter { $0.type == DNSType.a }
        #expect(records.count == 3)
        let rrsig = try #require(reply.answers.first { $0.type == DNSType.rrsig })
        guard case .raw(let data) = rrsig.data else { Issue.record("RRSIG data"); return }
        #expect(data[0] == 0 && data[1] == 1 && data[2] == 13 && data[3] == 3)  // covers A, algorithm 13, 3 labels
        let signer = DNSSECSigner.canonicalName(DNSName("signed.test")!)
        let headLength = 18 + signer.count
        #expect(Array(data[18..<headLength]) == signer)
        let inception = UInt32(data[12]) << 24 | UInt32(data[13]) << 16 | UInt32(data[14]) << 8 | UInt32(data[15])
        #expect(inception == UInt32(1_800_000_000 - 1_800_000_000 % 3600 - 3600))
        // What RFC 4034 §3.1.8.1 signs: the RRSIG data without the signature, then each RR in canonical order.
        var signed = Array(data[0..<headLength])
        let owner = DNSSECSigner.canonicalName(DNSName("web.signed.test")!)
        for address in records.compactMap({ record -> [UInt8]? in if case .a(let b) = record.data { b } else { nil } })
            .sorted(by: { $0.lexicographicallyPrecedes($1) })
        {
            signed += owner + [0, 1, 0, 1] + [0, 0, 0, 10] + [0, 4] + address
        }
        let publicKey = try P256.Signing.PublicKey(rawRepresentation: key.publicKeyBytes)
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: data[headLength...])
        #expect(publicKey.isValidSignature(signature, for: signed))
    }

    @Test("A signed answer drawn from many records is one of 16 draws per snapshot, so signing work is bounded")
    func boundedDraws() throws {
        var f = RegistryFixture()
        let ns = try f.namespace("many.test", type: .DNS_PUBLIC)
        let svc = try f.service("web", in: ns, records: [.A])
        for n in 1...30 { try f.register("i\(n)", in: svc, ["AWS_INSTANCE_IPV4": "192.0.2.\(n)"]) }
        try f.run(.dnssec(namespaceId: ns, change: .enable(DNSSECSigner.newKey(now: 0))))
        let signer = DNSSECSigner()
        let responder = DNSResponder(resolver: DNSResolver(configuration: DNSConfiguration(), signer: signer))
        var draws: Set<[String]> = []
        for _ in 0..<400 {
            let reply = try ask("web.many.test", DNSType.a, state: f.state, responder: responder)
            let records = reply.answers.filter { $0.type == DNSType.a }.map { "\($0.data)" }
            #expect(records.count == 8 && reply.answers.count == 9)
            draws.insert(records.sorted())
        }
        #expect(draws.count > 1 && draws.count <= Int(DNSSECSigner.draws))
        #expect(signer.signatures.withLock { $0.count } <= Int(DNSSECSigner.draws))
        // Unsigned (no DO): drawn afresh each time, as always.
        var plain: Set<[String]> = []
        for _ in 0..<100 {
            let reply = try ask("web.many.test", DNSType.a, state: f.state, dnssecOK: false, responder: responder)
            plain.insert(reply.answers.map { "\($0.data)" }.sorted())
        }
        #expect(plain.count > Int(DNSSECSigner.draws))
    }

    @Test("Compact denial: NXDOMAIN becomes NOERROR with one NSEC (NXNAME); NODATA's NSEC lists the name's types")
    func compactDenial() throws {
        let (f, _) = try signedWorld()
        let responder = DNSResponder(resolver: DNSResolver(configuration: DNSConfiguration()))
        let missing = try ask("nothere.signed.test", DNSType.a, state: f.state, responder: responder)
        #expect(missing.rcode == DNSRcode.noError && missing.answers.isEmpty)
        #expect(missing.authority.map(\.type) == [DNSType.soa, DNSType.nsec, DNSType.rrsig, DNSType.rrsig])
        let nsec = try #require(missing.authority.first { $0.type == DNSType.nsec })
        guard case .raw(let next) = nsec.data else { Issue.record("NSEC data"); return }
        let expectedNext = [UInt8(1), 0] + DNSSECSigner.canonicalName(DNSName("nothere.signed.test")!)
        #expect(Array(next.prefix(expectedNext.count)) == expectedNext)
        #expect(Array(next.dropFirst(expectedNext.count)) == DNSSECSigner.typeBitmap([DNSType.rrsig, DNSType.nsec, DNSType.nxname]))

        let nodata = try ask("web.signed.test", DNSType.aaaa, state: f.state, responder: responder)
        let bitmap = try #require(nodata.authority.first { $0.type == DNSType.nsec })
        guard case .raw(let data) = bitmap.data else { Issue.record("NSEC data"); return }
        let nextLength = 2 + DNSSECSigner.canonicalName(DNSName("web.signed.test")!).count
        #expect(Array(data.dropFirst(nextLength)) == DNSSECSigner.typeBitmap([DNSType.a, DNSType.srv, DNSType.rrsig, DNSType.nsec]))

        let apex = try ask("signed.test", DNSType.a, state: f.state, responder: responder)
        let apexNSEC = try #require(apex.authority.first { $0.type == DNSType.nsec })
        guard case .raw(let apexData) = apexNSEC.data else { Issue.record("NSEC data"); return }
        let apexNext = 2 + DNSSECSigner.canonicalName(DNSName("signed.test")!).count
        #expect(
            Array(apexData.dropFirst(apexNext))
                == DNSSECSigner.typeBitmap([DNSType.ns, DNSType.soa, DNSType.rrsig, DNSType.nsec, DNSType.dnskey]))
    }

    @Test("Without the DO bit a signed zone answers as an unsigned one; its DNSKEY is there for anyone")
    func withoutDO() throws {
        let (f, key) = try signedWorld()
        let responder = DNSResponder(resolver: DNSResolver(configuration: DNSConfiguration()))
        let plain = try ask("web.signed.test", DNSType.a, state: f.state, dnssecOK: false, responder: responder)
        #expect(plain.answers.allSatisfy { $0.type == DNSType.a } && plain.edns?.dnssecOK == false)
        #expect(try ask("nothere.signed.test", DNSType.a, state: f.state, dnssecOK: false, responder: responder).rcode == DNSRcode.nxDomain)
        let dnskey = try ask("signed.test", DNSType.dnskey, state: f.state, dnssecOK: false, responder: responder)
        #expect(dnskey.answers.map(\.data) == [.raw(key.dnskeyData)])
    }

    @Test("The ready-answer cache keeps DO and plain queries apart, echoes DO, and holds a signed answer until the hour ends")
    func cacheAndDO() throws {
        let (f, _) = try signedWorld()
        var g = RegistryFixture()
        let ns = try g.namespace("plain.test", type: .DNS_PUBLIC)
        let svc = try g.service("web", in: ns, records: [.A])
        try g.register("i1", in: svc, ["AWS_INSTANCE_IPV4": "192.0.2.1"])
        var responder = DNSResponder(resolver: DNSResolver(configuration: DNSConfiguration()))
        var cache = DNSAnswerCache()
        func udp(_ name: String, _ state: RegistryState, dnssecOK: Bool) throws -> DNSMessage {
            let query = DNSMessage(
                header: DNSHeader(id: 9, flags: 0), questions: [DNSQuestion(name: DNSName(name)!, type: DNSType.a)],
                edns: EDNS(udpPayloadSize: 1232, dnssecOK: dnssecOK)
            ).encode().bytes
            var out = ByteBufferAllocator().buffer(capacity: 512)
            _ = query.withUnsafeBytes {
                responder.respond(toUDP: $0, client: DNSClient(bytes: [127, 0, 0, 1]), state: state, cache: &cache, into: &out)
            }
            return try DNSMessage.parse(out.readBytes(length: out.readableBytes) ?? [])
        }
        var first: DNSMessage?
        for round in 0..<3 {
            let signed = try udp("web.signed.test", f.state, dnssecOK: true)
            #expect(signed.answers.contains { $0.type == DNSType.rrsig } && signed.edns?.dnssecOK == true)
            if round == 0 { first = signed } else { #expect(Set(signed.answers) == Set(first?.answers ?? [])) }
            let missing = try udp("nothere.signed.test", f.state, dnssecOK: true)
            #expect(missing.rcode == DNSRcode.noError && missing.authority.map(\.type).contains(DNSType.nsec))
            let plain = try udp("web.signed.test", f.state, dnssecOK: false)
            #expect(!plain.answers.contains { $0.type == DNSType.rrsig } && plain.edns?.dnssecOK == false)
            let unsigned = try udp("web.plain.test", g.state, dnssecOK: true)
            #expect(unsigned.answers.map(\.type) == [DNSType.a] && unsigned.edns?.dnssecOK == true)
        }
        #expect(cache.hits == 8)
        // Signed at a time whose hour has long ended: such an entry is never used.
        responder = DNSResponder(resolver: DNSResolver(configuration: DNSConfiguration(), signer: DNSSECSigner(clock: { 1_000 })))
        cache = DNSAnswerCache()
        for _ in 0..<3 { _ = try udp("web.signed.test", f.state, dnssecOK: true) }
        #expect(cache.hits == 0)
    }
}
