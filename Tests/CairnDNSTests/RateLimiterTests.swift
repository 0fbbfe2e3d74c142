import Testing

@testable import CairnDNS

@Suite("UDP response-rate limiting")
struct RateLimiterTests {
    @Test("Past the rate every slip-th answer is truncated and the rest dropped; a second later answers flow again")
    func limits() {
        var limiter = ResponseRateLimiter(perSecond: 4, slip: 2)
        let client: [UInt8] = [192, 0, 2, 7]
        let verdicts = (0..<10).map { _ in limiter.verdict(for: client, now: 100) }
        #expect(verdicts == [.send, .send, .send, .send, .drop, .slip, .drop, .slip, .drop, .slip])
        // Another address of the same /24 shares the bucket; another network does not.
        #expect(limiter.verdict(for: [192, 0, 2, 8], now: 100) == .drop)
        #expect(limiter.verdict(for: [198, 51, 100, 1], now: 100) == .send)
        #expect(limiter.verdict(for: client, now: 101) == .send)
    }

    @Test("Zero is off; the table never holds more than its capacity")
    func offAndBounded() {
        var off = ResponseRateLimiter(perSecond: 0, slip: 2)
        #expect((0..<100).allSatisfy { _ in off.verdict(for: [10, 0, 0, 1], now: 0) == .send })
        var small = ResponseRateLimiter(perSecond: 1, slip: 0, capacity: 8)
        for i in 0..<100 { _ = small.verdict(for: [10, UInt8(i), 0, 1], now: Double(i) / 1000) }
        #expect(small.verdict(for: [10, 99, 0, 1], now: 0.1) == .drop)
    }
}
