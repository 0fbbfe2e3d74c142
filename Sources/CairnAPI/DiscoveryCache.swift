import CairnCore
import CloudMapWire
import Synchronization

/// Per-service JSON fragments of `HttpInstanceSummary`, rendered once per change of the service's view
/// (`Service.viewVersion`) into one contiguous buffer, then picked by index and joined in random order per
/// request, so DiscoverInstances never re-encodes and moves no reference-counted values while it selects.
final class DiscoveryCache: Sendable {
    struct Entry: Sendable {
        let version: UInt64
        /// The instances' ids, ascending; fragment `i` is instance `ids[i]`.
        let ids: [String]
        let attributes: [[String: String]]
        let health: [HealthStatus]
        /// All fragments back to back; fragment `i` is `bytes[ranges[i]]`.
        let bytes: [UInt8]
        let ranges: [Range<Int>]

        var count: Int { ranges.count }
    }

    private let entries = Mutex<[String: Entry]>([:])

    func entry(service: Service, namespace: Namespace, state: RegistryState) -> Entry {
        if let entry = entries.withLock({ $0[service.id] }), entry.version == service.viewVersion {
            return entry
        }
        let instances = state.instances(of: service.id).values.sorted { $0.id < $1.id }
        var writer = JSONWriter(capacity: instances.count * 256)
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(instances.count)
        for instance in instances {
            let start = writer.bytes.count
            writer.write(
                .object([
                    "InstanceId": .string(instance.id), "NamespaceName": .string(namespace.httpName),
                    "ServiceName": .string(service.name),
                    "HealthStatus": .string(Discovery.reportedHealth(instance, in: service).rawValue),
                    "Attributes": Render.attributes(instance.attributes),
                ]))
            ranges.append(start..<writer.bytes.count)
        }
        let entry = Entry(
            version: service.viewVersion, ids: instances.map(\.id), attributes: instances.map(\.attributes),
            health: instances.map(\.health),
            bytes: writer.bytes, ranges: ranges)
        entries.withLock { cache in
            // Drop entries of services that no longer exist once the cache outgrows the registry.
            if cache.count > 2 * state.services.count + 16 {
                cache = cache.filter { state.services[$0.key] != nil }
            }
            cache[service.id] = entry
        }
        return entry
    }
}
