import CairnCore
import CloudMapWire

/// The whole registry as one JSON document (`cairn export`): namespaces, services, instances, attributes, tags and
/// health configuration, keyed by names and free of generated ids and dates, so that export → import → export
/// gives the same document. Taken from one snapshot, so it is consistent as of `source.sequence`.
public enum RegistryExport {
    public static let format = "cairn-export/1"

    public static func document(_ state: RegistryState, now: Int64) -> JSONValue {
        var regions: [String: [Namespace]] = [:]
        for namespace in state.namespaces.values { regions[namespace.region, default: []].append(namespace) }
        var servicesByNamespace: [String: [Service]] = [:]
        for service in state.services.values { servicesByNamespace[service.namespaceId, default: []].append(service) }
        var rendered: [String: JSONValue] = [:]
        for (region, namespaces) in regions {
            rendered[region] = .object([
                "namespaces": .array(
                    namespaces.sorted { ($0.name, $0.type.rawValue) < ($1.name, $1.type.rawValue) }.map { namespace in
                        self.namespace(namespace, services: servicesByNamespace[namespace.id] ?? [], state: state)
                    })
            ])
        }
        return .object([
            "format": .string(format),
            "source": .object(["sequence": .int(Int64(state.sequence)), "exportedAt": .timestamp(milliseconds: now)]),
            "regions": .object(rendered),
        ])
    }

    static func tags(_ tags: [Tag]) -> JSONValue {
        .object(Dictionary(tags.map { ($0.key, JSONValue.string($0.value)) }, uniquingKeysWith: { $1 }))
    }

    static func namespace(_ namespace: Namespace, services: [Service], state: RegistryState) -> JSONValue {
        var o: [String: JSONValue] = [
            "name": .string(namespace.name), "type": .string(namespace.type.rawValue), "tags": tags(namespace.tags),
            "services": .array(services.sorted { $0.name < $1.name }.map { service($0, state: state) }),
        ]
        if let d = namespace.description { o["description"] = .string(d) }
        if let ttl = namespace.soaTTL { o["soaTTL"] = .int(ttl) }
        if let network = namespace.network { o["network"] = .string(network) }
        if namespace.type == .HTTP, namespace.httpName != namespace.name { o["httpName"] = .string(namespace.httpName) }
        // A signed zone's keys, private halves included: a zone moved without them breaks at every validating
        // resolver the moment its parent's DS names a key it no longer has. (The export needs cairn:ExportRegistry.)
        if let keys = namespace.signingKeys, !keys.isEmpty {
            o["dnssecKeys"] = .array(
                keys.map {
                    .object(["privateKey": .string($0.privateKey), "publicKey": .string($0.publicKey), "createdAt": .int($0.createdAt)])
                })
        }
        return .object(o)
    }

    static func service(_ service: Service, state: RegistryState) -> JSONValue {
        var o: [String: JSONValue] = [
            "name": .string(service.name), "type": .string(service.type.rawValue), "tags": tags(service.tags),
            "attributes": .object(service.attributes.mapValues(JSONValue.string)),
            "customHealth": .bool(service.hasCustomHealth),
        ]
        if let d = service.description { o["description"] = .string(d) }
        if let dns = service.dnsConfig {
            o["dnsConfig"] = .object([
                "routingPolicy": .string(dns.routingPolicy.rawValue),
                "records": .array(dns.records.map { .object(["type": .string($0.type.rawValue), "ttl": .int($0.ttl)]) }),
            ])
        }
        if let check = service.healthCheckConfig {
            var c: [String: JSONValue] = ["type": .string(check.type.rawValue)]
            if let path = check.resourcePath { c["resourcePath"] = .string(path) }
            if let threshold = check.failureThreshold { c["failureThreshold"] = .int(Int64(threshold)) }
            o["healthCheckConfig"] = .object(c)
        }
        o["instances"] = .array(
            state.instances(of: service.id).values.sorted { $0.id < $1.id }.map { instance in
                var i: [String: JSONValue] = [
                    "id": .string(instance.id), "attributes": .object(instance.attributes.mapValues(JSONValue.string)),
                ]
                // Custom health is state the registry was told; checked health is re-learned by probing.
                if service.hasCustomHealth { i["health"] = .string(instance.health.rawValue) }
                return .object(i)
            })
        return .object(o)
    }
}
