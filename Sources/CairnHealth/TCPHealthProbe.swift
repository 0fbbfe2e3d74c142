import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Healthy when a TCP connection opens within the timeout (10 s, as Route 53).
public struct TCPHealthProbe: HealthProbe {
    let connectTimeout: TimeAmount

    public init(connectTimeout: TimeAmount = .seconds(10)) { self.connectTimeout = connectTimeout }

    public func probe(_ target: ProbeTarget, on loop: any EventLoop) -> EventLoopFuture<(healthy: Bool, detail: String)> {
        let address: SocketAddress
        do { address = try target.socketAddress() } catch { return loop.makeSucceededFuture((false, "bad address \(target.address)")) }
        return ClientBootstrap(group: loop).connectTimeout(connectTimeout).connect(to: address)
            .flatMap { channel in channel.close().map { (true, "connected") }.recover { _ in (true, "connected") } }
            .recover { (false, ProbeFailure.describe($0)) }
    }
}

enum ProbeFailure {
    /// A short reason for the history: refused, timeout, unreachable, TLS error, or the error itself.
    static func describe(_ error: any Error) -> String {
        if let error = error as? ProbeError { return error.description }
        if let error = error as? ChannelError, case .connectTimeout = error { return "timeout" }
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first { return describe(first.error) }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return "refused"
            case EHOSTUNREACH, ENETUNREACH: return "unreachable"
            case ETIMEDOUT: return "timeout"
            case ECONNRESET: return "reset"
            default: return "\(error)"
            }
        }
        if error is NIOSSLError { return "TLS error: \(error)" }
        return "\(error)"
    }
}

struct ProbeError: Error, CustomStringConvertible {
    var description: String
}
