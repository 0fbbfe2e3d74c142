import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// GET `ResourcePath` with the service's DNS name as Host: healthy on 2xx/3xx. Connect within 4 s, status within
/// 2 s after that (Route 53's rules). HTTPS does not verify the certificate, as Route 53 does not.
public struct HTTPHealthProbe: HealthProbe {
    let tls: NIOSSLContext?
    let connectTimeout: TimeAmount
    let responseTimeout: TimeAmount

    public init(https: Bool, connectTimeout: TimeAmount = .seconds(4), responseTimeout: TimeAmount = .seconds(2)) throws {
        if https {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            self.tls = try NIOSSLContext(configuration: configuration)
        } else {
            self.tls = nil
        }
        self.connectTimeout = connectTimeout
        self.responseTimeout = responseTimeout
    }

    public func probe(_ target: ProbeTarget, on loop: any EventLoop) -> EventLoopFuture<(healthy: Bool, detail: String)> {
        let address: SocketAddress
        do { address = try target.socketAddress() } catch { return loop.makeSucceededFuture((false, "bad address \(target.address)")) }
        let tls = self.tls
        let responseTimeout = self.responseTimeout
        let defaultPort = tls == nil ? 80 : 443
        let host = target.port == defaultPort ? target.hostHeader : "\(target.hostHeader):\(target.port)"
        let path = target.path
        return ClientBootstrap(group: loop).connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                }
            }
            .connect(to: address)
            .flatMap { channel -> EventLoopFuture<(healthy: Bool, detail: String)> in
                let status = channel.eventLoop.makePromise(of: HTTPResponseStatus.self)
                let timeout = channel.eventLoop.scheduleTask(in: responseTimeout) { status.fail(ProbeError(description: "timeout")) }
                do {
                    try channel.pipeline.syncOperations.addHandler(ResponseStatusHandler(promise: status))
                } catch {
                    status.fail(error)
                }
                var headers = HTTPHeaders()
                headers.add(name: "Host", value: host)
                headers.add(name: "User-Agent", value: "Cairn-Health-Check/1.0")
                headers.add(name: "Connection", value: "close")
                channel.write(
                    HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                return status.futureResult
                    .map { ((200..<400).contains($0.code), "status \($0.code)") }
                    .recover { (false, ProbeFailure.describe($0)) }
                    .always { _ in
                        timeout.cancel()
                        channel.close(promise: nil)
                    }
            }
            .recover { (false, ProbeFailure.describe($0)) }
    }
}

/// Completes the promise with the status of the first response head (or the error that prevented it).
final class ResponseStatusHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPClientResponsePart

    let promise: EventLoopPromise<HTTPResponseStatus>

    init(promise: EventLoopPromise<HTTPResponseStatus>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { promise.succeed(head.status) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ProbeError(description: "connection closed before a response"))
    }
}
