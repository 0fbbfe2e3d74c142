/// A change a caller asks for. Commands are decided against the current state into events (or an error).
public enum Command: Sendable, Equatable {
    case createNamespace(CreateNamespace)
    case updateNamespace(UpdateNamespace)
    case deleteNamespace(id: String)
    case createService(CreateService)
    case updateService(UpdateService)
    case deleteService(id: String)
    case registerInstance(RegisterInstance)
    case deregisterInstance(serviceId: String, instanceId: String)
    case setCustomHealth(serviceId: String, instanceId: String, status: HealthStatus)
    /// A result of Cairn's own health checks, for the registration that was probed (`registeredAt`); ignored when
    /// the instance was re-registered or deregistered meanwhile, or the service lost its check.
    case setProbedHealth(serviceId: String, instanceId: String, registeredAt: Int64, status: HealthStatus)
    /// Renews an ephemeral instance's lease (`Lease`) now.
    case renewLease(serviceId: String, instanceId: String)
    /// Cairn's own deregistration of an ephemeral instance whose lease ran out, for the lease as last renewed at
    /// `renewedAt`; ignored when it was renewed, re-registered or deregistered meanwhile.
    case expireLease(serviceId: String, instanceId: String, renewedAt: Int64)
    case updateServiceAttributes(serviceId: String, attributes: [String: String])
    case deleteServiceAttributes(serviceId: String, keys: [String])
    case tagResource(arn: String, tags: [Tag])
    case untagResource(arn: String, keys: [String])
    /// DNSSEC keys of a public DNS namespace (a Cairn extension).
    case dnssec(namespaceId: String, change: SigningKeyChange)
}

public struct CreateNamespace: Codable, Sendable, Equatable {
    public var type: NamespaceType
    public var name: String
    public var description: String?
    public var network: String?
    public var soaTTL: Int64?
    public var tags: [Tag]
    public var creatorRequestId: String?

    public init(
        type: NamespaceType, name: String, description: String? = nil, network: String? = nil, soaTTL: Int64? = nil,
        tags: [Tag] = [], creatorRequestId: String? = nil
    ) {
        self.type = type
        self.name = name
        self.description = description
        self.network = network
        self.soaTTL = soaTTL
        self.tags = tags
        self.creatorRequestId = creatorRequestId
    }
}

public struct UpdateNamespace: Codable, Sendable, Equatable {
    public var id: String
    /// The namespace type the operation is for (UpdateHttpNamespace → HTTP, ...).
    public var type: NamespaceType
    public var description: String?
    public var soaTTL: Int64?
    public var updaterRequestId: String?

    public init(id: String, type: NamespaceType, description: String?, soaTTL: Int64? = nil, updaterRequestId: String? = nil) {
        self.id = id
        self.type = type
        self.description = description
        self.soaTTL = soaTTL
        self.updaterRequestId = updaterRequestId
    }
}

public struct CreateService: Codable, Sendable, Equatable {
    public var name: String
    public var namespaceId: String?
    /// The deprecated `DnsConfig.NamespaceId`.
    public var dnsConfigNamespaceId: String?
    public var description: String?
    /// DNS records and routing policy as sent (routing policy nil when omitted).
    public var dnsRecords: [DnsRecord]?
    public var routingPolicy: RoutingPolicy?
    public var healthCheckConfig: HealthCheckConfig?
    public var customHealth: Bool
    /// `Type: HTTP` from the request.
    public var httpOnly: Bool
    public var tags: [Tag]
    public var creatorRequestId: String?

    public init(
        name: String, namespaceId: String?, dnsConfigNamespaceId: String? = nil, description: String? = nil,
        dnsRecords: [DnsRecord]? = nil, routingPolicy: RoutingPolicy? = nil, healthCheckConfig: HealthCheckConfig? = nil,
        customHealth: Bool = false, httpOnly: Bool = false, tags: [Tag] = [], creatorRequestId: String? = nil
    ) {
        self.name = name
        self.namespaceId = namespaceId
        self.dnsConfigNamespaceId = dnsConfigNamespaceId
        self.description = description
        self.dnsRecords = dnsRecords
        self.routingPolicy = routingPolicy
        self.healthCheckConfig = healthCheckConfig
        self.customHealth = customHealth
        self.httpOnly = httpOnly
        self.tags = tags
        self.creatorRequestId = creatorRequestId
    }
}

public struct UpdateService: Codable, Sendable, Equatable {
    public var id: String
    public var description: String?
    public var dnsRecords: [DnsRecord]?
    public var healthCheckConfig: HealthCheckConfig?

    public init(id: String, description: String?, dnsRecords: [DnsRecord]?, healthCheckConfig: HealthCheckConfig?) {
        self.id = id
        self.description = description
        self.dnsRecords = dnsRecords
        self.healthCheckConfig = healthCheckConfig
    }
}

public struct RegisterInstance: Codable, Sendable, Equatable {
    public var serviceId: String
    public var instanceId: String
    public var attributes: [String: String]
    public var creatorRequestId: String?

    public init(serviceId: String, instanceId: String, attributes: [String: String], creatorRequestId: String? = nil) {
        self.serviceId = serviceId
        self.instanceId = instanceId
        self.attributes = attributes
        self.creatorRequestId = creatorRequestId
    }
}

/// What a decided command returns to its caller.
public enum CommandResult: Sendable, Equatable {
    case operation(id: String)
    case service(Service)
    /// A renewed lease: when it runs out now, unless renewed again (ms).
    case lease(expiresAt: Int64)
    case none
}

extension Command {
    /// The idempotency fingerprint deciding this command would encode, worked out by the caller's task (nil: the
    /// command carries no token, or its fingerprint is cheap to leave to the writer). Only RegisterInstance, the
    /// call botocore sends with a `CreatorRequestId` every time, is worth it.
    public var fingerprintAhead: String? {
        guard case .registerInstance(var c) = self, c.creatorRequestId != nil else { return nil }
        c.creatorRequestId = nil
        return RegistryState.fingerprint(c)
    }
}
