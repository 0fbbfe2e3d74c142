/// The writer loop's decisions, kept apart from the work (the store calls, deciding commands, answering callers), in
/// the manner of postgres-nio's connection state machine: `Registry.run` feeds it what happened and does the action
/// it returns. A value type, so every transition is a unit test (WriterStateMachineTests).
///
/// One batch at a time: a wake-up takes what is queued; the machine catches up with other writers when the store
/// said they appended (by reading their entries, or, with a batch, by taking the shared store's write lock, which
/// returns them), has the batch decided and appended, and
/// ends with the callers answered or refused. A store that cannot commit leaves the machine read-only, which the
/// node's readiness shows; the next batch tries again, and a commit that works makes it writable.
public struct WriterStateMachine: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// Other writers appended: their entries are read before anything is decided.
        case catchingUp
        /// The state is the newest this node knows of; batches are decided and appended.
        case writable
        /// The store could not lock or commit (the reason); reads go on from the last state, writes are refused
        /// until a commit works again.
        case readOnly(String)
        /// Shutdown began: the batch in hand is finished, nothing new is taken.
        case closing
        case closed
    }

    public enum Action: Sendable, Equatable {
        /// Read the entries other writers appended after this node's sequence.
        case readNewer
        /// Load the whole state from the store (the log no longer follows this node's state).
        case reload
        /// Take the shared store's write lock, with the entries appended since this node's sequence. The writer
        /// decides the batch while it waits and keeps that decision when the newer entries touch nothing it read.
        case lock
        /// Decide the batch against the state without the lock and have the store keep it in one round trip
        /// (`RegistryStore.propose`) unless the entries other writers appended meanwhile wrote a key it read.
        case propose
        /// Decide the batch against the state and append what it changes (or give the lock back if nothing).
        case decide
        /// Answer each caller with its outcome.
        case answer
        /// Answer every caller of the batch with this error; nothing of it was stored.
        case refuse(CairnError)
        /// Nothing more to do until the next wake-up.
        case idle
        /// The loop ends.
        case finish
    }

    public enum Read: Sendable, Equatable {
        /// The entries after the cursor, possibly none, applied.
        case applied
        /// The log no longer holds every entry after the cursor (pruned, or another database).
        case gap
        /// The store could not be read; the last state is served.
        case failed
    }

    public enum Lock: Sendable, Equatable {
        /// Locked; the newer entries (possibly none) were applied.
        case locked
        /// The store is behind this node or holds a gap: not locked, reload first.
        case behind
        case failed(CairnError)
    }

    public enum Proposed: Sendable, Equatable {
        /// Stored (after the newer entries, which were applied first).
        case committed
        /// The batch changed nothing and recorded nothing; nothing was sent.
        case nothing
        /// Newer entries wrote a key the batch read; they were applied, nothing was written.
        case conflict
        /// The log no longer follows this node's state: nothing was written.
        case behind
        case failed(CairnError)
    }

    public enum Append: Sendable, Equatable {
        case committed
        /// The batch changed nothing and recorded nothing; the lock was given back.
        case nothing
        /// Another writer appended first (a conditional append without the lock).
        case conflict
        case failed(CairnError)
    }

    public private(set) var state: State = .writable
    /// Attempts at the batch in hand (a reload or a conflict makes another).
    public private(set) var attempt = 0
    /// Whether other writers share the store (a cluster): then every batch locks first, or is proposed first.
    public let shared: Bool
    /// Whether the shared store takes proposals (`RegistryStore.proposes`): a batch's first attempt is a proposal,
    /// and the attempts after a conflict lock.
    public let proposes: Bool
    public let maxAttempts: Int
    private var batch = false

    public init(shared: Bool, proposes: Bool = false, maxAttempts: Int = 32) {
        self.shared = shared
        self.proposes = shared && proposes
        self.maxAttempts = max(1, maxAttempts)
    }

    static let caughtUpFailure = CairnError(
        .serviceUnavailable, "The registry could not catch up with the store; nothing was changed. Retry.")
    static let conflictFailure = CairnError(.serviceUnavailable, "Other nodes kept writing first; nothing was changed. Retry.")
    static let closedFailure = CairnError(.serviceUnavailable, "Cairn is shutting down.")

    /// A wake-up: `followed` when the store said other writers may have appended, `batch` when commands are queued.
    /// With a batch on a shared store the lock comes first even when others appended: taking it reads their entries
    /// in the same round trip, so a separate read first would only cost the database and the batch one more.
    public mutating func woke(followed: Bool, batch: Bool) -> Action {
        self.batch = batch
        attempt = 0
        if state == .closed { return batch ? .refuse(Self.closedFailure) : .finish }
        if followed && shared && !batch {
            if state == .writable { state = .catchingUp }
            return .readNewer
        }
        return begin()
    }

    /// The newer entries were read (or could not be).
    public mutating func read(_ outcome: Read) -> Action {
        switch outcome {
        case .applied, .failed:
            if state == .catchingUp { state = .writable }
            return begin()
        case .gap:
            return .reload
        }
    }

    /// The whole state was loaded again (or could not be: the old state stays).
    public mutating func reloaded() -> Action {
        if state == .catchingUp { state = .writable }
        return begin()
    }

    /// The write lock was taken (or not).
    public mutating func locked(_ outcome: Lock) -> Action {
        switch outcome {
        case .locked:
            return .decide
        case .behind:
            return attempt < maxAttempts ? .reload : .refuse(Self.caughtUpFailure)
        case .failed(let error):
            unable(error)
            return .refuse(error)
        }
    }

    /// The proposed batch was stored (or not). A conflict is decided again under the lock, so a batch that lost
    /// to another node's entries once cannot lose again.
    public mutating func proposed(_ outcome: Proposed) -> Action {
        switch outcome {
        case .committed: return appended(.committed)
        case .nothing: return appended(.nothing)
        case .conflict: return appended(.conflict)
        case .behind: return locked(.behind)
        case .failed(let error): return appended(.failed(error))
        }
    }

    /// The batch's entries were appended (or not).
    public mutating func appended(_ outcome: Append) -> Action {
        switch outcome {
        case .committed:
            if case .readOnly = state { state = .writable }
            return .answer
        case .nothing:
            return .answer
        case .conflict:
            guard attempt < maxAttempts else { return .refuse(Self.conflictFailure) }
            return again()
        case .failed(let error):
            unable(error)
            return .refuse(error)
        }
    }

    /// The batch's callers were answered or refused.
    public mutating func finished() -> Action {
        batch = false
        if state == .closing {
            state = .closed
            return .finish
        }
        return state == .closed ? .finish : .idle
    }

    /// Shutdown: the batch in hand (and one last look at the queue) is finished, then the loop ends.
    public mutating func shutdown() {
        if state != .closed { state = .closing }
    }

    /// The store could not lock or commit: read-only, unless shutting down (which stays the state).
    private mutating func unable(_ error: CairnError) {
        if state != .closing && state != .closed { state = .readOnly(error.message) }
    }

    /// Starts (or starts again) the batch in hand: lock first on a shared store.
    private mutating func begin() -> Action {
        guard batch else {
            if state == .closing {
                state = .closed
                return .finish
            }
            return .idle
        }
        return again()
    }

    private mutating func again() -> Action {
        attempt += 1
        guard shared else { return .decide }
        return proposes && attempt == 1 ? .propose : .lock
    }
}
