import DNSWire
import Testing

@Suite("Records in zone-file presentation, as dig prints them")
struct PresentationTests {
    static let name = DNSName("orders.corp.local")!

    @Test(
        "Each record type prints as dig's answer section does",
        arguments: [
            (DNSRecord(name: name, type: DNSType.a, ttl: 10, data: .a([10, 0, 1, 10])), "orders.corp.local. 10 IN A 10.0.1.10"),
            (
                DNSRecord(
                    name: name, type: DNSType.srv, ttl: 60,
                    data: .srv(priority: 1, weight: 1, port: 8080, target: DNSName("i-1.orders.corp.local")!)),
                "orders.corp.local. 60 IN SRV 1 1 8080 i-1.orders.corp.local."
            ),
            (
                DNSRecord(name: name, type: DNSType.cname, ttl: 300, data: .cname(DNSName("edge.example.com")!)),
                "orders.corp.local. 300 IN CNAME edge.example.com."
            ),
            (
                DNSRecord(
                    name: name, type: DNSType.aaaa, ttl: 5, data: .aaaa([0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1])),
                "orders.corp.local. 5 IN AAAA 2001:db8::1"
            ),
            (DNSRecord(name: name, type: 99, ttl: 1, data: .raw([0xab, 0x01])), "orders.corp.local. 1 IN TYPE99 \\# 2 ab01"),
        ])
    func presentation(record: DNSRecord, text: String) {
        #expect(record.description == text)
    }

    @Test(
        "IPv6 addresses follow RFC 5952: the longest zero run is ::, a single zero group stays",
        arguments: [
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("0:0:0:0:0:0:0:1", "::1"),
            ("0:0:0:0:0:0:0:0", "::"),
            ("fe80:0:0:0:0:0:0:0", "fe80::"),
            ("2001:DB8:0:0:0:0:AB:CD", "2001:db8::ab:cd"),
        ])
    func ipv6(groups: String, text: String) {
        let bytes = groups.split(separator: ":").flatMap { g -> [UInt8] in
            let v = UInt16(g, radix: 16)!
            return [UInt8(v >> 8), UInt8(v & 0xFF)]
        }
        #expect(RData.aaaa(bytes).description == text)
    }
}
