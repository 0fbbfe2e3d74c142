import Synchronization

/// Long-poll discovery: callers waiting for a service's answer to move past the version they have (the service's
/// `viewVersion`, which moves with every registration, deregistration, attribute and health change of its
/// instances, and with the service itself). The writer tells it which services a published state changed; only
/// their waiters are looked at. At most `limit` callers wait at once: a registry's memory per client is bounded.
public final class ServiceWatchers: Sendable {
    struct Waiter {
        let version: UInt64
        let continuation: CheckedContinuation<Void, Never>
        /// The tick at which the wait times out (nil: never).
        let tick: Int64?
    }

    struct Table {
        var byService: [String: [Int: Waiter]] = [:]
        /// The timed waits by the tick they end at: ticket → service. A timer wheel, so a wait costs no timer of
        /// its own (10,000 watch streams would otherwise be 10,000 timers and child tasks re-armed on every change).
        var deadlines: [Int64: [Int: String]] = [:]
        /// The last tick swept: every deadline is after it.
        var swept: Int64 = 0
        var sweeping = false
        var count = 0
        var next = 0
        /// Tickets cancelled before their waiter was added (the add then returns at once).
        var cancelled: Set<Int> = []
        var closed = false
    }

    public let limit: Int
    /// The key of waits for any published change (`Registry.awaitPublish`), whose version is the state's sequence:
    /// no service id is empty.
    public static let anyChange = ""
    /// The key of pauses (`Registry.pause`): never a service id, never changed.
    static let pausing = "\u{0}pause"
    private let table = Mutex(Table())
    /// The number of waiters, read without the lock on every publish.
    private let waiting = Atomic<Int>(0)
    private let origin = ContinuousClock.now
    /// How finely timeouts are kept: a wait ends within about one tick after its timeout, never before it.
    static let tick: Duration = .milliseconds(50)
    /// Woken waiters resumed by the writer itself up to this many; more are resumed by a task of their own.
    static let resumeInline = 256

    public init(limit: Int = 10_000) { self.limit = max(0, limit) }

    public var count: Int { waiting.load(ordering: .relaxed) }

    /// The waiters of one service in the table (tests).
    func waiting(on service: String) -> Int { table.withLock { $0.byService[service]?.count ?? 0 } }

    /// The timed waits in the timer wheel, and whether its sweeper runs (tests).
    var timers: (waits: Int, sweeping: Bool) {
        table.withLock { t in (t.deadlines.values.reduce(0) { $0 + $1.count }, t.sweeping) }
    }

    /// A ticket for one wait, or nil when `limit` callers already wait (or the registry is shutting down). Cairn's
    /// own waits (`exempt`, the health checker's one) do not count against the limit.
    func ticket(exempt: Bool = false) -> Int? {
        table.withLock { t in
            guard !t.closed, exempt || t.count < limit else { return nil }
            t.count += 1
            waiting.store(t.count, ordering: .relaxed)
            t.next &+= 1
            return t.next
        }
    }

    private func tick(at instant: ContinuousClock.Instant) -> Int64 {
        let elapsed = (instant - origin).components
        let ticks = Self.tick.components
        let nanos = elapsed.seconds &* 1_000_000_000 &+ elapsed.attoseconds / 1_000_000_000
        let per = max(1, ticks.seconds &* 1_000_000_000 &+ ticks.attoseconds / 1_000_000_000)
        return nanos / per + 1
    }

    /// Waits until `current()` (read under the lock) is not `version`, `timeout` passed, the ticket is cancelled,
    /// `hangup` is hung up (a wait hung up already does not begin), or shutdown.
    func wait(
        _ ticket: Int, service: String, version: UInt64, timeout: Duration? = nil, hangup: Hangup?, current: () -> UInt64?
    ) async {
        guard let hangup else {
            await wait(ticket, service: service, version: version, timeout: timeout, current: current)
            return
        }
        if !hangup.begin(ticket, service: service, in: self) { cancel(ticket, service: service) }
        await wait(ticket, service: service, version: version, timeout: timeout, current: current)
        // A wait that ended by itself just before the hang-up cancelled it left its ticket among the cancelled ones.
        if hangup.end() { _ = table.withLock { $0.cancelled.remove(ticket) } }
    }

    /// Waits until `current()` (read under the lock) is not `version`, `timeout` passed, the ticket is cancelled,
    /// or shutdown.
    func wait(_ ticket: Int, service: String, version: UInt64, timeout: Duration? = nil, current: () -> UInt64?) async {
        // The tick after the one the timeout falls in: the sweep that ends it runs once that tick has begun, so
        // after the timeout (the tick the timeout falls in may have begun already before it).
        let deadline = timeout.map { tick(at: .now + $0) &+ 1 }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let (now, startSweeper) = table.withLock { t -> (Bool, Bool) in
                    if t.closed || t.cancelled.remove(ticket) != nil || current() != version {
                        release(&t)
                        return (true, false)
                    }
                    var tick = deadline
                    var start = false
                    if let wanted = deadline {
                        let at = max(wanted, t.swept + 1)
                        tick = at
                        t.deadlines[at, default: [:]][ticket] = service
                        if !t.sweeping {
                            t.sweeping = true
                            start = true
                        }
                    }
                    t.byService[service, default: [:]][ticket] = Waiter(version: version, continuation: continuation, tick: tick)
                    return (false, start)
                }
                if now { continuation.resume() }
                if startSweeper { startSweeping() }
            }
        } onCancel: {
            cancel(ticket, service: service)
        }
    }

    /// Ends the wait of `ticket` on `service` now, or, if it has not begun, as soon as it does.
    func cancel(_ ticket: Int, service: String) {
        let waiter = table.withLock { t -> Waiter? in
            guard let waiter = remove(ticket, service: service, from: &t) else {
                t.cancelled.insert(ticket)
                return nil
            }
            return waiter
        }
        waiter?.continuation.resume()
    }

    /// Takes a waiter out of the table (and its deadline), freeing its place.
    private func remove(_ ticket: Int, service: String, from t: inout Table) -> Waiter? {
        guard let waiter = t.byService[service]?.removeValue(forKey: ticket) else { return nil }
        if t.byService[service]?.isEmpty == true { t.byService[service] = nil }
        if let tick = waiter.tick {
            t.deadlines[tick]?[ticket] = nil
            if t.deadlines[tick]?.isEmpty == true { t.deadlines[tick] = nil }
        }
        release(&t)
        return waiter
    }

    /// One task ends the timed waits, a tick at a time, while there are any; it holds the table weakly.
    private func startSweeping() {
        Task.detached { [weak self] in
            while true {
                try? await Task.sleep(for: ServiceWatchers.tick)
                guard let self, self.sweep() else { return }
            }
        }
    }

    /// Ends the waits whose deadline passed; false (and the sweeper stops) when no timed wait is left.
    private func sweep() -> Bool {
        let now = tick(at: .now)
        var woken: [CheckedContinuation<Void, Never>] = []
        let more = table.withLock { t -> Bool in
            while t.swept < now {
                t.swept += 1
                guard let due = t.deadlines.removeValue(forKey: t.swept) else { continue }
                for (ticket, service) in due {
                    if let waiter = remove(ticket, service: service, from: &t) { woken.append(waiter.continuation) }
                }
            }
            if t.deadlines.isEmpty || t.closed {
                t.sweeping = false
                return false
            }
            return true
        }
        for continuation in woken { continuation.resume() }
        return more
    }

    /// Wakes the waiters of `services` (nil: every service) whose version is no longer the one `version(of:)` gives.
    func changed(_ services: Set<String>?, version: (String) -> UInt64?) {
        guard count > 0 else { return }
        var woken: [CheckedContinuation<Void, Never>] = []
        table.withLock { t in
            let ids = services.map { Array($0) } ?? Array(t.byService.keys)
            for id in ids {
                guard let waiters = t.byService[id] else { continue }
                let now = version(id)
                for (ticket, waiter) in waiters where waiter.version != now {
                    if let waiter = remove(ticket, service: id, from: &t) { woken.append(waiter.continuation) }
                }
            }
        }
        // The writer calls this: many waiters (a watched service's streams) are resumed beside it, not by it.
        if woken.count <= Self.resumeInline {
            for continuation in woken { continuation.resume() }
        } else {
            Task.detached { for continuation in woken { continuation.resume() } }
        }
    }

    /// Shutdown: every waiter answers now, and no new one waits.
    public func close() {
        let all = table.withLock { t -> [CheckedContinuation<Void, Never>] in
            t.closed = true
            let all = t.byService.values.flatMap { $0.values.map(\.continuation) }
            t.byService = [:]
            t.deadlines = [:]
            t.count = 0
            waiting.store(0, ordering: .relaxed)
            return all
        }
        for continuation in all { continuation.resume() }
    }

    private func release(_ t: inout Table) {
        t.count = max(0, t.count - 1)
        waiting.store(t.count, ordering: .relaxed)
    }

    /// The services whose answer `entries` may change; nil when they may change any (a namespace changed).
    public static func services(touchedBy entries: some Sequence<ChangeLogEntry>) -> Set<String>? {
        var ids = Set<String>()
        for entry in entries {
            for event in entry.events {
                switch event {
                case .instancePut(let instance): ids.insert(instance.serviceId)
                case .instanceDeleted(let serviceId, _), .healthSet(let serviceId, _, _): ids.insert(serviceId)
                case .servicePut(let service): ids.insert(service.id)
                case .serviceDeleted(let id): ids.insert(id)
                case .namespacePut, .namespaceDeleted: return nil
                case .operationPut, .tokenRecorded, .operationsPruned, .leaseRenewed: break
                }
            }
        }
        return ids
    }
}

/// Ends the waits of a loop whose client went away (a watch stream's connection closed) at once, rather than at its
/// next timeout: `hangUp()` ends the wait under way and makes every later one return at once. Without it, a stream
/// whose client died waits out its pace and heartbeat (up to minutes) before a write fails and frees it.
public final class Hangup: Sendable {
    private struct State {
        var hungUp = false
        /// The wait under way: its ticket, key and watchers.
        var waiting: (ticket: Int, service: String, watchers: ServiceWatchers)?
        /// The hang-up cancelled the wait under way (which may have ended by itself just before).
        var cancelled = false
    }
    private let state = Mutex(State())

    public init() {}

    public var hungUp: Bool { state.withLock { $0.hungUp } }

    public func hangUp() {
        // Cancelled under the lock, so `end` cannot run between the two and miss the cancellation.
        state.withLock { s in
            s.hungUp = true
            guard let waiting = s.waiting else { return }
            s.waiting = nil
            s.cancelled = true
            waiting.watchers.cancel(waiting.ticket, service: waiting.service)
        }
    }

    /// Records the wait about to begin; false (do not wait) once hung up.
    func begin(_ ticket: Int, service: String, in watchers: ServiceWatchers) -> Bool {
        state.withLock { s in
            guard !s.hungUp else { return false }
            s.waiting = (ticket, service, watchers)
            return true
        }
    }

    /// The wait ended; true when the hang-up cancelled it.
    func end() -> Bool {
        state.withLock { s in
            defer {
                s.waiting = nil
                s.cancelled = false
            }
            return s.cancelled
        }
    }
}
