/// Read access with AWS's lookup rules: ids or ARNs, scoped to the caller's region and account.
extension RegistryState {
    /// The id in a bare id or an ARN of the given kind; nil when `text` is an ARN of another kind.
    static func idPart(_ text: String, kind: String, context: RequestContext) -> String? {
        guard text.hasPrefix("arn:") else { return text }
        guard let arn = ARN.parse(text), arn.kind == kind, arn.region == context.region, arn.account == context.account
        else { return nil }
        return arn.id
    }

    public func namespace(_ idOrArn: String, in context: RequestContext) throws(CairnError) -> Namespace {
        guard let id = Self.idPart(idOrArn, kind: "namespace", context: context), let ns = namespaces[id],
            ns.region == context.region, ns.account == context.account
        else { throw CairnError(.namespaceNotFound, "No namespace exists with the ID \(idOrArn).") }
        return ns
    }

    public func service(_ idOrArn: String, in context: RequestContext) throws(CairnError) -> Service {
        guard let id = Self.idPart(idOrArn, kind: "service", context: context), let service = services[id],
            service.region == context.region, service.account == context.account
        else { throw CairnError(.serviceNotFound, "No service exists with the ID \(idOrArn).") }
        return service
    }

    public func instance(_ instanceId: String, of service: Service) throws(CairnError) -> Instance {
        guard let instance = instances[service.id]?[instanceId] else {
            throw CairnError(.instanceNotFound, "No instance exists with the ID \(instanceId) in service \(service.id).")
        }
        return instance
    }

    public func instances(of serviceId: String) -> Table<Instance> { instances[serviceId] ?? [:] }

    public func operation(_ id: String, in context: RequestContext) throws(CairnError) -> Operation {
        guard let op = operations[id], op.region == context.region, op.account == context.account else {
            throw CairnError(.operationNotFound, "No operation exists with the ID \(id).")
        }
        return op
    }

    /// The namespace DiscoverInstances addresses: by HttpName, never by Name.
    public func namespace(httpName: String, in context: RequestContext) throws(CairnError) -> Namespace {
        guard let id = httpNameIndex[Self.httpNameKey(region: context.region, account: context.account, httpName: httpName)],
            let ns = namespaces[id]
        else { throw CairnError(.namespaceNotFound, "No namespace exists with the HTTP name \(httpName).") }
        return ns
    }

    public func service(named name: String, in namespace: Namespace) throws(CairnError) -> Service {
        guard let id = serviceNameIndex[serviceNameKey(namespace: namespace, name: name)], let service = services[id] else {
            throw CairnError(.serviceNotFound, "No service named \(name) exists in namespace \(namespace.httpName).")
        }
        return service
    }

    public func serviceCount(ofNamespace id: String) -> Int { servicesPerNamespace[id] ?? 0 }
    public func instanceCount(ofNamespace id: String) -> Int { instancesPerNamespace[id] ?? 0 }

    /// Namespaces of the caller's region and account in creation order.
    public func namespaces(in context: RequestContext) -> [Namespace] {
        namespaces.values.filter { $0.region == context.region && $0.account == context.account }
            .sorted { ($0.createDate, $0.id) < ($1.createDate, $1.id) }
    }

    public func services(in context: RequestContext) -> [Service] {
        services.values.filter { $0.region == context.region && $0.account == context.account }
            .sorted { ($0.createDate, $0.id) < ($1.createDate, $1.id) }
    }

    public func operations(in context: RequestContext) -> [Operation] {
        operations.values.filter { $0.region == context.region && $0.account == context.account }
            .sorted { ($0.sequence, $0.id) < ($1.sequence, $1.id) }
    }

    /// Tags of the namespace or service an ARN names.
    public func tags(ofResource arnText: String, in context: RequestContext) throws(CairnError) -> [Tag] {
        switch try resource(arnText, in: context) {
        case .namespace(let ns): return ns.tags
        case .service(let service): return service.tags
        }
    }

    public enum TaggableResource: Sendable {
        case namespace(Namespace)
        case service(Service)
    }

    public func resource(_ arnText: String, in context: RequestContext) throws(CairnError) -> TaggableResource {
        guard let arn = ARN.parse(arnText), arn.kind == "namespace" || arn.kind == "service" else {
            throw CairnError.invalid("\(arnText) is not a servicediscovery namespace or service ARN.")
        }
        let notFound = CairnError(.resourceNotFound, "The resource \(arnText) can't be found.")
        guard arn.region == context.region, arn.account == context.account else { throw notFound }
        if arn.kind == "namespace" {
            guard let ns = namespaces[arn.id], ns.region == context.region else { throw notFound }
            return .namespace(ns)
        }
        guard let service = services[arn.id], service.region == context.region else { throw notFound }
        return .service(service)
    }
}
