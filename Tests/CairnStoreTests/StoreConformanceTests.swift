import CairnCore
import CairnStore
import Foundation
import Testing

/// One suite for every `RegistryStore`: the in-memory store and SQLite must behave the same.
@Suite("RegistryStore conformance")
struct StoreConformanceTests {
    enum Kind: String, CaseIterable, Sendable { case memory, sqlite }

    static func make(_ kind: Kind, directory: String) async throws -> any RegistryStore {
        switch kind {
        case .memory: return InMemoryRegistryStore()
        case .sqlite: return try await SQLiteRegistryStore.open(directory: directory)
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

    @Test("Appended entries load back in order", arguments: Kind.allCases)
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

    @Test("A checkpoint replaces the entries it covers", arguments: Kind.allCases)
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

    @Test("A sequence number is written at most once", arguments: Kind.allCases)
    func noDuplicateSequence(kind: Kind) async throws {
        let store = try await Self.make(kind, directory: Self.temporaryDirectory())
        let entries = try Self.entries()
        try await store.append(Array(entries.prefix(2)))
        await #expect(throws: (any Error).self) { try await store.append([entries[1]]) }
        #expect(try await store.load().entries.count == 2)
        try await store.close()
    }

    @Test("Appends and checkpoints issued at once both succeed and stay consistent", arguments: Kind.allCases)
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
}
