import CairnCore
import CloudMapWire

extension CloudMapAPI {
    struct Handler: Sendable {
        let name: String
        let run: @Sendable (CloudMapAPI, Call) async throws -> Output
    }

    /// The 30 operation names, sorted.
    public static var operationNames: [String] { operations.keys.sorted() }

    /// The whole API at a glance: the 30 operations of servicediscovery 2017-03-14 and who answers each.
    static let operations: [String: Handler] = {
        let table: [(String, @Sendable (CloudMapAPI, Call) async throws -> Output)] = [
            ("CreateHttpNamespace", { try await $0.createNamespace($1, type: .HTTP) }),
            ("CreatePrivateDnsNamespace", { try await $0.createNamespace($1, type: .DNS_PRIVATE) }),
            ("CreatePublicDnsNamespace", { try await $0.createNamespace($1, type: .DNS_PUBLIC) }),
            ("UpdateHttpNamespace", { try await $0.updateNamespace($1, type: .HTTP) }),
            ("UpdatePrivateDnsNamespace", { try await $0.updateNamespace($1, type: .DNS_PRIVATE) }),
            ("UpdatePublicDnsNamespace", { try await $0.updateNamespace($1, type: .DNS_PUBLIC) }),
            ("DeleteNamespace", { try await $0.deleteNamespace($1) }),
            ("GetNamespace", { try $0.getNamespace($1) }),
            ("ListNamespaces", { try $0.listNamespaces($1) }),
            ("CreateService", { try await $0.createService($1) }),
            ("UpdateService", { try await $0.updateService($1) }),
            ("DeleteService", { try await $0.deleteService($1) }),
            ("GetService", { try $0.getService($1) }),
            ("ListServices", { try $0.listServices($1) }),
            ("GetServiceAttributes", { try $0.getServiceAttributes($1) }),
            ("UpdateServiceAttributes", { try await $0.updateServiceAttributes($1) }),
            ("DeleteServiceAttributes", { try await $0.deleteServiceAttributes($1) }),
            ("RegisterInstance", { try await $0.registerInstance($1) }),
            ("DeregisterInstance", { try await $0.deregisterInstance($1) }),
            ("GetInstance", { try $0.getInstance($1) }),
            ("ListInstances", { try $0.listInstances($1) }),
            ("GetInstancesHealthStatus", { try $0.getInstancesHealthStatus($1) }),
            ("UpdateInstanceCustomHealthStatus", { try await $0.updateInstanceCustomHealthStatus($1) }),
            ("DiscoverInstances", { try $0.discoverInstances($1) }),
            ("DiscoverInstancesRevision", { try $0.discoverInstancesRevision($1) }),
            ("GetOperation", { try $0.getOperation($1) }),
            ("ListOperations", { try $0.listOperations($1) }),
            ("TagResource", { try await $0.tagResource($1) }),
            ("UntagResource", { try await $0.untagResource($1) }),
            ("ListTagsForResource", { try $0.listTagsForResource($1) }),
        ]
        return Dictionary(uniqueKeysWithValues: table.map { ($0.0, Handler(name: $0.0, run: $0.1)) })
    }()

    /// Submits a command to the single writer, with the call's audit record (completed by the writer from the
    /// outcome, `render` giving the response elements) so both land in one transaction.
    func submit(_ command: Command, _ call: Call, render: (@Sendable (CommandResult) -> JSONValue)? = nil)
        async throws(CairnError) -> CommandResult
    {
        var draft: AuditDraft?
        if let ticket = call.audit {
            ticket.stored = true
            draft = AuditDraft(ticket.event) { event, outcome in
                switch outcome {
                case .success(let result):
                    event.responseElements = render.flatMap { AuditRendering.elements($0(result)) }
                    if case .service(let service) = result, !event.resources.contains(service.arn) { event.resources.append(service.arn) }
                case .failure(let error):
                    event.errorCode = error.code.rawValue
                    event.errorMessage = error.message
                }
            }
        }
        return try await registry.submit(command, context: call.context, audit: draft)
    }

    var state: RegistryState { registry.snapshot.state }
}
