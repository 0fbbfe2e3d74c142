import CairnCore
import Foundation
import Logging
import NIOCore
import SQLiteNIO

/// `cairn recover`: what a damaged data directory still holds, and (with `write`) a new store made of exactly
/// that, the damaged files moved aside. It reads a copy, so examining never changes the files.
public enum SQLiteRecovery {
    public struct Report: Sendable {
        public var directory: String
        public var quickCheck: String
        public var wal: WALInspector.Report?
        public var checkpointSequence: UInt64?
        public var checkpointProblem: String?
        /// The last change of the contiguous log that can be kept.
        public var keptSequence: UInt64
        /// Entries stored after the first gap or unreadable entry (they cannot be applied without what is missing).
        public var strandedEntries: Int
        public var firstProblem: String?
        /// What `cairn.lock` says was acknowledged.
        public var acknowledgedSequence: UInt64
        public var namespaces = 0
        public var services = 0
        public var instances = 0
        public var auditRecords = 0

        public var lines: [String] {
            var out = ["data directory: \(directory)"]
            out.append("SQLite quick_check: \(quickCheck)")
            if let wal {
                out.append(
                    wal.droppedCommits > 0
                        ? "write-ahead log: damaged at frame \(wal.firstBadFrame ?? 0) of \(wal.totalFrames); \(wal.droppedCommits) committed transactions after it cannot be read"
                        : "write-ahead log: \(wal.appliedFrames) of \(wal.totalFrames) frames apply")
            } else {
                out.append("write-ahead log: none")
            }
            if let checkpointProblem { out.append("checkpoint: \(checkpointProblem)") }
            out.append("checkpoint: \(checkpointSequence.map { "at change \($0)" } ?? "none")")
            if let firstProblem { out.append("change log: \(firstProblem)") }
            out.append(
                "can keep: the registry as of change \(keptSequence): \(namespaces) namespaces, \(services) services, \(instances) instances; \(auditRecords) audit records"
            )
            if strandedEntries > 0 { out.append("cannot keep: \(strandedEntries) change-log entries stored after the gap") }
            if acknowledgedSequence > keptSequence {
                out.append("lost: changes \(keptSequence + 1) to \(acknowledgedSequence), acknowledged but not in these files")
            }
            return out
        }

        public var damaged: Bool {
            quickCheck != "ok" || (wal?.droppedCommits ?? 0) > 0 || strandedEntries > 0 || firstProblem != nil
                || checkpointProblem != nil || acknowledgedSequence > keptSequence
        }
    }

    /// Examines `directory` (which no server may hold); with `write`, replaces its store by what can be kept and
    /// moves the old files to `damaged-<time>/` beside it. Returns the report and, after a write, where the old files went.
    public static func run(directory: String, write: Bool, logger: Logger = Logger(label: "cairn.recover")) async throws -> (
        Report, String?
    ) {
        let path = (directory as NSString).appendingPathComponent("cairn.sqlite")
        guard FileManager.default.fileExists(atPath: path) else { throw StoreDamage("\(path) does not exist") }
        let lock = try DataDirectoryLock(directory: directory)
        var report = Report(
            directory: directory, quickCheck: "", wal: WALInspector.inspect(path: path + "-wal"), keptSequence: 0, strandedEntries: 0,
            acknowledgedSequence: lock.recordedSequence)
        let scratch = NSTemporaryDirectory() + "cairn-recover-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.copyItem(atPath: path + suffix, toPath: scratch + "/cairn.sqlite" + suffix)
        }
        let connection = try await SQLiteConnection.open(storage: .file(path: scratch + "/cairn.sqlite"), logger: logger)
        var state = RegistryState()
        do {
            report.quickCheck =
                (try? await connection.query("PRAGMA quick_check").map { $0.column("quick_check")?.string ?? "" }.joined(separator: "; "))
                ?? "cannot run"
            var checkpoint: RegistryState?
            do {
                if let bytes = try await SQLiteRegistryStore.checkpointBytes(connection) {
                    checkpoint = try RegistryCodec.decodeState(bytes)
                }
            } catch {
                report.checkpointProblem = "cannot be decoded (\(error)); starting from an empty registry"
            }
            report.checkpointSequence = checkpoint?.sequence
            var entries: [ChangeLogEntry] = []
            var expected = (checkpoint?.sequence ?? 0) + 1
            let rows = (try? await connection.query("SELECT seq, entry FROM change_log ORDER BY seq")) ?? []
            for (index, row) in rows.enumerated() {
                guard let seq = row.column("seq")?.integer, seq >= 0, UInt64(seq) >= expected else { continue }
                var entry: ChangeLogEntry?
                if case .blob(let buffer)? = row.column("entry") { entry = try? RegistryCodec.decodeEntry(Data(buffer.readableBytesView)) }
                guard let entry, entry.sequence == expected else {
                    report.firstProblem =
                        entry == nil ? "entry \(seq) cannot be decoded" : "entry \(expected) is missing (the next one stored is \(seq))"
                    report.strandedEntries = rows.count - index
                    break
                }
                entries.append(entry)
                expected += 1
            }
            state = StoredRegistry(checkpoint: checkpoint, entries: entries).replayed()
            report.keptSequence = state.sequence
            report.namespaces = state.namespaces.count
            report.services = state.services.count
            report.instances = state.instances.values.reduce(0) { $0 + $1.count }
            report.auditRecords = (try? await connection.query("SELECT count(*) AS n FROM audit_log").first?.column("n")?.integer) ?? 0
        }
        try await connection.close()
        guard write else {
            lock.release(sequence: lock.recordedSequence)
            return (report, nil)
        }
        let stamp = Int(Date().timeIntervalSince1970)
        let aside = (directory as NSString).appendingPathComponent("damaged-\(stamp)")
        try FileManager.default.createDirectory(atPath: aside, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.moveItem(atPath: path + suffix, toPath: aside + "/cairn.sqlite" + suffix)
        }
        // The directory now starts again from nothing, then holds exactly what is kept (the checkpoint below).
        lock.release(sequence: 0)
        let store = try await SQLiteRegistryStore.open(directory: directory, logger: logger)
        do {
            _ = try await store.load()
            try await store.checkpoint(state)
            try await store.adopt(scratch + "/cairn.sqlite")
            _ = try await store.load()
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
        return (report, aside)
    }
}
