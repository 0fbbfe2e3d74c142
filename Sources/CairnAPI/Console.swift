import CairnCore
import CloudMapWire
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The web console under `/console`: server-rendered HTML (Mustache templates) that reads without JavaScript.
/// Signed-in users act through the same path as API calls (`CloudMapAPI.perform`): the same throttling,
/// validation and policies, and the audit trail records each call with userAgent `cairn-console`. A small
/// script keeps the service page current by asking whether the service changed.
public struct Console: Sendable {
    /// How long the service page's live part waits for a change before answering 204 (and being asked again).
    static let liveWait: Duration = .seconds(25)

    /// What the console shows that only other parts of the server know.
    public struct Sources: Sendable {
        /// The probe history of an actively checked instance (`GET /cairn/v1/probe-history`'s body), or nil.
        public var probeHistory: @Sendable (_ serviceId: String, _ instanceId: String) -> JSONValue?
        /// The DNS records the service's names are answered with now, in presentation form.
        public var dnsRecords: @Sendable (Service, RegistryState) -> [String]
        /// The most records in a MULTIVALUE answer (`dns.maxAnswers`).
        public var dnsAnswerLimit: Int

        public init(
            probeHistory: @escaping @Sendable (String, String) -> JSONValue? = { _, _ in nil },
            dnsRecords: @escaping @Sendable (Service, RegistryState) -> [String] = { _, _ in [] }, dnsAnswerLimit: Int = 8
        ) {
            self.probeHistory = probeHistory
            self.dnsRecords = dnsRecords
            self.dnsAnswerLimit = dnsAnswerLimit
        }
    }

    let api: CloudMapAPI
    let sessions = ConsoleSessions()
    let backoff = SignInBackoff()
    let revoked = RevokedSessions()
    let secureCookies: Bool
    let sources: Sources

    public init(api: CloudMapAPI, secureCookies: Bool, sources: Sources = Sources()) {
        self.api = api
        self.secureCookies = secureCookies
        self.sources = sources
    }

    /// The signed-in user of one request.
    struct Session {
        var caller: Caller
        var cookie: String
        var csrf: String
    }

    func session(_ request: Request) -> Session? {
        guard let cookie = request.cookies[ConsoleSessions.cookieName]?.value, let claims = sessions.claims(fromCookie: cookie),
            !revoked.contains(cookie)
        else {
            return nil
        }
        var principal: Principal?
        if let keys = api.configuration.accessKeys {
            // A key removed from the configuration ends its sessions at the next restart; until then it is refused here.
            guard let credential = keys[claims.accessKeyId] else { return nil }
            principal = credential.principal
        }
        let caller = Caller(accessKeyId: claims.accessKeyId, region: claims.region, principal: principal)
        return Session(caller: caller, cookie: cookie, csrf: sessions.csrfToken(forCookie: cookie))
    }

    public func add(to router: Router<CairnRequestContext>) {
        router.get("/console/login") { request, _ in
            render(
                "login", ["region": api.configuration.defaultRegion, "dev": api.configuration.accessKeys == nil], title: "Sign in",
                session: nil,
                flash: Flash(error: request.uri.queryParameters["error"].map(String.init)))
        }
        router.post("/console/login") { request, context -> Response in
            let fields = try await form(request)
            let keyId = fields["accessKeyId"]?.trimmingCharacters(in: .whitespaces) ?? ""
            var region = fields["region"]?.trimmingCharacters(in: .whitespaces) ?? ""
            if region.isEmpty { region = api.configuration.defaultRegion }
            let wait = backoff.wait(context.peer)
            guard wait == 0 else {
                backoff.failed(context.peer)  // guessing on during the wait only makes it longer
                return redirect(
                    "/console/login?error="
                        + urlEncode("Too many failed sign-ins from your address; try again in \(Int(wait.rounded(.up))) s."))
            }
            guard signInAllowed(keyId: keyId, secret: fields["secretAccessKey"] ?? "") else {
                backoff.failed(context.peer)
                api.logger.notice("console sign-in refused", metadata: ["accessKeyId": "\(keyId.prefix(128))", "peer": "\(context.peer)"])
                return redirect("/console/login?error=" + urlEncode("Unknown access key or wrong secret."))
            }
            guard validRegion(region) else {
                return redirect("/console/login?error=" + urlEncode("'\(region.prefix(64))' is not a region this server accepts."))
            }
            backoff.succeeded(context.peer)
            return signedIn(ConsoleSessions.Claims(accessKeyId: keyId, region: region))
        }
        router.post("/console/logout") { request, _ -> Response in
            let fields = try await form(request)
            return try await changing(request, fields) { session in
                revoked.revoke(session.cookie, until: Date().timeIntervalSince1970 + ConsoleSessions.lifetime)
                var response = redirect("/console/login")
                response.headers[.setCookie] = cookieHeader("", maxAge: 0)
                return response
            }
        }
        router.post("/console/region") { request, _ -> Response in
            let fields = try await form(request)
            return try await changing(request, fields) { session in
                let region = fields["region"]?.trimmingCharacters(in: .whitespaces) ?? ""
                guard validRegion(region) else {
                    return redirect("/console?error=" + urlEncode("'\(region.prefix(64))' is not a region this server accepts."))
                }
                return signedIn(ConsoleSessions.Claims(accessKeyId: session.caller.accessKeyId, region: region))
            }
        }
        router.get("/console/static/live.js") { _, _ in
            Self.asset(ConsoleTemplates.liveScript, type: "text/javascript; charset=utf-8")
        }
        router.get("/console/static/console.css") { _, _ in
            Self.asset(ConsoleTemplates.stylesheet, type: "text/css; charset=utf-8")
        }
        router.get("/console") { request, _ in
            try await reading(request) { session in await namespacesPage(session, request) }
        }
        router.get("/console/namespaces/:id") { request, context in
            try await reading(request) { session in await namespacePage(session, request, id: context.parameters.get("id") ?? "") }
        }
        router.get("/console/services/:id") { request, context in
            try await reading(request) { session in await servicePage(session, request, id: context.parameters.get("id") ?? "") }
        }
        router.get("/console/services/:id/live") { request, context in
            try await reading(request) { session in
                await liveFragment(session, id: context.parameters.get("id") ?? "", since: request.uri.queryParameters["since"])
            }
        }
        router.get("/console/services/:id/instances/:instance/probes") { request, context in
            try await reading(request) { session in
                await probesPage(session, service: context.parameters.get("id") ?? "", instance: context.parameters.get("instance") ?? "")
            }
        }
        router.post("/console/services/:id/:action") { request, context -> Response in
            let fields = try await form(request)
            return try await changing(request, fields) { session in
                await serviceAction(
                    session, service: context.parameters.get("id") ?? "", action: context.parameters.get("action") ?? "",
                    fields: fields, peer: context.peer)
            }
        }
        router.get("/console/operations") { request, _ in
            try await reading(request) { session in await operationsPage(session, request) }
        }
        router.get("/console/audit") { request, _ in
            try await reading(request) { session in await auditPage(session, request) }
        }
    }

    /// Dev mode signs in any key id; otherwise the key must be configured and the secret must match.
    func signInAllowed(keyId: String, secret: String) -> Bool {
        guard let keys = api.configuration.accessKeys else { return !keyId.isEmpty }
        guard let credential = keys[keyId] else { return false }
        return SigV4.constantTimeEqual(Array(credential.secret.utf8), Array(secret.utf8))
    }

    func validRegion(_ region: String) -> Bool { api.configuration.regions.contains(region) }

    func signedIn(_ claims: ConsoleSessions.Claims) -> Response {
        var response = redirect("/console")
        response.headers[.setCookie] = cookieHeader(sessions.cookie(for: claims), maxAge: Int(ConsoleSessions.lifetime))
        return response
    }

    func form(_ request: Request) async throws -> [String: String] {
        var request = request
        return formFields(String(buffer: try await request.collectBody(upTo: 64 * 1024)))
    }

    /// A page for a signed-in user; others go to the sign-in page.
    func reading(_ request: Request, _ body: (Session) async throws -> Response) async throws -> Response {
        guard let session = session(request) else { return redirect("/console/login") }
        return try await body(session)
    }

    /// A change by a signed-in user, only with the CSRF token of their session: a form posted from another site
    /// cannot carry it (and SameSite=Strict keeps the cookie off such requests as well).
    func changing(_ request: Request, _ fields: [String: String], _ body: (Session) async throws -> Response) async throws -> Response {
        try await reading(request) { session in
            guard let token = fields["csrf"], SigV4.constantTimeEqual(Array(token.utf8), Array(session.csrf.utf8)) else {
                return render(
                    "failure",
                    [
                        "title": "Refused",
                        "message": "The form has expired or did not come from this console (CSRF check). Go back, reload and try again.",
                    ], title: "Refused", session: session, status: .forbidden)
            }
            return try await body(session)
        }
    }

    func cookieHeader(_ value: String, maxAge: Int) -> String {
        "\(ConsoleSessions.cookieName)=\(value); Path=/console; HttpOnly; SameSite=Strict; Max-Age=\(maxAge)\(secureCookies ? "; Secure" : "")"
    }

    func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// One call as the signed-in principal; the error when it fails.
    func call(_ session: Session, _ operation: String, _ input: [String: JSONValue] = [:], peer: String = "")
        async -> Result<JSONValue, WireError>
    {
        let reply = await api.perform(operation, input, caller: session.caller, peer: peer)
        let value = (try? JSONValue.parse(reply.body)) ?? .object([:])
        guard reply.status == 200 else {
            return .failure(
                WireError(type: value["__type"]?.stringValue ?? "Error", message: value["Message"]?.stringValue ?? "HTTP \(reply.status)"))
        }
        return .success(value)
    }

    /// Every page of a paginated operation.
    func all(_ session: Session, _ operation: String, _ input: [String: JSONValue] = [:], key: String) async -> Result<
        [JSONValue], WireError
    > {
        var items: [JSONValue] = []
        var request = input
        while true {
            switch await call(session, operation, request) {
            case .failure(let error): return .failure(error)
            case .success(let page):
                items += page[key]?.arrayValue ?? []
                guard let token = page["NextToken"]?.stringValue else { return .success(items) }
                request["NextToken"] = .string(token)
            }
        }
    }
}
