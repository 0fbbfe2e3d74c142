import CairnCore
import DNSWire
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// NOTIFY (RFC 1996) to the configured secondaries (`dns.transfer.notify`) whenever a DNS zone's records change:
/// woken by the writer's publishes, it compares each zone's records with those it last announced (at most five
/// times a second: a change after a quiet spell at once, a burst of writes in one NOTIFY), and sends each changed zone's NOTIFY with its SOA to every
/// target, again every two seconds until the target answers (five tries at most). A secondary then asks for the SOA
/// and transfers the zone (`ZoneTransfer`). At start every zone is announced once.
public final class DNSNotifier: Sendable {
    /// A secondary to notify: an IP address and a port.
    public struct Target: Sendable, Equatable, CustomStringConvertible {
        public let host: String
        public let port: Int

        /// `192.0.2.1:53` or `[2001:db8::1]:53`.
        public init?(_ text: String) {
            let host: Substring
            let port: Substring
            if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
                host = text[text.index(after: text.startIndex)..<close]
                let rest = text[text.index(after: close)...]
                guard rest.hasPrefix(":") else { return nil }
                port = rest.dropFirst()
                guard IPAddress.ipv6(String(host)) != nil else { return nil }
            } else {
                guard let colon = text.lastIndex(of: ":") else { return nil }
                host = text[..<colon]
                port = text[text.index(after: colon)...]
                guard IPAddress.ipv4(String(host)) != nil else { return nil }
            }
            guard (1...5).contains(port.count), port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber), let number = Int(port),
                (1...65_535).contains(number)
            else { return nil }
            self.host = String(host)
            self.port = number
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    let targets: [Target]
    let resolver: DNSResolver
    let registry: Registry
    let logger: Logger
    let telemetry: any Telemetry
    /// The ids of NOTIFY messages a target answered.
    let answered = Mutex<Set<UInt16>>([])

    static let tries = 5
    static let retryAfter: Duration = .seconds(2)
    static let coalesce: Duration = .milliseconds(200)

    public init(targets: [Target], resolver: DNSResolver, registry: Registry, logger: Logger, telemetry: any Telemetry = NoTelemetry()) {
        self.targets = targets
        self.resolver = resolver
        self.registry = registry
        self.logger = logger
        self.telemetry = telemetry
    }

    /// Runs until the task is cancelled.
    public func run() async {
        guard !targets.isEmpty else { return }
        let channels: [any Channel]
        do {
            channels = try await bind()
        } catch {
            logger.error(
                "could not open a UDP socket to send NOTIFY; secondaries will only see changes at their refresh",
                metadata: ["error": "\(error)"])
            return
        }
        defer { for channel in channels { channel.close(promise: nil) } }
        var announced: [String: ZoneSnapshot] = [:]
        var seen: UInt64 = 0
        await withDiscardingTaskGroup { sends in
            while !Task.isCancelled {
                let state = registry.snapshot.state
                seen = state.sequence
                var current: [String: ZoneSnapshot] = [:]
                for zone in resolver.transferableZones(state) {
                    // Rendered only when something it depends on moved, and announced only when the records changed
                    // (compared service by service, for the services whose view moved).
                    let version = resolver.zoneVersion(zone, state: state)
                    if let last = announced[zone.namespace.id], last.version == version {
                        current[zone.namespace.id] = last
                        continue
                    }
                    let (snapshot, _) = resolver.zoneContent(zone, state: state)
                    current[zone.namespace.id] = snapshot
                    if let last = announced[zone.namespace.id] {
                        let (removed, added) = ZoneJournal.compare(last, snapshot)
                        if removed.isEmpty && added.isEmpty { continue }
                    }
                    let soa = resolver.soaRecord(zone, state: state, exactTTL: true)
                    // The serial secondaries will ask for next: noted, so an IXFR from it can be incremental.
                    if case .soa(let data) = soa.data {
                        resolver.journal.record(zone: zone.namespace.id, serial: data.serial, snapshot: snapshot)
                    }
                    for target in targets {
                        guard
                            let channel = channels.first(where: {
                                $0.localAddress?.protocol == (target.host.contains(":") ? .inet6 : .inet)
                            })
                        else { continue }
                        sends.addTask { await self.notify(zone: zone.apex, soa: soa, to: target, on: channel) }
                    }
                }
                announced = current
                // At most one look every `coalesce`: a change after a quiet spell is announced at once, the writes of
                // a burst together in the next look.
                let looked = ContinuousClock.now
                guard await registry.awaitPublish(beyond: seen) else { return }
                let next = looked + Self.coalesce
                if ContinuousClock.now < next { try? await Task.sleep(until: next) }
            }
            sends.cancelAll()
        }
    }

    private func bind() async throws -> [any Channel] {
        var channels: [any Channel] = []
        let wanted = Set(targets.map { $0.host.contains(":") })
        for v6 in wanted.sorted(by: { !$0 && $1 }) {
            let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            NotifyResponses { id in
                                self.answered.withLock { set in
                                    if set.count > 4096 { set.removeAll() }  // bounded: only answers to sends still waiting matter
                                    set.insert(id)
                                }
                            })
                    }
                }
                .bind(host: v6 ? "::" : "0.0.0.0", port: 0).get()
            channels.append(channel)
        }
        return channels
    }

    /// Sends one NOTIFY until `target` answers it, or `tries` times.
    func notify(zone: DNSName, soa: DNSRecord, to target: Target, on channel: any Channel) async {
        let id = UInt16.random(in: 0...UInt16.max)
        var message = DNSMessage(
            header: DNSHeader(id: id, flags: 4 << 11 | 0x0400), questions: [DNSQuestion(name: zone, type: DNSType.soa)])
        message.answers = [soa]
        var bytes = message.encode().bytes
        if let key = resolver.configuration.transferKey {
            bytes = TSIG.sign(bytes, key: key, prior: nil, time: TSIG.now()).bytes
        }
        guard let address = try? SocketAddress(ipAddress: target.host, port: target.port) else { return }
        for attempt in 1...Self.tries {
            guard !Task.isCancelled else { return }
            let buffer = channel.allocator.buffer(bytes: bytes)
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
            let deadline = ContinuousClock.now + Self.retryAfter
            while ContinuousClock.now < deadline {
                if answered.withLock({ $0.remove(id) != nil }) {
                    logger.debug("NOTIFY answered", metadata: ["zone": "\(zone)", "target": "\(target)"])
                    return
                }
                try? await Task.sleep(for: .milliseconds(50))
                if Task.isCancelled { return }
            }
            if attempt == Self.tries {
                logger.warning(
                    "a secondary did not answer NOTIFY", metadata: ["zone": "\(zone)", "target": "\(target)", "tries": "\(attempt)"])
            }
        }
    }
}

/// Notes the ids of NOTIFY answers (a response with opcode NOTIFY); anything else is ignored.
final class NotifyResponses: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let onAnswer: @Sendable (UInt16) -> Void

    init(onAnswer: @escaping @Sendable (UInt16) -> Void) { self.onAnswer = onAnswer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let id = envelope.data.getInteger(at: envelope.data.readerIndex, as: UInt16.self),
            let flags = envelope.data.getInteger(at: envelope.data.readerIndex + 2, as: UInt16.self),
            flags & 0x8000 != 0, (flags >> 11) & 0xF == 4
        else { return }
        onAnswer(id)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

extension DNSResolver {
    /// The zones a secondary may transfer: every DNS namespace.
    func transferableZones(_ state: RegistryState) -> [ZoneIndex.Zone] {
        index.zoneTable(state).values.flatMap { $0 }.sorted { $0.namespace.id < $1.namespace.id }
    }
}
