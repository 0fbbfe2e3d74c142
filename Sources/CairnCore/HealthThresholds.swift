/// The active-check state of one instance: probe results in, the status to publish out. A value type with no
/// clock of its own (times come in), so every transition is a small table test.
public struct HealthThresholds: Sendable, Equatable {
    /// Hold an instance UNHEALTHY once it changed state more than `maxTransitions` times within `windowMilliseconds`,
    /// until it has gone a whole window without changing.
    public struct Damping: Sendable, Equatable {
        public var maxTransitions: Int
        public var windowMilliseconds: Int64
        public init(maxTransitions: Int, windowMilliseconds: Int64) {
            self.maxTransitions = maxTransitions
            self.windowMilliseconds = windowMilliseconds
        }
    }

    /// The state after thresholds, before damping. UNKNOWN until the first result.
    public private(set) var raw: HealthStatus = .UNKNOWN
    /// Consecutive results that disagree with `raw`.
    public private(set) var streak = 0
    /// When `raw` changed, within the damping window.
    public private(set) var transitions: [Int64] = []
    public private(set) var damped = false

    public init() {}

    /// What to publish: `raw`, or UNHEALTHY while damped.
    public var reported: HealthStatus { damped ? .UNHEALTHY : raw }

    /// Records one probe result and returns the status to publish. The first result decides at once; after that
    /// the state flips only after `threshold` consecutive results the other way.
    @discardableResult
    public mutating func record(healthy: Bool, at now: Int64, threshold: Int, damping: Damping? = nil) -> HealthStatus {
        let result: HealthStatus = healthy ? .HEALTHY : .UNHEALTHY
        if raw == .UNKNOWN {
            raw = result
        } else if result == raw {
            streak = 0
        } else {
            streak += 1
            if streak >= max(1, threshold) {
                raw = result
                streak = 0
                transitions.append(now)
            }
        }
        if let damping {
            transitions.removeAll { now - $0 > damping.windowMilliseconds }
            if transitions.count > damping.maxTransitions {
                damped = true
            } else if damped && transitions.isEmpty {
                damped = false
            }
        } else {
            transitions.removeAll()
            damped = false
        }
        return reported
    }
}
