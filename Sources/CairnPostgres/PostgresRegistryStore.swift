import CairnCore
import CairnStore
import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

/// The cluster store: one PostgreSQL database that any number of Cairn nodes share. The change log is numbered by
/// one clock row: every writing transaction locks it (`SELECT … FOR UPDATE`) first, so appends are serialised in
/// the clock's order and a follower reading "seq > cursor" can never skip an entry that commits late (a sequence
/// would hand out numbers before commit). An append is conditional: when the log no longer ends where the node
/// decided its batch, nothing is written and the newer entries come back for the node to decide again. The audit
/// trail is one hash chain in the clock's total order, extended under the same lock.
///
/// Nodes hear of each other's appends by `LISTEN cairn_changes` on a dedicated connection, with a poll beneath it
/// (notifications are lost across reconnects); `changes` yields for both.
public actor PostgresRegistryStore: RegistryStore {
    /// The advisory lock key migrations hold ("cairn" in ASCII).
    static let migrationLock: Int64 = 0x63_6169_726e
    static let channel = "cairn_changes"

    public struct Options: Sendable {
        /// How often a node looks at the clock when no notification arrived.
        public var pollInterval: Duration
        /// Change-log entries are kept at least this long behind the checkpoint; a node away for longer reloads the
        /// whole state when it returns.
        public var logRetention: Duration
        public var connectTimeout: Duration
        /// Longest a call to the database may take before its connection is closed and the call fails: a primary
        /// that died behind a proxy can leave a socket that never answers (and never errors).
        public var statementTimeout: Duration = .seconds(10)
        /// How often a node renews its row in `cairn_nodes` (folded into a catch-up read, so it costs no query).
        public var heartbeatInterval: Duration
        /// A node whose row was not renewed for this long (by the database's clock) is no longer live: its share of
        /// the health checks moves to the others.
        public var memberTimeout: Duration
        public init(
            pollInterval: Duration = .milliseconds(500), logRetention: Duration = .seconds(3600), connectTimeout: Duration = .seconds(5),
            heartbeatInterval: Duration = .seconds(2), memberTimeout: Duration = .seconds(10)
        ) {
            self.pollInterval = pollInterval
            self.logRetention = logRetention
            self.connectTimeout = connectTimeout
            self.heartbeatInterval = heartbeatInterval
            self.memberTimeout = memberTimeout
        }

        var memberTimeoutSeconds: Double {
            Double(memberTimeout.components.seconds) + Double(memberTimeout.components.attoseconds) / 1e18
        }
    }

    public let location: PostgresLocation
    private let options: Options
    private let logger: Logger
    /// This node's name in `cairn_nodes`.
    public nonisolated let node: String
    private var connection: PostgresConnection?
    private var nextConnectionID = 1
    /// Actor methods interleave at every `await`; statements on the one connection must not.
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    /// The database's epoch as this node first saw it; another epoch is another database (a restore).
    private var epoch: String?
    private var listener: Task<Void, Never>?
    public nonisolated let changes: AsyncStream<Void>?
    private let wake: AsyncStream<Void>.Continuation
    public nonisolated let membership: ClusterMembership?
    private var lastHeartbeat: ContinuousClock.Instant?
    /// What the LISTEN session has heard, compared with what the poll finds (see `Hearing`).
    private let hearing = Hearing()
    private let committed = Committed()

    /// Connects, creates or migrates the schema, and starts following other nodes' appends. Throws a
    /// `PostgresStoreError` that says what is wrong (unreachable, refused credentials, a newer schema).
    /// How a process uses the database: a node migrates, joins the membership table and follows the others; a
    /// reader (`cairn audit verify`) only reads a schema that is already there.
    public enum Access: Sendable { case node, reader }

    public static func open(
        url: String, access: Access = .node, options: Options = Options(), logger: Logger = Logger(label: "cairn.store")
    ) async throws -> PostgresRegistryStore {
        let store = PostgresRegistryStore(location: try PostgresLocation.parse(url), options: options, logger: logger)
        do {
            try await store.migrate(create: access == .node)
            if access == .node { try await store.register() }
        } catch {
            try? await store.close()
            throw error
        }
        if access == .node { await store.startListening() }
        return store
    }

    private init(location: PostgresLocation, options: Options, logger: Logger) {
        self.location = location
        self.options = options
        self.logger = logger
        self.node = "\(ProcessInfo.processInfo.hostName)/\(getpid())/\(UUID().uuidString.prefix(8).lowercased())"
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.changes = stream
        self.wake = continuation
        self.membership = ClusterMembership(node: node)
    }

    // MARK: Connections

    /// Connects, authenticates and starts a session within `timeout` as a whole: a proxy can accept the TCP
    /// connection for a server that never answers the start-up (NIO's connect timeout covers only the TCP part).
    static func connect(_ location: PostgresLocation, id: Int, timeout: Duration, logger: Logger) async throws -> PostgresConnection {
        let configuration = try location.configuration(timeout: timeout)
        // Not a task group: it would wait for a connect that ignores cancellation. A late connection is closed.
        let waiter = Waiter<CheckedContinuation<PostgresConnection, any Error>>()
        return try await withCheckedThrowingContinuation { continuation in
            waiter.set(continuation)
            Task {
                do {
                    let connection = try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
                    if let waiting = waiter.take() {
                        waiting.resume(returning: connection)
                    } else {
                        try? await connection.close()
                    }
                } catch {
                    waiter.take()?.resume(throwing: error)
                }
            }
            Task {
                try? await Task.sleep(for: timeout)
                waiter.take()?.resume(throwing: PostgresStoreError("no answer within \(timeout)"))
            }
        }
    }

    private func connect() async throws -> PostgresConnection {
        let id = nextConnectionID
        nextConnectionID += 1
        do {
            return try await Self.connect(location, id: id, timeout: options.connectTimeout, logger: logger)
        } catch {
            throw PostgresStoreError("cannot connect to PostgreSQL at \(location.redacted): \(PostgresStoreError.describe(error))")
        }
    }

    /// Runs `body` with the connection to itself, in arrival order, connecting first if there is none. A failure
    /// drops the connection (the next call connects again), so a database that comes back is used again.
    @discardableResult
    private func exclusive<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        let connection = try await openConnection()
        do {
            return try await bounded(connection) { try await body(connection) }
        } catch {
            throw failed(connection, error)
        }
    }

    /// Runs `body` on `connection` and gives up at the statement deadline, closing the connection; the caller never
    /// waits on the connection to fail its own query. It may not: postgres-nio sends a query with `channel.write(_,
    /// promise: nil)`, so a query sent as the channel closes (a server error tearing it down, say) is dropped with
    /// its promise and never answered. Seen after `kill -9` of the primary's postmaster: a ROLLBACK sent after the
    /// server's FATAL error waited forever and stopped every write of the node (bench/failover.sh).
    private func bounded<T: Sendable>(_ connection: PostgresConnection, _ body: @escaping @Sendable () async throws -> T) async throws -> T
    {
        let deadline = options.statementTimeout
        let logger = self.logger
        let timer = Waiter<Task<Void, Never>>()
        let result: Result<T, any Error> = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<T, any Error>, Never>) in
            let outcome = Waiter<CheckedContinuation<Result<T, any Error>, Never>>()
            outcome.set(continuation)
            timer.set(
                Task {
                    guard (try? await Task.sleep(for: deadline)) != nil, let waiting = outcome.take() else { return }
                    logger.warning("a PostgreSQL call took longer than \(deadline); closing its connection")
                    Task { try? await connection.close() }
                    waiting.resume(returning: .failure(PostgresStoreError("PostgreSQL did not answer within \(deadline)")))
                })
            Task {
                let value: Result<T, any Error>
                do { value = .success(try await body()) } catch { value = .failure(error) }
                timer.take()?.cancel()
                outcome.take()?.resume(returning: value)
            }
        }
        return try result.get()
    }

    /// Whether `operation` finished within `limit` (without waiting for an operation that hangs).
    static func within(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> Void) async -> Bool {
        let waiter = Waiter<CheckedContinuation<Bool, Never>>()
        return await withCheckedContinuation { continuation in
            waiter.set(continuation)
            Task {
                let ok = (try? await operation()) != nil
                waiter.take()?.resume(returning: ok)
            }
            Task {
                try? await Task.sleep(for: limit)
                waiter.take()?.resume(returning: false)
            }
        }
    }

    /// Takes the connection for this caller alone (callers queue in arrival order).
    private func acquire() async {
        if busy { await withCheckedContinuation { waiting.append($0) } }
        busy = true
    }

    private func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }

    private func openConnection() async throws -> PostgresConnection {
        if let open = self.connection, !open.isClosed { return open }
        let connection = try await connect()
        self.connection = connection
        return connection
    }

    /// Drops a connection that failed (the next call connects again; the server rolls back what it had open) and
    /// says what went wrong. Always dropped: after an error its state (a half-read row stream, a transaction) is
    /// not worth trusting, and a reconnect is cheap next to a wrong answer.
    private func failed(_ connection: PostgresConnection, _ error: any Error) -> any Error {
        drop(connection)
        return error is PostgresStoreError || error is CairnError || error is StoreDamage
            ? error : PostgresStoreError(PostgresStoreError.describe(error))
    }

    /// Forgets `connection` and closes it without waiting: a close, like any query, can wait forever on a dying one.
    private func drop(_ connection: PostgresConnection) {
        if self.connection === connection { self.connection = nil }
        Task { try? await connection.close() }
    }

    /// Ends a transaction that failed or is abandoned: ROLLBACK within the statement deadline, else the connection is
    /// dropped (the server rolls back a transaction whose connection ended). A query sent on a connection that a
    /// server error is tearing down can wait forever in postgres-nio: seen after `kill -9` of the primary's postmaster,
    /// where it stopped every write of the node (bench/failover.sh).
    private func rollback(_ connection: PostgresConnection) async {
        guard !connection.isClosed else { return drop(connection) }
        let logger = self.logger
        let rolledBack = await Self.within(options.statementTimeout) { try await connection.query("ROLLBACK", logger: logger) }
        if !rolledBack { drop(connection) }
    }

    /// The write transaction `lockForWrite` opened: it holds the connection, and the clock's row lock, until the
    /// writer's `append` commits it or `abandonWrite` rolls it back.
    private var locked: (connection: PostgresConnection, clock: Clock)?

    /// What `cairn_lock` read under the clock's lock.
    struct Clock: Sendable {
        var revision: Int64
        var epoch: String
        var term: Int64?
        var auditHead: (sequence: UInt64, hash: String)
    }

    /// Takes the clock's lock inside the caller's transaction (`cairn_lock`) and returns the clock with the entries
    /// after `after` as they stand once the lock is held.
    static func lock(
        after: Int64, node: String, timeout: Double, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (Clock, [ChangeLogEntry]) {
        var clock = Clock(revision: 0, epoch: "", term: nil, auditHead: (0, AuditChain.genesis))
        var entries: [ChangeLogEntry] = []
        for try await (revision, epoch, term, sequences, found, auditSeq, auditHash) in try await connection.query(
            "SELECT revision, epoch, term, seqs, entries, audit_seq, audit_hash FROM cairn_lock(\(after), \(node), \(timeout))",
            logger: logger
        ).decode((Int64, String, Int64?, [Int64], [ByteBuffer], Int64?, String?).self) {
            clock = Clock(
                revision: revision, epoch: epoch, term: term, auditHead: (UInt64(clamping: auditSeq ?? 0), auditHash ?? AuditChain.genesis))
            entries = try Self.decode(sequences, found)
        }
        return (clock, entries)
    }

    public func lockForWrite(after sequence: UInt64) async throws -> [ChangeLogEntry]? {
        await acquire()
        var opened: PostgresConnection?
        do {
            let connection = try await openConnection()
            opened = connection
            let logger = self.logger
            let epoch = self.epoch
            let cursor = Int64(clamping: sequence)
            let node = self.node
            let timeout = options.memberTimeoutSeconds
            let membership = self.membership
            let (clock, newer) = try await bounded(connection) { () async throws -> (Clock, [ChangeLogEntry]?) in
                try await connection.query("BEGIN", logger: logger)
                let (clock, found) = try await Self.lock(after: cursor, node: node, timeout: timeout, connection, logger)
                // This node's term as the database holds it right now (nil: not live), for fencing divided work.
                membership?.update(lockedTerm: clock.term.map { UInt64(clamping: $0) })
                if let epoch, epoch != clock.epoch { return (clock, nil) }
                if clock.revision < cursor { return (clock, nil) }
                // Whole and contiguous, or the log was pruned past this node: then it reloads.
                let whole =
                    found.isEmpty
                    ? clock.revision == cursor : found.first?.sequence == sequence + 1 && Int64(found.count) == clock.revision - cursor
                return (clock, whole ? found : nil)
            }
            let revision = clock.revision
            membership?.update(databaseRevision: UInt64(clamping: revision))
            guard let newer else {
                await rollback(connection)
                release()
                return nil
            }
            locked = (connection, clock)
            return newer
        } catch {
            // No ROLLBACK on a connection that failed: dropping it ends the transaction and frees the clock's lock.
            let wrapped = opened.map { failed($0, error) } ?? error
            release()
            throw wrapped
        }
    }

    public func abandonWrite() async {
        guard let held = locked else { return }
        locked = nil
        await rollback(held.connection)
        release()
    }

    /// Writes and commits inside the transaction `lockForWrite` opened: the clock is locked, nothing can conflict.
    private func commitLocked(
        _ held: (connection: PostgresConnection, clock: Clock), _ entries: [ChangeLogEntry], _ audit: [AuditEntry], writes: [Set<String>?]
    ) async throws -> AppendOutcome {
        locked = nil
        defer { release() }
        let connection = held.connection
        let logger = self.logger
        let membership = self.membership
        let committed = self.committed
        let sent = Waiter<Bool>()
        do {
            try await bounded(connection) {
                let next = try await Self.write(entries, audit: audit, writes: writes, under: held.clock, connection, logger)
                membership?.update(databaseRevision: UInt64(clamping: next))
                sent.set(true)
                try await connection.query("COMMIT", logger: logger)
                committed.raise(to: next, epoch: held.clock.epoch)
            }
            return .committed
        } catch {
            let cause = failed(connection, error)
            guard sent.take() == true else { throw cause }
            // The COMMIT was sent and no answer came: the change may be in the database. Say so; a later look at the
            // log adopts it if it is there.
            throw CairnError(
                .serviceUnavailable,
                "The database did not confirm the commit (\(PostgresStoreError.describe(cause))); the change may or may not have been stored. Read it back before retrying."
            )
        }
    }

    @discardableResult
    /// A failure drops the connection (`exclusive`), which rolls the transaction back.
    private func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let logger = self.logger
        return try await exclusive { connection in
            try await connection.query("BEGIN", logger: logger)
            let value = try await body(connection)
            try await connection.query("COMMIT", logger: logger)
            return value
        }
    }

    // MARK: Schema

    private func migrate(create: Bool) async throws {
        let logger = self.logger
        let known = Self.migrations.count
        for _ in 0...known where create {
            let done: Bool = try await transaction { connection in
                for try await _ in try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger) {}
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS cairn_schema (version INT PRIMARY KEY, applied TIMESTAMPTZ NOT NULL DEFAULT now())",
                    logger: logger)
                var version = 0
                for try await (value) in try await connection.query("SELECT coalesce(max(version), 0) FROM cairn_schema", logger: logger)
                    .decode(Int.self)
                {
                    version = value
                }
                if version > known {
                    throw PostgresStoreError(
                        "the database's Cairn schema is version \(version), newer than this binary's \(known): upgrade Cairn, or point it at another database"
                    )
                }
                guard version < known else { return true }
                for statement in Self.migrations[version] {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO cairn_schema (version) VALUES (\(version + 1))", logger: logger)
                logger.info("migrated the PostgreSQL schema", metadata: ["version": "\(version + 1)"])
                return false
            }
            if done { break }
        }
        epoch = try await exclusive { connection in
            var exists = false
            for try await found in try await connection.query("SELECT to_regclass('cairn_clock') IS NOT NULL", logger: logger).decode(
                Bool.self)
            {
                exists = found
            }
            guard exists else { throw PostgresStoreError("the database \(self.location.redacted) holds no Cairn registry") }
            var epoch = ""
            for try await value in try await connection.query("SELECT epoch FROM cairn_clock WHERE id = 1", logger: logger).decode(
                String.self)
            {
                epoch = value
            }
            return epoch
        }
    }

    /// Enters this node in the membership table (times by the database's clock).
    private func register() async throws {
        try await heartbeat()
    }

    /// Renews this node's row (by the database's clock) and records its membership term: the same term while the
    /// row never expired, the next one when it had (see `ClusterMembership.View.term`).
    static func heartbeat(node: String, revision: Int64?, timeout: Double) -> PostgresQuery {
        if let revision {
            return """
                INSERT INTO cairn_nodes AS n (id, revision) VALUES (\(node), \(revision)) ON CONFLICT (id) DO UPDATE
                SET term = CASE WHEN n.seen <= now() - make_interval(secs => \(timeout)) THEN n.term + 1 ELSE n.term END,
                    seen = now(), revision = excluded.revision
                RETURNING id, term
                """
        }
        return """
            INSERT INTO cairn_nodes AS n (id) VALUES (\(node)) ON CONFLICT (id) DO UPDATE
            SET term = CASE WHEN n.seen <= now() - make_interval(secs => \(timeout)) THEN n.term + 1 ELSE n.term END, seen = now()
            RETURNING id, term
            """
    }

    private func heartbeat() async throws {
        let logger = self.logger
        let query = Self.heartbeat(node: node, revision: nil, timeout: options.memberTimeoutSeconds)
        let term: Int64 = try await exclusive { connection in
            var term: Int64 = 1
            for try await (_, value) in try await connection.query(query, logger: logger).decode((String, Int64).self) { term = value }
            return term
        }
        membership?.update(term: UInt64(clamping: term))
    }

    // MARK: Following

    private func startListening() {
        let location = self.location
        let options = self.options
        let logger = self.logger
        let wake = self.wake
        let hearing = self.hearing
        let committed = self.committed
        listener = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Beneath notifications: a look at the clock every poll interval.
                    while !Task.isCancelled {
                        try? await Task.sleep(for: options.pollInterval)
                        wake.yield()
                    }
                }
                group.addTask {
                    var id = 1_000_000
                    while !Task.isCancelled {
                        id += 1
                        do {
                            let connection = try await Self.connect(location, id: id, timeout: options.connectTimeout, logger: logger)
                            // After any (re)connect the node catches up: notifications sent meanwhile are lost. The
                            // wake-up for it comes once LISTEN is active (`follow`): one before could read the log
                            // ahead of a commit whose notification then never reached this session.
                            hearing.reset()
                            await Self.follow(connection, wake: wake, hearing: hearing, committed: committed, logger: logger)
                            Task { try? await connection.close() }
                        } catch {
                            if Task.isCancelled { break }
                            logger.debug("cannot open the LISTEN connection", metadata: ["error": "\(PostgresStoreError.describe(error))"])
                        }
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// One LISTEN session: wakes the writer on every notification, until the session fails, the poll finds it deaf
    /// (`Hearing`: a socket to a dead server may never error), or the task is cancelled. It never waits on the
    /// connection to end the session itself: a LISTEN sent as the channel closes can wait forever.
    static func follow(
        _ connection: PostgresConnection, wake: AsyncStream<Void>.Continuation, hearing: Hearing, committed: Committed, logger: Logger
    ) async {
        let session = Waiter<CheckedContinuation<Void, Never>>()
        let tasks = Waiter<(Task<Void, Never>, Task<Void, Never>)>()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                session.set(done)
                let listening = Task {
                    do {
                        try await connection.listen(on: Self.channel) { notifications in
                            hearing.started()
                            wake.yield()  // the catch-up after (re)connecting, now that nothing committed is missed
                            for try await notification in notifications {
                                hearing.heard(notification.payload)
                                if !committed.covers(notification.payload) { wake.yield() }
                                if Task.isCancelled { break }
                            }
                        }
                    } catch {
                        if !Task.isCancelled {
                            logger.warning(
                                "the LISTEN connection to PostgreSQL ended; reconnecting",
                                metadata: ["error": "\(PostgresStoreError.describe(error))"])
                        }
                    }
                    session.take()?.resume()
                }
                // No query of its own (an idle node costs the database only its poll): the session is given up when
                // the poll keeps finding commits that no notification announced (`Hearing`).
                let liveness = Task {
                    while (try? await Task.sleep(for: .milliseconds(200))) != nil {
                        if hearing.deaf {
                            logger.warning("the LISTEN connection to PostgreSQL missed notifications the poll found; reconnecting")
                            break
                        }
                    }
                    session.take()?.resume()
                }
                tasks.set((listening, liveness))
                if Task.isCancelled { session.take()?.resume() }
            }
        } onCancel: {
            session.take()?.resume()
        }
        if let (listening, liveness) = tasks.take() {
            listening.cancel()
            liveness.cancel()
        }
    }

    // MARK: RegistryStore

    public func load() async throws -> StoredRegistry {
        let logger = self.logger
        return try await exclusive { connection in
            var checkpoint: RegistryState?
            for try await (buffer) in try await connection.query("SELECT state FROM cairn_checkpoint WHERE id = 1", logger: logger).decode(
                ByteBuffer.self)
            {
                checkpoint = try RegistryCodec.decodeState(Data(buffer.readableBytesView))
            }
            let after = Int64(clamping: checkpoint?.sequence ?? 0)
            let entries = try await Self.entries(after: after, connection, logger)
            if let first = entries.first, first.sequence != UInt64(clamping: after) + 1 {
                throw StoreDamage(
                    "the PostgreSQL change log starts at \(first.sequence), after the checkpoint at \(after): entries are missing")
            }
            return StoredRegistry(checkpoint: checkpoint, entries: entries)
        }
    }

    static func entries(after sequence: Int64, _ connection: PostgresConnection, _ logger: Logger) async throws -> [ChangeLogEntry] {
        var entries: [ChangeLogEntry] = []
        let rows = try await connection.query(
            "SELECT seq, entry FROM cairn_change_log WHERE seq > \(sequence) ORDER BY seq", logger: logger)
        for try await (seq, buffer) in rows.decode((Int64, ByteBuffer).self) {
            entries.append(try RegistryCodec.decodeEntry(Data(buffer.readableBytesView), at: UInt64(clamping: seq)))
        }
        return entries
    }

    /// Entries as the log's rows hold them: each at its row's sequence (entries are stored without their position).
    static func decode(_ sequences: [Int64], _ blobs: [ByteBuffer]) throws -> [ChangeLogEntry] {
        guard sequences.count == blobs.count else {
            throw PostgresStoreError("the change log returned \(sequences.count) sequences for \(blobs.count) entries")
        }
        return try zip(sequences, blobs).map { try RegistryCodec.decodeEntry(Data($1.readableBytesView), at: UInt64(clamping: $0)) }
    }

    /// Appends without looking at the clock (a sequence already in the log still fails): for tools that own the
    /// numbering, such as tests. Nodes append conditionally.
    public func append(_ entries: [ChangeLogEntry], audit: [AuditEntry]) async throws {
        _ = try await write(entries, audit: audit, expecting: nil, writes: [])
    }

    public func append(_ entries: [ChangeLogEntry], audit: [AuditEntry], expecting: UInt64) async throws -> AppendOutcome {
        try await write(entries, audit: audit, expecting: expecting, writes: [])
    }

    public func append(_ entries: [ChangeLogEntry], audit: [AuditEntry], expecting: UInt64, writes: [Set<String>?]) async throws
        -> AppendOutcome
    {
        try await write(entries, audit: audit, expecting: expecting, writes: writes)
    }

    private func write(_ entries: [ChangeLogEntry], audit: [AuditEntry], expecting: UInt64?, writes: [Set<String>?]) async throws
        -> AppendOutcome
    {
        let logger = self.logger
        if let held = locked { return try await commitLocked(held, entries, audit, writes: writes) }
        let epoch = self.epoch
        let node = self.node
        let timeout = options.memberTimeoutSeconds
        let membership = self.membership
        let committed = self.committed
        let after = expecting.map { Int64(clamping: $0) } ?? .max
        let (outcome, next): (AppendOutcome, (Int64, String)?) = try await transaction { connection in
            let (clock, newer) = try await Self.lock(after: after, node: node, timeout: timeout, connection, logger)
            membership?.update(databaseRevision: UInt64(clamping: clock.revision))
            if let epoch, epoch != clock.epoch { return (.conflict(newer: nil), nil) }
            if expecting != nil, !entries.isEmpty, clock.revision != after {
                guard clock.revision > after else { return (.conflict(newer: nil), nil) }
                return (.conflict(newer: newer), nil)
            }
            let next = try await Self.write(entries, audit: audit, writes: writes, under: clock, connection, logger)
            membership?.update(databaseRevision: UInt64(clamping: next))
            return (.committed, (next, clock.epoch))
        }
        if let (revision, epoch) = next { committed.raise(to: revision, epoch: epoch) }
        return outcome
    }

    /// Writes a batch in one statement inside the caller's transaction, which holds the clock's lock: the change
    /// rows, the audit records chained after `clock.auditHead`, the clock's advance and its notification. Returns the
    /// clock's new revision.
    static func write(
        _ entries: [ChangeLogEntry], audit: [AuditEntry], writes: [Set<String>?], under clock: Clock, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> Int64 {
        var sequences: [Int64] = []
        var times: [Int64] = []
        var blobs: [ByteBuffer] = []
        sequences.reserveCapacity(entries.count)
        times.reserveCapacity(entries.count)
        blobs.reserveCapacity(entries.count)
        for entry in entries {
            sequences.append(Int64(clamping: entry.sequence))
            times.append(entry.time)
            blobs.append(ByteBuffer(data: try RegistryCodec.encodeUnplaced(entry)))
        }
        let (keys, starts, counts) = Self.flatten(writes, entries: entries.count)
        var head = clock.auditHead
        var auditSequences: [Int64] = []
        var auditTimes: [Int64] = []
        var names: [String] = []
        var principals: [String] = []
        var resources: [String] = []
        var records: [ByteBuffer] = []
        var hashes: [String] = []
        for event in audit {
            let sequence = head.sequence + 1
            let bytes = event.record(sequence: sequence, previousHash: head.hash)
            let hash = SQLiteRegistryStore.chain.hash(bytes)
            auditSequences.append(Int64(clamping: sequence))
            auditTimes.append(event.time)
            names.append(event.eventName)
            principals.append(event.principalsColumn)
            resources.append(event.resourcesColumn)
            records.append(ByteBuffer(bytes: bytes))
            hashes.append(hash)
            head = (sequence, hash)
        }
        let next = max(clock.revision, sequences.max() ?? clock.revision)
        let advanced = next != clock.revision
        let payload = "\(clock.epoch):\(next)"
        // The rows are read to the end: an error (a duplicate sequence, say) comes after the row description, and a
        // row stream left unread would never report it.
        let rows = try await connection.query(
            """
            WITH input AS (SELECT \(sequences)::BIGINT[] AS s, \(times)::BIGINT[] AS t, \(blobs)::BYTEA[] AS e, \(keys)::TEXT[] AS k,
                \(starts)::INT[] AS st, \(counts)::INT[] AS c),
            log AS (INSERT INTO cairn_change_log (seq, time, entry, writes)
                SELECT input.s[i], input.t[i], input.e[i],
                    CASE WHEN input.c[i] < 0 THEN NULL ELSE coalesce(input.k[input.st[i]:input.st[i] + input.c[i] - 1], '{}') END
                FROM input, generate_subscripts(input.s, 1) AS i),
            audit AS (INSERT INTO cairn_audit_log (seq, time, event_name, principals, resources, record, hash)
                SELECT * FROM unnest(\(auditSequences)::BIGINT[], \(auditTimes)::BIGINT[], \(names)::TEXT[], \(principals)::TEXT[],
                    \(resources)::TEXT[], \(records)::BYTEA[], \(hashes)::TEXT[])),
            clock AS (UPDATE cairn_clock SET revision = \(next) WHERE id = 1 AND \(advanced))
            SELECT pg_notify(\(Self.channel), \(payload)) WHERE \(advanced)
            """, logger: logger)
        for try await _ in rows {}
        return next
    }

    /// The keys each entry writes as the log's `writes` column takes them: every key in one array, and each entry's
    /// first index (from 1) and count (-1: any key, stored as NULL). Without one key set per entry, every entry is "any".
    static func flatten(_ writes: [Set<String>?], entries: Int) -> (keys: [String], starts: [Int32], counts: [Int32]) {
        guard writes.count == entries else { return ([], Array(repeating: 1, count: entries), Array(repeating: -1, count: entries)) }
        var keys: [String] = []
        var starts: [Int32] = []
        var counts: [Int32] = []
        starts.reserveCapacity(entries)
        counts.reserveCapacity(entries)
        for written in writes {
            starts.append(Int32(clamping: keys.count + 1))
            guard let written else {
                counts.append(-1)
                continue
            }
            counts.append(Int32(clamping: written.count))
            keys += written
        }
        return (keys, starts, counts)
    }

    public nonisolated var proposes: Bool { true }

    /// One round trip (`CALL cairn_propose`, which commits inside the procedure): the lock is taken, checked and
    /// given back by the database, so no client round trip is made while it is held.
    public func propose(_ proposal: Proposal) async throws -> ProposalOutcome {
        if locked != nil { await abandonWrite() }
        var times: [Int64] = []
        var blobs: [ByteBuffer] = []
        times.reserveCapacity(proposal.entries.count)
        blobs.reserveCapacity(proposal.entries.count)
        for entry in proposal.entries {
            times.append(entry.time)
            blobs.append(ByteBuffer(data: try RegistryCodec.encodeUnplaced(entry)))
        }
        let (keys, starts, counts) = Self.flatten(proposal.writes, entries: proposal.entries.count)
        let audit = proposal.audit
        let auditTimes = audit.map(\.time)
        let names = audit.map(\.eventName)
        let principals = audit.map(\.principalsColumn)
        let resources = audit.map(\.resourcesColumn)
        let members = audit.map { ByteBuffer(bytes: $0.members) }
        let reads = proposal.reads.map { Array($0) } ?? []
        let readAll = proposal.reads == nil
        let terms = proposal.terms.map { Int64(clamping: $0.term) }
        let admitted = proposal.terms.map(\.admitted)
        let after = Int64(clamping: proposal.after)
        let node = self.node
        let timeout = options.memberTimeoutSeconds
        let epoch = self.epoch
        let logger = self.logger
        let call: PostgresQuery = """
            CALL cairn_propose(\(after), \(node), \(timeout), \(epoch), \(reads)::TEXT[], \(readAll), \(terms)::BIGINT[],
                \(admitted)::BOOLEAN[], \(times)::BIGINT[], \(blobs)::BYTEA[], \(keys)::TEXT[], \(starts)::INT[], \(counts)::INT[],
                \(auditTimes)::BIGINT[], \(names)::TEXT[], \(principals)::TEXT[], \(resources)::TEXT[], \(members)::BYTEA[],
                NULL, NULL, NULL, NULL, NULL, NULL)
            """
        typealias Answer = (outcome: String, revision: Int64, epoch: String, term: Int64?, sequences: [Int64], entries: [ByteBuffer])
        await acquire()
        let connection: PostgresConnection
        do {
            connection = try await openConnection()
        } catch {
            release()
            throw error
        }
        let answer: Answer
        do {
            answer = try await bounded(connection) { () async throws -> Answer in
                var answer: Answer?
                for try await row in try await connection.query(call, logger: logger).decode(
                    (String, Int64, String, Int64?, [Int64], [ByteBuffer]).self)
                {
                    answer = row
                }
                guard let answer else { throw PostgresStoreError("cairn_propose returned no row") }
                return answer
            }
        } catch {
            let cause = failed(connection, error)
            release()
            // A refusal from the server (the procedure raised before its COMMIT) stored nothing. A call that got no
            // answer may have committed, as the procedure commits before it answers: say so; a later look at the log
            // adopts it if it is there.
            if let refused = error as? PSQLError, refused.serverInfo != nil { throw cause }
            throw CairnError(
                .serviceUnavailable,
                "The database did not confirm the commit (\(PostgresStoreError.describe(cause))); the change may or may not have been stored. Read it back before retrying."
            )
        }
        release()
        membership?.update(lockedTerm: answer.term.map { UInt64(clamping: $0) })
        membership?.update(databaseRevision: UInt64(clamping: answer.revision))
        if let epoch, epoch != answer.epoch { return .behind }
        switch answer.outcome {
        case "committed":
            let next = answer.revision + Int64(proposal.entries.count)
            membership?.update(databaseRevision: UInt64(clamping: next))
            committed.raise(to: next, epoch: answer.epoch)
            return .committed(newer: try Self.decode(answer.sequences, answer.entries))
        case "conflict":
            return .conflict(newer: try Self.decode(answer.sequences, answer.entries))
        default:
            return .behind
        }
    }

    public func entries(after sequence: UInt64) async throws -> [ChangeLogEntry]? {
        let logger = self.logger
        let epoch = self.epoch
        let node = self.node
        let now = ContinuousClock.now
        let beat = lastHeartbeat.map { now - $0 >= options.heartbeatInterval } ?? true
        let timeout = options.memberTimeoutSeconds
        let cursor = Int64(clamping: sequence)
        let renew = Self.heartbeat(node: node, revision: cursor, timeout: timeout)
        let (revision, current, oldest, live, term): (Int64, String, Int64?, String?, Int64?) = try await exclusive { connection in
            // One statement per look at the clock; every heartbeat interval it also renews this node's row and reads
            // which nodes are live (by the database's clock).
            var query: PostgresQuery =
                "SELECT revision, epoch, (SELECT min(seq) FROM cairn_change_log), NULL::text, NULL::bigint, pg_is_in_recovery() FROM cairn_clock WHERE id = 1"
            if beat {
                query = "WITH beat AS ("
                query.sql += renew.sql
                query.binds = renew.binds
                query.sql += """
                    ) SELECT c.revision, c.epoch, (SELECT min(seq) FROM cairn_change_log),
                        (SELECT string_agg(id, ' ') FROM cairn_nodes WHERE seen > now() - make_interval(secs => $\(renew.binds.count + 1))
                            AND id NOT IN (SELECT id FROM beat)), (SELECT term FROM beat), pg_is_in_recovery()
                    FROM cairn_clock c WHERE c.id = 1
                    """
                query.binds.append(timeout, context: .default)
            }
            var row: (Int64, String, Int64?, String?, Int64?) = (0, "", nil, nil, nil)
            var standby = false
            for try await (revision, epoch, oldest, live, term, recovering) in try await connection.query(query, logger: logger).decode(
                (Int64, String, Int64?, String?, Int64?, Bool).self)
            {
                row = (revision, epoch, oldest, live, term)
                standby = recovering
            }
            // A proxy in the middle of a failover can hand this connection to a server that is not (or no longer) the
            // primary; its log may be behind. Drop it: the next call connects again, through the proxy, to the primary.
            if standby {
                throw PostgresStoreError("connected to a PostgreSQL standby, not the primary; reconnecting")
            }
            return row
        }
        membership?.update(databaseRevision: UInt64(clamping: revision))
        hearing.polled(revision: revision, at: now, grace: options.pollInterval)
        if beat {
            lastHeartbeat = now
            membership?.update(live: (live ?? "").split(separator: " ").map(String.init))
            if let term { membership?.update(term: UInt64(clamping: term)) }
        }
        if let epoch, epoch != current { return nil }
        if revision == cursor { return [] }
        if revision < cursor { return nil }
        // Entries up to `cursor` may be pruned; the next one must still be there.
        guard let oldest, oldest <= cursor + 1 else { return nil }
        return try await exclusive { connection in try await Self.entries(after: cursor, connection, logger) }
    }

    public func auditRecords(_ query: AuditQuery) async throws -> AuditPage {
        let logger = self.logger
        var clauses: [String] = []
        var binds = PostgresBindings()
        func bind(_ clause: String, _ value: some PostgresThrowingDynamicTypeEncodable) throws {
            try binds.append(value)
            clauses.append(clause.replacingOccurrences(of: "?", with: "$\(binds.count)"))
        }
        if let v = query.startTime { try bind("time >= ?", v) }
        if let v = query.endTime { try bind("time < ?", v) }
        if let v = query.eventName { try bind("event_name = ?", v) }
        if let v = query.principal { try bind("strpos(principals, ?) > 0", " \(v) ") }
        if let v = query.resource { try bind("strpos(resources, ?) > 0", v.hasPrefix("arn:") ? " \(v) " : "/\(v) ") }
        if let v = query.before { try bind("seq < ?", Int64(clamping: v)) }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        binds.append(Int64(max(0, query.limit) + 1))
        let sql = "SELECT seq, time, record, hash FROM cairn_audit_log \(filter) ORDER BY seq DESC LIMIT $\(binds.count)"
        let statement = PostgresQuery(unsafeSQL: sql, binds: binds)
        var records = try await exclusive { connection in
            try await Self.records(try await connection.query(statement, logger: logger))
        }
        if records.count > query.limit {
            records.removeLast()
            return AuditPage(records: records, next: records.last?.sequence)
        }
        return AuditPage(records: records, next: nil)
    }

    static func records(_ rows: PostgresRowSequence) async throws -> [AuditRecord] {
        var records: [AuditRecord] = []
        for try await (seq, time, record, hash) in rows.decode((Int64, Int64, ByteBuffer, String).self) {
            records.append(AuditRecord(sequence: UInt64(clamping: seq), time: time, record: Array(record.readableBytesView), hash: hash))
        }
        return records
    }

    public func auditRecords(after: UInt64, limit: Int) async throws -> [AuditRecord] {
        let logger = self.logger
        let cursor = Int64(clamping: after)
        let count = Int64(max(0, limit))
        return try await exclusive { connection in
            try await Self.records(
                try await connection.query(
                    "SELECT seq, time, record, hash FROM cairn_audit_log WHERE seq > \(cursor) ORDER BY seq LIMIT \(count)", logger: logger)
            )
        }
    }

    public func verifyAudit() async throws -> AuditVerification {
        let logger = self.logger
        let (anchor, records) = try await exclusive { connection in
            var anchor = AuditChain.genesis
            for try await hash in try await connection.query("SELECT hash FROM cairn_audit_anchor WHERE id = 1", logger: logger).decode(
                String.self)
            {
                anchor = hash
            }
            let records = try await Self.records(
                try await connection.query("SELECT seq, time, record, hash FROM cairn_audit_log ORDER BY seq", logger: logger))
            return (anchor, records)
        }
        return SQLiteRegistryStore.chain.verify(records, anchor: anchor)
    }

    public func pruneAudit(olderThan time: Int64) async throws -> Int {
        let logger = self.logger
        return try await transaction { connection in
            // The clock's lock: no node extends the chain while its start moves.
            for try await _ in try await connection.query("SELECT revision FROM cairn_clock WHERE id = 1 FOR UPDATE", logger: logger) {}
            var cut: Int64?
            var hash = ""
            for try await (seq, value) in try await connection.query(
                "SELECT seq, hash FROM cairn_audit_log WHERE seq = (SELECT max(seq) FROM cairn_audit_log WHERE time < \(time))",
                logger: logger
            ).decode((Int64, String).self) {
                cut = seq
                hash = value
            }
            guard let cut else { return 0 }
            var count = 0
            for try await n in try await connection.query("SELECT count(*) FROM cairn_audit_log WHERE seq <= \(cut)", logger: logger)
                .decode(
                    Int64.self)
            {
                count = Int(n)
            }
            try await connection.query(
                "INSERT INTO cairn_audit_anchor (id, seq, hash) VALUES (1, \(cut), \(hash)) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                logger: logger)
            try await connection.query("DELETE FROM cairn_audit_log WHERE seq <= \(cut)", logger: logger)
            return count
        }
    }

    /// Keeps the newest checkpoint any node wrote, and drops change-log entries it covers that are older than the
    /// retention window (nodes that were away longer reload the whole state).
    public nonisolated func checkpoint(_ state: RegistryState) async throws {
        let data = try RegistryCodec.encode(state)
        try await write(checkpoint: data, through: Int64(clamping: state.sequence))
    }

    private func write(checkpoint data: Data, through seq: Int64) async throws {
        let logger = self.logger
        let retention = options.logRetention
        let keepAfter = Registry.systemMilliseconds() - Int64(retention.components.seconds) * 1000
        let timeout = options.memberTimeoutSeconds
        try await transaction { connection in
            try await connection.query(
                """
                INSERT INTO cairn_checkpoint (id, seq, state) VALUES (1, \(seq), \(ByteBuffer(data: data)))
                ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, state = excluded.state WHERE cairn_checkpoint.seq < excluded.seq
                """, logger: logger)
            try await connection.query(
                """
                DELETE FROM cairn_change_log WHERE seq <= (SELECT seq FROM cairn_checkpoint WHERE id = 1) AND time < \(keepAfter)
                    AND seq <= coalesce((SELECT min(revision) FROM cairn_nodes WHERE seen > now() - make_interval(secs => \(timeout))), seq)
                """,
                logger: logger)
        }
    }

    /// A real commit: the node's heartbeat row, timed by the database's clock.
    public func probe() async throws {
        try await heartbeat()
    }

    /// Takes or renews the lease on singleton job `name` for `duration` (by the database's clock): true while this
    /// node holds it. Another node takes it over only once it expired unrenewed.
    public func lease(_ name: String, for duration: Duration) async throws -> Bool {
        let logger = self.logger
        let node = self.node
        let seconds = Double(duration.components.seconds)
        return try await exclusive { connection in
            var held = false
            for try await _ in try await connection.query(
                """
                INSERT INTO cairn_leases AS l (name, holder, expires) VALUES (\(name), \(node), now() + make_interval(secs => \(seconds)))
                ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
                WHERE l.holder = excluded.holder OR l.expires <= now()
                RETURNING holder
                """, logger: logger
            ).decode(String.self) {
                held = true
            }
            return held
        }
    }

    public func close() async throws {
        listener?.cancel()
        listener = nil
        wake.finish()
        if let connection {
            self.connection = nil
            try? await connection.close()
        }
    }
}

extension AuditEntry {
    /// The columns audit look-ups search for ` value ` (`strpos`): the values, each between spaces.
    var principalsColumn: String { " " + principals.map { "\($0) " }.joined() }
    var resourcesColumn: String { " " + resources.joined(separator: " ") + " " }
}

/// A failure of the PostgreSQL store, in words an operator can act on (PostgresNIO's own errors print nothing
/// useful, to keep queries out of logs).
public struct PostgresStoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PostgresStoreError { return error.description }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        return "\(error)"
    }
}

/// A continuation that exactly one of several racing tasks resumes.
final class Waiter<Value: Sendable>: Sendable {
    private let slot = Mutex<Value?>(nil)
    func set(_ value: Value) { slot.withLock { $0 = value } }
    func take() -> Value? { slot.withLock { $0.take() } }
}

/// Whether the LISTEN session still hears the database. A socket to a server that went away without a word (a host
/// that died, a partition) may never fail, and a session a proxy moved may listen on a server nobody writes to; both
/// look idle. So each poll compares the clock with the newest revision a notification announced: a revision that is
/// still unannounced one poll interval after a poll first found it means the session is deaf, and it is reconnected
/// (the node has caught up from the poll meanwhile). An idle database announces nothing and needs nothing announced.
package final class Hearing: Sendable {
    private struct State {
        var announced: Int64 = 0
        var armed = false
        var listening = false
        var unannounced: (revision: Int64, since: ContinuousClock.Instant)?
        var deaf = false
    }
    private let state = Mutex(State())

    package init() {}

    /// A new session: nothing heard yet, so no verdict until a poll has a baseline.
    package func reset() {
        state.withLock { $0 = State() }
    }

    /// The session is listening: from here on every commit is announced to it.
    package func started() {
        state.withLock {
            $0 = State()
            $0.armed = true
        }
    }

    /// A notification's payload, `epoch:revision`.
    package func heard(_ payload: String) {
        guard let (_, revision) = Self.parse(payload) else { return }
        state.withLock { $0.announced = max($0.announced, revision) }
    }

    /// A notification's payload split into its epoch and revision; nil when it is not one.
    package static func parse(_ payload: String) -> (epoch: Substring, revision: Int64)? {
        guard let colon = payload.lastIndex(of: ":"), let revision = Int64(payload[payload.index(after: colon)...]) else { return nil }
        return (payload[..<colon], revision)
    }

    /// The clock as a poll read it.
    package func polled(revision: Int64, at now: ContinuousClock.Instant, grace: Duration) {
        state.withLock { state in
            guard state.armed else { return }
            if !state.listening {
                // The first poll of a session sets the baseline: what committed before it was not announced to it.
                state.listening = true
                state.announced = max(state.announced, revision)
                return
            }
            guard revision > state.announced else {
                state.unannounced = nil
                return
            }
            if let pending = state.unannounced, pending.revision > state.announced {
                if now - pending.since >= grace { state.deaf = true }
            } else {
                state.unannounced = (revision, now)
            }
        }
    }

    package var deaf: Bool { state.withLock { $0.deaf } }
}

/// The newest revision this node committed itself, in its epoch. Its own notifications (and any older one) announce
/// nothing it has not applied: every batch is decided after catching up under the clock's lock, so the follower
/// need not be woken for them. A look at the clock each would cost the writer's connection a round trip per batch.
package final class Committed: Sendable {
    private let newest = Mutex<(epoch: String, revision: Int64)?>(nil)

    package init() {}

    package func raise(to revision: Int64, epoch: String) {
        newest.withLock { value in
            if let current = value, current.epoch == epoch, current.revision >= revision { return }
            value = (epoch, revision)
        }
    }

    /// Whether the notification `payload` announces only what this node committed (or older).
    package func covers(_ payload: String) -> Bool {
        guard let (epoch, revision) = Hearing.parse(payload) else { return false }
        return newest.withLock { value in value.map { $0.epoch == epoch && revision <= $0.revision } ?? false }
    }
}
