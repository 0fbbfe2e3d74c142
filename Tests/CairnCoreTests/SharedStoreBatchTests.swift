import CairnCore
import Synchronization
import Testing

/// A store that says other writers share it (`changes` is not nil) and whose write lock opens only when the test
/// says so; appends are recorded as (entries, audit records).
final class GatedSharedStore: RegistryStore {
    let inner = InMemoryRegistryStore()
    let appends = Mutex<[(entries: Int, audit: Int)]>([])
    private let gate = Mutex<(closed: Bool, waiting: CheckedContinuation<Void, Never>?, asked: CheckedContinuation<Void, Never>?)>(
        (true, nil, nil))
    let changes: AsyncStream<Void>? = AsyncStream { _ in }

    /// Returns once the writer is waiting for the lock.
    func waitUntilAsked() async {
        await withCheckedContinuation { continuation in
            let already = gate.withLock { state -> Bool in
                if state.waiting != nil { return true }
                state.asked = continuation
                return false
            }
            if already { continuation.resume() }
        }
    }

    func open() {
        gate.withLock { state in
            state.closed = false
            return state.waiting.take()
        }?.resume()
    }

    func lockForWrite(after sequence: UInt64) async throws -> [ChangeLogEntry]? {
        await withCheckedContinuation { continuation in
            let (pass, asked) = gate.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
                guard state.closed else { return (true, nil) }
                state.waiting = continuation
                return (false, state.asked.take())
            }
            asked?.resume()
            if pass { continuation.resume() }
        }
        return []
    }

    func load() async throws -> StoredRegistry { try await inner.load() }
    func append(_ entries: [ChangeLogEntry], audit: [AuditEntry]) async throws {
        appends.withLock { $0.append((entries.count, audit.count)) }
        try await inner.append(entries, audit: audit)
    }
    func auditRecords(_ query: AuditQuery) async throws -> AuditPage { try await inner.auditRecords(query) }
    func auditRecords(after: UInt64, limit: Int) async throws -> [AuditRecord] { try await inner.auditRecords(after: after, limit: limit) }
    func verifyAudit() async throws -> AuditVerification { try await inner.verifyAudit() }
    func pruneAudit(olderThan time: Int64) async throws -> Int { try await inner.pruneAudit(olderThan: time) }
    func checkpoint(_ state: RegistryState) async throws { try await inner.checkpoint(state) }
    func close() async throws {}
}

@Suite("Writer on a shared store")
struct SharedStoreBatchTests {
    static func record(_ n: Int) -> AuditEntry {
        AuditEntry(time: Int64(n), eventName: "ListNamespaces", principals: ["alice"], resources: [], members: Array(#""n":\#(n)"#.utf8))
    }

    @Test("What was queued while the writer waited for the store's lock joins the batch that holds it")
    func queuedDuringTheLockWaitJoinsTheBatch() async throws {
        let store = GatedSharedStore()
        let registry = try await Registry.open(store: store, seed: 3)
        let context = RequestContext(region: "us-east-1", account: "000000000000")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await registry.run() }
            group.addTask {
                _ = try await registry.submit(.createNamespace(CreateNamespace(type: .HTTP, name: "demo")), context: context)
            }
            // The writer took the namespace command and now waits for the lock; these queue behind it.
            await store.waitUntilAsked()
            registry.record(Self.record(1))
            registry.record(Self.record(2))
            store.open()
            try await group.next()  // the submit returned
            registry.shutdown()
            try await group.waitForAll()
        }
        let appends = store.appends.withLock { $0 }
        #expect(appends.first?.entries ?? 0 >= 1)
        #expect(appends.first?.audit == 2, "the records queued during the wait were in the batch that held the lock: \(appends)")
        #expect(appends.count == 1)
    }
}
