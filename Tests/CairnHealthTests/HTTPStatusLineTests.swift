import CairnCore
import Testing

@testable import CairnHealth

@Suite("The HTTP probe's request and status line")
struct HTTPStatusLineTests {
    @Test("A status line gives its code once twelve bytes arrived")
    func statusCodes() {
        #expect(HTTPStatusLine.parse(Array("HTTP/1.1 200 OK\r\n".utf8)) == .status(200))
        #expect(HTTPStatusLine.parse(Array("HTTP/1.0 503".utf8)) == .status(503))
        #expect(HTTPStatusLine.parse(Array("HTTP/1.1 301\r\n".utf8)) == .status(301))
        #expect(HTTPStatusLine.parse(Array("HTTP/1.1 999 X".utf8)) == .status(999))
    }

    @Test("A prefix that still fits needs more; one byte that does not is malformed at once")
    func prefixes() {
        let line = Array("HTTP/1.1 204 No Content".utf8)
        for n in 0..<HTTPStatusLine.length { #expect(HTTPStatusLine.parse(line.prefix(n)) == .needMore, "\(n) bytes") }
        #expect(HTTPStatusLine.parse(Array("SSH-2.0-OpenSSH".utf8)) == .malformed)
        #expect(HTTPStatusLine.parse(Array("S".utf8)) == .malformed)
        #expect(HTTPStatusLine.parse(Array("HTTP/2 200 OK".utf8)) == .malformed)
        #expect(HTTPStatusLine.parse(Array("HTTP/1.1 2x0 OK".utf8)) == .malformed)
        #expect(HTTPStatusLine.parse(Array("HTTP/1.1  200".utf8)) == .malformed)
        #expect(HTTPStatusLine.parse(Array("http/1.1 200 OK".utf8)) == .malformed)
        #expect(HTTPStatusLine.parse([0xFF, 0x00, 0x13]) == .malformed)
    }

    @Test("Random bytes never trap, and only a real status line gives a code")
    func randomBytes() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let bytes = (0..<Int.random(in: 0...20, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if case .status(let code) = HTTPStatusLine.parse(bytes) {
                #expect((0...999).contains(code) && bytes.starts(with: Array("HTTP/1.".utf8)))
            }
        }
    }

    @Test("The request: Host with the port unless it is the scheme's, the path's unsafe bytes percent-encoded")
    func request() {
        var t = ProbeTarget(
            serviceId: "srv-1", instanceId: "i", registeredAt: 0, type: .HTTP, path: "/health?deep=1", threshold: 1,
            address: "10.0.0.1", port: 80, hostHeader: "web.example.com")
        #expect(
            HTTPHealthProbe.request(t, defaultPort: 80)
                == "GET /health?deep=1 HTTP/1.1\r\nHost: web.example.com\r\nUser-Agent: Cairn-Health-Check/1.0\r\nConnection: close\r\n\r\n"
        )
        t.port = 8080
        #expect(HTTPHealthProbe.request(t, defaultPort: 80).contains("\r\nHost: web.example.com:8080\r\n"))
        t.path = "/a b\r\nX-Evil: 1\u{7F}é"
        let request = HTTPHealthProbe.request(t, defaultPort: 80)
        #expect(request.hasPrefix("GET /a%20b%0D%0AX-Evil:%201%7F%C3%A9 HTTP/1.1\r\n"))
        #expect(request.utf8.filter { $0 == 0x0A }.count == 5)
    }
}
