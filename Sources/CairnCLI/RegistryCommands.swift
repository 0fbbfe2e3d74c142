import ArgumentParser
import CairnClient
import CloudMapWire
import Foundation

struct Namespaces: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list, get and delete namespaces.", subcommands: [List.self, Get.self, Create.self, Delete.self])

    struct List: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "List namespaces.")
        @OptionGroup var options: ClientOptions

        func run(_ client: CairnClient) async throws {
            options.list(try await client.paginate("ListNamespaces", key: "Namespaces"), ["ID", "NAME", "TYPE", "SERVICES", "DESCRIPTION"])
            {
                [text($0["Id"]), text($0["Name"]), text($0["Type"]), text($0["ServiceCount"]), text($0["Description"])]
            }
        }
    }

    struct Get: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Show one namespace.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Namespace id (ns-...) or ARN.") var id: String

        func run(_ client: CairnClient) async throws {
            options.show(try await client.call("GetNamespace", ["Id": .string(id)])["Namespace"] ?? .null)
        }
    }

    struct Create: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a namespace and wait until it exists; prints its id.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Namespace name (a domain name for DNS namespaces).") var name: String
        @Option(help: "http, private (DNS answered to one network) or public (DNS).") var type: Kind = .http
        @Option(help: "Description.") var description: String?
        @Option(help: "Network of a private namespace (a name from Cairn's configuration).") var network: String = "default"
        @Option(help: "SOA/NS TTL in seconds (DNS namespaces).") var soaTtl: Int?
        @Option(name: .customLong("tag"), help: "Tag KEY=VALUE (repeatable).") var tags: [String] = []
        @OptionGroup var wait: WaitOptions

        enum Kind: String, ExpressibleByArgument, CaseIterable { case http, `private`, `public` }

        func run(_ client: CairnClient) async throws {
            var input: [String: JSONValue] = ["Name": .string(name), "CreatorRequestId": .string(UUID().uuidString)]
            if let description { input["Description"] = .string(description) }
            let tagged = try tagList(tags)
            if !tagged.isEmpty { input["Tags"] = .array(tagged) }
            let operation: String
            switch type {
            case .http: operation = "CreateHttpNamespace"
            case .private:
                operation = "CreatePrivateDnsNamespace"
                input["Vpc"] = .string(network)
            case .public: operation = "CreatePublicDnsNamespace"
            }
            if let soaTtl, type != .http {
                input["Properties"] = .object(["DnsProperties": .object(["SOA": .object(["TTL": .int(Int64(soaTtl))])])])
            }
            let id = text(try await client.call(operation, input)["OperationId"])
            if wait.noWait { return options.json ? printJSON(.object(["OperationId": .string(id)])) : print(id) }
            let done = try await waitForOperation(client, id, timeout: wait.timeout, quiet: options.json)
            let namespaceId = text(done["Targets"]?["NAMESPACE"])
            options.json ? printJSON(.object(["OperationId": .string(id), "NamespaceId": .string(namespaceId)])) : print(namespaceId)
        }
    }

    struct Delete: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an empty namespace and wait until it is gone.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Namespace id.") var id: String
        @OptionGroup var wait: WaitOptions

        func run(_ client: CairnClient) async throws {
            try await options.finish(
                client, operation: text(try await client.call("DeleteNamespace", ["Id": .string(id)])["OperationId"]), wait)
        }
    }
}

struct Services: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list, get and delete services; read and change service attributes.",
        subcommands: [List.self, Get.self, Create.self, Delete.self, Attributes.self])

    struct List: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "List services.")
        @OptionGroup var options: ClientOptions
        @Option(help: "Only services of this namespace id.") var namespace: String?

        func run(_ client: CairnClient) async throws {
            var input: [String: JSONValue] = [:]
            if let namespace {
                input["Filters"] = .array([
                    .object(["Name": .string("NAMESPACE_ID"), "Values": .array([.string(namespace)]), "Condition": .string("EQ")])
                ])
            }
            options.list(
                try await client.paginate("ListServices", input, key: "Services"), ["ID", "NAME", "TYPE", "INSTANCES", "DESCRIPTION"]
            ) {
                [text($0["Id"]), text($0["Name"]), text($0["Type"]), text($0["InstanceCount"]), text($0["Description"])]
            }
        }
    }

    struct Get: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Show one service.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Service id (srv-...) or ARN.") var id: String

        func run(_ client: CairnClient) async throws {
            options.show(try await client.call("GetService", ["Id": .string(id)])["Service"] ?? .null)
        }
    }

    struct Create: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Create a service; prints its id.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Service name.") var name: String
        @Option(help: "Namespace id.") var namespace: String
        @Option(help: "Description.") var description: String?
        @Option(help: "DNS records TYPE:TTL, comma-separated, e.g. A:60,SRV:60 (DNS namespaces).") var dns: String?
        @Option(help: "MULTIVALUE (default) or WEIGHTED.") var routing: String?
        @Option(help: "Active health check TYPE[:PATH[:THRESHOLD]], e.g. HTTP:/health:2 or TCP.") var healthCheck: String?
        @Flag(help: "Health reported by the API (UpdateInstanceCustomHealthStatus).") var customHealth = false
        @Flag(help: "Discoverable by API only, even in a DNS namespace (Type HTTP).") var httpOnly = false
        @Option(name: .customLong("tag"), help: "Tag KEY=VALUE (repeatable).") var tags: [String] = []

        func run(_ client: CairnClient) async throws {
            var input: [String: JSONValue] = [
                "Name": .string(name), "NamespaceId": .string(namespace), "CreatorRequestId": .string(UUID().uuidString),
            ]
            if let description { input["Description"] = .string(description) }
            if let dns {
                var records: [JSONValue] = []
                for spec in dns.split(separator: ",") {
                    let parts = spec.split(separator: ":")
                    guard parts.count == 2, let ttl = Int64(parts[1]) else {
                        throw ValidationError("--dns entry '\(spec)' must be TYPE:TTL")
                    }
                    records.append(.object(["Type": .string(parts[0].uppercased()), "TTL": .int(ttl)]))
                }
                var config: [String: JSONValue] = ["DnsRecords": .array(records)]
                if let routing { config["RoutingPolicy"] = .string(routing.uppercased()) }
                input["DnsConfig"] = .object(config)
            }
            if let healthCheck {
                let parts = healthCheck.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
                var check: [String: JSONValue] = ["Type": .string(parts[0].uppercased())]
                if parts.count > 1, !parts[1].isEmpty { check["ResourcePath"] = .string(parts[1]) }
                if parts.count > 2 {
                    guard let n = Int64(parts[2]) else { throw ValidationError("--health-check threshold must be a number") }
                    check["FailureThreshold"] = .int(n)
                }
                input["HealthCheckConfig"] = .object(check)
            }
            if customHealth { input["HealthCheckCustomConfig"] = .object([:]) }
            if httpOnly { input["Type"] = .string("HTTP") }
            let tagged = try tagList(tags)
            if !tagged.isEmpty { input["Tags"] = .array(tagged) }
            let service = try await client.call("CreateService", input)["Service"] ?? .null
            options.json ? printJSON(service) : print(text(service["Id"]))
        }
    }

    struct Delete: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a service without instances.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Service id.") var id: String

        func run(_ client: CairnClient) async throws {
            _ = try await client.call("DeleteService", ["Id": .string(id)])
            if options.json { printJSON(.object([:])) }
        }
    }

    struct Attributes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Service attributes.", subcommands: [Show.self, Set.self, Remove.self], defaultSubcommand: Show.self)

        struct Show: ClientCommand {
            static let configuration = CommandConfiguration(commandName: "get", abstract: "Show a service's attributes.")
            @OptionGroup var options: ClientOptions
            @Argument(help: "Service id.") var service: String

            func run(_ client: CairnClient) async throws {
                let attributes =
                    try await client.call("GetServiceAttributes", ["ServiceId": .string(service)])["ServiceAttributes"]?["Attributes"]
                    ?? .object([:])
                if options.json { return printJSON(attributes) }
                printTable(["KEY", "VALUE"], (attributes.objectValue ?? [:]).sorted { $0.key < $1.key }.map { [$0.key, text($0.value)] })
            }
        }

        struct Set: ClientCommand {
            static let configuration = CommandConfiguration(abstract: "Add or change service attributes.")
            @OptionGroup var options: ClientOptions
            @Argument(help: "Service id.") var service: String
            @Argument(help: "KEY=VALUE pairs.") var attributes: [String]

            func run(_ client: CairnClient) async throws {
                let map = try keyValues(attributes, what: "attribute")
                _ = try await client.call("UpdateServiceAttributes", ["ServiceId": .string(service), "Attributes": .object(map)])
            }
        }

        struct Remove: ClientCommand {
            static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete service attributes by key.")
            @OptionGroup var options: ClientOptions
            @Argument(help: "Service id.") var service: String
            @Argument(help: "Keys.") var keys: [String]

            func run(_ client: CairnClient) async throws {
                _ = try await client.call(
                    "DeleteServiceAttributes", ["ServiceId": .string(service), "Attributes": .array(keys.map(JSONValue.string))])
            }
        }
    }
}

struct Instances: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register, deregister, renew, list and get instances.",
        subcommands: [List.self, Get.self, Register.self, Deregister.self, Renew.self])

    struct List: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "List a service's instances.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Service id.") var service: String

        func run(_ client: CairnClient) async throws {
            options.list(
                try await client.paginate("ListInstances", ["ServiceId": .string(service)], key: "Instances"), ["ID", "ATTRIBUTES"]
            ) {
                [text($0["Id"]), attributesText($0["Attributes"])]
            }
        }
    }

    struct Get: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Show one instance.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Service id.") var service: String
        @Argument(help: "Instance id.") var instance: String

        func run(_ client: CairnClient) async throws {
            let found =
                try await client.call("GetInstance", ["ServiceId": .string(service), "InstanceId": .string(instance)])["Instance"] ?? .null
            if options.json { return printJSON(found) }
            print("Id          \(text(found["Id"]))")
            for (key, value) in (found["Attributes"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                print("  \(key)=\(text(value))")
            }
        }
    }

    struct Register: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register (or update) an instance and wait for the operation.",
            discussion: "Example: cairn instances register srv-... web-1 AWS_INSTANCE_IPV4=10.0.0.5 AWS_INSTANCE_PORT=8080 version=v2")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Service id.") var service: String
        @Argument(help: "Instance id.") var instance: String
        @Argument(help: "Attributes KEY=VALUE.") var attributes: [String] = []
        @OptionGroup var wait: WaitOptions

        func run(_ client: CairnClient) async throws {
            let input: [String: JSONValue] = [
                "ServiceId": .string(service), "InstanceId": .string(instance),
                "Attributes": .object(try keyValues(attributes, what: "attribute")), "CreatorRequestId": .string(UUID().uuidString),
            ]
            try await options.finish(client, operation: text(try await client.call("RegisterInstance", input)["OperationId"]), wait)
        }
    }

    struct Renew: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Renew the lease of an ephemeral instance (registered with CAIRN_LEASE_SECONDS).",
            discussion: "Prints when the lease runs out unless renewed again. Example: cairn instances renew srv-... web-1")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Service id.") var service: String
        @Argument(help: "Instance id.") var instance: String

        func run(_ client: CairnClient) async throws {
            let body = try await client.post("/cairn/v1/leases/renew", query: [("ServiceId", service), ("InstanceId", instance)])
            let answer = try JSONValue.parse(body)
            var expires = 0.0
            switch answer["ExpiresAt"] {
            case .double(let seconds)?: expires = seconds
            case .int(let seconds)?: expires = Double(seconds)
            default: break
            }
            print("lease of \(instance) renewed; it runs out at \(Date(timeIntervalSince1970: expires).ISO8601Format())")
        }
    }

    struct Deregister: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Deregister an instance and wait for the operation.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Service id.") var service: String
        @Argument(help: "Instance id.") var instance: String
        @OptionGroup var wait: WaitOptions

        func run(_ client: CairnClient) async throws {
            let input: [String: JSONValue] = ["ServiceId": .string(service), "InstanceId": .string(instance)]
            try await options.finish(client, operation: text(try await client.call("DeregisterInstance", input)["OperationId"]), wait)
        }
    }
}

func attributesText(_ value: JSONValue?) -> String {
    (value?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\(text($0.value))" }.joined(separator: " ")
}

struct Discover: ClientCommand {
    static let configuration = CommandConfiguration(
        abstract: "Discover instances as clients do (DiscoverInstances).",
        discussion: "Example: cairn discover demo orders --attribute version=v2 --health HEALTHY")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Namespace name (the HTTP name).") var namespace: String
    @Argument(help: "Service name.") var service: String
    @Option(name: .customLong("attribute"), help: "Only instances with KEY=VALUE (repeatable).") var attributes: [String] = []
    @Option(name: .customLong("optional"), help: "Prefer instances with KEY=VALUE (repeatable).") var optional: [String] = []
    @Option(help: "HEALTHY, UNHEALTHY, ALL or HEALTHY_OR_ELSE_ALL.") var health: String?
    @Option(help: "At most this many instances.") var maxResults: Int?

    func run(_ client: CairnClient) async throws {
        var input: [String: JSONValue] = ["NamespaceName": .string(namespace), "ServiceName": .string(service)]
        let query = try keyValues(attributes, what: "attribute")
        if !query.isEmpty { input["QueryParameters"] = .object(query) }
        let soft = try keyValues(optional, what: "optional attribute")
        if !soft.isEmpty { input["OptionalParameters"] = .object(soft) }
        if let health { input["HealthStatus"] = .string(health.uppercased()) }
        if let maxResults { input["MaxResults"] = .int(Int64(maxResults)) }
        let answer = try await client.call("DiscoverInstances", input)
        if options.json { return printJSON(answer) }
        printTable(
            ["INSTANCE", "HEALTH", "ATTRIBUTES"],
            (answer["Instances"]?.arrayValue ?? []).map {
                [text($0["InstanceId"]), text($0["HealthStatus"]), attributesText($0["Attributes"])]
            })
    }
}

struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Instance health: set custom status, get status, get probe history.",
        subcommands: [Set.self, Status.self, History.self])

    struct Set: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Set the custom health status of an instance.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Service id.") var service: String
        @Argument(help: "Instance id.") var instance: String
        @Argument(help: "healthy or unhealthy.") var status: String

        func validate() throws {
            guard ["HEALTHY", "UNHEALTHY"].contains(status.uppercased()) else {
                throw ValidationError("status must be healthy or unhealthy")
            }
        }

        func run(_ client: CairnClient) async throws {
            _ = try await client.call(
                "UpdateInstanceCustomHealthStatus",
                ["ServiceId": .string(service), "InstanceId": .string(instance), "Status": .string(status.uppercased())])
        }
    }

    struct Status: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Health of a service's instances.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Service id.") var service: String

        func run(_ client: CairnClient) async throws {
            var statuses: [String: JSONValue] = [:]
            var input: [String: JSONValue] = ["ServiceId": .string(service)]
            while true {
                let page = try await client.call("GetInstancesHealthStatus", input)
                statuses.merge(page["Status"]?.objectValue ?? [:]) { $1 }
                guard let token = page["NextToken"]?.stringValue else { break }
                input["NextToken"] = .string(token)
            }
            if options.json { return printJSON(.object(statuses)) }
            printTable(["INSTANCE", "STATUS"], statuses.sorted { $0.key < $1.key }.map { [$0.key, text($0.value)] })
        }
    }

    struct History: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "The last probes of an actively checked instance, newest first.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Service id.") var service: String
        @Argument(help: "Instance id.") var instance: String

        func run(_ client: CairnClient) async throws {
            let bytes = try await client.get("/cairn/v1/probe-history", query: [("ServiceId", service), ("InstanceId", instance)])
            let history = try JSONValue.parse(bytes)
            if options.json { return printJSON(history) }
            print(
                "\(text(history["InstanceId"])) is \(text(history["Status"])) (\(text(history["Check"]?["Type"])) \(text(history["Check"]?["Endpoint"])))"
            )
            printTable(
                ["TIME", "RESULT", "LATENCY-MS", "DETAIL"],
                (history["Probes"]?.arrayValue ?? []).map {
                    [text($0["Time"]), $0["Healthy"] == .bool(true) ? "healthy" : "unhealthy", text($0["LatencyMs"]), text($0["Detail"])]
                })
        }
    }
}

struct Operations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Asynchronous operations: list, show, wait.", subcommands: [List.self, Get.self, Wait.self])

    struct List: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "List operations (newest first).")
        @OptionGroup var options: ClientOptions
        @Option(help: "Only this status: SUBMITTED, PENDING, SUCCESS, FAIL.") var status: String?
        @Option(help: "Only this type, e.g. REGISTER_INSTANCE.") var type: String?

        func run(_ client: CairnClient) async throws {
            var filters: [JSONValue] = []
            if let status { filters.append(.object(["Name": .string("STATUS"), "Values": .array([.string(status.uppercased())])])) }
            if let type { filters.append(.object(["Name": .string("TYPE"), "Values": .array([.string(type.uppercased())])])) }
            let input: [String: JSONValue] = filters.isEmpty ? [:] : ["Filters": .array(filters)]
            options.list(try await client.paginate("ListOperations", input, key: "Operations"), ["ID", "STATUS"]) {
                [text($0["Id"]), text($0["Status"])]
            }
        }
    }

    struct Get: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Show one operation.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Operation id.") var id: String

        func run(_ client: CairnClient) async throws {
            options.show(try await client.call("GetOperation", ["OperationId": .string(id)])["Operation"] ?? .null)
        }
    }

    struct Wait: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait until an operation succeeds (exit 0) or fails (exit 1); exit 4 on timeout. Progress goes to stderr.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Operation id.") var id: String
        @Option(help: "Seconds to wait.") var timeout: Double = 60

        func run(_ client: CairnClient) async throws {
            let op = try await waitForOperation(client, id, timeout: timeout)
            options.json ? printJSON(op) : print(text(op["Status"]))
        }
    }
}

/// The ARN of a namespace or service given by id (as every other command takes them) or already as an ARN.
func resourceARN(_ idOrARN: String, _ client: CairnClient) async throws(ClientError) -> String {
    if idOrARN.hasPrefix("arn:") { return idOrARN }
    if idOrARN.hasPrefix("srv-") {
        return try await client.call("GetService", ["Id": .string(idOrARN)])["Service"]?["Arn"]?.stringValue ?? idOrARN
    }
    return try await client.call("GetNamespace", ["Id": .string(idOrARN)])["Namespace"]?["Arn"]?.stringValue ?? idOrARN
}

struct Tags: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tags of namespaces and services.", subcommands: [List.self, Add.self, Remove.self])

    struct List: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "List a resource's tags.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Namespace or service: an id (ns-…, srv-…) or an ARN.") var arn: String

        func run(_ client: CairnClient) async throws {
            let tags = try await client.call("ListTagsForResource", ["ResourceARN": .string(try await resourceARN(arn, client))])["Tags"]
            if options.json { return printJSON(tags ?? .array([])) }
            printTable(["KEY", "VALUE"], (tags?.arrayValue ?? []).map { [text($0["Key"]), text($0["Value"])] })
        }
    }

    struct Add: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Add or change tags.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Namespace or service: an id (ns-…, srv-…) or an ARN.") var arn: String
        @Argument(help: "KEY=VALUE pairs.") var tags: [String]

        func run(_ client: CairnClient) async throws {
            let list = try tagList(tags)
            _ = try await client.call("TagResource", ["ResourceARN": .string(try await resourceARN(arn, client)), "Tags": .array(list)])
        }
    }

    struct Remove: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Remove tags by key.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Namespace or service: an id (ns-…, srv-…) or an ARN.") var arn: String
        @Argument(help: "Keys.") var keys: [String]

        func run(_ client: CairnClient) async throws {
            _ = try await client.call(
                "UntagResource",
                ["ResourceARN": .string(try await resourceARN(arn, client)), "TagKeys": .array(keys.map(JSONValue.string))])
        }
    }
}
