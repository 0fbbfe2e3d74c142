import Foundation

/// Checks a parsed request against the model's shapes: JSON types (→ `SerializationException`) and the
/// constraints required / length / pattern / enum / range (→ `InvalidInput`, naming each member and why).
public enum ModelValidator {
    /// Validates `input` as an instance of the operation's input shape.
    public static func validate(_ input: JSONValue, operation: String) throws(WireError) {
        guard let shape = CompiledModel.shared.inputs[operation] else {
            throw WireError(type: "UnknownOperationException", message: "Unknown operation \(operation).")
        }
        var problems = Problems()
        var path = Path()
        try check(input, shape, path: &path, problems: &problems)
        if problems.count > 0 { throw WireError(type: "InvalidInput", message: problems.message) }
    }

    /// The problems found: all are counted, the first `listed` are described (a request with 300,000 bad keys
    /// gets a short error, not 38 MB of one).
    struct Problems {
        static let listed = 10
        private(set) var descriptions: [String] = []
        private(set) var count = 0

        mutating func append(_ description: @autoclosure () -> String) {
            count += 1
            if descriptions.count < Self.listed { descriptions.append(description()) }
        }

        var message: String {
            let more = count > descriptions.count ? "; … and \(count - descriptions.count) more" : ""
            return "\(count) validation error\(count == 1 ? "" : "s") detected: " + descriptions.joined(separator: "; ") + more
        }
    }

    /// Where in the request a value is, as a stack of components rendered (`instanceId`, `attributes.KEY`,
    /// `filters.1.member`) only when something is wrong with it: a valid request builds no path strings.
    struct Path: CustomStringConvertible {
        private var components: [String] = []
        mutating func push(_ component: String) { components.append(component) }
        mutating func pop() { components.removeLast() }
        var description: String { components.joined(separator: ".") }
        var isEmpty: Bool { components.isEmpty }
    }

    private static func typeError(_ path: Path, expected: String) -> WireError {
        WireError(
            type: "SerializationException",
            message: "Unexpected JSON type at '\(path.isEmpty ? "<request>" : path.description)': expected \(expected)."
        )
    }

    private static func describe(_ s: String) -> String {
        s.count > 64 ? "'\(s.prefix(64))…'" : "'\(s)'"
    }

    static func check(
        _ value: JSONValue, _ shape: CompiledModel.Node, path: inout Path, problems: inout Problems
    ) throws(WireError) {
        if value == .null { return }
        switch shape.kind {
        case .unknown:
            return
        case .structure(let members, let required):
            guard case .object(let object) = value else { throw typeError(path, expected: "an object") }
            for member in required where object[member.name] == nil || object[member.name] == .null {
                path.push(member.lowered)
                problems.append("Value null at '\(path)' failed to satisfy constraint: Member must not be null")
                path.pop()
            }
            for (key, child) in object {
                guard let member = members[key] else { continue }  // unknown members are ignored, as AWS does
                path.push(member.lowered)
                try check(child, member.shape, path: &path, problems: &problems)
                path.pop()
            }
        case .string(let min, let max, let pattern, let enumValues, let matcher):
            guard case .string(let s) = value else { throw typeError(path, expected: "a string") }
            if min != nil || max != nil {
                let length = s.unicodeScalars.count
                if let min, length < min {
                    problems.append(
                        "Value \(describe(s)) at '\(path)' failed to satisfy constraint: Member must have length greater than or equal to \(min)"
                    )
                }
                if let max, length > max {
                    problems.append(
                        "Value \(describe(s)) at '\(path)' failed to satisfy constraint: Member must have length less than or equal to \(max)"
                    )
                }
            }
            if let enumValues, !enumValues.contains(s) {
                problems.append(
                    "Value \(describe(s)) at '\(path)' failed to satisfy constraint: Member must satisfy enum value set: [\(enumValues.joined(separator: ", "))]"
                )
            }
            if let pattern, !matcher(s) {
                problems.append(
                    "Value \(describe(s)) at '\(path)' failed to satisfy constraint: Member must satisfy regular expression pattern: \(pattern)"
                )
            }
        case .integer(let min, let max):
            // A number outside Int64 or with a fraction (a double) is not an integer member.
            guard case .int(let number) = value else { throw typeError(path, expected: "an integer") }
            if let min, number < min {
                problems.append(
                    "Value '\(number)' at '\(path)' failed to satisfy constraint: Member must have value greater than or equal to \(min)")
            }
            if let max, number > max {
                problems.append(
                    "Value '\(number)' at '\(path)' failed to satisfy constraint: Member must have value less than or equal to \(max)")
            }
        case .list(let member, let min, let max):
            guard case .array(let items) = value else { throw typeError(path, expected: "a list") }
            if let min, items.count < min {
                problems.append("Value at '\(path)' failed to satisfy constraint: Member must have length greater than or equal to \(min)")
            }
            if let max, items.count > max {
                problems.append("Value at '\(path)' failed to satisfy constraint: Member must have length less than or equal to \(max)")
            }
            for (i, item) in items.enumerated() {
                path.push(String(i + 1))
                path.push("member")
                if item == .null { throw typeError(path, expected: "a list member, not null") }
                try check(item, member, path: &path, problems: &problems)
                path.pop()
                path.pop()
            }
        case .map(let key, let valueShape, let min, let max):
            guard case .object(let entries) = value else { throw typeError(path, expected: "a map") }
            if let min, entries.count < min {
                problems.append("Value at '\(path)' failed to satisfy constraint: Member must have length greater than or equal to \(min)")
            }
            if let max, entries.count > max {
                problems.append("Value at '\(path)' failed to satisfy constraint: Member must have length less than or equal to \(max)")
            }
            // In key order, so the problems listed (and the error) do not depend on the dictionary's.
            for (k, v) in entries.sorted(by: { $0.key < $1.key }) {
                path.push("key")
                try check(.string(k), key, path: &path, problems: &problems)
                path.pop()
                path.push(k)
                if v == .null { throw typeError(path, expected: "a string, not null") }
                try check(v, valueShape, path: &path, problems: &problems)
                path.pop()
            }
        case .boolean:
            guard case .bool = value else { throw typeError(path, expected: "a boolean") }
        case .timestamp:
            switch value {
            case .int, .double: break
            default: throw typeError(path, expected: "a timestamp (epoch seconds)")
            }
        }
    }
}

/// The service model resolved once into a graph: each shape holds its members' shapes, their rendered (lower-camel)
/// names and its pattern's matcher, so validating a request looks nothing up by name and hashes no pattern text
/// (the name-keyed lookups were most of validation's cost, issue 12).
final class CompiledModel: Sendable {
    struct Member: Sendable {
        let name: String
        let lowered: String
        let shape: Node
    }

    enum Kind: Sendable {
        /// A shape name the model does not define: anything goes (as before).
        case unknown
        case structure(members: [String: Member], required: [Member])
        case string(min: Int?, max: Int?, pattern: String?, enumValues: Set<String>?, matcher: @Sendable (String) -> Bool)
        case integer(min: Int64?, max: Int64?)
        case list(member: Node, min: Int?, max: Int?)
        case map(key: Node, value: Node, min: Int?, max: Int?)
        case boolean
        case timestamp
    }

    /// One shape. Its kind is set once while the graph is built (shapes may refer to each other in any order),
    /// and never after `shared` is published.
    final class Node: @unchecked Sendable {
        fileprivate(set) var kind: Kind = .unknown
    }

    let inputs: [String: Node]

    static let shared = CompiledModel()

    private init() {
        var nodes: [String: Node] = [:]
        func node(_ name: String) -> Node {
            if let existing = nodes[name] { return existing }
            let created = Node()
            nodes[name] = created
            guard let shape = ServiceModel.shapes[name] else { return created }
            switch shape {
            case .structure(let members, let required):
                var resolved: [String: Member] = [:]
                for (key, child) in members {
                    resolved[key] = Member(name: key, lowered: key.prefix(1).lowercased() + key.dropFirst(), shape: node(child))
                }
                created.kind = .structure(
                    members: resolved,
                    required: required.map {
                        resolved[$0] ?? Member(name: $0, lowered: $0.prefix(1).lowercased() + $0.dropFirst(), shape: Node())
                    })
            case .string(let min, let max, let pattern, let enumValues):
                let matcher: @Sendable (String) -> Bool
                if let pattern {
                    if let fast = PatternCache.shared.fast[pattern] {
                        matcher = fast
                    } else {
                        matcher = { PatternCache.regexMatches($0, pattern: pattern) }
                    }
                } else {
                    matcher = { _ in true }
                }
                created.kind = .string(min: min, max: max, pattern: pattern, enumValues: enumValues.map(Set.init), matcher: matcher)
            case .integer(let min, let max):
                created.kind = .integer(min: min, max: max)
            case .list(let member, let min, let max):
                created.kind = .list(member: node(member), min: min, max: max)
            case .map(let key, let value, let min, let max):
                created.kind = .map(key: node(key), value: node(value), min: min, max: max)
            case .boolean:
                created.kind = .boolean
            case .timestamp:
                created.kind = .timestamp
            }
            return created
        }
        var inputs: [String: Node] = [:]
        for (name, operation) in ServiceModel.operations { inputs[name] = node(operation.input) }
        self.inputs = inputs
    }
}

/// Compiled model patterns. `NSRegularExpression` is immutable after creation and documented as safe to use
/// from several threads at once, hence `@unchecked Sendable`.
struct PatternCache: @unchecked Sendable {
    let compiled: [String: NSRegularExpression]
    let fast: [String: @Sendable (String) -> Bool]

    static let shared: PatternCache = {
        var compiled: [String: NSRegularExpression] = [:]
        for case .string(_, _, let pattern?, _) in ServiceModel.shapes.values {
            // The model's patterns are ICU-compatible; a failure here is a generator bug caught by the tests.
            compiled[pattern] = try? NSRegularExpression(pattern: pattern)
        }
        var fast: [String: @Sendable (String) -> Bool] = [:]
        for pattern in compiled.keys { fast[pattern] = PatternFastPaths.matcher(for: pattern) }
        return PatternCache(compiled: compiled, fast: fast)
    }()

    static func matches(_ s: String, pattern: String) -> Bool {
        if let fast = shared.fast[pattern] { return fast(s) }
        return regexMatches(s, pattern: pattern)
    }

    static func regexMatches(_ s: String, pattern: String) -> Bool {
        guard let regex = shared.compiled[pattern] else { return false }
        let range = NSRange(s.startIndex..<s.endIndex, in: s)
        guard let match = regex.firstMatch(in: s, options: [.anchored], range: range) else { return false }
        return match.range.location == 0 && match.range.length == range.length
    }

    /// Patterns that failed to compile (expected empty).
    static var uncompilable: [String] {
        var missing: [String] = []
        for case .string(_, _, let pattern?, _) in ServiceModel.shapes.values where shared.compiled[pattern] == nil {
            missing.append(pattern)
        }
        return missing
    }
}

extension ModelValidator {
    /// Patterns of the model that the regex engine could not compile; a test asserts this is empty.
    public static var uncompilablePatterns: [String] { PatternCache.uncompilable }

    /// Patterns answered by a hand-written matcher instead of the regex engine.
    public static var fastPathPatterns: [String] { Array(PatternCache.shared.fast.keys) }

    /// The regex engine's verdict, bypassing any fast path (for the equivalence tests).
    public static func regexMatches(_ s: String, pattern: String) -> Bool { PatternCache.regexMatches(s, pattern: pattern) }

    /// The verdict actually used (fast path where there is one).
    public static func matches(_ s: String, pattern: String) -> Bool { PatternCache.matches(s, pattern: pattern) }

    /// Whether `s` fully matches the model pattern of string shape `shape`.
    public static func matches(_ s: String, shape: String) -> Bool {
        guard case .string(_, _, let pattern?, _)? = ServiceModel.shapes[shape] else { return true }
        return PatternCache.matches(s, pattern: pattern)
    }
}
