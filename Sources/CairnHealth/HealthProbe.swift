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
