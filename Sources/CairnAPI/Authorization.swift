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

    var identity: CloudTrailEvent.Identity { CloudTrailEvent.Identity(accessKeyId: accessKeyId, userName: principal?.name ?? "dev") }
}

/// What one call touches, resolved once against one snapshot and shared by IAM (which resources are checked, with
/// which condition keys) and the audit record (which resources it names).
struct Subjects: Sendable {
    /// A namespace or service the call names: its ARN (made from the id when it is not found) and what was found.
    struct Named<Resource: Sendable>: Sendable {
        var arn: String
        var found: Resource?
    }

    var namespace: Named<Namespace>?
    var service: Named<Service>?
    /// The namespace of the service, when the service was found.
    var serviceNamespace: Namespace?
    /// Keys the subject adds to the first check (the names of what a create or discovery call names).
    var nameKeys: [String: [String]] = [:]

    init(_ spec: OperationSpec, input: JSONValue, state: RegistryState, context: RequestContext) {
        func namespace(_ idOrArn: String?) -> Named<Namespace>? {
            guard let idOrArn else { return nil }
            if let found = try? state.namespace(idOrArn, in: context) { return Named(arn: found.arn, found: found) }
            let arn = idOrArn.hasPrefix("arn:") ? idOrArn : ARN.namespace(region: context.region, account: context.account, id: idOrArn)
            return Named(arn: arn, found: nil)
        }
        func service(_ idOrArn: String?) -> Named<Service>? {
            guard let idOrArn else { return nil }
            if let found = try? state.service(idOrArn, in: context) { return Named(arn: found.arn, found: found) }
            let arn = idOrArn.hasPrefix("arn:") ? idOrArn : ARN.service(region: context.region, account: context.account, id: idOrArn)
            return Named(arn: arn, found: nil)
        }
        switch spec.subject {
        case .none:
            break
        case .newNamespace:
            nameKeys["servicediscovery:namespacename"] = input["Name"]?.stringValue.map { [$0] } ?? []
        case .namespace(let member):
            self.namespace = namespace(input[member]?.stringValue)
        case .newService:
            nameKeys["servicediscovery:servicename"] = input["Name"]?.stringValue.map { [$0] } ?? []
            self.namespace = namespace(input["NamespaceId"]?.stringValue ?? input["DnsConfig"]?["NamespaceId"]?.stringValue)
        case .service(let member):
            self.service = service(input[member]?.stringValue)
        case .discovery:
            let namespaceName = input["NamespaceName"]?.stringValue ?? ""
            let serviceName = input["ServiceName"]?.stringValue ?? ""
            nameKeys = ["servicediscovery:namespacename": [namespaceName], "servicediscovery:servicename": [serviceName]]
            if let found = try? state.namespace(httpName: namespaceName, in: context) {
                self.namespace = Named(arn: found.arn, found: found)
                if let named = try? state.service(named: serviceName, in: found) { self.service = Named(arn: named.arn, found: named) }
            }
        case .operation:
            if let id = input["OperationId"]?.stringValue, let op = try? state.operation(id, in: context) {
                self.namespace = namespace(op.targets["NAMESPACE"])
                self.service = service(op.targets["SERVICE"])
            }
        case .taggable:
            let arn = input["ResourceARN"]?.stringValue
            if let arn, ARN.parse(arn)?.kind == "namespace" {
                self.namespace = namespace(arn)
            } else {
                self.service = service(arn)
            }
        }
        if let found = self.service?.found { serviceNamespace = try? state.namespace(found.namespaceId, in: context) }
    }

    /// The ARNs the audit record names, for look-up by resource: the namespace, the service and its namespace.
    var auditResources: [String] {
        var arns: [String] = []
        if let namespace { arns.append(namespace.arn) }
        if let service {
            arns.append(service.arn)
            if let found = service.found {
                arns.append(serviceNamespace?.arn ?? ARN.namespace(region: found.region, account: found.account, id: found.namespaceId))
            }
        }
        var seen = Set<String>()
        return arns.filter { seen.insert($0).inserted }
    }
}

/// The IAM action and resource table (cloudmap-behaviour.md §15): which resource ARNs each operation is checked
/// against and which condition keys it carries. Cairn adds the name keys (`servicediscovery:NamespaceName`,
/// `servicediscovery:ServiceName`) to every call on a known namespace or service, since ids are generated and
/// names are what policies can know in advance.
enum AuthorizationTable {
    static let prefix = "servicediscovery:"

    /// The questions one call must pass; every one must be allowed.
    static func requests(_ spec: OperationSpec, input: JSONValue, subjects: Subjects) -> [AuthorizationRequest] {
        let action = prefix + spec.name
        var requestKeys: [String: [String]] = [:]
        switch spec.requestTags {
        case .none:
            break
        case .tags:
            var keys: [String] = []
            for tag in input["Tags"]?.arrayValue ?? [] {
                guard let key = tag["Key"]?.stringValue else { continue }
                keys.append(key)
                requestKeys["aws:requesttag/\(key.lowercased())"] = [tag["Value"]?.stringValue ?? ""]
            }
            if input["Tags"] != nil { requestKeys["aws:tagkeys"] = keys }
        case .keys:
            requestKeys["aws:tagkeys"] = input["TagKeys"]?.stringList ?? []
        }
        let keys = subjects.nameKeys.merging(requestKeys) { $1 }
        var result: [AuthorizationRequest] = []
        if let named = subjects.namespace {
            var namespaceKeys = keys
            if let namespace = named.found {
                namespaceKeys.merge(Self.namespaceKeys(namespace)) { old, _ in old }
                for tag in namespace.tags { namespaceKeys["aws:resourcetag/\(tag.key.lowercased())"] = [tag.value] }
            }
            if case .newService = spec.subject {
                namespaceKeys["servicediscovery:servicename"] = subjects.nameKeys["servicediscovery:servicename"]
            }
            result.append(AuthorizationRequest(action: action, resource: named.arn, keys: namespaceKeys))
        }
        if let named = subjects.service {
            // A discovery call's service check carries the request's keys only; its names are on the namespace check.
            var serviceKeys = subjects.namespace == nil ? keys : requestKeys
            if let service = named.found {
                serviceKeys.merge(Self.serviceKeys(service, namespace: subjects.serviceNamespace)) { old, _ in old }
            } else {
                serviceKeys["servicediscovery:servicearn"] = [named.arn]
            }
            result.append(AuthorizationRequest(action: action, resource: named.arn, keys: serviceKeys))
        }
        if result.isEmpty { result.append(AuthorizationRequest(action: action, resource: "*", keys: keys)) }
        // Creating with tags is also tagging (TagResource on the new resource's parent check).
        if case .newNamespace = spec.subject, !(input["Tags"]?.arrayValue ?? []).isEmpty {
            result.append(AuthorizationRequest(action: prefix + "TagResource", resource: "*", keys: requestKeys))
        }
        if case .newService = spec.subject, !(input["Tags"]?.arrayValue ?? []).isEmpty, var tagging = result.first {
            tagging.action = prefix + "TagResource"
            result.append(tagging)
        }
        return result
    }

    static func namespaceKeys(_ namespace: Namespace) -> [String: [String]] {
        ["servicediscovery:namespacearn": [namespace.arn], "servicediscovery:namespacename": [namespace.name]]
    }

    static func serviceKeys(_ service: Service, namespace: Namespace?) -> [String: [String]] {
        var keys: [String: [String]] = [
            "servicediscovery:servicearn": [service.arn], "servicediscovery:servicename": [service.name],
            "servicediscovery:servicecreatedbyaccount": [service.createdByAccount],
        ]
        if let namespace { keys.merge(namespaceKeys(namespace)) { $1 } }
        for tag in service.tags { keys["aws:resourcetag/\(tag.key.lowercased())"] = [tag.value] }
        return keys
    }
}
