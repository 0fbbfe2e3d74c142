import CloudMapWire
import HTTPTypes
import Hummingbird
import NIOCore

extension CloudMapAPI {
    static let targetHeader = HTTPField.Name("X-Amz-Target")!
    static let requestIdHeader = HTTPField.Name("x-amzn-RequestId")!

    /// The HTTP routes: `POST /` for the API (whatever the Host, so `data-` prefixed hosts work too),
    /// `/healthz` (alive) and `/readyz` (snapshot loaded, writer accepting).
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/") { request, _ -> Response in
            var request = request
            let reply: Reply
            do {
                let body = try await request.collectBody(upTo: self.configuration.maxBodyBytes)
                var headers: [(name: String, value: String)] = [("host", request.head.authority ?? "")]
                for field in request.headers { headers.append((field.name.canonicalName, field.value)) }
                reply = await self.handle(
                    method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "", headers: headers,
                    body: Array(body.readableBytesView))
            } catch {
                reply = self.errorReply(
                    WireError(
                        type: "RequestEntityTooLargeException",
                        message: "The request body exceeds \(self.configuration.maxBodyBytes) bytes.", status: 413))
            }
            return Self.response(reply)
        }
        router.get("/healthz") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        router.get("/readyz") { _, _ in
            Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ready sequence=\(self.registry.snapshot.state.sequence)\n")))
        }
        return router
    }

    static func response(_ reply: Reply) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/x-amz-json-1.1"
        headers[requestIdHeader] = reply.requestId
        return Response(
            status: HTTPResponse.Status(code: reply.status), headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
    }
}
