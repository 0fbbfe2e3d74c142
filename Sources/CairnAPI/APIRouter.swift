import CairnCore
import CloudMapWire
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// The request context of Cairn's HTTP routes: Hummingbird's core storage plus the client's address, which the
/// audit trail records as `sourceIPAddress`.
public struct CairnRequestContext: Hummingbird.RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection, whose address is read only when something asks for it (the audit trail, the console's
    /// sign-in back-off): most requests never do.
    private let channel: any Channel
    public var remoteAddress: SocketAddress? { channel.remoteAddress }

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    var peer: String { remoteAddress?.ipAddress ?? "" }

    /// Closes the connection (a watch stream whose client stopped reading).
    func closeConnection() { channel.close(promise: nil) }

    /// Hangs `hangup` up once the client has gone away: it closed its side of the connection (the server allows half
    /// closure, so the channel itself stays open until the response ends, which a watch stream never does by
    /// itself), or the connection closed. One watcher per connection, added at its first wait: a keep-alive
    /// connection that long-polls again and again does not pile up handlers.
    func hangUpWhenClientLeaves(_ hangup: Hangup) async {
        let watcher: ClientLeavingWatcher
        if let existing = try? await channel.pipeline.handler(type: ClientLeavingWatcher.self).get() {
            watcher = existing
        } else {
            watcher = ClientLeavingWatcher()
            try? await channel.pipeline.addHandler(watcher, position: .first).get()
            // Closed before the watcher was in place: it saw nothing, so it is told here.
            if !channel.isActive { watcher.clientLeft() }
        }
        watcher.watch(hangup)
    }

    /// Bounds the kernel's send buffer of this connection (a watch stream: Linux grows it up to `tcp_wmem`'s
    /// maximum, 4 MiB by default, for every connection whose client reads slowly).
    func limitSendBuffer(_ bytes: Int32) async {
        try? await channel.setOption(ChannelOptions.socketOption(.so_sndbuf), value: SocketOptionValue(bytes)).get()
    }
}

/// Sees the client's end of input before the HTTP handlers do (they keep the connection for the response under
/// way), or the connection's end, and hangs up the wait under way on it (a long poll's, a watch stream's).
final class ClientLeavingWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    private struct State {
        var left = false
        var current: Hangup?
    }
    private let state = Mutex(State())

    /// `hangup` is the connection's wait now (replacing the one before, which has ended); hung up at once if the
    /// client has already left.
    func watch(_ hangup: Hangup) {
        let left = state.withLock { s in
            s.current = hangup
            return s.left
        }
        if left { hangup.hangUp() }
    }

    func clientLeft() {
        let current = state.withLock { s in
            s.left = true
            defer { s.current = nil }
            return s.current
        }
        current?.hangUp()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { clientLeft() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientLeft()
        context.fireChannelInactive()
    }
}

extension CloudMapAPI {
    static let targetHeader = HTTPField.Name("X-Amz-Target")!
    static let requestIdHeader = HTTPField.Name("x-amzn-RequestId")!
    static let indexHeader = HTTPField.Name("X-Cairn-Index")!
    static let lastEventIDHeader = HTTPField.Name("Last-Event-ID")!
    static let waitHeader = HTTPField.Name(LongPoll.waitHeader)!

    /// The HTTP routes: `POST /` for the API (whatever the Host, so `data-` prefixed hosts work too),
    /// `/healthz` (alive), `/readyz` (snapshot loaded, writer accepting) and the audit trail under `/cairn/v1/audit`.
    public func router() -> Router<CairnRequestContext> {
        let router = Router(context: CairnRequestContext.self)
        router.post("/") { request, context -> Response in
            var request = request
            let reply: Reply
            do {
                let body = try await request.collectBody(upTo: self.configuration.maxBodyBytes)
                // A long poll (it asks to wait) ends when its client leaves, not at the end of its wait: the place it
                // holds among `api.watch.maxWaiting` is free again at once.
                let hangup = request.headers[Self.waitHeader] == nil ? nil : Hangup()
                if let hangup { await context.hangUpWhenClientLeaves(hangup) }
                reply = await self.handle(
                    method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "",
                    headers: Self.headers(request), body: Array(body.readableBytesView), peer: context.remoteAddress?.ipAddress ?? "",
                    hangup: hangup)
            } catch is NIOTooManyBytesError {
                reply = self.errorReply(
                    WireError(
                        type: "RequestEntityTooLargeException",
                        message: "The request body exceeds \(self.configuration.maxBodyBytes) bytes.", status: 413))
            } catch {
                // A malformed chunked encoding, a body cut short: the client's fault, not the body's size.
                reply = self.errorReply(WireError(type: "SerializationException", message: "The request body could not be read."))
            }
            return Self.response(reply)
        }
        // A person who opens the endpoint in a browser is told what it is and where to go.
        router.get("/") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: Self.homePage)))
        }
        router.get("/healthz") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        // Ready: the snapshot is loaded (it is before the server listens), the writer answers a barrier within 2 s
        // and the store can commit (the last commit did, or a probe commit does now).
        router.get("/readyz") { _, _ in
            if let problem = await self.registry.readiness() {
                return Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "not ready: \(problem)\n")))
            }
            let sequence = self.registry.snapshot.state.sequence
            var text = "ready sequence=\(sequence)"
            if let view = self.registry.membership?.view {
                let lag = view.databaseRevision > sequence ? view.databaseRevision - sequence : 0
                text += " database=\(view.databaseRevision) lag=\(lag) nodes=\(view.live.count)"
            }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
        }
        router.get("/cairn/v1/audit") { request, _ -> Response in
            do throws(WireError) {
                _ = try self.authorizeExtension(Self.signed(request), action: "LookupAuditEvents")
                let query = try AuditLookup.query(request.uri.queryParameters)
                let page: AuditPage
                do { page = try await self.registry.auditTrail(query) } catch {
                    throw WireError(type: "InternalFailure", message: "The audit trail could not be read.", status: 500)
                }
                return Self.json(AuditLookup.render(page))
            } catch {
                return Self.response(self.errorReply(error))
            }
        }
        router.get("/cairn/v1/audit/export") { request, _ -> Response in
            do throws(WireError) {
                _ = try self.authorizeExtension(Self.signed(request), action: "ExportAuditEvents")
                let after = request.uri.queryParameters["after"].flatMap { UInt64(String($0)) } ?? 0
                var lines: [UInt8] = []
                do {
                    for record in try await self.registry.auditExport(after: after) {
                        lines += record.record
                        lines.append(0x0A)
                    }
                } catch {
                    throw WireError(type: "InternalFailure", message: "The audit trail could not be read.", status: 500)
                }
                return Response(
                    status: .ok, headers: [.contentType: "application/x-ndjson"], body: .init(byteBuffer: ByteBuffer(bytes: lines)))
            } catch {
                return Self.response(self.errorReply(error))
            }
        }
        router.post("/cairn/v1/leases/renew") { request, _ -> Response in
            var parameters: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { parameters[String(key)] = String(value) }
            return Self.response(await self.renewLease(Self.signed(request), parameters: parameters))
        }
        router.get("/cairn/v1/dnssec") { request, context -> Response in
            var parameters: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { parameters[String(key)] = String(value) }
            return Self.response(await self.dnssec(Self.signed(request), method: "GET", parameters: parameters, peer: context.peer))
        }
        router.post("/cairn/v1/dnssec") { request, context -> Response in
            var request = request
            var parameters: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { parameters[String(key)] = String(value) }
            let body: [UInt8]
            do {
                // Only Restore sends a body (one or two keys): a few hundred bytes.
                body = Array(try await request.collectBody(upTo: 16_384).readableBytesView)
            } catch {
                return Self.response(
                    self.errorReply(
                        WireError(type: "RequestEntityTooLargeException", message: "The body exceeds 16384 bytes.", status: 413)))
            }
            var signed = Self.signed(request)
            signed.body = body
            return Self.response(await self.dnssec(signed, method: "POST", parameters: parameters, peer: context.peer))
        }
        router.get("/cairn/v1/prometheus-sd") { request, context -> Response in
            var parameters: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { parameters[String(key)] = String(value) }
            let reply = self.prometheusTargets(Self.signed(request), parameters: parameters, peer: context.peer)
            if reply.status == 200 {
                return Response(
                    status: .ok, headers: [.contentType: "application/json", Self.requestIdHeader: reply.requestId],
                    body: .init(byteBuffer: reply.payload))
            }
            return Self.response(reply)
        }
        router.get("/cairn/v1/watch") { request, context -> Response in
            var parameters: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { parameters[String(key)] = String(value) }
            let admitted = self.watch(
                Self.signed(request), parameters: parameters, lastEventID: request.headers[Self.lastEventIDHeader], peer: context.peer)
            let stream: WatchStream
            switch admitted {
            case .refused(let reply): return Self.response(reply)
            case .stream(let admitted): stream = admitted
            }
            await context.limitSendBuffer(WatchStream.sendBufferBytes)
            let progress = WatchStream.Progress()
            // A client that goes away frees its stream at once, not at the stream's next write (its pace and
            // heartbeat can be minutes away).
            let hangup = Hangup()
            await context.hangUpWhenClientLeaves(hangup)
            let timeout = self.configuration.watchWriteTimeout
            let logger = self.logger
            let peer = context.peer
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", Self.requestIdHeader: RequestID.next()],
                body: ResponseBody { writer in
                    // A client that stops reading holds one event in flight, for at most `timeout`.
                    let streams = self.watchStreams
                    let token = streams.guardWrites(progress, timeout: timeout) {
                        logger.warning(
                            "watch stream cut off: its client accepted no event for the write timeout",
                            metadata: ["peer": "\(peer)", "seconds": "\(timeout.components.seconds)"])
                        streams.cutOff()
                        context.closeConnection()
                    }
                    defer { streams.unguard(token) }
                    try await stream.run(progress: progress, hangup: hangup) { try await writer.write($0) }
                    try await writer.finish(nil)
                })
        }
        router.get("/cairn/v1/export") { request, _ -> Response in
            if let refusal = self.refusal(Self.signed(request), action: "ExportRegistry") { return refusal }
            return Self.json(RegistryExport.document(self.state, now: self.clock()))
        }
        return router
    }

    static let homePage = """
        <!doctype html><html lang=en><head><meta charset=utf-8><title>Cairn</title></head><body>
        <h1>Cairn</h1><p>A service registry that speaks the AWS Cloud Map API (<code>servicediscovery</code>).</p>
        <ul><li><a href="/console">The web console</a></li>
        <li>The API: <code>POST /</code> with AWS JSON 1.1, e.g. <code>aws servicediscovery list-namespaces --endpoint-url URL</code></li>
        <li><a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>, <a href="/metrics">/metrics</a></li></ul>
        </body></html>

        """

    /// A Cairn extension call (`cairn:<action>` on `*`) by the signer of `request`; an error reply when refused.
    public func refusal(_ request: SigV4.Request, action: String) -> Response? {
        do {
            _ = try authorizeExtension(request, action: action)
            return nil
        } catch {
            return Self.response(errorReply(error))
        }
    }

    /// The request's headers for signature checks, `host` first.
    static func headers(_ request: Request) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [("host", request.head.authority ?? "")]
        for field in request.headers { headers.append((field.name.canonicalName, field.value)) }
        return headers
    }

    /// A bodiless request (GET) as SigV4 sees it.
    public static func signed(_ request: Request) -> SigV4.Request {
        SigV4.Request(
            method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "", headers: headers(request), body: [])
    }

    static func json(_ value: JSONValue) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.render(value))))
    }

    static let contentTypeField = HTTPField(name: .contentType, value: "application/x-amz-json-1.1")

    static func response(_ reply: Reply) -> Response {
        // Appended, not set: setting searches the fields for an earlier value first.
        var headers = HTTPFields()
        headers.reserveCapacity(2)
        headers.append(contentTypeField)
        headers.append(HTTPField(name: requestIdHeader, value: reply.requestId))
        if let index = reply.index { headers.append(HTTPField(name: indexHeader, value: String(index))) }
        return Response(status: HTTPResponse.Status(code: reply.status), headers: headers, body: .init(byteBuffer: reply.payload))
    }
}

/// `GET /cairn/v1/audit?StartTime=&EndTime=&EventName=&Principal=&Resource=&MaxResults=&NextToken=`: the
/// trail newest first, `{"Events": [CloudTrail records], "NextToken": "..."}`. Times are epoch seconds or ISO 8601.
enum AuditLookup {
    /// 9999-12-31T23:59:59Z, the last instant ISO 8601 can write with four digits.
    static let latestMilliseconds: Int64 = 253_402_300_799_000

    static func query(_ parameters: Hummingbird.Parameters) throws(WireError) -> AuditQuery {
        var query = AuditQuery()
        // An empty value is no filter (an HTML form sends its empty fields).
        func value(_ name: Substring) -> String? { parameters[name].flatMap { $0.isEmpty ? nil : String($0) } }
        func time(_ name: Substring) throws(WireError) -> Int64? {
            guard let text = value(name) else { return nil }
            let seconds = Double(text) ?? (try? Date(text, strategy: .iso8601))?.timeIntervalSince1970
            // Int64(exactly:) never traps: NaN, infinities and values past the range give nil.
            guard let seconds, let milliseconds = Int64(exactly: (seconds * 1000).rounded(.down)),
                (0...AuditLookup.latestMilliseconds).contains(milliseconds)
            else {
                throw WireError(
                    type: "InvalidInput",
                    message: "\(name) must be epoch seconds or an ISO 8601 time between 1970 and 9999, not '\(text.prefix(64))'.")
            }
            return milliseconds
        }
        query.startTime = try time("StartTime")
        query.endTime = try time("EndTime")
        query.eventName = value("EventName")
        query.principal = value("Principal")
        query.resource = value("Resource")
        if let text = value("MaxResults") {
            guard let n = Int(text), (1...1000).contains(n) else {
                throw WireError(type: "InvalidInput", message: "MaxResults must be 1 to 1000, not '\(text.prefix(64))'.")
            }
            query.limit = n
        }
        if let text = value("NextToken") {
            guard let before = UInt64(text) else { throw WireError(type: "InvalidInput", message: "NextToken is not valid.") }
            query.before = before
        }
        return query
    }

    static func render(_ page: AuditPage) -> JSONValue {
        var object: [String: JSONValue] = [
            "Events": .raw("[" + page.records.map { String(decoding: $0.record, as: UTF8.self) }.joined(separator: ",") + "]")
        ]
        if let next = page.next { object["NextToken"] = .string(String(next)) }
        return .object(object)
    }
}
