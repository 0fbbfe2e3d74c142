import Foundation

/// Kinds of namespace, as AWS names them.
public enum NamespaceType: String, Codable, Sendable, CaseIterable {
    case HTTP, DNS_PUBLIC, DNS_PRIVATE

    public var isDNS: Bool { self != .HTTP }
}

public enum ServiceType: String, Codable, Sendable {
    case HTTP, DNS_HTTP, DNS
}

public enum RoutingPolicy: String, Codable, Sendable {
    case MULTIVALUE, WEIGHTED
}

public enum RecordType: String, Codable, Sendable, CaseIterable {
    case SRV, A, AAAA, CNAME
}

public enum HealthCheckType: String, Codable, Sendable {
    case HTTP, HTTPS, TCP
}

public enum HealthStatus: String, Codable, Sendable {
    case HEALTHY, UNHEALTHY, UNKNOWN
}

public enum HealthStatusFilter: String, Codable, Sendable {
    case HEALTHY, UNHEALTHY, ALL, HEALTHY_OR_ELSE_ALL
}

public struct Tag: Codable, Sendable, Equatable, Hashable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

public struct DnsRecord: Codable, Sendable, Equatable, Hashable {
    public var type: RecordType
    public var ttl: Int64
    public init(type: RecordType, ttl: Int64) {
        self.type = type
        self.ttl = ttl
    }
}

public struct DnsConfig: Codable, Sendable, Equatable, Hashable {
    public var routingPolicy: RoutingPolicy
    public var records: [DnsRecord]
    public init(routingPolicy: RoutingPolicy, records: [DnsRecord]) {
        self.routingPolicy = routingPolicy
        self.records = records
    }
    public func has(_ type: RecordType) -> Bool { records.contains { $0.type == type } }
}

public struct HealthCheckConfig: Codable, Sendable, Equatable, Hashable {
    public var type: HealthCheckType
    public var resourcePath: String?
    public var failureThreshold: Int?
    public init(type: HealthCheckType, resourcePath: String? = nil, failureThreshold: Int? = nil) {
        self.type = type
        self.resourcePath = resourcePath
        self.failureThreshold = failureThreshold
    }
}

/// Who and where a request comes from: scopes every resource by region and account.
public struct RequestContext: Sendable, Equatable, Codable {
    public var region: String
    public var account: String
    /// For a result of work a cluster divides among its nodes (a health probe): the membership term it was started
    /// in. The writer drops it unless the term is still this node's (see `ClusterMembership.admits`).
    public var membershipTerm: UInt64?
    public init(region: String, account: String, membershipTerm: UInt64? = nil) {
        self.region = region
        self.account = account
        self.membershipTerm = membershipTerm
    }
}

public struct Namespace: Codable, Sendable, Equatable {
    public var id: String
    public var region: String
    public var account: String
    public var name: String
    public var type: NamespaceType
    public var description: String?
    public var httpName: String
    public var hostedZoneId: String?
    public var soaTTL: Int64?
    /// Cairn's equivalent of the VPC: a network name from the configuration (private DNS namespaces).
    public var network: String?
    public var createDate: Int64
    public var creatorRequestId: String?
    public var tags: [Tag]
    /// DNSSEC signing keys of a public DNS namespace (a Cairn extension, docs/dns.md "DNSSEC"): nil when the zone
    /// is not signed; two during a key roll.
    public var signingKeys: [SigningKey]? = nil

    public var arn: String { ARN.namespace(region: region, account: account, id: id) }
}

/// A DNSSEC key of a zone: ECDSA P-256 with SHA-256 (algorithm 13), used as a combined signing key (DNSKEY flags
/// 257, so it is both the key the parent's DS names and the key that signs every record set). Made by the node that
/// took the request (the registry decides with ids and keys that come in, so every node applies the same key); the
/// private half is kept in the store with the namespace and never leaves it through the API.
public struct SigningKey: Codable, Sendable, Equatable {
    /// The private scalar, 32 bytes, base64.
    public var privateKey: String
    /// The public point, x then y (32 bytes each), base64: the DNSKEY's public key field (RFC 6605).
    public var publicKey: String
    /// Milliseconds since 1970.
    public var createdAt: Int64

    public init(privateKey: [UInt8], publicKey: [UInt8], createdAt: Int64) {
        self.privateKey = Data(privateKey).base64EncodedString()
        self.publicKey = Data(publicKey).base64EncodedString()
        self.createdAt = createdAt
    }

    public static let algorithm: UInt8 = 13
    public static let flags: UInt16 = 257

    public var privateKeyBytes: [UInt8] { Data(base64Encoded: privateKey).map { Array($0) } ?? [] }
    public var publicKeyBytes: [UInt8] { Data(base64Encoded: publicKey).map { Array($0) } ?? [] }

    /// The DNSKEY record's data: flags, protocol 3, algorithm, public key.
    public var dnskeyData: [UInt8] { [UInt8(Self.flags >> 8), UInt8(Self.flags & 0xFF), 3, Self.algorithm] + publicKeyBytes }

    /// The key tag of RFC 4034 appendix B, over the DNSKEY data.
    public var keyTag: UInt16 {
        var sum: UInt32 = 0
        for (i, b) in dnskeyData.enumerated() { sum &+= i & 1 == 0 ? UInt32(b) << 8 : UInt32(b) }
        sum &+= (sum >> 16) & 0xFFFF
        return UInt16(truncatingIfNeeded: sum & 0xFFFF)
    }
}

/// A change to a zone's DNSSEC keys (`Command.dnssec`).
public enum SigningKeyChange: Sendable, Equatable {
    /// Sign the zone with this key; nothing changes when it is signed already.
    case enable(SigningKey)
    /// Start a key roll: publish this second key and sign with both (the zone must have exactly one key).
    case roll(SigningKey)
    /// End a roll: drop the key with this tag (never the zone's only key).
    case retire(keyTag: UInt16)
    /// Stop signing: drop every key.
    case disable
    /// Sign with exactly these keys (one or two): what `cairn import` carries over from an export.
    case restore([SigningKey])
}

public struct Service: Codable, Sendable, Equatable {
    public var id: String
    public var region: String
    public var account: String
    public var name: String
    public var namespaceId: String
    public var description: String?
    public var type: ServiceType
    public var dnsConfig: DnsConfig?
    public var healthCheckConfig: HealthCheckConfig?
    public var hasCustomHealth: Bool
    public var createDate: Int64
    public var creatorRequestId: String?
    public var createdByAccount: String
    public var tags: [Tag]
    public var attributes: [String: String]
    /// Sequence number of the last instance registration or deregistration (`InstancesRevision`).
    public var instancesRevision: UInt64
    /// Sequence number of the last change to anything discovery renders for this service (instances, health,
    /// health configuration). Caches of rendered answers key on it.
    public var viewVersion: UInt64

    public var arn: String { ARN.service(region: region, account: account, id: id) }
    /// Whether any health checking applies (Route 53-style check or custom).
    public var hasHealthChecking: Bool { healthCheckConfig != nil || hasCustomHealth }
}

public struct Instance: Codable, Sendable, Equatable {
    public var id: String
    public var serviceId: String
    public var attributes: [String: String]
    public var creatorRequestId: String?
    public var createdByAccount: String
    public var health: HealthStatus
    public var registeredAt: Int64
}

public enum OperationType: String, Codable, Sendable, CaseIterable {
    case CREATE_NAMESPACE, DELETE_NAMESPACE, UPDATE_NAMESPACE, UPDATE_SERVICE, REGISTER_INSTANCE, DEREGISTER_INSTANCE
}

public enum OperationStatus: String, Codable, Sendable, CaseIterable {
    case SUBMITTED, PENDING, SUCCESS, FAIL
}

/// One status the operation passed through, with the time it was entered.
public struct OperationTransition: Codable, Sendable, Equatable {
    public var status: OperationStatus
    public var at: Int64
}

/// An operation record, immutable once made. A class, not a struct: the operation table holds up to 100,000 of
/// them in a persistent hash trie whose every insert copies the nodes on its path, item by item, and an item that
/// is one reference costs one retain to copy where this record's eight fields cost seven (the writer inserts one per
/// registration, inside the cluster's write lock).
public final class Operation: Codable, Sendable, Equatable {
    public let id: String
    public let region: String
    public let account: String
    public let type: OperationType
    public let status: OperationStatus
    public let errorCode: String?
    public let errorMessage: String?
    public let createDate: Int64
    public let updateDate: Int64
    public let targets: [String: String]
    public let history: [OperationTransition]
    /// Sequence number of the change that recorded it; orders ListOperations.
    public let sequence: UInt64

    init(
        id: String, region: String, account: String, type: OperationType, status: OperationStatus, errorCode: String?,
        errorMessage: String?, createDate: Int64, updateDate: Int64, targets: [String: String], history: [OperationTransition],
        sequence: UInt64
    ) {
        self.id = id
        self.region = region
        self.account = account
        self.type = type
        self.status = status
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.createDate = createDate
        self.updateDate = updateDate
        self.targets = targets
        self.history = history
        self.sequence = sequence
    }

    public static func == (a: Operation, b: Operation) -> Bool {
        a === b
            || (a.id == b.id && a.region == b.region && a.account == b.account && a.type == b.type && a.status == b.status
                && a.errorCode == b.errorCode && a.errorMessage == b.errorMessage && a.createDate == b.createDate
                && a.updateDate == b.updateDate && a.targets == b.targets && a.history == b.history && a.sequence == b.sequence)
    }
}

/// What an idempotency token resolved to, with a fingerprint of the request that first used it.
public struct IdempotencyRecord: Codable, Sendable, Equatable {
    public var resultId: String
    public var fingerprint: String
}
