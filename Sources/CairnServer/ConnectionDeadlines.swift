import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Deadlines on every API connection, so no client holds one (or a shutdown) forever:
/// - `idle`: a connection with no request under way (after it opened, or since the last response) is closed after
///   this long, which also bounds a request head trickled in a byte at a time (the head arrives only whole);
/// - `body`: a request whose body has not arrived whole this long after its head is closed;
/// - `drain`: once shutdown begins, a connection still busy this long after is closed, so SIGTERM always ends.
/// The limits of `cairn serve`'s `api.timeouts`; they sit after the HTTP codec, where requests are parts.
///
/// A request moves the deadline, not a timer: one timer per connection fires at most `min(idle, body)` after it was
/// scheduled, closes the connection if the deadline has passed and otherwise schedules itself again for what is
/// left. Scheduling and cancelling a timer for every request head, request end and response end cost 2.4% of a
/// DiscoverInstances request (issue 12); a deadline never fires late by this, because any new deadline is at least
/// `min(idle, body)` away and the pending timer fires sooner. Only a shorter one (the drain) reschedules.
final class ConnectionDeadlines: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    struct Limits: Sendable, Equatable {
        var idle: TimeAmount
        var body: TimeAmount
        var drain: TimeAmount
    }

    private let limits: Limits
    /// When the connection is to be closed (nil: no deadline, a request is being answered).
    private var deadline: NIODeadline?
    private var timer: Scheduled<Void>?
    private var timerAt = NIODeadline.distantFuture
    private var readingBody = false
    private var inFlight = 0
    private var draining = false

    init(limits: Limits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context, after: limits.idle) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context, after: limits.idle)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { cancelTimer() }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            inFlight += 1
            readingBody = true
            if !draining { arm(context, after: limits.body) }
        case .body:
            break
        case .end:
            readingBody = false
            if !draining { disarm() }  // the handler answers; no deadline while it does
        }
        context.fireChannelRead(data)
    }

    /// A request the HTTP decoder could not parse (a malformed request line, header or chunk size). Hummingbird
    /// answers it with a bare 400; the client gets AWS's error shape, as for every other refusal.
    private var unparsable = false
    static let unparsableBody = ByteBuffer(
        string: #"{"__type":"SerializationException","message":"The request could not be parsed as HTTP/1.1."}"#)

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError { unparsable = true }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if unparsable, case .head(var head) = unwrapOutboundIn(data), head.status == .badRequest,
            head.headerFields[.contentLength] == "0"
        {
            unparsable = false
            head.headerFields[.contentType] = "application/x-amz-json-1.1"
            head.headerFields[.contentLength] = String(Self.unparsableBody.readableBytes)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(Self.unparsableBody)), promise: promise)
            return
        }
        if case .end = unwrapOutboundIn(data) {
            inFlight = max(0, inFlight - 1)
            if inFlight == 0 && !readingBody && !draining { arm(context, after: limits.idle) }
        }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent && !draining {
            draining = true
            arm(context, after: limits.drain)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func arm(_ context: ChannelHandlerContext, after delay: TimeAmount) {
        let at = NIODeadline.now() + delay
        deadline = at
        if timer == nil || timerAt > at { schedule(context, at: at) }
    }

    /// The longest a pending timer waits: no new deadline is nearer than this, so none is passed unseen.
    private var step: TimeAmount { min(limits.idle, limits.body) }

    private func schedule(_ context: ChannelHandlerContext, at: NIODeadline) {
        timer?.cancel()
        let fire = min(at, NIODeadline.now() + step)
        timerAt = fire
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: fire) { [self] in
            timer = nil
            timerAt = .distantFuture
            guard let deadline else { return }  // disarmed: the next arm schedules again
            if NIODeadline.now() >= deadline {
                context.channel.close(promise: nil)
            } else {
                schedule(context, at: deadline)
            }
        }
    }

    /// No deadline while a request is answered; the pending timer, if any, finds none and stops.
    private func disarm() { deadline = nil }

    private func cancelTimer() {
        deadline = nil
        timer?.cancel()
        timer = nil
        timerAt = .distantFuture
    }
}
