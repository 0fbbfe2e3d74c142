import NIOCore
import NIOPosix

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
        let text = "\(error)"
        if text.contains("connectTimeout") || text.contains("timed out") { return "timeout" }
        if text.contains("refused") || text.contains("ECONNREFUSED") || text.contains("errno: 111") { return "refused" }
        if text.contains("unreachable") || text.contains("errno: 113") || text.contains("errno: 101") { return "unreachable" }
        if text.contains("SSL") || text.contains("TLS") || text.contains("handshake") { return "TLS error: \(text)" }
        return text
    }
}

struct ProbeError: Error, CustomStringConvertible {
    var description: String
}
