import DNSWire
import Synchronization

/// What incremental zone transfers (IXFR, RFC 1995) need: for each zone, the records at the serial it was last seen
/// at, and the differences between the serials before that, newest last. A zone is seen when it is transferred or
/// checked for a NOTIFY, so the serials here are those secondaries hold. Bounded: at most `maxVersions` serials per
/// zone and `maxRecords` records across a zone's differences; a secondary whose serial fell out gets the whole zone.
/// Kept in memory: after a restart, the first IXFR of each zone is answered in full.
final class ZoneJournal: Sendable {
    struct Difference: Sendable {
        let serial: UInt32
        /// What changed from the serial before to `serial` (both empty: the same records at a newer serial).
        let removed: [DNSRecord]
        let added: [DNSRecord]
    }

    struct Zone: Sendable {
        var serial: UInt32
        var records: Set<DNSRecord>
        /// Oldest first; the last one leads to `serial`. The first one's `serial` is the oldest a secondary can hold.
        var differences: [Difference]
        var oldest: UInt32
        var recordsInDifferences: Int
    }

    static let maxVersions = 256
    static let maxRecords = 200_000
    static let maxZones = 10_000

    private let zones = Mutex<[String: Zone]>([:])

    /// Notes the zone (by namespace id) at `serial` with `records` (the SOA left out).
    func record(zone id: String, serial: UInt32, records: [DNSRecord]) {
        zones.withLock { zones in
            guard var zone = zones[id] else {
                if zones.count >= Self.maxZones { zones.removeAll() }  // bounded; every zone starts over with AXFR
                zones[id] = Zone(serial: serial, records: Set(records), differences: [], oldest: serial, recordsInDifferences: 0)
                return
            }
            guard serial != zone.serial, DNSResolver.serial(serial, isNewerThan: zone.serial) else { return }
            let now = Set(records)
            let removed = Array(zone.records.subtracting(now))
            let added = Array(now.subtracting(zone.records))
            zone.differences.append(Difference(serial: serial, removed: removed, added: added))
            zone.recordsInDifferences += removed.count + added.count
            zone.serial = serial
            zone.records = now
            while zone.differences.count > Self.maxVersions || (zone.recordsInDifferences > Self.maxRecords && !zone.differences.isEmpty) {
                let dropped = zone.differences.removeFirst()
                zone.recordsInDifferences -= dropped.removed.count + dropped.added.count
                zone.oldest = dropped.serial
            }
            zones[id] = zone
        }
    }

    /// From `serial` to the zone's newest serial: what was removed and what was added, condensed into one
    /// difference; nil when `serial` is not one this journal holds.
    func difference(zone id: String, from serial: UInt32) -> (removed: [DNSRecord], added: [DNSRecord], to: UInt32)? {
        zones.withLock { zones -> (removed: [DNSRecord], added: [DNSRecord], to: UInt32)? in
            guard let zone = zones[id] else { return nil }
            // Walk back from the newest records to those at `serial`.
            var then = zone.records
            var found = serial == zone.oldest
            for difference in zone.differences.reversed() {
                if difference.serial == serial {
                    found = true
                    break
                }
                then.subtract(difference.added)
                then.formUnion(difference.removed)
            }
            guard found else { return nil }
            let removed = then.subtracting(zone.records).sorted { $0.sortKey < $1.sortKey }
            let added = zone.records.subtracting(then).sorted { $0.sortKey < $1.sortKey }
            return (removed, added, zone.serial)
        }
    }

    func forget(zone id: String) { _ = zones.withLock { $0.removeValue(forKey: id) } }
}

extension DNSRecord {
    /// An order for records in a difference: by owner, type, then data.
    var sortKey: String { "\(name.key) \(type) \(data)" }
}
