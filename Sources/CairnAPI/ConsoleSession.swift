import CloudMapWire
import Crypto
import Foundation

/// Console sessions: after the access key and its secret are checked, the browser holds a cookie
/// `keyId.region.expiry.mac` signed with a key that lives only in this process (a restart signs everyone out).
/// Every form that changes something carries a CSRF token derived from the session.
struct ConsoleSessions: Sendable {
    static let cookieName = "cairn_session"
    static let lifetime: TimeInterval = 8 * 3600
    let key = SymmetricKey(size: .bits256)

    struct Claims: Equatable {
        var accessKeyId: String
        var region: String
    }

    func cookie(for claims: Claims, now: Date = Date()) -> String {
        let payload =
            "\(Self.base64url(claims.accessKeyId)).\(Self.base64url(claims.region)).\(Int(now.timeIntervalSince1970 + Self.lifetime))"
        return "\(payload).\(mac(payload))"
    }

    /// The claims of a valid, unexpired session cookie.
    func claims(fromCookie value: String, now: Date = Date()) -> Claims? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4, let expiry = Double(parts[2]), expiry > now.timeIntervalSince1970,
            SigV4.constantTimeEqual(Array(mac(parts[0...2].joined(separator: ".")).utf8), Array(parts[3].utf8)),
            let keyId = Self.unbase64url(parts[0]), let region = Self.unbase64url(parts[1])
        else { return nil }
        return Claims(accessKeyId: keyId, region: region)
    }

    func csrfToken(forCookie value: String) -> String { mac("csrf|" + value) }

    private func mac(_ text: String) -> String {
        SigV4.hex(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key))
    }

    static func base64url(_ text: String) -> String {
        Data(text.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    static func unbase64url(_ text: String) -> String? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// `application/x-www-form-urlencoded` bodies.
func formFields(_ text: String) -> [String: String] {
    var fields: [String: String] = [:]
    for pair in text.split(separator: "&") {
        let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        func decode(_ s: Substring) -> String { String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s) }
        fields[decode(kv[0])] = kv.count > 1 ? decode(kv[1]) : ""
    }
    return fields
}

func urlEncode(_ text: String) -> String { SigV4.encode(text, keepSlash: false) }
