import Foundation
import Testing

@testable import CairnAPI

@Suite("Console session cookies")
struct ConsoleSessionTests {
    let sessions = ConsoleSessions()
    let claims = ConsoleSessions.Claims(accessKeyId: "AKID/with+odd=chars", region: "eu-west-1")
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("A cookie carries the key and region back")
    func roundTrip() {
        let cookie = sessions.cookie(for: claims, now: now)
        #expect(sessions.claims(fromCookie: cookie, now: now) == claims)
        #expect(!cookie.contains("/") && !cookie.contains("+") && !cookie.contains("=") && !cookie.contains(";"))
    }

    @Test("An expired cookie is no session")
    func expiry() {
        let cookie = sessions.cookie(for: claims, now: now)
        #expect(sessions.claims(fromCookie: cookie, now: now.addingTimeInterval(ConsoleSessions.lifetime + 1)) == nil)
    }

    @Test(
        "A cookie changed anywhere, or signed by another process, is no session",
        arguments: [0, 1, 2, 3])
    func tampering(part: Int) {
        let cookie = sessions.cookie(for: claims, now: now)
        var parts = cookie.split(separator: ".").map(String.init)
        let replacement: [String] = [ConsoleSessions.base64url("AKIDOTHER"), ConsoleSessions.base64url("us-east-1"), "9999999999", "00"]
        parts[part] = replacement[part]
        #expect(sessions.claims(fromCookie: parts.joined(separator: "."), now: now) == nil)
        #expect(ConsoleSessions().claims(fromCookie: cookie, now: now) == nil)
    }

    @Test("The CSRF token depends on the session and on this process's key")
    func csrf() {
        let a = sessions.cookie(for: claims, now: now)
        let b = sessions.cookie(for: ConsoleSessions.Claims(accessKeyId: "AKIDOTHER", region: "eu-west-1"), now: now)
        #expect(sessions.csrfToken(forCookie: a) != sessions.csrfToken(forCookie: b))
        #expect(sessions.csrfToken(forCookie: a) == sessions.csrfToken(forCookie: a))
        #expect(ConsoleSessions().csrfToken(forCookie: a) != sessions.csrfToken(forCookie: a))
    }
}
