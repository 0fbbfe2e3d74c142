import CairnCore
import CloudMapWire

extension CloudMapAPI {
    /// `OwnerAccount`, when given, must be the account that owns the namespace (no sharing between accounts here).
    private func checkOwner(_ call: Call) throws(CairnError) {
        if let owner = call.string("OwnerAccount"), owner != call.context.account {
            throw CairnError(.namespaceNotFound, "No namespace owned by account \(owner) is visible to this caller.")
        }
    }

    func discoverInstances(_ call: Call) throws(CairnError) -> Output {
        try checkOwner(call)
        let state = self.state
        let ns = try state.namespace(httpName: try call.required("NamespaceName"), in: call.context)
        let service = try state.service(named: try call.required("ServiceName"), in: ns)
        let query = DiscoveryQuery(
            queryParameters: call.input["QueryParameters"]?.stringMap ?? [:],
            optionalParameters: call.input["OptionalParameters"]?.stringMap ?? [:],
            healthStatus: call.string("HealthStatus").flatMap(HealthStatusFilter.init(rawValue:)) ?? .HEALTHY,
            maxResults: call.int("MaxResults") ?? 100)
        let entry = discoveryCache.entry(service: service, namespace: ns, state: state)
        var rng = SplitMix64(seed: FastSeed.next())
        let chosen = Discovery.select(
            Array(0..<entry.count), service: service, query: query, attributes: { entry.attributes[$0] },
            health: { entry.health[$0] }, using: &rng)
        let size = chosen.reduce(64) { $0 + entry.ranges[$1].count + 1 }
        var writer = JSONWriter(capacity: size)
        writer.append("{\"Instances\":[")
        entry.bytes.withUnsafeBufferPointer { all in
            for (i, index) in chosen.enumerated() {
                if i > 0 { writer.append(",") }
                writer.append(bytes: UnsafeBufferPointer(rebasing: all[entry.ranges[index]]))
            }
        }
        writer.append("],\"InstancesRevision\":\(service.instancesRevision)}")
        return .bytes(writer.bytes)
    }

    func discoverInstancesRevision(_ call: Call) throws(CairnError) -> Output {
        try checkOwner(call)
        let state = self.state
        let ns = try state.namespace(httpName: try call.required("NamespaceName"), in: call.context)
        let service = try state.service(named: try call.required("ServiceName"), in: ns)
        return .json(.object(["InstancesRevision": .int(Int64(service.instancesRevision))]))
    }
}
