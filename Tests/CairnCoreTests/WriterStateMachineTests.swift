import CairnCore
import Testing

@Suite("Writer state machine: one test per transition")
struct WriterStateMachineTests {
    static let down = CairnError(.serviceUnavailable, "connection refused")

    @Test("Single store: a wake-up with a batch decides it at once; committing answers; then idle")
    func singleStore() {
        var machine = WriterStateMachine(shared: false)
        #expect(machine.woke(followed: false, batch: true) == .decide)
        #expect(machine.attempt == 1)
        #expect(machine.appended(.committed) == .answer)
        #expect(machine.finished() == .idle)
        #expect(machine.state == .writable)
    }

    @Test("A wake-up with nothing queued and nothing followed is idle")
    func nothingToDo() {
        var machine = WriterStateMachine(shared: true)
        #expect(machine.woke(followed: false, batch: false) == .idle)
        #expect(machine.state == .writable)
    }

    @Test("Single store: a wake-up from following is ignored (no other writer exists)")
    func singleStoreIgnoresFollowing() {
        var machine = WriterStateMachine(shared: false)
        #expect(machine.woke(followed: true, batch: false) == .idle)
        #expect(machine.state == .writable)
    }

    @Test("Shared store: followed with a batch locks at once (the lock returns the newer entries), without a separate read")
    func followedBatchLocks() {
        var machine = WriterStateMachine(shared: true)
        #expect(machine.woke(followed: true, batch: true) == .lock)
        #expect(machine.state == .writable)
        #expect(machine.locked(.locked) == .decide)
        #expect(machine.appended(.committed) == .answer)
        #expect(machine.finished() == .idle)
    }

    @Test("Shared store: followed with no batch → catching up → read newer → writable, idle")
    func catchUpOnly() {
        var machine = WriterStateMachine(shared: true)
        #expect(machine.woke(followed: true, batch: false) == .readNewer)
        #expect(machine.state == .catchingUp)
        #expect(machine.read(.applied) == .idle)
        #expect(machine.state == .writable)
    }

    @Test("A gap in the log while catching up reloads, then is idle")
    func gapReloads() {
        var machine = WriterStateMachine(shared: true)
        _ = machine.woke(followed: true, batch: false)
        #expect(machine.read(.gap) == .reload)
        #expect(machine.reloaded() == .idle)
        #expect(machine.state == .writable)
    }

    @Test("A log that cannot be read leaves the last state served and the machine writable")
    func readFailure() {
        var machine = WriterStateMachine(shared: true)
        _ = machine.woke(followed: true, batch: false)
        #expect(machine.read(.failed) == .idle)
        #expect(machine.state == .writable)
    }

    @Test("A store behind the node (or a gap under the lock) reloads and locks again, up to the attempt limit")
    func behindReloadsThenGivesUp() {
        var machine = WriterStateMachine(shared: true, maxAttempts: 3)
        #expect(machine.woke(followed: false, batch: true) == .lock)
        #expect(machine.locked(.behind) == .reload)
        #expect(machine.reloaded() == .lock)
        #expect(machine.attempt == 2)
        #expect(machine.locked(.behind) == .reload)
        #expect(machine.reloaded() == .lock)
        #expect(machine.attempt == 3)
        guard case .refuse(let error) = machine.locked(.behind) else {
            Issue.record("not refused after the last attempt")
            return
        }
        #expect(error.code == .serviceUnavailable)
        #expect(machine.finished() == .idle)
    }

    @Test("A failed lock refuses the batch and makes the node read-only")
    func lockFailure() {
        var machine = WriterStateMachine(shared: true)
        _ = machine.woke(followed: false, batch: true)
        #expect(machine.locked(.failed(Self.down)) == .refuse(Self.down))
        #expect(machine.state == .readOnly("connection refused"))
        #expect(machine.finished() == .idle)
    }

    @Test("A failed commit refuses the batch and makes the node read-only; the next commit makes it writable")
    func commitFailureThenRecovery() {
        var machine = WriterStateMachine(shared: false)
        _ = machine.woke(followed: false, batch: true)
        #expect(machine.appended(.failed(Self.down)) == .refuse(Self.down))
        #expect(machine.state == .readOnly("connection refused"))
        #expect(machine.finished() == .idle)
        #expect(machine.woke(followed: false, batch: true) == .decide)
        #expect(machine.appended(.committed) == .answer)
        #expect(machine.state == .writable)
    }

    @Test("Read-only stays read-only through a catch-up; only a commit ends it")
    func readOnlyThroughCatchUp() {
        var machine = WriterStateMachine(shared: true)
        _ = machine.woke(followed: false, batch: true)
        _ = machine.locked(.failed(Self.down))
        _ = machine.finished()
        #expect(machine.woke(followed: true, batch: false) == .readNewer)
        #expect(machine.state == .readOnly("connection refused"))
        #expect(machine.read(.applied) == .idle)
        #expect(machine.state == .readOnly("connection refused"))
    }

    @Test("A batch that changes and records nothing gives the lock back and answers")
    func nothingWritten() {
        var machine = WriterStateMachine(shared: true)
        _ = machine.woke(followed: false, batch: true)
        _ = machine.locked(.locked)
        #expect(machine.appended(.nothing) == .answer)
        #expect(machine.state == .writable)
    }

    @Test("A conflict decides again (locking first on a shared store), up to the attempt limit")
    func conflictRetries() {
        var machine = WriterStateMachine(shared: true, maxAttempts: 2)
        _ = machine.woke(followed: false, batch: true)
        _ = machine.locked(.locked)
        #expect(machine.appended(.conflict) == .lock)
        #expect(machine.attempt == 2)
        _ = machine.locked(.locked)
        guard case .refuse = machine.appended(.conflict) else {
            Issue.record("not refused after the last attempt")
            return
        }
        var single = WriterStateMachine(shared: false, maxAttempts: 2)
        _ = single.woke(followed: false, batch: true)
        #expect(single.appended(.conflict) == .decide)
    }

    @Test("Attempts count per batch: a new wake-up starts again at one")
    func attemptsReset() {
        var machine = WriterStateMachine(shared: true, maxAttempts: 2)
        _ = machine.woke(followed: false, batch: true)
        _ = machine.locked(.behind)
        _ = machine.reloaded()
        _ = machine.locked(.locked)
        _ = machine.appended(.committed)
        _ = machine.finished()
        #expect(machine.woke(followed: false, batch: true) == .lock)
        #expect(machine.attempt == 1)
    }

    @Test("Shutdown: the batch in hand finishes, then the loop ends; with nothing queued it ends at once")
    func shutdown() {
        var machine = WriterStateMachine(shared: true)
        machine.shutdown()
        #expect(machine.state == .closing)
        #expect(machine.woke(followed: false, batch: true) == .lock)
        _ = machine.locked(.locked)
        #expect(machine.appended(.committed) == .answer)
        #expect(machine.state == .closing)
        #expect(machine.finished() == .finish)
        #expect(machine.state == .closed)
        var idle = WriterStateMachine(shared: false)
        idle.shutdown()
        #expect(idle.woke(followed: false, batch: false) == .finish)
        #expect(idle.state == .closed)
    }

    @Test("A store failure while closing does not hide the shutdown")
    func failureWhileClosing() {
        var machine = WriterStateMachine(shared: true)
        machine.shutdown()
        _ = machine.woke(followed: false, batch: true)
        #expect(machine.locked(.failed(Self.down)) == .refuse(Self.down))
        #expect(machine.state == .closing)
        #expect(machine.finished() == .finish)
    }

    @Test("Closed: a late batch is refused, nothing else is done")
    func closed() {
        var machine = WriterStateMachine(shared: false)
        machine.shutdown()
        _ = machine.woke(followed: false, batch: false)
        #expect(machine.state == .closed)
        guard case .refuse(let error) = machine.woke(followed: true, batch: true) else {
            Issue.record("a batch after close was not refused")
            return
        }
        #expect(error.message.contains("shutting down"))
        #expect(machine.finished() == .finish)
        #expect(machine.woke(followed: false, batch: false) == .finish)
    }

    // MARK: Proposals (a shared store that checks the others' entries itself)

    @Test("Proposing store: a batch's first attempt is a proposal; committed answers and is idle")
    func proposalCommits() {
        var machine = WriterStateMachine(shared: true, proposes: true)
        #expect(machine.woke(followed: true, batch: true) == .propose)
        #expect(machine.attempt == 1)
        #expect(machine.proposed(.committed) == .answer)
        #expect(machine.finished() == .idle)
        #expect(machine.state == .writable)
    }

    @Test("A proposal that lost to newer entries is decided again under the lock, never proposed twice")
    func proposalConflictLocks() {
        var machine = WriterStateMachine(shared: true, proposes: true)
        _ = machine.woke(followed: false, batch: true)
        #expect(machine.proposed(.conflict) == .lock)
        #expect(machine.attempt == 2)
        #expect(machine.locked(.locked) == .decide)
        #expect(machine.appended(.committed) == .answer)
        #expect(machine.finished() == .idle)
        // The next batch proposes again.
        #expect(machine.woke(followed: false, batch: true) == .propose)
    }

    @Test("A proposal the log no longer follows reloads, then locks")
    func proposalBehindReloads() {
        var machine = WriterStateMachine(shared: true, proposes: true)
        _ = machine.woke(followed: false, batch: true)
        #expect(machine.proposed(.behind) == .reload)
        #expect(machine.reloaded() == .lock)
        #expect(machine.attempt == 2)
    }

    @Test("A proposal that changes nothing answers without a store call")
    func proposalNothing() {
        var machine = WriterStateMachine(shared: true, proposes: true)
        _ = machine.woke(followed: false, batch: true)
        #expect(machine.proposed(.nothing) == .answer)
        #expect(machine.finished() == .idle)
    }

    @Test("A failed proposal refuses the batch and makes the node read-only; a committed one makes it writable again")
    func proposalFailureThenRecovery() {
        var machine = WriterStateMachine(shared: true, proposes: true)
        _ = machine.woke(followed: false, batch: true)
        #expect(machine.proposed(.failed(Self.down)) == .refuse(Self.down))
        #expect(machine.state == .readOnly("connection refused"))
        #expect(machine.finished() == .idle)
        #expect(machine.woke(followed: false, batch: true) == .propose)
        #expect(machine.proposed(.committed) == .answer)
        #expect(machine.state == .writable)
    }

    @Test("A proposal at the last attempt that conflicts is refused; a single store never proposes")
    func proposalLimits() {
        var machine = WriterStateMachine(shared: true, proposes: true, maxAttempts: 1)
        _ = machine.woke(followed: false, batch: true)
        guard case .refuse(let error) = machine.proposed(.conflict) else {
            Issue.record("not refused at the attempt limit")
            return
        }
        #expect(error.code == .serviceUnavailable)
        var single = WriterStateMachine(shared: false, proposes: true)
        #expect(single.woke(followed: false, batch: true) == .decide)
    }
}
