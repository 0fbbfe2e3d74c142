import CairnCore
import CairnServer
import Foundation
import Logging

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A Cairn server in the test process, on a free loopback port, with an in-memory store by default.
public enum TestCairn {
    /// Runs `body` against a fresh server and stops the server afterwards.
    public static func withServer<T: Sendable>(
        configure: (inout CairnConfiguration) -> Void = { _ in },
        _ body: @Sendable (TestClient) async throws -> T
    ) async throws -> T {
        var configuration = CairnConfiguration()
        configuration.dev = true
        configuration.store = .memory
        configuration.api.port = 0
        configuration.dns.port = 0
        configure(&configuration)
        var logger = Logger(label: "cairn.test")
        // Stopping by cancellation makes the HTTP server log errors that mean nothing here; CAIRN_TEST_LOG=1 shows all.
        logger.logLevel = ProcessInfo.processInfo.environment["CAIRN_TEST_LOG"] == "1" ? .debug : .critical
        let server = try await CairnServer.prepare(configuration, logger: logger)
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await server.run(signals: [], onListening: { port in portSink.yield(port) })
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            let result = try await body(TestClient(port: port))
            group.cancelAll()
            while let next = try await group.next() { _ = next }
            return result
        }
    }
}

/// Sends AWS JSON 1.1 requests the way SDKs do (minus the signature, which dev mode ignores).
public struct TestClient: Sendable {
    public let port: Int

    public struct Response: Sendable {
        public let status: Int
        public let headers: [String: String]
        public let body: Data

        /// The body as a JSON object.
        public var json: [String: Any] {
            ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:]
        }

        public var errorType: String? { json["__type"] as? String }
    }

    public func call(
        _ operation: String, _ body: String = "{}", region: String = "us-east-1",
        contentType: String = "application/x-amz-json-1.1"
    ) async throws -> Response {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/")!)
        request.httpMethod = "POST"
        request.setValue("Route53AutoNaming_v20170314.\(operation)", forHTTPHeaderField: "X-Amz-Target")
        request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        request.setValue(
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/\(region)/servicediscovery/aws4_request, SignedHeaders=host, Signature=0",
            forHTTPHeaderField: "Authorization")
        request.httpBody = Data(body.utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
        }
        return Response(status: http.statusCode, headers: headers, body: data)
    }
}
