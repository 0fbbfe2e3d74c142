import CairnCore
import Foundation
import Synchronization
import Testing

/// Records how many entries each append carried; can be told to fail.
final class RecordingStore: RegistryStore {
    let batches = Mutex<[Int]>([])
    let failing = Mutex(false)
    let inner = InMemoryRegistryStore()

    func load() async throws -> StoredRegistry { try await inner.load() }
    func append(_ entries: [ChangeLogEntry], audit: [AuditEntry]) async throws {
        if failing.withLock({ $0 }) { throw CairnError(.internalFailure, "disk on fire") }
        try await Task.sleep(for: .milliseconds(5))  // a commit takes time, so commands queue behind it
        batches.withLock { $0.append(entries.count) }
        try await inner.append(entries, audit: audit)
    }
    func auditRecords(_ query: AuditQuery) async throws -> AuditPage { try await inner.auditRecords(query) }
    func auditRecords(after: UInt64, limit: Int) async throws -> [AuditRecord] { try await inner.auditRecords(after: after, limit: limit) }
    func verifyAudit() async throws -> AuditVerification { try await inner.verifyAudit() }
    func pruneAudit(olderThan time: Int64) async throws -> Int { try await inner.pruneAudit(olderThan: time) }
    func checkpoint(_ state: RegistryState) async throws { try await inner.checkpoint(state) }
    func close() async throws {}
}

@Suite("The single writer")
struct RegistryTests {
    let context = RequestContext(region: "us-east-1", account: "000000000000")

    /// Namespace `demo` with service `s`, through a running registry.
    func demoService(_ registry: Registry) async throws -> Service {
        _ = try await registry.submit(.createNamespace(CreateNamespace(type: .HTTP, name: "demo")), context: context)
        let ns = try #require(registry.snapshot.state.namespaces.values.first).id
        guard
            case .service(let service) = try await registry.submit(
                .createService(CreateService(name: "s", namespaceId: ns)), context: context)
        else { throw CairnError.invalid("no service") }
        return service
    }

    @Test("Concurrent commands share durable transactions (group commit) and all land")
    func groupCommit() async throws {
        let store = RecordingStore()
        let registry = try await Registry.open(store: store, seed: 3)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await registry.run() }
            let service = try await demoService(registry)
            try await withThrowingTaskGroup(of: Void.self) { writers in
                for i in 0..<200 {
                    writers.addTask {
                        _ = try await registry.submit(
                            .registerInstance(RegisterInstance(serviceId: service.id, instanceId: "i\(i)", attributes: [:])),
                            context: context)
                    }
                }
                try await writers.waitForAll()
            }
            registry.shutdown()
            try await group.next()
        }
        #expect(registry.snapshot.state.instances(of: registry.snapshot.state.services.keys.first!).count == 200)
        let batches = store.batches.withLock { $0 }
        #expect(batches.reduce(0, +) == 202)
        #expect(batches.count < 100, "expected batching, got \(batches.count) transactions")
        let replayed = try await store.load().replayed()
        #expect(replayed.sequence == registry.snapshot.state.sequence)
    }

    @Test("A failed store write changes nothing and says so")
    func failedWrite() async throws {
        let store = RecordingStore()
        let registry = try await Registry.open(store: store, seed: 3)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await registry.run() }
            store.failing.withLock { $0 = true }
            var code: CairnError.Code?
            do { _ = try await registry.submit(.createNamespace(CreateNamespace(type: .HTTP, name: "demo")), context: context) } catch {
                code = (error as? CairnError)?.code
            }
            #expect(code == .internalFailure)
            #expect(registry.snapshot.state.namespaces.isEmpty && registry.snapshot.state.sequence == 0)
            store.failing.withLock { $0 = false }
            _ = try? await registry.submit(.createNamespace(CreateNamespace(type: .HTTP, name: "demo")), context: context)
            #expect(registry.snapshot.state.namespaces.count == 1)
            registry.shutdown()
        }
    }

    @Test("After shutdown, commands are refused")
    func refusedAfterShutdown() async throws {
        let registry = try await Registry.open(store: InMemoryRegistryStore(), seed: 3)
        registry.shutdown()
        await registry.run()
        var code: CairnError.Code?
        do { _ = try await registry.submit(.deleteNamespace(id: "ns-x"), context: context) } catch { code = error.code }
        #expect(code == .serviceUnavailable)
    }

    @Test("Validation failures in a batch do not disturb the others")
    func mixedBatch() async throws {
        let registry = try await Registry.open(store: InMemoryRegistryStore(), seed: 3)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await registry.run() }
            let results = await withTaskGroup(of: Bool.self) { submitters in
                for i in 0..<20 {
                    submitters.addTask {
                        // Even i: a fresh name. Odd i: a clash with the even one before it (or a success if it ran first).
                        let name = "ns\(i / 2)"
                        return (try? await registry.submit(.createNamespace(CreateNamespace(type: .HTTP, name: name)), context: context))
                            != nil
                    }
                }
                return await submitters.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 10)
            #expect(registry.snapshot.state.namespaces.count == 10)
            registry.shutdown()
            try await group.next()
        }
    }

    @Test("Checkpoints taken while writes go on leave a store that replays to the same state")
    func checkpointsUnderLoad() async throws {
        let store = RecordingStore()
        let registry = try await Registry.open(store: store, configuration: Registry.Configuration(checkpointInterval: 7), seed: 5)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await registry.run() }
            let service = try await demoService(registry)
            for round in 0..<5 {
                try await withThrowingTaskGroup(of: Void.self) { writers in
                    for i in 0..<20 {
                        writers.addTask {
                            _ = try await registry.submit(
                                .registerInstance(
                                    RegisterInstance(serviceId: service.id, instanceId: "i\(i)", attributes: ["r": "\(round)"])),
                                context: context)
                        }
                    }
                    try await writers.waitForAll()
                }
            }
            registry.shutdown()
            try await group.next()
        }
        let stored = try await store.load()
        #expect(stored.checkpoint != nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(try encoder.encode(stored.replayed()) == encoder.encode(registry.snapshot.state))
    }
}
