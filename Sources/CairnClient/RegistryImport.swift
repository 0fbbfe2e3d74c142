import CloudMapWire
import Foundation

/// Applying an export document (`cairn import`) through the API, idempotently: what exists and matches is left
/// alone, what is missing is created, what differs is updated. Nothing is deleted: an import adds to and corrects
/// the target, it does not prune it.
public enum RegistryImport {
    public enum Step: Sendable, Equatable, CustomStringConvertible {
        case createNamespace(region: String, namespace: JSONValue)
        case updateNamespace(region: String, name: String, type: String, description: String?, soaTTL: Int64?)
        case tagNamespace(region: String, name: String, type: String, tags: [String: String])
        case createService(region: String, namespace: String, namespaceType: String, service: JSONValue)
        case updateService(region: String, namespace: String, namespaceType: String, service: JSONValue)
        case tagService(region: String, namespace: String, namespaceType: String, service: String, tags: [String: String])
        case setServiceAttributes(region: String, namespace: String, namespaceType: String, service: String, attributes: [String: String])
        case register(
            region: String, namespace: String, namespaceType: String, service: String, instance: String, attributes: [String: String])
        case setHealth(region: String, namespace: String, namespaceType: String, service: String, instance: String, status: String)
        /// A signed public zone's DNSSEC keys, as exported (private keys included).
        case restoreDNSSEC(region: String, namespace: String, keys: [JSONValue])

        public var description: String {
            switch self {
            case .createNamespace(let r, let ns): return "[\(r)] create namespace \(text(ns["name"])) (\(text(ns["type"])))"
            case .updateNamespace(let r, let n, _, let d, let ttl):
                return "[\(r)] update namespace \(n): description \(d ?? "-"), SOA TTL \(ttl.map(String.init) ?? "-")"
            case .tagNamespace(let r, let n, _, let tags): return "[\(r)] tag namespace \(n): \(pairs(tags))"
            case .createService(let r, let n, _, let s): return "[\(r)] create service \(n)/\(text(s["name"]))"
            case .updateService(let r, let n, _, let s): return "[\(r)] update service \(n)/\(text(s["name"]))"
            case .tagService(let r, let n, _, let s, let tags): return "[\(r)] tag service \(n)/\(s): \(pairs(tags))"
            case .setServiceAttributes(let r, let n, _, let s, let a): return "[\(r)] set attributes of \(n)/\(s): \(pairs(a))"
            case .register(let r, let n, _, let s, let i, let a): return "[\(r)] register \(n)/\(s)/\(i): \(pairs(a))"
            case .setHealth(let r, let n, _, let s, let i, let status): return "[\(r)] set health of \(n)/\(s)/\(i) to \(status)"
            case .restoreDNSSEC(let r, let n, let keys): return "[\(r)] sign namespace \(n) with its \(keys.count) DNSSEC key(s)"
            }
        }
    }

    static func text(_ value: JSONValue?) -> String { value?.stringValue ?? "" }
    static func pairs(_ map: [String: String]) -> String {
        map.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
    static func strings(_ value: JSONValue?) -> [String: String] { value?.stringMap ?? [:] }

    /// What it takes to make `current` hold everything in `desired` (both export documents).
    public static func plan(desired: JSONValue, current: JSONValue) throws(ClientError) -> [Step] {
        guard desired["format"]?.stringValue == "cairn-export/1", let regions = desired["regions"]?.objectValue else {
            throw ClientError(kind: .usage, type: "UsageError", message: "not a Cairn export document (format cairn-export/1)")
        }
        var steps: [Step] = []
        for (region, content) in regions.sorted(by: { $0.key < $1.key }) {
            let existing = current["regions"]?[region]?["namespaces"]?.arrayValue ?? []
            for namespace in content["namespaces"]?.arrayValue ?? [] {
                let name = text(namespace["name"])
                let type = text(namespace["type"])
                let found = existing.first { text($0["name"]) == name && text($0["type"]) == type }
                if let found {
                    let description = namespace["description"]?.stringValue
                    let ttl = namespace["soaTTL"]?.intValue
                    if description != found["description"]?.stringValue || (ttl != nil && ttl != found["soaTTL"]?.intValue) {
                        steps.append(.updateNamespace(region: region, name: name, type: type, description: description, soaTTL: ttl))
                    }
                    let tags = strings(namespace["tags"]).filter { strings(found["tags"])[$0.key] != $0.value }
                    if !tags.isEmpty { steps.append(.tagNamespace(region: region, name: name, type: type, tags: tags)) }
                } else {
                    steps.append(.createNamespace(region: region, namespace: namespace))
                }
                let keys = namespace["dnssecKeys"]?.arrayValue ?? []
                let publicKeys = { (list: [JSONValue]) in list.map { text($0["publicKey"]) } }
                if type == "DNS_PUBLIC", !keys.isEmpty, publicKeys(keys) != publicKeys(found?["dnssecKeys"]?.arrayValue ?? []) {
                    steps.append(.restoreDNSSEC(region: region, namespace: name, keys: keys))
                }
                let services = found?["services"]?.arrayValue ?? []
                for service in namespace["services"]?.arrayValue ?? [] {
                    let serviceName = text(service["name"])
                    let have = services.first { text($0["name"]) == serviceName }
                    if let have {
                        let compared = ["description", "dnsConfig", "healthCheckConfig"]
                        if compared.contains(where: { service[$0] != have[$0] }) {
                            steps.append(.updateService(region: region, namespace: name, namespaceType: type, service: service))
                        }
                        let tags = strings(service["tags"]).filter { strings(have["tags"])[$0.key] != $0.value }
                        if !tags.isEmpty {
                            steps.append(
                                .tagService(region: region, namespace: name, namespaceType: type, service: serviceName, tags: tags))
                        }
                    } else {
                        steps.append(.createService(region: region, namespace: name, namespaceType: type, service: service))
                    }
                    let attributes = strings(service["attributes"]).filter { strings(have?["attributes"])[$0.key] != $0.value }
                    if !attributes.isEmpty {
                        steps.append(
                            .setServiceAttributes(
                                region: region, namespace: name, namespaceType: type, service: serviceName, attributes: attributes))
                    }
                    let instances = have?["instances"]?.arrayValue ?? []
                    for instance in service["instances"]?.arrayValue ?? [] {
                        let id = text(instance["id"])
                        let present = instances.first { text($0["id"]) == id }
                        let wanted = strings(instance["attributes"])
                        if present == nil || strings(present?["attributes"]) != wanted {
                            steps.append(
                                .register(
                                    region: region, namespace: name, namespaceType: type, service: serviceName, instance: id,
                                    attributes: wanted))
                        }
                        if let status = instance["health"]?.stringValue, status != "UNKNOWN",
                            status != (present?["health"]?.stringValue ?? "HEALTHY")
                        {
                            steps.append(
                                .setHealth(
                                    region: region, namespace: name, namespaceType: type, service: serviceName, instance: id, status: status
                                ))
                        }
                    }
                }
            }
        }
        return steps
    }

    /// Carries out `steps` with `client` (one region per step), resolving names to ids as it goes. `progress` is
    /// told about each step before it runs.
    public static func apply(_ steps: [Step], client: CairnClient, progress: (Int, Step) -> Void) async throws(ClientError) {
        var namespaceIds: [String: String] = [:]  // "region|type|name" → id
        var serviceIds: [String: String] = [:]  // "region|type|namespace|service" → id
        var loaded: Set<String> = []

        func load(_ region: String) async throws(ClientError) {
            guard loaded.insert(region).inserted else { return }
            for namespace in try await client.paginate("ListNamespaces", key: "Namespaces", region: region) {
                namespaceIds["\(region)|\(text(namespace["Type"]))|\(text(namespace["Name"]))"] = text(namespace["Id"])
            }
            // ServiceSummary carries no namespace id, so ask per namespace.
            for (key, namespaceId) in namespaceIds where key.hasPrefix("\(region)|") {
                let filter: [String: JSONValue] = [
                    "Filters": .array([
                        .object(["Name": .string("NAMESPACE_ID"), "Values": .array([.string(namespaceId)]), "Condition": .string("EQ")])
                    ])
                ]
                for service in try await client.paginate("ListServices", filter, key: "Services", region: region) {
                    serviceIds["\(key)|\(text(service["Name"]))"] = text(service["Id"])
                }
            }
        }
        func namespaceId(_ region: String, _ type: String, _ name: String) async throws(ClientError) -> String {
            try await load(region)
            guard let id = namespaceIds["\(region)|\(type)|\(name)"] else {
                throw ClientError(
                    kind: .service(status: 400), type: "NamespaceNotFound", message: "namespace \(name) not found in \(region)")
            }
            return id
        }
        func serviceId(_ region: String, _ type: String, _ namespace: String, _ name: String) async throws(ClientError) -> String {
            try await load(region)
            guard let id = serviceIds["\(region)|\(type)|\(namespace)|\(name)"] else {
                throw ClientError(kind: .service(status: 400), type: "ServiceNotFound", message: "service \(namespace)/\(name) not found")
            }
            return id
        }
        func wait(_ region: String, _ operationId: String) async throws(ClientError) -> JSONValue {
            for _ in 0..<600 {
                let op = try await client.call("GetOperation", ["OperationId": .string(operationId)], region: region)["Operation"] ?? .null
                switch text(op["Status"]) {
                case "SUCCESS": return op
                case "FAIL":
                    throw ClientError(kind: .service(status: 200), type: text(op["ErrorCode"]), message: text(op["ErrorMessage"]))
                default: try? await Task.sleep(for: .milliseconds(100))
                }
            }
            throw ClientError(kind: .transport, type: "Timeout", message: "operation \(operationId) did not finish")
        }
        func tagList(_ tags: [String: String]) -> JSONValue {
            .array(tags.sorted { $0.key < $1.key }.map { .object(["Key": .string($0.key), "Value": .string($0.value)]) })
        }

        for (index, step) in steps.enumerated() {
            progress(index, step)
            switch step {
            case .createNamespace(let region, let ns):
                try await load(region)
                let type = text(ns["type"])
                var input: [String: JSONValue] = ["Name": .string(text(ns["name"])), "CreatorRequestId": .string(UUID().uuidString)]
                if let d = ns["description"] { input["Description"] = d }
                let tags = strings(ns["tags"])
                if !tags.isEmpty { input["Tags"] = tagList(tags) }
                let operation: String
                switch type {
                case "DNS_PRIVATE":
                    operation = "CreatePrivateDnsNamespace"
                    input["Vpc"] = .string(ns["network"]?.stringValue ?? "default")
                case "DNS_PUBLIC": operation = "CreatePublicDnsNamespace"
                default: operation = "CreateHttpNamespace"
                }
                if let ttl = ns["soaTTL"]?.intValue, type != "HTTP" {
                    input["Properties"] = .object(["DnsProperties": .object(["SOA": .object(["TTL": .int(ttl)])])])
                }
                let op = try await wait(region, text(try await client.call(operation, input, region: region)["OperationId"]))
                namespaceIds["\(region)|\(type)|\(text(ns["name"]))"] = text(op["Targets"]?["NAMESPACE"])
            case .updateNamespace(let region, let name, let type, let description, let ttl):
                let id = try await namespaceId(region, type, name)
                var change: [String: JSONValue] = ["Description": .string(description ?? "")]
                let operation: String
                switch type {
                case "DNS_PRIVATE": operation = "UpdatePrivateDnsNamespace"
                case "DNS_PUBLIC": operation = "UpdatePublicDnsNamespace"
                default: operation = "UpdateHttpNamespace"
                }
                if let ttl, type != "HTTP" {
                    change["Properties"] = .object(["DnsProperties": .object(["SOA": .object(["TTL": .int(ttl)])])])
                }
                let result = try await client.call(
                    operation, ["Id": .string(id), "Namespace": .object(change), "UpdaterRequestId": .string(UUID().uuidString)],
                    region: region)
                _ = try await wait(region, text(result["OperationId"]))
            case .restoreDNSSEC(let region, let name, let keys):
                let id = try await namespaceId(region, "DNS_PUBLIC", name)
                let body = JSONValue.object([
                    "Keys": .array(
                        keys.map { .object(["PrivateKey": $0["privateKey"] ?? .null, "CreatedAt": $0["createdAt"] ?? .int(0)]) })
                ])
                _ = try await client.post(
                    "/cairn/v1/dnssec", query: [("NamespaceId", id), ("Action", "Restore")], body: JSONWriter.render(body), region: region)
            case .tagNamespace(let region, let name, let type, let tags):
                let id = try await namespaceId(region, type, name)
                let arn = try await client.call("GetNamespace", ["Id": .string(id)], region: region)["Namespace"]?["Arn"] ?? .null
                _ = try await client.call("TagResource", ["ResourceARN": arn, "Tags": tagList(tags)], region: region)
            case .createService(let region, let namespace, let type, let service):
                let ns = try await namespaceId(region, type, namespace)
                var input: [String: JSONValue] = [
                    "Name": .string(text(service["name"])), "NamespaceId": .string(ns), "CreatorRequestId": .string(UUID().uuidString),
                ]
                if let d = service["description"] { input["Description"] = d }
                if let dns = service["dnsConfig"] { input["DnsConfig"] = dnsConfig(dns, includeRouting: true) }
                if let check = service["healthCheckConfig"] { input["HealthCheckConfig"] = healthCheck(check) }
                if service["customHealth"] == .bool(true) { input["HealthCheckCustomConfig"] = .object([:]) }
                if text(service["type"]) == "HTTP", type != "HTTP" { input["Type"] = .string("HTTP") }
                let tags = strings(service["tags"])
                if !tags.isEmpty { input["Tags"] = tagList(tags) }
                let created = try await client.call("CreateService", input, region: region)["Service"] ?? .null
                serviceIds["\(region)|\(type)|\(namespace)|\(text(service["name"]))"] = text(created["Id"])
            case .updateService(let region, let namespace, let type, let service):
                let id = try await serviceId(region, type, namespace, text(service["name"]))
                var change: [String: JSONValue] = ["Description": .string(text(service["description"]))]
                if let dns = service["dnsConfig"] { change["DnsConfig"] = dnsConfig(dns, includeRouting: false) }
                if let check = service["healthCheckConfig"] { change["HealthCheckConfig"] = healthCheck(check) }
                let result = try await client.call("UpdateService", ["Id": .string(id), "Service": .object(change)], region: region)
                _ = try await wait(region, text(result["OperationId"]))
            case .tagService(let region, let namespace, let type, let service, let tags):
                let id = try await serviceId(region, type, namespace, service)
                let arn = try await client.call("GetService", ["Id": .string(id)], region: region)["Service"]?["Arn"] ?? .null
                _ = try await client.call("TagResource", ["ResourceARN": arn, "Tags": tagList(tags)], region: region)
            case .setServiceAttributes(let region, let namespace, let type, let service, let attributes):
                let id = try await serviceId(region, type, namespace, service)
                _ = try await client.call(
                    "UpdateServiceAttributes", ["ServiceId": .string(id), "Attributes": .object(attributes.mapValues(JSONValue.string))],
                    region: region)
            case .register(let region, let namespace, let type, let service, let instance, let attributes):
                let id = try await serviceId(region, type, namespace, service)
                let result = try await client.call(
                    "RegisterInstance",
                    [
                        "ServiceId": .string(id), "InstanceId": .string(instance),
                        "Attributes": .object(attributes.mapValues(JSONValue.string)),
                    ],
                    region: region)
                _ = try await wait(region, text(result["OperationId"]))
            case .setHealth(let region, let namespace, let type, let service, let instance, let status):
                let id = try await serviceId(region, type, namespace, service)
                _ = try await client.call(
                    "UpdateInstanceCustomHealthStatus",
                    ["ServiceId": .string(id), "InstanceId": .string(instance), "Status": .string(status)], region: region)
            }
        }
    }

    static func dnsConfig(_ dns: JSONValue, includeRouting: Bool) -> JSONValue {
        let records = (dns["records"]?.arrayValue ?? []).map { record in
            JSONValue.object(["Type": .string(text(record["type"])), "TTL": .int(record["ttl"]?.intValue ?? 60)])
        }
        var o: [String: JSONValue] = ["DnsRecords": .array(records)]
        if includeRouting, let routing = dns["routingPolicy"] { o["RoutingPolicy"] = routing }
        return .object(o)
    }

    static func healthCheck(_ check: JSONValue) -> JSONValue {
        var o: [String: JSONValue] = ["Type": .string(text(check["type"]))]
        if let path = check["resourcePath"] { o["ResourcePath"] = path }
        if let threshold = check["failureThreshold"] { o["FailureThreshold"] = threshold }
        return .object(o)
    }
}
