import CairnCore
import Crypto
import Foundation

/// AWS Signature Version 4 verification (Authorization header), for service `servicediscovery`.
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
public enum SigV4 {
    /// Who signed a request, and the region of its credential scope.
    public struct Principal: Sendable, Equatable {
        public var accessKeyId: String
        public var region: String
    }

    /// Why a request is refused, each with the error AWS returns for it.
    public struct Failure: Error, Sendable, Equatable {
        public var type: String
        public var message: String

        static func missing() -> Failure {
            Failure(type: "MissingAuthenticationTokenException", message: "Request is missing Authentication Token")
        }
        static func invalid(_ message: String) -> Failure { Failure(type: "InvalidSignatureException", message: message) }
        static func unknownKey() -> Failure {
            Failure(type: "UnrecognizedClientException", message: "The security token included in the request is invalid.")
        }
        static func mismatch() -> Failure {
            Failure(
                type: "InvalidSignatureException",
                message:
                    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
            )
        }
    }

    /// The request as signed: method, path, raw query, headers (any case; `host` included), body.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        public init(method: String, path: String, query: String, headers: [(name: String, value: String)], body: [UInt8]) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.body = body
        }

        /// The first header of that (lower-case) name, its own name compared without regard to ASCII case (and
        /// without building a lower-cased copy per header per look-up).
        public func header(_ name: String) -> String? {
            headers.first { SigV4.equalsLowercased($0.name, name) }?.value
        }
    }

    /// Whether `text` lower-cased (ASCII letters only, as `lowercased()` does to header names) equals `lower`.
    static func equalsLowercased(_ text: String, _ lower: String) -> Bool {
        guard text.utf8.count == lower.utf8.count else { return false }
        if text == lower { return true }
        for (a, b) in zip(text.utf8, lower.utf8) where a != b {
            guard a >= 0x41, a <= 0x5A, a | 0x20 == b else { return false }
        }
        return true
    }

    public static let maxSkewSeconds: TimeInterval = 15 * 60
    public static let service = "servicediscovery"

    /// Verifies the signature against the secret of its access key; `secret` returns nil for unknown keys.
    public static func verify(_ request: Request, secret: (String) -> String?, now: Date, service expected: String = service)
        throws(Failure) -> Principal
    {
        guard let authorization = request.header("authorization") else {
            if request.query.contains("X-Amz-Signature=") {
                return try verifyPresigned(request, secret: secret, now: now, service: expected)
            }
            throw .missing()
        }
        guard authorization.hasPrefix("AWS4-HMAC-SHA256 ") else {
            throw .invalid("Only AWS4-HMAC-SHA256 signatures are accepted.")
        }
        var fields: [String: String] = [:]
        for part in authorization.dropFirst("AWS4-HMAC-SHA256 ".count).split(separator: ",") {
            let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
        }
        guard let credential = fields["Credential"], let signedHeaders = fields["SignedHeaders"], let signature = fields["Signature"] else {
            throw .invalid("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.")
        }
        let scope = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard scope.count == 5, scope[4] == "aws4_request", !scope[2].isEmpty else {
            throw .invalid("Credential should be scoped to a valid region, service and aws4_request.")
        }
        let (accessKeyId, day, scopeService) = (scope[0], scope[1], scope[3])
        guard scopeService == expected else {
            throw .invalid("Credential should be scoped to correct service: '\(expected)'.")
        }
        guard let secretKey = secret(accessKeyId) else { throw .unknownKey() }
        guard let amzDate = request.header("x-amz-date"), let signedAt = parseAmzDate(amzDate) else {
            throw .invalid("The request must carry an X-Amz-Date header (yyyyMMddTHHmmssZ).")
        }
        guard amzDate.hasPrefix(day) else { throw .invalid("The credential scope date does not match X-Amz-Date.") }
        if abs(now.timeIntervalSince(signedAt)) > maxSkewSeconds {
            throw .invalid("Signature expired: \(amzDate) is now earlier than or later than 15 minutes from the server's time.")
        }
        let names = signedHeaders.split(separator: ";").map { String($0) }
        guard names.contains("host"), names == names.sorted(), names.allSatisfy({ $0 == $0.lowercased() }) else {
            throw .invalid("SignedHeaders must list lower-case header names in order and include host.")
        }
        for name in names where request.header(name) == nil {
            throw .invalid("The signed header '\(name)' is missing from the request.")
        }
        // The signature covers the body Cairn received, never a hash the client claims: a declared hash must be
        // that one, so a captured request cannot carry another body.
        let payload = try payloadHash(request)
        return try check(
            request, signedHeaders: names, payload: payload, amzDate: amzDate, scope: scope, secret: secretKey, signature: signature)
    }

    /// The hash of the received body; a present `x-amz-content-sha256` must equal it (so `UNSIGNED-PAYLOAD` is refused).
    static func payloadHash(_ request: Request) throws(Failure) -> String {
        let computed = hex(SHA256.hash(data: request.body))
        if let declared = request.header("x-amz-content-sha256") {
            if declared == "UNSIGNED-PAYLOAD" || declared.hasPrefix("STREAMING-") {
                throw .invalid("This API does not accept unsigned payloads: sign the body's SHA-256.")
            }
            guard declared.lowercased() == computed else {
                throw .invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
            }
        }
        return computed
    }

    /// The shared tail of both verifications: the canonical request, the string to sign, the comparison.
    private static func check(
        _ request: Request, signedHeaders: [String], payload: String, amzDate: String, scope: [String], secret: String,
        signature: String
    ) throws(Failure) -> Principal {
        let (accessKeyId, day, region, scopeService) = (scope[0], scope[1], scope[2], scope[3])
        let canonical = canonicalRequest(request, signedHeaders: signedHeaders, payloadHash: payload)
        let toSign = stringToSign(amzDate: amzDate, scope: "\(day)/\(region)/\(scopeService)/aws4_request", canonicalRequest: canonical)
        let expectedSignature = hex(
            HMAC<SHA256>.authenticationCode(
                for: Array(toSign.utf8), using: signingKey(secret: secret, day: day, region: region, service: scopeService)))
        guard constantTimeEqual(Array(expectedSignature.utf8), Array(signature.utf8)) else { throw .mismatch() }
        return Principal(accessKeyId: accessKeyId, region: region)
    }

    /// Signs a request as `accessKeyId`: returns the headers to add (`x-amz-date`, `authorization`, and
    /// `x-amz-security-token` when a session token is given). `headers` must include `host`; all of them are signed.
    public static func sign(
        _ request: Request, accessKeyId: String, secret: String, sessionToken: String? = nil, region: String,
        service: String = service, date: Date = Date()
    ) -> [(name: String, value: String)] {
        let amzDate = formatAmzDate(date)
        let day = String(amzDate.prefix(8))
        var signed = request
        signed.headers.append(("x-amz-date", amzDate))
        if let sessionToken { signed.headers.append(("x-amz-security-token", sessionToken)) }
        let names = Array(Set(signed.headers.map { $0.name.lowercased() })).sorted()
        let canonical = canonicalRequest(signed, signedHeaders: names, payloadHash: hex(SHA256.hash(data: request.body)))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let toSign = stringToSign(amzDate: amzDate, scope: scope, canonicalRequest: canonical)
        let signature = hex(
            HMAC<SHA256>.authenticationCode(
                for: Array(toSign.utf8), using: signingKey(secret: secret, day: day, region: region, service: service)))
        var added: [(name: String, value: String)] = [("x-amz-date", amzDate)]
        if let sessionToken { added.append(("x-amz-security-token", sessionToken)) }
        added.append(
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=\(accessKeyId)/\(scope), SignedHeaders=\(names.joined(separator: ";")), Signature=\(signature)"
            ))
        return added
    }

    /// `yyyyMMddTHHmmssZ` in UTC.
    public static func formatAmzDate(_ date: Date) -> String {
        let t = UTCTime(seconds: Int64(date.timeIntervalSince1970.rounded(.down)))
        return "\(t.year)\(t.two(t.month))\(t.two(t.day))T\(t.two(t.hour))\(t.two(t.minute))\(t.two(t.second))Z"
    }

    /// Longest validity of a presigned URL (7 days, as AWS allows).
    public static let maxExpiresSeconds = 604_800

    /// A presigned request: the signature and its parameters in the query string (`X-Amz-Algorithm`,
    /// `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`); valid from
    /// 15 minutes before X-Amz-Date until X-Amz-Expires seconds after it.
    static func verifyPresigned(_ request: Request, secret: (String) -> String?, now: Date, service expected: String) throws(Failure)
        -> Principal
    {
        var parameters: [String: String] = [:]
        var rest: [Substring] = []
        for pair in request.query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(kv[0]).removingPercentEncoding ?? String(kv[0])
            if key.hasPrefix("X-Amz-") {
                parameters[key] = kv.count > 1 ? (String(kv[1]).removingPercentEncoding ?? String(kv[1])) : ""
            }
            if key != "X-Amz-Signature" { rest.append(pair) }
        }
        // A presigned URL signs the host and the query only, so it must not stand for a request whose meaning lies
        // in headers or a body (an API call names its operation in X-Amz-Target): only reads of Cairn's GET routes.
        guard request.method == "GET" || request.method == "HEAD", request.body.isEmpty else {
            throw .invalid("Presigned URLs are accepted only for GET requests; sign API calls with an Authorization header.")
        }
        guard parameters["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" else {
            throw .invalid("X-Amz-Algorithm must be AWS4-HMAC-SHA256.")
        }
        guard let credential = parameters["X-Amz-Credential"], let amzDate = parameters["X-Amz-Date"],
            let expiresText = parameters["X-Amz-Expires"], let signedHeaders = parameters["X-Amz-SignedHeaders"],
            let signature = parameters["X-Amz-Signature"]
        else {
            throw .invalid("A presigned URL needs X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature.")
        }
        let scope = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard scope.count == 5, scope[4] == "aws4_request", !scope[2].isEmpty else {
            throw .invalid("Credential should be scoped to a valid region, service and aws4_request.")
        }
        let (accessKeyId, day, scopeService) = (scope[0], scope[1], scope[3])
        guard scopeService == expected else { throw .invalid("Credential should be scoped to correct service: '\(expected)'.") }
        guard let secretKey = secret(accessKeyId) else { throw .unknownKey() }
        guard let signedAt = parseAmzDate(amzDate), amzDate.hasPrefix(day) else {
            throw .invalid("X-Amz-Date must be yyyyMMddTHHmmssZ on the credential scope's day.")
        }
        guard let expires = Int(expiresText), (1...maxExpiresSeconds).contains(expires) else {
            throw .invalid("X-Amz-Expires must be 1 to \(maxExpiresSeconds) seconds.")
        }
        if now.timeIntervalSince(signedAt) > TimeInterval(expires) || signedAt.timeIntervalSince(now) > maxSkewSeconds {
            throw .invalid("Request has expired")
        }
        let names = signedHeaders.split(separator: ";").map { String($0) }
        guard names.contains("host"), names == names.sorted() else {
            throw .invalid("X-Amz-SignedHeaders must list lower-case header names in order and include host.")
        }
        var unsigned = request
        unsigned.query = rest.joined(separator: "&")
        return try check(
            unsigned, signedHeaders: names, payload: hex(SHA256.hash(data: request.body)), amzDate: amzDate, scope: scope,
            secret: secretKey, signature: signature)
    }

    /// `yyyyMMddTHHmmssZ` (always UTC) without a DateFormatter, which would cost more than the rest of verification.
    static func parseAmzDate(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 16, b[8] == UInt8(ascii: "T"), b[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var n = 0
            for c in b[range] {
                guard c >= 48 && c <= 57 else { return nil }
                n = n * 10 + Int(c - 48)
            }
            return n
        }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8), let hour = number(9..<11),
            let minute = number(11..<13), let second = number(13..<15), (1...12).contains(month), (1...31).contains(day),
            hour < 24, minute < 60, second < 61
        else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm), then seconds since 1970.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + hour * 3600 + minute * 60 + second))
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters (and `/` when `keepSlash`).
    public static func encode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if c.isASCII && (c.isLetter || c.isNumber || "-_.~".contains(c) || (keepSlash && c == "/")) {
                out.append(c)
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    public static func canonicalRequest(_ request: Request, signedHeaders: [String], payloadHash payload: String) -> String {
        let path = request.path.isEmpty ? "/" : request.path
        var pairs: [(String, String)] = []
        for pair in request.query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(kv[0]).removingPercentEncoding ?? String(kv[0])
            let value = kv.count > 1 ? (String(kv[1]).removingPercentEncoding ?? String(kv[1])) : ""
            pairs.append((encode(key, keepSlash: false), encode(value, keepSlash: false)))
        }
        pairs.sort { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
        let query = pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let headers = signedHeaders.map { name -> String in
            let values = request.headers.filter { $0.name.lowercased() == name }.map {
                $0.value.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            }
            return "\(name):\(values.joined(separator: ","))\n"
        }.joined()
        return [request.method, encode(path, keepSlash: true), query, headers, signedHeaders.joined(separator: ";"), payload]
            .joined(separator: "\n")
    }

    public static func stringToSign(amzDate: String, scope: String, canonicalRequest: String) -> String {
        "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(hex(SHA256.hash(data: Array(canonicalRequest.utf8))))"
    }

    public static func signingKey(secret: String, day: String, region: String, service: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array("AWS4\(secret)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Compares without stopping at the first difference, so timing says nothing about the signature.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
