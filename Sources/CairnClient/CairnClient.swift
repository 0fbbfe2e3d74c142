import CloudMapWire
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Why a call failed: the service's error (`type` is the AWS error code), or no answer at all.
public struct ClientError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The service answered with an error.
        case service(status: Int)
        /// No answer: connection refused, timeout, TLS failure.
        case transport
        /// The command line or the configuration is wrong.
        case usage
    }

    public var kind: Kind
    public var type: String
    public var message: String

    public init(kind: Kind, type: String, message: String) {
        self.kind = kind
        self.type = type
        self.message = message
    }

    static func usage(_ message: String) -> ClientError { ClientError(kind: .usage, type: "UsageError", message: message) }

    public var description: String {
        switch kind {
        case .service: return "\(type): \(message)"
        case .transport: return "cannot reach Cairn: \(message)"
        case .usage: return message
        }
    }
}

/// A Cloud Map client for Cairn: signs every request with SigV4 and speaks AWS JSON 1.1. The CLI and the tests
/// use it; any AWS SDK works against Cairn just as well.
public final class CairnClient: Sendable {
    public let configuration: ClientConfiguration
    private let session: URLSession

    public init(configuration: ClientConfiguration, timeout: TimeInterval = 60) {
        self.configuration = configuration
        let sessionConfiguration = URLSessionConfiguration.ephemeral
        sessionConfiguration.timeoutIntervalForRequest = timeout
        session = URLSession(configuration: sessionConfiguration)
    }

    /// Calls one operation, e.g. `call("ListNamespaces", ["MaxResults": .int(10)])`.
    public func call(_ operation: String, _ input: [String: JSONValue] = [:], region: String? = nil) async throws(ClientError) -> JSONValue
    {
        let body = JSONWriter.render(.object(input))
        let (status, bytes) = try await send(
            method: "POST", path: "/", query: "", body: body, region: region ?? configuration.region,
            headers: [
                ("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "\(ServiceModel.targetPrefix).\(operation)"),
            ])
        let value = (try? JSONValue.parse(bytes)) ?? .object([:])
        guard status == 200 else { throw serviceError(status: status, value) }
        return value
    }

    /// Every page of a paginated operation, merging the list member `key`.
    public func paginate(_ operation: String, _ input: [String: JSONValue] = [:], key: String, region: String? = nil)
        async throws(ClientError) -> [JSONValue]
    {
        var items: [JSONValue] = []
        var request = input
        while true {
            let page = try await call(operation, request, region: region)
            items += page[key]?.arrayValue ?? []
            guard let token = page["NextToken"]?.stringValue else { return items }
            request["NextToken"] = .string(token)
        }
    }

    /// A signed GET of one of Cairn's own routes (`/cairn/v1/...`); returns the body of a 200 answer.
    public func get(_ path: String, query: [(String, String)] = []) async throws(ClientError) -> [UInt8] {
        let encoded = query.map { "\(SigV4.encode($0.0, keepSlash: false))=\(SigV4.encode($0.1, keepSlash: false))" }.joined(separator: "&")
        let (status, bytes) = try await send(method: "GET", path: path, query: encoded, body: [], region: configuration.region, headers: [])
        guard status == 200 else { throw serviceError(status: status, (try? JSONValue.parse(bytes)) ?? .object([:])) }
        return bytes
    }

    /// A signed POST (an empty body unless given) to one of Cairn's own routes; returns the body of a 200 answer.
    public func post(_ path: String, query: [(String, String)] = [], body: [UInt8] = [], region: String? = nil) async throws(ClientError)
        -> [UInt8]
    {
        let encoded = query.map { "\(SigV4.encode($0.0, keepSlash: false))=\(SigV4.encode($0.1, keepSlash: false))" }.joined(separator: "&")
        let (status, bytes) = try await send(
            method: "POST", path: path, query: encoded, body: body, region: region ?? configuration.region,
            headers: body.isEmpty ? [] : [("content-type", "application/json")])
        guard status == 200 else { throw serviceError(status: status, (try? JSONValue.parse(bytes)) ?? .object([:])) }
        return bytes
    }

    /// The server's error; when the request was signed without configured credentials and refused for that, the
    /// message says where credentials come from.
    func serviceError(status: Int, _ value: JSONValue) -> ClientError {
        var error = Self.serviceError(status: status, value)
        if configuration.credentials.isAnonymous && status == 403 {
            error.message +=
                " (no credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile with --profile or AWS_PROFILE; only a --dev server accepts none)"
        }
        return error
    }

    static func serviceError(status: Int, _ value: JSONValue) -> ClientError {
        var type = value["__type"]?.stringValue ?? "HTTP\(status)"
        if let hash = type.lastIndex(of: "#") { type = String(type[type.index(after: hash)...]) }
        let message = value["Message"]?.stringValue ?? value["message"]?.stringValue ?? "HTTP status \(status)"
        return ClientError(kind: .service(status: status), type: type, message: message)
    }

    private func send(method: String, path: String, query: String, body: [UInt8], region: String, headers: [(String, String)])
        async throws(ClientError)
        -> (Int, [UInt8])
    {
        let endpoint = configuration.endpoint
        let base = endpoint.absoluteString.hasSuffix("/") ? String(endpoint.absoluteString.dropLast()) : endpoint.absoluteString
        guard let url = URL(string: base + path + (query.isEmpty ? "" : "?" + query)) else {
            throw ClientError.usage("cannot build a URL from \(base) and \(path)")
        }
        var host = endpoint.host ?? "127.0.0.1"
        if let port = endpoint.port { host += ":\(port)" }
        var all = headers
        all.append(("host", host))
        let credentials = configuration.credentials
        let signing = SigV4.Request(method: method, path: path, query: query, headers: all.map { ($0.0, $0.1) }, body: body)
        let added = SigV4.sign(
            signing, accessKeyId: credentials.accessKeyId, secret: credentials.secretAccessKey, sessionToken: credentials.sessionToken,
            region: region)
        var request = URLRequest(url: url)
        request.httpMethod = method
        for (name, value) in headers where name != "host" { request.setValue(value, forHTTPHeaderField: name) }
        for (name, value) in added { request.setValue(value, forHTTPHeaderField: name) }
        if !body.isEmpty { request.httpBody = Data(body) }
        do {
            let (data, response) = try await session.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, Array(data))
        } catch {
            throw ClientError(
                kind: .transport, type: "ConnectionError", message: "\(endpoint.absoluteString): \(error.localizedDescription)")
        }
    }
}
