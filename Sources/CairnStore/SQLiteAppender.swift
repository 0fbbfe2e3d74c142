import NIOPosix
import SQLiteNIO
import Synchronization
// SQLite's C API as sqlite-nio vendors it (its symbols prefixed `sqlite_nio_`). sqlite-nio imports this module
// publicly, so it is visible to whoever imports SQLiteNIO; SQLiteNIO itself runs one statement per thread-pool job.
import VaporCSQLite

/// The store's commit path: a second connection to the database, on a thread of its own, that runs a whole append
/// transaction (`BEGIN IMMEDIATE`, the change-log rows, the audit rows, `COMMIT` with its fsync) as one job with
/// statements prepared once. Through SQLiteNIO the same transaction was four jobs, each a round trip through a shared
/// thread pool and an event loop: twelve thread wake-ups per batch, which cost more CPU than SQLite's own work.
///
/// `@unchecked Sendable`: its mutable state (the handle and the prepared statements) is touched only inside jobs on
/// `thread`, a pool of one thread that runs them one at a time, so never from two threads at once.
final class SQLiteAppender: @unchecked Sendable {
    /// One change-log row.
    struct Change: Sendable {
        var sequence: Int64
        var time: Int64
        var entry: [UInt8]
    }

    /// One audit-log row, numbered and chained by the caller.
    struct Audit: Sendable {
        var sequence: Int64
        var time: Int64
        var eventName: String
        var principals: String
        var resources: String
        var record: [UInt8]
        var hash: String
    }

    /// WAL pages past which a commit asks the copier to copy the WAL into the database file: SQLite's default for
    /// the automatic checkpoint, which ran inside the commit that crossed it.
    static let copyAfterPages: Int32 = 1_000
    /// WAL pages past which the commit connection copies the WAL itself, right after its commit. The copier's copies
    /// run while appends land, and the WAL restarts from its start only once a copy caught up with it; under a
    /// sustained load this bounds the file where the copier could not.
    static let copyHereAfterPages: Int32 = 4_000

    private let thread: NIOThreadPool
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    let copier: SQLiteWALCopier

    private init(thread: NIOThreadPool, copier: SQLiteWALCopier) {
        self.thread = thread
        self.copier = copier
    }

    /// Opens `path` (which the store has opened and migrated already) with the store's durability settings:
    /// `synchronous=FULL`, so `COMMIT` returns only after the WAL is fsynced.
    static func open(path: String) async throws -> SQLiteAppender {
        let copier = try await SQLiteWALCopier.open(path: path)
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        let appender = SQLiteAppender(thread: thread, copier: copier)
        do {
            try await thread.runIfActive { try appender.connect(path: path) }
        } catch {
            try? await appender.close()
            throw error
        }
        return appender
    }

    /// Commits the rows in one transaction; on any failure it rolls back and throws, leaving nothing of them stored.
    func commit(changes: [Change], audit: [Audit]) async throws {
        try await thread.runIfActive { try self.transaction(changes: changes, audit: audit) }
    }

    /// The value of a pragma on this connection (tests check the durability settings).
    func pragma(_ name: String) async throws -> String {
        try await thread.runIfActive {
            let statement = try self.statement("PRAGMA \(name)")
            defer { sqlite_nio_sqlite3_reset(statement) }
            guard sqlite_nio_sqlite3_step(statement) == SQLITE_ROW, let text = sqlite_nio_sqlite3_column_text(statement, 0) else {
                throw self.failure("PRAGMA \(name)")
            }
            return String(cString: text)
        }
    }

    func close() async throws {
        try? await thread.runIfActive {
            for statement in self.statements.values { sqlite_nio_sqlite3_finalize(statement) }
            self.statements = [:]
            if let handle = self.handle { sqlite_nio_sqlite3_close_v2(handle) }
            self.handle = nil
        }
        try await thread.shutdownGracefully()
        try await copier.close()
    }

    // MARK: On the appender's thread

    private func connect(path: String) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let status = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK else { throw failure("opening \(path)") }
        // The same settings as the store's own connection: synchronous is per connection, so without it here a
        // commit would not wait for its fsync. journal_mode=WAL is recorded in the file; asserting it costs nothing.
        for pragma in ["journal_mode=WAL", "synchronous=FULL", "busy_timeout=5000", "journal_size_limit=16777216"] {
            try execute("PRAGMA \(pragma)")
        }
        // In place of SQLite's automatic checkpoint (which this hook replaces): it copied the WAL inside the COMMIT
        // that crossed 1,000 pages, so that append waited for the copy and the database file's fsync, about 4 ms on
        // this disk every ~250 commits. The copier does it on its own thread while appends go on.
        let hook: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32 = {
            context, handle, name, pages in
            guard let context else { return SQLITE_OK }
            Unmanaged<SQLiteAppender>.fromOpaque(context).takeUnretainedValue().walHolds(pages, handle: handle, name: name)
            return SQLITE_OK
        }
        sqlite_nio_sqlite3_wal_hook(handle, hook, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Called by SQLite after each commit on this connection, its write lock released, with the WAL's size in pages.
    private func walHolds(_ pages: Int32, handle: OpaquePointer?, name: UnsafePointer<CChar>?) {
        if pages >= Self.copyHereAfterPages {
            // PASSIVE: it never waits; if the copier holds the checkpoint lock it returns at once, and the next
            // commit tries again. No append lands meanwhile, so this copy reaches the WAL's end and the next
            // transaction restarts it.
            sqlite_nio_sqlite3_wal_checkpoint_v2(handle, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
        } else if pages >= Self.copyAfterPages {
            copier.request()
        }
    }

    private func transaction(changes: [Change], audit: [Audit]) throws {
        guard handle != nil else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "the store's commit connection is closed") }
        try execute("BEGIN IMMEDIATE")
        do {
            if !changes.isEmpty {
                let insert = try statement("INSERT INTO change_log (seq, time, entry) VALUES (?, ?, ?)")
                for change in changes {
                    sqlite_nio_sqlite3_bind_int64(insert, 1, change.sequence)
                    sqlite_nio_sqlite3_bind_int64(insert, 2, change.time)
                    try bind(change.entry, at: 3, of: insert)
                    try step(insert, "INSERT INTO change_log")
                }
            }
            if !audit.isEmpty {
                let insert = try statement(
                    "INSERT INTO audit_log (seq, time, event_name, principals, resources, record, hash) VALUES (?, ?, ?, ?, ?, ?, ?)")
                for row in audit {
                    sqlite_nio_sqlite3_bind_int64(insert, 1, row.sequence)
                    sqlite_nio_sqlite3_bind_int64(insert, 2, row.time)
                    try bind(row.eventName, at: 3, of: insert)
                    try bind(row.principals, at: 4, of: insert)
                    try bind(row.resources, at: 5, of: insert)
                    try bind(row.record, at: 6, of: insert)
                    try bind(row.hash, at: 7, of: insert)
                    try step(insert, "INSERT INTO audit_log")
                }
            }
            try execute("COMMIT")
        } catch {
            // A failed COMMIT may have rolled back already; ROLLBACK then fails harmlessly.
            if sqlite_nio_sqlite3_get_autocommit(handle) == 0 { try? execute("ROLLBACK") }
            throw error
        }
    }

    /// The prepared statement for `sql`, prepared on first use and kept.
    private func statement(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        guard sqlite_nio_sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK,
            let statement
        else { throw failure(sql) }
        statements[sql] = statement
        return statement
    }

    private func execute(_ sql: String) throws {
        let statement = try statement(sql)
        defer { sqlite_nio_sqlite3_reset(statement) }
        let status = sqlite_nio_sqlite3_step(statement)
        guard status == SQLITE_DONE || status == SQLITE_ROW else { throw failure(sql) }
    }

    /// Runs an insert; the statement is reset and its bindings cleared whatever happens.
    private func step(_ statement: OpaquePointer, _ what: String) throws {
        let status = sqlite_nio_sqlite3_step(statement)
        sqlite_nio_sqlite3_reset(statement)
        sqlite_nio_sqlite3_clear_bindings(statement)
        guard status == SQLITE_DONE else { throw failure(what, status: status) }
    }

    // Bound with SQLITE_TRANSIENT: SQLite copies the bytes, which live only for the closure.
    private func bind(_ bytes: [UInt8], at index: Int32, of statement: OpaquePointer) throws {
        let status = bytes.withUnsafeBytes { buffer in
            sqlite_nio_sqlite3_bind_blob64(
                statement, index, buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1), UInt64(buffer.count), transient)
        }
        guard status == SQLITE_OK else { throw failure("binding a blob", status: status) }
    }

    private func bind(_ text: String, at index: Int32, of statement: OpaquePointer) throws {
        var text = text
        let status = text.withUTF8 { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                sqlite_nio_sqlite3_bind_text64(
                    statement, index, chars.baseAddress ?? UnsafePointer(bitPattern: 1), UInt64(chars.count), transient, UInt8(SQLITE_UTF8))
            }
        }
        guard status == SQLITE_OK else { throw failure("binding text", status: status) }
    }

    private func failure(_ what: String, status: Int32? = nil) -> SQLiteFailure {
        let message = handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "no connection"
        let code = status ?? handle.map { sqlite_nio_sqlite3_extended_errcode($0) } ?? SQLITE_MISUSE
        return SQLiteFailure(code: code, message: "\(what): \(message)")
    }
}

/// Copies the WAL into the database file (a `PASSIVE` WAL checkpoint: it never blocks a writer or a reader) on a
/// connection and a thread of its own, when the commit connection asks: after a commit that left the WAL past
/// `SQLiteAppender.copyAfterPages`, and after a registry checkpoint. A copy fsyncs the WAL before it copies pages and
/// the database file after, as SQLite's automatic checkpoint does; the commit that asked has returned by then. Once a
/// copy reaches the WAL's end, the next transaction writes the WAL from its start again, and `journal_size_limit`
/// shrinks the file then.
///
/// `@unchecked Sendable`: `handle` is touched only inside jobs on `thread`, a pool of one thread; `pending` is atomic.
final class SQLiteWALCopier: @unchecked Sendable {
    private let thread: NIOThreadPool
    private var handle: OpaquePointer?
    /// A copy is queued or running: requests meanwhile are covered by it or by the next commit's request.
    private let pending = Atomic<Bool>(false)
    /// Copies made (tests read it).
    let copies = Atomic<Int>(0)

    private init(thread: NIOThreadPool) { self.thread = thread }

    static func open(path: String) async throws -> SQLiteWALCopier {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        let copier = SQLiteWALCopier(thread: thread)
        do {
            try await thread.runIfActive {
                let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
                guard sqlite_nio_sqlite3_open_v2(path, &copier.handle, flags, nil) == SQLITE_OK else {
                    let message = copier.handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "out of memory"
                    throw SQLiteFailure(code: SQLITE_CANTOPEN, message: "opening \(path) to copy its WAL: \(message)")
                }
                // FULL: the copy fsyncs the WAL before it writes a page of the database file.
                sqlite_nio_sqlite3_exec(copier.handle, "PRAGMA synchronous=FULL", nil, nil, nil)
            }
        } catch {
            try? await copier.close()
            throw error
        }
        return copier
    }

    /// Queues a copy unless one is queued or running already. Never waits.
    func request() {
        guard pending.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        thread.submit { state in
            if case .active = state { self.copy() }
            self.pending.store(false, ordering: .releasing)
        }
    }

    private func copy() {
        guard let handle else { return }
        // SQLITE_BUSY means another connection is copying; that copy serves.
        guard sqlite_nio_sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil) == SQLITE_OK else { return }
        copies.add(1, ordering: .relaxed)
    }

    func close() async throws {
        try? await thread.runIfActive {
            if let handle = self.handle { sqlite_nio_sqlite3_close_v2(handle) }
            self.handle = nil
        }
        try await thread.shutdownGracefully()
    }
}

/// An SQLite call that failed on the commit connection: its result code and SQLite's message.
struct SQLiteFailure: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var description: String { "SQLite error \(code): \(message)" }
}

/// `SQLITE_TRANSIENT`, which the C header defines as a cast Swift does not import.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
