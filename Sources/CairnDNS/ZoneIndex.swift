import CairnCore
import DNSWire
import Synchronization

/// Derived views of the registry for DNS, cached by the versions the registry keeps: the zone table by
/// `namespacesVersion`, each service's records by `Service.viewVersion`. A write therefore invalidates only what
/// it touched, and the next query after an acknowledged write sees it.
final class ZoneIndex: Sendable {
    struct Zone: Sendable {
        let namespace: Namespace
        let apex: DNSName
    }

    /// What one instance contributes to DNS.
    struct InstanceRecords: Sendable {
        let id: String
        let label: [UInt8]
        let ipv4: [UInt8]?
        let ipv6: [UInt8]?
        let port: UInt16?
        let cname: DNSName?
        let health: HealthStatus
        /// `AVAILABILITY_ZONE`, for zone-aware answers.
        let zone: String?
    }

    struct ServiceRecords: Sendable {
        let version: UInt64
        let instances: [InstanceRecords]
        /// Lower-cased instance id → index, for the SRV companion names.
        let byLabel: [String: Int]
    }

    private let zones = Mutex<(version: UInt64, table: [String: [Zone]])>((UInt64.max, [:]))
    private let services = Mutex<[String: ServiceRecords]>([:])
    /// Per namespace, the services whose names have several labels (only they make empty non-terminals).
    private let dotted = Mutex<(version: UInt64, byNamespace: [String: [(id: String, name: String)]])>((UInt64.max, [:]))

    func dottedServices(in namespaceId: String, _ state: RegistryState) -> [(id: String, name: String)] {
        if let cached = dotted.withLock({ $0.version == state.servicesVersion ? $0.byNamespace : nil }) {
            return cached[namespaceId] ?? []
        }
        var byNamespace: [String: [(id: String, name: String)]] = [:]
        for service in state.services.values where service.dnsConfig != nil && service.name.contains(".") && service.name != "." {
            byNamespace[service.namespaceId, default: []].append((service.id, service.name.lowercased()))
        }
        dotted.withLock { $0 = (state.servicesVersion, byNamespace) }
        return byNamespace[namespaceId] ?? []
    }

    /// Zones by lower-cased apex name.
    func zoneTable(_ state: RegistryState) -> [String: [Zone]] {
        if let cached = zones.withLock({ $0.version == state.namespacesVersion ? $0.table : nil }) { return cached }
        var table: [String: [Zone]] = [:]
        for ns in state.namespaces.values where ns.type.isDNS {
            guard let apex = DNSName(ns.name) else { continue }
            table[apex.key, default: []].append(Zone(namespace: ns, apex: apex))
        }
        for key in table.keys {
            // Private zones first (they shadow public ones for their networks), then the oldest.
            table[key]!.sort {
                ($0.namespace.type == .DNS_PRIVATE ? 0 : 1, $0.namespace.createDate) < (
                    $1.namespace.type == .DNS_PRIVATE ? 0 : 1, $1.namespace.createDate
                )
            }
        }
        zones.withLock { $0 = (state.namespacesVersion, table) }
        return table
    }

    func records(_ service: Service, _ state: RegistryState) -> ServiceRecords {
        if let cached = services.withLock({ $0[service.id] }), cached.version == service.viewVersion { return cached }
        var list: [InstanceRecords] = []
        var byLabel: [String: Int] = [:]
        for instance in state.instances(of: service.id).values.sorted(by: { $0.id < $1.id }) {
            let a = instance.attributes
            if a["AWS_ALIAS_DNS_NAME"] != nil { continue }  // alias records point at load balancers Cairn cannot resolve
            let record = InstanceRecords(
                id: instance.id, label: Array(instance.id.utf8), ipv4: a["AWS_INSTANCE_IPV4"].flatMap(IPAddress.ipv4),
                ipv6: a["AWS_INSTANCE_IPV6"].flatMap(IPAddress.ipv6), port: a["AWS_INSTANCE_PORT"].flatMap { UInt16($0) },
                cname: a["AWS_INSTANCE_CNAME"].flatMap { DNSName($0) }, health: instance.health, zone: a["AVAILABILITY_ZONE"])
            byLabel[instance.id.lowercased()] = list.count
            list.append(record)
        }
        let entry = ServiceRecords(version: service.viewVersion, instances: list, byLabel: byLabel)
        services.withLock { cache in
            if cache.count > 2 * state.services.count + 16 { cache = cache.filter { state.services[$0.key] != nil } }
            cache[service.id] = entry
        }
        return entry
    }
}
