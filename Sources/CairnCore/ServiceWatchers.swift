import Synchronization

/// Long-poll discovery: callers waiting for a service's answer to move past the version they have (the service's
/// `viewVersion`, which moves with every registration, deregistration, attribute and health change of its
/// instances, and with the service itself). The writer tells it which services a published state changed; only
/// their waiters are looked at. At most `limit` callers wait at once: a registry's memory per client is bounded.
public final class ServiceWatchers: Sendable {
    struct Waiter {
        let version: UInt64
        let continuation: CheckedContinuation<Void, Never>
    }

    struct Table {
        var byService: [String: [Int: Waiter]] = [:]
        var count = 0
        var next = 0
        /// Tickets cancelled before their waiter was added (the add then returns at once).
        var cancelled: Set<Int> = []
        var closed = false
    }

    public let limit: Int
    private let table = Mutex(Table())
    /// The number of waiters, read without the lock on every publish.
    private let waiting = Atomic<Int>(0)

    public init(limit: Int = 10_000) { self.limit = max(0, limit) }

    public var count: Int { waiting.load(ordering: .relaxed) }

    /// The waiters of one service in the table (tests).
    func waiting(on service: String) -> Int { table.withLock { $0.byService[service]?.count ?? 0 } }

    /// A ticket for one wait, or nil when `limit` callers already wait (or the registry is shutting down).
    func ticket() -> Int? {
        table.withLock { t in
            guard !t.closed, t.count < limit else { return nil }
            t.count += 1
            waiting.store(t.count, ordering: .relaxed)
            t.next &+= 1
            return t.next
        }
    }

    /// Waits until `current()` (read under the lock) is not `version`, the ticket is cancelled, or shutdown.
    func wait(_ ticket: Int, service: String, version: UInt64, current: () -> UInt64?) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = table.withLock { t -> Bool in
                    if t.closed || t.cancelled.remove(ticket) != nil || current() != version {
                        release(&t)
                        return true
                    }
                    t.byService[service, default: [:]][ticket] = Waiter(version: version, continuation: continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = table.withLock { t -> Waiter? in
                guard let waiter = t.byService[service]?.removeValue(forKey: ticket) else {
                    t.cancelled.insert(ticket)
                    return nil
                }
                if t.byService[service]?.isEmpty == true { t.byService[service] = nil }
                release(&t)
                return waiter
            }
            waiter?.continuation.resume()
        }
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
                    t.byService[id]?[ticket] = nil
                    woken.append(waiter.continuation)
                    release(&t)
                }
                if t.byService[id]?.isEmpty == true { t.byService[id] = nil }
            }
        }
        for continuation in woken { continuation.resume() }
    }

    /// Shutdown: every waiter answers now, and no new one waits.
    public func close() {
        let all = table.withLock { t -> [CheckedContinuation<Void, Never>] in
            t.closed = true
            let all = t.byService.values.flatMap { $0.values.map(\.continuation) }
            t.byService = [:]
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
