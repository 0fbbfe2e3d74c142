import CairnCore
import CloudMapWire
import Foundation
import NIOCore
import Synchronization

/// The watch stream, a Cairn extension (docs/api-compatibility.md): `GET /cairn/v1/watch?namespace=NAME&service=NAME`
/// answers with server-sent events for one service's instances, the same instance summaries `DiscoverInstances`
/// returns with `HealthStatus=ALL`:
/// - `reset`: every instance (`Instances`), first on a new stream, and whenever the client's `Last-Event-ID` (or
///   `index`) is not the service's current index: the stream keeps no history, so a client that is behind starts over;
/// - `change`: the instances that were added or changed since the last event (`Changed`) and the ids removed
///   (`Removed`); changes made while the client was still reading an earlier event, or within 100 ms of the last
///   `change` event (a stream sends at most ten a second, and fewer when the streams open together would send more
///   than the fan-out budget, `api.watch.maxEventsPerSecond` and `maxBytesPerSecond`: see `WatchStreams.pace`), are
///   folded into one event;
/// - `deleted`: the service was deleted; the stream ends;
/// - `end`: the server ends the stream (shutting down, or too many waiting), with a `Reason`;
/// - a comment line (`: heartbeat`) every `heartbeat` seconds (default 15) when nothing changed.
/// Every event's `id` is the service's index (`X-Cairn-Index` of long-poll discovery). A stream costs the writer
/// nothing: it is woken like a long poll and renders from the discovery cache. A client that takes longer than the
/// write timeout to accept an event is cut off (logged and counted), so a stalled reader holds at most one event.
public struct WatchRequest: Sendable, Equatable {
    public var namespaceName: String
    public var serviceName: String
    public var heartbeatSeconds: Int
    /// The index the client has (`Last-Event-ID` or `index`): nil on a new stream.
    public var index: UInt64?

    public static let defaultHeartbeat = 15
    public static let maxHeartbeat = 300

    /// The query parameters and the `Last-Event-ID` header; `InvalidInput` for anything missing or malformed.
    public static func parse(_ parameters: [String: String], lastEventID: String?) throws(WireError) -> WatchRequest {
        func name(_ key: String) throws(WireError) -> String {
            guard let value = parameters[key], !value.isEmpty else {
                throw WireError(type: "InvalidInput", message: "The watch stream needs the query parameter \(key).")
            }
            guard value.utf8.count <= 1024 else {
                throw WireError(type: "InvalidInput", message: "The query parameter \(key) is longer than 1024 bytes.")
            }
            return value
        }
        var request = WatchRequest(
            namespaceName: try name("namespace"), serviceName: try name("service"), heartbeatSeconds: defaultHeartbeat, index: nil)
        if let text = parameters["heartbeat"] {
            guard let seconds = LongPoll.decimal(text, max: UInt64(maxHeartbeat)), seconds > 0 else {
                throw WireError(
                    type: "InvalidInput",
                    message: "heartbeat must be a whole number of seconds from 1 to \(maxHeartbeat), not '\(text.prefix(32))'.")
            }
            request.heartbeatSeconds = Int(seconds)
        }
        if let text = lastEventID ?? parameters["index"], !text.isEmpty {
            guard let index = LongPoll.decimal(text, max: UInt64.max) else {
                throw WireError(
                    type: "InvalidInput", message: "Last-Event-ID (or index) must be the id of an earlier event, not '\(text.prefix(32))'.")
            }
            request.index = index
        }
        return request
    }
}

/// What changed between two renderings of one service's instances (both sorted by id).
struct WatchDiff: Equatable {
    /// Indexes into the newer rendering of the instances added or changed.
    var changed: [Int] = []
    var removed: [String] = []

    var isEmpty: Bool { changed.isEmpty && removed.isEmpty }

    static func between(_ old: DiscoveryCache.Entry, _ new: DiscoveryCache.Entry) -> WatchDiff {
        var diff = WatchDiff()
        var i = 0
        var j = 0
        while i < old.count || j < new.count {
            if j == new.count || (i < old.count && old.ids[i] < new.ids[j]) {
                diff.removed.append(old.ids[i])
                i += 1
            } else if i == old.count || new.ids[j] < old.ids[i] {
                diff.changed.append(j)
                j += 1
            } else {
                if old.bytes[old.ranges[i]] != new.bytes[new.ranges[j]] { diff.changed.append(j) }
                i += 1
                j += 1
            }
        }
        return diff
    }
}

/// The events of the stream as bytes on the wire.
enum WatchEvent {
    static func reset(_ entry: DiscoveryCache.Entry, revision: UInt64) -> ByteBuffer {
        event(
            "reset", id: entry.version, entry, fragments: 0..<entry.count,
            head: "{\"Index\":\(entry.version),\"InstancesRevision\":\(revision),\"Instances\":[", tail: Array("]}".utf8))
    }

    static func change(_ entry: DiscoveryCache.Entry, _ diff: WatchDiff, revision: UInt64) -> ByteBuffer {
        var tail = Array("],\"Removed\":".utf8)
        tail += JSONWriter.render(.array(diff.removed.map { .string($0) }))
        tail.append(UInt8(ascii: "}"))
        return event(
            "change", id: entry.version, entry, fragments: diff.changed,
            head: "{\"Index\":\(entry.version),\"InstancesRevision\":\(revision),\"Changed\":[", tail: tail)
    }

    /// An event whose data is `head`, the instances' fragments `fragments` of `entry` separated by commas, and `tail`,
    /// written straight into one buffer of the size it needs: a `change` of a large service is hundreds of KB, made
    /// once per stream that is behind by its own amount, so no intermediate array and no regrowth.
    private static func event(
        _ name: String, id: UInt64, _ entry: DiscoveryCache.Entry, fragments: some Collection<Int>, head: String, tail: [UInt8]
    ) -> ByteBuffer {
        var size = 64 + head.utf8.count + tail.count
        for i in fragments { size += entry.ranges[i].count + 1 }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(size)
        buffer.writeString("id: \(id)\nevent: \(name)\ndata: ")
        buffer.writeString(head)
        entry.bytes.withUnsafeBytes { bytes in
            var first = true
            for i in fragments {
                if !first { buffer.writeInteger(UInt8(ascii: ",")) }
                first = false
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[entry.ranges[i]]))
            }
        }
        buffer.writeBytes(tail)
        buffer.writeString("\n\n")
        return buffer
    }

    static func deleted(index: UInt64) -> ByteBuffer {
        event("deleted", id: index, data: Array("{\"Index\":\(index)}".utf8))
    }

    static func end(_ reason: String) -> ByteBuffer {
        event("end", id: nil, data: JSONWriter.render(.object(["Reason": .string(reason)])))
    }

    static let heartbeat = ByteBuffer(string: ": heartbeat\n\n")

    /// One event. The data is compact JSON, which never holds a line break, so it is one `data:` line.
    static func event(_ name: String, id: UInt64?, data: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(data.count + 48)
        if let id { buffer.writeString("id: \(id)\n") }
        buffer.writeString("event: \(name)\ndata: ")
        buffer.writeBytes(data)
        buffer.writeString("\n\n")
        return buffer
    }
}

/// The watch streams open at once, bounded, and those cut off for not reading; the events they share; the one
/// watchdog of them all.
public final class WatchStreams: Sendable {
    public let limit: Int
    /// The fan-out budget: the `change` events, and their bytes, all streams send per second at most, together.
    public let eventsPerSecond: Int
    public let bytesPerSecond: Int
    private let open = Atomic<Int>(0)
    private let cutOffs = Atomic<Int>(0)

    public static let defaultEventsPerSecond = 20_000
    /// 16 MiB (128 Mbit/s) a second: the fan-out's share of a node's CPU and network (64 MiB cost a 2-core node a
    /// fifth to a third of its write rate with 10,000 streams on a service rewritten continuously; docs/performance.md).
    public static let defaultBytesPerSecond = 16 << 20
    /// The least time between two `change` events of one stream, however few streams are open.
    static let shortestPace: Duration = .milliseconds(100)

    public init(
        limit: Int, eventsPerSecond: Int = WatchStreams.defaultEventsPerSecond, bytesPerSecond: Int = WatchStreams.defaultBytesPerSecond
    ) {
        self.limit = max(0, limit)
        self.eventsPerSecond = max(1, eventsPerSecond)
        self.bytesPerSecond = max(1, bytesPerSecond)
    }

    /// How long a stream waits after sending a `change` of `bytes` before it sends the next: 100 ms, or longer when
    /// the streams open, each sending such an event a pace, would send more than the budget's events or bytes a
    /// second together. Every event costs a wake-up, a socket write and the copy of its bytes (and the same again
    /// on the client's side): with 10,000 streams open on a service written continuously, each event carries most
    /// of the service, and the fan-out would otherwise take the writers' CPU.
    public func pace(afterSending bytes: Int) -> Duration {
        Self.pace(streams: count, bytes: bytes, eventsPerSecond: eventsPerSecond, bytesPerSecond: bytesPerSecond)
    }

    static func pace(streams: Int, bytes: Int, eventsPerSecond: Int, bytesPerSecond: Int) -> Duration {
        let streams = Double(max(0, streams))
        let budgeted = max(
            streams / Double(max(1, eventsPerSecond)), streams * Double(max(0, bytes)) / Double(max(1, bytesPerSecond)))
        guard budgeted > 0.1 else { return shortestPace }
        return .milliseconds(Int64(min(budgeted, 3600) * 1000))
    }

    /// The budget's events and bytes of this long may go out at once (the streams of one service woken by one change);
    /// past it, they are spread over their pace (`spread`).
    static let burst: Duration = .seconds(1)

    /// A random part of `pace`, in whole milliseconds.
    static func spread(_ pace: Duration) -> Duration {
        let milliseconds = pace.components.seconds &* 1000 &+ pace.components.attoseconds / 1_000_000_000_000_000
        return .milliseconds(milliseconds > 0 ? Int64.random(in: 0..<milliseconds) : 0)
    }

    public var count: Int { open.load(ordering: .relaxed) }
    public var cutOffCount: Int { cutOffs.load(ordering: .relaxed) }

    /// A place among the open streams, given back when the stream (or a response never sent) is released.
    final class Place: Sendable {
        let streams: WatchStreams
        init(_ streams: WatchStreams) { self.streams = streams }
        deinit { streams.open.wrappingSubtract(1, ordering: .relaxed) }
    }

    func enter() -> Place? {
        let now = open.wrappingAdd(1, ordering: .relaxed).newValue
        guard now <= limit else {
            open.wrappingSubtract(1, ordering: .relaxed)
            return nil
        }
        return Place(self)
    }

    func cutOff() { cutOffs.wrappingAdd(1, ordering: .relaxed) }

    // MARK: Events rendered once

    /// The last event each service's streams sent: a `reset` at an index, a `change` between two indexes. Every
    /// stream of a service woken by the same change sends the same bytes, so one renders them and the others reuse
    /// them (10,000 streams on a service are one diff and one rendering per change, not 10,000).
    private struct Rendered {
        var reset: (index: UInt64, event: ByteBuffer)?
        /// `event` nil: nothing a client sees changed between the two indexes.
        var change: (from: UInt64, to: UInt64, event: ByteBuffer?)?
    }
    private let rendered = Mutex<[String: Rendered]>([:])

    /// The `reset` event of `service` at `entry`'s index.
    func reset(service: String, revision: UInt64, _ entry: DiscoveryCache.Entry) -> ByteBuffer {
        if let hit = rendered.withLock({ $0[service]?.reset }), hit.index == entry.version { return hit.event }
        let event = WatchEvent.reset(entry, revision: revision)
        store(service) { $0.reset = (entry.version, event) }
        return event
    }

    /// The `change` event of `service` from `old` to `new`; nil when a client sees no difference.
    func change(service: String, revision: UInt64, from old: DiscoveryCache.Entry, to new: DiscoveryCache.Entry) -> ByteBuffer? {
        if let hit = rendered.withLock({ $0[service]?.change }), hit.from == old.version, hit.to == new.version {
            return hit.event
        }
        let diff = WatchDiff.between(old, new)
        let event = diff.isEmpty ? nil : WatchEvent.change(new, diff, revision: revision)
        store(service) { $0.change = (old.version, new.version, event) }
        return event
    }

    /// Bounded by the services with streams: once the table outgrows the streams it starts over.
    private func store(_ service: String, _ update: (inout Rendered) -> Void) {
        rendered.withLock { table in
            if table.count > 2 * count + 16 { table = [:] }
            update(&table[service, default: Rendered()])
        }
    }

    func forget(_ service: String) { _ = rendered.withLock { $0.removeValue(forKey: service) } }

    // MARK: The watchdog

    private struct Guarded {
        let progress: WatchStream.Progress
        let timeout: Duration
        let onStall: @Sendable () -> Void
    }
    private struct Guards {
        var streams: [Int: Guarded] = [:]
        var next = 0
        var running = false
    }
    private let guards = Mutex(Guards())
    /// How often the watchdog looks at the streams' writes.
    static let watchdogPeriod: Duration = .milliseconds(500)

    /// Watches a stream's writes: `onStall` runs (once) when one waits longer than `timeout`. One task looks at
    /// every stream twice a second while any is open (a task per stream would be 20,000 wake-ups a second).
    func guardWrites(_ progress: WatchStream.Progress, timeout: Duration, onStall: @escaping @Sendable () -> Void) -> Int {
        let (token, start) = guards.withLock { g -> (Int, Bool) in
            g.next &+= 1
            g.streams[g.next] = Guarded(progress: progress, timeout: timeout, onStall: onStall)
            defer { g.running = true }
            return (g.next, !g.running)
        }
        if start {
            Task.detached { [weak self] in
                while true {
                    try? await Task.sleep(for: WatchStreams.watchdogPeriod)
                    guard let self, self.checkWrites() else { return }
                }
            }
        }
        return token
    }

    func unguard(_ token: Int) { _ = guards.withLock { $0.streams.removeValue(forKey: token) } }

    /// Cuts off the stalled streams; false (the watchdog stops) when none is left to watch.
    private func checkWrites() -> Bool {
        let (stalled, more) = guards.withLock { g -> ([@Sendable () -> Void], Bool) in
            var stalled: [@Sendable () -> Void] = []
            for (token, guarded) in g.streams where guarded.progress.stalled(longerThan: guarded.timeout) {
                stalled.append(guarded.onStall)
                g.streams[token] = nil
            }
            if g.streams.isEmpty { g.running = false }
            return (stalled, g.running)
        }
        for onStall in stalled { onStall() }
        return more
    }
}

/// A watch stream admitted, or the error reply that refused it.
public enum WatchAdmission: Sendable {
    case stream(WatchStream)
    case refused(CloudMapAPI.Reply)
}

/// A stream admitted and ready to run: who asked and for which service.
public struct WatchStream: Sendable {
    let request: WatchRequest
    let serviceId: String
    let api: CloudMapAPI
    let place: WatchStreams.Place

    /// The kernel's send buffer for a stream's connection (Linux doubles it): with NIO's 64 KiB before a write
    /// waits, what a stalled client holds is bounded.
    public static let sendBufferBytes: Int32 = 64 << 10

    /// When the write under way started (nil: none), for the watchdog that cuts off a client that stopped reading.
    public final class Progress: Sendable {
        private let started = Mutex<ContinuousClock.Instant?>(nil)
        public init() {}
        func begin() { started.withLock { $0 = .now } }
        func done() { started.withLock { $0 = nil } }
        /// Whether a write has been waiting for longer than `limit`.
        public func stalled(longerThan limit: Duration) -> Bool {
            started.withLock { $0.map { ContinuousClock.now - $0 > limit } ?? false }
        }
    }

    /// Writes the stream's events with `write` until the client goes, the service is deleted or the server ends it.
    /// `hangup` ends it as soon as the client's connection ends (the caller hangs it up), even while it waits.
    public func run(progress: Progress, hangup: Hangup = Hangup(), write: (ByteBuffer) async throws -> Void) async throws {
        func send(_ buffer: ByteBuffer) async throws {
            progress.begin()
            defer { progress.done() }
            try await write(buffer)
        }
        let registry = api.registry
        let heartbeat = Duration.seconds(request.heartbeatSeconds)
        /// Waits `duration`, sending a heartbeat every `heartbeat` of it, so clients see a live stream.
        func rest(_ duration: Duration) async throws {
            var duration = duration
            while duration > heartbeat, !Task.isCancelled, !hangup.hungUp {
                await registry.pause(for: heartbeat, hangup: hangup)
                duration -= heartbeat
                try await send(WatchEvent.heartbeat)
            }
            await registry.pause(for: duration, hangup: hangup)
        }
        var sent: DiscoveryCache.Entry?
        /// The stream has waited its turn for the change it is about to send.
        var waited = false
        while !Task.isCancelled, !hangup.hungUp {
            let state = registry.snapshot.state
            guard let service = state.services[serviceId], let namespace = state.namespaces[service.namespaceId] else {
                place.streams.forget(serviceId)
                try await send(WatchEvent.deleted(index: sent?.version ?? request.index ?? 0))
                return
            }
            let entry =
                if let sent {
                    api.discoveryCache.entry(
                        service: service, namespace: namespace, state: state, newerThan: sent.version, maxAge: WatchStreams.shortestPace)
                } else {
                    api.discoveryCache.entry(service: service, namespace: namespace, state: state)
                }
            let streams = place.streams
            if let previous = sent {
                if previous.version != entry.version {
                    if let event = streams.change(service: service.id, revision: service.instancesRevision, from: previous, to: entry) {
                        // Paced: changes that come faster than this are folded into the next event, so a service
                        // written thousands of times a second costs its streams at most 10 events a second each,
                        // and all streams together at most the fan-out budget (`WatchStreams.pace`).
                        let pace = streams.pace(afterSending: event.readableBytes)
                        if pace > WatchStreams.burst, !waited {
                            // Every stream of the service woke on this same change, and together their events are
                            // more than a second of the budget: each first waits a random part of its pace, so they
                            // send spread over it, not all at once (10,000 streams of a service of hundreds of
                            // instances would put gigabytes into their sockets in the same instant). What it sends
                            // then is the change up to that moment. Within a second of the budget they send at once.
                            waited = true
                            try await rest(WatchStreams.spread(pace))
                            continue
                        }
                        try await send(event)
                        try await rest(pace)
                    }
                    waited = false
                    sent = entry
                }
            } else if request.index == entry.version {
                sent = entry  // the client has this very answer: nothing to send until it changes
            } else {
                try await send(streams.reset(service: service.id, revision: service.instancesRevision, entry))
                sent = entry
            }
            let version = sent?.version ?? entry.version
            guard
                await registry.awaitChange(
                    ofService: serviceId, beyond: version, timeout: .seconds(request.heartbeatSeconds), hangup: hangup)
            else {
                try await send(
                    WatchEvent.end("The server is shutting down, or too many calls wait for changes; reconnect with Last-Event-ID."))
                return
            }
            if hangup.hungUp { return }
            if registry.snapshot.state.services[serviceId]?.viewVersion == version { try await send(WatchEvent.heartbeat) }
        }
    }
}

extension CloudMapAPI {
    /// Admits a watch stream: the caller's signature (headers or a presigned URL), the throttle and the policies of
    /// `DiscoverInstances` on the service, the service itself; an error reply when any refuses.
    public func watch(_ signed: SigV4.Request, parameters: [String: String], lastEventID: String?, peer: @autoclosure () -> String)
        -> WatchAdmission
    {
        let requestId = RequestID.next()
        guard let spec = Self.operations["DiscoverInstances"] else {
            return .refused(errorReply(WireError(type: "InternalFailure", message: "DiscoverInstances is not in the model.", status: 500)))
        }
        do throws(WireError) {
            let caller = try authenticate(signed)
            guard throttle.admit(principal: caller.accessKeyId, region: caller.region, kind: spec.throttle) else {
                throw Self.throttled(spec)
            }
            let request = try WatchRequest.parse(parameters, lastEventID: lastEventID)
            let context = RequestContext(region: caller.region, account: configuration.account)
            let input = JSONValue.object(["NamespaceName": .string(request.namespaceName), "ServiceName": .string(request.serviceName)])
            let state = self.state
            if caller.principal != nil {
                try authorize(
                    caller, spec, input: input, subjects: Subjects(spec, input: input, state: state, context: context), context: context)
            }
            let service: Service
            do throws(CairnError) {
                let ns = try state.namespace(httpName: request.namespaceName, in: context)
                service = try state.service(named: request.serviceName, in: ns)
            } catch {
                throw Self.wireError(error)
            }
            guard let place = watchStreams.enter() else {
                throw WireError(
                    type: "RequestLimitExceeded", message: "\(watchStreams.limit) watch streams are open; try again later.")
            }
            if shouldAudit(spec) {
                var event = CloudTrailEvent(
                    eventTime: clock(), eventName: "Watch", region: caller.region, account: configuration.account,
                    sourceIPAddress: peer(), userAgent: signed.header("user-agent") ?? "", identity: caller.identity,
                    requestParameters: AuditRendering.parameters(input), requestID: requestId, eventID: RequestID.next(), readOnly: true)
                event.resources = [service.arn]
                registry.record(event.entry)
            }
            return .stream(WatchStream(request: request, serviceId: service.id, api: self, place: place))
        } catch {
            return .refused(Reply(status: error.status, body: error.body, requestId: requestId, operation: "Watch", errorCode: error.type))
        }
    }
}
