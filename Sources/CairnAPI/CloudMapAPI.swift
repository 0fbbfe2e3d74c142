import CairnCore
import CloudMapWire
import Foundation
import Logging

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
        /// Access key id → secret. nil is dev mode: any credentials, the region read from the credential scope.
        public var accessKeys: [String: String]?

        public init(
            defaultRegion: String = "us-east-1", account: String = "000000000000", maxBodyBytes: Int = 1 << 20,
            accessKeys: [String: String]? = nil
        ) {
            self.defaultRegion = defaultRegion
            self.account = account
            self.maxBodyBytes = maxBodyBytes
            self.accessKeys = accessKeys
        }
    }

    public struct Reply: Sendable {
        public var status: Int
        public var body: [UInt8]
        public var requestId: String
    }

    /// What a handler returns: a JSON value, or bytes already rendered.
    enum Output: Sendable {
        case json(JSONValue)
        case bytes([UInt8])
    }

    /// One call as handlers see it: validated input and who is asking.
    struct Call: Sendable {
        var operation: String
        var input: JSONValue
        var context: RequestContext
    }

    public let registry: Registry
    public let configuration: Configuration
    let logger: Logger
    let discoveryCache = DiscoveryCache()

    public init(registry: Registry, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "cairn.api")) {
        self.registry = registry
        self.configuration = configuration
        self.logger = logger
    }

    static let acceptedContentTypes: Set<String> = ["application/x-amz-json-1.1", "application/x-amz-json-1.0", "application/json"]

    /// Answers one request. Never throws: every failure becomes an AWS-style error body.
    public func handle(target: String?, contentType: String?, authorization: String?, body: some Collection<UInt8>) async -> Reply {
        var headers: [(name: String, value: String)] = []
        if let target { headers.append(("x-amz-target", target)) }
        if let contentType { headers.append(("content-type", contentType)) }
        if let authorization { headers.append(("authorization", authorization)) }
        return await handle(method: "POST", path: "/", query: "", headers: headers, body: Array(body))
    }

    /// Answers one HTTP request (headers in any case, `host` included when signatures are checked).
    public func handle(method: String, path: String, query: String, headers: [(name: String, value: String)], body: [UInt8]) async -> Reply
    {
        let requestId = UUID().uuidString.lowercased()
        do throws(WireError) {
            let signed = SigV4.Request(method: method, path: path, query: query, headers: headers, body: body)
            let region = try authenticate(signed)
            let output = try await dispatch(
                target: signed.header("x-amz-target"), contentType: signed.header("content-type"), region: region, body: body)
            switch output {
            case .json(let value): return Reply(status: 200, body: JSONWriter.render(value), requestId: requestId)
            case .bytes(let bytes): return Reply(status: 200, body: bytes, requestId: requestId)
            }
        } catch {
            if error.status >= 500 {
                logger.error("request failed", metadata: ["requestId": "\(requestId)", "error": "\(error.type): \(error.message)"])
            }
            return Reply(status: error.status, body: error.body, requestId: requestId)
        }
    }

    /// An error reply for failures before the body could be read (e.g. too large).
    public func errorReply(_ error: WireError) -> Reply {
        Reply(status: error.status, body: error.body, requestId: UUID().uuidString.lowercased())
    }

    /// The caller's region: from a verified signature when access keys are configured, else (dev mode) from the
    /// credential scope as sent.
    private func authenticate(_ request: SigV4.Request) throws(WireError) -> String {
        guard let keys = configuration.accessKeys else {
            return Self.region(authorization: request.header("authorization")) ?? configuration.defaultRegion
        }
        do {
            return try SigV4.verify(request, secret: { keys[$0] }, now: Date()).region
        } catch {
            throw WireError(type: error.type, message: error.message, status: 403)
        }
    }

    private func dispatch(target: String?, contentType: String?, region: String, body: some Collection<UInt8>)
        async throws(WireError) -> Output
    {
        if let contentType {
            let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            if !Self.acceptedContentTypes.contains(mediaType) {
                throw WireError(
                    type: "UnsupportedMediaTypeException",
                    message: "Content-Type \(contentType) is not supported; use application/x-amz-json-1.1.",
                    status: 415)
            }
        }
        guard let target, !target.isEmpty else {
            throw WireError(type: "UnknownOperationException", message: "The X-Amz-Target header is missing.")
        }
        let prefix = ServiceModel.targetPrefix + "."
        guard target.hasPrefix(prefix), let handler = Self.operations[String(target.dropFirst(prefix.count))] else {
            throw WireError(type: "UnknownOperationException", message: "Unknown operation \(target).")
        }
        let input = try JSONValue.parse(body)
        guard case .object = input else {
            throw WireError(type: "SerializationException", message: "The request body must be a JSON object.")
        }
        try ModelValidator.validate(input, operation: handler.name)
        let context = RequestContext(region: region, account: configuration.account)
        do {
            return try await handler.run(self, Call(operation: handler.name, input: input, context: context))
        } catch let error as CairnError {
            throw Self.wireError(error)
        } catch {
            throw WireError(type: "InternalFailure", message: "The request could not be completed.", status: 500)
        }
    }

    /// The region of the SigV4 credential scope: `Credential=AKID/date/REGION/service/aws4_request`.
    static func region(authorization: String?) -> String? {
        guard let authorization else { return nil }
        let bytes = Array(authorization.utf8)
        let marker = Array("Credential=".utf8)
        guard bytes.count > marker.count else { return nil }
        var start = -1
        for i in 0...(bytes.count - marker.count) where bytes[i] == marker[0] && Array(bytes[i..<i + marker.count]) == marker {
            start = i + marker.count
            break
        }
        guard start >= 0 else { return nil }
        var end = start
        while end < bytes.count, bytes[end] != UInt8(ascii: ","), bytes[end] != UInt8(ascii: " ") { end += 1 }
        let parts = bytes[start..<end].split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard parts.count == 5, !parts[2].isEmpty else { return nil }
        return String(decoding: parts[2], as: UTF8.self)
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
