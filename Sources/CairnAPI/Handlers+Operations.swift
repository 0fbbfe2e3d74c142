import CairnCore
import CloudMapWire

extension CloudMapAPI {
    func getOperation(_ call: Call) throws(CairnError) -> Output {
        if let owner = call.string("OwnerAccount"), owner != call.context.account {
            throw CairnError(.operationNotFound, "No operation exists with the ID \(call.string("OperationId") ?? "").")
        }
        let op = try state.operation(try call.required("OperationId"), in: call.context)
        return .json(.object(["Operation": Render.operation(op)]))
    }

    func listOperations(_ call: Call) throws(CairnError) -> Output {
        let filters = try ListFilter.parse(call.input["Filters"], rules: ListFilter.operationRules)
        let (page, next) = try Pagination.page(
            state.operations(in: call.context), key: { Pagination.key(Int64($0.sequence), $0.id) },
            token: call.string("NextToken"), maxResults: call.maxResults, kind: "operations")
        let kept = page.filter { op in
            filters.allSatisfy { filter in
                switch filter.name {
                case "NAMESPACE_ID": return filter.matches(op.targets["NAMESPACE"] ?? "")
                case "SERVICE_ID": return filter.matches(op.targets["SERVICE"] ?? "")
                case "STATUS": return filter.matches(op.status.rawValue)
                case "TYPE": return filter.matches(op.type.rawValue)
                default:  // UPDATE_DATE BETWEEN start and end, epoch milliseconds, inclusive
                    let bounds = filter.values.compactMap { Int64($0) }
                    return bounds.count == 2 && op.updateDate >= bounds[0] && op.updateDate <= bounds[1]
                }
            }
        }
        var o: [String: JSONValue] = [
            "Operations": .array(kept.map { .object(["Id": .string($0.id), "Status": .string($0.status.rawValue)]) })
        ]
        if let next { o["NextToken"] = .string(next) }
        return .json(.object(o))
    }
}
