import CairnCore
import CloudMapWire
import Foundation
import Synchronization
import Testing

@testable import CairnAPI

@Suite("IAM-style policy evaluation")
struct PolicyTests {
    static let region = "us-east-1"
    static let account = "000000000000"
    static let nsArn = "arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-aaaaaaaaaaaaaaaa"
    static let webArn = "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-webwebwebwebwebwe"
    static let dbArn = "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-dbdbdbdbdbdbdbdb"

    static func policy(_ json: String) throws -> Policy {
        try Policy.parse(try JSONValue.parse(Array(json.utf8)))
    }

    /// The documents shipped in docs/policies/, read from the repository so the docs are what is tested.
    static func shipped(_ name: String) throws -> Policy {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/policies/\(name).json"), encoding: .utf8)
        return try policy(text)
    }

    static func service(_ arn: String, name: String, namespace: String = "example.internal", tags: [String: String] = [:])
        -> [String: [String]]
    {
        var keys: [String: [String]] = [
            "servicediscovery:ServiceArn": [arn], "servicediscovery:ServiceName": [name],
            "servicediscovery:NamespaceName": [namespace], "servicediscovery:NamespaceArn": [nsArn],
        ]
        for (k, v) in tags { keys["aws:ResourceTag/\(k)"] = [v] }
        return keys
    }

    struct Case: Sendable, CustomStringConvertible {
        var policy: String
        var action: String
        var resource: String
        var keys: [String: [String]]
        var expected: PolicyDecision
        var description: String { "\(policy) \(action) \(resource.split(separator: ":").last ?? "") → \(expected)" }
    }

    static let cases: [Case] = [
        // administrator: everything
        Case(policy: "administrator", action: "servicediscovery:DeleteNamespace", resource: nsArn, keys: [:], expected: .allow),
        Case(policy: "administrator", action: "cairn:LookupAuditEvents", resource: "*", keys: [:], expected: .allow),
        // reader: discover only
        Case(
            policy: "reader", action: "servicediscovery:DiscoverInstances", resource: webArn, keys: service(webArn, name: "web"),
            expected: .allow),
        Case(policy: "reader", action: "servicediscovery:DiscoverInstancesRevision", resource: "*", keys: [:], expected: .allow),
        Case(
            policy: "reader", action: "servicediscovery:RegisterInstance", resource: webArn, keys: service(webArn, name: "web"),
            expected: .implicitDeny),
        Case(policy: "reader", action: "servicediscovery:ListServices", resource: "*", keys: [:], expected: .implicitDeny),
        Case(policy: "reader", action: "cairn:LookupAuditEvents", resource: "*", keys: [:], expected: .implicitDeny),
        // registrar: register/deregister/custom health on web and api in example.internal
        Case(
            policy: "registrar", action: "servicediscovery:RegisterInstance", resource: webArn, keys: service(webArn, name: "web"),
            expected: .allow),
        Case(
            policy: "registrar", action: "servicediscovery:UpdateInstanceCustomHealthStatus", resource: webArn,
            keys: service(webArn, name: "web"), expected: .allow),
        Case(
            policy: "registrar", action: "servicediscovery:RegisterInstance", resource: dbArn, keys: service(dbArn, name: "db"),
            expected: .implicitDeny),
        Case(
            policy: "registrar", action: "servicediscovery:RegisterInstance", resource: webArn,
            keys: service(webArn, name: "web", namespace: "other.internal"), expected: .implicitDeny),
        Case(
            policy: "registrar", action: "servicediscovery:DeleteService", resource: webArn, keys: service(webArn, name: "web"),
            expected: .implicitDeny),
        Case(
            policy: "registrar", action: "servicediscovery:GetOperation", resource: nsArn,
            keys: ["servicediscovery:NamespaceName": ["example.internal"]], expected: .allow),
        // explicit deny wins over an allow in the same principal
        Case(
            policy: "denyTagged", action: "servicediscovery:RegisterInstance", resource: webArn,
            keys: service(webArn, name: "web", tags: ["stage": "prod"]), expected: .explicitDeny("NoProd")),
        Case(
            policy: "denyTagged", action: "servicediscovery:RegisterInstance", resource: webArn,
            keys: service(webArn, name: "web", tags: ["stage": "dev"]), expected: .allow),
        Case(
            policy: "denyTagged", action: "servicediscovery:RegisterInstance", resource: webArn, keys: service(webArn, name: "web"),
            expected: .allow),
        // NotAction / NotResource
        Case(
            policy: "notAction", action: "servicediscovery:GetService", resource: webArn, keys: [:], expected: .allow),
        Case(
            policy: "notAction", action: "servicediscovery:DeleteService", resource: webArn, keys: [:], expected: .implicitDeny),
        Case(policy: "notResource", action: "servicediscovery:GetService", resource: webArn, keys: [:], expected: .allow),
        Case(policy: "notResource", action: "servicediscovery:GetService", resource: dbArn, keys: [:], expected: .implicitDeny),
        // Resource wildcards, case-insensitive actions
        Case(policy: "resourceWildcard", action: "SERVICEDISCOVERY:getservice", resource: webArn, keys: [:], expected: .allow),
        Case(policy: "resourceWildcard", action: "servicediscovery:GetNamespace", resource: nsArn, keys: [:], expected: .implicitDeny),
        // request tags: only tags from an allowed set, and a required tag
        Case(
            policy: "requestTags", action: "servicediscovery:CreateHttpNamespace", resource: "*",
            keys: ["aws:TagKeys": ["team", "stage"], "aws:RequestTag/team": ["payments"]], expected: .allow),
        Case(
            policy: "requestTags", action: "servicediscovery:CreateHttpNamespace", resource: "*",
            keys: ["aws:TagKeys": ["team", "owner"], "aws:RequestTag/team": ["payments"]], expected: .implicitDeny),
        Case(
            policy: "requestTags", action: "servicediscovery:CreateHttpNamespace", resource: "*",
            keys: ["aws:TagKeys": ["stage"]], expected: .implicitDeny),
        // StringLike and StringNotEquals with an absent key
        Case(
            policy: "like", action: "servicediscovery:RegisterInstance", resource: webArn,
            keys: ["servicediscovery:ServiceName": ["web-blue"]], expected: .allow),
        Case(
            policy: "like", action: "servicediscovery:RegisterInstance", resource: webArn,
            keys: ["servicediscovery:ServiceName": ["db"]], expected: .implicitDeny),
        Case(policy: "notEqualsAbsent", action: "servicediscovery:ListNamespaces", resource: "*", keys: [:], expected: .allow),
        Case(
            policy: "notEqualsAbsent", action: "servicediscovery:ListNamespaces", resource: "*",
            keys: ["aws:ResourceTag/stage": ["prod"]], expected: .implicitDeny),
    ]

    static let inline: [String: String] = [
        "denyTagged": """
        {"Version":"2012-10-17","Statement":[
          {"Effect":"Allow","Action":"servicediscovery:*","Resource":"*"},
          {"Sid":"NoProd","Effect":"Deny","Action":"servicediscovery:RegisterInstance","Resource":"*",
           "Condition":{"StringEquals":{"aws:ResourceTag/stage":"prod"}}}]}
        """,
        "notAction": """
        {"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":["servicediscovery:Delete*","servicediscovery:Create*"],"Resource":"*"}}
        """,
        "notResource": """
        {"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"servicediscovery:Get*","NotResource":"\(dbArn)"}}
        """,
        "resourceWildcard": """
        {"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"servicediscovery:Get*","Resource":"arn:aws:servicediscovery:us-east-1:000000000000:service/srv-web*"}}
        """,
        "requestTags": """
        {"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"servicediscovery:Create*","Resource":"*",
         "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team","stage"]},"StringEquals":{"aws:RequestTag/team":"payments"}}}}
        """,
        "like": """
        {"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"servicediscovery:RegisterInstance","Resource":"*",
         "Condition":{"StringLike":{"servicediscovery:ServiceName":"web-*"}}}}
        """,
        "notEqualsAbsent": """
        {"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"servicediscovery:List*","Resource":"*",
         "Condition":{"StringNotEquals":{"aws:ResourceTag/stage":"prod"}}}}
        """,
    ]

    static func named(_ name: String) throws -> Policy {
        if let text = inline[name] { return try policy(text) }
        return try shipped(name)
    }

    @Test("Decision table: principal policy, action, resource, keys → decision", arguments: cases)
    func decisions(_ c: Case) throws {
        let decision = Policy.evaluate(
            [try Self.named(c.policy)], AuthorizationRequest(action: c.action, resource: c.resource, keys: c.keys))
        #expect(decision == c.expected)
    }

    @Test("No policy denies; a deny in one policy beats an allow in another")
    func combining() throws {
        let request = AuthorizationRequest(action: "servicediscovery:GetService", resource: Self.webArn)
        #expect(Policy.evaluate([], request) == .implicitDeny)
        let deny = try Self.policy(#"{"Statement":{"Sid":"x","Effect":"Deny","Action":"*","Resource":"*"}}"#)
        #expect(Policy.evaluate([BuiltInPolicies.administrator, deny], request) == .explicitDeny("x"))
    }

    @Test("The built-in policies equal the shipped documents")
    func builtIns() throws {
        #expect(BuiltInPolicies.administrator == (try Self.shipped("administrator")))
        #expect(BuiltInPolicies.reader == (try Self.shipped("reader")))
    }

    @Test(
        "Malformed policies are refused with the member named",
        arguments: [
            (#"[]"#, "JSON object"),
            (#"{"Statement":[]}"#, "must not be empty"),
            (#"{"Version":"2020-01-01","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#, "Version"),
            (#"{"Statement":{"Effect":"Permit","Action":"*","Resource":"*"}}"#, "Statement[0].Effect"),
            (#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#, "Action or NotAction"),
            (#"{"Statement":{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}}"#, "not both"),
            (#"{"Statement":{"Effect":"Allow","Action":"DiscoverInstances","Resource":"*"}}"#, "service:Action"),
            (#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}}"#, "Principal"),
            (#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericEquals":{"a":"1"}}}}"#, "NumericEquals"),
        ])
    func malformed(_ text: String, _ mentions: String) throws {
        #expect {
            _ = try Self.policy(text)
        } throws: { error in
            (error as? PolicyError)?.message.contains(mentions) == true
        }
    }

    @Test("Wildcards: * spans any run, ? exactly one character")
    func wildcards() {
        #expect(Wildcard.matches("a*c", "abbbc", caseInsensitive: false))
        #expect(Wildcard.matches("a*c", "ac", caseInsensitive: false))
        #expect(!Wildcard.matches("a*c", "abd", caseInsensitive: false))
        #expect(Wildcard.matches("a?c", "abc", caseInsensitive: false))
        #expect(!Wildcard.matches("a?c", "ac", caseInsensitive: false))
        #expect(Wildcard.matches("*:service/*", "arn:aws:x:service/srv-1", caseInsensitive: false))
        #expect(!Wildcard.matches("Abc", "abc", caseInsensitive: false))
        #expect(Wildcard.matches("Abc", "abc", caseInsensitive: true))
    }

    @Test("The action table checks the resource each operation names, with its condition keys")
    func actionTable() throws {
        var state = RegistryState()
        var ids = IdentifierGenerator(seed: 3)
        let context = RequestContext(region: Self.region, account: Self.account)
        func run(_ command: Command) throws -> CommandResult {
            let decision = try state.decide(command, context: context, now: 1, rules: RegistryRules(), ids: &ids)
            state.apply(ChangeLogEntry(sequence: state.sequence + 1, time: 1, events: decision.events))
            return decision.result
        }
        func requests(operation: String, input: JSONValue, state: RegistryState, context: RequestContext) -> [AuthorizationRequest] {
            guard let spec = CloudMapAPI.operations[operation] else { return [] }
            return AuthorizationTable.requests(spec, input: input, subjects: Subjects(spec, input: input, state: state, context: context))
        }
        _ = try run(.createNamespace(CreateNamespace(type: .HTTP, name: "example.internal")))
        let ns = try #require(state.namespaces.values.first)
        guard
            case .service(let web) = try run(
                .createService(CreateService(name: "web", namespaceId: ns.id, tags: [Tag(key: "stage", value: "prod")])))
        else { throw CairnError.invalid("no service") }

        let register = requests(
            operation: "RegisterInstance", input: .object(["ServiceId": .string(web.id), "InstanceId": .string("i")]), state: state,
            context: context)
        #expect(register.count == 1)
        #expect(register[0].action == "servicediscovery:RegisterInstance")
        #expect(register[0].resource == web.arn)
        #expect(register[0].keys["servicediscovery:servicename"] == ["web"])
        #expect(register[0].keys["servicediscovery:namespacename"] == ["example.internal"])
        #expect(register[0].keys["aws:resourcetag/stage"] == ["prod"])

        let discover = requests(
            operation: "DiscoverInstances", input: .object(["NamespaceName": .string("example.internal"), "ServiceName": .string("web")]),
            state: state, context: context)
        #expect(discover.map(\.resource) == [ns.arn, web.arn])

        let create = requests(
            operation: "CreateService",
            input: .object([
                "Name": .string("db"), "NamespaceId": .string(ns.id),
                "Tags": .array([.object(["Key": .string("team"), "Value": .string("x")])]),
            ]), state: state, context: context)
        #expect(create.map(\.action) == ["servicediscovery:CreateService", "servicediscovery:TagResource"])
        #expect(create[0].resource == ns.arn)
        #expect(create[0].keys["servicediscovery:namespacearn"] == [ns.arn])
        #expect(create[0].keys["aws:tagkeys"] == ["team"])
        #expect(create[0].keys["aws:requesttag/team"] == ["x"])

        let list = requests(operation: "ListNamespaces", input: .object([:]), state: state, context: context)
        #expect(list.map(\.resource) == ["*"])
    }
}

@Suite("Throttling token buckets")
struct ThrottleTests {
    final class ManualClock: Sendable {
        let now = Mutex<Double>(0)
        func advance(_ seconds: Double) { now.withLock { $0 += seconds } }
    }

    @Test("A burst drains the bucket; it refills at the rate; principals and classes are separate")
    func buckets() {
        let clock = ManualClock()
        let throttle = Throttle(
            configuration: Throttle.Configuration(
                discoverInstances: Throttle.Rate(burst: 5, perSecond: 2), controlPlane: Throttle.Rate(burst: 2, perSecond: 1)),
            clock: { clock.now.withLock { $0 } })
        let admitted = (0..<8).filter { _ in throttle.admit(principal: "a", region: "r", operation: "DiscoverInstances") }.count
        #expect(admitted == 5)
        #expect(throttle.admit(principal: "b", region: "r", operation: "DiscoverInstances"))
        #expect(throttle.admit(principal: "a", region: "other", operation: "DiscoverInstances"))
        #expect(throttle.admit(principal: "a", region: "r", operation: "RegisterInstance"))
        clock.advance(1)
        #expect(throttle.admit(principal: "a", region: "r", operation: "DiscoverInstances"))
        #expect(throttle.admit(principal: "a", region: "r", operation: "DiscoverInstances"))
        #expect(!throttle.admit(principal: "a", region: "r", operation: "DiscoverInstances"))
        clock.advance(100)
        let refilled = (0..<10).filter { _ in throttle.admit(principal: "a", region: "r", operation: "DiscoverInstances") }.count
        #expect(refilled == 5)
        #expect(throttle.refusedCount == 3 + 1 + 5)
    }

    @Test("AWS's defaults: Discover 2,000 burst / 1,000 per s, Revision 3,000 per s")
    func defaults() {
        let c = Throttle.Configuration()
        #expect(c.discoverInstances == Throttle.Rate(burst: 2000, perSecond: 1000))
        #expect(c.discoverInstancesRevision == Throttle.Rate(burst: 3000, perSecond: 3000))
        #expect(Throttle.Class(operation: "ListServices") == .controlPlane)
    }

    @Test("The bucket table is bounded: refilled buckets go first, then new keys share one overflow bucket")
    func bounded() {
        let clock = ManualClock()
        let throttle = Throttle(
            configuration: Throttle.Configuration(controlPlane: Throttle.Rate(burst: 2, perSecond: 0.001)), maxBuckets: 3,
            clock: { clock.now.withLock { $0 } })
        for key in ["a", "b", "c"] { #expect(throttle.admit(principal: key, region: "r", operation: "ListServices")) }
        #expect(throttle.bucketCount == 3)
        // Table full of live buckets: invented keys d, e, f share one overflow bucket of 2.
        let overflow = ["d", "e", "f"].filter { throttle.admit(principal: $0, region: "r", operation: "ListServices") }
        #expect(overflow == ["d", "e"])
        #expect(throttle.bucketCount == 4)
        // Once the buckets have refilled (they equal no bucket), they are dropped and a new key gets its own again.
        clock.advance(10_000)
        #expect(throttle.admit(principal: "g", region: "r", operation: "ListServices"))
        #expect(throttle.bucketCount <= 3)
    }

    @Test("Disabled throttling admits everything")
    func disabled() {
        let throttle = Throttle(
            configuration: Throttle.Configuration(enabled: false, discoverInstances: Throttle.Rate(burst: 1, perSecond: 0.001)))
        #expect((0..<100).allSatisfy { _ in throttle.admit(principal: "a", region: "r", operation: "DiscoverInstances") })
    }
}
