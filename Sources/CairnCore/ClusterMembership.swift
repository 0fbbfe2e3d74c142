import Synchronization

/// The live nodes of a cluster as this node last read them from the store (heartbeats timed by the database's
/// clock), and which of them does a piece of work: rendezvous hashing, so when a node joins or dies only the work it
/// gains or held moves. A single node owns everything.
public final class ClusterMembership: Sendable {
    public struct View: Sendable, Equatable {
        /// This node's id.
        public var node: String
        /// Live node ids, this one included, sorted.
        public var live: [String]
        /// Bumped whenever `live` changes, so a scheduler can tell it must look again.
        public var version: UInt64
        /// The database clock's revision when this node last read it (its lag is this minus its applied sequence).
        public var databaseRevision: UInt64
        /// This node's membership term as its last heartbeat renewed it (0 before the first). The database bumps it
        /// when a node renews a row that had already expired: a node that was paused past the heartbeat timeout
        /// comes back in a new term, and what it started in the old one is fenced off.
        public var term: UInt64 = 0
    }

    private let storage: Mutex<View>
    /// This node's term as the open write transaction read it under the clock's lock; nil when the database does not
    /// count the node live. Only the writer reads it, between locking and committing.
    private let locked = Mutex<UInt64?>(nil)

    public init(node: String) { storage = Mutex(View(node: node, live: [node], version: 0, databaseRevision: 0)) }

    public var view: View { storage.withLock { $0 } }

    /// Records the live nodes read from the store (this node is always among them).
    public func update(live nodes: [String]) {
        storage.withLock { view in
            let live = Array(Set(nodes + [view.node])).sorted()
            guard live != view.live else { return }
            view.live = live
            view.version &+= 1
        }
    }

    /// Records this node's term as its heartbeat renewed it.
    public func update(term: UInt64) {
        storage.withLock { $0.term = term }
    }

    /// Records this node's term as read under the write lock (nil: not live in the database's eyes).
    public func update(lockedTerm term: UInt64?) {
        locked.withLock { $0 = term }
    }

    /// Whether a result started in `term` may still be written: only in the term the database holds for this node
    /// right now, read in the same transaction that would store it.
    public func admits(term: UInt64) -> Bool {
        locked.withLock { $0 } == term
    }

    /// Records the database clock's revision as last read.
    public func update(databaseRevision revision: UInt64) {
        storage.withLock { $0.databaseRevision = max($0.databaseRevision, revision) }
    }

    /// Whether this node does the work named `key`.
    public func owns(_ key: String) -> Bool {
        let view = self.view
        return Self.owner(of: key, among: view.live) == view.node
    }

    /// The node with the highest hash of (node, key).
    public static func owner(of key: String, among nodes: [String]) -> String? {
        nodes.max { weight($0, key) < weight($1, key) }
    }

    /// FNV-1a over the node id, a separator and the key, then a final mix: stable across processes and builds
    /// (Swift's `Hasher` is seeded per process).
    static func weight(_ node: String, _ key: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in node.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        hash = (hash ^ 0xff) &* 0x100_0000_01b3
        for byte in key.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        return hash
    }
}
