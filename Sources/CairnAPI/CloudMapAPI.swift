import CairnCore
import CloudMapWire
import Foundation
import Logging
import NIOCore

/// The AWS JSON 1.1 front of the registry, independent of the HTTP server: target + headers + body in,
/// status + body out. Reads come from the published snapshot; writes go through `Registry.submit`.
public final class CloudMapAPI: Sendable {
    public struct Configuration: Sendable {
        /// Region used when a request carries no SigV4 credential scope.
        public var defaultRegion: String
        /// The account every resource belongs to.
        public var account: String
        /// Largest request body accepted (bytes); larger bodies get 413 RequestEntityTooLargeException.
        public var maxBodyBytes: Int
        /// Access key id → secret and principal. nil is dev mode: any credentials, everything allowed, the region
        /// read from the credential scope.
        public var accessKeys: [String: Credential]?
        public var throttling: Throttle.Configuration
        public var audit: AuditSettings
        /// The regions a credential scope may name; any other is refused before anything else happens.
        public var regions: RegionSet
        /// Watch streams open at once at most; one more is refused with `RequestLimitExceeded`.
        public var watchStreams: Int
        /// How long a watch stream's client may take to accept one event before it is cut off.
        public var watchWriteTimeout: Duration
        /// The `change` events, and their bytes, all watch streams send per second at most, together: the fan-out budget.
        public var watchEventsPerSecond: Int
        public var watchBytesPerSecond: Int

        public init(
            defaultRegion: String = "us-east-1", account: String = "000000000000", maxBodyBytes: Int = CloudMapAPI.defaultMaxBodyBytes,
            accessKeys: [String: Credential]? = nil, throttling: Throttle.Configuration = Throttle.Configuration(),
            audit: AuditSettings = AuditSettings(), regions: RegionSet = .default, watchStreams: Int = 10_000,
            watchWriteTimeout: Duration = .seconds(30), watchEventsPerSecond: Int = WatchStreams.defaultEventsPerSecond,
            watchBytesPerSecond: Int = WatchStreams.defaultBytesPerSecond
        ) {
            self.watchEventsPerSecond = watchEventsPerSecond
            self.watchBytesPerSecond = watchBytesPerSecond
            self.watchStreams = watchStreams
            self.watchWriteTimeout = watchWriteTimeout
            self.regions = regions
            self.defaultRegion = defaultRegion
            self.account = account
            self.maxBodyBytes = maxBodyBytes
            self.accessKeys = accessKeys
            self.throttling = throttling
            self.audit = audit
        }
    }

    /// Which calls the audit trail records besides every write.
    public struct AuditSettings: Sendable, Equatable {
        /// Get*, List*, ListTagsForResource, GetOperation (CloudTrail's read-only management events).
        public var reads: Bool
        /// DiscoverInstances and DiscoverInstancesRevision (not recorded by AWS CloudTrail as management events).
        public var discover: Bool
        public init(reads: Bool = true, discover: Bool = false) {
            self.reads = reads
            self.discover = discover
        }
    }

    public struct Reply: Sendable {
        public var status: Int
        /// The body as the HTTP server sends it.
        public var payload: ByteBuffer
        public var requestId: String
        /// For metrics: the operation (when the target named one) and the error code (nil on success).
        public var operation: String? = nil
        public var errorCode: String? = nil
        /// Discovery: the service's answer index (`X-Cairn-Index`, long-poll discovery).
        public var index: UInt64? = nil

        public var body: [UInt8] { Array(payload.readableBytesView) }

        init(status: Int, body: [UInt8], requestId: String, operation: String? = nil, errorCode: String? = nil) {
            self.init(status: status, payload: ByteBuffer(bytes: body), requestId: requestId, operation: operation, errorCode: errorCode)
        }

        init(status: Int, payload: ByteBuffer, requestId: String, operation: String? = nil, errorCode: String? = nil) {
            self.status = status
            self.payload = payload
            self.requestId = requestId
            self.operation = operation
            self.errorCode = errorCode
        }
    }

    /// What a handler returns: a JSON value, or bytes already rendered (in the buffer the server sends).
    enum Output: Sendable {
        case json(JSONValue)
        case bytes(ByteBuffer)
    }

    /// One call as handlers see it: validated input and who is asking.
    struct Call: Sendable {
        var spec: OperationSpec
        var operation: String { spec.name }
        var input: JSONValue
        var context: RequestContext
        /// The audit record this call will produce (nil when it is not recorded).
        var audit: AuditTicket? = nil
    }

    public let registry: Registry
    public let configuration: Configuration
    let logger: Logger
    let discoveryCache = DiscoveryCache()
    public let watchStreams: WatchStreams
    public let throttle: Throttle
    let clock: @Sendable () -> Int64
    let telemetry: any Telemetry

    public init(
        registry: Registry, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "cairn.api"),
        clock: @escaping @Sendable () -> Int64 = Registry.systemMilliseconds, telemetry: any Telemetry = NoTelemetry()
    ) {
        self.telemetry = telemetry
        self.registry = registry
        self.configuration = configuration
        self.logger = logger
        self.throttle = Throttle(configuration: configuration.throttling)
        self.watchStreams = WatchStreams(
            limit: configuration.watchStreams, eventsPerSecond: configuration.watchEventsPerSecond,
            bytesPerSecond: configuration.watchBytesPerSecond)
        self.clock = clock
    }

    /// 256 KiB: well above the largest request the model admits with text in any script (200 tags of 128 + 256
    /// characters is under 100 KB even at 4 bytes a character), far below what would let a body cost much.
    public static let defaultMaxBodyBytes = 256 << 10

    static let acceptedContentTypes: Set<String> = ["application/x-amz-json-1.1", "application/x-amz-json-1.0", "application/json"]

    /// Answers one request. Never throws: every failure becomes an AWS-style error body.
    public func handle(target: String?, contentType: String?, authorization: String?, body: some Collection<UInt8>) async -> Reply {
        var headers: [(name: String, value: String)] = []
        if let target { headers.append(("x-amz-target", target)) }
        if let contentType { headers.append(("content-type", contentType)) }
        if let authorization { headers.append(("authorization", authorization)) }
        return await handle(method: "POST", path: "/", query: "", headers: headers, body: Array(body))
    }

    /// Answers one HTTP request (headers in any case, `host` included when signatures are checked). `peer` is the
    /// client's address for the audit trail.
    /// `peer` is worked out only if something reads it (an audited call, a debug log line): formatting the
    /// address cost 0.4% of a DiscoverInstances request.
    public func handle(
        method: String, path: String, query: String, headers: [(name: String, value: String)], body: [UInt8],
        peer: @autoclosure () -> String = "", hangup: Hangup? = nil
    ) async -> Reply {
        await measured(peer: peer()) { requestId in
            let signed = SigV4.Request(method: method, path: path, query: query, headers: headers, body: body)
            let caller: Caller
            do throws(WireError) {
                caller = try authenticate(signed)
            } catch {
                return Reply(status: error.status, body: error.body, requestId: requestId, errorCode: error.type)
            }
            return await serve(
                caller: caller, target: signed.header("x-amz-target"), contentType: signed.header("content-type"), body: body,
                peer: peer(), userAgent: signed.header("user-agent") ?? "", requestId: requestId,
                poll: (signed.header(LongPoll.indexHeader), signed.header(LongPoll.waitHeader)), hangup: hangup)
        }
    }

    /// Runs one operation for the console, as the signed-in principal: the same throttling, validation, policies,
    /// audit trail and metrics as a signed API call.
    func perform(_ operation: String, _ input: [String: JSONValue], caller: Caller, peer: String) async -> Reply {
        await measured(peer: peer) { requestId in
            await serve(
                caller: caller, target: "\(ServiceModel.targetPrefix).\(operation)", contentType: "application/x-amz-json-1.1",
                body: JSONWriter.render(.object(input)), peer: peer, userAgent: "cairn-console", requestId: requestId)
        }
    }

    /// Gives the call its request id, times it for the metrics and logs it (at debug) under that id.
    private func measured(peer: @autoclosure () -> String, _ body: (String) async -> Reply) async -> Reply {
        let requestId = RequestID.next()
        let started = ContinuousClock.now
        let reply = await body(requestId)
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        telemetry.apiRequest(operation: reply.operation ?? "unknown", errorCode: reply.errorCode, seconds: seconds)
        logger.debug(
            "api call",
            metadata: [
                "requestId": "\(requestId)", "operation": "\(reply.operation ?? "unknown")", "status": "\(reply.status)",
                "code": "\(reply.errorCode ?? "OK")", "ms": "\((seconds * 1e6).rounded() / 1e3)", "peer": "\(peer())",
            ])
        return reply
    }

    /// Everything after authentication: throttle → decode+validate → authorize → run, with the audit record.
    private func serve(
        caller: Caller, target: String?, contentType: String?, body: [UInt8], peer: @autoclosure () -> String, userAgent: String,
        requestId: String, poll: (index: String?, wait: String?) = (nil, nil), hangup: Hangup? = nil
    ) async -> Reply {
        var operationName: String?
        var ticket: AuditTicket?
        do throws(WireError) {
            let spec = try operation(target: target, contentType: contentType)
            operationName = spec.name
            if shouldAudit(spec) {
                ticket = AuditTicket(
                    event: CloudTrailEvent(
                        eventTime: clock(), eventName: spec.name, region: caller.region, account: configuration.account,
                        sourceIPAddress: peer(), userAgent: userAgent, identity: caller.identity,
                        requestParameters: nil, requestID: requestId, eventID: RequestID.next(),
                        readOnly: spec.access != .write))
            }
            guard throttle.admit(principal: caller.accessKeyId, region: caller.region, kind: spec.throttle) else {
                throw Self.throttled(spec)
            }
            let input = try JSONValue.parse(body)
            guard case .object = input else {
                throw WireError(type: "SerializationException", message: "The request body must be a JSON object.")
            }
            ticket?.event.requestParameters = AuditRendering.parameters(input)
            try ModelValidator.validate(input, operation: spec.name)
            let context = RequestContext(region: caller.region, account: configuration.account)
            // Resolved only when something reads it: a dev-mode DiscoverInstances that is not audited skips it.
            if ticket != nil || caller.principal != nil {
                let subjects = Subjects(spec, input: input, state: state, context: context)
                ticket?.event.resources = subjects.auditResources
                try authorize(caller, spec, input: input, subjects: subjects, context: context)
            }
            var index: UInt64?
            // Only a call that sent either header is a long poll: without them the answer is AWS's, to the byte.
            if poll.index != nil || poll.wait != nil, spec.name == "DiscoverInstances" || spec.name == "DiscoverInstancesRevision" {
                index = try await awaitDiscoveryChange(spec, input: input, context: context, poll: poll, hangup: hangup)
            }
            let output = try await run(spec, Call(spec: spec, input: input, context: context, audit: ticket))
            if let ticket, !ticket.stored { registry.record(ticket.event.entry) }
            var reply: Reply
            switch output {
            case .json(let value): reply = Reply(status: 200, body: JSONWriter.render(value), requestId: requestId, operation: spec.name)
            case .bytes(let bytes): reply = Reply(status: 200, payload: bytes, requestId: requestId, operation: spec.name)
            }
            reply.index = index
            return reply
        } catch {
            if error.status >= 500 {
                logger.error("request failed", metadata: ["requestId": "\(requestId)", "error": "\(error.type): \(error.message)"])
            }
            if let ticket, !ticket.stored {
                var event = ticket.event
                event.errorCode = error.type
                event.errorMessage = String(error.message.prefix(AuditRendering.maxErrorMessage))
                registry.record(event.entry)
            }
            return Reply(status: error.status, body: error.body, requestId: requestId, operation: operationName, errorCode: error.type)
        }
    }

    /// Long-poll discovery: the service's answer index before the answer is made (so it is never newer than the
    /// answer: a client that asks again with it is answered at once if anything changed since), after waiting for a
    /// change past the index the caller has, when it asked to wait. Nil when the call names no service it can see
    /// (the operation then answers with its error).
    private func awaitDiscoveryChange(
        _ spec: OperationSpec, input: JSONValue, context: RequestContext, poll: (index: String?, wait: String?), hangup: Hangup?
    ) async throws(WireError) -> UInt64? {
        let wanted = try LongPoll.parse(index: poll.index, wait: poll.wait)
        guard let namespaceName = input["NamespaceName"]?.stringValue, let serviceName = input["ServiceName"]?.stringValue,
            input["OwnerAccount"]?.stringValue.map({ $0 == context.account }) ?? true,
            let ns = try? state.namespace(httpName: namespaceName, in: context),
            let service = try? state.service(named: serviceName, in: ns)
        else { return nil }
        guard let wanted, wanted.index == service.viewVersion else { return service.viewVersion }
        guard await registry.awaitChange(ofService: service.id, beyond: wanted.index, timeout: .seconds(wanted.waitSeconds), hangup: hangup)
        else {
            throw Self.throttled(spec)
        }
        return state.services[service.id]?.viewVersion ?? service.viewVersion
    }

    /// Whether calls of this operation are recorded (writes always).
    func shouldAudit(_ spec: OperationSpec) -> Bool {
        switch spec.access {
        case .write: return true
        case .read: return configuration.audit.reads
        case .discover: return configuration.audit.discover
        }
    }

    static func throttled(_ spec: OperationSpec) -> WireError {
        if spec.access == .discover {
            return WireError(
                type: "RequestLimitExceeded",
                message: "The operation can't be completed because you've reached the quota on the number of requests.")
        }
        return WireError(type: "ThrottlingException", message: "Rate exceeded")
    }

    /// An error reply for failures before the body could be read (e.g. too large).
    public func errorReply(_ error: WireError) -> Reply {
        Reply(status: error.status, body: error.body, requestId: RequestID.next())
    }

    /// The caller: from a verified signature when access keys are configured, else (dev mode) whatever the
    /// credential scope says.
    func authenticate(_ request: SigV4.Request) throws(WireError) -> Caller {
        let caller: Caller
        if let keys = configuration.accessKeys {
            do {
                let verified = try SigV4.verify(request, secret: { keys[$0]?.secret }, now: Date())
                caller = Caller(
                    accessKeyId: verified.accessKeyId, region: verified.region, principal: keys[verified.accessKeyId]?.principal)
            } catch {
                throw WireError(type: error.type, message: error.message, status: 403)
            }
        } else {
            let scope = Self.scope(authorization: request.header("authorization"))
            caller = Caller(
                accessKeyId: scope.map { String($0.accessKeyId.prefix(128)) } ?? "anonymous",
                region: scope?.region ?? configuration.defaultRegion, principal: nil)
        }
        guard configuration.regions.contains(caller.region) else {
            throw WireError(
                type: "InvalidSignatureException",
                message: "Credential should be scoped to a valid region. '\(caller.region.prefix(64))' is not one this server accepts.",
                status: 403)
        }
        return caller
    }

    /// Default deny, explicit deny wins; every resource the call touches must be allowed.
    func authorize(_ caller: Caller, _ spec: OperationSpec, input: JSONValue, subjects: Subjects, context: RequestContext)
        throws(WireError)
    {
        guard let principal = caller.principal else { return }
        for request in AuthorizationTable.requests(spec, input: input, subjects: subjects) {
            let decision = Policy.evaluate(principal.policies, request)
            guard decision.allowed else { throw Self.denied(caller, request, decision, context: context) }
        }
    }

    /// Whether the caller's policies allow `operation` with this input (for views that show only what is allowed).
    func allows(_ caller: Caller, _ operation: String, _ input: [String: JSONValue], state: RegistryState, context: RequestContext)
        -> Bool
    {
        guard let spec = Self.operations[operation] else { return false }
        let input = JSONValue.object(input)
        let subjects = Subjects(spec, input: input, state: state, context: context)
        return (try? authorize(caller, spec, input: input, subjects: subjects, context: context)) != nil
    }

    /// A Cairn extension call (`cairn:<action>` on `*`) by the signer of `request`.
    func authorizeExtension(_ request: SigV4.Request, action: String) throws(WireError) -> Caller {
        let caller = try authenticate(request)
        try authorize(caller, extension: action)
        return caller
    }

    /// A Cairn extension call (`cairn:<action>` on `*`) by an authenticated caller.
    func authorize(_ caller: Caller, extension action: String) throws(WireError) {
        guard let principal = caller.principal else { return }
        let question = AuthorizationRequest(action: "cairn:\(action)", resource: "*")
        let decision = Policy.evaluate(principal.policies, question)
        guard decision.allowed else {
            throw Self.denied(caller, question, decision, context: RequestContext(region: caller.region, account: configuration.account))
        }
    }

    static func denied(_ caller: Caller, _ request: AuthorizationRequest, _ decision: PolicyDecision, context: RequestContext) -> WireError
    {
        let user = "arn:\(ARN.partition(for: context.region)):iam::\(context.account):user/\(caller.principal?.name ?? "dev")"
        let reason: String
        if case .explicitDeny = decision {
            reason = "with an explicit deny in an identity-based policy"
        } else {
            reason = "because no identity-based policy allows the \(request.action) action"
        }
        return WireError(
            type: "AccessDeniedException",
            message: "User: \(user) is not authorized to perform: \(request.action) on resource: \(request.resource) \(reason)")
    }

    /// The media type of a Content-Type value: before any `;`, without surrounding spaces or tabs, lower-cased (by
    /// bytes: Foundation's `trimmingCharacters` cost 5% of a DiscoverInstances request).
    static func mediaType(_ contentType: String) -> String {
        var bytes = Substring(contentType).utf8[...]
        if let semicolon = bytes.firstIndex(of: UInt8(ascii: ";")) { bytes = bytes[..<semicolon] }
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes = bytes.dropLast() }
        return String(decoding: bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    private func operation(target: String?, contentType: String?) throws(WireError) -> OperationSpec {
        if let contentType {
            if !Self.acceptedContentTypes.contains(contentType) && !Self.acceptedContentTypes.contains(Self.mediaType(contentType)) {
                throw WireError(
                    type: "UnsupportedMediaTypeException",
                    message: "Content-Type \(contentType) is not supported; use application/x-amz-json-1.1.",
                    status: 415)
            }
        }
        guard let target, !target.isEmpty else {
            throw WireError(type: "UnknownOperationException", message: "The X-Amz-Target header is missing.")
        }
        guard let spec = Self.operationsByTarget[target] else {
            throw WireError(type: "UnknownOperationException", message: "Unknown operation \(target).")
        }
        return spec
    }

    private func run(_ spec: OperationSpec, _ call: Call) async throws(WireError) -> Output {
        do {
            return try await spec.run(self, call)
        } catch let error as CairnError {
            throw Self.wireError(error)
        } catch {
            throw WireError(type: "InternalFailure", message: "The request could not be completed.", status: 500)
        }
    }

    /// The access key id and region of the SigV4 credential scope: `Credential=AKID/date/REGION/service/aws4_request`.
    static func scope(authorization: String?) -> (accessKeyId: String, region: String)? {
        guard var authorization else { return nil }
        return authorization.withUTF8 { bytes -> (accessKeyId: String, region: String)? in
            let marker: StaticString = "Credential="
            let count = marker.utf8CodeUnitCount
            guard bytes.count > count else { return nil }
            var start = -1
            for i in 0...(bytes.count - count) where memcmp(bytes.baseAddress! + i, marker.utf8Start, count) == 0 {
                start = i + count
                break
            }
            guard start >= 0 else { return nil }
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: ","), bytes[end] != UInt8(ascii: " ") { end += 1 }
            let parts = bytes[start..<end].split(separator: UInt8(ascii: "/"), maxSplits: 5, omittingEmptySubsequences: false)
            guard parts.count == 5, !parts[2].isEmpty, !parts[0].isEmpty else { return nil }
            return (String(decoding: parts[0], as: UTF8.self), String(decoding: parts[2], as: UTF8.self))
        }
    }

    /// The one place registry error codes become wire errors.
    static func wireError(_ error: CairnError) -> WireError {
        let status: Int
        switch error.code {
        case .internalFailure: status = 500
        case .serviceUnavailable: status = 503
        default: status = 400
        }
        return WireError(type: error.code.rawValue, message: error.message, status: status, extra: error.extra)
    }
}
