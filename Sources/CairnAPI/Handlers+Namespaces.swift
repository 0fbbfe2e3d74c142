import CairnCore
import CloudMapWire

extension CloudMapAPI {
    func createNamespace(_ call: Call, type: NamespaceType) async throws(CairnError) -> Output {
        let command = CreateNamespace(
            type: type, name: try call.required("Name"), description: call.string("Description"),
            network: type == .DNS_PRIVATE ? call.string("Vpc") : nil, soaTTL: call.soaTTL(call.input), tags: call.tags(),
            creatorRequestId: call.string("CreatorRequestId"))
        return .json(Render.operationId(try await submit(.createNamespace(command), call)))
    }

    func updateNamespace(_ call: Call, type: NamespaceType) async throws(CairnError) -> Output {
        let change = call.input["Namespace"]
        let command = UpdateNamespace(
            id: try call.required("Id"), type: type, description: change?["Description"]?.stringValue,
            soaTTL: call.soaTTL(change), updaterRequestId: call.string("UpdaterRequestId"))
        return .json(Render.operationId(try await submit(.updateNamespace(command), call)))
    }

    func deleteNamespace(_ call: Call) async throws(CairnError) -> Output {
        .json(Render.operationId(try await submit(.deleteNamespace(id: try call.required("Id")), call)))
    }

    func getNamespace(_ call: Call) throws(CairnError) -> Output {
        let state = self.state
        let ns = try state.namespace(try call.required("Id"), in: call.context)
        return .json(.object(["Namespace": Render.namespace(ns, serviceCount: state.serviceCount(ofNamespace: ns.id), summary: false)]))
    }

    func listNamespaces(_ call: Call) throws(CairnError) -> Output {
        let state = self.state
        let filters = try ListFilter.parse(call.input["Filters"], rules: ListFilter.namespaceRules)
        let (page, next) = try Pagination.page(
            state.namespaces(in: call.context), key: { Pagination.key($0.createDate, $0.id) }, token: call.string("NextToken"),
            maxResults: call.maxResults, kind: "namespaces")
        // Cloud Map cuts the page first and filters it afterwards: a page may be short, even empty, with a NextToken.
        let kept = page.filter { ns in
            filters.allSatisfy { filter in
                switch filter.name {
                case "TYPE": return filter.matches(ns.type.rawValue)
                case "NAME": return filter.matches(ns.name)
                case "HTTP_NAME": return filter.matches(ns.httpName)
                default: return filter.values.contains("SELF")  // RESOURCE_OWNER: every namespace here is the caller's own
                }
            }
        }
        var o: [String: JSONValue] = [
            "Namespaces": .array(kept.map { Render.namespace($0, serviceCount: state.serviceCount(ofNamespace: $0.id), summary: true) })
        ]
        if let next { o["NextToken"] = .string(next) }
        return .json(.object(o))
    }
}
