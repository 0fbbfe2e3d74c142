import CairnCore
import Testing

@Suite("Health thresholds and flap damping")
struct HealthThresholdsTests {
    /// Results one second apart, starting at t = 0 (true = healthy), and the status published after each.
    static let cases: [(String, Int, [Bool], [HealthStatus])] = [
        ("the first result decides at once", 3, [true], [.HEALTHY]),
        ("the first failure decides at once", 3, [false], [.UNHEALTHY]),
        ("threshold 3: two failures are not enough", 3, [true, false, false], [.HEALTHY, .HEALTHY, .HEALTHY]),
        ("threshold 3: the third flips", 3, [true, false, false, false], [.HEALTHY, .HEALTHY, .HEALTHY, .UNHEALTHY]),
        (
            "a success in between restarts the count", 3, [true, false, false, true, false, false],
            [.HEALTHY, .HEALTHY, .HEALTHY, .HEALTHY, .HEALTHY, .HEALTHY]
        ),
        ("threshold 1 follows every result", 1, [true, false, true, false], [.HEALTHY, .UNHEALTHY, .HEALTHY, .UNHEALTHY]),
        (
            "recovery also needs the threshold", 2, [false, true, false, true, true],
            [.UNHEALTHY, .UNHEALTHY, .UNHEALTHY, .UNHEALTHY, .HEALTHY]
        ),
        ("threshold 10", 10, [true] + Array(repeating: false, count: 10), Array(repeating: .HEALTHY, count: 10) + [.UNHEALTHY]),
    ]

    @Test("Thresholds", arguments: cases)
    func thresholds(label: String, threshold: Int, results: [Bool], expected: [HealthStatus]) {
        var state = HealthThresholds()
        #expect(state.reported == .UNKNOWN)
        let published = results.enumerated().map { state.record(healthy: $1, at: Int64($0) * 1000, threshold: threshold) }
        #expect(published == expected, "\(label)")
    }

    @Test("Flapping more than K times in the window holds UNHEALTHY until a whole window passes without change")
    func damping() {
        let damping = HealthThresholds.Damping(maxTransitions: 2, windowMilliseconds: 10_000)
        var state = HealthThresholds()
        var t: Int64 = 0
        func feed(_ healthy: Bool) -> HealthStatus {
            t += 1000
            return state.record(healthy: healthy, at: t, threshold: 1, damping: damping)
        }
        #expect(feed(true) == .HEALTHY)
        #expect(feed(false) == .UNHEALTHY)  // 1 transition
        #expect(feed(true) == .HEALTHY)  // 2
        #expect(feed(false) == .UNHEALTHY)  // 3 > 2: damped
        #expect(state.damped)
        #expect(feed(true) == .UNHEALTHY, "held although the probe says healthy")
        for _ in 0..<10 { #expect(feed(true) == .UNHEALTHY) }  // the last change (t = 5 s) is still within 10 s
        #expect(feed(true) == .HEALTHY, "a whole window without change releases it")
        #expect(!state.damped)
    }

    @Test("Without damping nothing is held")
    func noDamping() {
        var state = HealthThresholds()
        for (i, healthy) in [true, false, true, false, true].enumerated() {
            #expect(state.record(healthy: healthy, at: Int64(i), threshold: 1) == (healthy ? .HEALTHY : .UNHEALTHY))
        }
        #expect(!state.damped && state.transitions.isEmpty)
    }
}
