import Foundation
import Logging
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
        public var telemetry: any Telemetry
        public var logger: Logger
        /// Long-poll discovery: how many calls may wait for a change at once.
        public var longPollLimit = 10_000
        public init(
            rules: RegistryRules = RegistryRules(), checkpointInterval: Int = 20_000, telemetry: any Telemetry = NoTelemetry(),
            logger: Logger = Logger(label: "cairn.registry"), longPollLimit: Int = 10_000
        ) {
            self.longPollLimit = longPollLimit
            self.logger = logger
            self.rules = rules
            self.checkpointInterval = checkpointInterval
            self.telemetry = telemetry
        }
    }

    typealias Reply = CheckedContinuation<Result<CommandResult, CairnError>, Never>

    struct Pending {
        /// nil for an audit record of a call that changes nothing (a read, a refused request).
        var command: Command?
        var context: RequestContext
        var audit: (any AuditDraft)?
        /// nil when nobody waits (read records).
        var reply: Reply?
        /// The command's idempotency fingerprint, encoded by the caller's task so the writer does not encode it
        /// while it holds the store's write lock (nil: the command has no token, or none was worked out ahead).
        var fingerprint: String? = nil
    }

    struct Queue {
        var items: [Pending] = []
        var barriers: [CheckedContinuation<Void, Never>] = []
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
    /// Why the store cannot commit (the last commit or probe failed), nil while it can; readiness reads it.
    private let storeProblem = Mutex<(problem: String?, probed: ContinuousClock.Instant?)>((nil, nil))
    private let logger: Logger
    /// Calls waiting for a service's answer to change (long-poll discovery).
    public let watchers: ServiceWatchers

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
        self.logger = configuration.logger
        self.clock = clock
        self.seed = seed
        self.initial = state
        self.published = Mutex(RegistrySnapshot(state))
        self.watchers = ServiceWatchers(limit: configuration.longPollLimit)
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    @Sendable public static func systemMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// The latest published state.
    public var snapshot: RegistrySnapshot { published.withLock { $0 } }

    public var rules: RegistryRules { configuration.rules }

    /// In cluster mode: the live nodes and the database's revision as this node last read them.
    public var membership: ClusterMembership? { store.membership }

    /// Submits a command; returns once its change is durable and published (or with the reason it was refused).
    /// With `audit`, the call's audit record is completed with the outcome and stored in the same transaction as
    /// the change, so a change without its record cannot exist.
    public func submit(_ command: Command, context: RequestContext, audit: (any AuditDraft)? = nil) async throws(CairnError)
        -> CommandResult
    {
        let fingerprint = command.fingerprintAhead
        let result = await withCheckedContinuation { (reply: Reply) in
            let accepted = queue.withLock { q in
                guard !q.closed else { return false }
                q.items.append(Pending(command: command, context: context, audit: audit, reply: reply, fingerprint: fingerprint))
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

    /// Queues the audit record of a call that changes nothing; it is stored with the next group commit.
    public func record(_ draft: any AuditDraft) {
        let accepted = queue.withLock { q in
            guard !q.closed else { return false }
            q.items.append(Pending(command: nil, context: RequestContext(region: "", account: ""), audit: draft, reply: nil))
            return true
        }
        if accepted { wake.yield() }
    }

    /// Whether the writer still takes commands (false once shutdown began).
    public var accepting: Bool { queue.withLock { !$0.closed } }

    /// Returns once everything queued before it (audit records included) is stored.
    public func barrier() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let accepted = queue.withLock { q in
                guard !q.closed else { return false }
                q.items.append(Pending(command: nil, context: RequestContext(region: "", account: ""), audit: nil, reply: nil))
                q.barriers.append(done)
                return true
            }
            if accepted { wake.yield() } else { done.resume() }
        }
    }

    /// Whether the writer answers and the store can commit, for readiness: nil when ready, else why not. The
    /// writer must pass a barrier within `deadline`; the store is probed with a real commit at most once a second
    /// (a failed commit since makes it unready at once; a probe that commits again makes it ready).
    public func readiness(deadline: Duration = .seconds(2)) async -> String? {
        guard accepting else { return "shutting down" }
        guard await barrier(within: deadline) else { return "the registry writer did not answer within \(deadline)" }
        let now = ContinuousClock.now
        let due = storeProblem.withLock { entry in
            guard entry.probed.map({ now - $0 < .seconds(1) }) != true else { return false }
            entry.probed = now
            return true
        }
        if due {
            do {
                try await store.probe()
                storeProblem.withLock { $0.problem = nil }
            } catch {
                storeProblem.withLock { $0.problem = "\(error)" }
            }
        }
        return storeProblem.withLock { $0.problem }.map { "the store cannot commit: \($0)" }
    }

    /// Like `barrier()`, but gives up after `deadline`: true when the barrier passed in time.
    public func barrier(within deadline: Duration) async -> Bool {
        let outcome = Mutex<CheckedContinuation<Bool, Never>?>(nil)
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            outcome.withLock { $0 = continuation }
            let finish: @Sendable (Bool) -> Void = { value in outcome.withLock { $0.take() }?.resume(returning: value) }
            let timer = Task {
                try? await Task.sleep(for: deadline)
                finish(false)
            }
            Task {
                await self.barrier()
                timer.cancel()
                finish(true)
            }
        }
    }

    /// The audit trail, including every record queued before the call.
    public func auditTrail(_ query: AuditQuery) async throws -> AuditPage {
        await barrier()
        return try await store.auditRecords(query)
    }

    /// Every audit record after sequence `after`, oldest first.
    public func auditExport(after: UInt64, pageSize: Int = 5000) async throws -> [AuditRecord] {
        await barrier()
        var result: [AuditRecord] = []
        var cursor = after
        while true {
            let page = try await store.auditRecords(after: cursor, limit: pageSize)
            result += page
            guard page.count == pageSize, let last = page.last else { return result }
            cursor = last.sequence
        }
    }

    public func verifyAudit() async throws -> AuditVerification {
        await barrier()
        return try await store.verifyAudit()
    }

    public func pruneAudit(olderThan time: Int64) async throws -> Int {
        try await store.pruneAudit(olderThan: time)
    }

    /// Whether this node should run the singleton job `name` now (it holds or took its lease for `duration`).
    public func lease(_ name: String, for duration: Duration) async throws -> Bool {
        try await store.lease(name, for: duration)
    }

    /// How long the checkpoint lease lasts: its holder renews it at every checkpoint; another node takes over the
    /// job once it expired.
    static let checkpointLease = Duration.seconds(600)

    /// Stops taking commands; `run()` finishes what is queued and returns.
    public func shutdown() {
        queue.withLock { $0.closed = true }
        wake.finish()
        watchers.close()
    }

    /// Long-poll discovery: returns once the service's answer moved past `version` (its `viewVersion`: any change to
    /// its instances, their health or the service), or after `timeout`, or at shutdown. False, at once, when
    /// `Configuration.longPollLimit` calls already wait.
    public func awaitChange(ofService id: String, beyond version: UInt64, timeout: Duration, hangup: Hangup? = nil) async -> Bool {
        guard let ticket = watchers.ticket() else { return false }
        await watchers.wait(ticket, service: id, version: version, timeout: timeout, hangup: hangup) {
            self.snapshot.state.services[id]?.viewVersion
        }
        return true
    }

    /// Waits until a state newer than `sequence` is published (any change, from this node or applied from others),
    /// or the wait is cancelled, or shutdown. For Cairn's own loops (the health checker): it does not count against
    /// `Configuration.longPollLimit`. False, at once, after shutdown.
    public func awaitPublish(beyond sequence: UInt64) async -> Bool {
        guard let ticket = watchers.ticket(exempt: true) else { return false }
        await watchers.wait(ticket, service: ServiceWatchers.anyChange, version: sequence) { self.snapshot.state.sequence }
        return true
    }

    /// Sleeps for about `duration` (within one tick of the waiters' timer wheel) without a timer of its own: for
    /// the many loops that pace themselves (watch streams). Returns early at shutdown or after a namespace change.
    public func pause(for duration: Duration, hangup: Hangup? = nil) async {
        guard let ticket = watchers.ticket(exempt: true) else { return }
        await watchers.wait(ticket, service: ServiceWatchers.pausing, version: 0, timeout: duration, hangup: hangup) { 0 }
    }

    /// The writer loop. Run it exactly once. Checkpoints run beside it as a child task, so writers never wait
    /// for the state to be encoded. What to do next is `WriterStateMachine`'s decision; this loop does the work.
    public func run() async {
        var state = initial
        var ids = IdentifierGenerator(seed: seed)
        var machine = WriterStateMachine(shared: store.changes != nil, proposes: store.proposes, maxAttempts: Self.maxAttempts)
        // Checkpoints follow the log's growth, whoever wrote it: on a cluster every node sees the same growth and
        // the holder of the checkpoint lease writes it (the others would only repeat the work).
        var checkpointed = state.sequence
        let checkpointing = Flag()
        // A store other nodes write too wakes the writer when they did; the writer then catches up.
        let following = Flag()
        let follower = store.changes.map { changes in
            Task { [wake] in
                for await _ in changes {
                    following.value = true
                    wake.yield()
                }
            }
        }
        defer { follower?.cancel() }
        await withTaskGroup(of: Void.self) { group in
            var wakeups = self.wakeups.makeAsyncIterator()
            while await wakeups.next() != nil {
                let followed = following.value
                following.value = false
                var (items, barriers) = takeQueued()
                await handle(
                    &items, followed: followed, barriers: &barriers, machine: &machine, state: &state, ids: &ids, wakeups: &wakeups)
                for barrier in barriers { barrier.resume() }
                if state.sequence &- checkpointed >= UInt64(max(1, configuration.checkpointInterval)), !checkpointing.value {
                    checkpointing.value = true
                    checkpointed = state.sequence
                    let snapshot = state
                    group.addTask { [store] in
                        // A failed checkpoint only means a longer replay at the next start; the log is intact.
                        if (try? await store.lease("checkpoint", for: Self.checkpointLease)) == true {
                            try? await store.checkpoint(snapshot)
                        }
                        checkpointing.value = false
                    }
                }
            }
            // The stream ended (shutdown): answer anything that raced in, then stop.
            machine.shutdown()
            var (items, barriers) = takeQueued()
            await handle(
                &items, followed: false, barriers: &barriers, machine: &machine, state: &state, ids: &ids, wakeups: &wakeups)
            for barrier in barriers { barrier.resume() }
        }
    }

    private func takeQueued() -> (items: [Pending], barriers: [CheckedContinuation<Void, Never>]) {
        queue.withLock { q in
            let taken = (q.items, q.barriers)
            q.items = []
            q.barriers = []
            return taken
        }
    }

    /// How often a batch is decided again after other nodes appended first, before its callers are refused.
    static let maxAttempts = 32

    /// One wake-up: catches up if other writers appended, then decides, stores and publishes the batch, doing
    /// the actions the state machine returns until it has nothing left to do.
    /// Commands queued while the store's lock was awaited join the batch once it is held (`barriers` gains their
    /// barriers): on a shared store the lock is what nodes queue on, so each holder should carry all it can.
    private func handle(
        _ batch: inout [Pending], followed: Bool, barriers: inout [CheckedContinuation<Void, Never>],
        machine: inout WriterStateMachine, state: inout RegistryState, ids: inout IdentifierGenerator,
        wakeups: inout AsyncStream<Void>.Iterator
    ) async {
        var action = machine.woke(followed: followed, batch: !batch.isEmpty)
        var outcomes: [Result<CommandResult, CairnError>?] = []
        /// A batch decided while the lock was awaited and kept: the newer entries the lock returned are applied
        /// after it is stored.
        var kept: (decided: Decided, newer: [ChangeLogEntry], ids: IdentifierGenerator)?
        /// When the store's lock was granted, while it is held.
        var lockedAt: ContinuousClock.Instant?
        func released() {
            guard let at = lockedAt else { return }
            lockedAt = nil
            configuration.telemetry.storeLockHeld(seconds: Self.seconds(ContinuousClock.now - at))
        }
        while true {
            switch action {
            case .readNewer:
                do {
                    if let newer = try await store.entries(after: state.sequence) {
                        if apply(newer, to: &state) {
                            action = machine.read(.applied)
                        } else {
                            action = machine.read(.gap)
                        }
                    } else {
                        action = machine.read(.gap)
                    }
                } catch {
                    logger.warning("could not read the change log to catch up; serving the last state", metadata: ["error": "\(error)"])
                    action = machine.read(.failed)
                }
            case .reload:
                await reload(&state)
                action = machine.reloaded()
            case .lock:
                released()
                // Decide the batch, and what joins it, while the lock is awaited; keep it if what the lock returns
                // touches nothing it read, so the lock is held only to store it.
                let base = state
                let (locked, decided, speculatedIds, grantedAt) = await speculate(
                    &batch, barriers: &barriers, on: base, ids: ids, wakeups: &wakeups)
                switch locked {
                case .failure(let error):
                    logger.error("store write failed; the batch is refused", metadata: ["error": "\(error)"])
                    action = machine.locked(.failed(Self.failure(error)))
                case .success(nil):
                    action = machine.locked(.behind)
                case .success(let newer?):
                    lockedAt = grantedAt
                    let fresh = Array(newer.drop { $0.sequence <= base.sequence })
                    guard Self.follows(fresh, base.sequence) else {
                        await store.abandonWrite()
                        released()
                        action = machine.locked(.behind)
                        break
                    }
                    let sameTerms = decided.terms.allSatisfy { store.membership?.admits(term: $0.term) == $0.admitted }
                    let disjoint =
                        sameTerms
                        && (fresh.isEmpty
                            || (!decided.everything && base.speculativeWrites(of: fresh).map { $0.isDisjoint(with: decided.reads) } == true))
                    if disjoint {
                        var moved = decided
                        let offset = UInt64(fresh.count)
                        if offset > 0 { moved.entries = moved.entries.map { $0.renumbered(by: offset) } }
                        kept = (moved, fresh, speculatedIds)
                    } else {
                        _ = apply(fresh, to: &state)
                    }
                    configuration.telemetry.speculation(kept: disjoint)
                    action = machine.locked(.locked)
                }
            case .propose:
                released()
                // Decide against the state this node has, and let the store check the others' newer entries
                // against what the batch read: one round trip, and the database holds the lock for none of ours.
                let (late, lateBarriers) = takeQueued()
                batch += late
                barriers += lateBarriers
                let base = state
                var scratch = base
                var nextIds = ids
                var decided = Decided()
                let now = clock()
                decide(batch[...], state: &scratch, ids: &nextIds, now: now, into: &decided, tracking: true)
                prune(&scratch, now: now, into: &decided)
                outcomes = decided.outcomes
                // Divided work refused for its term is sent too: the term this node last read may be out of date,
                // and the store answers with the one it holds.
                guard !decided.entries.isEmpty || !decided.audit.isEmpty || !decided.terms.isEmpty else {
                    // Nothing to write: every command failed or changed nothing, as decided on this node's state,
                    // which may be behind what other nodes committed (a service created there a moment ago is "not
                    // found" here). Answered only if no entry is newer; else caught up and decided again.
                    do {
                        if let newer = try await store.entries(after: base.sequence) {
                            if newer.isEmpty {
                                ids = nextIds
                                action = machine.proposed(.nothing)
                            } else {
                                action = apply(newer, to: &state) ? machine.proposed(.conflict) : machine.proposed(.behind)
                            }
                        } else {
                            action = machine.proposed(.behind)
                        }
                    } catch {
                        logger.error(
                            "could not check the change log before answering; the batch is refused", metadata: ["error": "\(error)"])
                        action = machine.proposed(.failed(Self.failure(error)))
                    }
                    continue
                }
                do {
                    let started = ContinuousClock.now
                    let proposal = Proposal(
                        entries: decided.entries, writes: decided.writes, audit: decided.audit, after: base.sequence,
                        reads: decided.everything ? nil : decided.reads, terms: decided.terms)
                    switch try await store.propose(proposal) {
                    case .committed(let newer):
                        configuration.telemetry.storeCommit(
                            seconds: Self.seconds(ContinuousClock.now - started), entries: decided.entries.count,
                            auditRecords: decided.audit.count)
                        configuration.telemetry.speculation(kept: true)
                        storeProblem.withLock { $0.problem = nil }
                        ids = nextIds
                        let offset = UInt64(newer.count)
                        let own: [ChangeLogEntry]
                        if offset == 0 {
                            // Nothing came first: the state the batch was decided on is the state it made.
                            own = decided.entries
                            state = scratch
                        } else {
                            own = decided.entries.map { $0.renumbered(by: offset) }
                            for entry in newer { state.apply(entry) }
                            for entry in own { state.apply(entry) }
                        }
                        if !newer.isEmpty || !own.isEmpty { publish(state, changed: newer + own) }
                        action = machine.proposed(.committed)
                    case .conflict(let newer):
                        configuration.telemetry.speculation(kept: false)
                        action = apply(newer, to: &state) ? machine.proposed(.conflict) : machine.proposed(.behind)
                    case .behind:
                        action = machine.proposed(.behind)
                    }
                } catch {
                    logger.error(
                        "store commit failed; the batch is refused and the node is unready until the store commits again",
                        metadata: ["error": "\(error)", "entries": "\(decided.entries.count)", "auditRecords": "\(decided.audit.count)"])
                    action = machine.proposed(.failed(Self.failure(error)))
                }
            case .decide where kept != nil:
                let (decided, newer, speculatedIds) = kept!
                kept = nil
                outcomes = decided.outcomes
                ids = speculatedIds
                let base = state
                guard !decided.entries.isEmpty || !decided.audit.isEmpty else {
                    await store.abandonWrite()
                    _ = apply(newer, to: &state)
                    action = machine.appended(.nothing)
                    continue
                }
                do {
                    let started = ContinuousClock.now
                    let expecting = base.sequence + UInt64(newer.count)
                    switch try await store.append(decided.entries, audit: decided.audit, expecting: expecting, writes: decided.writes) {
                    case .committed:
                        configuration.telemetry.storeCommit(
                            seconds: Self.seconds(ContinuousClock.now - started), entries: decided.entries.count,
                            auditRecords: decided.audit.count)
                        storeProblem.withLock { $0.problem = nil }
                        for entry in newer { state.apply(entry) }
                        for entry in decided.entries { state.apply(entry) }
                        publish(state, changed: newer + decided.entries)
                        action = machine.appended(.committed)
                    case .conflict(let later):
                        _ = apply(newer, to: &state)
                        if let later, apply(later, to: &state) {} else { await reload(&state) }
                        action = machine.appended(.conflict)
                    }
                } catch {
                    logger.error(
                        "store commit failed; the batch is refused and the node is unready until the store commits again",
                        metadata: ["error": "\(error)", "entries": "\(decided.entries.count)", "auditRecords": "\(decided.audit.count)"])
                    _ = apply(newer, to: &state)
                    action = machine.appended(.failed(Self.failure(error)))
                }
            case .decide:
                if store.changes != nil {
                    let (late, lateBarriers) = takeQueued()
                    batch += late
                    barriers += lateBarriers
                }
                let before = state
                var decided = Decided()
                decide(batch[...], state: &state, ids: &ids, now: clock(), into: &decided)
                prune(&state, now: decided.now ?? clock(), into: &decided)
                let (entries, audit, writes) = (decided.entries, decided.audit, decided.writes)
                outcomes = decided.outcomes
                guard !entries.isEmpty || !audit.isEmpty else {
                    await store.abandonWrite()
                    action = machine.appended(.nothing)
                    continue
                }
                do {
                    let started = ContinuousClock.now
                    switch try await store.append(entries, audit: audit, expecting: before.sequence, writes: writes) {
                    case .committed:
                        configuration.telemetry.storeCommit(
                            seconds: Self.seconds(ContinuousClock.now - started), entries: entries.count, auditRecords: audit.count)
                        storeProblem.withLock { $0.problem = nil }
                        if !entries.isEmpty { publish(state, changed: entries) }
                        action = machine.appended(.committed)
                    case .conflict(let newer):
                        state = before
                        if let newer, apply(newer, to: &state) {} else { await reload(&state) }
                        action = machine.appended(.conflict)
                    }
                } catch {
                    logger.error(
                        "store commit failed; the batch is refused and the node is unready until the store commits again",
                        metadata: ["error": "\(error)", "entries": "\(entries.count)", "auditRecords": "\(audit.count)"])
                    state = before
                    action = machine.appended(.failed(Self.failure(error)))
                }
            case .answer:
                released()
                for (item, outcome) in zip(batch, outcomes) {
                    if let reply = item.reply, let outcome { reply.resume(returning: outcome) }
                }
                action = machine.finished()
            case .refuse(let failure):
                released()
                if case .readOnly(let problem) = machine.state { storeProblem.withLock { $0.problem = problem } }
                for item in batch { item.reply?.resume(returning: .failure(failure)) }
                action = machine.finished()
            case .idle, .finish:
                return
            }
        }
    }

    /// What deciding a batch produced: the entries to append, the audit records, each item's outcome (nil for a
    /// record that is not a command), and, when tracked, the keys the decisions read (`everything`: any).
    struct Decided {
        var entries: [ChangeLogEntry] = []
        var audit: [AuditEntry] = []
        var outcomes: [Result<CommandResult, CairnError>?] = []
        var reads = Set<String>()
        /// The keys each entry writes, one per entry, on a store that takes proposals (which keeps them for the
        /// next proposals to be checked against); empty otherwise.
        var writes: [Set<String>?] = []
        var everything = false
        var now: Int64?
        /// The membership terms the batch's divided work was admitted in (or not), as decided: the term the database
        /// holds is read when the lock is taken, so a batch decided before it stands only if each answer is the same.
        var terms: [(term: UInt64, admitted: Bool)] = []
    }

    /// Decides the items against `state`, applying each change, and adds what they produce to `decided`; with
    /// `tracking`, also the keys each decision read (RegistryState+Speculation).
    private func decide(
        _ items: ArraySlice<Pending>, state: inout RegistryState, ids: inout IdentifierGenerator, now: Int64,
        into decided: inout Decided, tracking: Bool = false
    ) {
        decided.now = decided.now ?? now
        decided.outcomes.reserveCapacity(decided.outcomes.count + items.count)
        for item in items {
            guard let command = item.command else {
                if let draft = item.audit { decided.audit.append(draft.entry(outcome: nil)) }
                decided.outcomes.append(nil)
                continue
            }
            if tracking && !decided.everything {
                if let keys = state.speculativeReads(of: command, context: item.context) {
                    decided.reads.formUnion(keys)
                } else {
                    decided.everything = true
                }
            }
            let outcome: Result<CommandResult, CairnError>
            var changed = false
            do throws(CairnError) {
                // Work a cluster divides among nodes is written only in the membership term it started in.
                if let term = item.context.membershipTerm, let membership = store.membership {
                    let admitted = membership.admits(term: term)
                    if tracking { decided.terms.append((term, admitted)) }
                    if !admitted {
                        throw CairnError(
                            .serviceUnavailable,
                            "Dropped: this node's membership term changed since the work started (it was away past the heartbeat timeout).")
                    }
                }
                let decision = try state.decide(
                    command, context: item.context, now: now, rules: configuration.rules, ids: &ids, fingerprint: item.fingerprint)
                if !decision.events.isEmpty {
                    changed = true
                    let entry = ChangeLogEntry(sequence: state.sequence + 1, time: now, events: decision.events)
                    if store.proposes { decided.writes.append(state.speculativeWrites(of: CollectionOfOne(entry))) }
                    state.apply(entry)
                    decided.entries.append(entry)
                    if tracking { decided.reads.formUnion(RegistryState.speculativeReads(ofEvents: decision.events)) }
                }
                outcome = .success(decision.result)
            } catch {
                outcome = .failure(error)
            }
            if let draft = item.audit, changed || !draft.onlyIfChanged { decided.audit.append(draft.entry(outcome: outcome)) }
            decided.outcomes.append(outcome)
        }
    }

    /// Drops operation records past the retention limit, when there are enough to be worth an entry. Which ones
    /// depends on every operation, so a speculated batch that prunes reads everything.
    private func prune(_ state: inout RegistryState, now: Int64, into decided: inout Decided) {
        guard let pruning = state.pruningEntry(keeping: configuration.rules.limits.operationsRetained, time: now) else { return }
        state.apply(pruning)
        decided.entries.append(pruning)
        if store.proposes { decided.writes.append(nil) }
        decided.everything = true
    }

    /// Takes the shared store's write lock and, while it is awaited, decides `batch` against `base`, and each command
    /// that is queued meanwhile as it comes (it joins the batch). Returns what the lock returned, the decided batch
    /// with the keys it read, and the identifier generator after it.
    private func speculate(
        _ batch: inout [Pending], barriers: inout [CheckedContinuation<Void, Never>], on base: RegistryState, ids: IdentifierGenerator,
        wakeups: inout AsyncStream<Void>.Iterator
    ) async -> (Result<[ChangeLogEntry]?, any Error>, Decided, IdentifierGenerator, ContinuousClock.Instant) {
        let done = Flag()
        let locking = Task { [store, wake] () -> (Result<[ChangeLogEntry]?, any Error>, ContinuousClock.Instant) in
            defer {
                done.value = true
                wake.yield()
            }
            do { return (.success(try await store.lockForWrite(after: base.sequence)), .now) } catch { return (.failure(error), .now) }
        }
        var decided = Decided()
        var state = base
        var ids = ids
        let now = clock()
        decide(batch[...], state: &state, ids: &ids, now: now, into: &decided, tracking: true)
        // A wake-up while the lock is awaited is a command queued, the lock answered, or another node's commit
        // (which the lock's answer covers: it returns every entry committed before it was granted).
        while !done.value, await wakeups.next() != nil {
            let (late, lateBarriers) = takeQueued()
            guard !late.isEmpty || !lateBarriers.isEmpty else { continue }
            let from = batch.count
            batch += late
            barriers += lateBarriers
            decide(batch[from...], state: &state, ids: &ids, now: now, into: &decided, tracking: true)
        }
        let (locked, grantedAt) = await locking.value
        prune(&state, now: now, into: &decided)
        return (locked, decided, ids, grantedAt)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Whether `entries` continue the log after `sequence` without a gap.
    static func follows(_ entries: [ChangeLogEntry], _ sequence: UInt64) -> Bool {
        var expected = sequence
        for entry in entries {
            expected += 1
            guard entry.sequence == expected else { return false }
        }
        return true
    }

    /// The error a caller gets when the store failed.
    static func failure(_ error: any Error) -> CairnError {
        (error as? CairnError)
            ?? CairnError(.serviceUnavailable, "The change could not be stored; nothing was changed. Retry when the store is back.")
    }

    /// Applies entries another writer appended and publishes the result; false (nothing applied) when they do not
    /// follow the state's sequence without a gap.
    private func apply(_ newer: [ChangeLogEntry], to state: inout RegistryState) -> Bool {
        let fresh = Array(newer.drop { $0.sequence <= state.sequence })
        guard Self.follows(fresh, state.sequence) else { return false }
        guard !fresh.isEmpty else { return true }
        for entry in fresh { state.apply(entry) }
        publish(state, changed: fresh)
        return true
    }

    /// Loads the whole state from the store again (the log no longer follows this node's state) and publishes it.
    private func reload(_ state: inout RegistryState) async {
        do {
            let from = state.sequence
            state = try await store.load().replayed()
            logger.warning(
                "reloaded the whole state from the store (the change log no longer follows this node's state)",
                metadata: ["from": "\(from)", "to": "\(state.sequence)"])
            publish(state, changed: nil)
        } catch {
            logger.error("could not reload the state from the store", metadata: ["error": "\(error)"])
        }
    }

    /// Publishes `state`, then wakes the long-poll calls of the services `changed` touched (nil: any service).
    private func publish(_ state: RegistryState, changed: [ChangeLogEntry]?) {
        published.withLock { $0 = RegistrySnapshot(state) }
        guard watchers.count > 0 else { return }
        watchers.changed(changed.flatMap { ServiceWatchers.services(touchedBy: $0) }.map { $0.union([ServiceWatchers.anyChange]) }) {
            $0 == ServiceWatchers.anyChange ? state.sequence : state.services[$0]?.viewVersion
        }
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
