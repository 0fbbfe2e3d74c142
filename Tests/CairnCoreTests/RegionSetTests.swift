import CairnCore
import Testing

@Suite("Accepted regions")
struct RegionSetTests {
    @Test(
        "Only configured, well-formed regions are accepted",
        arguments: [
            ("us-east-1", true), ("eu-west-3", true), ("zz-evil-9", false), ("US-EAST-1", false), ("us-east-1 ", false),
            ("a:b", false), ("*", false), (String(repeating: "x", count: 300), false), ("", false),
        ])
    func defaults(region: String, accepted: Bool) {
        #expect(RegionSet.default.contains(region) == accepted)
    }

    @Test("A trailing * admits a family; malformed entries are refused")
    func patterns() {
        let set = RegionSet(["us-east-1", "test-*"])!
        #expect(set.contains("test-1-abc") && set.contains("us-east-1") && !set.contains("testx") && !set.contains("test-A"))
        #expect(RegionSet(["*"]) == nil && RegionSet(["Us-East-1"]) == nil && RegionSet([]) == nil)
    }
}
