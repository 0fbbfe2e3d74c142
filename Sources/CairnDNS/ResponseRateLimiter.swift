/// Response-rate limiting for UDP (after BIND's RRL): answers to one client network (/24 for IPv4, /56 for IPv6)
/// come from a token bucket of `perSecond` a second (burst the same). Past it, every `slip`-th answer goes out as an
/// empty truncated reply (TC set, so a real client retries over TCP, which a spoofed address cannot) and the others
/// are dropped, so Cairn cannot be used to flood a victim whose address was forged. One limiter per UDP socket: with
/// SO_REUSEPORT a client's packets always reach the same socket, so no lock is shared between UDP threads.
/// At most `capacity` networks are tracked; full buckets (networks quiet for a second or more) are dropped first.
struct ResponseRateLimiter {
    enum Verdict: Equatable { case send, slip, drop }

    let perSecond: Double
    let slip: Int
    let capacity: Int
    private var buckets: [[UInt8]: (tokens: Double, updated: Double, limited: Int)] = [:]

    init(perSecond: Double, slip: Int, capacity: Int = 100_000) {
        self.perSecond = perSecond
        self.slip = max(0, slip)
        self.capacity = capacity
    }

    /// The client's network: the first 3 bytes of an IPv4 address, the first 7 of an IPv6 one.
    static func network(_ client: [UInt8]) -> [UInt8] { Array(client.prefix(client.count == 4 ? 3 : 7)) }

    mutating func verdict(for client: [UInt8], now: Double) -> Verdict {
        guard perSecond > 0 else { return .send }
        let key = Self.network(client)
        if buckets[key] == nil && buckets.count >= capacity {
            buckets = buckets.filter { $0.value.tokens + (now - $0.value.updated) * perSecond < perSecond }
            if buckets.count >= capacity { buckets.removeAll(keepingCapacity: true) }
        }
        var bucket = buckets[key] ?? (perSecond, now, 0)
        bucket.tokens = min(perSecond, bucket.tokens + max(0, now - bucket.updated) * perSecond)
        bucket.updated = now
        let verdict: Verdict
        if bucket.tokens >= 1 {
            bucket.tokens -= 1
            verdict = .send
        } else {
            bucket.limited += 1
            verdict = slip > 0 && bucket.limited % slip == 0 ? .slip : .drop
        }
        buckets[key] = bucket
        return verdict
    }
}
