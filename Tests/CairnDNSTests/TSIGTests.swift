import CairnCore
import CairnDNS
import CairnTesting
import DNSWire
import Testing

@Suite("TSIG (RFC 8945, HMAC-SHA256): requests checked, replies signed and chained")
struct TSIGTests {
    let key = TSIGKey(name: "xfer-key", secret: Array(0..<32))!
    let now: UInt64 = 1_800_000_000

    func axfr(_ zone: String = "corp.local", id: UInt16 = 7) -> [UInt8] {
        DNSMessage(header: DNSHeader(id: id, flags: 0), questions: [DNSQuestion(name: DNSName(zone)!, type: DNSType.axfr)]).encode().bytes
    }

    func responder(key: TSIGKey?) -> DNSResponder {
        var configuration = FuzzWorld.configuration
        configuration.transferKey = key
        return DNSResponder(resolver: DNSResolver(configuration: configuration))
    }

    /// The TSIG record at the end of a message, and the message without it.
    func split(_ bytes: [UInt8]) throws -> (unsigned: [UInt8], record: DNSRecord) {
        let starts = try DNSMessage.recordStarts(bytes)
        let last = try #require(starts.last)
        let record = try DNSMessage.record(in: bytes, at: last)
        var unsigned = Array(bytes[..<last])
        unsigned[11] -= 1
        return (unsigned, record)
    }

    @Test("A signed request checks; a changed byte, another key, another key name or a time past the fudge do not")
    func check() throws {
        let (signed, _) = TSIG.sign(axfr(), key: key, prior: nil, time: now)
        guard case .valid(let record) = TSIG.check(signed, key: key, now: now + 299) else { return #expect(Bool(false)) }
        #expect(record.keyName.key == "xfer-key" && record.algorithm.key == "hmac-sha256" && record.mac.count == 32)
        #expect(TSIG.check(axfr(), key: key, now: now) == .unsigned)
        var tampered = signed
        tampered[13] ^= 0x20
        if case .failed(let error, _) = TSIG.check(tampered, key: key, now: now) {
            #expect(error == TSIG.badSig)
        } else {
            #expect(Bool(false))
        }
        let other = TSIGKey(name: "xfer-key", secret: Array(repeating: 7, count: 32))!
        if case .failed(let error, _) = TSIG.check(signed, key: other, now: now) {
            #expect(error == TSIG.badSig)
        } else {
            #expect(Bool(false))
        }
        let renamed = TSIGKey(name: "someone", secret: Array(0..<32))!
        if case .failed(let error, _) = TSIG.check(signed, key: renamed, now: now) {
            #expect(error == TSIG.badKey)
        } else {
            #expect(Bool(false))
        }
        if case .failed(let error, _) = TSIG.check(signed, key: nil, now: now) {
            #expect(error == TSIG.badKey)
        } else {
            #expect(Bool(false))
        }
        for late in [now + 301, now - 301] {
            if case .failed(let error, _) = TSIG.check(signed, key: key, now: late) {
                #expect(error == TSIG.badTime)
            } else {
                #expect(Bool(false))
            }
        }
        // A TSIG record that is not the last one is malformed.
        let (twice, _) = TSIG.sign(signed, key: key, prior: nil, time: now)
        #expect(TSIG.check(twice, key: key, now: now) == .malformed)
    }

    @Test("A signed AXFR: every message signed, the first chained to the request's MAC, each later one to the one before")
    func chain() throws {
        var f = RegistryFixture()
        let ns = try f.namespace("big.test", type: .DNS_PUBLIC)
        let svc = try f.service("web", in: ns, records: [.A, .SRV])
        for i in 0..<600 {
            try f.register("instance-\(i)", in: svc, ["AWS_INSTANCE_IPV4": "10.\(i / 250).\(i % 250).1", "AWS_INSTANCE_PORT": "80"])
        }
        let (query, requestMAC) = TSIG.sign(axfr("big.test"), key: key, prior: nil, time: now)
        let (replies, _) = try #require(responder(key: key).respondTCP(to: query, client: [127, 0, 0, 1], state: f.state, now: now))
        #expect(replies.count > 2)
        var prior = requestMAC
        for (i, reply) in replies.enumerated() {
            let (unsigned, record) = try split(reply)
            #expect(record.type == TSIG.type && record.name.key == "xfer-key")
            // Re-sign what was sent without its TSIG, the way RFC 8945 §5.3.1 says the client checks it.
            let (expected, mac) = TSIG.sign(unsigned, key: key, prior: prior, time: now, timersOnly: i > 0)
            #expect(expected == reply, "message \(i)")
            prior = mac
        }
    }

    @Test("With a key: unsigned is REFUSED; BADKEY and BADSIG are NOTAUTH and unsigned; BADTIME is NOTAUTH and signed")
    func errors() throws {
        let r = responder(key: key)
        func reply(_ query: [UInt8], now: UInt64) throws -> (message: DNSMessage, bytes: [UInt8]) {
            let (replies, _) = try #require(r.respondTCP(to: query, client: [127, 0, 0, 1], state: FuzzWorld.state, now: now))
            #expect(replies.count == 1)
            return (try DNSMessage.parse(replies[0]), replies[0])
        }
        #expect(try reply(axfr(), now: now).message.rcode == DNSRcode.refused)
        let wrongKey = TSIGKey(name: "xfer-key", secret: Array(repeating: 1, count: 32))!
        let badSig = try reply(TSIG.sign(axfr(), key: wrongKey, prior: nil, time: now).bytes, now: now)
        #expect(badSig.message.rcode == TSIG.notAuth && badSig.message.answers.isEmpty)
        let (_, sigRecord) = try split(badSig.bytes)
        guard case .raw(let rdata) = sigRecord.data else { return #expect(Bool(false)) }
        #expect(rdata.count == 13 + 6 + 2 + 2 + 2 + 2 + 2 && rdata[21] == 0 && rdata[22] == 0, "no MAC, error BADSIG")
        let (request, requestMAC) = TSIG.sign(axfr(), key: key, prior: nil, time: now - 1_000)
        let badTime = try reply(request, now: now)
        #expect(badTime.message.rcode == TSIG.notAuth)
        let (unsigned, _) = try split(badTime.bytes)
        let resigned = TSIG.sign(
            unsigned, key: key, prior: requestMAC, time: now, error: TSIG.badTime, other: [0, 0] + [0x6B, 0x49, 0xD2, 0x00])
        #expect(resigned.bytes == badTime.bytes, "signed, with the server's time in Other Data")
        // Without a key configured, a signed request gets BADKEY.
        let (unkeyed, _) = try #require(
            responder(key: nil).respondTCP(to: request, client: [127, 0, 0, 1], state: FuzzWorld.state, now: now))
        #expect(try DNSMessage.parse(unkeyed[0]).rcode == TSIG.notAuth)
    }

    @Test("A key needs a name and 16 to 512 bytes of secret")
    func keys() {
        #expect(TSIGKey(name: "k", secret: Array(repeating: 1, count: 15)) == nil)
        #expect(TSIGKey(name: "", secret: Array(repeating: 1, count: 32)) == nil)
        #expect(TSIGKey(name: "k", secret: Array(repeating: 1, count: 513)) == nil)
        #expect(TSIGKey(name: "k", secret: Array(repeating: 1, count: 16)) != nil)
    }
}
