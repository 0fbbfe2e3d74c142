import CairnCore
import DNSWire

/// Zone transfers (AXFR, RFC 5936; IXFR, RFC 1995, answered with the whole zone) of the DNS namespaces to the
/// secondaries the configuration allows (`dns.transfer.allow`): the records a secondary serves are every record the
/// zone publishes, each service's full record set (not the ≤ 8 of one MULTIVALUE answer), from one snapshot.
public enum ZoneTransfer: Sendable, Equatable {
    /// Not allowed, not over TCP, or not a zone apex this client may see: one REFUSED reply.
    case refused
    /// The zone's records, the SOA first and last (RFC 5936 §2.2).
    case zone([DNSRecord])
    /// An IXFR from a serial no older than the zone's: the SOA alone (RFC 1995 §2, "up to date").
    case current(DNSRecord)
    /// An IXFR from a serial the journal holds: the records in RFC 1995's incremental form (the new SOA, the old
    /// SOA, the records removed, the new SOA, the records added, the new SOA).
    case incremental([DNSRecord])

    /// The most bytes of records one transfer message carries before the next message starts (a message can be
    /// 65,535; smaller ones let a secondary start on the first while the rest are written).
    static let messageBudget = 16_000
}

extension DNSResolver {
    /// Whether `client` (4 or 16 bytes) may transfer zones.
    public func mayTransfer(_ client: [UInt8]) -> Bool {
        configuration.transferAllow.contains { $0.contains(client) }
    }

    /// The transfer a query asks for. `clientSerial` is the serial of the SOA in an IXFR query's authority section.
    public func transfer(_ question: DNSQuestion, clientSerial: UInt32?, client: [UInt8], state: RegistryState) -> ZoneTransfer {
        guard question.type == DNSType.axfr || question.type == DNSType.ixfr, question.qclass == DNSClass.in,
            mayTransfer(client), let zone = zone(for: question.name, client: client, state: state),
            zone.apex.key == question.name.key
        else { return .refused }
        let soa = soaRecord(zone, state: state, exactTTL: true)
        guard case .soa(let data) = soa.data else { return .refused }
        if question.type == DNSType.ixfr, let clientSerial, !Self.serial(data.serial, isNewerThan: clientSerial) {
            return .current(soa)
        }
        let (snapshot, records) = zoneContent(zone, state: state)
        journal.record(zone: zone.namespace.id, serial: data.serial, snapshot: snapshot)
        if question.type == DNSType.ixfr, let clientSerial,
            let difference = journal.difference(zone: zone.namespace.id, from: clientSerial), difference.to == data.serial
        {
            var old = data
            old.serial = clientSerial
            var oldSOA = soa
            oldSOA.data = .soa(old)
            // The journal counts a record once per service that publishes it: one service dropping a record another
            // still publishes must not remove it from the secondary (which deletes by data, whatever the TTL), unless
            // the difference adds it back (a TTL that changed: removed, then added with the new TTL).
            var removed = difference.removed
            if !removed.isEmpty {
                let current = Set(records.map(RecordIdentity.init))
                let readded = Set(difference.added.map(RecordIdentity.init))
                removed.removeAll { current.contains(RecordIdentity($0)) && !readded.contains(RecordIdentity($0)) }
            }
            return .incremental([soa, oldSOA] + removed + [soa] + difference.added + [soa])
        }
        return .zone([soa] + records + [soa])
    }

    /// The zone's SOA; its serial is the registry's sequence (RFC 1982 arithmetic: it wraps at 2^32), so it grows
    /// with every change, the zone's own among them. `exactTTL`: the namespace's SOA TTL as it is (the apex answer
    /// and transfers); otherwise capped at a day for negative answers.
    func soaRecord(_ zone: ZoneIndex.Zone, state: RegistryState, exactTTL: Bool = false) -> DNSRecord {
        let soaTTL = UInt32(clamping: zone.namespace.soaTTL ?? 900)
        return DNSRecord(
            name: zone.apex, type: DNSType.soa, ttl: exactTTL ? soaTTL : min(soaTTL, 86_400),
            data: .soa(
                SOAData(
                    mname: configuration.serverName, rname: configuration.hostmaster, serial: UInt32(truncatingIfNeeded: state.sequence),
                    refresh: 7200, retry: 900, expire: 1_209_600, minimum: 86_400)))
    }

    /// What a zone's records depend on: its namespace, the set of services, and each of its services' view (records,
    /// instances, health). Equal versions mean equal records; a different one usually means different records.
    struct ZoneVersion: Sendable, Equatable {
        var namespaces: UInt64
        var services: UInt64
        var newestView: UInt64
    }

    func zoneVersion(_ zone: ZoneIndex.Zone, state: RegistryState) -> ZoneVersion {
        var newest: UInt64 = 0
        for id in state.servicesByNamespace[zone.namespace.id] ?? [] {
            if let view = state.services[id]?.viewVersion, view > newest { newest = view }
        }
        return ZoneVersion(namespaces: state.namespacesVersion, services: state.servicesVersion, newestView: newest)
    }

    /// The zone's records but the SOA, and what they are made of (`ZoneSnapshot`), made once per version
    /// (transfers and the NOTIFY check share them): the apex NS, then each service's published records (by service
    /// name), without repeats.
    func zoneContent(_ zone: ZoneIndex.Zone, state: RegistryState) -> (snapshot: ZoneSnapshot, records: [DNSRecord]) {
        let version = zoneVersion(zone, state: state)
        if let cached = contents.withLock({ $0[zone.namespace.id] }), cached.snapshot.version == version { return cached }
        let apex = configuration.nameServers.map { DNSRecord(name: zone.apex, type: DNSType.ns, ttl: configuration.nsTTL, data: .ns($0)) }
        var snapshot = ZoneSnapshot(version: version, apex: apex, services: [:])
        var out = apex
        var seen = Set<DNSRecord>()
        let services = (state.servicesByNamespace[zone.namespace.id] ?? []).compactMap { state.services[$0] }.filter { $0.dnsConfig != nil }
        snapshot.services.reserveCapacity(services.count)
        for service in services.sorted(by: { $0.name < $1.name }) {
            let records = transferRecords(of: service, state: state)
            snapshot.services[service.id] = (service.viewVersion, records)
            for record in records where seen.insert(record).inserted { out.append(record) }
        }
        contents.withLock { table in
            if table.count >= ZoneJournal.maxZones { table.removeAll() }
            table[zone.namespace.id] = (snapshot, out)
        }
        return (snapshot, out)
    }

    /// `publishedRecords` of a service, kept per service view: a zone is rendered again after each change, and only
    /// the changed services' records are made anew.
    func transferRecords(of service: Service, state: RegistryState) -> [DNSRecord] {
        if let cached = serviceContents.withLock({ $0[service.id] }), cached.view == service.viewVersion { return cached.records }
        let records = publishedRecords(of: service, state: state)
        serviceContents.withLock { table in
            if table.count >= 1_000_000 { table.removeAll() }  // bounded (by the registry's services, in practice)
            table[service.id] = (service.viewVersion, records)
        }
        return records
    }

    /// RFC 1982: whether serial `a` is newer than `b`.
    static func serial(_ a: UInt32, isNewerThan b: UInt32) -> Bool {
        a != b && (a &- b) < (1 << 31)
    }
}

extension DNSResponder {
    /// The replies to a query received over TCP: several messages for a zone transfer, one otherwise; nil when the
    /// query deserves none.
    public func respondTCP(to query: [UInt8], client: [UInt8], state: RegistryState, now: UInt64 = TSIG.now()) -> (
        replies: [[UInt8]], message: DNSMessage
    )? {
        if let transfer = transferQuery(query), transfer.message.header.opcode == 0 {
            let check = TSIG.check(query, key: resolver.configuration.transferKey, now: now)
            return transferReplies(
                transfer.message, clientSerial: transfer.clientSerial, client: client, state: state, signature: check, now: now)
        }
        return respond(to: query, client: client, transport: .tcp, state: state).map { ([$0.reply], $0.message) }
    }

    /// The query, when it is a well-formed AXFR or IXFR question (and the serial an IXFR carries).
    func transferQuery(_ query: [UInt8]) -> (message: DNSMessage, clientSerial: UInt32?)? {
        guard query.count >= 12, query[2] & 0x80 == 0, let message = try? DNSMessage.parse(query), message.questions.count == 1,
            let question = message.questions.first, question.type == DNSType.axfr || question.type == DNSType.ixfr,
            message.edns.map({ $0.version == 0 }) ?? true
        else { return nil }
        var serial: UInt32?
        if question.type == DNSType.ixfr {
            for record in message.authority {
                if case .soa(let data) = record.data { serial = data.serial }
            }
        }
        return (message, serial)
    }

    /// The replies to a transfer query, signed when the query was (RFC 8945): each message's MAC chains to the one
    /// before it, the first to the query's. With a key configured an unsigned query is refused; a wrong key or
    /// signature gets NOTAUTH with BADKEY or BADSIG (unsigned), a time outside the fudge NOTAUTH with BADTIME (signed).
    func transferReplies(
        _ message: DNSMessage, clientSerial: UInt32?, client: [UInt8], state: RegistryState, signature: TSIG.Check = .unsigned,
        now: UInt64 = 0
    ) -> (replies: [[UInt8]], message: DNSMessage) {
        var header = DNSHeader(id: message.header.id, flags: (message.header.flags & 0x7900) | 0x8000)
        header.authoritative = true
        var first = DNSMessage(header: header, questions: message.questions)
        if message.edns != nil { first.edns = EDNS(udpPayloadSize: UInt16(resolver.configuration.ednsPayloadSize)) }
        let key = resolver.configuration.transferKey
        var prior: [UInt8]?
        /// Signs the next message of the reply when the query was signed.
        func signed(_ bytes: [UInt8]) -> [UInt8] {
            guard case .valid(let request) = signature, let key else { return bytes }
            let (out, mac) = TSIG.sign(bytes, key: key, prior: prior ?? request.mac, time: now, timersOnly: prior != nil)
            prior = mac
            return out
        }
        func refuse(_ rcode: UInt16) -> (replies: [[UInt8]], message: DNSMessage) {
            first.header.authoritative = false
            first.header.rcode = rcode
            return ([signed(first.encode().bytes)], first)
        }
        switch signature {
        case .malformed:
            return refuse(DNSRcode.formErr)
        case .failed(let error, let request):
            first.header.authoritative = false
            first.header.rcode = TSIG.notAuth
            let bytes = first.encode().bytes
            if error == TSIG.badTime, let key {
                let out = TSIG.sign(bytes, key: key, prior: request.mac, time: now, error: error, other: TSIG.u48(now)).bytes
                return ([out], first)
            }
            return ([TSIG.appendUnsigned(error: error, to: bytes, request: request, time: now)], first)
        case .unsigned where key != nil:
            return refuse(DNSRcode.refused)
        case .unsigned, .valid:
            break
        }
        switch resolver.transfer(message.questions[0], clientSerial: clientSerial, client: client, state: state) {
        case .refused:
            return refuse(DNSRcode.refused)
        case .current(let soa):
            first.answers = [soa]
            return ([signed(first.encode().bytes)], first)
        case .zone(let records), .incremental(let records):
            var replies: [[UInt8]] = []
            var chunk: [DNSRecord] = []
            var size = 0
            func flush() {
                var reply = replies.isEmpty ? first : DNSMessage(header: header)
                reply.answers = chunk
                replies.append(signed(reply.encode().bytes))
                chunk = []
                size = 0
            }
            for record in records {
                let estimate = record.name.wireLength + 10 + record.wireDataEstimate
                if size + estimate > ZoneTransfer.messageBudget && !chunk.isEmpty { flush() }
                chunk.append(record)
                size += estimate
            }
            if !chunk.isEmpty { flush() }
            var summary = first
            summary.answers = records
            return (replies, summary)
        }
    }
}

extension DNSRecord {
    /// The most bytes the record's data takes on the wire (names uncompressed).
    var wireDataEstimate: Int {
        switch data {
        case .a(let b), .aaaa(let b), .raw(let b): b.count
        case .ns(let n), .cname(let n): n.wireLength
        case .soa(let s): s.mname.wireLength + s.rname.wireLength + 20
        case .srv(_, _, _, let target): 6 + target.wireLength
        case .hinfo(let cpu, let os): 2 + cpu.count + os.count
        }
    }
}

/// A record as a secondary matches it when deleting: owner, type, class and data, not the TTL.
struct RecordIdentity: Hashable {
    let name: DNSName
    let type: UInt16
    let rclass: UInt16
    let data: RData

    init(_ record: DNSRecord) {
        name = record.name
        type = record.type
        rclass = record.rclass
        data = record.data
    }
}
