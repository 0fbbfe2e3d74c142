import CairnCore
import DNSWire
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// UDP (`DNSUDPWorkers`: one socket and thread per core, SO_REUSEPORT) and TCP (NIO) on the same port. Both answer
/// from the registry's published snapshot: no locks shared with the writer, no database.
public final class DNSServer: Sendable {
    public let port: Int
    /// TCP, on NIO.
    let channels: [any Channel]
    /// UDP, on threads of their own.
    let udp: [DNSUDPWorkers]

    /// Binds UDP and TCP on `host:port` (`port` 0: a free port, the same for both).
    public static func bind(
        host: String, port: Int, responder: DNSResponder, registry: Registry, queryLog: Logger?,
        telemetry: any Telemetry = NoTelemetry(), rateLimit: DNSRateLimit = DNSRateLimit(), group: MultiThreadedEventLoopGroup = .singleton
    ) async throws -> DNSServer {
        try await bind(
            hosts: [host], optional: [], port: port, responder: responder, registry: registry, queryLog: queryLog, telemetry: telemetry,
            rateLimit: rateLimit, group: group)
    }

    /// Binds UDP and TCP on every one of `hosts` and, where they can be bound, of `optional` (the default's `::1`
    /// on a host without IPv6), all on one port (`port` 0: a free one).
    public static func bind(
        hosts: [String], optional: [String], port: Int, responder: DNSResponder, registry: Registry, queryLog: Logger?,
        telemetry: any Telemetry = NoTelemetry(), rateLimit: DNSRateLimit = DNSRateLimit(), group: MultiThreadedEventLoopGroup = .singleton
    ) async throws -> DNSServer {
        var attempts = 0
        while true {
            attempts += 1
            var channels: [any Channel] = []
            var udp: [DNSUDPWorkers] = []
            do {
                var boundPort = port
                for host in hosts {
                    let bound = try await bindOnce(
                        host: host, port: boundPort, responder: responder, registry: registry, queryLog: queryLog, telemetry: telemetry,
                        rateLimit: rateLimit, group: group)
                    channels += bound.channels
                    udp += bound.udp
                    boundPort = bound.port
                }
                for host in optional {
                    if let bound = try? await bindOnce(
                        host: host, port: boundPort, responder: responder, registry: registry, queryLog: queryLog, telemetry: telemetry,
                        rateLimit: rateLimit, group: group)
                    {
                        channels += bound.channels
                        udp += bound.udp
                    }
                }
                return DNSServer(port: boundPort, channels: channels, udp: udp)
            } catch  where port == 0 && attempts < 5 {
                for workers in udp { await workers.close() }
                for channel in channels { try? await channel.close() }
                continue  // the free UDP port was taken for TCP (or on another address); try another
            } catch {
                for workers in udp { await workers.close() }
                for channel in channels { try? await channel.close() }
                throw error
            }
        }
    }

    static func bindOnce(
        host: String, port: Int, responder: DNSResponder, registry: Registry, queryLog: Logger?, telemetry: any Telemetry,
        rateLimit: DNSRateLimit, group: MultiThreadedEventLoopGroup
    ) async throws -> DNSServer {
        var channels: [any Channel] = []
        var workers: [DNSUDPWorkers] = []
        let answerer = DNSQueryAnswerer(responder: responder, registry: registry, queryLog: queryLog, telemetry: telemetry)
        do {
            let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
            // As many UDP threads as the event loops: the cores this process may use.
            let udp = try DNSUDPWorkers.bind(
                address: address, count: Array(group.makeIterator()).count, answerer: answerer, rateLimit: rateLimit)
            workers.append(udp)
            let boundPort = udp.port
            let tcp = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            IdleStateHandler(readTimeout: .seconds(30)),
                            ByteToMessageHandler(DNSTCPFrameDecoder()),
                            DNSTCPHandler(answerer: answerer),
                        ])
                    }
                }
                .bind(host: host, port: boundPort).get()
            channels.append(tcp)
            return DNSServer(port: boundPort, channels: channels, udp: workers)
        } catch {
            for channel in channels { try? await channel.close() }
            for udp in workers { await udp.close() }
            throw error
        }
    }

    init(port: Int, channels: [any Channel], udp: [DNSUDPWorkers]) {
        self.port = port
        self.channels = channels
        self.udp = udp
    }

    public func close() async {
        for workers in udp { await workers.close() }
        for channel in channels { try? await channel.close() }
    }
}

/// Response-rate limiting of UDP answers (`dns.rateLimit`; `ResponseRateLimiter`). `responsesPerSecond` 0 turns it off.
public struct DNSRateLimit: Sendable, Equatable {
    public var responsesPerSecond: Double
    public var slip: Int
    public init(responsesPerSecond: Double = 0, slip: Int = 2) {
        self.responsesPerSecond = responsesPerSecond
        self.slip = slip
    }
}

/// The bytes of a socket address, for matching against network CIDRs.
func addressBytes(_ address: SocketAddress?) -> [UInt8] {
    switch address {
    case .v4(let a)?: return withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
    case .v6(let a)?:
        let bytes = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
        // An IPv4-mapped IPv6 address is the IPv4 client it carries.
        if bytes.prefix(10).allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return Array(bytes.suffix(4)) }
        return bytes
    default: return []
    }
}

/// What both transports do with a query: answer it from the latest snapshot and log it when asked to.
struct DNSQueryAnswerer: Sendable {
    let responder: DNSResponder
    let registry: Registry
    let queryLog: Logger?
    let telemetry: any Telemetry

    /// A UDP query's reply written into `out`, from the thread's ready answers when they hold it; false when the
    /// packet deserves none. With the query log on, every query takes the full path (the log line needs its message
    /// and the client's address, made by `address` only then).
    func reply(
        toUDP query: UnsafeRawBufferPointer, client: DNSClient, address: () -> SocketAddress?, cache: inout DNSAnswerCache,
        into out: inout ByteBuffer
    ) -> Bool {
        if queryLog != nil {
            guard let reply = reply(to: ByteBuffer(bytes: query), from: address(), transport: .udp) else { return false }
            out.writeBytes(reply)
            return true
        }
        let started = ContinuousClock.now
        let state = registry.snapshot.state
        guard let (type, rcode) = responder.respond(toUDP: query, client: client, state: state, cache: &cache, into: &out) else {
            return false
        }
        let elapsed = ContinuousClock.now - started
        telemetry.dnsQuery(
            type: type, rcode: UInt8(truncatingIfNeeded: rcode),
            seconds: Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
        return true
    }

    func reply(to query: ByteBuffer, from client: SocketAddress?, transport: DNSResponder.Transport) -> [UInt8]? {
        let started = ContinuousClock.now
        guard
            let (reply, message) = responder.respond(
                to: Array(query.readableBytesView), client: addressBytes(client), transport: transport, state: registry.snapshot.state)
        else { return nil }
        observe(message, client: client, transport: transport, started: started)
        return reply
    }

    /// A TCP query's replies: several messages for a zone transfer.
    func replies(toTCP query: ByteBuffer, from client: SocketAddress?) -> [[UInt8]]? {
        let started = ContinuousClock.now
        guard
            let (replies, message) = responder.respondTCP(
                to: Array(query.readableBytesView), client: addressBytes(client), state: registry.snapshot.state)
        else { return nil }
        observe(message, client: client, transport: .tcp, started: started)
        return replies
    }

    private func observe(_ message: DNSMessage, client: SocketAddress?, transport: DNSResponder.Transport, started: ContinuousClock.Instant)
    {
        let elapsed = ContinuousClock.now - started
        telemetry.dnsQuery(
            type: message.questions.first?.type ?? 0, rcode: UInt8(truncatingIfNeeded: message.rcode),
            seconds: Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
        if let queryLog {
            let q = message.questions.first
            queryLog.info(
                "\(client?.ipAddress ?? "?") \(transport) \(q?.name.description ?? "-") \(q.map { String($0.type) } ?? "-") rcode=\(message.rcode) answers=\(message.answers.count)\(message.header.truncated ? " TC" : "")"
            )
        }
    }
}

/// TCP framing: a two-byte length before each message (RFC 1035 §4.2.2).
struct DNSTCPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            let frame = buffer.getSlice(at: buffer.readerIndex + 2, length: Int(length))
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2 + Int(length))
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }
}

final class DNSTCPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let answerer: DNSQueryAnswerer

    init(answerer: DNSQueryAnswerer) { self.answerer = answerer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let replies = answerer.replies(toTCP: unwrapInboundIn(data), from: context.channel.remoteAddress) else {
            context.close(promise: nil)
            return
        }
        for reply in replies {
            var buffer = context.channel.allocator.buffer(capacity: reply.count + 2)
            buffer.writeInteger(UInt16(truncatingIfNeeded: reply.count))
            buffer.writeBytes(reply)
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
