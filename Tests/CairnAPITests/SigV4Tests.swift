import Crypto
import Foundation
import Testing

@testable import CloudMapWire

@Suite("SigV4 verification")
struct SigV4Tests {
    static let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    static let at = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z

    static func request(_ method: String, query: String = "", signature: String, body: [UInt8] = []) -> SigV4.Request {
        SigV4.Request(
            method: method, path: "/", query: query,
            headers: [
                ("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=\(signature)"
                ),
            ], body: body)
    }

    /// The AWS Signature Version 4 test suite: get-vanilla, get-vanilla-query-order-key-case, post-vanilla.
    static let suite: [(String, String, String)] = [
        ("GET", "", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("GET", "Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ("POST", "", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ]

    @Test("The AWS test-suite vectors verify", arguments: suite)
    func vectors(method: String, query: String, signature: String) throws {
        let principal = try SigV4.verify(
            Self.request(method, query: query, signature: signature), secret: { $0 == "AKIDEXAMPLE" ? Self.secret : nil }, now: Self.at,
            service: "service")
        #expect(principal == SigV4.Principal(accessKeyId: "AKIDEXAMPLE", region: "us-east-1"))
    }

    @Test("get-vanilla's canonical request and string to sign")
    func canonicalForm() {
        let canonical = SigV4.canonicalRequest(
            Self.request("GET", signature: ""), signedHeaders: ["host", "x-amz-date"],
            payloadHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            canonical
                == "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        #expect(
            SigV4.stringToSign(amzDate: "20150830T123600Z", scope: "20150830/us-east-1/service/aws4_request", canonicalRequest: canonical)
                == "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        )
    }

    static let refused: [(String, SigV4.Request, Date, String)] = [
        ("wrong signature", request("GET", signature: String(repeating: "0", count: 64)), at, "InvalidSignatureException"),
        (
            "modified body", request("POST", signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b", body: [1]), at,
            "InvalidSignatureException"
        ),
        (
            "modified query",
            request("GET", query: "Param1=other", signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"), at,
            "InvalidSignatureException"
        ),
        (
            "16 minutes late", request("GET", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"), at + 16 * 60,
            "InvalidSignatureException"
        ),
        (
            "no Authorization", SigV4.Request(method: "GET", path: "/", query: "", headers: [("Host", "h")], body: []), at,
            "MissingAuthenticationTokenException"
        ),
    ]

    @Test("Refusals name AWS's errors", arguments: refused)
    func refusals(label: String, request: SigV4.Request, now: Date, type: String) {
        do {
            _ = try SigV4.verify(request, secret: { $0 == "AKIDEXAMPLE" ? Self.secret : nil }, now: now, service: "service")
            Issue.record("\(label) verified")
        } catch {
            #expect(error.type == type, "\(label): \(error.message)")
        }
    }

    /// A request signed by `sign`, with an `x-amz-content-sha256` header added to what is signed when given.
    static func signedPost(body: [UInt8], contentHash: String?) -> SigV4.Request {
        var headers: [(name: String, value: String)] = [
            ("host", "cairn.test"), ("x-amz-target", "Route53AutoNaming_v20170314.ListNamespaces"),
        ]
        if let contentHash { headers.append(("x-amz-content-sha256", contentHash)) }
        let request = SigV4.Request(method: "POST", path: "/", query: "", headers: headers, body: body)
        var signed = request
        signed.headers += SigV4.sign(request, accessKeyId: "AKIDEXAMPLE", secret: Self.secret, region: "us-east-1", date: Self.at)
        return signed
    }

    @Test("The signature binds the body received, whatever x-amz-content-sha256 claims")
    func bodyBinding() throws {
        let original: [UInt8] = Array(#"{"Id":"a"}"#.utf8)
        let hash = SigV4.hex(SHA256.hash(data: original))
        let keys: (String) -> String? = { $0 == "AKIDEXAMPLE" ? Self.secret : nil }
        // Signed with the declared hash of the original body: verifies with that body.
        var request = Self.signedPost(body: original, contentHash: hash)
        _ = try SigV4.verify(request, secret: keys, now: Self.at)
        // The captured headers replayed with another body: refused although the declared hash still matches what was signed.
        request.body = Array(#"{"Id":"b"}"#.utf8)
        #expect(throws: SigV4.Failure.self) { try SigV4.verify(request, secret: keys, now: Self.at) }
        // UNSIGNED-PAYLOAD is refused even when the signature over it is right.
        let unsigned = Self.signedPost(body: original, contentHash: "UNSIGNED-PAYLOAD")
        do {
            _ = try SigV4.verify(unsigned, secret: keys, now: Self.at)
            Issue.record("UNSIGNED-PAYLOAD verified")
        } catch {
            #expect(error.message.contains("unsigned payloads"))
        }
        // No header: the body's own hash is signed.
        _ = try SigV4.verify(Self.signedPost(body: original, contentHash: nil), secret: keys, now: Self.at)
    }

    @Test("A presigned URL is refused for anything but GET")
    func presignedPostRefused() {
        let query =
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservicediscovery%2Faws4_request"
            + "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
        let request = SigV4.Request(method: "POST", path: "/", query: query, headers: [("host", "h")], body: [])
        do {
            _ = try SigV4.verify(request, secret: { _ in Self.secret }, now: Self.at)
            Issue.record("presigned POST verified")
        } catch {
            #expect(error.message.contains("only for GET"))
        }
    }

    @Test("An unknown key is UnrecognizedClientException, another service's scope is refused")
    func keysAndScope() {
        let request = Self.request("GET", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        #expect(throws: SigV4.Failure.unknownKey()) { try SigV4.verify(request, secret: { _ in nil }, now: Self.at, service: "service") }
        #expect(throws: SigV4.Failure.self) { try SigV4.verify(request, secret: { _ in Self.secret }, now: Self.at) }
    }
}

@Suite("X-Amz-Date parsing")
struct AmzDateTests {
    @Test(
        "Dates parse to the right instant; malformed ones do not",
        arguments: [
            ("20150830T123600Z", 1_440_938_160.0 as Double?), ("19700101T000000Z", 0), ("20240229T235959Z", 1_709_251_199),
            ("20150830T123600", nil), ("2015-08-30T12:36:00Z", nil), ("20151330T123600Z", nil), ("20150830X123600Z", nil),
        ])
    func parse(text: String, seconds: Double?) {
        #expect(SigV4.parseAmzDate(text)?.timeIntervalSince1970 == seconds)
    }

    @Test("Header look-ups ignore the case of the sent name, without lower-casing copies")
    func headerLookups() {
        let request = SigV4.Request(
            method: "POST", path: "/", query: "", headers: [("Host", "h"), ("X-Amz-Target", "t"), ("content-TYPE", "c")], body: [])
        #expect(request.header("host") == "h")
        #expect(request.header("x-amz-target") == "t")
        #expect(request.header("content-type") == "c")
        #expect(request.header("x-amz-targe") == nil)
        #expect(request.header("x-amz-date") == nil)
        #expect(SigV4.equalsLowercased("ABC", "abc") && !SigV4.equalsLowercased("ABC", "abd") && !SigV4.equalsLowercased("a[", "a{"))
    }
}
