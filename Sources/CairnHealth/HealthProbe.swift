import CairnCore
import NIOCore

/// Where and how to probe one registered instance.
public struct ProbeTarget: Sendable, Hashable {
    public var serviceId: String
    public var instanceId: String
    /// Identifies the registration: a re-registration is a new target and restarts the check.
    public var registeredAt: Int64
    public var type: HealthCheckType
    public var path: String
    public var threshold: Int
    /// `AWS_INSTANCE_IPV4`, else `AWS_INSTANCE_IPV6`.
    public var address: String
    public var port: Int
    /// The Host header: the service's DNS name.
    public var hostHeader: String

    public var key: String { "\(serviceId)/\(instanceId)" }

    public init(
        serviceId: String, instanceId: String, registeredAt: Int64, type: HealthCheckType, path: String, threshold: Int,
        address: String, port: Int, hostHeader: String
    ) {
        self.serviceId = serviceId
        self.instanceId = instanceId
        self.registeredAt = registeredAt
        self.type = type
        self.path = path
        self.threshold = threshold
        self.address = address
        self.port = port
        self.hostHeader = hostHeader
    }

    /// Why an address is off limits unless loopback targets are allowed: loopback (127.0.0.0/8, ::1), link-local
    /// (169.254.0.0/16, fe80::/10) or unspecified (0.0.0.0, ::); nil for any other address.
    public static func restricted(_ address: String) -> String? {
        if let v4 = IPAddress.ipv4(address) {
            if v4[0] == 127 { return "a loopback address" }
            if v4[0] == 169 && v4[1] == 254 { return "a link-local address" }
            if v4 == [0, 0, 0, 0] { return "the unspecified address" }
            return nil
        }
        if let v6 = IPAddress.ipv6(address) {
            if v6 == [UInt8](repeating: 0, count: 15) + [1] { return "a loopback address" }
            if v6 == [UInt8](repeating: 0, count: 16) { return "the unspecified address" }
            if v6[0] == 0xFE && v6[1] & 0xC0 == 0x80 { return "a link-local address" }
            // IPv4-mapped (::ffff:a.b.c.d): judged as the IPv4 address.
            if v6[0..<10].allSatisfy({ $0 == 0 }) && v6[10] == 0xFF && v6[11] == 0xFF {
                return restricted(v6[12..<16].map(String.init).joined(separator: "."))
            }
        }
        return nil
    }
}

/// One probe's outcome, as the history keeps it.
public struct ProbeRecord: Sendable, Equatable {
    /// Epoch milliseconds when the probe started.
    public var time: Int64
    public var healthy: Bool
    public var latencyMilliseconds: Double
    /// Why it failed (`refused`, `timeout`, `status 503`, `TLS error: ...`), or the status that passed.
    public var detail: String
}

/// A way to check an endpoint; implementations name their protocol. Probes run entirely on an event loop and
/// never fail: a failure is a result with its reason.
public protocol HealthProbe: Sendable {
    func probe(_ target: ProbeTarget, on loop: any EventLoop) -> EventLoopFuture<(healthy: Bool, detail: String)>
}

extension ProbeTarget {
    /// The endpoint as a socket address: connecting to it needs no name resolution.
    func socketAddress() throws -> SocketAddress { try SocketAddress(ipAddress: address, port: port) }
}
