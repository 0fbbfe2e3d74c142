import DNSWire
import Synchronization

/// A zone's records as its services publish them, each service's at its view version: what the journal compares.
struct ZoneSnapshot: Sendable {
    var version: DNSResolver.ZoneVersion
    /// Records at the apex (the NS).
    var apex: [DNSRecord]
    /// Service id → its view version and records.
    var services: [String: (view: UInt64, records: [DNSRecord])]
}

/// What incremental zone transfers (IXFR, RFC 1995) need: for each zone, its services' records at the serial it was
/// last seen at, and the differences between the serials before that, newest last. A zone is seen when it is
/// transferred or checked for a NOTIFY, so the serials here are those secondaries hold. Noting a version compares
/// only the services whose view moved, and answering an IXFR composes the differences since the secondary's serial,
/// so neither costs work in proportion to the zone. Bounded: at most `maxVersions` serials per zone and
/// `maxRecords` records across a zone's differences; a secondary whose serial fell out gets the whole zone. Kept in
/// memory: after a restart, the first IXFR of each zone is answered in full.
final class ZoneJournal: Sendable {
    struct Difference: Sendable {
        let serial: UInt32
        /// What changed from the serial before to `serial` (both empty: the same records at a newer serial).
        let removed: [DNSRecord]
        let added: [DNSRecord]
    }

    struct Zone: Sendable {
        var serial: UInt32
        var snapshot: ZoneSnapshot
        /// Oldest first; the last one leads to `serial`. `oldest` is the serial before the first one.
        var differences: [Difference]
        var oldest: UInt32
        var recordsInDifferences: Int
    }

    static let maxVersions = 256
    static let maxRecords = 200_000
    static let maxZones = 10_000

    private let zones = Mutex<[String: Zone]>([:])

    /// Notes the zone (by namespace id) at `serial` as `snapshot` shows it.
    func record(zone id: String, serial: UInt32, snapshot: ZoneSnapshot) {
        zones.withLock { zones in
            guard var zone = zones[id] else {
                if zones.count >= Self.maxZones { zones.removeAll() }  // bounded; every zone starts over with AXFR
                zones[id] = Zone(serial: serial, snapshot: snapshot, differences: [], oldest: serial, recordsInDifferences: 0)
                return
            }
            guard serial != zone.serial, DNSResolver.serial(serial, isNewerThan: zone.serial) else { return }
            let (removed, added) = zone.snapshot.version == snapshot.version ? ([], []) : Self.compare(zone.snapshot, snapshot)
            zone.differences.append(Difference(serial: serial, removed: removed, added: added))
            zone.recordsInDifferences += removed.count + added.count
            zone.serial = serial
            zone.snapshot = snapshot
            while zone.differences.count > Self.maxVersions || (zone.recordsInDifferences > Self.maxRecords && !zone.differences.isEmpty) {
                let dropped = zone.differences.removeFirst()
                zone.recordsInDifferences -= dropped.removed.count + dropped.added.count
                zone.oldest = dropped.serial
            }
            zones[id] = zone
        }
    }

    /// The records removed and added between two snapshots, looking only at services whose view moved (a record
    /// two services both publish counts once per service).
    static func compare(_ old: ZoneSnapshot, _ new: ZoneSnapshot) -> (removed: [DNSRecord], added: [DNSRecord]) {
        var removed: [DNSRecord] = []
        var added: [DNSRecord] = []
        func diff(_ before: [DNSRecord], _ after: [DNSRecord]) {
            if before.isEmpty || after.isEmpty {
                removed += before
                added += after
                return
            }
            let a = Set(before)
            let b = Set(after)
            removed += before.filter { !b.contains($0) }
            added += after.filter { !a.contains($0) }
        }
        if old.apex != new.apex { diff(old.apex, new.apex) }
        for (id, now) in new.services {
            guard let then = old.services[id] else {
                added += now.records
                continue
            }
            if then.view != now.view { diff(then.records, now.records) }
        }
        for (id, then) in old.services where new.services[id] == nil { removed += then.records }
        return (removed, added)
    }

    /// From `serial` to the zone's newest serial: what was removed and what was added, the differences between
    /// composed into one; nil when `serial` is not one this journal holds.
    func difference(zone id: String, from serial: UInt32) -> (removed: [DNSRecord], added: [DNSRecord], to: UInt32)? {
        zones.withLock { zones -> (removed: [DNSRecord], added: [DNSRecord], to: UInt32)? in
            guard let zone = zones[id] else { return nil }
            let start: Int
            if serial == zone.oldest {
                start = 0
            } else if let index = zone.differences.firstIndex(where: { $0.serial == serial }) {
                start = index + 1
            } else {
                return nil
            }
            // A record removed then added again (or added then removed) cancels out.
            var removed = Set<DNSRecord>()
            var added = Set<DNSRecord>()
            for difference in zone.differences[start...] {
                for record in difference.removed where added.remove(record) == nil { removed.insert(record) }
                for record in difference.added where removed.remove(record) == nil { added.insert(record) }
            }
            return (removed.sorted { $0.sortKey < $1.sortKey }, added.sorted { $0.sortKey < $1.sortKey }, zone.serial)
        }
    }
}

extension DNSRecord {
    /// An order for records in a difference: by owner, type, then data.
    var sortKey: String { "\(name.key) \(type) \(data)" }
}
