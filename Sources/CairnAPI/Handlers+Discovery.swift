import CairnCore
import CloudMapWire
import NIOCore

extension CloudMapAPI {
    static let allocator = ByteBufferAllocator()

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
        // Straight into the buffer the server sends, in one pass over its memory: no second copy of the (often
        // tens of KB) answer, and no per-fragment bounds and exclusivity checks of ByteBuffer's writes.
        let head: StaticString = "{\"Instances\":["
        let tail = Array("],\"InstancesRevision\":\(service.instancesRevision)}".utf8)
        let size = chosen.reduce(head.utf8CodeUnitCount + tail.count) { $0 + entry.ranges[$1].count + 1 }
        var buffer = Self.allocator.buffer(capacity: size)
        entry.bytes.withUnsafeBytes { all in
            _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
                var position = 0
                func put(_ bytes: UnsafeRawBufferPointer) {
                    guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
                    (out.baseAddress! + position).copyMemory(from: base, byteCount: bytes.count)
                    position += bytes.count
                }
                put(UnsafeRawBufferPointer(start: head.utf8Start, count: head.utf8CodeUnitCount))
                for (i, index) in chosen.enumerated() {
                    if i > 0 {
                        out[position] = UInt8(ascii: ",")
                        position += 1
                    }
                    put(UnsafeRawBufferPointer(rebasing: all[entry.ranges[index]]))
                }
                tail.withUnsafeBytes { put($0) }
                return position
            }
        }
        return .bytes(buffer)
    }

    func discoverInstancesRevision(_ call: Call) throws(CairnError) -> Output {
        try checkOwner(call)
        let state = self.state
        let ns = try state.namespace(httpName: try call.required("NamespaceName"), in: call.context)
        let service = try state.service(named: try call.required("ServiceName"), in: ns)
        return .json(.object(["InstancesRevision": .int(Int64(service.instancesRevision))]))
    }
}
