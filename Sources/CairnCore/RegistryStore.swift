import Foundation

/// Durable storage of the change log and a checkpoint of the state. Every store passes one conformance suite.
public protocol RegistryStore: Sendable {
    /// The checkpointed state (if any) and every change-log entry after it, in sequence order.
    func load() async throws -> StoredRegistry
    /// Appends change-log entries and audit records in one durable transaction: when this returns they survive a
    /// crash or `kill -9`. The store numbers each audit record and chains it to the one before by hash.
    func append(_ entries: [ChangeLogEntry], audit: [AuditEntry]) async throws
    /// Appends as `append(_:audit:)` if the log ends at `expecting` (the sequence the entries were decided after);
    /// otherwise writes nothing and reports the newer entries another writer appended. A store that only this
    /// process writes never conflicts.
    func append(_ entries: [ChangeLogEntry], audit: [AuditEntry], expecting: UInt64) async throws -> AppendOutcome
    /// The entries after `sequence`, in order (another writer's); nil when the log no longer holds them all, or
    /// holds less than `sequence` (a database restored from a backup): the caller must reload the whole state.
    func entries(after sequence: UInt64) async throws -> [ChangeLogEntry]?
    /// Yields whenever another writer may have appended (notifications, and a poll beneath them); nil for a store
    /// that only this process writes.
    var changes: AsyncStream<Void>? { get }
    /// The live nodes sharing this store (nil: this process alone), kept current while `changes` is followed.
    var membership: ClusterMembership? { get }
    /// A store other writers share: takes the write lock (held until the next `append` or `abandonWrite`) and
    /// returns what the others appended after `sequence`, so the batch is decided against the newest state and
    /// cannot conflict; nil (lock not taken) when the caller must reload the whole state first.
    func lockForWrite(after sequence: UInt64) async throws -> [ChangeLogEntry]?
    /// Gives the lock `lockForWrite` took back without writing.
    func abandonWrite() async
    /// Whether `propose` stores a batch decided without the lock in one round trip, checking the other writers'
    /// newer entries against the keys the batch read itself (the cluster store); otherwise the writer locks first.
    var proposes: Bool { get }
    /// A store other writers share: stores a batch decided against the state at `proposal.after`, without the lock,
    /// in one durable transaction, unless an entry another writer appended after that writes a key the batch read
    /// (or its membership terms answer differently now). Committed, the batch's entries are stored after those
    /// newer entries, moved up by their count; otherwise nothing is written.
    func propose(_ proposal: Proposal) async throws -> ProposalOutcome
    /// `append(_:audit:expecting:)`, recording the keys each entry writes (nil: any) for later proposals to check.
    func append(_ entries: [ChangeLogEntry], audit: [AuditEntry], expecting: UInt64, writes: [Set<String>?]) async throws
        -> AppendOutcome
    /// Takes or renews the lease on the singleton job `name` (checkpoints, audit retention) for `duration`: true
    /// while this process holds it, so of several nodes on one store one does the job. Always true for a store
    /// that only this process writes.
    func lease(_ name: String, for duration: Duration) async throws -> Bool
    /// Audit records matching `query`, newest first.
    func auditRecords(_ query: AuditQuery) async throws -> AuditPage
    /// Audit records after sequence `after`, oldest first (export).
    func auditRecords(after: UInt64, limit: Int) async throws -> [AuditRecord]
    /// Checks every stored audit record's hash and link to the one before.
    func verifyAudit() async throws -> AuditVerification
    /// Drops audit records older than `time` (milliseconds); the chain continues from the newest one dropped.
    func pruneAudit(olderThan time: Int64) async throws -> Int
    /// Replaces the checkpoint with `state` and drops the change-log entries it covers, atomically.
    func checkpoint(_ state: RegistryState) async throws
    /// Throws unless the store can commit now (readiness); a real commit where the store has one to make.
    func probe() async throws
    func close() async throws
}

extension RegistryStore {
    public func append(_ entries: [ChangeLogEntry]) async throws { try await append(entries, audit: []) }
    public func probe() async throws {}
    /// A store with one writer: the log always ends where this process left it.
    public func append(_ entries: [ChangeLogEntry], audit: [AuditEntry], expecting: UInt64) async throws -> AppendOutcome {
        try await append(entries, audit: audit)
        return .committed
    }
    public func entries(after sequence: UInt64) async throws -> [ChangeLogEntry]? { [] }
    public var changes: AsyncStream<Void>? { nil }
    public var membership: ClusterMembership? { nil }
    public func lockForWrite(after sequence: UInt64) async throws -> [ChangeLogEntry]? { [] }
    public func abandonWrite() async {}
    public var proposes: Bool { false }
    /// Without a check of keys: any newer entry is a conflict.
    public func propose(_ proposal: Proposal) async throws -> ProposalOutcome {
        switch try await append(proposal.entries, audit: proposal.audit, expecting: proposal.after, writes: proposal.writes) {
        case .committed: return .committed(newer: [])
        case .conflict(let newer?): return .conflict(newer: newer)
        case .conflict(nil): return .behind
        }
    }
    public func append(_ entries: [ChangeLogEntry], audit: [AuditEntry], expecting: UInt64, writes: [Set<String>?]) async throws
        -> AppendOutcome
    {
        try await append(entries, audit: audit, expecting: expecting)
    }
    public func lease(_ name: String, for duration: Duration) async throws -> Bool { true }
}

/// What a conditional append found.
public enum AppendOutcome: Sendable, Equatable {
    case committed
    /// Another writer appended first; nothing was written. Its entries after the expected sequence, or nil when
    /// the caller must reload the whole state (the log was pruned past it, or the store is behind it).
    case conflict(newer: [ChangeLogEntry]?)
}

/// A batch decided without the store's lock (`RegistryStore.propose`).
public struct Proposal: Sendable {
    /// Numbered from `after + 1`.
    public var entries: [ChangeLogEntry]
    /// The keys each entry writes (`RegistryState.speculativeWrites`); nil: any.
    public var writes: [Set<String>?]
    public var audit: [AuditEntry]
    /// The sequence the batch was decided after.
    public var after: UInt64
    /// The keys the batch's decisions read; nil: anything (any newer entry is a conflict).
    public var reads: Set<String>?
    /// The membership terms the batch's divided work was decided as admitted in, or not.
    public var terms: [(term: UInt64, admitted: Bool)]

    public init(
        entries: [ChangeLogEntry], writes: [Set<String>?], audit: [AuditEntry], after: UInt64, reads: Set<String>?,
        terms: [(term: UInt64, admitted: Bool)]
    ) {
        self.entries = entries
        self.writes = writes
        self.audit = audit
        self.after = after
        self.reads = reads
        self.terms = terms
    }
}

/// What `propose` did.
public enum ProposalOutcome: Sendable, Equatable {
    /// Stored after `newer`, the entries other writers appended after the proposal's sequence; the batch's entries
    /// were moved up by their count.
    case committed(newer: [ChangeLogEntry])
    /// Nothing written: `newer` wrote a key the batch read (or the terms answer differently).
    case conflict(newer: [ChangeLogEntry])
    /// Nothing written: the log no longer follows the proposal's sequence (pruned past it, behind it, or another
    /// database); reload.
    case behind
}

/// Stored files that would load less than was acknowledged, or cannot be read whole: the server refuses to start.
public struct StoreDamage: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The hash chain of the audit trail: each record's bytes include the previous record's hash.
public struct AuditChain: Sendable {
    /// The hash of the first record's predecessor.
    public static let genesis = String(repeating: "0", count: 64)
    public let hash: @Sendable ([UInt8]) -> String

    public init(hash: @escaping @Sendable ([UInt8]) -> String) { self.hash = hash }

    /// Checks records in sequence order, starting from `anchor` (the hash of the last pruned record).
    public func verify(_ records: [AuditRecord], anchor: String) -> AuditVerification {
        var previous = anchor
        for record in records {
            let marker = Array(",\"cairnPreviousHash\":\"\(previous)\"}".utf8)
            if record.record.count < marker.count || Array(record.record.suffix(marker.count)) != marker {
                return AuditVerification(
                    records: records.count, firstBroken: record.sequence,
                    problem: "record \(record.sequence) does not link to the hash of the record before it", headHash: previous)
            }
            if hash(record.record) != record.hash {
                return AuditVerification(
                    records: records.count, firstBroken: record.sequence,
                    problem: "record \(record.sequence) was changed after it was written (its hash does not match)", headHash: previous)
            }
            previous = record.hash
        }
        return AuditVerification(records: records.count, firstBroken: nil, problem: nil, headHash: previous)
    }
}

/// Filtering shared by stores that scan records in memory.
extension AuditQuery {
    public func matches(_ record: AuditRecord, resources: [String], eventName name: String, principals: [String]) -> Bool {
        if let startTime, record.time < startTime { return false }
        if let endTime, record.time >= endTime { return false }
        if let eventName, eventName != name { return false }
        if let principal, !principals.contains(principal) { return false }
        if let resource, !resources.contains(where: { $0 == resource || $0.hasSuffix("/" + resource) }) { return false }
        if let before, record.sequence >= before { return false }
        return true
    }
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

/// The encodings stores use for change-log entries and checkpoints.
public enum RegistryCodec {
    /// Entries are binary (`CheckpointCodec`); a JSON entry an earlier version wrote still decodes.
    public static func encode(_ entry: ChangeLogEntry) throws -> Data { try CheckpointCodec.encode(entry) }
    /// The entry without its position, for a store that numbers entries as it stores them (the cluster store's
    /// `cairn_propose`): read back with `decodeEntry(_:at:)`.
    public static func encodeUnplaced(_ entry: ChangeLogEntry) throws -> Data { try CheckpointCodec.encode(entry, placed: false) }
    /// `position`: the sequence the store keeps the entry under, when it keeps one.
    public static func decodeEntry(_ data: Data, at position: UInt64? = nil) throws -> ChangeLogEntry {
        CheckpointCodec.isBinaryEntry(data)
            ? try CheckpointCodec.decodeEntry(data, at: position) : try JSONDecoder().decode(ChangeLogEntry.self, from: data)
    }
    /// Checkpoints are binary (`CheckpointCodec`); a JSON checkpoint an earlier version wrote still decodes.
    public static func encode(_ state: RegistryState) throws -> Data { try CheckpointCodec.encode(state) }
    public static func decodeState(_ data: Data) throws -> RegistryState {
        CheckpointCodec.isBinary(data) ? try CheckpointCodec.decode(data) : try JSONDecoder().decode(RegistryState.self, from: data)
    }
}

/// A store that keeps everything in memory (tests, and `--store memory` for throwaway runs).
public actor InMemoryRegistryStore: RegistryStore {
    struct StoredAudit {
        var record: AuditRecord
        var eventName: String
        var principals: [String]
        var resources: [String]
    }

    private var checkpointData: Data?
    private var entries: [Data] = []
    private var sequences: [UInt64] = []
    private var audit: [StoredAudit] = []
    private var anchor = AuditChain.genesis
    private let chain: AuditChain

    /// `hash` chains audit records (SHA-256 in servers; the default only numbers them).
    public init(hash: @escaping @Sendable ([UInt8]) -> String = { _ in "" }) {
        chain = AuditChain(hash: hash)
    }

    public func load() async throws -> StoredRegistry {
        StoredRegistry(
            checkpoint: try checkpointData.map(RegistryCodec.decodeState),
            entries: try entries.map { try RegistryCodec.decodeEntry($0) })
    }

    public func append(_ new: [ChangeLogEntry], audit events: [AuditEntry]) async throws {
        // All or nothing, as a durable store's transaction: check and encode the whole batch before storing any of it.
        var last = sequences.last
        var encoded: [Data] = []
        for entry in new {
            if let last, entry.sequence <= last {
                throw CairnError(.internalFailure, "change log sequence \(entry.sequence) is not after \(last)")
            }
            last = entry.sequence
            encoded.append(try RegistryCodec.encode(entry))
        }
        entries += encoded
        sequences += new.map(\.sequence)
        for event in events {
            let sequence = (audit.last?.record.sequence ?? 0) + 1
            let bytes = event.record(sequence: sequence, previousHash: audit.last?.record.hash ?? anchor)
            audit.append(
                StoredAudit(
                    record: AuditRecord(sequence: sequence, time: event.time, record: bytes, hash: chain.hash(bytes)),
                    eventName: event.eventName, principals: event.principals, resources: event.resources))
        }
    }

    public func auditRecords(_ query: AuditQuery) async throws -> AuditPage {
        var found: [AuditRecord] = []
        for stored in audit.reversed()
        where query.matches(stored.record, resources: stored.resources, eventName: stored.eventName, principals: stored.principals) {
            if found.count == query.limit { return AuditPage(records: found, next: found.last?.sequence) }
            found.append(stored.record)
        }
        return AuditPage(records: found, next: nil)
    }

    public func auditRecords(after: UInt64, limit: Int) async throws -> [AuditRecord] {
        Array(audit.lazy.map(\.record).filter { $0.sequence > after }.prefix(limit))
    }

    public func verifyAudit() async throws -> AuditVerification {
        chain.verify(audit.map(\.record), anchor: anchor)
    }

    public func pruneAudit(olderThan time: Int64) async throws -> Int {
        guard let cut = audit.lastIndex(where: { $0.record.time < time }) else { return 0 }
        anchor = audit[cut].record.hash
        audit.removeFirst(cut + 1)
        return cut + 1
    }

    public func checkpoint(_ state: RegistryState) async throws {
        checkpointData = try RegistryCodec.encode(state)
        let keep = sequences.firstIndex { $0 > state.sequence } ?? sequences.count
        entries.removeFirst(keep)
        sequences.removeFirst(keep)
    }

    public func close() async throws {}
}
