import CairnCore
import CloudMapWire

/// One operation of the API, everything about it in one row: its access class (which decides auditing and
/// CloudTrail's `readOnly`), its throttle bucket, what it touches (the namespace and service that IAM checks and
/// the audit record names, resolved once per call), the request tags its condition keys carry, who answers it and
/// what its audit record keeps of the response. Adding an operation is adding a row.
struct OperationSpec: Sendable {
    enum Access: Sendable { case write, read, discover }

    /// Where in the input a call names what it touches.
    enum Subject: Sendable {
        /// Nothing in particular (List*): checked against `*`.
        case none
        /// A namespace being created, by its `Name`.
        case newNamespace
        /// A namespace by id or ARN in the given member.
        case namespace(String)
        /// A service being created in the namespace of `NamespaceId` (or `DnsConfig.NamespaceId`).
        case newService
        /// A service by id or ARN in the given member.
        case service(String)
        /// A service by `NamespaceName` (the namespace's HTTP name) and `ServiceName`.
        case discovery
        /// The namespace and service an operation (`OperationId`) targets.
        case operation
        /// A namespace or service by the ARN in `ResourceARN`.
        case taggable
    }

    /// Which condition keys the request's own tags give (`aws:RequestTag/…`, `aws:TagKeys`).
    enum RequestTags: Sendable {
        case none
        /// `Tags: [{Key, Value}]`.
        case tags
        /// `TagKeys: [String]`.
        case keys
    }

    /// What the audit record keeps of a write's result as `responseElements`.
    enum AuditResponse: Sendable {
        case none
        case operationId
        case service

        func render(_ result: CommandResult) -> JSONValue? {
            switch self {
            case .none: return nil
            case .operationId: return Render.operationId(result)
            case .service:
                guard case .service(let service) = result else { return nil }
                return .object(["Service": Render.service(service, instanceCount: 0, summary: false)])
            }
        }
    }

    let name: String
    let access: Access
    let throttle: Throttle.Class
    let subject: Subject
    let requestTags: RequestTags
    let auditResponse: AuditResponse
    let run: @Sendable (CloudMapAPI, CloudMapAPI.Call) async throws -> CloudMapAPI.Output

    init(
        _ name: String, _ access: Access, _ subject: Subject, tags: RequestTags = .none, audit: AuditResponse = .none,
        throttle: Throttle.Class = .controlPlane,
        _ run: @escaping @Sendable (CloudMapAPI, CloudMapAPI.Call) async throws -> CloudMapAPI.Output
    ) {
        self.name = name
        self.access = access
        self.subject = subject
        self.requestTags = tags
        self.auditResponse = audit
        self.throttle = throttle
        self.run = run
    }
}

extension CloudMapAPI {
    /// The 30 operation names, sorted.
    public static var operationNames: [String] { operations.keys.sorted() }

    /// The whole API at a glance: the 30 operations of servicediscovery 2017-03-14.
    /// The table by the whole `X-Amz-Target` value (`Route53AutoNaming_v20170314.DiscoverInstances`): one look-up
    /// per request, no slicing of the header.
    static let operationsByTarget: [String: OperationSpec] = Dictionary(
        uniqueKeysWithValues: operations.map { ("\(ServiceModel.targetPrefix).\($0.key)", $0.value) })

    static let operations: [String: OperationSpec] = {
        let table: [OperationSpec] = [
            OperationSpec("CreateHttpNamespace", .write, .newNamespace, tags: .tags, audit: .operationId) {
                try await $0.createNamespace($1, type: .HTTP)
            },
            OperationSpec("CreatePrivateDnsNamespace", .write, .newNamespace, tags: .tags, audit: .operationId) {
                try await $0.createNamespace($1, type: .DNS_PRIVATE)
            },
            OperationSpec("CreatePublicDnsNamespace", .write, .newNamespace, tags: .tags, audit: .operationId) {
                try await $0.createNamespace($1, type: .DNS_PUBLIC)
            },
            OperationSpec("UpdateHttpNamespace", .write, .namespace("Id"), audit: .operationId) {
                try await $0.updateNamespace($1, type: .HTTP)
            },
            OperationSpec("UpdatePrivateDnsNamespace", .write, .namespace("Id"), audit: .operationId) {
                try await $0.updateNamespace($1, type: .DNS_PRIVATE)
            },
            OperationSpec("UpdatePublicDnsNamespace", .write, .namespace("Id"), audit: .operationId) {
                try await $0.updateNamespace($1, type: .DNS_PUBLIC)
            },
            OperationSpec("DeleteNamespace", .write, .namespace("Id"), audit: .operationId) { try await $0.deleteNamespace($1) },
            OperationSpec("GetNamespace", .read, .namespace("Id")) { try $0.getNamespace($1) },
            OperationSpec("ListNamespaces", .read, .none) { try $0.listNamespaces($1) },
            OperationSpec("CreateService", .write, .newService, tags: .tags, audit: .service) { try await $0.createService($1) },
            OperationSpec("UpdateService", .write, .service("Id"), audit: .operationId) { try await $0.updateService($1) },
            OperationSpec("DeleteService", .write, .service("Id")) { try await $0.deleteService($1) },
            OperationSpec("GetService", .read, .service("Id")) { try $0.getService($1) },
            OperationSpec("ListServices", .read, .none) { try $0.listServices($1) },
            OperationSpec("GetServiceAttributes", .read, .service("ServiceId")) { try $0.getServiceAttributes($1) },
            OperationSpec("UpdateServiceAttributes", .write, .service("ServiceId")) { try await $0.updateServiceAttributes($1) },
            OperationSpec("DeleteServiceAttributes", .write, .service("ServiceId")) { try await $0.deleteServiceAttributes($1) },
            OperationSpec("RegisterInstance", .write, .service("ServiceId"), audit: .operationId) { try await $0.registerInstance($1) },
            OperationSpec("DeregisterInstance", .write, .service("ServiceId"), audit: .operationId) {
                try await $0.deregisterInstance($1)
            },
            OperationSpec("GetInstance", .read, .service("ServiceId")) { try $0.getInstance($1) },
            OperationSpec("ListInstances", .read, .service("ServiceId")) { try $0.listInstances($1) },
            OperationSpec("GetInstancesHealthStatus", .read, .service("ServiceId")) { try $0.getInstancesHealthStatus($1) },
            OperationSpec("UpdateInstanceCustomHealthStatus", .write, .service("ServiceId")) {
                try await $0.updateInstanceCustomHealthStatus($1)
            },
            OperationSpec("DiscoverInstances", .discover, .discovery, throttle: .discoverInstances) { try $0.discoverInstances($1) },
            OperationSpec("DiscoverInstancesRevision", .discover, .discovery, throttle: .discoverInstancesRevision) {
                try $0.discoverInstancesRevision($1)
            },
            OperationSpec("GetOperation", .read, .operation) { try $0.getOperation($1) },
            OperationSpec("ListOperations", .read, .none) { try $0.listOperations($1) },
            OperationSpec("TagResource", .write, .taggable, tags: .tags) { try await $0.tagResource($1) },
            OperationSpec("UntagResource", .write, .taggable, tags: .keys) { try await $0.untagResource($1) },
            OperationSpec("ListTagsForResource", .read, .taggable) { try $0.listTagsForResource($1) },
        ]
        return Dictionary(uniqueKeysWithValues: table.map { ($0.name, $0) })
    }()

    /// Submits a command to the single writer with the call's audit record, which the writer completes from the
    /// outcome (as the operation's row says) and stores in the same transaction as the change.
    func submit(_ command: Command, _ call: Call) async throws(CairnError) -> CommandResult {
        var draft: CloudTrailDraft?
        if let ticket = call.audit {
            ticket.stored = true
            draft = CloudTrailDraft(event: ticket.event, response: call.spec.auditResponse)
        }
        return try await registry.submit(command, context: call.context, audit: draft)
    }

    var state: RegistryState { registry.snapshot.state }
}
