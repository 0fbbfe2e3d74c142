import CairnCore
import CairnPostgres
import CairnStore
import Foundation
import SQLiteNIO
import Testing

/// One suite for every `RegistryStore`: the in-memory store and SQLite must behave the same.
@Suite("RegistryStore conformance")
struct StoreConformanceTests {
    enum Kind: String, CaseIterable, Sendable { case memory, sqlite, postgres }

    /// PostgreSQL runs when the test command started one (`CAIRN_TEST_POSTGRES`, a URL to a database whose user
    /// may create databases); each test gets a database of its own.
    static let postgresURL = ProcessInfo.processInfo.environment["CAIRN_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }
    static let kinds: [Kind] = postgresURL == nil ? [.memory, .sqlite] : Kind.allCases

    static func make(_ kind: Kind, directory: String) async throws -> any RegistryStore {
        switch kind {
        case .memory: return InMemoryRegistryStore(hash: SQLiteRegistryStore.chain.hash)
        case .sqlite: return try await SQLiteRegistryStore.open(directory: directory)
        case .postgres: return try await PostgresRegistryStore.open(url: try await PostgresTestDatabase.create())
        }
    }

    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "cairn-store-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A few real entries produced by the state machine.
    static func entries() throws -> [ChangeLogEntry] {
        var state = RegistryState()
        var ids = IdentifierGenerator(seed: 9)
        let context = RequestContext(region: "us-east-1", account: "000000000000")
        var entries: [ChangeLogEntry] = []
        func run(_ command: Command) throws {
            let decision = try state.decide(command, context: context, now: 1_000 + Int64(entries.count), rules: RegistryRules(), ids: &ids)
            let entry = ChangeLogEntry(sequence: state.sequence + 1, time: 1_000, events: decision.events)
            state.apply(entry)
            entries.append(entry)
        }
        try run(.createNamespace(CreateNamespace(type: .HTTP, name: "demo", tags: [Tag(key: "k", value: "v")])))
        let ns = state.namespaces.keys.first!
        try run(.createService(CreateService(name: "web", namespaceId: ns, customHealth: true)))
        let service = state.services.keys.first!
        for i in 0..<5 {
            try run(.registerInstance(RegisterInstance(serviceId: service, instanceId: "i\(i)", attributes: ["n": "\(i)", "é": "ü"])))
        }
        try run(.setCustomHealth(serviceId: service, instanceId: "i1", status: .UNHEALTHY))
        return entries
    }

    @Test("Appended entries load back in order", arguments: Self.kinds)
    func appendAndLoad(kind: Kind) async throws {
        let store = try await Self.make(kind, directory: Self.temporaryDirectory())
        let entries = try Self.entries()
        try await store.append(Array(entries.prefix(3)))
        try await store.append(Array(entries.dropFirst(3)))
        let loaded = try await store.load()
        #expect(loaded.checkpoint == nil)
        #expect(loaded.entries == entries)
        try await store.close()
    }

    @Test("A proposal decided at the log's end is stored whole, entries and audit records, and loads back", arguments: Self.kinds)
    func proposalAtTheEnd(kind: Kind) async throws {
        let store = try await Self.make(kind, directory: Self.temporaryDirectory())
        let entries = try Self.entries()
        try await store.append(Array(entries.prefix(2)), audit: [Self.event(1)])
        let proposal = Proposal(
            entries: Array(entries[2...4]), writes: [["inst:a"], nil, []], audit: [Self.event(2), Self.event(3)], after: 2,
            reads: ["inst:b"], terms: [])
        #expect(try await store.propose(proposal) == .committed(newer: []))
        #expect(try await store.load().entries == Array(entries.prefix(5)))
        let records = try await store.auditRecords(AuditQuery(limit: 10)).records
        #expect(records.map(\.sequence) == [3, 2, 1])
        let verification = try await store.verifyAudit()
        #expect(verification.records == 3 && verification.firstBroken == nil)
        try await store.close()
    }

    @Test("A checkpoint replaces the entries it covers", arguments: Self.kinds)
    func checkpoint(kind: Kind) async throws {
        let store = try await Self.make(kind, directory: Self.temporaryDirectory())
        let entries = try Self.entries()
        try await store.append(entries)
        var state = RegistryState()
        for entry in entries.prefix(4) { state.apply(entry) }
        try await store.checkpoint(state)
        let loaded = try await store.load()
        #expect(loaded.checkpoint?.sequence == 4)
        #expect(loaded.entries.map(\.sequence) == entries.dropFirst(4).map(\.sequence))
        var full = RegistryState()
        for entry in entries { full.apply(entry) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(try encoder.encode(loaded.replayed()) == encoder.encode(full))
        try await store.close()
    }

    @Test("A sequence number is written at most once", arguments: Self.kinds)
    func noDuplicateSequence(kind: Kind) async throws {
        let store = try await Self.make(kind, directory: Self.temporaryDirectory())
        let entries = try Self.entries()
        try await store.append(Array(entries.prefix(2)))
        await #expect(throws: (any Error).self) { try await store.append([entries[1]]) }
        #expect(try await store.load().entries.count == 2)
        try await store.close()
    }

    @Test(
        "A batch fails whole: a duplicate sequence stores none of its entries or audit records; a batch of thousands holds",
        arguments: Self.kinds)
    func batchAtomicity(kind: Kind) async throws {
        let store = try await Self.make(kind, directory: Self.temporaryDirectory())
        let entries = try Self.entries()
        try await store.append(Array(entries.prefix(2)), audit: [Self.event(1)])
        // Entry 3 is new, entry 2 is not: the batch must leave nothing behind, its audit record included.
        await #expect(throws: (any Error).self) {
            try await store.append([entries[2], entries[1]], audit: [Self.event(2)])
        }
        #expect(try await store.load().entries.count == 2)
        #expect(try await store.verifyAudit().records == 1)
        // Thousands of rows, all in one transaction.
        let many = (3...3_202).map { ChangeLogEntry(sequence: UInt64($0), time: 1_000, events: entries[0].events) }
        try await store.append(many, audit: (2...201).map { Self.event($0) })
        #expect(try await store.load().entries.count == 3_202)
        let verified = try await store.verifyAudit()
        #expect(verified.records == 201 && verified.firstBroken == nil)
        try await store.append([ChangeLogEntry(sequence: 3_203, time: 1_000, events: entries[0].events)], audit: [Self.event(202)])
        #expect(try await store.verifyAudit().records == 202)
        try await store.close()
    }

    @Test("Appends and checkpoints issued at once both succeed and stay consistent", arguments: Self.kinds)
    func concurrentCheckpoint(kind: Kind) async throws {
        let store = try await Self.make(kind, directory: Self.temporaryDirectory())
        let entries = try Self.entries()
        var state = RegistryState()
        for entry in entries.prefix(4) { state.apply(entry) }
        try await store.append(Array(entries.prefix(4)))
        let covered = state
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.checkpoint(covered) }
            for entry in entries.dropFirst(4) { group.addTask { try await store.append([entry]) } }
            try await group.waitForAll()
        }
        let loaded = try await store.load()
        #expect(loaded.checkpoint?.sequence == 4)
        #expect(Set(loaded.entries.map(\.sequence)) == Set(entries.dropFirst(4).map(\.sequence)))
        try await store.close()
    }

    @Test("SQLite keeps everything across close and reopen, in WAL mode")
    func reopen() async throws {
        let directory = Self.temporaryDirectory()
        let entries = try Self.entries()
        do {
            let store = try await SQLiteRegistryStore.open(directory: directory)
            try await store.append(entries)
            try await store.close()
        }
        let again = try await SQLiteRegistryStore.open(directory: directory)
        #expect(try await again.load().entries == entries)
        try await again.close()
        #expect(FileManager.default.fileExists(atPath: directory + "/cairn.sqlite"))
    }

    @Test("A SQLite checkpoint deletes every row it covers, more than one step's worth, and none after it")
    func checkpointDeletesInSteps() async throws {
        let directory = Self.temporaryDirectory()
        let store = try await SQLiteRegistryStore.open(directory: directory)
        let entries = try Self.entries()
        try await store.append(Array(entries.prefix(4)))
        var state = RegistryState()
        for entry in entries.prefix(4) { state.apply(entry) }
        // 2,500 more rows (the same events again), so the deletion takes three steps; the checkpoint covers 2,404.
        let more = (5...2_504).map { ChangeLogEntry(sequence: UInt64($0), time: 1_000, events: entries[0].events) }
        try await store.append(more)
        for entry in more.prefix(2_400) { state.apply(entry) }
        try await store.checkpoint(state)
        let reader = try await SQLiteConnection.open(storage: .file(path: directory + "/cairn.sqlite"))
        let row = try await reader.query("SELECT count(*) AS n, min(seq) AS first FROM change_log").first
        #expect(row?.column("n")?.integer == 100)
        #expect(row?.column("first")?.integer == 2_405)
        try await reader.close()
        let loaded = try await store.load()
        #expect(loaded.checkpoint?.sequence == 2_404)
        #expect(loaded.entries.map(\.sequence) == Array(2_405...2_504))
        try await store.close()
    }

    @Test("A SQLite checkpoint larger than a part loads back whole; with a part missing it is refused")
    func checkpointInParts() async throws {
        let directory = Self.temporaryDirectory()
        var state = RegistryState()
        var ids = IdentifierGenerator(seed: 3)
        let context = RequestContext(region: "us-east-1", account: "000000000000")
        func run(_ command: Command) throws {
            let decision = try state.decide(command, context: context, now: 1_000, rules: RegistryRules(), ids: &ids)
            state.apply(ChangeLogEntry(sequence: state.sequence + 1, time: 1_000, events: decision.events))
        }
        try run(.createNamespace(CreateNamespace(type: .HTTP, name: "big", tags: [])))
        try run(.createService(CreateService(name: "web", namespaceId: state.namespaces.keys.first!, customHealth: true)))
        let service = state.services.keys.first!
        // Values that do not compress: a different pseudo-random 1,000 characters per instance.
        var seed: UInt64 = 7
        func noise() -> String {
            String(
                decoding: (0..<1_000).map { _ in
                    seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    return UInt8(97 + (seed >> 33) % 26)
                }, as: UTF8.self)
        }
        for i in 0..<700 {
            try run(.registerInstance(RegisterInstance(serviceId: service, instanceId: "i\(i)", attributes: ["a": noise(), "n": "\(i)"])))
        }
        let store = try await SQLiteRegistryStore.open(directory: directory)
        try await store.checkpoint(state)
        try await store.checkpoint(state)  // again at the same sequence: already stored, its live parts untouched
        try run(.registerInstance(RegisterInstance(serviceId: service, instanceId: "last", attributes: ["a": noise()])))
        try await store.checkpoint(state)  // a later one: the earlier one's parts are deleted
        let loaded = try await store.load()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(try encoder.encode(#require(loaded.checkpoint)) == encoder.encode(state))
        try await store.close()

        let file = try await SQLiteConnection.open(storage: .file(path: directory + "/cairn.sqlite"))
        let row = try await file.query("SELECT count(*) AS n, count(DISTINCT seq) AS checkpoints FROM checkpoint_part").first
        let parts = row?.column("n")?.integer ?? 0
        #expect(row?.column("checkpoints")?.integer == 1)
        #expect(parts >= 3)
        #expect(parts * SQLiteRegistryStore.checkpointPartBytes >= 700 * 1_000)
        _ = try await file.query("DELETE FROM checkpoint_part WHERE part = 1")
        try await file.close()
        let damaged = try await SQLiteRegistryStore.open(directory: directory)
        var refused = false
        do { _ = try await damaged.load() } catch { refused = true }
        #expect(refused, "a checkpoint with a part missing loaded")
        try await damaged.close()
    }

    @Test("SQLite copies its WAL into the database file on a connection of its own, and the WAL file stays bounded")
    func walCopiedBesideTheCommits() async throws {
        let directory = Self.temporaryDirectory()
        let store = try await SQLiteRegistryStore.open(directory: directory)
        let events = try Self.entries()[0].events
        // 6,000 commits of one row each, each at least one 4 KiB page of WAL: about 25 MB of WAL if nothing copied
        // it (SQLite's own automatic checkpoint is off on the commit connection; its hook replaces it).
        for sequence in 1...6_000 {
            try await store.append([ChangeLogEntry(sequence: UInt64(sequence), time: 1_000, events: events)])
        }
        #expect(await store.walCopies > 0, "the copier never copied the WAL")
        // Past 4,000 pages the commit connection copies it itself, so the WAL restarts at most one transaction later
        // and `journal_size_limit` (16 MiB) then shrinks the file.
        let wal = try FileManager.default.attributesOfItem(atPath: directory + "/cairn.sqlite-wal")[.size] as? Int ?? 0
        #expect(wal > 0)
        #expect(wal <= 4_100 * (4_096 + 24) + 32, "the WAL grew to \(wal) bytes: it never restarted")
        #expect(try await store.load().entries.count == 6_000)
        try await store.close()
    }

    @Test("SQLite commits appends with fsync (synchronous=FULL, WAL) on its commit connection; a reader cannot append")
    func commitDurability() async throws {
        let directory = Self.temporaryDirectory()
        let store = try await SQLiteRegistryStore.open(directory: directory)
        // synchronous is a per-connection setting: 2 is FULL, under which COMMIT returns after the WAL's fsync.
        #expect(try await store.commitSetting("synchronous") == "2")
        #expect(try await store.commitSetting("journal_mode") == "wal")
        let entries = try Self.entries()
        try await store.append(Array(entries.prefix(2)), audit: [Self.event(1)])
        let reader = try await SQLiteRegistryStore.open(directory: directory, access: .reader)
        #expect(try await reader.commitSetting("synchronous") == nil)
        await #expect(throws: (any Error).self) { try await reader.append([entries[2]]) }
        #expect(try await reader.load().entries.count == 2)
        try await reader.close()
        try await store.close()
    }

    /// An entry as the API hands it over: the record's members already rendered; the store only numbers and chains.
    static func event(_ n: Int, name: String = "RegisterInstance", time: Int64 = 1_000, resources: [String] = []) -> AuditEntry {
        let user = n % 2 == 0 ? "alice" : "bob"
        let members =
            #""eventName":"\#(name)","userIdentity":{"accessKeyId":"AKID\#(n % 2)","userName":"\#(user)"},"requestID":"req-\#(n)""#
        return AuditEntry(
            time: time + Int64(n), eventName: name, principals: ["AKID\(n % 2)", user], resources: resources, members: Array(members.utf8))
    }

    @Test("Audit records are numbered, chained, and found by time, name, principal and resource", arguments: Self.kinds)
    func auditLookup(_ kind: Kind) async throws {
        let store = try await Self.make(kind, directory: Self.temporaryDirectory())
        let svc = "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-1"
        try await store.append(Array(try Self.entries().prefix(1)), audit: [Self.event(1, resources: [svc]), Self.event(2)])
        try await store.append([], audit: (3...10).map { Self.event($0, name: $0 % 3 == 0 ? "DeregisterInstance" : "RegisterInstance") })
        let all = try await store.auditRecords(AuditQuery(limit: 100))
        #expect(all.records.map(\.sequence) == Array((1...10).reversed()))
        #expect(all.next == nil)
        let first = try #require(all.records.last)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(first.record)) as? [String: Any])
        #expect(json["eventName"] as? String == "RegisterInstance")
        #expect(json["cairnPreviousHash"] as? String == AuditChain.genesis)
        #expect(json["cairnSequence"] as? Int == 1)
        #expect((json["userIdentity"] as? [String: Any])?["userName"] as? String == "bob")
        #expect(first.time == 1_001)

        let page1 = try await store.auditRecords(AuditQuery(limit: 4))
        #expect(page1.records.map(\.sequence) == [10, 9, 8, 7])
        let page2 = try await store.auditRecords(AuditQuery(limit: 4, before: page1.next))
        #expect(page2.records.map(\.sequence) == [6, 5, 4, 3])
        #expect(try await store.auditRecords(AuditQuery(eventName: "DeregisterInstance")).records.map(\.sequence) == [9, 6, 3])
        #expect(try await store.auditRecords(AuditQuery(principal: "alice")).records.count == 5)
        #expect(try await store.auditRecords(AuditQuery(principal: "AKID1")).records.count == 5)
        #expect(try await store.auditRecords(AuditQuery(resource: svc)).records.map(\.sequence) == [1])
        #expect(try await store.auditRecords(AuditQuery(resource: "srv-1")).records.map(\.sequence) == [1])
        #expect(try await store.auditRecords(AuditQuery(startTime: 1_004, endTime: 1_006)).records.map(\.sequence) == [5, 4])
        #expect(try await store.auditRecords(after: 8, limit: 10).map(\.sequence) == [9, 10])

        let verified = try await store.verifyAudit()
        #expect(verified.records == 10 && verified.firstBroken == nil)
        #expect(verified.headHash == all.records.first?.hash)

        #expect(try await store.pruneAudit(olderThan: 1_004) == 3)
        let pruned = try await store.verifyAudit()
        #expect(pruned.records == 7 && pruned.firstBroken == nil)
        try await store.append([], audit: [Self.event(11)])
        #expect(try await store.verifyAudit().firstBroken == nil)
        try await store.close()
    }

    @Test("An edited, deleted or re-hashed SQLite audit row is detected; the chain survives a reopen")
    func auditTamper() async throws {
        let directory = Self.temporaryDirectory()
        let store = try await SQLiteRegistryStore.open(directory: directory)
        try await store.append([], audit: (1...5).map { Self.event($0) })
        try await store.close()
        let reopened = try await SQLiteRegistryStore.open(directory: directory)
        try await reopened.append([], audit: [Self.event(6)])
        #expect(try await reopened.verifyAudit().firstBroken == nil)
        try await reopened.close()

        func tampered(_ sql: String) async throws -> AuditVerification {
            let copy = Self.temporaryDirectory()
            try FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: directory, toPath: copy)
            let raw = try await SQLiteConnection.open(storage: .file(path: copy + "/cairn.sqlite"))
            _ = try await raw.query(sql)
            try await raw.close()
            let store = try await SQLiteRegistryStore.open(directory: copy)
            defer { Task { try? await store.close() } }
            return try await store.verifyAudit()
        }
        let edited = try await tampered(
            "UPDATE audit_log SET record = CAST(replace(CAST(record AS TEXT), 'req-3', 'req-X') AS BLOB) WHERE seq = 3")
        #expect(edited.firstBroken == 3)
        #expect(edited.problem?.contains("changed") == true)
        let deleted = try await tampered("DELETE FROM audit_log WHERE seq = 4")
        #expect(deleted.firstBroken == 5)
        // Rewriting a record together with its hash still breaks the next record's link.
        let rehashed = try await tampered("UPDATE audit_log SET hash = 'ff' || substr(hash, 3) WHERE seq = 2")
        #expect(rehashed.firstBroken == 2)
    }
}
