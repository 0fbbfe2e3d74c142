import Testing

@testable import CairnCore

@Suite("Pagination tokens")
struct PaginationTests {
    let items = (0..<7).map { "item\($0)" }

    @Test("Pages follow one another and the last has no token")
    func pages() throws {
        var seen: [String] = []
        var token: String?
        var pages = 0
        repeat {
            let page = try Pagination.page(items, key: { $0 }, token: token, maxResults: 3, kind: "k")
            seen += page.page
            token = page.nextToken
            pages += 1
        } while token != nil
        #expect(seen == items && pages == 3)
    }

    @Test("A token survives an insertion before it", arguments: [1])
    func stableUnderInsertion(_: Int) throws {
        let first = try Pagination.page(items, key: { $0 }, token: nil, maxResults: 3, kind: "k")
        let grown = ["item0a"] + items
        let second = try Pagination.page(grown.sorted(), key: { $0 }, token: first.nextToken, maxResults: 3, kind: "k")
        #expect(second.page == ["item3", "item4", "item5"])
    }

    @Test(
        "Bad tokens and tokens of another list are InvalidInput",
        arguments: ["!!", "bm9wZQ==", Pagination.token(kind: "other", lastKey: "x")])
    func badTokens(token: String) {
        #expect(throws: CairnError.self) { try Pagination.page(items, key: { $0 }, token: token, maxResults: 3, kind: "k") }
    }

    @Test("Numeric keys sort as numbers")
    func numericKeys() {
        #expect(Pagination.key(9, "a") < Pagination.key(10, "a"))
    }
}

@Suite("Discovery selection")
struct DiscoverySelectionTests {
    struct Item {
        var id: String
        var attributes: [String: String]
        var health: HealthStatus
    }

    static let fleet = [
        Item(id: "1", attributes: ["az": "a", "v": "1"], health: .HEALTHY),
        Item(id: "2", attributes: ["az": "a", "v": "2"], health: .UNHEALTHY),
        Item(id: "3", attributes: ["az": "b", "v": "1"], health: .HEALTHY),
        Item(id: "4", attributes: ["az": "b", "v": "2"], health: .UNKNOWN),
    ]

    static func service(checked: Bool) -> Service {
        Service(
            id: "srv-x", region: "r", account: "000000000000", name: "s", namespaceId: "ns-x", description: nil, type: .HTTP,
            dnsConfig: nil, healthCheckConfig: nil, hasCustomHealth: checked, createDate: 0, creatorRequestId: nil,
            createdByAccount: "000000000000", tags: [], attributes: [:], instancesRevision: 0, viewVersion: 0)
    }

    static let cases: [(DiscoveryQuery, Bool, [String])] = [
        (DiscoveryQuery(), true, ["1", "3"]),
        (DiscoveryQuery(healthStatus: .ALL), true, ["1", "2", "3", "4"]),
        (DiscoveryQuery(healthStatus: .UNHEALTHY), true, ["2"]),
        (DiscoveryQuery(healthStatus: .UNHEALTHY), false, ["1", "2", "3", "4"]),
        (DiscoveryQuery(queryParameters: ["az": "a"]), true, ["1"]),
        (DiscoveryQuery(queryParameters: ["az": "b"], optionalParameters: ["v": "2"], healthStatus: .ALL), true, ["4"]),
        (DiscoveryQuery(queryParameters: ["az": "b"], optionalParameters: ["v": "9"], healthStatus: .ALL), true, ["3", "4"]),
        (DiscoveryQuery(queryParameters: ["az": "a"], optionalParameters: ["v": "2"]), true, []),
        (DiscoveryQuery(queryParameters: ["az": "b"], optionalParameters: ["v": "2"], healthStatus: .HEALTHY_OR_ELSE_ALL), true, ["4"]),
        (DiscoveryQuery(queryParameters: ["az": "a"], healthStatus: .HEALTHY_OR_ELSE_ALL), true, ["1"]),
        (DiscoveryQuery(healthStatus: .ALL, maxResults: 2), true, ["?", "?"]),
    ]

    @Test("Query → optional (soft) → health filter → random subset", arguments: cases)
    func select(query: DiscoveryQuery, checked: Bool, expected: [String]) {
        var rng = SplitMix64(seed: 1)
        let chosen = Discovery.select(
            Self.fleet, service: Self.service(checked: checked), query: query, attributes: \.attributes, health: \.health,
            using: &rng
        ).map(\.id)
        if expected.allSatisfy({ $0 == "?" }) {
            #expect(chosen.count == expected.count)
        } else {
            #expect(chosen.sorted() == expected)
        }
    }

    @Test("Orders differ between calls")
    func randomOrder() {
        var rng = SplitMix64(seed: 42)
        var orders = Set<[String]>()
        for _ in 0..<20 {
            orders.insert(
                Discovery.select(
                    Self.fleet, service: Self.service(checked: false), query: DiscoveryQuery(), attributes: \.attributes,
                    health: \.health, using: &rng
                ).map(\.id))
        }
        #expect(orders.count > 3)
    }
}

@Suite("Per-request randomness")
struct FastSeedTests {
    /// 300 runs of 30 consecutive requests, each picking 8 of 20 after a shuffle. With independent streams a run
    /// misses some instance with probability about 4 in a million; correlated streams miss one often.
    @Test("Consecutive requests draw independent subsets")
    func independentStreams() {
        var runsMissingOne = 0
        for _ in 0..<300 {
            var seen = Set<Int>()
            for _ in 0..<30 {
                var rng = SplitMix64(seed: FastSeed.next())
                seen.formUnion((0..<20).shuffled(using: &rng).prefix(8))
            }
            if seen.count < 20 { runsMissingOne += 1 }
        }
        #expect(runsMissingOne <= 1, "\(runsMissingOne) of 300 runs never picked some instance")
    }
}
