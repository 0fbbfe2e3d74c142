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

    /// Each service's last rendering and when it was made.
    private let entries = Mutex<[String: (entry: Entry, made: ContinuousClock.Instant)]>([:])

    /// For watch streams, which send a service's state at their own pace: the rendering cached for the service if
    /// it is newer than `version` (what the stream sent last) and was made within `maxAge`, even when the service
    /// changed since it was made (the stream sends the newer state with its next event); else the current one.
    /// With a service written continuously, streams waking one after another then share about one rendering per
    /// `maxAge`, instead of each rendering the whole service (10,000 streams on a service of 1,600 instances
    /// spent a sixth of a core on it).
    func entry(service: Service, namespace: Namespace, state: RegistryState, newerThan version: UInt64, maxAge: Duration) -> Entry {
        if let cached = entries.withLock({ $0[service.id] }), cached.entry.version > version,
            cached.entry.version <= service.viewVersion, ContinuousClock.now - cached.made <= maxAge
        {
            return cached.entry
        }
        return entry(service: service, namespace: namespace, state: state)
    }

    /// The rendering of the service's current instances (`Service.viewVersion`).
    func entry(service: Service, namespace: Namespace, state: RegistryState) -> Entry {
        if let cached = entries.withLock({ $0[service.id] }), cached.entry.version == service.viewVersion {
            return cached.entry
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
            cache[service.id] = (entry, .now)
        }
        return entry
    }
}
