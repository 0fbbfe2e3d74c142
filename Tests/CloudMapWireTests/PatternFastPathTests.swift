import CloudMapWire
import Testing

@Suite("Hand-written pattern matchers agree with the regex engine")
struct PatternFastPathTests {
    @Test("Seven hot patterns have fast paths")
    func covered() {
        #expect(ModelValidator.fastPathPatterns.count == 7)
    }

    /// Random strings biased towards the characters and shapes the patterns care about.
    static func samples(count: Int, seed: UInt64) -> [String] {
        var state = seed
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let alphabet: [String] = [
            "a", "Z", "0", "9", "_", "-", ".", "..", "arn:", " ", "\t", "/", ":", "@", "~", "!", "é", "\n", "\u{0}", "x",
        ]
        var result = [
            ".", "", "arn:", "a", "_", "-", String(repeating: "a", count: 63), String(repeating: "a", count: 64),
            String(repeating: "ab.", count: 42) + "c", String(repeating: "x", count: 1024), String(repeating: "x", count: 1025),
            String(repeating: "y", count: 253), String(repeating: "y", count: 254),
        ]
        for _ in 0..<count {
            let length = Int(next() % 12)
            var s = ""
            for _ in 0..<length {
                if next() % 4 == 0 {
                    s += String(repeating: "k", count: Int(next() % 70))
                } else {
                    s += alphabet[Int(next() % UInt64(alphabet.count))]
                }
            }
            result.append(s)
        }
        return result
    }

    @Test("Every fast path gives the regex engine's answer on 4,000 strings")
    func equivalence() {
        let samples = Self.samples(count: 4_000, seed: 11)
        for pattern in ModelValidator.fastPathPatterns {
            for s in samples {
                #expect(
                    ModelValidator.matches(s, pattern: pattern) == ModelValidator.regexMatches(s, pattern: pattern),
                    "pattern \(pattern) disagrees on \(s.debugDescription)")
            }
        }
    }
}
