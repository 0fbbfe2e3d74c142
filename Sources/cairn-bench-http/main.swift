import Foundation
import Hummingbird
import NIOCore

// The HTTP stack's own ceiling, for bench/api.sh: a bare Hummingbird server whose one route reads the request body
// and answers a precomputed body (the bytes Cairn answered to the same DiscoverInstances call), so Cairn's
// DiscoverInstances rate can be printed as a ratio to what the stack does with no work at all.
// Usage: cairn-bench-http PORT BODY_FILE
let arguments = CommandLine.arguments
guard arguments.count == 3, let port = Int(arguments[1]), let body = FileManager.default.contents(atPath: arguments[2]) else {
    FileHandle.standardError.write(Data("usage: cairn-bench-http PORT BODY_FILE\n".utf8))
    exit(2)
}
let answer = ByteBuffer(data: body)
let router = Router()
router.post("/") { request, _ -> Response in
    _ = try await request.body.collect(upTo: 1 << 20)
    return Response(status: .ok, headers: [.contentType: "application/x-amz-json-1.1"], body: ResponseBody(byteBuffer: answer))
}
let app = Application(router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
