import CairnCore
import CairnTesting
import Testing

@Suite("DNSSEC keys of a namespace: enable, roll, retire, disable, restore")
struct DNSSECKeyTests {
    func key(_ n: UInt8) -> SigningKey {
        SigningKey(privateKey: [UInt8](repeating: n, count: 32), publicKey: [UInt8](repeating: n, count: 64), createdAt: Int64(n))
    }

    @Test("Each change of the keys, and the ones refused")
    func transitions() throws {
        var f = RegistryFixture()
        let ns = try f.namespace("keys.test", type: .DNS_PUBLIC)
        let http = try f.namespace("http-only", type: .HTTP)
        #expect(throws: CairnError.self) { try f.run(.dnssec(namespaceId: http, change: .enable(key(1)))) }
        #expect(throws: CairnError.self) { try f.run(.dnssec(namespaceId: ns, change: .roll(key(2)))) }  // not signed
        try f.run(.dnssec(namespaceId: ns, change: .enable(key(1))))
        #expect(f.state.namespaces[ns]?.signingKeys == [key(1)])
        try f.run(.dnssec(namespaceId: ns, change: .enable(key(3))))  // signed already: no change
        #expect(f.state.namespaces[ns]?.signingKeys == [key(1)])
        #expect(throws: CairnError.self) { try f.run(.dnssec(namespaceId: ns, change: .retire(keyTag: key(1).keyTag))) }  // only key
        #expect(throws: CairnError.self) { try f.run(.dnssec(namespaceId: ns, change: .roll(key(1)))) }  // same tag
        try f.run(.dnssec(namespaceId: ns, change: .roll(key(2))))
        #expect(f.state.namespaces[ns]?.signingKeys == [key(1), key(2)])
        #expect(throws: CairnError.self) { try f.run(.dnssec(namespaceId: ns, change: .roll(key(3)))) }  // one roll at a time
        #expect(throws: CairnError.self) { try f.run(.dnssec(namespaceId: ns, change: .retire(keyTag: key(3).keyTag))) }  // unknown
        try f.run(.dnssec(namespaceId: ns, change: .retire(keyTag: key(1).keyTag)))
        #expect(f.state.namespaces[ns]?.signingKeys == [key(2)])
        try f.run(.dnssec(namespaceId: ns, change: .disable))
        #expect(f.state.namespaces[ns]?.signingKeys == nil)
        try f.run(.dnssec(namespaceId: ns, change: .disable))  // not signed: no change
    }

    @Test("Restore: one or two keys of different tags replace the zone's; the same keys again change nothing")
    func restore() throws {
        var f = RegistryFixture()
        let ns = try f.namespace("keys.test", type: .DNS_PUBLIC)
        #expect(throws: CairnError.self) { try f.run(.dnssec(namespaceId: ns, change: .restore([]))) }
        #expect(throws: CairnError.self) { try f.run(.dnssec(namespaceId: ns, change: .restore([key(1), key(1)]))) }
        #expect(throws: CairnError.self) { try f.run(.dnssec(namespaceId: ns, change: .restore([key(1), key(2), key(3)]))) }
        try f.run(.dnssec(namespaceId: ns, change: .restore([key(4), key(5)])))
        #expect(f.state.namespaces[ns]?.signingKeys == [key(4), key(5)])
        let sequence = f.state.sequence
        try f.run(.dnssec(namespaceId: ns, change: .restore([key(4), key(5)])))
        #expect(f.state.sequence == sequence)
        try f.run(.dnssec(namespaceId: ns, change: .restore([key(6)])))
        #expect(f.state.namespaces[ns]?.signingKeys == [key(6)])
    }

    @Test("Keys are kept in checkpoints and change-log entries")
    func encoded() throws {
        var f = RegistryFixture()
        let ns = try f.namespace("keys.test", type: .DNS_PUBLIC)
        try f.run(.dnssec(namespaceId: ns, change: .enable(key(7))))
        let decoded = try RegistryCodec.decodeState(RegistryCodec.encode(f.state))
        #expect(decoded.namespaces[ns]?.signingKeys == [key(7)])
    }
}
