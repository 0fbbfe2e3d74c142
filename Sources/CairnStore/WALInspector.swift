import Foundation

/// Reads a SQLite write-ahead log the way SQLite's recovery does (https://www.sqlite.org/fileformat2.html#walformat)
/// to find what recovery would silently drop. SQLite applies the frames up to the first one whose salt or
/// cumulative checksum does not match and ignores the rest, which is right for a torn last transaction but hides a
/// damaged frame in the middle: every transaction after it vanishes. A torn transaction never has its commit frame
/// intact, so a commit frame past the valid prefix that is consistent with its predecessor means committed
/// transactions would be lost.
public enum WALInspector {
    public struct Report: Sendable, Equatable {
        /// Frames SQLite will apply (up to the last valid commit frame).
        public var appliedFrames: Int
        /// Frames in the file (whole ones).
        public var totalFrames: Int
        /// Commit frames after the applied prefix that carry this log's salts and chain from the frame before them.
        public var droppedCommits: Int
        /// The first frame (1-based) that breaks the chain, if any.
        public var firstBadFrame: Int?
        public var headerValid: Bool
    }

    public static func inspect(path: String) -> Report? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return inspect(Array(data))
    }

    public static func inspect(_ bytes: [UInt8]) -> Report {
        var report = Report(appliedFrames: 0, totalFrames: 0, droppedCommits: 0, firstBadFrame: nil, headerValid: false)
        guard bytes.count >= 32 else { return report }
        let magic = u32(bytes, 0)
        guard magic == 0x377f_0682 || magic == 0x377f_0683 else { return report }
        let bigEndian = magic & 1 == 1
        let pageSize = Int(u32(bytes, 8))
        guard pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else { return report }
        var sum = checksum(bytes, 0, 24, bigEndian: bigEndian, seed: (0, 0))
        guard sum.0 == u32(bytes, 24), sum.1 == u32(bytes, 28) else { return report }
        report.headerValid = true
        let salt1 = u32(bytes, 16)
        let salt2 = u32(bytes, 20)
        let frameSize = 24 + pageSize
        report.totalFrames = (bytes.count - 32) / frameSize
        var chainIntact = true
        var previousStored = sum
        for frame in 0..<report.totalFrames {
            let at = 32 + frame * frameSize
            let salted = u32(bytes, at + 8) == salt1 && u32(bytes, at + 12) == salt2
            let isCommit = u32(bytes, at + 4) != 0
            let stored = (u32(bytes, at + 16), u32(bytes, at + 20))
            let fromPrevious = frameChecksum(bytes, at, pageSize, bigEndian: bigEndian, seed: previousStored)
            if chainIntact {
                sum = frameChecksum(bytes, at, pageSize, bigEndian: bigEndian, seed: sum)
                if salted && sum == stored {
                    if isCommit { report.appliedFrames = frame + 1 }
                } else {
                    chainIntact = false
                    report.firstBadFrame = frame + 1
                }
            } else if salted && isCommit && fromPrevious == stored {
                report.droppedCommits += 1
            }
            previousStored = stored
        }
        return report
    }

    static func frameChecksum(_ b: [UInt8], _ at: Int, _ pageSize: Int, bigEndian: Bool, seed: (UInt32, UInt32)) -> (UInt32, UInt32) {
        let head = checksum(b, at, 8, bigEndian: bigEndian, seed: seed)
        return checksum(b, at + 24, pageSize, bigEndian: bigEndian, seed: head)
    }

    /// SQLite's WAL checksum over `count` bytes (a multiple of 8) from `at`.
    static func checksum(_ b: [UInt8], _ at: Int, _ count: Int, bigEndian: Bool, seed: (UInt32, UInt32)) -> (UInt32, UInt32) {
        var (s0, s1) = seed
        var i = at
        let end = at + count
        while i < end {
            let x0 = bigEndian ? u32(b, i) : u32le(b, i)
            let x1 = bigEndian ? u32(b, i + 4) : u32le(b, i + 4)
            s0 = s0 &+ x0 &+ s1
            s1 = s1 &+ x1 &+ s0
            i += 8
        }
        return (s0, s1)
    }

    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    static func u32le(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i + 3]) << 24 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 1]) << 8 | UInt32(b[i])
    }
}
