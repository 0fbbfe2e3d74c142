import CairnCore
import CloudMapWire

/// A validated list filter (`Name`, `Condition`, `Values`) of ListNamespaces / ListServices / ListOperations.
struct ListFilter: Sendable {
    enum Condition: String, Sendable { case EQ, IN, BETWEEN, BEGINS_WITH }

    /// Which conditions a filter name allows, and the values it accepts (nil: any).
    struct Rule: Sendable {
        var conditions: Set<Condition>
        var allowedValues: Set<String>?
    }

    var name: String
    var condition: Condition
    var values: [String]

    func matches(_ candidate: String) -> Bool {
        switch condition {
        case .EQ, .IN: return values.contains(candidate)
        case .BEGINS_WITH: return candidate.hasPrefix(values[0])
        case .BETWEEN: return false
        }
    }

    static let namespaceTypes: Set<String> = Set(NamespaceType.allCases.map(\.rawValue))
    static let owners: Set<String> = ["SELF", "OTHER_ACCOUNTS"]

    static let namespaceRules: [String: Rule] = [
        "TYPE": Rule(conditions: [.EQ, .IN, .BEGINS_WITH], allowedValues: namespaceTypes),
        "NAME": Rule(conditions: [.EQ, .BEGINS_WITH], allowedValues: nil),
        "HTTP_NAME": Rule(conditions: [.EQ, .BEGINS_WITH], allowedValues: nil),
        "RESOURCE_OWNER": Rule(conditions: [.EQ], allowedValues: owners),
    ]
    static let serviceRules: [String: Rule] = [
        "NAMESPACE_ID": Rule(conditions: [.EQ, .IN], allowedValues: nil),
        "RESOURCE_OWNER": Rule(conditions: [.EQ], allowedValues: owners),
    ]
    static let operationRules: [String: Rule] = [
        "NAMESPACE_ID": Rule(conditions: [.EQ], allowedValues: nil),
        "SERVICE_ID": Rule(conditions: [.EQ], allowedValues: nil),
        "STATUS": Rule(conditions: [.EQ, .IN], allowedValues: Set(OperationStatus.allCases.map(\.rawValue) + ["SUCCEED"])),
        "TYPE": Rule(conditions: [.EQ, .IN], allowedValues: Set(OperationType.allCases.map(\.rawValue))),
        "UPDATE_DATE": Rule(conditions: [.BETWEEN], allowedValues: nil),
    ]

    static func parse(_ value: JSONValue?, rules: [String: Rule]) throws(CairnError) -> [ListFilter] {
        var filters: [ListFilter] = []
        for item in value?.arrayValue ?? [] {
            guard let name = item["Name"]?.stringValue, let rule = rules[name] else {
                throw CairnError.invalid("Filter name \(item["Name"]?.stringValue ?? "") is not supported here.")
            }
            let conditionText = item["Condition"]?.stringValue ?? "EQ"
            guard let condition = Condition(rawValue: conditionText), rule.conditions.contains(condition) else {
                throw CairnError.invalid(
                    "Filter \(name) does not support condition \(conditionText); use \(rule.conditions.map(\.rawValue).sorted().joined(separator: " or "))."
                )
            }
            var values = item["Values"]?.stringList ?? []
            switch condition {
            case .EQ, .BEGINS_WITH:
                guard values.count == 1 else { throw CairnError.invalid("Filter \(name) with \(conditionText) takes exactly one value.") }
            case .IN:
                guard !values.isEmpty else { throw CairnError.invalid("Filter \(name) with IN takes at least one value.") }
            case .BETWEEN:
                guard values.count == 2, values.allSatisfy({ Int64($0) != nil }) else {
                    throw CairnError.invalid("Filter \(name) with BETWEEN takes exactly two values: start and end in epoch milliseconds.")
                }
            }
            if let allowed = rule.allowedValues, condition != .BEGINS_WITH {
                if let bad = values.first(where: { !allowed.contains($0) }) {
                    throw CairnError.invalid("Filter \(name) value \(bad) is not one of \(allowed.sorted().joined(separator: ", ")).")
                }
            }
            if name == "STATUS" { values = values.map { $0 == "SUCCEED" ? "SUCCESS" : $0 } }
            filters.append(ListFilter(name: name, condition: condition, values: values))
        }
        return filters
    }
}
