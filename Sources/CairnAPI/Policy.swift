import CloudMapWire

/// An IAM-style identity policy: `{"Version": "2012-10-17", "Statement": [...]}` with Effect, Action/NotAction,
/// Resource/NotResource and Condition, evaluated the way IAM evaluates identity policies: default deny, an
/// explicit Deny wins over any Allow.
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
public struct Policy: Sendable, Equatable {
    public enum Effect: String, Sendable { case Allow, Deny }

    /// A list of patterns (`*` any run of characters, `?` one character), or its complement (`NotAction`).
    public struct Patterns: Sendable, Equatable {
        public var patterns: [String]
        public var negated: Bool

        func matches(_ value: String, caseInsensitive: Bool) -> Bool {
            let hit = patterns.contains { Wildcard.matches($0, value, caseInsensitive: caseInsensitive) }
            return negated ? !hit : hit
        }
    }

    public struct Condition: Sendable, Equatable {
        public enum SetQualifier: Sendable { case none, forAllValues, forAnyValue }
        public enum Comparison: String, Sendable, CaseIterable {
            case StringEquals, StringNotEquals, StringEqualsIgnoreCase, StringNotEqualsIgnoreCase, StringLike, StringNotLike
            case ArnEquals, ArnNotEquals, ArnLike, ArnNotLike, Null, Bool
        }
        public var comparison: Comparison
        public var qualifier: SetQualifier
        public var ifExists: Bool
        /// Condition keys are case-insensitive; stored lower-cased.
        public var key: String
        public var values: [String]
    }

    public struct Statement: Sendable, Equatable {
        public var sid: String?
        public var effect: Effect
        public var actions: Patterns
        public var resources: Patterns
        public var conditions: [Condition]
    }

    public var statements: [Statement]

    public init(statements: [Statement]) { self.statements = statements }
}

public struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension Policy {
    /// Parses a policy document; every problem names the statement and member.
    public static func parse(_ document: JSONValue) throws(PolicyError) -> Policy {
        guard let root = document.objectValue else { throw PolicyError("a policy must be a JSON object") }
        for key in root.keys where !["Version", "Id", "Statement"].contains(key) {
            throw PolicyError("unknown policy member '\(key)'")
        }
        if let version = root["Version"], !["2012-10-17", "2008-10-17"].contains(version.stringValue ?? "") {
            throw PolicyError("Version must be \"2012-10-17\"")
        }
        let list: [JSONValue]
        switch root["Statement"] {
        case .array(let items)?: list = items
        case .object?: list = [root["Statement"]!]
        default: throw PolicyError("Statement must be an object or a list of objects")
        }
        if list.isEmpty { throw PolicyError("Statement must not be empty") }
        var statements: [Statement] = []
        for (index, item) in list.enumerated() {
            statements.append(try parseStatement(item, index: index))
        }
        return Policy(statements: statements)
    }

    private static func parseStatement(_ value: JSONValue, index: Int) throws(PolicyError) -> Statement {
        let at = "Statement[\(index)]"
        guard let members = value.objectValue else { throw PolicyError("\(at) must be an object") }
        for key in members.keys where !["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"].contains(key) {
            if key == "Principal" || key == "NotPrincipal" {
                throw PolicyError("\(at): \(key) is not allowed in an identity policy")
            }
            throw PolicyError("\(at): unknown member '\(key)'")
        }
        guard let effect = members["Effect"]?.stringValue.flatMap(Effect.init(rawValue:)) else {
            throw PolicyError("\(at).Effect must be Allow or Deny")
        }
        let actions = try patterns(members, "Action", "NotAction", at: at)
        for pattern in actions.patterns where pattern != "*" && !pattern.contains(":") {
            throw PolicyError("\(at): action '\(pattern)' must be service:Action, e.g. servicediscovery:DiscoverInstances")
        }
        let resources = try patterns(members, "Resource", "NotResource", at: at)
        var conditions: [Condition] = []
        if let block = members["Condition"] {
            guard let operators = block.objectValue else { throw PolicyError("\(at).Condition must be an object") }
            for (name, keys) in operators.sorted(by: { $0.key < $1.key }) {
                conditions += try parseCondition(name, keys, at: "\(at).Condition")
            }
        }
        return Statement(
            sid: members["Sid"]?.stringValue, effect: effect, actions: actions, resources: resources, conditions: conditions)
    }

    private static func patterns(_ members: [String: JSONValue], _ positive: String, _ negative: String, at: String)
        throws(PolicyError) -> Patterns
    {
        switch (members[positive], members[negative]) {
        case (let value?, nil): return Patterns(patterns: try strings(value, "\(at).\(positive)"), negated: false)
        case (nil, let value?): return Patterns(patterns: try strings(value, "\(at).\(negative)"), negated: true)
        case (nil, nil): throw PolicyError("\(at) needs \(positive) or \(negative)")
        default: throw PolicyError("\(at) may have \(positive) or \(negative), not both")
        }
    }

    private static func strings(_ value: JSONValue, _ at: String) throws(PolicyError) -> [String] {
        switch value {
        case .string(let s): return [s]
        case .array(let items) where !items.isEmpty:
            var result: [String] = []
            for item in items {
                switch item {
                case .string(let s): result.append(s)
                case .bool(let b): result.append(b ? "true" : "false")
                case .int(let i): result.append(String(i))
                default: throw PolicyError("\(at) must hold strings")
                }
            }
            return result
        case .bool(let b): return [b ? "true" : "false"]
        case .int(let i): return [String(i)]
        default: throw PolicyError("\(at) must be a string or a non-empty list of strings")
        }
    }

    private static func parseCondition(_ name: String, _ keys: JSONValue, at: String) throws(PolicyError) -> [Condition] {
        var rest = Substring(name)
        var qualifier = Condition.SetQualifier.none
        if rest.hasPrefix("ForAllValues:") {
            qualifier = .forAllValues
            rest = rest.dropFirst("ForAllValues:".count)
        } else if rest.hasPrefix("ForAnyValue:") {
            qualifier = .forAnyValue
            rest = rest.dropFirst("ForAnyValue:".count)
        }
        var ifExists = false
        if rest.hasSuffix("IfExists") {
            ifExists = true
            rest = rest.dropLast("IfExists".count)
        }
        guard let comparison = Condition.Comparison(rawValue: String(rest)) else {
            let known = Condition.Comparison.allCases.map(\.rawValue).joined(separator: ", ")
            throw PolicyError(
                "\(at): unsupported condition operator '\(name)' (supported: \(known), with ForAllValues:/ForAnyValue: and IfExists)")
        }
        guard let entries = keys.objectValue, !entries.isEmpty else {
            throw PolicyError("\(at).\(name) must map condition keys to values")
        }
        var result: [Condition] = []
        for (key, value) in entries.sorted(by: { $0.key < $1.key }) {
            result.append(
                Condition(
                    comparison: comparison, qualifier: qualifier, ifExists: ifExists, key: key.lowercased(),
                    values: try strings(value, "\(at).\(name).\(key)")))
        }
        return result
    }
}

/// One authorization question: may this principal perform `action` on `resource`, given these condition keys?
public struct AuthorizationRequest: Sendable, Equatable {
    /// `servicediscovery:RegisterInstance`.
    public var action: String
    /// The resource ARN, or `*` for actions without a resource.
    public var resource: String
    /// Condition key (lower-cased) → values. Multi-valued keys such as `aws:TagKeys` carry several.
    public var keys: [String: [String]]

    public init(action: String, resource: String, keys: [String: [String]] = [:]) {
        self.action = action
        self.resource = resource
        self.keys = Dictionary(keys.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
    }
}

public enum PolicyDecision: Sendable, Equatable {
    case allow
    /// A Deny statement matched (its Sid, if any).
    case explicitDeny(String?)
    /// No Allow statement matched.
    case implicitDeny

    public var allowed: Bool { self == .allow }
}

extension Policy {
    /// IAM's identity-policy logic over all of a principal's policies.
    public static func evaluate(_ policies: [Policy], _ request: AuthorizationRequest) -> PolicyDecision {
        var allowed = false
        for policy in policies {
            for statement in policy.statements where statement.applies(to: request) {
                if statement.effect == .Deny { return .explicitDeny(statement.sid) }
                allowed = true
            }
        }
        return allowed ? .allow : .implicitDeny
    }
}

extension Policy.Statement {
    func applies(to request: AuthorizationRequest) -> Bool {
        actions.matches(request.action, caseInsensitive: true)
            && resources.matches(request.resource, caseInsensitive: false)
            && conditions.allSatisfy { $0.holds(for: request.keys[$0.key]) }
    }
}

extension Policy.Condition {
    /// Whether the condition holds for the request's values of its key (nil: the key is absent).
    func holds(for present: [String]?) -> Bool {
        switch comparison {
        case .Null:
            let wantsAbsent = values.contains { $0.lowercased() == "true" }
            return (present == nil || present!.isEmpty) == wantsAbsent
        default: break
        }
        guard let requestValues = present else {
            if ifExists { return true }
            switch qualifier {
            case .forAllValues: return true
            case .forAnyValue: return false
            case .none: return isNegated
            }
        }
        switch qualifier {
        case .forAllValues:
            return requestValues.allSatisfy { matchesOne($0) }
        case .forAnyValue:
            return requestValues.contains { matchesOne($0) }
        case .none:
            if isNegated { return requestValues.allSatisfy { matchesOne($0) } }
            return requestValues.contains { matchesOne($0) }
        }
    }

    var isNegated: Bool {
        switch comparison {
        case .StringNotEquals, .StringNotEqualsIgnoreCase, .StringNotLike, .ArnNotEquals, .ArnNotLike: return true
        default: return false
        }
    }

    /// One request value against the condition's values (any of them), negated for the Not operators.
    private func matchesOne(_ value: String) -> Bool {
        let hit: Bool
        switch comparison {
        case .StringEquals, .StringNotEquals, .ArnEquals, .ArnNotEquals:
            hit = values.contains(value)
        case .StringEqualsIgnoreCase, .StringNotEqualsIgnoreCase:
            hit = values.contains { $0.lowercased() == value.lowercased() }
        case .StringLike, .StringNotLike, .ArnLike, .ArnNotLike:
            hit = values.contains { Wildcard.matches($0, value, caseInsensitive: false) }
        case .Bool:
            hit = values.contains { $0.lowercased() == value.lowercased() }
        case .Null:
            hit = false
        }
        return isNegated ? !hit : hit
    }
}

/// IAM wildcards: `*` matches any run of characters (also none), `?` exactly one.
enum Wildcard {
    static func matches(_ pattern: String, _ value: String, caseInsensitive: Bool) -> Bool {
        if pattern == "*" { return true }
        let p = Array((caseInsensitive ? pattern.lowercased() : pattern).utf8)
        let v = Array((caseInsensitive ? value.lowercased() : value).utf8)
        var pi = 0
        var vi = 0
        var star = -1
        var mark = 0
        while vi < v.count {
            if pi < p.count, p[pi] == UInt8(ascii: "?") || p[pi] == v[vi] {
                pi += 1
                vi += 1
            } else if pi < p.count, p[pi] == UInt8(ascii: "*") {
                star = pi
                mark = vi
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                vi = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
