import Foundation
import NIOCore
import NIOSSL
import PostgresNIO

/// Where the cluster's database is: `postgres://USER:PASS@HOST:PORT/DB?sslmode=MODE` (also `postgresql://`).
/// `sslmode` is libpq's: `disable`, `prefer` (the default: TLS when the server offers it, unverified),
/// `require` (TLS, unverified), `verify-full` (TLS, certificate and host name verified; `sslrootcert=FILE`
/// names the CA, else the system's).
public struct PostgresLocation: Sendable, Equatable {
    public enum TLSMode: String, Sendable, Equatable { case disable, prefer, require, verifyFull = "verify-full" }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    public var rootCertificate: String?

    /// Whether `text` names a PostgreSQL store rather than a data directory.
    public static func isURL(_ text: String) -> Bool { text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") }

    public static func parse(_ text: String) throws -> PostgresLocation {
        guard isURL(text), let url = URLComponents(string: text) else {
            throw PostgresStoreError("the store URL must look like postgres://USER:PASSWORD@HOST:PORT/DATABASE, not \(Self.redact(text))")
        }
        guard let host = url.host, !host.isEmpty else { throw PostgresStoreError("the store URL names no host: \(Self.redact(text))") }
        guard let username = url.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !username.isEmpty else {
            throw PostgresStoreError("the store URL names no user: \(Self.redact(text))")
        }
        let port = url.port ?? 5432
        guard (1...65535).contains(port) else { throw PostgresStoreError("the store URL's port \(port) is not a port") }
        let path = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        var location = PostgresLocation(
            host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: port, username: username,
            password: url.percentEncodedPassword.flatMap { $0.removingPercentEncoding }, database: path.isEmpty ? username : path,
            tls: .prefer, rootCertificate: nil)
        for item in url.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = TLSMode(rawValue: item.value ?? "") else {
                    throw PostgresStoreError("sslmode must be disable, prefer, require or verify-full, not \(item.value ?? "")")
                }
                location.tls = mode
            case "sslrootcert":
                location.rootCertificate = item.value
            default:
                throw PostgresStoreError("the store URL's parameter \(item.name) is not one Cairn knows (sslmode, sslrootcert)")
            }
        }
        return location
    }

    /// The URL with its password replaced, for logs and messages.
    public var redacted: String {
        "postgres://\(username)\(password == nil ? "" : ":***")@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)?sslmode=\(tls.rawValue)"
    }

    public static func redact(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let scheme = text.range(of: "://") else { return text }
        let credentials = text[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }

    func configuration(timeout: Duration) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch self.tls {
        case .disable:
            tls = .disable
        case .prefer, .require:
            var config = TLSConfiguration.makeClientConfiguration()
            config.certificateVerification = .none
            let context = try NIOSSLContext(configuration: config)
            tls = self.tls == .prefer ? .prefer(context) : .require(context)
        case .verifyFull:
            var config = TLSConfiguration.makeClientConfiguration()
            config.certificateVerification = .fullVerification
            if let rootCertificate { config.trustRoots = .file(rootCertificate) }
            tls = .require(try NIOSSLContext(configuration: config))
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000)
        if self.tls == .verifyFull { configuration.options.tlsServerName = host }
        return configuration
    }
}
