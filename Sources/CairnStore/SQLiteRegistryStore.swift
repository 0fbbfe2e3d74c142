import CairnCore
import Foundation
import Logging
import NIOCore
import SQLiteNIO

/// The embedded default store: one SQLite file in the data directory, WAL journal with `synchronous=FULL`, so a
/// committed transaction survives `kill -9` and power loss. The change log holds one row per entry; a checkpoint
/// row holds the whole state as of a sequence number and the rows it covers are dropped.
public actor SQLiteRegistryStore: RegistryStore {
    /// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
    static let migrations: [[String]] = [
        [
            "CREATE TABLE change_log (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, entry BLOB NOT NULL)",
            "CREATE TABLE checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, state BLOB NOT NULL)",
        ]
    ]

    /// Rows per INSERT statement (SQLite allows 32,766 bound parameters).
    static let rowsPerStatement = 300

    private let connection: SQLiteConnection
    public nonisolated let path: String
    /// Actor methods interleave at every `await`; transactions on the one connection must not.
    private var inTransaction = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Opens (creating if needed) `cairn.sqlite` in `directory`.
    public static func open(directory: String, logger: Logger = Logger(label: "cairn.store")) async throws -> SQLiteRegistryStore {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent("cairn.sqlite")
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        let store = SQLiteRegistryStore(connection: connection, path: path)
        try await store.prepare()
        return store
    }

    init(connection: SQLiteConnection, path: String) {
        self.connection = connection
        self.path = path
    }

    private func prepare() async throws {
        _ = try await connection.query("PRAGMA journal_mode=WAL")
        _ = try await connection.query("PRAGMA synchronous=FULL")
        _ = try await connection.query("PRAGMA busy_timeout=5000")
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
    }

    public func load() async throws -> StoredRegistry {
        var checkpoint: RegistryState?
        if let row = try await connection.query("SELECT seq, state FROM checkpoint WHERE id = 1").first,
            case .blob(let buffer)? = row.column("state")
        {
            checkpoint = try RegistryCodec.decodeState(Data(buffer.readableBytesView))
        }
        let after = Int64(checkpoint?.sequence ?? 0)
        let rows = try await connection.query("SELECT entry FROM change_log WHERE seq > ? ORDER BY seq", [.integer(Int(after))])
        var entries: [ChangeLogEntry] = []
        entries.reserveCapacity(rows.count)
        for row in rows {
            guard case .blob(let buffer)? = row.column("entry") else { continue }
            entries.append(try RegistryCodec.decodeEntry(Data(buffer.readableBytesView)))
        }
        return StoredRegistry(checkpoint: checkpoint, entries: entries)
    }

    public func append(_ entries: [ChangeLogEntry]) async throws {
        guard !entries.isEmpty else { return }
        var encoded: [(Int, Int, ByteBuffer)] = []
        encoded.reserveCapacity(entries.count)
        for entry in entries {
            let data = try RegistryCodec.encode(entry)
            encoded.append((Int(entry.sequence), Int(entry.time), ByteBuffer(bytes: data)))
        }
        try await transaction {
            var start = 0
            while start < encoded.count {
                let chunk = encoded[start..<min(encoded.count, start + Self.rowsPerStatement)]
                let placeholders = Array(repeating: "(?, ?, ?)", count: chunk.count).joined(separator: ", ")
                var binds: [SQLiteData] = []
                binds.reserveCapacity(chunk.count * 3)
                for (seq, time, blob) in chunk { binds += [.integer(seq), .integer(time), .blob(blob)] }
                _ = try await self.connection.query("INSERT INTO change_log (seq, time, entry) VALUES \(placeholders)", binds)
                start += chunk.count
            }
        }
    }

    /// Encodes the state outside the actor (so appends go on meanwhile), then writes it in one transaction.
    public nonisolated func checkpoint(_ state: RegistryState) async throws {
        try await write(checkpoint: try RegistryCodec.encode(state), through: Int(state.sequence))
    }

    private func write(checkpoint data: Data, through seq: Int) async throws {
        try await transaction {
            _ = try await self.connection.query(
                "INSERT INTO checkpoint (id, seq, state) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, state = excluded.state",
                [.integer(seq), .blob(ByteBuffer(bytes: data))])
            _ = try await self.connection.query("DELETE FROM change_log WHERE seq <= ?", [.integer(seq)])
        }
        try? await exclusive { _ = try await self.connection.query("PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    public func close() async throws {
        try await connection.close()
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
