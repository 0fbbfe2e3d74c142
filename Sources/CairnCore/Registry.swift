import Foundation
import Synchronization

/// An immutable published state; readers take it without waiting for the writer.
public final class RegistrySnapshot: Sendable {
    public let state: RegistryState
    init(_ state: RegistryState) { self.state = state }
}

/// The single writer. Commands queue up; `run()` takes everything queued, decides each command against the
/// state, appends all resulting entries in ONE durable transaction (group commit), publishes the new snapshot,
/// and only then answers the callers, so an acknowledged write is durable and visible to the next read.
public final class Registry: Sendable {
    public struct Configuration: Sendable {
        public var rules: RegistryRules
        /// Change-log entries between checkpoints; a checkpoint keeps start-up replay short.
        public var checkpointInterval: Int
        public init(rules: RegistryRules = RegistryRules(), checkpointInterval: Int = 20_000) {
            self.rules = rules
            self.checkpointInterval = checkpointInterval
        }
    }

    typealias Reply = CheckedContinuation<Result<CommandResult, CairnError>, Never>

    struct Pending {
        var command: Command
        var context: RequestContext
        var reply: Reply
    }

    struct Queue {
        var items: [Pending] = []
        var closed = false
    }

    private let store: any RegistryStore
    private let configuration: Configuration
    private let clock: @Sendable () -> Int64
    private let seed: UInt64
    private let initial: RegistryState
    private let published: Mutex<RegistrySnapshot>
    private let queue = Mutex(Queue())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    /// Loads the stored state; the registry answers reads at once and writes once `run()` is running.
    public static func open(
        store: any RegistryStore, configuration: Configuration = Configuration(),
        clock: @escaping @Sendable () -> Int64 = Registry.systemMilliseconds, seed: UInt64 = UInt64.random(in: .min ... .max)
    ) async throws -> Registry {
        let state = try await store.load().replayed()
        return Registry(store: store, configuration: configuration, state: state, clock: clock, seed: seed)
    }

    init(
        store: any RegistryStore, configuration: Configuration, state: RegistryState, clock: @escaping @Sendable () -> Int64,
        seed: UInt64
    ) {
        self.store = store
        self.configuration = configuration
        self.clock = clock
        self.seed = seed
        self.initial = state
        self.published = Mutex(RegistrySnapshot(state))
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    @Sendable public static func systemMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// The latest published state.
    public var snapshot: RegistrySnapshot { published.withLock { $0 } }

    public var rules: RegistryRules { configuration.rules }

    /// Submits a command; returns once its change is durable and published (or with the reason it was refused).
    public func submit(_ command: Command, context: RequestContext) async throws(CairnError) -> CommandResult {
        let result = await withCheckedContinuation { (reply: Reply) in
            let accepted = queue.withLock { q in
                guard !q.closed else { return false }
                q.items.append(Pending(command: command, context: context, reply: reply))
                return true
            }
            if accepted {
                wake.yield()
            } else {
                reply.resume(returning: .failure(CairnError(.serviceUnavailable, "Cairn is shutting down.")))
            }
        }
        return try result.get()
    }

    /// Stops taking commands; `run()` finishes what is queued and returns.
    public func shutdown() {
        queue.withLock { $0.closed = true }
        wake.finish()
    }

    /// The writer loop. Run it exactly once. Checkpoints run beside it as a child task, so writers never wait
    /// for the state to be encoded.
    public func run() async {
        var state = initial
        var ids = IdentifierGenerator(seed: seed)
        var sinceCheckpoint = 0
        let checkpointing = Flag()
        await withTaskGroup(of: Void.self) { group in
            for await _ in wakeups {
                sinceCheckpoint += await process(takeQueued(), state: &state, ids: &ids)
                if sinceCheckpoint >= configuration.checkpointInterval, !checkpointing.value {
                    checkpointing.value = true
                    sinceCheckpoint = 0
                    let snapshot = state
                    group.addTask { [store] in
                        // A failed checkpoint only means a longer replay at the next start; the log is intact.
                        try? await store.checkpoint(snapshot)
                        checkpointing.value = false
                    }
                }
            }
            // The stream ended (shutdown): answer anything that raced in, then stop.
            _ = await process(takeQueued(), state: &state, ids: &ids)
        }
    }

    private func takeQueued() -> [Pending] {
        queue.withLock { q in
            let items = q.items
            q.items = []
            return items
        }
    }

    /// Decides, stores and publishes one batch; returns the number of entries written.
    private func process(_ batch: [Pending], state: inout RegistryState, ids: inout IdentifierGenerator) async -> Int {
        guard !batch.isEmpty else { return 0 }
        let before = state
        let now = clock()
        var entries: [ChangeLogEntry] = []
        var outcomes: [Result<CommandResult, CairnError>] = []
        outcomes.reserveCapacity(batch.count)
        for item in batch {
            do throws(CairnError) {
                let decision = try state.decide(item.command, context: item.context, now: now, rules: configuration.rules, ids: &ids)
                if !decision.events.isEmpty {
                    let entry = ChangeLogEntry(sequence: state.sequence + 1, time: now, events: decision.events)
                    state.apply(entry)
                    entries.append(entry)
                }
                outcomes.append(.success(decision.result))
            } catch {
                outcomes.append(.failure(error))
            }
        }
        if let pruning = state.pruningEntry(keeping: configuration.rules.limits.operationsRetained, time: now) {
            state.apply(pruning)
            entries.append(pruning)
        }
        if !entries.isEmpty {
            do {
                try await store.append(entries)
            } catch {
                state = before
                let failure = CairnError(.internalFailure, "The change could not be stored; nothing was changed.")
                outcomes = outcomes.map { _ in .failure(failure) }
                entries = []
            }
            published.withLock { $0 = RegistrySnapshot(state) }
        }
        for (item, outcome) in zip(batch, outcomes) { item.reply.resume(returning: outcome) }
        return entries.count
    }
}

/// A Boolean shared between the writer and its checkpoint task.
private final class Flag: Sendable {
    private let storage = Mutex(false)
    var value: Bool {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
