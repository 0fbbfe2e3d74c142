import Foundation
import Synchronization

/// Back-off for console sign-in by client address: after 3 failures in a row an address waits 1 s before its
/// next attempt is even checked, doubling with each further failure up to 5 minutes; a success clears it. At most
/// `capacity` addresses are tracked (entries whose wait is over are dropped first), so no number of clients grows it.
final class SignInBackoff: Sendable {
    struct Entry {
        var failures: Int
        var until: Double
    }

    let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])
    private let clock: @Sendable () -> Double

    init(capacity: Int = 10_000, clock: @escaping @Sendable () -> Double = Throttle.monotonicSeconds) {
        self.capacity = capacity
        self.clock = clock
    }

    /// Seconds `peer` must still wait before an attempt is checked (0: go ahead).
    func wait(_ peer: String) -> Double {
        let now = clock()
        return entries.withLock { max(0, ($0[peer]?.until ?? now) - now) }
    }

    func failed(_ peer: String) {
        let now = clock()
        entries.withLock { entries in
            if entries[peer] == nil && entries.count >= capacity {
                entries = entries.filter { $0.value.until > now }
                if entries.count >= capacity { entries.removeAll() }
            }
            var entry = entries[peer] ?? Entry(failures: 0, until: now)
            entry.failures += 1
            let delay = entry.failures < 3 ? 0 : min(300, pow(2, Double(entry.failures - 3)))
            entry.until = now + delay
            entries[peer] = entry
        }
    }

    func succeeded(_ peer: String) { entries.withLock { $0[peer] = nil } }
}

/// Sessions ended by signing out: a session cookie is stateless, so the ones given up are remembered until
/// they would have expired anyway. Only a signed-in user with the CSRF token can add one; at most `capacity`.
final class RevokedSessions: Sendable {
    let capacity: Int
    private let revoked = Mutex<[String: Double]>([:])

    init(capacity: Int = 100_000) { self.capacity = capacity }

    func revoke(_ cookie: String, until expiry: Double) {
        let now = Date().timeIntervalSince1970
        revoked.withLock { revoked in
            if revoked.count >= capacity { revoked = revoked.filter { $0.value > now } }
            if revoked.count < capacity { revoked[cookie] = expiry }
        }
    }

    func contains(_ cookie: String) -> Bool { revoked.withLock { $0[cookie] != nil } }
}
