import CairnCore
import CloudMapWire
import Foundation

/// Prometheus HTTP service discovery, a Cairn extension (docs/api-compatibility.md):
/// `GET /cairn/v1/prometheus-sd?namespace=NAME[&service=NAME][&health=HEALTHY|ALL|UNHEALTHY|HEALTHY_OR_ELSE_ALL][&region=R]`
/// answers in the format of Prometheus' `http_sd_configs`: one target group per instance, the target
/// `AWS_INSTANCE_IPV4` (else `[AWS_INSTANCE_IPV6]`, else `AWS_INSTANCE_CNAME`) with `:AWS_INSTANCE_PORT` when there
/// is one, and `__meta_cairn_*` labels. Prometheus signs nothing with SigV4 here, so besides SigV4 the route takes
/// HTTP Basic authentication with an access key id and its secret (`basic_auth` in Prometheus; send it over TLS).
public enum PrometheusSD {
    public struct Query: Sendable, Equatable {
        public var namespaceName: String
        public var serviceName: String?
        public var health: HealthStatusFilter
        public var region: String?

        public static func parse(_ parameters: [String: String]) throws(WireError) -> Query {
            guard let namespace = parameters["namespace"], !namespace.isEmpty, namespace.utf8.count <= 1024 else {
                throw WireError(type: "InvalidInput", message: "Prometheus service discovery needs the query parameter namespace.")
            }
            var query = Query(namespaceName: namespace, serviceName: nil, health: .HEALTHY, region: nil)
            if let service = parameters["service"], !service.isEmpty {
                guard service.utf8.count <= 1024 else {
                    throw WireError(type: "InvalidInput", message: "The query parameter service is longer than 1024 bytes.")
                }
                query.serviceName = service
            }
            if let health = parameters["health"] {
                guard let filter = HealthStatusFilter(rawValue: health) else {
                    throw WireError(
                        type: "InvalidInput",
                        message: "health must be HEALTHY, UNHEALTHY, ALL or HEALTHY_OR_ELSE_ALL, not '\(health.prefix(32))'.")
                }
                query.health = filter
            }
            if let region = parameters["region"], !region.isEmpty { query.region = String(region.prefix(64)) }
            return query
        }
    }

    /// A Prometheus label name made of an attribute key: `[a-zA-Z0-9_]`, every other byte `_`.
    static func labelName(_ key: String) -> String {
        String(
            decoding: key.utf8.map { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    return byte
                default: return UInt8(ascii: "_")
                }
            }, as: UTF8.self)
    }

    /// Where Prometheus scrapes an instance; nil when it has no address.
    static func target(_ attributes: [String: String]) -> String? {
        let host: String
        if let v4 = attributes["AWS_INSTANCE_IPV4"], !v4.isEmpty {
            host = v4
        } else if let v6 = attributes["AWS_INSTANCE_IPV6"], !v6.isEmpty {
            host = "[\(v6)]"
        } else if let cname = attributes["AWS_INSTANCE_CNAME"], !cname.isEmpty {
            host = cname
        } else {
            return nil
        }
        guard let port = attributes["AWS_INSTANCE_PORT"], !port.isEmpty else { return host }
        return "\(host):\(port)"
    }

    /// The target groups of these services' instances, by service name and instance id.
    static func groups(_ services: [Service], namespace: Namespace, state: RegistryState, health: HealthStatusFilter) -> JSONValue {
        var groups: [JSONValue] = []
        for service in services.sorted(by: { $0.name < $1.name }) {
            let instances = state.instances(of: service.id).values.sorted { $0.id < $1.id }
            var rng = SplitMix64(seed: 1)  // no shuffle matters here: the groups are sorted, and every match is kept
            let chosen = Discovery.select(
                instances, service: service,
                query: DiscoveryQuery(queryParameters: [:], optionalParameters: [:], healthStatus: health, maxResults: Int.max),
                attributes: \.attributes, health: \.health, using: &rng
            ).sorted { $0.id < $1.id }
            for instance in chosen {
                guard let target = target(instance.attributes) else { continue }
                var labels: [String: JSONValue] = [
                    "__meta_cairn_namespace": .string(namespace.httpName), "__meta_cairn_namespace_id": .string(namespace.id),
                    "__meta_cairn_service": .string(service.name), "__meta_cairn_service_id": .string(service.id),
                    "__meta_cairn_instance_id": .string(instance.id),
                    "__meta_cairn_health_status": .string(Discovery.reportedHealth(instance, in: service).rawValue),
                ]
                // Sorted, so two keys that make the same label name always give the same value (the first).
                for (key, value) in instance.attributes.sorted(by: { $0.key < $1.key }) {
                    let name = "__meta_cairn_attribute_" + labelName(key)
                    if labels[name] == nil { labels[name] = .string(value) }
                }
                groups.append(.object(["targets": .array([.string(target)]), "labels": .object(labels)]))
            }
        }
        return .array(groups)
    }
}

extension CloudMapAPI {
    /// The Prometheus target groups for a signed (SigV4 or HTTP Basic) request; an AWS-style error reply otherwise.
    public func prometheusTargets(_ signed: SigV4.Request, parameters: [String: String], peer: @autoclosure () -> String) -> Reply {
        let requestId = RequestID.next()
        guard let spec = Self.operations["DiscoverInstances"] else {
            return errorReply(WireError(type: "InternalFailure", message: "DiscoverInstances is not in the model.", status: 500))
        }
        do throws(WireError) {
            let query = try PrometheusSD.Query.parse(parameters)
            var caller: Caller
            if let authorization = signed.header("authorization"), authorization.utf8.starts(with: "Basic ".utf8) {
                caller = try authenticateBasic(authorization)
            } else {
                caller = try authenticate(signed)
            }
            if let region = query.region {
                guard configuration.regions.contains(region) else {
                    throw WireError(type: "InvalidInput", message: "'\(region)' is not a region this server accepts.")
                }
                caller.region = region
            }
            guard throttle.admit(principal: caller.accessKeyId, region: caller.region, kind: spec.throttle) else {
                throw Self.throttled(spec)
            }
            let context = RequestContext(region: caller.region, account: configuration.account)
            let state = self.state
            let namespace: Namespace
            var services: [Service]
            do throws(CairnError) {
                namespace = try state.namespace(httpName: query.namespaceName, in: context)
                if let name = query.serviceName {
                    services = [try state.service(named: name, in: namespace)]
                } else {
                    services = state.services.values.filter { $0.namespaceId == namespace.id }
                }
            } catch {
                throw Self.wireError(error)
            }
            if caller.principal != nil {
                // A named service must be allowed; of a whole namespace, only the services the caller may discover.
                func check(_ service: Service) throws(WireError) {
                    let input = JSONValue.object(["NamespaceName": .string(namespace.httpName), "ServiceName": .string(service.name)])
                    try authorize(
                        caller, spec, input: input, subjects: Subjects(spec, input: input, state: state, context: context), context: context
                    )
                }
                if query.serviceName != nil {
                    for service in services { try check(service) }
                } else {
                    services = services.filter { (try? check($0)) != nil }
                }
            }
            if shouldAudit(spec) {
                var event = CloudTrailEvent(
                    eventTime: clock(), eventName: "PrometheusServiceDiscovery", region: caller.region, account: configuration.account,
                    sourceIPAddress: peer(), userAgent: signed.header("user-agent") ?? "", identity: caller.identity,
                    requestParameters: AuditRendering.parameters(.object(parameters.mapValues { .string($0) })), requestID: requestId,
                    eventID: RequestID.next(), readOnly: true)
                event.resources = services.map(\.arn)
                registry.record(event.entry)
            }
            let body = PrometheusSD.groups(services, namespace: namespace, state: state, health: query.health)
            return Reply(status: 200, body: JSONWriter.render(body), requestId: requestId, operation: "PrometheusServiceDiscovery")
        } catch {
            return Reply(
                status: error.status, body: error.body, requestId: requestId, operation: "PrometheusServiceDiscovery", errorCode: error.type
            )
        }
    }

    /// `Authorization: Basic base64(ACCESS_KEY_ID:SECRET)`, checked against the configured keys (dev mode: any).
    func authenticateBasic(_ header: String) throws(WireError) -> Caller {
        let encoded = header.dropFirst("Basic ".count).trimmingCharacters(in: .whitespaces)
        guard encoded.utf8.count <= 1024, let data = Data(base64Encoded: encoded),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else {
            throw WireError(
                type: "IncompleteSignature", message: "The Basic authorization header is not base64 of KEY:SECRET.", status: 403)
        }
        let id = String(text[..<colon])
        let secret = String(text[text.index(after: colon)...])
        guard let keys = configuration.accessKeys else {
            return Caller(accessKeyId: String(id.prefix(128)), region: configuration.defaultRegion, principal: nil)
        }
        guard let credential = keys[id], SigV4.constantTimeEqual(Array(credential.secret.utf8), Array(secret.utf8)) else {
            throw WireError(
                type: "UnrecognizedClientException", message: "The access key ID or its secret is not valid.", status: 403)
        }
        return Caller(accessKeyId: id, region: configuration.defaultRegion, principal: credential.principal)
    }
}
