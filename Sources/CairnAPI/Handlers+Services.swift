import CairnCore
import CloudMapWire

extension CloudMapAPI {
    func createService(_ call: Call) async throws(CairnError) -> Output {
        let dns = call.input["DnsConfig"]
        let command = CreateService(
            name: try call.required("Name"), namespaceId: call.string("NamespaceId"),
            dnsConfigNamespaceId: dns?["NamespaceId"]?.stringValue, description: call.string("Description"),
            dnsRecords: Call.records(dns), routingPolicy: dns?["RoutingPolicy"]?.stringValue.flatMap(RoutingPolicy.init(rawValue:)),
            healthCheckConfig: Call.healthCheck(call.input["HealthCheckConfig"]),
            customHealth: call.input["HealthCheckCustomConfig"] != nil, httpOnly: call.string("Type") == "HTTP",
            tags: call.tags(), creatorRequestId: call.string("CreatorRequestId"))
        guard case .service(let service) = try await submit(.createService(command), call) else {
            throw CairnError(.internalFailure, "CreateService returned no service.")
        }
        return .json(.object(["Service": Render.service(service, instanceCount: 0, summary: false)]))
    }

    func updateService(_ call: Call) async throws(CairnError) -> Output {
        let change = call.input["Service"]
        let command = UpdateService(
            id: try call.required("Id"), description: change?["Description"]?.stringValue,
            dnsRecords: Call.records(change?["DnsConfig"]), healthCheckConfig: Call.healthCheck(change?["HealthCheckConfig"]))
        return .json(Render.operationId(try await submit(.updateService(command), call)))
    }

    func deleteService(_ call: Call) async throws(CairnError) -> Output {
        _ = try await submit(.deleteService(id: try call.required("Id")), call)
        return .json(.object([:]))
    }

    func getService(_ call: Call) throws(CairnError) -> Output {
        let state = self.state
        let service = try state.service(try call.required("Id"), in: call.context)
        return .json(.object(["Service": Render.service(service, instanceCount: state.instances(of: service.id).count, summary: false)]))
    }

    func listServices(_ call: Call) throws(CairnError) -> Output {
        let state = self.state
        let filters = try ListFilter.parse(call.input["Filters"], rules: ListFilter.serviceRules)
        // NAMESPACE_ID values may be ids or ARNs.
        var namespaceIds: Set<String>?
        for filter in filters where filter.name == "NAMESPACE_ID" {
            let ids = Set(filter.values.compactMap { try? state.namespace($0, in: call.context).id })
            namespaceIds = namespaceIds.map { $0.intersection(ids) } ?? ids
        }
        let ownOnly = filters.first { $0.name == "RESOURCE_OWNER" }.map { $0.values.contains("SELF") } ?? true
        let (page, next) = try Pagination.page(
            state.services(in: call.context), key: { Pagination.key($0.createDate, $0.id) }, token: call.string("NextToken"),
            maxResults: call.maxResults, kind: "services")
        let kept = page.filter { service in ownOnly && (namespaceIds?.contains(service.namespaceId) ?? true) }
        var o: [String: JSONValue] = [
            "Services": .array(kept.map { Render.service($0, instanceCount: state.instances(of: $0.id).count, summary: true) })
        ]
        if let next { o["NextToken"] = .string(next) }
        return .json(.object(o))
    }

    func getServiceAttributes(_ call: Call) throws(CairnError) -> Output {
        let service = try state.service(try call.required("ServiceId"), in: call.context)
        return .json(
            .object([
                "ServiceAttributes": .object([
                    "ServiceArn": .string(service.arn), "ResourceOwner": .string(service.account),
                    "Attributes": Render.attributes(service.attributes),
                ])
            ]))
    }

    func updateServiceAttributes(_ call: Call) async throws(CairnError) -> Output {
        let attributes = call.input["Attributes"]?.stringMap ?? [:]
        _ = try await submit(.updateServiceAttributes(serviceId: try call.required("ServiceId"), attributes: attributes), call)
        return .json(.object([:]))
    }

    func deleteServiceAttributes(_ call: Call) async throws(CairnError) -> Output {
        let keys = call.input["Attributes"]?.stringList ?? []
        _ = try await submit(.deleteServiceAttributes(serviceId: try call.required("ServiceId"), keys: keys), call)
        return .json(.object([:]))
    }
}
