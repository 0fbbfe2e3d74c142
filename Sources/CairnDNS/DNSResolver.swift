import CairnCore
import DNSWire
import Synchronization

/// The authoritative answer to one question.
public struct DNSAnswer: Sendable, Equatable {
    public var rcode: UInt16
    public var authoritative: Bool
    public var answers: [DNSRecord]
    public var authority: [DNSRecord]

    static func refused() -> DNSAnswer { DNSAnswer(rcode: DNSRcode.refused, authoritative: false, answers: [], authority: []) }
}

/// An answer before its random choice: the records one answer is drawn from, and how many it takes. The resolver
/// works it out once per snapshot and question; both the full path and the ready-answer cache draw from it, so they
/// cannot disagree about which records are eligible.
public struct DNSAnswerPlan: Sendable, Equatable {
    public var rcode: UInt16
    public var authoritative: Bool
    /// Every record the answer section may hold (healthy instances' records, or all when none is healthy).
    public var pool: [DNSRecord]
    /// How many records of `pool` one answer carries, drawn at random and in random order (MULTIVALUE: up to 8,
    /// WEIGHTED: 1); nil: all of `pool`, in its order.
    public var pick: Int?
    public var authority: [DNSRecord]

    static func refused() -> DNSAnswerPlan {
        DNSAnswerPlan(rcode: DNSRcode.refused, authoritative: false, pool: [], pick: nil, authority: [])
    }

    /// One answer drawn from the plan.
    public func answer<R: RandomNumberGenerator>(using rng: inout R) -> DNSAnswer {
        var answers = pool
        if let pick {
            answers.shuffle(using: &rng)
            if answers.count > pick { answers.removeLast(answers.count - pick) }
        }
        return DNSAnswer(rcode: rcode, authoritative: authoritative, answers: answers, authority: authority)
    }
}

/// Answers questions from a registry snapshot: zones are the DNS namespaces, names are services and SRV
/// companions, and the healthy subset comes from `Discovery.select`, the code DiscoverInstances uses.
public final class DNSResolver: Sendable {
    public let configuration: DNSConfiguration
    let index = ZoneIndex()
    /// The zones' recent serials and differences, for incremental transfers.
    let journal = ZoneJournal()
    /// Each zone's records at the version last rendered (`zoneContent`).
    let contents = Mutex<[String: (snapshot: ZoneSnapshot, records: [DNSRecord])]>([:])
    /// Each service's records for transfers, at its view version (`transferRecords`).
    let serviceContents = Mutex<[String: (view: UInt64, records: [DNSRecord])]>([:])

    /// The configured networks' address blocks in a fixed order (by name): bit i of `networkMask` is the i-th.
    let networkOrder: [(name: String, cidrs: [CIDR])]
    /// Signs answers of signed zones for queries with the DO bit.
    public let signer: DNSSECSigner

    public init(configuration: DNSConfiguration, signer: DNSSECSigner = DNSSECSigner()) {
        self.configuration = configuration
        self.signer = signer
        // The availability zones' blocks count as networks too: what a zone-aware answer depends on is in the mask.
        self.networkOrder =
            configuration.networks.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            + configuration.availabilityZones.sorted { $0.key < $1.key }.map { ("az:" + $0.key, $0.value) }
    }

    /// The tag that makes a service's DNS answers zone-aware (value `true`).
    public static let zoneAwareTag = "cairn:zone-aware"

    func zoneAware(_ service: Service) -> Bool {
        !configuration.availabilityZones.isEmpty && service.tags.contains { $0.key == Self.zoneAwareTag && $0.value.lowercased() == "true" }
    }

    /// The availability zone of the client's network (the most specific block that holds it), if any.
    public func clientZone(_ client: [UInt8]) -> String? {
        var best: (zone: String, prefix: Int)?
        for (zone, cidrs) in configuration.availabilityZones {
            for cidr in cidrs where cidr.contains(client) && cidr.prefix > (best?.prefix ?? -1) {
                best = (zone, cidr.prefix)
            }
        }
        return best?.zone
    }

    /// The configured networks the client is in, as bits: all a plan depends on about the client (which private
    /// zones it sees). nil when there are more networks than bits (then nothing is cached).
    public func networkMask(_ client: DNSClient) -> UInt64? {
        guard networkOrder.count <= 64 else { return nil }
        var mask: UInt64 = 0
        client.withBytes { bytes in
            for (i, network) in networkOrder.enumerated() where network.cidrs.contains(where: { $0.contains(bytes) }) {
                mask |= 1 << UInt64(i)
            }
        }
        return mask
    }

    /// - Parameter client: the querying address (4 or 16 bytes); private zones answer only their networks.
    public func answer(_ question: DNSQuestion, client: [UInt8], state: RegistryState) -> DNSAnswer {
        var rng = SplitMix64(seed: FastSeed.next())
        return plan(question, client: client, state: state).answer(using: &rng)
    }

    /// What `answer` draws from; the same for every client with the same `networkMask`.
    public func plan(_ question: DNSQuestion, client: [UInt8], state: RegistryState) -> DNSAnswerPlan {
        guard question.qclass == DNSClass.in || question.qclass == DNSClass.any else { return .refused() }
        // Zone transfers run over TCP only (`ZoneTransfer`, `DNSResponder.respondTCP`); over UDP they are refused
        // (RFC 5936 §4.2: a server that does not permit the transfer refuses it).
        if question.type == DNSType.axfr || question.type == DNSType.ixfr { return .refused() }
        guard let zone = zone(for: question.name, client: client, state: state) else { return .refused() }
        let ns = zone.namespace
        let soaTTL = UInt32(clamping: ns.soaTTL ?? 900)
        let soa = soaRecord(zone, state: state)
        var answer = DNSAnswerPlan(rcode: DNSRcode.noError, authoritative: true, pool: [], pick: nil, authority: [])
        let relative = question.name.relative(to: zone.apex)
        let qname = question.name
        let qtype = question.type

        if qtype == DNSType.any {
            // RFC 8482: a minimal answer instead of everything at the name.
            if relative.isEmpty || nameExists(relative, in: ns, state: state) {
                answer.pool = [DNSRecord(name: qname, type: DNSType.hinfo, ttl: 3600, data: .hinfo(cpu: Array("RFC8482".utf8), os: []))]
                return answer
            }
            return negative(.nxDomain, soa)
        }
        if relative.isEmpty {
            if qtype == DNSType.soa {
                var apexSOA = soa
                apexSOA.name = qname
                apexSOA.ttl = soaTTL
                answer.pool = [apexSOA]
                return answer
            }
            if qtype == DNSType.ns {
                answer.pool = configuration.nameServers.map {
                    DNSRecord(name: qname, type: DNSType.ns, ttl: configuration.nsTTL, data: .ns($0))
                }
                return answer
            }
            if qtype == DNSType.dnskey, let keys = ns.signingKeys, !keys.isEmpty {
                answer.pool = keys.map { DNSSECSigner.dnskey($0, apex: qname) }
                return answer
            }
        }
        let name = relative.isEmpty ? "." : relative.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".")
        if let service = try? state.service(named: name, in: ns), let dns = service.dnsConfig {
            let records = index.records(service, state)
            if !records.instances.isEmpty {
                answer.pool = serviceRecords(
                    service, dns, records, qname: qname, qtype: qtype, everything: true,
                    zone: zoneAware(service) ? clientZone(client) : nil)
                answer.pick = answerLimit(dns)
                if answer.pool.isEmpty && !hasAnyRecord(dns, records) { return negative(.nxDomain, soa) }
                if answer.pool.isEmpty {
                    answer.pick = nil
                    answer.authority = [soa]
                }
                return answer
            }
        }
        if relative.count >= 2 {
            let parent = relative.dropFirst().map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".")
            if let service = try? state.service(named: parent, in: ns), let dns = service.dnsConfig, dns.has(.SRV) {
                let records = index.records(service, state)
                let label = String(decoding: relative[0], as: UTF8.self).lowercased()
                if let i = records.byLabel[label] {
                    let instance = records.instances[i]
                    if instance.ipv4 != nil || instance.ipv6 != nil {
                        answer.pool = companion(instance, dns, qname: qname, qtype: qtype)
                        if answer.pool.isEmpty { answer.authority = [soa] }
                        return answer
                    }
                }
            }
        }
        if relative.isEmpty || isEmptyNonTerminal(relative, in: ns, state: state) {
            answer.authority = [soa]
            return answer
        }
        return negative(.nxDomain, soa)
    }

    /// The zone answering the question and its keys, when the zone is signed.
    func signing(_ question: DNSQuestion, client: [UInt8], state: RegistryState) -> (zone: ZoneIndex.Zone, keys: [SigningKey])? {
        guard question.qclass == DNSClass.in || question.qclass == DNSClass.any,
            let zone = zone(for: question.name, client: client, state: state), zone.namespace.type == .DNS_PUBLIC,
            let keys = zone.namespace.signingKeys, !keys.isEmpty
        else { return nil }
        return (zone, keys)
    }

    /// The types that have records at `name` for this client, for the NSEC of a NODATA answer.
    func typesAt(_ name: DNSName, zone: ZoneIndex.Zone, client: [UInt8], state: RegistryState) -> [UInt16] {
        var types: Set<UInt16> = []
        if name == zone.apex {
            types.formUnion([DNSType.soa, DNSType.dnskey])
            if !configuration.nameServers.isEmpty { types.insert(DNSType.ns) }
        }
        for type in [DNSType.a, DNSType.aaaa, DNSType.srv] {
            for record in plan(DNSQuestion(name: name, type: type), client: client, state: state).pool where record.name == name {
                types.insert(record.type)
            }
        }
        return types.sorted()
    }

    enum Negative { case nxDomain }

    func negative(_: Negative, _ soa: DNSRecord) -> DNSAnswerPlan {
        DNSAnswerPlan(rcode: DNSRcode.nxDomain, authoritative: true, pool: [], pick: nil, authority: [soa])
    }

    /// The zone that answers `name` for this client, by Route 53 Resolver's rule: the most specific private zone
    /// of the client's network at or above the name; only when no private zone matches, the most specific public
    /// one. So no public zone, whoever made it, changes what a private zone's clients are told.
    func zone(for name: DNSName, client: [UInt8], state: RegistryState) -> ZoneIndex.Zone? {
        let table = index.zoneTable(state)
        if table.isEmpty { return nil }
        let labels = name.labels
        var publicZone: ZoneIndex.Zone?
        for start in 0..<labels.count {
            let key = DNSName(labels: Array(labels[start...])).key
            guard let candidates = table[key] else { continue }
            for zone in candidates where visible(zone.namespace, to: client) {
                if zone.namespace.type == .DNS_PRIVATE { return zone }
                if publicZone == nil { publicZone = zone }
            }
        }
        return publicZone
    }

    func visible(_ ns: Namespace, to client: [UInt8]) -> Bool {
        guard ns.type == .DNS_PRIVATE else { return true }
        guard let network = ns.network, let cidrs = configuration.networks[network] else { return false }
        return cidrs.contains { $0.contains(client) }
    }

    func ttl(_ dns: DnsConfig, _ type: RecordType) -> UInt32 {
        UInt32(clamping: dns.records.first { $0.type == type }?.ttl ?? 0)
    }

    /// How many records one answer of the service carries: one for WEIGHTED, at most `maxAnswers` for MULTIVALUE.
    func answerLimit(_ dns: DnsConfig) -> Int { dns.routingPolicy == .WEIGHTED ? 1 : configuration.maxAnswers }

    /// Healthy instances (or all when none is healthy), at most 8 for MULTIVALUE or exactly one for WEIGHTED,
    /// in random order; every eligible one, in instance order, when `everything` is set.
    /// `zone`: the client's availability zone, for a zone-aware service: its healthy instances in that zone are the
    /// candidates when there are any.
    func choose(
        _ candidates: [ZoneIndex.InstanceRecords], _ service: Service, _ dns: DnsConfig, everything: Bool = false, zone: String? = nil
    ) -> [ZoneIndex.InstanceRecords] {
        var candidates = candidates
        if let zone {
            let local = candidates.filter { $0.zone == zone && (!service.hasHealthChecking || $0.health == .HEALTHY) }
            if !local.isEmpty { candidates = local }
        }
        var rng = SplitMix64(seed: FastSeed.next())
        let limit = everything ? candidates.count : answerLimit(dns)
        let chosen = Discovery.select(
            candidates, service: service, query: DiscoveryQuery(healthStatus: .HEALTHY_OR_ELSE_ALL, maxResults: limit),
            attributes: { _ in [:] }, health: \.health, using: &rng)
        return everything ? chosen.sorted { $0.id < $1.id } : chosen
    }

    func serviceRecords(
        _ service: Service, _ dns: DnsConfig, _ records: ZoneIndex.ServiceRecords, qname: DNSName, qtype: UInt16,
        everything: Bool = false, zone: String? = nil
    ) -> [DNSRecord] {
        func choose(_ candidates: [ZoneIndex.InstanceRecords], _ service: Service, _ dns: DnsConfig, everything: Bool) -> [ZoneIndex
            .InstanceRecords]
        {
            self.choose(candidates, service, dns, everything: everything, zone: zone)
        }
        if dns.has(.CNAME) {
            let chosen = choose(records.instances.filter { $0.cname != nil }, service, dns, everything: everything)
            return chosen.map { DNSRecord(name: qname, type: DNSType.cname, ttl: ttl(dns, .CNAME), data: .cname($0.cname!)) }
        }
        switch qtype {
        case DNSType.a where dns.has(.A):
            return choose(records.instances.filter { $0.ipv4 != nil }, service, dns, everything: everything).map {
                DNSRecord(name: qname, type: DNSType.a, ttl: ttl(dns, .A), data: .a($0.ipv4!))
            }
        case DNSType.aaaa where dns.has(.AAAA):
            return choose(records.instances.filter { $0.ipv6 != nil }, service, dns, everything: everything).map {
                DNSRecord(name: qname, type: DNSType.aaaa, ttl: ttl(dns, .AAAA), data: .aaaa($0.ipv6!))
            }
        case DNSType.srv where dns.has(.SRV):
            return choose(
                records.instances.filter { $0.port != nil && ($0.ipv4 != nil || $0.ipv6 != nil) }, service, dns, everything: everything
            ).map {
                DNSRecord(
                    name: qname, type: DNSType.srv, ttl: ttl(dns, .SRV),
                    data: .srv(priority: 1, weight: 1, port: $0.port!, target: qname.prepending([$0.label])))
            }
        default:
            return []
        }
    }

    /// Every record the service's name can be answered with now: the healthy instances' records (all instances'
    /// when none is healthy), before the answer limit and the random choice; for SRV, also the A/AAAA records of
    /// the targets. What the console shows as "DNS records as Cairn answers them"; empty outside DNS namespaces.
    public func publishedRecords(of service: Service, state: RegistryState) -> [DNSRecord] {
        guard let dns = service.dnsConfig, let ns = state.namespaces[service.namespaceId], ns.type.isDNS,
            let apex = DNSName(ns.name)
        else { return [] }
        let records = index.records(service, state)
        let qname = service.name == "." ? apex : DNSName(service.name + "." + ns.name) ?? apex
        var out: [DNSRecord] = []
        for type in [DNSType.a, DNSType.aaaa, DNSType.srv] {
            out += serviceRecords(service, dns, records, qname: qname, qtype: type, everything: true)
            if dns.has(.CNAME) { break }  // a CNAME answers every type; once is enough
        }
        for case .srv(_, _, _, let target) in out.map(\.data) {
            guard let i = records.byLabel[String(decoding: target.labels[0], as: UTF8.self).lowercased()] else { continue }
            for type in [DNSType.a, DNSType.aaaa] {
                out += companion(records.instances[i], dns, qname: target, qtype: type)
            }
        }
        return out
    }

    /// Whether the service publishes anything at its name at all (else the name does not exist).
    func hasAnyRecord(_ dns: DnsConfig, _ records: ZoneIndex.ServiceRecords) -> Bool {
        records.instances.contains { i in
            (dns.has(.A) && i.ipv4 != nil) || (dns.has(.AAAA) && i.ipv6 != nil) || (dns.has(.CNAME) && i.cname != nil)
                || (dns.has(.SRV) && i.port != nil && (i.ipv4 != nil || i.ipv6 != nil))
        }
    }

    /// The A/AAAA records at `<instance>.<service>.<namespace>` of an SRV service.
    func companion(_ instance: ZoneIndex.InstanceRecords, _ dns: DnsConfig, qname: DNSName, qtype: UInt16) -> [DNSRecord] {
        let addressTTL = { (type: RecordType) in dns.has(type) ? self.ttl(dns, type) : self.ttl(dns, .SRV) }
        if qtype == DNSType.a, let v4 = instance.ipv4 {
            return [DNSRecord(name: qname, type: DNSType.a, ttl: addressTTL(.A), data: .a(v4))]
        }
        if qtype == DNSType.aaaa, let v6 = instance.ipv6 {
            return [DNSRecord(name: qname, type: DNSType.aaaa, ttl: addressTTL(.AAAA), data: .aaaa(v6))]
        }
        return []
    }

    /// Whether some published name lies below `relative` (an empty non-terminal such as `_tcp` under `_http._tcp`).
    func isEmptyNonTerminal(_ relative: [[UInt8]], in ns: Namespace, state: RegistryState) -> Bool {
        let candidates = index.dottedServices(in: ns.id, state)
        if candidates.isEmpty { return false }
        let suffix = "." + relative.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".").lowercased()
        for (id, name) in candidates where name.hasSuffix(suffix) {
            guard let service = state.services[id], let dns = service.dnsConfig else { continue }
            if hasAnyRecord(dns, index.records(service, state)) { return true }
        }
        return false
    }

    func nameExists(_ relative: [[UInt8]], in ns: Namespace, state: RegistryState) -> Bool {
        let name = relative.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".")
        if let service = try? state.service(named: name, in: ns), let dns = service.dnsConfig,
            hasAnyRecord(dns, index.records(service, state))
        {
            return true
        }
        return isEmptyNonTerminal(relative, in: ns, state: state)
    }
}
