import CairnCore
import CloudMapWire

extension CloudMapAPI {
    /// One operation: what it is (its access class, which decides auditing and CloudTrail's `readOnly`; its
    /// throttle bucket) and who answers it.
    struct Handler: Sendable {
        enum Access: Sendable { case write, read, discover }
        let name: String
        let access: Access
        let throttle: Throttle.Class
        let run: @Sendable (CloudMapAPI, Call) async throws -> Output
    }

    /// The 30 operation names, sorted.
    public static var operationNames: [String] { operations.keys.sorted() }

    /// The whole API at a glance: the 30 operations of servicediscovery 2017-03-14 and who answers each.
    static let operations: [String: Handler] = {
        let table: [(String, Handler.Access, Throttle.Class, @Sendable (CloudMapAPI, Call) async throws -> Output)] = [
            ("CreateHttpNamespace", .write, .controlPlane, { try await $0.createNamespace($1, type: .HTTP) }),
            ("CreatePrivateDnsNamespace", .write, .controlPlane, { try await $0.createNamespace($1, type: .DNS_PRIVATE) }),
            ("CreatePublicDnsNamespace", .write, .controlPlane, { try await $0.createNamespace($1, type: .DNS_PUBLIC) }),
            ("UpdateHttpNamespace", .write, .controlPlane, { try await $0.updateNamespace($1, type: .HTTP) }),
            ("UpdatePrivateDnsNamespace", .write, .controlPlane, { try await $0.updateNamespace($1, type: .DNS_PRIVATE) }),
            ("UpdatePublicDnsNamespace", .write, .controlPlane, { try await $0.updateNamespace($1, type: .DNS_PUBLIC) }),
            ("DeleteNamespace", .write, .controlPlane, { try await $0.deleteNamespace($1) }),
            ("GetNamespace", .read, .controlPlane, { try $0.getNamespace($1) }),
            ("ListNamespaces", .read, .controlPlane, { try $0.listNamespaces($1) }),
            ("CreateService", .write, .controlPlane, { try await $0.createService($1) }),
            ("UpdateService", .write, .controlPlane, { try await $0.updateService($1) }),
            ("DeleteService", .write, .controlPlane, { try await $0.deleteService($1) }),
            ("GetService", .read, .controlPlane, { try $0.getService($1) }),
            ("ListServices", .read, .controlPlane, { try $0.listServices($1) }),
            ("GetServiceAttributes", .read, .controlPlane, { try $0.getServiceAttributes($1) }),
            ("UpdateServiceAttributes", .write, .controlPlane, { try await $0.updateServiceAttributes($1) }),
            ("DeleteServiceAttributes", .write, .controlPlane, { try await $0.deleteServiceAttributes($1) }),
            ("RegisterInstance", .write, .controlPlane, { try await $0.registerInstance($1) }),
            ("DeregisterInstance", .write, .controlPlane, { try await $0.deregisterInstance($1) }),
            ("GetInstance", .read, .controlPlane, { try $0.getInstance($1) }),
            ("ListInstances", .read, .controlPlane, { try $0.listInstances($1) }),
            ("GetInstancesHealthStatus", .read, .controlPlane, { try $0.getInstancesHealthStatus($1) }),
            ("UpdateInstanceCustomHealthStatus", .write, .controlPlane, { try await $0.updateInstanceCustomHealthStatus($1) }),
            ("DiscoverInstances", .discover, .discoverInstances, { try $0.discoverInstances($1) }),
            ("DiscoverInstancesRevision", .discover, .discoverInstancesRevision, { try $0.discoverInstancesRevision($1) }),
            ("GetOperation", .read, .controlPlane, { try $0.getOperation($1) }),
            ("ListOperations", .read, .controlPlane, { try $0.listOperations($1) }),
            ("TagResource", .write, .controlPlane, { try await $0.tagResource($1) }),
            ("UntagResource", .write, .controlPlane, { try await $0.untagResource($1) }),
            ("ListTagsForResource", .read, .controlPlane, { try $0.listTagsForResource($1) }),
        ]
        return Dictionary(uniqueKeysWithValues: table.map { ($0.0, Handler(name: $0.0, access: $0.1, throttle: $0.2, run: $0.3)) })
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
