import Foundation
import Synchronization

/// Token buckets per principal, region and class of call, with AWS Cloud Map's published rates for discovery
/// (DiscoverInstances burst 2,000 refilled at 1,000/s; DiscoverInstancesRevision 3,000/s) and a configurable
/// bucket for every other call. A request that finds its bucket empty is refused without doing any work.
public final class Throttle: Sendable {
    public struct Rate: Sendable, Equatable {
        public var burst: Double
        public var perSecond: Double
        public init(burst: Double, perSecond: Double) {
            self.burst = burst
            self.perSecond = perSecond
        }
    }

    public struct Configuration: Sendable, Equatable {
        public var enabled: Bool
        public var discoverInstances: Rate
        public var discoverInstancesRevision: Rate
        /// Every other operation (the control plane and the Get/List reads).
        public var controlPlane: Rate

        public init(
            enabled: Bool = true, discoverInstances: Rate = Rate(burst: 2000, perSecond: 1000),
            discoverInstancesRevision: Rate = Rate(burst: 3000, perSecond: 3000), controlPlane: Rate = Rate(burst: 2000, perSecond: 1000)
        ) {
            self.enabled = enabled
            self.discoverInstances = discoverInstances
            self.discoverInstancesRevision = discoverInstancesRevision
            self.controlPlane = controlPlane
        }
    }

    /// The bucket an operation draws from; the operation table (`CloudMapAPI.operations`) says which.
    public enum Class: Sendable, Hashable {
        case discoverInstances, discoverInstancesRevision, controlPlane

        /// The class the operation table gives `operation` (control plane for a name it does not know).
        public init(operation: String) {
            self = CloudMapAPI.operations[operation]?.throttle ?? .controlPlane
        }
    }

    struct Key: Hashable {
        var principal: String
        var region: String
        var kind: Class
    }

    /// A bucket as of `updated` (seconds on the monotonic clock).
    public struct Bucket: Sendable, Equatable {
        public var tokens: Double
        public var updated: Double

        /// Takes one token at `now` if there is one.
        public mutating func take(at now: Double, rate: Rate) -> Bool {
            tokens = min(rate.burst, tokens + max(0, now - updated) * rate.perSecond)
            updated = now
            guard tokens >= 1 else { return false }
            tokens -= 1
            return true
        }
    }

    /// The buckets, at most `maxBuckets`. A bucket idle long enough to have refilled is the same as none, so it
    /// is dropped when the table is full; a key that finds the table full of live buckets shares one overflow
    /// bucket per class with every such key, so no number of invented principals buys more than one bucket's rate.
    struct Table {
        var buckets: [Key: Bucket] = [:]
        var lastPrune: Double = -.infinity
    }

    public let configuration: Configuration
    public let maxBuckets: Int
    private let table = Mutex(Table())
    private let clock: @Sendable () -> Double
    private let refused = Atomic<Int>(0)

    public init(
        configuration: Configuration, maxBuckets: Int = 65_536, clock: @escaping @Sendable () -> Double = Throttle.monotonicSeconds
    ) {
        self.configuration = configuration
        self.maxBuckets = max(1, maxBuckets)
        self.clock = clock
    }

    @Sendable public static func monotonicSeconds() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }

    /// Drops the buckets that have refilled since they were last used (at most once a second).
    private func prune(_ table: inout Table, now: Double) {
        guard now - table.lastPrune >= 1 else { return }
        table.lastPrune = now
        table.buckets = table.buckets.filter { key, bucket in
            let rate = self.rate(key.kind)
            return bucket.tokens + (now - bucket.updated) * rate.perSecond < rate.burst
        }
    }

    /// How many buckets are held now (for tests and metrics).
    public var bucketCount: Int { table.withLock { $0.buckets.count } }

    /// How many requests were refused since start (for metrics).
    public var refusedCount: Int { refused.load(ordering: .relaxed) }

    func rate(_ kind: Class) -> Rate {
        switch kind {
        case .discoverInstances: return configuration.discoverInstances
        case .discoverInstancesRevision: return configuration.discoverInstancesRevision
        case .controlPlane: return configuration.controlPlane
        }
    }

    /// Whether one more call of `operation` by `principal` in `region` may go ahead now.
    public func admit(principal: String, region: String, operation: String) -> Bool {
        admit(principal: principal, region: region, kind: Class(operation: operation))
    }

    /// Whether one more call of class `kind` by `principal` in `region` may go ahead now.
    public func admit(principal: String, region: String, kind: Class) -> Bool {
        guard configuration.enabled else { return true }
        let rate = rate(kind)
        let now = clock()
        let admitted = table.withLock { table in
            var key = Key(principal: principal, region: region, kind: kind)
            if table.buckets[key] == nil && table.buckets.count >= maxBuckets {
                prune(&table, now: now)
                if table.buckets.count >= maxBuckets { key = Key(principal: "", region: "", kind: kind) }
            }
            var bucket = table.buckets[key] ?? Bucket(tokens: rate.burst, updated: now)
            let ok = bucket.take(at: now, rate: rate)
            table.buckets[key] = bucket
            return ok
        }
        if !admitted { refused.add(1, ordering: .relaxed) }
        return admitted
    }
}
