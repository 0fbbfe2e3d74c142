import CairnCore
import CairnPostgres
import CairnStore
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

/// A database of its own for one test, on the server the test command started.
enum PostgresTestDatabase {
    static func create() async throws -> String {
        guard let base = StoreConformanceTests.postgresURL else { throw PostgresStoreError("CAIRN_TEST_POSTGRES is not set") }
        let location = try PostgresLocation.parse(base)
        let name = "cairn_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.username, password: location.password,
            database: location.database, tls: .disable)
        configuration.options.connectTimeout = .seconds(5)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Logger(label: "test"))
        try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Logger(label: "test"))
        try await connection.close()
        return "postgres://\(location.username):\(location.password ?? "")@\(location.host):\(location.port)/\(name)?sslmode=disable"
    }

    /// Runs one statement in `url`'s database.
    static func execute(_ url: String, _ sql: String) async throws {
        let location = try PostgresLocation.parse(url)
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.username, password: location.password,
            database: location.database, tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 2, logger: Logger(label: "test"))
        try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test"))
        try await connection.close()
    }
}

/// Counts the writer's speculations.
final class SpeculationCounter: Telemetry {
    let counts = Mutex((kept: 0, decidedAgain: 0))
    func apiRequest(operation: String, errorCode: String?, seconds: Double) {}
    func dnsQuery(type: UInt16, rcode: UInt8, seconds: Double) {}
    func healthProbe(type: String, healthy: Bool, seconds: Double) {}
    func storeCommit(seconds: Double, entries: Int, auditRecords: Int) {}
    func speculation(kept: Bool) { counts.withLock { kept ? ($0.kept += 1) : ($0.decidedAgain += 1) } }
}

@Suite("PostgreSQL store: several writers on one database", .enabled(if: StoreConformanceTests.postgresURL != nil))
struct PostgresStoreTests {
    static func entries() throws -> [ChangeLogEntry] { try StoreConformanceTests.entries() }

    /// Shuts the registries down, waits for their writers, and closes their stores.
    static func stop(_ nodes: [(registry: Registry, run: Task<Void, Never>, store: PostgresRegistryStore)]) async throws {
        for node in nodes { node.registry.shutdown() }
        for node in nodes { await node.run.value }
        for node in nodes { try await node.store.close() }
    }

    @Test("An append decided against an old state writes nothing and returns what the other writer appended")
    func conflict() async throws {
        let url = try await PostgresTestDatabase.create()
        let a = try await PostgresRegistryStore.open(url: url)
        let b = try await PostgresRegistryStore.open(url: url)
        let entries = try Self.entries()
        #expect(try await a.append(Array(entries.prefix(3)), audit: [], expecting: 0) == .committed)
        // b decided its entry 1 without having seen a's 1…3.
        let outcome = try await b.append([entries[0]], audit: [StoreConformanceTests.event(1)], expecting: 0)
        #expect(outcome == .conflict(newer: Array(entries.prefix(3))))
        #expect(try await b.auditRecords(AuditQuery()).records.isEmpty)
        #expect(try await b.entries(after: 3) == [])
        #expect(try await b.append(Array(entries[3...4]), audit: [], expecting: 3) == .committed)
        #expect(try await a.entries(after: 3) == Array(entries[3...4]))
        #expect(try await a.load().replayed().sequence == 5)
        try await a.close()
        try await b.close()
    }

    @Test("A proposal is stored after the newer entries that wrote nothing it read, and refused when they wrote a key it read")
    func proposals() async throws {
        let url = try await PostgresTestDatabase.create()
        let a = try await PostgresRegistryStore.open(url: url)
        let b = try await PostgresRegistryStore.open(url: url)
        let entries = try Self.entries()
        let chain = SQLiteRegistryStore.chain
        // a appends 1…3 under the lock, each writing one instance's record.
        #expect(
            try await a.append(
                Array(entries.prefix(3)), audit: [StoreConformanceTests.event(1)], expecting: 0, writes: [["inst:s/a"], ["inst:s/a"], []])
                == .committed)
        // b decided entry 1 before it saw them, reading another instance: it is stored at 4, after them.
        let mine = Proposal(
            entries: [entries[0]], writes: [["inst:s/b"]], audit: [StoreConformanceTests.event(2)], after: 0, reads: ["inst:s/b", "svc:s"],
            terms: [])
        #expect(try await b.propose(mine) == .committed(newer: Array(entries.prefix(3))))
        #expect(try await a.entries(after: 3) == [entries[0].renumbered(by: 3)])
        // Decided after 0 again, but reading what a's entries wrote: nothing is written, the newer entries come back.
        let reading = Proposal(
            entries: [entries[3]], writes: [nil], audit: [StoreConformanceTests.event(3)], after: 0, reads: ["inst:s/a"], terms: [])
        #expect(try await b.propose(reading) == .conflict(newer: Array(entries.prefix(3)) + [entries[0].renumbered(by: 3)]))
        // Reading anything conflicts with any newer entry; b's own entry 4 wrote "inst:s/b" only.
        var everything = reading
        everything.after = 3
        everything.reads = nil
        #expect(try await b.propose(everything) == .conflict(newer: [entries[0].renumbered(by: 3)]))
        var disjoint = everything
        disjoint.reads = ["inst:s/c"]
        disjoint.writes = [nil]
        #expect(try await b.propose(disjoint) == .committed(newer: [entries[0].renumbered(by: 3)]))
        // An entry that may write anything (NULL) conflicts with every later proposal decided before it.
        var afterAny = disjoint
        afterAny.entries = [entries[4]]
        afterAny.writes = [[]]
        afterAny.audit = []
        #expect(try await a.propose(afterAny) == .conflict(newer: [entries[0].renumbered(by: 3), entries[3].renumbered(by: 1)]))
        // A term the database does not hold for this node fences the batch off; a node ahead of the clock reloads.
        var fenced = afterAny
        fenced.after = 5
        fenced.terms = [(term: 999, admitted: true)]
        #expect(try await a.propose(fenced) == .conflict(newer: []))
        fenced.terms = [(term: 999, admitted: false)]
        fenced.writes = [nil]
        #expect(try await a.propose(fenced) == .committed(newer: []))
        fenced.after = 9
        #expect(try await a.propose(fenced) == .behind)
        #expect(try await a.load().replayed().sequence == 6)
        // The audit trail is one chain, with records made byte for byte as every store makes them.
        let records = try await a.auditRecords(AuditQuery(limit: 10)).records.sorted { $0.sequence < $1.sequence }
        #expect(records.map(\.sequence) == [1, 2, 3])
        #expect(records[1].record == StoreConformanceTests.event(2).record(sequence: 2, previousHash: records[0].hash))
        #expect(chain.verify(records, anchor: AuditChain.genesis).firstBroken == nil)
        let verification = try await b.verifyAudit()
        #expect(verification.records == 3 && verification.firstBroken == nil)
        try await a.close()
        try await b.close()
    }

    @Test("A writer that waited for the clock's lock sees what the holder committed, and the audit chain's new head")
    func lockAfterWait() async throws {
        let url = try await PostgresTestDatabase.create()
        let a = try await PostgresRegistryStore.open(url: url)
        let b = try await PostgresRegistryStore.open(url: url)
        let entries = try Self.entries()
        #expect(try await a.lockForWrite(after: 0) == [])
        // b asks for the lock while a holds it: its statement starts (and takes its snapshot) before a commits.
        let waiting = Task { try await b.lockForWrite(after: 0) }
        try await Task.sleep(for: .milliseconds(300))
        try await a.append(Array(entries.prefix(2)), audit: [StoreConformanceTests.event(1)])
        #expect(try await waiting.value == Array(entries.prefix(2)))
        #expect(try await b.append(Array(entries[2...3]), audit: [StoreConformanceTests.event(2)], expecting: 2) == .committed)
        let records = try await a.auditRecords(AuditQuery()).records
        #expect(records.map(\.sequence).sorted() == [1, 2])
        let verification = try await a.verifyAudit()
        #expect(verification.records == 2 && verification.firstBroken == nil)
        try await a.close()
        try await b.close()
    }

    @Test("Another writer's append wakes a follower (LISTEN), and its entries follow the cursor")
    func follow() async throws {
        let url = try await PostgresTestDatabase.create()
        let a = try await PostgresRegistryStore.open(url: url, options: .init(pollInterval: .seconds(3600)))
        let b = try await PostgresRegistryStore.open(url: url, options: .init(pollInterval: .seconds(3600)))
        var wakes = try #require(b.changes).makeAsyncIterator()
        _ = await wakes.next()  // the wake after connecting
        let entries = try Self.entries()
        #expect(try await a.append([entries[0]], audit: [], expecting: 0) == .committed)
        _ = await wakes.next()
        #expect(try await b.entries(after: 0) == [entries[0]])
        try await a.close()
        try await b.close()
    }

    @Test("A node ahead of the database, or of another database, must reload")
    func reload() async throws {
        let url = try await PostgresTestDatabase.create()
        let a = try await PostgresRegistryStore.open(url: url)
        let entries = try Self.entries()
        #expect(try await a.append(Array(entries.prefix(3)), audit: [], expecting: 0) == .committed)
        #expect(try await a.entries(after: 5) == nil)  // the clock is behind this node: a restore
        #expect(try await a.append([entries[5]], audit: [], expecting: 5) == .conflict(newer: nil))
        try await PostgresTestDatabase.execute(url, "UPDATE cairn_clock SET epoch = 'restored'")
        #expect(try await a.entries(after: 3) == nil)
        try await a.close()
    }

    @Test("Audit records from several writers form one chain in the clock's order")
    func oneChain() async throws {
        let url = try await PostgresTestDatabase.create()
        let a = try await PostgresRegistryStore.open(url: url)
        let b = try await PostgresRegistryStore.open(url: url)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 1...40 {
                group.addTask { _ = try await (n % 2 == 0 ? a : b).append([], audit: [StoreConformanceTests.event(n)], expecting: 0) }
            }
            try await group.waitForAll()
        }
        let verification = try await a.verifyAudit()
        #expect(verification.records == 40)
        #expect(verification.firstBroken == nil)
        let all = try await b.auditRecords(AuditQuery(limit: 100)).records
        #expect(all.map(\.sequence) == Array((1...40).reversed()))
        try await a.close()
        try await b.close()
    }

    @Test("Nodes starting at once migrate once; a schema newer than the binary is refused with a clear message")
    func migrations() async throws {
        let url = try await PostgresTestDatabase.create()
        let stores = try await withThrowingTaskGroup(of: PostgresRegistryStore.self) { group in
            for _ in 0..<4 { group.addTask { try await PostgresRegistryStore.open(url: url) } }
            var opened: [PostgresRegistryStore] = []
            for try await store in group { opened.append(store) }
            return opened
        }
        #expect(stores.count == 4)
        for store in stores { try await store.close() }
        try await PostgresTestDatabase.execute(url, "INSERT INTO cairn_schema (version) VALUES (99)")
        do {
            _ = try await PostgresRegistryStore.open(url: url)
            Issue.record("a newer schema was accepted")
        } catch let error as PostgresStoreError {
            #expect(error.description.contains("newer than this binary"))
        }
    }

    @Test("Two registries on one database: the same name created on both has one winner, and each sees the other's writes")
    func registries() async throws {
        let url = try await PostgresTestDatabase.create()
        let options = PostgresRegistryStore.Options(pollInterval: .milliseconds(50))
        let storeA = try await PostgresRegistryStore.open(url: url, options: options)
        let storeB = try await PostgresRegistryStore.open(url: url, options: options)
        let a = try await Registry.open(store: storeA, seed: 1)
        let b = try await Registry.open(store: storeB, seed: 2)
        let runA = Task { await a.run() }
        let runB = Task { await b.run() }
        let context = RequestContext(region: "us-east-1", account: "000000000000")
        _ = try await a.submit(.createNamespace(CreateNamespace(type: .HTTP, name: "shop")), context: context)
        let namespace = try #require(a.snapshot.state.namespaces.keys.first)
        for _ in 0..<500 where b.snapshot.state.namespaces[namespace] == nil { try await Task.sleep(for: .milliseconds(10)) }
        #expect(b.snapshot.state.namespaces[namespace] != nil)
        var won = 0
        var lost = 0
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for n in 0..<40 {
                let registry = n % 2 == 0 ? a : b
                group.addTask {
                    do {
                        _ = try await registry.submit(
                            .createService(CreateService(name: "svc-\(n / 2)", namespaceId: namespace)), context: context)
                        return true
                    } catch let error as CairnError where error.code == .serviceAlreadyExists {
                        return false
                    }
                }
            }
            for try await outcome in group { if outcome { won += 1 } else { lost += 1 } }
        }
        // Each name had one creator on each node: exactly one of them won.
        #expect(won == 20)
        #expect(lost == 20)
        var seen = 0
        for _ in 0..<200 {
            seen = b.snapshot.state.services.count
            if seen == a.snapshot.state.services.count, a.snapshot.state.sequence == b.snapshot.state.sequence { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(a.snapshot.state.sequence == b.snapshot.state.sequence)
        let names = a.snapshot.state.services.values.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(seen == names.count)
        try await Self.stop([(a, runA, storeA), (b, runB, storeB)])
    }

    @Test(
        "Two nodes writing the same instances at once, batches decided ahead of the lock: quotas hold, both nodes end in the state the log replays to"
    )
    func speculatedBatches() async throws {
        let url = try await PostgresTestDatabase.create()
        let options = PostgresRegistryStore.Options(pollInterval: .milliseconds(50))
        let storeA = try await PostgresRegistryStore.open(url: url, options: options)
        let storeB = try await PostgresRegistryStore.open(url: url, options: options)
        let telemetry = SpeculationCounter()
        var configuration = Registry.Configuration(telemetry: telemetry)
        configuration.rules.limits.instancesPerService = 30
        let a = try await Registry.open(store: storeA, configuration: configuration, seed: 1)
        let b = try await Registry.open(store: storeB, configuration: configuration, seed: 2)
        let runA = Task { await a.run() }
        let runB = Task { await b.run() }
        let context = RequestContext(region: "us-east-1", account: "000000000000")
        _ = try await a.submit(.createNamespace(CreateNamespace(type: .HTTP, name: "shop")), context: context)
        let namespace = try #require(a.snapshot.state.namespaces.keys.first)
        guard
            case .service(let service) = try await a.submit(
                .createService(CreateService(name: "web", namespaceId: namespace, customHealth: true)), context: context)
        else { throw PostgresStoreError("no service") }
        // 40 ids for a quota of 30, each registered, set unhealthy and sometimes deregistered from both nodes at once.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                let registry = worker % 2 == 0 ? a : b
                group.addTask {
                    for round in 0..<30 {
                        let id = "i\((worker * 7 + round * 3) % 40)"
                        do {
                            _ = try await registry.submit(
                                .registerInstance(RegisterInstance(serviceId: service.id, instanceId: id, attributes: ["n": "\(round)"])),
                                context: context)
                            _ = try? await registry.submit(
                                .setCustomHealth(serviceId: service.id, instanceId: id, status: .UNHEALTHY), context: context)
                            if round % 5 == 4 {
                                _ = try? await registry.submit(.deregisterInstance(serviceId: service.id, instanceId: id), context: context)
                            }
                        } catch let error as CairnError where error.code == .resourceLimitExceeded {
                            // The quota: the other ids hold every place.
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        for _ in 0..<300 where a.snapshot.state.sequence != b.snapshot.state.sequence { try await Task.sleep(for: .milliseconds(20)) }
        let replayed = try await storeA.load().replayed()
        for node in [a, b] {
            let state = node.snapshot.state
            #expect(state.sequence == replayed.sequence)
            #expect(state.instances(of: service.id) == replayed.instances(of: service.id))
            #expect(state.instances(of: service.id).count <= 30)
            #expect(state.instanceCount(ofNamespace: namespace) == replayed.instances(of: service.id).count)
            #expect(state.services[service.id]?.instancesRevision == replayed.services[service.id]?.instancesRevision)
            #expect(state.operations.count == replayed.operations.count)
        }
        // Which way each batch went depends on timing (printed); a batch with nothing newer is always kept.
        let counts = telemetry.counts.withLock { $0 }
        print("speculations: \(counts.kept) kept, \(counts.decidedAgain) decided again")
        #expect(counts.kept > 0)
        try await Self.stop([(a, runA, storeA), (b, runB, storeB)])
    }

    @Test("A node away past the heartbeat timeout comes back in a new term; work it started in the old term is refused")
    func fencing() async throws {
        let url = try await PostgresTestDatabase.create()
        let options = PostgresRegistryStore.Options(
            pollInterval: .milliseconds(50), heartbeatInterval: .milliseconds(100), memberTimeout: .seconds(5))
        let store = try await PostgresRegistryStore.open(url: url, options: options)
        let membership = try #require(store.membership)
        #expect(membership.view.term == 1)
        let registry = try await Registry.open(store: store, seed: 3)
        let run = Task { await registry.run() }
        func create(_ name: String, term: UInt64) async -> CairnError? {
            do {
                _ = try await registry.submit(
                    .createNamespace(CreateNamespace(type: .HTTP, name: name)),
                    context: RequestContext(region: "us-east-1", account: "000000000000", membershipTerm: term))
                return nil
            } catch { return error }
        }
        #expect(await create("first", term: 1) == nil)
        // As if the node had been paused past the timeout: its row expired. Whether its next heartbeat has renewed
        // it (term 2) or not yet (not live), work from term 1 is refused.
        try await PostgresTestDatabase.execute(url, "UPDATE cairn_nodes SET seen = now() - interval '1 hour'")
        let refused = await create("stale", term: 1)
        #expect(refused?.code == .serviceUnavailable)
        #expect(refused?.message.contains("membership term") == true)
        for _ in 0..<500 where membership.view.term != 2 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(membership.view.term == 2)
        #expect(await create("fresh", term: 2) == nil)
        #expect(Set(registry.snapshot.state.namespaces.values.map(\.name)) == ["first", "fresh"])
        registry.shutdown()
        await run.value
        try await store.close()
    }

    @Test("A singleton job's lease has one holder at a time; another node takes it over once it expired")
    func leases() async throws {
        let url = try await PostgresTestDatabase.create()
        let a = try await PostgresRegistryStore.open(url: url)
        let b = try await PostgresRegistryStore.open(url: url)
        #expect(try await a.lease("checkpoint", for: .seconds(60)))
        #expect(try await !b.lease("checkpoint", for: .seconds(60)))
        #expect(try await a.lease("checkpoint", for: .seconds(60)))
        #expect(try await b.lease("audit-retention", for: .seconds(60)))
        try await PostgresTestDatabase.execute(
            url, "UPDATE cairn_leases SET expires = now() - interval '1 second' WHERE name = 'checkpoint'")
        #expect(try await b.lease("checkpoint", for: .seconds(60)))
        #expect(try await !a.lease("checkpoint", for: .seconds(60)))
        try await a.close()
        try await b.close()
    }

    @Test("A checkpoint truncates the log only behind the slowest live node, so a lagging node still catches up")
    func truncation() async throws {
        let url = try await PostgresTestDatabase.create()
        let options = PostgresRegistryStore.Options(logRetention: .zero, heartbeatInterval: .zero)
        let a = try await PostgresRegistryStore.open(url: url, options: options)
        let b = try await PostgresRegistryStore.open(url: url, options: options)
        let entries = try Self.entries()
        #expect(try await b.entries(after: 0) == [])  // b's heartbeat: it has applied nothing
        #expect(try await a.append(Array(entries.prefix(4)), audit: [], expecting: 0) == .committed)
        #expect(try await b.entries(after: 0) == Array(entries.prefix(4)))
        #expect(try await b.entries(after: 1) == Array(entries[1...3]))  // b says it is at 1
        try await a.checkpoint(try await a.load().replayed())
        // Entries 2…4 are behind the checkpoint but ahead of b: kept.
        #expect(try await b.entries(after: 1) == Array(entries[1...3]))
        #expect(try await b.entries(after: 4) == [])  // b is at 4 now
        try await a.checkpoint(try await a.load().replayed())
        #expect(try await a.load().entries.isEmpty)
        try await a.close()
        try await b.close()
    }
}
