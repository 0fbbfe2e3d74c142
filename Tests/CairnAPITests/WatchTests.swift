import CairnCore
import CairnTesting
import CloudMapWire
import Testing

@testable import CairnAPI

@Suite("Watch stream: its request and what changed between two renderings")
struct WatchTests {
    @Test("A namespace and a service, an optional heartbeat, and the index from Last-Event-ID before the query's")
    func parsing() throws {
        let plain = try WatchRequest.parse(["namespace": "ns", "service": "web"], lastEventID: nil)
        #expect(plain == WatchRequest(namespaceName: "ns", serviceName: "web", heartbeatSeconds: 15, index: nil))
        let full = try WatchRequest.parse(["namespace": "ns", "service": "web", "heartbeat": "300", "index": "7"], lastEventID: "9")
        #expect(full.heartbeatSeconds == 300 && full.index == 9)
        #expect(try WatchRequest.parse(["namespace": "ns", "service": "web", "index": "7"], lastEventID: nil).index == 7)
        #expect(try WatchRequest.parse(["namespace": "ns", "service": "web"], lastEventID: "").index == nil)
    }

    @Test(
        "Missing names, a heartbeat out of 1...300 and an index that is not a decimal number are InvalidInput",
        arguments: [
            ["service": "web"], ["namespace": "ns"], ["namespace": "", "service": "web"],
            ["namespace": "ns", "service": "web", "heartbeat": "0"], ["namespace": "ns", "service": "web", "heartbeat": "301"],
            ["namespace": "ns", "service": "web", "heartbeat": "-1"], ["namespace": "ns", "service": "web", "index": "x"],
            ["namespace": String(repeating: "n", count: 1025), "service": "web"],
        ])
    func malformed(parameters: [String: String]) {
        #expect(throws: WireError.self) { try WatchRequest.parse(parameters, lastEventID: nil) }
    }

    static func entry(_ version: UInt64, _ instances: [(String, String)]) -> DiscoveryCache.Entry {
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        for (_, body) in instances {
            ranges.append(bytes.count..<(bytes.count + body.utf8.count))
            bytes += Array(body.utf8)
        }
        return DiscoveryCache.Entry(
            version: version, ids: instances.map(\.0), attributes: instances.map { _ in [:] }, health: instances.map { _ in .HEALTHY },
            bytes: bytes, ranges: ranges)
    }

    @Test("A stream shares a recent rendering newer than what it sent; it renders anew when there is none, or it is old")
    func sharedRendering() throws {
        var fixture = RegistryFixture()
        let namespace = try fixture.namespace("shop", type: .HTTP)
        let serviceId = try fixture.service("web", in: namespace)
        try fixture.register("i1", in: serviceId, ["AWS_INSTANCE_IPV4": "10.0.0.1"])
        let cache = DiscoveryCache()
        func current(_ fixture: RegistryFixture) throws -> (Service, Namespace) {
            let state = fixture.state
            return (try #require(state.services[serviceId]), try #require(state.namespaces[namespace]))
        }
        var (service, ns) = try current(fixture)
        let first = cache.entry(service: service, namespace: ns, state: fixture.state)
        #expect(first.version == service.viewVersion && first.ids == ["i1"])
        try fixture.register("i2", in: serviceId, ["AWS_INSTANCE_IPV4": "10.0.0.2"])
        (service, ns) = try current(fixture)
        let second = cache.entry(service: service, namespace: ns, state: fixture.state)
        #expect(second.ids == ["i1", "i2"])
        try fixture.register("i3", in: serviceId, ["AWS_INSTANCE_IPV4": "10.0.0.3"])
        (service, ns) = try current(fixture)
        // A stream that sent `first` takes the recent `second`, though i3 came since; DiscoverInstances never does.
        let shared = cache.entry(service: service, namespace: ns, state: fixture.state, newerThan: first.version, maxAge: .seconds(60))
        #expect(shared.version == second.version && shared.ids == ["i1", "i2"])
        #expect(cache.entry(service: service, namespace: ns, state: fixture.state).ids == ["i1", "i2", "i3"])
        // One that sent `second` already gets the current rendering: the cached one must be newer than what it sent.
        try fixture.register("i4", in: serviceId, ["AWS_INSTANCE_IPV4": "10.0.0.4"])
        (service, ns) = try current(fixture)
        let third = cache.entry(service: service, namespace: ns, state: fixture.state)
        let sent = third.version
        try fixture.register("i5", in: serviceId, ["AWS_INSTANCE_IPV4": "10.0.0.5"])
        (service, ns) = try current(fixture)
        let fresh = cache.entry(service: service, namespace: ns, state: fixture.state, newerThan: sent, maxAge: .seconds(60))
        #expect(fresh.version == service.viewVersion && fresh.ids.count == 5)
        // Too old a rendering is not shared.
        try fixture.register("i6", in: serviceId, ["AWS_INSTANCE_IPV4": "10.0.0.6"])
        (service, ns) = try current(fixture)
        let aged = cache.entry(service: service, namespace: ns, state: fixture.state, newerThan: first.version, maxAge: .zero)
        #expect(aged.version == service.viewVersion && aged.ids.count == 6)
    }

    @Test("Added and changed instances by their index in the newer rendering, removed ones by id")
    func diff() {
        let old = Self.entry(1, [("a", "A1"), ("b", "B1"), ("d", "D1")])
        let new = Self.entry(2, [("b", "B2"), ("c", "C1"), ("d", "D1"), ("e", "E1")])
        #expect(WatchDiff.between(old, new) == WatchDiff(changed: [0, 1, 3], removed: ["a"]))
        #expect(WatchDiff.between(new, new).isEmpty)
        #expect(WatchDiff.between(Self.entry(1, []), old) == WatchDiff(changed: [0, 1, 2], removed: []))
        #expect(WatchDiff.between(old, Self.entry(3, [])) == WatchDiff(changed: [], removed: ["a", "b", "d"]))
    }

    @Test("Each event is one data line of compact JSON, with the service's index as its id")
    func events() {
        let entry = Self.entry(5, [("a", "{\"InstanceId\":\"a\"}"), ("b", "{\"InstanceId\":\"b\"}")])
        #expect(
            String(buffer: WatchEvent.reset(entry, revision: 2))
                == "id: 5\nevent: reset\ndata: {\"Index\":5,\"InstancesRevision\":2,\"Instances\":[{\"InstanceId\":\"a\"},{\"InstanceId\":\"b\"}]}\n\n"
        )
        #expect(
            String(buffer: WatchEvent.change(entry, WatchDiff(changed: [1], removed: ["x\"y"]), revision: 3))
                == "id: 5\nevent: change\ndata: {\"Index\":5,\"InstancesRevision\":3,\"Changed\":[{\"InstanceId\":\"b\"}],\"Removed\":[\"x\\\"y\"]}\n\n"
        )
        #expect(String(buffer: WatchEvent.end("bye")) == "event: end\ndata: {\"Reason\":\"bye\"}\n\n")
    }

    @Test("Streams of one service at the same index share one rendering of each event; other indexes render anew")
    func sharedEvents() {
        let streams = WatchStreams(limit: 10)
        let v1 = Self.entry(1, [("a", "A1")])
        let v2 = Self.entry(2, [("a", "A2"), ("b", "B1")])
        let v3 = Self.entry(3, [("a", "A2"), ("b", "B1")])
        let first = streams.change(service: "s", revision: 2, from: v1, to: v2)
        #expect(first.map { String(buffer: $0) } == String(buffer: WatchEvent.change(v2, WatchDiff.between(v1, v2), revision: 2)))
        // The same change again: the bytes stored, even when the caller's revision differs (it is the same change).
        #expect(streams.change(service: "s", revision: 99, from: v1, to: v2) == first)
        // Another service, or another pair of indexes, renders its own.
        #expect(streams.change(service: "t", revision: 7, from: v1, to: v2) != first)
        #expect(streams.change(service: "s", revision: 2, from: Self.entry(0, [("a", "A2")]), to: v2) != first)
        // Nothing a client sees changed: no event.
        #expect(streams.change(service: "s", revision: 3, from: v2, to: v3) == nil)
        let reset = streams.reset(service: "s", revision: 3, v3)
        #expect(String(buffer: reset) == String(buffer: WatchEvent.reset(v3, revision: 3)))
        #expect(streams.reset(service: "s", revision: 3, v3) == reset)
        streams.forget("s")
        #expect(String(buffer: streams.reset(service: "s", revision: 4, v3)) == String(buffer: WatchEvent.reset(v3, revision: 4)))
    }

    @Test("A stream's pace: 100 ms while the streams together stay within the fan-out budget, longer beyond it")
    func pace() {
        func pace(_ streams: Int, _ bytes: Int, events: Int = 10_000, budget: Int = 64 << 20) -> Duration {
            WatchStreams.pace(streams: streams, bytes: bytes, eventsPerSecond: events, bytesPerSecond: budget)
        }
        #expect(pace(0, 0) == .milliseconds(100))
        #expect(pace(1_000, 300) == .milliseconds(100))
        // Events: 10,000 small events a second at most.
        #expect(pace(10_000, 300) == .seconds(1))
        #expect(pace(25_000, 300) == .milliseconds(2_500))
        // Bytes: 1,024 streams of a 64 KiB event are 64 MiB, one second of a 64 MiB budget (four of the default 16 MiB).
        #expect(pace(1_024, 64 << 10) == .seconds(1))
        #expect(pace(10_000, 64 << 10) == .milliseconds(9_765))
        #expect(pace(10, 64 << 10, budget: 1 << 20) == .milliseconds(625))
        // Never more than an hour, and nothing traps.
        #expect(pace(10_000, 300, events: 0) == .seconds(3_600))
        #expect(pace(Int.max, Int.max, events: 1, budget: 1) == .seconds(3_600))
        #expect(pace(-1, -1) == .milliseconds(100))
        let streams = WatchStreams(limit: 10, eventsPerSecond: -5, bytesPerSecond: 0)
        #expect(streams.eventsPerSecond == 1 && streams.bytesPerSecond == 1)
    }

    @Test("Streams woken by one change beyond a second of the budget wait a random part of their pace, spread over all of it")
    func spread() {
        let pace = Duration.milliseconds(9_765)
        let waits = (0..<2_000).map { _ in WatchStreams.spread(pace) }
        #expect(waits.allSatisfy { $0 >= .zero && $0 < pace })
        // Spread over the pace, not bunched: every tenth of it gets some of 2,000 waits (each about 200).
        let tenths = Set(waits.map { Int($0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000) * 10 / 9_765 })
        #expect(tenths == Set(0..<10))
        #expect(WatchStreams.spread(.zero) == .zero)
        #expect(WatchStreams.spread(.seconds(3_600)) < .seconds(3_600))
    }
}
