import CairnCore
import CloudMapWire
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A message shown once above a page (after a redirect).
struct Flash {
    var notice: String? = nil
    var error: String? = nil

    init(notice: String? = nil, error: String? = nil) {
        self.notice = notice
        self.error = error
    }

    init(_ request: Request) {
        notice = request.uri.queryParameters["notice"].map(String.init)
        error = request.uri.queryParameters["error"].map(String.init)
    }
}

extension Console {
    /// One instance row of the live part of the service page.
    struct InstanceRow {
        struct Attribute {
            var key: String
            var value: String
        }
        struct Mark {
            var status: String
            var label: String
        }
        var id: String
        var health: String
        var attributes: [Attribute]
        var mark: Mark?
        var probed: Bool
    }

    /// A page in the layout: the template's markup as the body, the session's name, region and CSRF token in the header.
    func render(
        _ template: String, _ model: [String: Any], title: String, session: Session?, flash: Flash = Flash(),
        status: HTTPResponse.Status = .ok, live: Bool = false
    ) -> Response {
        var layout: [String: Any] = [
            "title": title, "body": ConsoleTemplates.library.render(model, withTemplate: template) ?? "", "live": live,
        ]
        if let session {
            layout["session"] = [
                "principal": session.caller.principal?.name ?? "dev", "accessKeyId": session.caller.accessKeyId,
                "region": session.caller.region, "csrf": session.csrf,
            ]
        }
        if let notice = flash.notice { layout["notice"] = notice }
        if let error = flash.error { layout["error"] = error }
        return Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                HTTPField.Name("Content-Security-Policy")!: "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("Referrer-Policy")!: "same-origin",
            ],
            body: .init(byteBuffer: ByteBuffer(string: ConsoleTemplates.library.render(layout, withTemplate: "layout") ?? "")))
    }

    func failure(_ session: Session, _ title: String, _ error: WireError) -> Response {
        render("failure", ["title": title, "message": "\(error.type): \(error.message)"], title: title, session: session)
    }

    func namespacesPage(_ session: Session, _ request: Request) async -> Response {
        switch await all(session, "ListNamespaces", key: "Namespaces") {
        case .failure(let error): return failure(session, "Namespaces", error)
        case .success(let list):
            let rows: [[String: String]] = list.map { ns in
                [
                    "id": text(ns["Id"]), "name": text(ns["Name"]), "type": text(ns["Type"]), "serviceCount": text(ns["ServiceCount"]),
                    "description": text(ns["Description"]),
                ]
            }
            return render(
                "namespaces", ["namespaces": rows, "region": session.caller.region], title: "Namespaces", session: session,
                flash: Flash(request))
        }
    }

    func namespacePage(_ session: Session, _ request: Request, id: String) async -> Response {
        let ns: JSONValue
        switch await call(session, "GetNamespace", ["Id": .string(id)]) {
        case .failure(let error): return failure(session, "Namespace", error)
        case .success(let got): ns = got["Namespace"] ?? .null
        }
        var model: [String: Any] = [
            "id": text(ns["Id"]), "name": text(ns["Name"]), "arn": text(ns["Arn"]), "type": text(ns["Type"]),
            "description": text(ns["Description"]), "httpName": text(ns["Properties"]?["HttpProperties"]?["HttpName"]),
        ]
        if let zone = ns["Properties"]?["DnsProperties"]?["HostedZoneId"] {
            let soa = text(ns["Properties"]?["DnsProperties"]?["SOA"]?["TTL"])
            model["zone"] = "\(text(ns["Name"])). (hosted zone \(text(zone)), SOA TTL \(soa) s)"
        }
        // DNSSEC (public zones): what GetNamespace may read, so the same permission shows it.
        if let stored = api.state.namespaces[text(ns["Id"])], stored.type == NamespaceType.DNS_PUBLIC {
            let view = CloudMapAPI.dnssecView(stored)
            let keys = (view["Keys"]?.arrayValue ?? []).map { (key: JSONValue) -> [String: String] in
                ["tag": text(key["KeyTag"]), "dnskey": text(key["DNSKEY"]), "ds": text(key["DS"])]
            }
            model["dnssec"] = ["signed": !keys.isEmpty, "keys": keys, "roll": keys.count > 1]
        }
        let filter: JSONValue = .object(["Name": .string("NAMESPACE_ID"), "Values": .array([.string(id)]), "Condition": .string("EQ")])
        switch await all(session, "ListServices", ["Filters": .array([filter])], key: "Services") {
        case .failure(let error): model["servicesError"] = "\(error.type): \(error.message)"
        case .success(let list):
            model["services"] = list.map { s -> [String: String] in
                let records = (s["DnsConfig"]?["DnsRecords"]?.arrayValue ?? []).map { "\(text($0["Type"])) \(text($0["TTL"]))s" }
                return [
                    "id": text(s["Id"]), "name": text(s["Name"]), "type": text(s["Type"]), "instanceCount": text(s["InstanceCount"]),
                    "records": records.joined(separator: ", "),
                ]
            }
        }
        return render("namespace", model, title: "Namespace \(text(ns["Name"]))", session: session, flash: Flash(request))
    }

    func servicePage(_ session: Session, _ request: Request, id: String) async -> Response {
        let s: JSONValue
        switch await call(session, "GetService", ["Id": .string(id)]) {
        case .failure(let error): return failure(session, "Service", error)
        case .success(let got): s = got["Service"] ?? .null
        }
        let serviceId = text(s["Id"])
        let state = api.state
        let healthChecking: String
        if s["HealthCheckCustomConfig"] != nil {
            healthChecking = "custom: set through the API (UpdateInstanceCustomHealthStatus) or below"
        } else if let check = s["HealthCheckConfig"] {
            let path = check["ResourcePath"].map { " \(text($0))" } ?? ""
            healthChecking = "active \(text(check["Type"]))\(path) check, failure threshold \(text(check["FailureThreshold"]))"
        } else {
            healthChecking = "none (every instance reports UNKNOWN and is always answered)"
        }
        var model = await liveModel(session, serviceId: serviceId)
        model.merge([
            "name": text(s["Name"]), "arn": text(s["Arn"]), "type": text(s["Type"]), "description": text(s["Description"]),
            "namespaceId": text(s["NamespaceId"]),
            "namespaceName": state.namespaces[text(s["NamespaceId"])]?.name ?? text(s["NamespaceId"]),
            "healthChecking": healthChecking,
        ]) { $1 }
        return render("service", model, title: "Service \(text(s["Name"]))", session: session, flash: Flash(request), live: true)
    }

    /// The live part alone, for live.js, as a long poll: while the service is at the version the page shows, the
    /// answer waits for a change (woken by the writer, like long-poll discovery), and is 204 if none came within
    /// `liveWait`.
    func liveFragment(_ session: Session, id: String, since: Substring?) async -> Response {
        guard let service = api.state.services[id] else { return Response(status: .notFound) }
        if let since, let version = UInt64(since), version == service.viewVersion {
            _ = await api.registry.awaitChange(ofService: id, beyond: version, timeout: Self.liveWait)
            guard let now = api.state.services[id] else { return Response(status: .notFound) }
            if now.viewVersion == version { return Response(status: .noContent, headers: [.cacheControl: "no-store"]) }
        }
        let markup = ConsoleTemplates.library.render(await liveModel(session, serviceId: id), withTemplate: "live") ?? ""
        return Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: markup)))
    }

    /// Instances with their health, attributes and actions, and the DNS records they make, as the principal may see them.
    func liveModel(_ session: Session, serviceId id: String) async -> [String: Any] {
        let state = api.state
        var model: [String: Any] = ["serviceId": id, "csrf": session.csrf, "version": String(state.services[id]?.viewVersion ?? 0)]
        let instances: [JSONValue]
        switch await all(session, "ListInstances", ["ServiceId": .string(id)], key: "Instances") {
        case .failure(let error):
            model["instancesError"] = "\(error.type): \(error.message)"
            return model
        case .success(let list): instances = list
        }
        var health: [String: String] = [:]
        if case .success(let status) = await call(session, "GetInstancesHealthStatus", ["ServiceId": .string(id)]) {
            for (k, v) in status["Status"]?.objectValue ?? [:] { health[k] = v.stringValue }
        }
        let service = state.services[id]
        model["instances"] = instances.map { instance -> InstanceRow in
            let instanceId = text(instance["Id"])
            let status = health[instanceId] ?? "UNKNOWN"
            let target = status == "UNHEALTHY" ? "HEALTHY" : "UNHEALTHY"
            return InstanceRow(
                id: instanceId, health: status,
                attributes: (instance["Attributes"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map {
                    InstanceRow.Attribute(key: $0.key, value: text($0.value))
                },
                mark: service?.hasCustomHealth == true ? InstanceRow.Mark(status: target, label: target.lowercased()) : nil,
                probed: service?.healthCheckConfig != nil)
        }
        model["dns"] = dnsText(service, state: state)
        return model
    }

    func dnsText(_ service: Service?, state: RegistryState) -> String {
        guard let service, let namespace = state.namespaces[service.namespaceId] else { return "" }
        guard namespace.type.isDNS else { return "(HTTP namespace: discoverable through the API only)" }
        guard let dns = service.dnsConfig else { return "(no DnsConfig: discoverable through the API only)" }
        let records = sources.dnsRecords(service, state)
        if records.isEmpty { return "(no records: the name answers NXDOMAIN)" }
        let instances = state.instances(of: service.id).values
        let failOpen = service.hasHealthChecking && !instances.contains { $0.health == .HEALTHY }
        var lines: [String] = []
        if failOpen { lines.append("; no healthy instance: answering with all of them (fail open)") }
        lines.append(
            dns.routingPolicy == .WEIGHTED
                ? "; WEIGHTED: each answer is one of these at random"
                : "; MULTIVALUE: each answer is up to \(sources.dnsAnswerLimit) of these at random")
        return (lines + records).joined(separator: "\n")
    }

    func probesPage(_ session: Session, service: String, instance: String) async -> Response {
        if case .failure(let error) = await call(session, "GetInstance", ["ServiceId": .string(service), "InstanceId": .string(instance)]) {
            return failure(session, "Probe history", error)
        }
        guard let history = sources.probeHistory(service, instance) else {
            return failure(
                session, "Probe history", WireError(type: "NotChecked", message: "Instance \(instance) is not actively health-checked."))
        }
        if let node = history["ProbedBy"]?.stringValue {
            return render(
                "probedElsewhere", ["instanceId": instance, "serviceId": service, "node": node], title: "Probe history", session: session)
        }
        let check = history["Check"]
        let model: [String: Any] = [
            "instanceId": instance, "serviceId": service, "status": text(history["Status"]),
            "damped": history["FlapDamped"] == .bool(true),
            "check": "\(text(check?["Type"])) \(text(check?["Endpoint"]))\(text(check?["ResourcePath"]))",
            "probes": (history["Probes"]?.arrayValue ?? []).map { p -> [String: String] in
                let healthy = p["Healthy"] == .bool(true)
                return [
                    "time": time(p["Time"]), "health": healthy ? "HEALTHY" : "UNHEALTHY", "result": healthy ? "healthy" : "unhealthy",
                    "latency": text(p["LatencyMs"]), "detail": text(p["Detail"]),
                ]
            },
        ]
        return render("probes", model, title: "Probe history", session: session)
    }

    /// The newest operations of the region: ListOperations decides whether the principal may list them (and is
    /// recorded), GetOperation's policy whether each one's details are shown.
    func operationsPage(_ session: Session, _ request: Request) async -> Response {
        if case .failure(let error) = await call(session, "ListOperations", ["MaxResults": .int(1)]) {
            return failure(session, "Operations", error)
        }
        let state = api.state
        let context = RequestContext(region: session.caller.region, account: api.configuration.account)
        let rows: [[String: String]] = state.operations(in: context).reversed().lazy.filter {
            api.allows(session.caller, "GetOperation", ["OperationId": .string($0.id)], state: state, context: context)
        }.prefix(100).map { op in
            [
                "id": op.id, "type": op.type.rawValue, "status": op.status.rawValue, "updated": Self.time(milliseconds: op.updateDate),
                "targets": op.targets.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
                "error": [op.errorCode, op.errorMessage].compactMap { $0 }.joined(separator: ": "),
            ]
        }
        return render("operations", ["operations": rows], title: "Operations", session: session)
    }

    func auditPage(_ session: Session, _ request: Request) async -> Response {
        do throws(WireError) {
            try api.authorize(session.caller, extension: "LookupAuditEvents")
            var query = try AuditLookup.query(request.uri.queryParameters)
            if request.uri.queryParameters["MaxResults"] == nil { query.limit = 100 }
            let page: AuditPage
            do { page = try await api.registry.auditTrail(query) } catch {
                throw WireError(type: "InternalFailure", message: "The audit trail could not be read.", status: 500)
            }
            let parameters = request.uri.queryParameters
            func value(_ name: String) -> String { parameters[Substring(name)].map(String.init) ?? "" }
            var model: [String: Any] = [
                "eventName": value("EventName"), "principal": value("Principal"), "resource": value("Resource"),
                "startTime": value("StartTime"), "endTime": value("EndTime"),
                "records": page.records.map { record -> [String: String] in
                    let e = (try? JSONValue.parse(record.record)) ?? .null
                    return [
                        "time": text(e["eventTime"]), "event": text(e["eventName"]), "user": text(e["userIdentity"]?["userName"]),
                        "source": text(e["sourceIPAddress"]), "error": text(e["errorCode"]), "request": text(e["requestParameters"]),
                    ]
                },
            ]
            if let next = page.next {
                var kept = ["EventName", "Principal", "Resource", "StartTime", "EndTime"].compactMap { name in
                    value(name).isEmpty ? nil : "\(name)=\(urlEncode(value(name)))"
                }
                kept.append("NextToken=\(next)")
                model["next"] = "/console/audit?" + kept.joined(separator: "&")
            }
            return render("audit", model, title: "Audit trail", session: session)
        } catch {
            return failure(session, "Audit trail", error)
        }
    }

    func serviceAction(_ session: Session, service id: String, action: String, fields: [String: String], peer: String) async -> Response {
        let instance = fields["instanceId"] ?? ""
        let result: Result<JSONValue, WireError>
        let done: String
        switch action {
        case "register":
            var attributes: [String: JSONValue] = [:]
            for line in (fields["attributes"] ?? "").split(whereSeparator: \.isNewline) {
                let kv = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = kv[0].trimmingCharacters(in: .whitespaces)
                if !key.isEmpty { attributes[key] = .string(kv.count == 2 ? String(kv[1]) : "") }
            }
            result = await call(
                session, "RegisterInstance",
                ["ServiceId": .string(id), "InstanceId": .string(instance), "Attributes": .object(attributes)],
                peer: peer)
            done = "Registered \(instance)."
        case "deregister":
            result = await call(session, "DeregisterInstance", ["ServiceId": .string(id), "InstanceId": .string(instance)], peer: peer)
            done = "Deregistered \(instance)."
        case "health":
            let status = fields["status"] == "UNHEALTHY" ? "UNHEALTHY" : "HEALTHY"
            result = await call(
                session, "UpdateInstanceCustomHealthStatus",
                ["ServiceId": .string(id), "InstanceId": .string(instance), "Status": .string(status)], peer: peer)
            done = "\(instance) is now \(status)."
        default:
            return Response(status: .notFound)
        }
        switch result {
        case .success: return redirect("/console/services/\(urlEncode(id))?notice=" + urlEncode(done))
        case .failure(let error):
            return redirect("/console/services/\(urlEncode(id))?error=" + urlEncode("\(error.type): \(error.message)"))
        }
    }

    func text(_ value: JSONValue?) -> String { value?.displayText ?? "" }

    /// An API timestamp (epoch seconds) as UTC ISO 8601.
    func time(_ value: JSONValue?) -> String {
        guard let seconds = Double(text(value)) else { return text(value) }
        return Self.time(milliseconds: Int64(seconds * 1000))
    }

    static func time(milliseconds: Int64) -> String {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000).formatted(.iso8601)
    }
}
