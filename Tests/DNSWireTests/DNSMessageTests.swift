import DNSWire
import Testing

func hex(_ s: String) -> [UInt8] {
    let clean = s.filter { !$0.isWhitespace }
    return stride(from: 0, to: clean.count, by: 2).map {
        let start = clean.index(clean.startIndex, offsetBy: $0)
        return UInt8(clean[start..<clean.index(start, offsetBy: 2)], radix: 16)!
    }
}

@Suite("DNS messages: golden bytes and round trips")
struct DNSMessageTests {
    /// `dig @127.0.0.1 orders-2.orders.corp.local A` (BIND 9.18): RD+AD, EDNS 1232 with a COOKIE option.
    static let digQuery = hex(
        "96ea 0120 0001 0000 0000 0001 086f 7264 6572 732d 3206 6f72 6465 7273 0463 6f72 7005 6c6f 6361 6c00 0001 0001"
            + "0000 2904 d000 0000 0000 0c00 0a00 0810 66e1 f0ff f2d9 f5")

    @Test("A captured dig query parses")
    func digQueryParses() throws {
        let message = try DNSMessage.parse(Self.digQuery)
        #expect(message.header.id == 0x96EA && message.header.recursionDesired && !message.header.isResponse)
        #expect(message.questions == [DNSQuestion(name: DNSName("orders-2.orders.corp.local")!, type: DNSType.a)])
        #expect(message.edns?.udpPayloadSize == 1232)
        #expect(message.edns?.options.count == 12)
        #expect(message.encode().bytes == Self.digQuery)
    }

    /// dnspython 2.9: `make_query("orders.corp.local", "A")` without EDNS.
    @Test("A captured dnspython query round-trips byte for byte")
    func dnspythonQuery() throws {
        let bytes = hex("81d901000001000000000000066f726465727304636f7270056c6f63616c0000010001")
        let message = try DNSMessage.parse(bytes)
        #expect(message.edns == nil && message.questions.first?.name.key == "orders.corp.local")
        #expect(message.encode().bytes == bytes)
    }

    @Test("An answer compresses names and parses back to the same records")
    func answerRoundTrip() throws {
        let q = DNSName("OrDeRs.corp.local")!
        var header = DNSHeader(id: 7, flags: 0x8500)
        header.rcode = 0
        let message = DNSMessage(
            header: header, questions: [DNSQuestion(name: q, type: DNSType.srv)],
            answers: [
                DNSRecord(
                    name: q, type: DNSType.srv, ttl: 10,
                    data: .srv(priority: 1, weight: 1, port: 8080, target: q.prepending([Array("i-1".utf8)]))),
                DNSRecord(name: q, type: DNSType.a, ttl: 10, data: .a([10, 0, 0, 1])),
                DNSRecord(name: q, type: DNSType.aaaa, ttl: 10, data: .aaaa(Array(repeating: 0, count: 15) + [1])),
                DNSRecord(name: q, type: DNSType.cname, ttl: 10, data: .cname(DNSName("target.example.com")!)),
            ],
            authority: [
                DNSRecord(
                    name: DNSName("corp.local")!, type: DNSType.soa, ttl: 60,
                    data: .soa(
                        SOAData(
                            mname: DNSName("ns1.cairn.internal")!, rname: DNSName("hostmaster.cairn.internal")!, serial: 9, refresh: 7200,
                            retry: 900, expire: 1_209_600, minimum: 86_400)))
            ],
            edns: EDNS(udpPayloadSize: 1232))
        let (bytes, truncated) = message.encode()
        #expect(!truncated)
        #expect(try DNSMessage.parse(bytes) == message)
        // The answer owners point back at the question (offset 12): 0xC00C.
        #expect(bytes.count == 228)
        #expect(zip(bytes, bytes.dropFirst()).contains { $0 == 0xC0 && $1 == 0x0C })
    }

    @Test("Too big for the limit: header, question and OPT with TC")
    func truncation() throws {
        let q = DNSName("big.corp.local")!
        let answers = (0..<100).map { DNSRecord(name: q, type: DNSType.a, ttl: 1, data: .a([10, 0, UInt8($0 / 256), UInt8($0 % 256)])) }
        let message = DNSMessage(
            header: DNSHeader(id: 1, flags: 0x8400), questions: [DNSQuestion(name: q, type: DNSType.a)], answers: answers,
            edns: EDNS(udpPayloadSize: 1232))
        let (bytes, truncated) = message.encode(maxSize: 512)
        #expect(truncated && bytes.count <= 512)
        let parsed = try DNSMessage.parse(bytes)
        #expect(parsed.header.truncated && parsed.answers.isEmpty && parsed.questions.count == 1 && parsed.edns != nil)
        #expect(message.encode().bytes.count > 1600)
    }

    @Test("Names compare case-insensitively and keep their case")
    func names() {
        let a = DNSName("OrDeRs.Corp.LOCAL")!
        #expect(a == DNSName("orders.corp.local")!)
        #expect(a.description == "OrDeRs.Corp.LOCAL.")
        #expect(a.key == "orders.corp.local")
        #expect(a.isSubdomain(of: DNSName("corp.local")!))
        #expect(!DNSName("xcorp.local")!.isSubdomain(of: DNSName("corp.local")!))
        #expect(DNSName(String(repeating: "a", count: 64) + ".com") == nil)
        #expect(DNSName("a..b") == nil)
    }
}

@Suite("Malformed messages fail to parse, never crash")
struct DNSMalformedTests {
    static let header = "0001 0000 0001 0000 0000 0000"

    static let cases: [(String, String, DNSParseError)] = [
        ("shorter than a header", "0001 00", .truncated),
        ("question count larger than the data", "0001 0000 0005 0000 0000 0000 0161 00 0001 0001", .truncated),
        ("name runs past the end", header + "05 6162", .truncated),
        (
            "label longer than 63 (0x40 is a reserved label type)", header + "40" + String(repeating: "61", count: 64) + "00 0001 0001",
            .badLabelType
        ),
        (
            "name longer than 255", header + String(repeating: "3f" + String(repeating: "61", count: 63), count: 5) + "00 0001 0001",
            .nameTooLong
        ),
        ("pointer to itself", header + "c00c 0001 0001", .badPointer),
        ("pointer forwards", header + "c010 0001 0001 00", .badPointer),
        ("pointer past the end", header + "c0ff 0001 0001", .badPointer),
        ("pointer loop through two names", "0001 0000 0002 0000 0000 0000 0161 c012 0001 0001 0162 c00c 0001 0001", .badPointer),
        ("half a pointer", header + "c0", .truncated),
        ("missing type and class", header + "0161 00", .truncated),
        ("reserved label type 0x80", header + "8161 00 0001 0001", .badLabelType),
        ("record data longer than the message", "0001 8000 0000 0001 0000 0000 00 0001 0001 0000 0001 0010 0a00", .truncated),
        (
            "A record of 3 bytes is kept raw, but length must match", "0001 8000 0000 0001 0000 0000 00 0001 0001 0000 0001 0004 0a0000",
            .truncated
        ),
        ("truncated OPT", "0001 0000 0000 0000 0000 0001 00 0029 1000 0000 0000 0004 000a", .truncated),
        ("OPT not at the root", "0001 0000 0000 0000 0000 0001 0161 00 0029 1000 0000 0000 0000", .badOPT),
        ("two OPT records", "0001 0000 0000 0000 0000 0002 00 0029 1000 0000 0000 0000 00 0029 1000 0000 0000 0000", .badOPT),
        ("trailing bytes", header + "0161 00 0001 0001 ff", .trailingBytes),
    ]

    @Test("Table of malformed inputs", arguments: cases)
    func malformed(label: String, bytes: String, error: DNSParseError) {
        #expect(throws: error, "\(label)") { try DNSMessage.parse(hex(bytes)) }
    }
}
