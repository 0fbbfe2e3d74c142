import CairnCore
import CloudMapWire
import Synchronization

/// Per-service JSON fragments of `HttpInstanceSummary`, rendered once per change of the service's view
/// (`Service.viewVersion`) and joined in random order per request, so DiscoverInstances never re-encodes.
final class DiscoveryCache: Sendable {
    struct Item: Sendable {
        let attributes: [String: String]
        let health: HealthStatus
        let fragment: [UInt8]
    }

    struct Entry: Sendable {
        let version: UInt64
        let items: [Item]
    }

    private let entries = Mutex<[String: Entry]>([:])

    func items(service: Service, namespace: Namespace, state: RegistryState) -> [Item] {
        if let entry = entries.withLock({ $0[service.id] }), entry.version == service.viewVersion {
            return entry.items
        }
        let items = state.instances(of: service.id).values.sorted { $0.id < $1.id }.map { instance in
            let health = Discovery.reportedHealth(instance, in: service)
            let fragment = JSONWriter.render(
                .object([
                    "InstanceId": .string(instance.id), "NamespaceName": .string(namespace.httpName),
                    "ServiceName": .string(service.name), "HealthStatus": .string(health.rawValue),
                    "Attributes": Render.attributes(instance.attributes),
                ]))
            return Item(attributes: instance.attributes, health: instance.health, fragment: fragment)
        }
        entries.withLock { cache in
            // Drop entries of services that no longer exist once the cache outgrows the registry.
            if cache.count > 2 * state.services.count + 16 {
                cache = cache.filter { state.services[$0.key] != nil }
            }
            cache[service.id] = Entry(version: service.viewVersion, items: items)
        }
        return items
    }
}
