import CairnCore
import CloudMapWire

/// Registry objects as the API returns them (member names and quirks as AWS sends them).
enum Render {
    static func tags(_ tags: [Tag]) -> JSONValue {
        .array(tags.map { .object(["Key": .string($0.key), "Value": .string($0.value)]) })
    }

    static func namespace(_ ns: Namespace, serviceCount: Int, summary: Bool) -> JSONValue {
        var dnsProperties: [String: JSONValue] = [:]
        if ns.type.isDNS {
            dnsProperties["HostedZoneId"] = ns.hostedZoneId.map(JSONValue.string)
            dnsProperties["SOA"] = .object(ns.soaTTL.map { ["TTL": .int($0)] } ?? [:])
        } else if summary {
            // AWS's quirk (cloudmap-behaviour.md §3.1): an HTTP namespace lists with an empty SOA, gets without one.
            dnsProperties["SOA"] = .object([:])
        }
        var o: [String: JSONValue] = [
            "Id": .string(ns.id), "Arn": .string(ns.arn), "ResourceOwner": .string(ns.account), "Name": .string(ns.name),
            "Type": .string(ns.type.rawValue), "ServiceCount": .int(Int64(serviceCount)),
            "Properties": .object([
                "DnsProperties": .object(dnsProperties),
                "HttpProperties": .object(["HttpName": .string(ns.httpName)]),
            ]),
            "CreateDate": .timestamp(milliseconds: ns.createDate),
        ]
        if let d = ns.description { o["Description"] = .string(d) }
        if !summary, let token = ns.creatorRequestId { o["CreatorRequestId"] = .string(token) }
        return .object(o)
    }

    static func dnsConfig(_ service: Service) -> JSONValue {
        guard let dns = service.dnsConfig else { return .object([:]) }
        return .object([
            "NamespaceId": .string(service.namespaceId), "RoutingPolicy": .string(dns.routingPolicy.rawValue),
            "DnsRecords": .array(dns.records.map { .object(["Type": .string($0.type.rawValue), "TTL": .int($0.ttl)]) }),
        ])
    }

    static func service(_ service: Service, instanceCount: Int, summary: Bool) -> JSONValue {
        var o: [String: JSONValue] = [
            "Id": .string(service.id), "Arn": .string(service.arn), "ResourceOwner": .string(service.account),
            "Name": .string(service.name), "Type": .string(service.type.rawValue),
            "InstanceCount": .int(Int64(instanceCount)), "DnsConfig": dnsConfig(service),
            "CreateDate": .timestamp(milliseconds: service.createDate),
            "CreatedByAccount": .string(service.createdByAccount),
        ]
        if !summary {
            o["NamespaceId"] = .string(service.namespaceId)
            if let token = service.creatorRequestId { o["CreatorRequestId"] = .string(token) }
        }
        if let d = service.description { o["Description"] = .string(d) }
        if let check = service.healthCheckConfig {
            var c: [String: JSONValue] = ["Type": .string(check.type.rawValue)]
            if let path = check.resourcePath { c["ResourcePath"] = .string(path) }
            if let threshold = check.failureThreshold { c["FailureThreshold"] = .int(Int64(threshold)) }
            o["HealthCheckConfig"] = .object(c)
        }
        if service.hasCustomHealth { o["HealthCheckCustomConfig"] = .object(["FailureThreshold": .int(1)]) }
        return .object(o)
    }

    static func attributes(_ attributes: [String: String]) -> JSONValue {
        .object(attributes.mapValues(JSONValue.string))
    }

    static func instance(_ instance: Instance, summary: Bool) -> JSONValue {
        var o: [String: JSONValue] = [
            "Id": .string(instance.id), "Attributes": attributes(instance.attributes),
            "CreatedByAccount": .string(instance.createdByAccount),
        ]
        if !summary, let token = instance.creatorRequestId { o["CreatorRequestId"] = .string(token) }
        return .object(o)
    }

    static func operation(_ op: Operation) -> JSONValue {
        var o: [String: JSONValue] = [
            "Id": .string(op.id), "OwnerAccount": .string(op.account), "Type": .string(op.type.rawValue),
            "Status": .string(op.status.rawValue), "CreateDate": .timestamp(milliseconds: op.createDate),
            "UpdateDate": .timestamp(milliseconds: op.updateDate), "Targets": .object(op.targets.mapValues(JSONValue.string)),
        ]
        if let code = op.errorCode { o["ErrorCode"] = .string(code) }
        if let message = op.errorMessage { o["ErrorMessage"] = .string(message) }
        return .object(o)
    }

    static func operationId(_ result: CommandResult) -> JSONValue {
        if case .operation(let id) = result { return .object(["OperationId": .string(id)]) }
        return .object([:])
    }
}
