import CairnCore
import CloudMapWire

extension CloudMapAPI {
    func registerInstance(_ call: Call) async throws(CairnError) -> Output {
        let command = RegisterInstance(
            serviceId: try call.required("ServiceId"), instanceId: try call.required("InstanceId"),
            attributes: call.input["Attributes"]?.stringMap ?? [:], creatorRequestId: call.string("CreatorRequestId"))
        return .json(Render.operationId(try await submit(.registerInstance(command), call)))
    }

    func deregisterInstance(_ call: Call) async throws(CairnError) -> Output {
        let command = Command.deregisterInstance(serviceId: try call.required("ServiceId"), instanceId: try call.required("InstanceId"))
        return .json(Render.operationId(try await submit(command, call)))
    }

    func getInstance(_ call: Call) throws(CairnError) -> Output {
        let state = self.state
        let service = try state.service(try call.required("ServiceId"), in: call.context)
        let instance = try state.instance(try call.required("InstanceId"), of: service)
        return .json(.object(["ResourceOwner": .string(service.account), "Instance": Render.instance(instance, summary: false)]))
    }

    func listInstances(_ call: Call) throws(CairnError) -> Output {
        let state = self.state
        let service = try state.service(try call.required("ServiceId"), in: call.context)
        let all = state.instances(of: service.id).values.sorted { $0.id < $1.id }
        let (page, next) = try Pagination.page(
            all, key: \.id, token: call.string("NextToken"), maxResults: call.maxResults, kind: "instances:\(service.id)")
        var o: [String: JSONValue] = [
            "ResourceOwner": .string(service.account), "Instances": .array(page.map { Render.instance($0, summary: true) }),
        ]
        if let next { o["NextToken"] = .string(next) }
        return .json(.object(o))
    }

    func getInstancesHealthStatus(_ call: Call) throws(CairnError) -> Output {
        let state = self.state
        let service = try state.service(try call.required("ServiceId"), in: call.context)
        let registered = state.instances(of: service.id)
        var chosen: [Instance]
        if let wanted = call.input["Instances"]?.stringList {
            chosen = []
            for id in Set(wanted).sorted() { chosen.append(try state.instance(id, of: service)) }
        } else {
            chosen = registered.values.sorted { $0.id < $1.id }
        }
        let (page, next) = try Pagination.page(
            chosen, key: \.id, token: call.string("NextToken"), maxResults: call.maxResults, kind: "health:\(service.id)")
        var status: [String: JSONValue] = [:]
        for instance in page { status[instance.id] = .string(Discovery.reportedHealth(instance, in: service).rawValue) }
        var o: [String: JSONValue] = ["Status": .object(status)]
        if let next { o["NextToken"] = .string(next) }
        return .json(.object(o))
    }

    func updateInstanceCustomHealthStatus(_ call: Call) async throws(CairnError) -> Output {
        let status: HealthStatus = call.string("Status") == "UNHEALTHY" ? .UNHEALTHY : .HEALTHY
        let command = Command.setCustomHealth(
            serviceId: try call.required("ServiceId"), instanceId: try call.required("InstanceId"), status: status)
        _ = try await submit(command, call)
        return .json(.object([:]))
    }
}
