import NIOCore
import NIOPosix
import NIOSSL

/// GET `ResourcePath` with the service's DNS name as Host: healthy on 2xx/3xx. Connect within 4 s, status within
/// 2 s after that (Route 53's rules). HTTPS does not verify the certificate, as Route 53 does not.
///
/// Only the status line is read, so the probe has no HTTP codec in its pipeline: one request written as bytes,
/// twelve bytes of the answer read (`HTTPStatusLine`), then the connection is closed.
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
        let request = Self.request(target, defaultPort: tls == nil ? 80 : 443)
        return ClientBootstrap(group: loop).connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil)) }
                }
            }
            .connect(to: address)
            .flatMap { channel -> EventLoopFuture<(healthy: Bool, detail: String)> in
                let status = channel.eventLoop.makePromise(of: Int.self)
                let timeout = channel.eventLoop.scheduleTask(in: responseTimeout) { status.fail(ProbeError(description: "timeout")) }
                do {
                    try channel.pipeline.syncOperations.addHandler(StatusLineHandler(promise: status))
                } catch {
                    status.fail(error)
                }
                var buffer = channel.allocator.buffer(capacity: request.utf8.count)
                buffer.writeString(request)
                channel.writeAndFlush(buffer, promise: nil)
                return status.futureResult
                    .map { code in ((200..<400).contains(code), "status \(code)") }
                    .recover { (false, ProbeFailure.describe($0)) }
                    .always { _ in
                        timeout.cancel()
                        channel.close(promise: nil)
                    }
            }
            .recover { (false, ProbeFailure.describe($0)) }
    }

    /// The whole request: `GET path HTTP/1.1` with Host (the port added when it is not the scheme's), User-Agent and
    /// `Connection: close`. Service and namespace names are validated on the way in (printable ASCII, no spaces);
    /// the resource path is not, so its spaces, control characters and non-ASCII bytes are percent-encoded here and
    /// a registrant cannot split the request.
    static func request(_ target: ProbeTarget, defaultPort: Int) -> String {
        let host = target.port == defaultPort ? target.hostHeader : "\(target.hostHeader):\(target.port)"
        return
            "GET \(requestTarget(target.path)) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: Cairn-Health-Check/1.0\r\nConnection: close\r\n\r\n"
    }

    /// The path with every byte outside `!`...`~` percent-encoded.
    static func requestTarget(_ path: String) -> String {
        guard path.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) else { return path }
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(path.utf8.count * 3)
        for byte in path.utf8 {
            if byte <= 0x20 || byte >= 0x7F {
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The status code of an HTTP/1.x response, from its first twelve bytes (`HTTP/1.1 200`, RFC 9112 §4).
enum HTTPStatusLine {
    enum Result: Equatable {
        /// Fewer than twelve bytes so far, and they match.
        case needMore
        case status(Int)
        /// Not an HTTP/1.x status line.
        case malformed
    }

    static let length = 12

    /// Reads at most the first twelve bytes; decides as soon as a byte does not fit.
    static func parse(_ bytes: some Collection<UInt8>) -> Result {
        var code = 0
        for (i, byte) in bytes.prefix(length).enumerated() {
            let fits: Bool
            switch i {
            case 0: fits = byte == UInt8(ascii: "H")
            case 1, 2: fits = byte == UInt8(ascii: "T")
            case 3: fits = byte == UInt8(ascii: "P")
            case 4: fits = byte == UInt8(ascii: "/")
            case 5: fits = byte == UInt8(ascii: "1")
            case 6: fits = byte == UInt8(ascii: ".")
            case 7: fits = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            case 8: fits = byte == UInt8(ascii: " ")
            default:
                fits = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
                code = code * 10 + Int(byte &- UInt8(ascii: "0"))
            }
            if !fits { return .malformed }
        }
        return bytes.count >= length ? .status(code) : .needMore
    }
}

/// Completes the promise with the response's status code, once its first twelve bytes arrived (or with the error
/// that prevented it). Keeps at most those twelve bytes.
final class StatusLineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let promise: EventLoopPromise<Int>
    private var head: [UInt8] = []
    private var done = false

    init(promise: EventLoopPromise<Int>) {
        self.promise = promise
        head.reserveCapacity(HTTPStatusLine.length)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var buffer = unwrapInboundIn(data)
        while head.count < HTTPStatusLine.length, let byte = buffer.readInteger(as: UInt8.self) { head.append(byte) }
        switch HTTPStatusLine.parse(head) {
        case .needMore: return
        case .status(let code): complete(.success(code))
        case .malformed: complete(.failure(ProbeError(description: "not an HTTP response")))
        }
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        complete(.failure(error))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete(.failure(ProbeError(description: "connection closed before a response")))
    }

    private func complete(_ result: Result<Int, any Error>) {
        guard !done else { return }
        done = true
        promise.completeWith(result)
    }
}
