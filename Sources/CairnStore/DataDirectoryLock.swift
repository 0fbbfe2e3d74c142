import CairnCore
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `cairn.lock` in the data directory: an exclusive `flock` held for the life of the store (a second server on
/// the same directory is refused), and the highest change-log sequence this directory has acknowledged. The
/// sequence is written after each commit without an fsync of its own: it survives `kill -9` (the kernel holds it)
/// and after a power loss it can only be behind, so "the store holds less than the lock says" always means files
/// were lost or damaged, never a false alarm.
public final class DataDirectoryLock: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    /// The sequence recorded by the previous run (0 for a new directory).
    public let recordedSequence: UInt64
    /// Whether the previous run ended without closing the store (killed, crashed, power lost).
    public let previousRunUnclean: Bool

    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
    }

    /// Takes the lock or throws a refusal that says who holds it.
    public init(directory: String) throws {
        path = (directory as NSString).appendingPathComponent("cairn.lock")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw Refusal(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = Self.read(fd).pid.map { " (pid \($0))" } ?? ""
            close(fd)
            throw Refusal(
                description:
                    "the data directory \(directory) is in use by another cairn process\(holder); two servers on one directory would each serve stale data and fail writes"
            )
        }
        self.fd = fd
        let previous = Self.read(fd)
        recordedSequence = previous.sequence
        previousRunUnclean = previous.open
    }

    /// Records that this process (pid) has the store open at `sequence`.
    public func record(sequence: UInt64, open: Bool = true) {
        // Fixed width, so each write replaces the whole record in place.
        var line = "cairn-lock v1 pid=\(getpid()) state=\(open ? "open" : "closed") sequence=\(sequence)"
        line += String(repeating: " ", count: max(0, 95 - line.utf8.count)) + "\n"
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    /// Marks a clean close (and fsyncs it), then releases the lock.
    public func release(sequence: UInt64) {
        record(sequence: sequence, open: false)
        fsync(fd)
        flock(fd, LOCK_UN)
        close(fd)
    }

    static func read(_ fd: Int32) -> (pid: Int?, sequence: UInt64, open: Bool) {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return (nil, 0, false) }
        let text = String(decoding: buffer[0..<n], as: UTF8.self)
        var pid: Int?
        var sequence: UInt64 = 0
        var open = false
        for field in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let kv = field.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            switch kv[0] {
            case "pid": pid = Int(kv[1])
            case "sequence": sequence = UInt64(kv[1]) ?? 0
            case "state": open = kv[1] == "open"
            default: break
            }
        }
        return (pid, sequence, open)
    }
}

/// The database file's identity, so a commit is never acknowledged into a file that was unlinked or replaced
/// under the running server (a deleted data directory, a restore over a live server).
struct FileIdentity: Equatable {
    var device: UInt64
    var inode: UInt64

    static func of(_ path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }
}
