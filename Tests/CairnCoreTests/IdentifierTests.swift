import CairnCore
import Foundation
import Testing

@Suite("Ids, ARNs and addresses")
struct IdentifierTests {
    @Test("Generated ids have AWS's shapes")
    func shapes() {
        var ids = IdentifierGenerator(seed: 7)
        let base32 = Set("abcdefghijklmnopqrstuvwxyz234567")
        let ns = ids.namespaceId()
        #expect(ns.hasPrefix("ns-") && ns.count == 19 && Set(ns.dropFirst(3)).isSubset(of: base32))
        let srv = ids.serviceId()
        #expect(srv.hasPrefix("srv-") && srv.count == 20 && Set(srv.dropFirst(4)).isSubset(of: base32))
        let zone = ids.hostedZoneId()
        #expect(zone.hasPrefix("Z") && (14...22).contains(zone.count) && zone.allSatisfy { $0.isUppercase || $0.isNumber })
    }

    @Test("Operation ids share a prefix per target and end in the base36 creation time")
    func operationIds() {
        let a = IdentifierGenerator.operationId(target: "instance/srv-x/i-1", milliseconds: 1_587_055_860_121)
        let b = IdentifierGenerator.operationId(target: "instance/srv-x/i-1", milliseconds: 1_587_055_860_999)
        let c = IdentifierGenerator.operationId(target: "instance/srv-x/i-2", milliseconds: 1_587_055_860_121)
        #expect(a.hasSuffix("-k9302yzd"))
        #expect(a.split(separator: "-")[0].count == 32)
        #expect(a.split(separator: "-")[0] == b.split(separator: "-")[0])
        let prefixA = Array(a.split(separator: "-")[0])
        let prefixC = Array(c.split(separator: "-")[0])
        #expect(zip(prefixA, prefixC).filter { $0 != $1 }.count > 16, "near-identical targets must not share most of the prefix")
    }

    @Test("Operation id prefixes stay what earlier releases derived (stored ids must not change meaning)")
    func operationIdPrefixesAreStable() {
        let expected = [
            "instance/srv-abc/i-1": "awo2lfcwg7iigdm5qna5rii45aef2ar2", "": "57ib6yf2teusnokgpdvinvoldkokazxr",
            "namespace/ns-x": "h2xbnr52k57clax7etv3734tet2jwfxt", "ü/ß": "gnbet4lralf3yqxctflvfsxm2lf7kcgx",
        ]
        for (target, prefix) in expected {
            #expect(IdentifierGenerator.operationId(target: target, milliseconds: 35) == prefix + "-z")
        }
    }

    @Test("Request ids are version-4 UUIDs in lower case, none repeated")
    func requestIds() throws {
        var seen = Set<String>()
        for _ in 0..<100_000 {
            let id = RequestID.next()
            seen.insert(id)
            let uuid = try #require(UUID(uuidString: id))
            #expect(uuid.uuidString.lowercased() == id)
            let bytes = uuid.uuid
            #expect(bytes.6 >> 4 == 4, "version 4")
            #expect(bytes.8 >> 6 == 0b10, "RFC 4122 variant")
        }
        #expect(seen.count == 100_000)
    }

    @Test("Namespace ARNs are told from service ARNs by their resource part")
    func namespaceARNs() {
        #expect(ARN.isNamespace("arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-abc"))
        #expect(!ARN.isNamespace("arn:aws:servicediscovery:us-east-1:123456789012:service/srv-abc"))
        #expect(!ARN.isNamespace(":namespace"))
        #expect(!ARN.isNamespace(""))
        #expect(ARN.isNamespace(":namespace/"))
    }

    @Test(
        "ARNs parse only when they are servicediscovery ARNs",
        arguments: [
            ("arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-abc", "namespace", "ns-abc"),
            ("arn:aws-cn:servicediscovery:cn-north-1:123456789012:service/srv-x", "service", "srv-x"),
            ("arn:aws:servicediscovery:cn-north-1:123456789012:service/srv-x", nil, nil),
            ("arn:aws:ec2:us-east-1:123456789012:instance/i-1", nil, nil),
            ("arn:aws:servicediscovery:us-east-1:123456789012:namespace/", nil, nil),
            ("ns-abc", nil, nil),
        ] as [(String, String?, String?)])
    func arns(text: String, kind: String?, id: String?) {
        let parsed = ARN.parse(text)
        #expect(parsed?.kind == kind)
        #expect(parsed?.id == id)
    }

    @Test(
        "IPv4 addresses",
        arguments: [
            ("10.0.0.1", [10, 0, 0, 1] as [UInt8]?), ("255.255.255.255", [255, 255, 255, 255]), ("256.0.0.1", nil),
            ("1.2.3", nil), ("01.2.3.4", nil), ("1.2.3.4 ", nil), ("", nil), ("a.b.c.d", nil),
            ("0.0.0.0", [0, 0, 0, 0]), ("1.2.3.4.5", nil), ("1..3.4", nil), ("1.2.3.", nil), (".1.2.3", nil),
            ("1.2.3.00", nil), ("1.2.3.1000", nil), ("1.2.3.٣", nil), ("+1.2.3.4", nil), ("1.2.3.25 5", nil),
        ])
    func ipv4(text: String, bytes: [UInt8]?) {
        #expect(IPAddress.ipv4(text) == bytes)
    }

    @Test(
        "IPv6 addresses",
        arguments: [
            ("::1", [UInt8](repeating: 0, count: 15) + [1]), ("2001:db8::", [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 12)),
            ("::ffff:10.0.0.1", [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 10, 0, 0, 1]),
            ("1:2:3:4:5:6:7:8", [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]), ("1:2:3:4:5:6:7:8:9", nil), ("1::2::3", nil),
            ("12345::", nil), ("g::", nil), (":", nil), ("1:2:3:4:5:6:7::8", nil),
        ] as [(String, [UInt8]?)])
    func ipv6(text: String, bytes: [UInt8]?) {
        #expect(IPAddress.ipv6(text) == bytes)
    }
}
