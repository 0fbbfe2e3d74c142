import DNSWire
import Testing

@testable import CairnDNS

@Suite("Zone journal: the differences IXFR answers with")
struct ZoneJournalTests {
    func a(_ name: String, _ last: UInt8) -> DNSRecord {
        DNSRecord(name: DNSName(name)!, type: DNSType.a, ttl: 60, data: .a([10, 0, 0, last]))
    }

    func snapshot(_ view: UInt64, _ services: [String: (UInt64, [DNSRecord])]) -> ZoneSnapshot {
        ZoneSnapshot(
            version: DNSResolver.ZoneVersion(namespaces: 1, services: 1, newestView: view), apex: [],
            services: services.mapValues { (view: $0.0, records: $0.1) })
    }

    @Test("Versions compose: a record removed and added back cancels out; services gone or new count whole")
    func compose() throws {
        let journal = ZoneJournal()
        journal.record(
            zone: "z", serial: 10, snapshot: snapshot(1, ["web": (1, [a("web.z", 1), a("web.z", 2)]), "old": (1, [a("old.z", 9)])]))
        journal.record(zone: "z", serial: 11, snapshot: snapshot(2, ["web": (2, [a("web.z", 1)]), "old": (1, [a("old.z", 9)])]))
        journal.record(
            zone: "z", serial: 12,
            snapshot: snapshot(3, ["web": (3, [a("web.z", 1), a("web.z", 2), a("web.z", 3)]), "new": (3, [a("new.z", 7)])]))
        journal.record(
            zone: "z", serial: 13,
            snapshot: snapshot(3, ["web": (3, [a("web.z", 1), a("web.z", 2), a("web.z", 3)]), "new": (3, [a("new.z", 7)])]))
        let fromTen = try #require(journal.difference(zone: "z", from: 10))
        #expect(fromTen.to == 13)
        #expect(fromTen.removed == [a("old.z", 9)])
        #expect(Set(fromTen.added) == [a("web.z", 3), a("new.z", 7)], "web.z 2 went and came back")
        let fromEleven = try #require(journal.difference(zone: "z", from: 11))
        #expect(Set(fromEleven.added) == [a("web.z", 2), a("web.z", 3), a("new.z", 7)])
        let fromTwelve = try #require(journal.difference(zone: "z", from: 12))
        #expect(fromTwelve.removed.isEmpty && fromTwelve.added.isEmpty)
        #expect(journal.difference(zone: "z", from: 9) == nil && journal.difference(zone: "other", from: 10) == nil)
        // An older serial than the newest is ignored.
        journal.record(zone: "z", serial: 5, snapshot: snapshot(9, [:]))
        #expect(journal.difference(zone: "z", from: 12)?.to == 13)
    }

    @Test("Bounded: past the most versions kept, the oldest serials are forgotten (the whole zone for them)")
    func bounded() {
        let journal = ZoneJournal()
        for serial in 0...UInt32(ZoneJournal.maxVersions + 10) {
            journal.record(
                zone: "z", serial: serial, snapshot: snapshot(UInt64(serial), ["web": (UInt64(serial), [a("web.z", UInt8(serial % 200))])]))
        }
        #expect(journal.difference(zone: "z", from: 0) == nil && journal.difference(zone: "z", from: 9) == nil)
        #expect(journal.difference(zone: "z", from: 10) != nil)
        #expect(
            journal.difference(zone: "z", from: UInt32(ZoneJournal.maxVersions + 9))?.added == [
                a("web.z", UInt8((ZoneJournal.maxVersions + 10) % 200))
            ])
    }

    @Test("Trimming keeps the newest differences within a share of changed records, and moves the oldest serial on")
    func trim() {
        let differences = (1...6).map { n in
            ZoneJournal.Difference(serial: UInt32(10 + n), removed: [], added: (0..<n).map { a("web.z", UInt8($0)) })
        }
        var zone = ZoneJournal.Zone(
            serial: 16, snapshot: snapshot(1, [:]), differences: differences, oldest: 10, recordsInDifferences: 21)
        ZoneJournal.trim(&zone, to: 11)
        #expect(zone.differences.map(\.serial) == [15, 16] && zone.recordsInDifferences == 11 && zone.oldest == 14)
        ZoneJournal.trim(&zone, to: 0)
        #expect(zone.differences.isEmpty && zone.recordsInDifferences == 0 && zone.oldest == 16)
    }
}
