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
/// so neither costs work in proportion to the zone. Bounded: at most `maxVersions` serials per zone, `maxZones`
/// zones, and `maxRecords` changed records across all zones' differences (each zone keeps its share, at least
/// `minRecordsPerZone`); a secondary whose serial fell out gets the whole zone. Kept in memory: after a restart, the
/// first IXFR of each zone is answered in full.
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
    static let maxRecords = 2_000_000
    static let minRecordsPerZone = 1_000
    static let maxZones = 1_000

    private let zones = Mutex<[String: Zone]>([:])

    /// Notes the zone (by namespace id) at `serial` as `snapshot` shows it.
    func record(zone id: String, serial: UInt32, snapshot: ZoneSnapshot) {
        zones.withLock { zones in
            guard var zone = zones[id] else {
                if zones.count >= Self.maxZones { zones.removeAll() }  // bounded; every zone starts over with AXFR
                zones[id] = Zone(serial: serial, snapshot: snapshot, differences: [], oldest: serial, recordsInDifferences: 0)
                // One more zone: every zone's share shrinks, so the total stays within `maxRecords`.
                let share = max(Self.minRecordsPerZone, Self.maxRecords / zones.count)
                for key in Array(zones.keys) where zones[key]!.recordsInDifferences > share { Self.trim(&zones[key]!, to: share) }
                return
            }
            guard serial != zone.serial, DNSResolver.serial(serial, isNewerThan: zone.serial) else { return }
            let (removed, added) = zone.snapshot.version == snapshot.version ? ([], []) : Self.compare(zone.snapshot, snapshot)
            zone.differences.append(Difference(serial: serial, removed: removed, added: added))
            zone.recordsInDifferences += removed.count + added.count
            zone.serial = serial
            zone.snapshot = snapshot
            Self.trim(&zone, to: max(Self.minRecordsPerZone, Self.maxRecords / max(1, zones.count)))
            zones[id] = zone
        }
    }

    /// Drops the oldest differences until the zone holds at most `maxVersions` and `share` changed records.
    static func trim(_ zone: inout Zone, to share: Int) {
        var dropping = 0
        var records = zone.recordsInDifferences
        while dropping < zone.differences.count && (zone.differences.count - dropping > maxVersions || records > share) {
            records -= zone.differences[dropping].removed.count + zone.differences[dropping].added.count
            zone.oldest = zone.differences[dropping].serial
            dropping += 1
        }
        if dropping > 0 { zone.differences.removeFirst(dropping) }
        zone.recordsInDifferences = records
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
