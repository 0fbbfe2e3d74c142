import Foundation

/// Checks a parsed request against the model's shapes: JSON types (→ `SerializationException`) and the
/// constraints required / length / pattern / enum / range (→ `InvalidInput`, naming each member and why).
public enum ModelValidator {
    /// Validates `input` as an instance of the operation's input shape.
    public static func validate(_ input: JSONValue, operation: String) throws(WireError) {
        guard let op = ServiceModel.operations[operation] else {
            throw WireError(type: "UnknownOperationException", message: "Unknown operation \(operation).")
        }
        var problems = Problems()
        try check(input, shape: op.input, path: "", problems: &problems)
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

    private static func typeError(_ path: String, expected: String) -> WireError {
        WireError(
            type: "SerializationException",
            message: "Unexpected JSON type at '\(path.isEmpty ? "<request>" : path)': expected \(expected)."
        )
    }

    private static func describe(_ s: String) -> String {
        s.count > 64 ? "'\(s.prefix(64))…'" : "'\(s)'"
    }

    private static func join(_ path: String, _ member: String) -> String {
        let lowered = member.prefix(1).lowercased() + member.dropFirst()
        return path.isEmpty ? lowered : "\(path).\(lowered)"
    }

    static func check(_ value: JSONValue, shape name: String, path: String, problems: inout Problems) throws(WireError) {
        guard let shape = ServiceModel.shapes[name] else { return }
        if value == .null { return }
        switch shape {
        case .structure(let members, let required):
            guard case .object(let object) = value else { throw typeError(path, expected: "an object") }
            for member in required where object[member] == nil || object[member] == .null {
                problems.append("Value null at '\(join(path, member))' failed to satisfy constraint: Member must not be null")
            }
            for (key, child) in object {
                guard let childShape = members[key] else { continue }  // unknown members are ignored, as AWS does
                try check(child, shape: childShape, path: join(path, key), problems: &problems)
            }
        case .string(let min, let max, let pattern, let enumValues):
            guard case .string(let s) = value else { throw typeError(path, expected: "a string") }
            let length = s.unicodeScalars.count
            if let min, length < min {
                problems.append(
                    "Value \(describe(s)) at '\(path)' failed to satisfy constraint: Member must have length greater than or equal to \(min)"
                )
            }
            if let max, length > max {
                problems.append(
                    "Value \(describe(s)) at '\(path)' failed to satisfy constraint: Member must have length less than or equal to \(max)")
            }
            if let enumValues, !enumValues.contains(s) {
                problems.append(
                    "Value \(describe(s)) at '\(path)' failed to satisfy constraint: Member must satisfy enum value set: [\(enumValues.joined(separator: ", "))]"
                )
            }
            if let pattern, !PatternCache.matches(s, pattern: pattern) {
                problems.append(
                    "Value \(describe(s)) at '\(path)' failed to satisfy constraint: Member must satisfy regular expression pattern: \(pattern)"
                )
            }
        case .integer(let min, let max):
            let number: Int64
            switch value {
            case .int(let i): number = i
            case .double(let d):
                // A number outside Int64 or with a fraction is not an integer member.
                _ = d
                throw typeError(path, expected: "an integer")
            default: throw typeError(path, expected: "an integer")
            }
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
                if item == .null { throw typeError("\(path).\(i + 1).member", expected: "a list member, not null") }
                try check(item, shape: member, path: "\(path).\(i + 1).member", problems: &problems)
            }
        case .map(let key, let valueShape, let min, let max):
            guard case .object(let entries) = value else { throw typeError(path, expected: "a map") }
            if let min, entries.count < min {
                problems.append("Value at '\(path)' failed to satisfy constraint: Member must have length greater than or equal to \(min)")
            }
            if let max, entries.count > max {
                problems.append("Value at '\(path)' failed to satisfy constraint: Member must have length less than or equal to \(max)")
            }
            for (k, v) in entries.sorted(by: { $0.key < $1.key }) {
                try check(.string(k), shape: key, path: "\(path).key", problems: &problems)
                if v == .null { throw typeError("\(path).\(k)", expected: "a string, not null") }
                try check(v, shape: valueShape, path: "\(path).\(k)", problems: &problems)
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
