import CairnCore
import Crypto
import Foundation
import Logging
import NIOCore
import SQLiteNIO

#if canImport(Glibc)
    import Glibc
#endif

/// The embedded default store: one SQLite file in the data directory, WAL journal with `synchronous=FULL`, so a
/// committed transaction survives `kill -9` and power loss. The change log holds one row per entry; a checkpoint
/// row holds the whole state as of a sequence number and the rows it covers are dropped.
public actor SQLiteRegistryStore: RegistryStore {
    /// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
    static let migrations: [[String]] = [
        [
            "CREATE TABLE change_log (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, entry BLOB NOT NULL)",
            "CREATE TABLE checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, state BLOB NOT NULL)",
        ],
        [
            """
            CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, event_name TEXT NOT NULL,
                principals TEXT NOT NULL, resources TEXT NOT NULL, record BLOB NOT NULL, hash TEXT NOT NULL)
            """,
            "CREATE INDEX audit_log_time ON audit_log (time)",
            "CREATE TABLE audit_anchor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL)",
        ],
        // The readiness probe commits here, so /readyz fails when the store cannot commit.
        ["CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), time INTEGER NOT NULL)"],
        // A checkpoint written in parts (`checkpoint.state` then empty), each part its own transaction.
        ["CREATE TABLE checkpoint_part (seq INTEGER NOT NULL, part INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (seq, part))"],
    ]

    /// The bytes of a checkpoint part: each is one short transaction, so appends wait behind one part at most.
    public static let checkpointPartBytes = 256 * 1024

    /// The stored checkpoint's bytes, nil if there is none: `checkpoint.state`, or its parts in order when that is empty
    /// (written so since schema 4). A missing or short part leaves bytes the codec refuses (length and checksum).
    static func checkpointBytes(_ connection: SQLiteConnection) async throws -> Data? {
        guard let row = try await connection.query("SELECT seq, length(state) AS size, state FROM checkpoint WHERE id = 1").first,
            let seq = row.column("seq")?.integer, let size = row.column("size")?.integer
        else { return nil }
        if size > 0 {
            guard case .blob(let buffer)? = row.column("state") else { return nil }
            return Data(buffer.readableBytesView)
        }
        var data = Data()
        for part in try await connection.query("SELECT bytes FROM checkpoint_part WHERE seq = ? ORDER BY part", [.integer(seq)]) {
            guard case .blob(let buffer)? = part.column("bytes") else { throw StoreDamage("a part of checkpoint \(seq) holds no bytes") }
            data.append(contentsOf: buffer.readableBytesView)
        }
        return data
    }

    /// SHA-256 in lower-case hex: the audit chain's hash (every durable store's).
    public static let chain = AuditChain { bytes in
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in SHA256.hash(data: bytes) {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }
    private static let hexDigits = Array("0123456789abcdef".utf8)

    private let connection: SQLiteConnection
    public nonisolated let path: String
    /// Actor methods interleave at every `await`; transactions on the one connection must not.
    private var inTransaction = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    /// The newest audit record's sequence number and hash (the next record links to it).
    private var auditHead: (sequence: UInt64, hash: String) = (0, AuditChain.genesis)

    /// How a process uses the directory: the server owns it (exclusive lock, integrity checks, the acknowledged
    /// sequence kept in `cairn.lock`); a reader (`cairn audit verify`) only reads beside a running server.
    public enum Access: Sendable { case owner, reader }

    /// Opens (creating if needed) `cairn.sqlite` in `directory`. As owner it refuses, with a `StoreDamage` that
    /// says what is wrong, a directory another process holds or files that would load less than was acknowledged.
    public static func open(directory: String, access: Access = .owner, logger: Logger = Logger(label: "cairn.store")) async throws
        -> SQLiteRegistryStore
    {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = (directory as NSString).appendingPathComponent("cairn.sqlite")
        let lock = access == .owner ? try DataDirectoryLock(directory: directory) : nil
        if access == .owner {
            if let wal = WALInspector.inspect(path: path + "-wal"), wal.droppedCommits > 0 {
                throw StoreDamage(
                    "\(path)-wal is damaged at frame \(wal.firstBadFrame ?? 0) of \(wal.totalFrames): SQLite would drop \(wal.droppedCommits) committed transactions after it"
                )
            }
            // The registry and its audit trail are nobody else's business: 0600 files (SQLite gives -wal and -shm
            // the database's mode) in a 0700 directory.
            if !FileManager.default.fileExists(atPath: path) {
                FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
            }
            for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
                try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
            }
        }
        let connection: SQLiteConnection
        do { connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger) } catch {
            throw StoreDamage("\(path) cannot be opened: \(error)")
        }
        let store = SQLiteRegistryStore(connection: connection, path: path, lock: lock)
        do {
            try await store.prepare(check: access == .owner)
        } catch let error as StoreDamage {
            try? await connection.close()
            throw error
        } catch {
            try? await connection.close()
            throw StoreDamage("\(path) cannot be read: \(error)")
        }
        if access == .owner {
            do { try await store.openAppender() } catch {
                try? await connection.close()
                throw StoreDamage("\(path) cannot be opened for writing: \(error)")
            }
        }
        return store
    }

    init(connection: SQLiteConnection, path: String, lock: DataDirectoryLock?) {
        self.connection = connection
        self.path = path
        self.lock = lock
        self.identity = FileIdentity.of(path)
    }

    private let lock: DataDirectoryLock?
    /// Change-log rows a checkpoint deletes per transaction once it is committed.
    static let rowsPerDelete = 1_000

    /// The connection appends commit on (nil for a reader).
    private var appender: SQLiteAppender?

    private func openAppender() async throws { appender = try await SQLiteAppender.open(path: path) }

    /// A pragma's value on the connection appends commit on (nil for a reader): tests check its durability settings.
    public func commitSetting(_ name: String) async throws -> String? { try await appender?.pragma(name) }

    /// WAL copies the copier made so far (tests read it).
    public var walCopies: Int { appender?.copier.copies.load(ordering: .relaxed) ?? 0 }

    /// The database file as opened; a commit into anything else is refused.
    private let identity: FileIdentity?
    /// The highest change-log sequence stored.
    private var storedSequence: UInt64 = 0

    private func prepare(check: Bool) async throws {
        if check {
            let result = try await connection.query("PRAGMA quick_check").first?.column("quick_check")?.string
            guard result == "ok" else { throw StoreDamage("\(path) fails SQLite's quick_check: \(result ?? "no answer")") }
        }
        _ = try await connection.query("PRAGMA journal_mode=WAL")
        _ = try await connection.query("PRAGMA synchronous=FULL")
        _ = try await connection.query("PRAGMA busy_timeout=5000")
        _ = try await connection.query("PRAGMA journal_size_limit=16777216")
        let version = try await connection.query("PRAGMA user_version").first?.column("user_version")?.integer ?? 0
        guard version <= Self.migrations.count else {
            throw CairnError(
                .internalFailure,
                "The data directory was written by a newer Cairn (schema \(version)); this one knows \(Self.migrations.count).")
        }
        for (index, statements) in Self.migrations.enumerated() where index >= version {
            _ = try await connection.query("BEGIN IMMEDIATE")
            do {
                for sql in statements { _ = try await connection.query(sql) }
                _ = try await connection.query("PRAGMA user_version = \(index + 1)")
                _ = try await connection.query("COMMIT")
            } catch {
                _ = try? await connection.query("ROLLBACK")
                throw error
            }
        }
        auditHead = try await readAuditHead()
    }

    private func readAuditHead() async throws -> (sequence: UInt64, hash: String) {
        if let row = try await connection.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").first,
            let seq = row.column("seq")?.integer, let hash = row.column("hash")?.string
        {
            return (UInt64(seq), hash)
        }
        if let row = try await connection.query("SELECT seq, hash FROM audit_anchor WHERE id = 1").first,
            let seq = row.column("seq")?.integer, let hash = row.column("hash")?.string
        {
            return (UInt64(seq), hash)
        }
        return (0, AuditChain.genesis)
    }

    public func load() async throws -> StoredRegistry {
        var checkpoint: RegistryState?
        if let bytes = try await Self.checkpointBytes(connection) { checkpoint = try RegistryCodec.decodeState(bytes) }
        let after = Int64(checkpoint?.sequence ?? 0)
        let rows = try await connection.query("SELECT entry FROM change_log WHERE seq > ? ORDER BY seq", [.integer(Int(after))])
        var entries: [ChangeLogEntry] = []
        entries.reserveCapacity(rows.count)
        var expected = UInt64(after) + 1
        for row in rows {
            guard case .blob(let buffer)? = row.column("entry") else { throw StoreDamage("a change-log row of \(path) holds no entry") }
            let entry: ChangeLogEntry
            do { entry = try RegistryCodec.decodeEntry(Data(buffer.readableBytesView)) } catch {
                throw StoreDamage("change-log entry \(expected) of \(path) cannot be decoded: \(error)")
            }
            guard entry.sequence == expected else {
                throw StoreDamage(
                    "the change log of \(path) is not contiguous: entry \(expected) is missing (the next one stored is \(entry.sequence))")
            }
            entries.append(entry)
            expected += 1
        }
        storedSequence = expected - 1
        if let lock {
            guard storedSequence >= lock.recordedSequence else {
                throw StoreDamage(
                    "\(path) holds the registry up to change \(storedSequence), but this directory acknowledged changes up to \(lock.recordedSequence) (\(lock.path)): files were lost, replaced or rolled back"
                )
            }
            lock.record(sequence: storedSequence)
        }
        return StoredRegistry(checkpoint: checkpoint, entries: entries)
    }

    /// Throws unless `path` is still the file this store opened.
    private func checkIdentity() throws {
        guard let identity, FileIdentity.of(path) == identity else {
            throw StoreDamage("\(path) was removed or replaced while the server ran; nothing more can be committed to it")
        }
    }

    /// Copies the audit rows of the store file at `other` into this one (recovery); the chain continues from them.
    func adopt(_ other: String) async throws {
        try await exclusive {
            _ = try await self.connection.query("ATTACH DATABASE ? AS old", [.text(other)])
            do {
                _ = try await self.connection.query("BEGIN IMMEDIATE")
                _ = try await self.connection.query("INSERT OR IGNORE INTO audit_log SELECT * FROM old.audit_log")
                _ = try await self.connection.query("INSERT OR REPLACE INTO audit_anchor SELECT * FROM old.audit_anchor")
                _ = try await self.connection.query("COMMIT")
            } catch {
                _ = try? await self.connection.query("ROLLBACK")
                _ = try? await self.connection.query("DETACH DATABASE old")
                throw error
            }
            _ = try await self.connection.query("DETACH DATABASE old")
            self.auditHead = try await self.readAuditHead()
        }
    }

    /// Commits a heartbeat row: proof that the store can commit now (readiness).
    public func probe() async throws {
        try checkIdentity()
        try await transaction {
            _ = try await self.connection.query(
                "INSERT INTO heartbeat (id, time) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET time = excluded.time",
                [.integer(Int(Date().timeIntervalSince1970))])
        }
    }

    public func append(_ entries: [ChangeLogEntry], audit: [AuditEntry]) async throws {
        guard !entries.isEmpty || !audit.isEmpty else { return }
        guard let appender else { throw CairnError(.internalFailure, "\(path) is open for reading only") }
        var changes: [SQLiteAppender.Change] = []
        changes.reserveCapacity(entries.count)
        for entry in entries {
            changes.append(.init(sequence: Int64(entry.sequence), time: entry.time, entry: [UInt8](try RegistryCodec.encode(entry))))
        }
        try checkIdentity()
        try await exclusive {
            // Numbered and chained here; the head moves only once the rows are committed.
            var head = auditHead
            var rows: [SQLiteAppender.Audit] = []
            rows.reserveCapacity(audit.count)
            for event in audit {
                let sequence = head.sequence + 1
                let bytes = event.record(sequence: sequence, previousHash: head.hash)
                let hash = Self.chain.hash(bytes)
                rows.append(
                    .init(
                        sequence: Int64(clamping: sequence), time: event.time, eventName: event.eventName,
                        principals: " " + event.principals.map { "\($0) " }.joined(),
                        resources: " " + event.resources.joined(separator: " ") + " ", record: bytes, hash: hash))
                head = (sequence, hash)
            }
            try await appender.commit(changes: changes, audit: rows)
            auditHead = head
        }
        if let last = entries.last?.sequence {
            storedSequence = last
            lock?.record(sequence: last)
        }
    }

    public func auditRecords(_ query: AuditQuery) async throws -> AuditPage {
        var clauses: [String] = []
        var binds: [SQLiteData] = []
        if let v = query.startTime {
            clauses.append("time >= ?")
            binds.append(.integer(Int(clamping: v)))
        }
        if let v = query.endTime {
            clauses.append("time < ?")
            binds.append(.integer(Int(clamping: v)))
        }
        if let v = query.eventName {
            clauses.append("event_name = ?")
            binds.append(.text(v))
        }
        if let v = query.principal {
            clauses.append("instr(principals, ?) > 0")
            binds.append(.text(" \(v) "))
        }
        if let v = query.resource {
            clauses.append(v.hasPrefix("arn:") ? "instr(resources, ?) > 0" : "instr(resources, ?) > 0")
            binds.append(.text(v.hasPrefix("arn:") ? " \(v) " : "/\(v) "))
        }
        if let v = query.before {
            clauses.append("seq < ?")
            binds.append(.integer(Int(clamping: v)))
        }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        binds.append(.integer(query.limit + 1))
        var records: [AuditRecord] = []
        try await exclusive {
            let rows = try await self.connection.query(
                "SELECT seq, time, record, hash FROM audit_log \(filter) ORDER BY seq DESC LIMIT ?", binds)
            records = rows.compactMap(Self.auditRecord)
        }
        if records.count > query.limit {
            records.removeLast()
            return AuditPage(records: records, next: records.last?.sequence)
        }
        return AuditPage(records: records, next: nil)
    }

    public func auditRecords(after: UInt64, limit: Int) async throws -> [AuditRecord] {
        var records: [AuditRecord] = []
        try await exclusive {
            let rows = try await self.connection.query(
                "SELECT seq, time, record, hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
                [.integer(Int(clamping: after)), .integer(limit)])
            records = rows.compactMap(Self.auditRecord)
        }
        return records
    }

    static func auditRecord(_ row: SQLiteRow) -> AuditRecord? {
        guard let seq = row.column("seq")?.integer, let time = row.column("time")?.integer, case .blob(let buffer)? = row.column("record"),
            let hash = row.column("hash")?.string
        else { return nil }
        return AuditRecord(sequence: UInt64(seq), time: Int64(time), record: Array(buffer.readableBytesView), hash: hash)
    }

    public func verifyAudit() async throws -> AuditVerification {
        var anchor = AuditChain.genesis
        var records: [AuditRecord] = []
        try await exclusive {
            if let row = try await self.connection.query("SELECT hash FROM audit_anchor WHERE id = 1").first,
                let hash = row.column("hash")?.string
            {
                anchor = hash
            }
            records = try await self.connection.query("SELECT seq, time, record, hash FROM audit_log ORDER BY seq").compactMap(
                Self.auditRecord)
        }
        return Self.chain.verify(records, anchor: anchor)
    }

    public func pruneAudit(olderThan time: Int64) async throws -> Int {
        var pruned = 0
        try await transaction {
            guard
                let row = try await self.connection.query("SELECT max(seq) AS seq FROM audit_log WHERE time < ?", [.integer(Int(time))])
                    .first,
                let cut = row.column("seq")?.integer,
                let last = try await self.connection.query("SELECT hash FROM audit_log WHERE seq = ?", [.integer(cut)]).first?.column(
                    "hash")?.string
            else { return }
            let count =
                try await self.connection.query("SELECT count(*) AS n FROM audit_log WHERE seq <= ?", [.integer(cut)]).first?
                .column("n")?.integer ?? 0
            _ = try await self.connection.query(
                "INSERT INTO audit_anchor (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                [.integer(cut), .text(last)])
            _ = try await self.connection.query("PRAGMA secure_delete=ON")
            _ = try await self.connection.query("DELETE FROM audit_log WHERE seq <= ?", [.integer(cut)])
            pruned = count
        }
        return pruned
    }

    /// Encodes the state outside the actor (so appends go on meanwhile), then writes it in one transaction.
    public nonisolated func checkpoint(_ state: RegistryState) async throws {
        let data = try await Self.inBackground { try RegistryCodec.encode(state) }
        try await write(checkpoint: data, through: Int(state.sequence))
        #if canImport(Glibc)
            // Encoding the whole state allocates about as much again as the state; glibc keeps those pages in its
            // arenas after they are freed, so without this a live server sits at twice the memory of a restarted one.
            _ = Self.trimHeap?(0)
        #endif
    }

    /// Runs `body` on a thread of its own at a lower scheduling priority (nice 10), so that encoding a checkpoint
    /// (50–120 ms of CPU with 100,000 operation records) yields the cores to requests and the writer rather than
    /// taking one of the few threads that run them: on a 2-core host that doubled the p99 of writes at 64 connections.
    static func inBackground<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                #if canImport(Glibc)
                    // On Linux `who = 0` is the calling thread, not the process.
                    _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
                #endif
                continuation.resume(with: Result { try body() })
            }
            thread.name = "cairn-checkpoint"
            thread.start()
        }
    }

    /// Gives the pages of freed heap back to the system (glibc's `malloc_trim`; nothing elsewhere). Loading a
    /// registry decodes a checkpoint and replays entries, whose buffers are freed once the state is built: without
    /// this a restarted server with 100,000 instances held about 40 MB more than one that registered them live.
    public static func releaseFreedHeap() {
        #if canImport(Glibc)
            _ = trimHeap?(0)
        #endif
    }

    #if canImport(Glibc)
        /// glibc's `malloc_trim` (malloc.h is not in Swift's Glibc module, so it is looked up once).
        static let trimHeap: (@convention(c) (Int) -> Int32)? = {
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
            return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        }()
    #endif

    private func write(checkpoint data: Data, through seq: Int) async throws {
        // In parts, each its own transaction, appends committing in between: written whole, 2–6 MB held every append
        // up 11–30 ms and its commit's fsync more. The checkpoint counts only once the `checkpoint` row names it. A
        // sequence number names one state, so a checkpoint already stored at `seq` is not written again (its parts
        // are live); parts at `seq` that no row names are an earlier attempt's (a crash half-way) and go first.
        var stored = false
        try await transaction {
            let named = try await self.connection.query("SELECT seq FROM checkpoint WHERE id = 1").first?.column("seq")?.integer
            stored = named == seq
            if !stored { _ = try await self.connection.query("DELETE FROM checkpoint_part WHERE seq = ?", [.integer(seq)]) }
        }
        var part = 0
        var offset = stored ? data.endIndex : data.startIndex
        while offset < data.endIndex {
            let end = min(data.endIndex, offset + Self.checkpointPartBytes)
            let bytes = ByteBuffer(bytes: data[offset..<end])
            try await transaction {
                _ = try await self.connection.query(
                    "INSERT INTO checkpoint_part (seq, part, bytes) VALUES (?, ?, ?)", [.integer(seq), .integer(part), .blob(bytes)])
            }
            part += 1
            offset = end
        }
        if !stored {
            try await transaction {
                _ = try await self.connection.query("PRAGMA secure_delete=OFF")
                _ = try await self.connection.query(
                    "INSERT INTO checkpoint (id, seq, state) VALUES (1, ?, zeroblob(0)) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, state = excluded.state",
                    [.integer(seq)])
            }
        }
        // What the named checkpoint replaces is dead from its commit on (loading and recovery read only its parts and
        // the rows after it): the earlier checkpoints' parts, then the change-log rows it covers. Deleted in one
        // transaction, 20,000 rows held every append up 20–28 ms; so they go a few at a time, appends in between, and
        // a crash half-way leaves the rest to the next checkpoint.
        try await deleteInSteps(
            "DELETE FROM checkpoint_part WHERE rowid IN (SELECT rowid FROM checkpoint_part WHERE seq <> ? LIMIT 4)", seq)
        try await deleteInSteps(
            "DELETE FROM change_log WHERE seq IN (SELECT seq FROM change_log WHERE seq <= ? ORDER BY seq LIMIT \(Self.rowsPerDelete))", seq)
        // Copy the WAL (now holding the checkpoint) into the database file on the appender's copier, which never
        // blocks the writer, where a TRUNCATE checkpoint on the writer's connection held every append waiting behind
        // it (p99 at 64 connections 129–154 ms, 25 ms without).
        appender?.copier.request()
    }

    /// Runs `delete` (one bound integer) in transactions of its own until it deletes nothing more. sqlite-nio builds
    /// SQLite to zero every page it frees; what a checkpoint replaces is superseded, not secret, so it is freed without
    /// that, which halves what the deletion writes. Audit pruning, which deletes records on purpose, zeroes them.
    private func deleteInSteps(_ delete: String, _ value: Int) async throws {
        var more = true
        while more {
            try await transaction {
                _ = try await self.connection.query("PRAGMA secure_delete=OFF")
                _ = try await self.connection.query(delete, [.integer(value)])
                more = (try await self.connection.query("SELECT changes() AS n").first?.column("n")?.integer ?? 0) > 0
            }
        }
    }

    public func close() async throws {
        try? await appender?.close()
        appender = nil
        try await connection.close()
        // Never record less than was acknowledged before: a store closed after a refused load keeps the evidence.
        if let lock { lock.release(sequence: max(storedSequence, lock.recordedSequence)) }
    }

    /// Runs `body` with the connection to itself, in arrival order.
    private func exclusive(_ body: () async throws -> Void) async throws {
        if inTransaction {
            await withCheckedContinuation { waiting.append($0) }
        }
        inTransaction = true
        defer {
            if waiting.isEmpty { inTransaction = false } else { waiting.removeFirst().resume() }
        }
        try await body()
    }

    private func transaction(_ body: () async throws -> Void) async throws {
        try await exclusive {
            _ = try await connection.query("BEGIN IMMEDIATE")
            do {
                try await body()
                _ = try await connection.query("COMMIT")
            } catch {
                _ = try? await connection.query("ROLLBACK")
                throw error
            }
        }
    }
}
