import Foundation

/// Durable storage of the change log and a checkpoint of the state. Every store passes one conformance suite.
public protocol RegistryStore: Sendable {
    /// The checkpointed state (if any) and every change-log entry after it, in sequence order.
    func load() async throws -> StoredRegistry
    /// Appends entries in one durable transaction: when this returns they survive a crash or `kill -9`.
    func append(_ entries: [ChangeLogEntry]) async throws
    /// Replaces the checkpoint with `state` and drops the change-log entries it covers, atomically.
    func checkpoint(_ state: RegistryState) async throws
    func close() async throws
}

public struct StoredRegistry: Sendable {
    public var checkpoint: RegistryState?
    public var entries: [ChangeLogEntry]

    public init(checkpoint: RegistryState?, entries: [ChangeLogEntry]) {
        self.checkpoint = checkpoint
        self.entries = entries
    }

    /// The state the stored checkpoint and entries describe.
    public func replayed() -> RegistryState {
        var state = checkpoint ?? RegistryState()
        for entry in entries where entry.sequence > state.sequence { state.apply(entry) }
        return state
    }
}

/// The JSON encoding stores use for entries and checkpoints.
public enum RegistryCodec {
    public static func encode(_ entry: ChangeLogEntry) throws -> Data { try JSONEncoder().encode(entry) }
    public static func decodeEntry(_ data: Data) throws -> ChangeLogEntry { try JSONDecoder().decode(ChangeLogEntry.self, from: data) }
    public static func encode(_ state: RegistryState) throws -> Data { try JSONEncoder().encode(state) }
    public static func decodeState(_ data: Data) throws -> RegistryState { try JSONDecoder().decode(RegistryState.self, from: data) }
}

/// A store that keeps everything in memory (tests, and `--store memory` for throwaway runs).
public actor InMemoryRegistryStore: RegistryStore {
    private var checkpointData: Data?
    private var entries: [Data] = []
    private var sequences: [UInt64] = []

    public init() {}

    public func load() async throws -> StoredRegistry {
        StoredRegistry(
            checkpoint: try checkpointData.map(RegistryCodec.decodeState),
            entries: try entries.map(RegistryCodec.decodeEntry))
    }

    public func append(_ new: [ChangeLogEntry]) async throws {
        for entry in new {
            if let last = sequences.last, entry.sequence <= last {
                throw CairnError(.internalFailure, "change log sequence \(entry.sequence) is not after \(last)")
            }
            entries.append(try RegistryCodec.encode(entry))
            sequences.append(entry.sequence)
        }
    }

    public func checkpoint(_ state: RegistryState) async throws {
        checkpointData = try RegistryCodec.encode(state)
        let keep = sequences.firstIndex { $0 > state.sequence } ?? sequences.count
        entries.removeFirst(keep)
        sequences.removeFirst(keep)
    }

    public func close() async throws {}
}
