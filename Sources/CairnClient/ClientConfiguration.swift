import Foundation

/// Where the client sends requests and as whom, resolved the way the AWS CLI resolves them: flags first, then
/// environment variables, then the shared credentials and config files.
public struct ClientConfiguration: Sendable, Equatable {
    public struct Credentials: Sendable, Equatable {
        public var accessKeyId: String
        public var secretAccessKey: String
        public var sessionToken: String?
        public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyId = accessKeyId
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }

        /// What the client signs with when no credentials are configured (enough for a `--dev` server).
        public static let anonymous = Credentials(accessKeyId: "anonymous", secretAccessKey: "no-credentials-were-configured")
        public var isAnonymous: Bool { self == .anonymous }
    }

    public var endpoint: URL
    public var region: String
    public var credentials: Credentials

    public init(endpoint: URL, region: String, credentials: Credentials) {
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
    }

    public static let defaultEndpoint = "http://127.0.0.1:8787"

    /// Resolves endpoint, region and credentials.
    /// - endpoint: `--endpoint`, `CAIRN_ENDPOINT`, `AWS_ENDPOINT_URL_SERVICEDISCOVERY`, `AWS_ENDPOINT_URL`, then
    ///   http://127.0.0.1:8787.
    /// - region: `--region`, `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region` in the config file, us-east-1.
    /// - credentials: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`(/`AWS_SESSION_TOKEN`) unless `--profile` is given,
    ///   then the profile (`--profile`, `AWS_PROFILE`, `default`) in `AWS_SHARED_CREDENTIALS_FILE` (~/.aws/credentials),
    ///   then in `AWS_CONFIG_FILE` (~/.aws/config).
    public static func resolve(
        endpoint: String?, region: String?, profile: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ClientError) -> ClientConfiguration {
        let endpointText =
            endpoint ?? environment["CAIRN_ENDPOINT"] ?? environment["AWS_ENDPOINT_URL_SERVICEDISCOVERY"] ?? environment["AWS_ENDPOINT_URL"]
            ?? defaultEndpoint
        guard let url = URL(string: endpointText), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ClientError.usage("the endpoint '\(endpointText)' is not an http:// or https:// URL")
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let profileName = profile ?? environment["AWS_PROFILE"] ?? "default"
        let credentialsFile = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        let configFile = environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config"
        let fromCredentials = IniFile.read(credentialsFile)[profileName] ?? [:]
        let configSection = profileName == "default" ? "default" : "profile \(profileName)"
        let fromConfig = IniFile.read(configFile)[configSection] ?? [:]

        var credentials: Credentials?
        if profile == nil, let id = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"] {
            credentials = Credentials(accessKeyId: id, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"])
        } else {
            for section in [fromCredentials, fromConfig] {
                if let id = section["aws_access_key_id"], let secret = section["aws_secret_access_key"] {
                    credentials = Credentials(accessKeyId: id, secretAccessKey: secret, sessionToken: section["aws_session_token"])
                    break
                }
            }
        }
        // None found: sign as `anonymous`, which a `--dev` server accepts like any key; any other server refuses it,
        // and the error then says where credentials come from (CairnClient.serviceError).
        let resolvedCredentials = credentials ?? Credentials.anonymous
        let resolvedRegion =
            region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? fromConfig["region"] ?? "us-east-1"
        return ClientConfiguration(endpoint: url, region: resolvedRegion, credentials: resolvedCredentials)
    }
}

/// The AWS shared-file format: `[section]` headers and `key = value` lines; `#` and `;` start comments.
enum IniFile {
    static func read(_ path: String) -> [String: [String: String]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        return parse(text)
    }

    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let current else { continue }
            let kv = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2 { sections[current, default: [:]][kv[0]] = kv[1] }
        }
        return sections
    }
}
