import CairnCore
import CloudMapWire

/// Who may do what: a named principal with its access keys' policies.
public struct Principal: Sendable, Equatable {
    public var name: String
    public var policies: [Policy]
    public init(name: String, policies: [Policy]) {
        self.name = name
        self.policies = policies
    }
}

/// One configured access key.
public struct Credential: Sendable, Equatable {
    public var secret: String
    public var principal: Principal
    public init(secret: String, principal: Principal) {
        self.secret = secret
        self.principal = principal
    }
}

/// The authenticated caller of one request.
struct Caller: Sendable {
    var accessKeyId: String
    var region: String
    /// nil in dev mode: everything is allowed.
    var principal: Principal?

    var identity: AuditEvent.Identity { AuditEvent.Identity(accessKeyId: accessKeyId, userName: principal?.name ?? "dev") }
}

/// The IAM action and resource table (cloudmap-behaviour.md §15): which resource ARNs each operation is checked
/// against and which condition keys it carries. Cairn adds the name keys (`servicediscovery:NamespaceName`,
/// `servicediscovery:ServiceName`) to every call on a known namespace or service, since ids are generated and
/// names are what policies can know in advance.
enum AuthorizationTable {
    static let prefix = "servicediscovery:"

    /// The questions one call must pass; every one must be allowed.
    static func requests(operation: String, input: JSONValue, state: RegistryState, context: RequestContext) -> [AuthorizationRequest] {
        let action = prefix + operation
        var requestKeys: [String: [String]] = [:]
        func requestTags(_ member: String = "Tags") {
            guard let tags = input[member]?.arrayValue else { return }
            var keys: [String] = []
            for tag in tags {
                guard let key = tag["Key"]?.stringValue else { continue }
                keys.append(key)
                requestKeys["aws:requesttag/\(key.lowercased())"] = [tag["Value"]?.stringValue ?? ""]
            }
            requestKeys["aws:tagkeys"] = keys
        }
        func namespaceRequest(_ idOrArn: String?, _ extra: [String: [String]] = [:]) -> AuthorizationRequest {
            var keys = extra.merging(requestKeys) { $1 }
            guard let idOrArn, let namespace = try? state.namespace(idOrArn, in: context) else {
                let arn = idOrArn.map {
                    $0.hasPrefix("arn:") ? $0 : ARN.namespace(region: context.region, account: context.account, id: $0)
                }
                return AuthorizationRequest(action: action, resource: arn ?? "*", keys: keys)
            }
            keys.merge(namespaceKeys(namespace)) { old, _ in old }
            for tag in namespace.tags { keys["aws:resourcetag/\(tag.key.lowercased())"] = [tag.value] }
            return AuthorizationRequest(action: action, resource: namespace.arn, keys: keys)
        }
        func serviceRequest(_ idOrArn: String?) -> AuthorizationRequest {
            var keys = requestKeys
            guard let idOrArn, let service = try? state.service(idOrArn, in: context) else {
                let arn = idOrArn.map { $0.hasPrefix("arn:") ? $0 : ARN.service(region: context.region, account: context.account, id: $0) }
                if let arn { keys["servicediscovery:servicearn"] = [arn] }
                return AuthorizationRequest(action: action, resource: arn ?? "*", keys: keys)
            }
            keys.merge(serviceKeys(service, state: state, context: context)) { old, _ in old }
            return AuthorizationRequest(action: action, resource: service.arn, keys: keys)
        }
        let id = input["Id"]?.stringValue
        switch operation {
        case "CreateHttpNamespace", "CreatePrivateDnsNamespace", "CreatePublicDnsNamespace":
            requestTags()
            let name = input["Name"]?.stringValue.map { [$0] } ?? []
            var result = [
                AuthorizationRequest(
                    action: action, resource: "*", keys: requestKeys.merging(["servicediscovery:namespacename": name]) { $1 })
            ]
            if !(input["Tags"]?.arrayValue ?? []).isEmpty {
                result.append(AuthorizationRequest(action: prefix + "TagResource", resource: "*", keys: requestKeys))
            }
            return result
        case "UpdateHttpNamespace", "UpdatePrivateDnsNamespace", "UpdatePublicDnsNamespace", "DeleteNamespace", "GetNamespace":
            return [namespaceRequest(id)]
        case "CreateService":
            requestTags()
            let name = input["Name"]?.stringValue.map { [$0] } ?? []
            var first = namespaceRequest(input["NamespaceId"]?.stringValue, ["servicediscovery:servicename": name])
            first.keys["servicediscovery:servicename"] = name
            var result = [first]
            if !(input["Tags"]?.arrayValue ?? []).isEmpty {
                var tagging = first
                tagging.action = prefix + "TagResource"
                result.append(tagging)
            }
            return result
        case "UpdateService", "DeleteService", "GetService":
            return [serviceRequest(id)]
        case "GetServiceAttributes", "UpdateServiceAttributes", "DeleteServiceAttributes", "RegisterInstance", "DeregisterInstance",
            "GetInstance", "ListInstances", "GetInstancesHealthStatus", "UpdateInstanceCustomHealthStatus":
            return [serviceRequest(input["ServiceId"]?.stringValue)]
        case "DiscoverInstances", "DiscoverInstancesRevision":
            let namespaceName = input["NamespaceName"]?.stringValue ?? ""
            let serviceName = input["ServiceName"]?.stringValue ?? ""
            let names: [String: [String]] = [
                "servicediscovery:namespacename": [namespaceName], "servicediscovery:servicename": [serviceName],
            ]
            guard let namespace = try? state.namespace(httpName: namespaceName, in: context) else {
                return [AuthorizationRequest(action: action, resource: "*", keys: names)]
            }
            var result = [namespaceRequest(namespace.id, names)]
            if let service = try? state.service(named: serviceName, in: namespace) {
                result.append(serviceRequest(service.id))
            }
            return result
        case "GetOperation":
            guard let operationId = input["OperationId"]?.stringValue, let op = try? state.operation(operationId, in: context) else {
                return [AuthorizationRequest(action: action, resource: "*")]
            }
            var result: [AuthorizationRequest] = []
            if let namespaceId = op.targets["NAMESPACE"] { result.append(namespaceRequest(namespaceId)) }
            if let serviceId = op.targets["SERVICE"] { result.append(serviceRequest(serviceId)) }
            return result.isEmpty ? [AuthorizationRequest(action: action, resource: "*")] : result
        case "TagResource", "UntagResource", "ListTagsForResource":
            if operation == "TagResource" { requestTags() }
            if operation == "UntagResource" { requestKeys["aws:tagkeys"] = input["TagKeys"]?.stringList ?? [] }
            let arn = input["ResourceARN"]?.stringValue ?? "*"
            return ARN.parse(arn)?.kind == "namespace" ? [namespaceRequest(arn)] : [serviceRequest(arn)]
        default:
            // ListNamespaces, ListServices, ListOperations: no resource.
            return [AuthorizationRequest(action: action, resource: "*")]
        }
    }

    static func namespaceKeys(_ namespace: Namespace) -> [String: [String]] {
        ["servicediscovery:namespacearn": [namespace.arn], "servicediscovery:namespacename": [namespace.name]]
    }

    static func serviceKeys(_ service: Service, state: RegistryState, context: RequestContext) -> [String: [String]] {
        var keys: [String: [String]] = [
            "servicediscovery:servicearn": [service.arn], "servicediscovery:servicename": [service.name],
            "servicediscovery:servicecreatedbyaccount": [service.createdByAccount],
        ]
        if let namespace = try? state.namespace(service.namespaceId, in: context) { keys.merge(namespaceKeys(namespace)) { $1 } }
        for tag in service.tags { keys["aws:resourcetag/\(tag.key.lowercased())"] = [tag.value] }
        return keys
    }
}
