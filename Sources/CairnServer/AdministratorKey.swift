import CairnAPI
import Foundation
import Logging

/// Outside dev mode every request must be signed with a known key. Without configured keys, Cairn creates one
/// administrator key on first start, in `DATA_DIR/admin-credentials` (mode 0600, the aws CLI's credentials-file
/// format, profile `cairn-admin`), and uses it from then on. The secret is never logged.
enum AdministratorKey {
    static let profile = "cairn-admin"

    /// Every configured key with its principal: `accessKeys` belong to the principal `administrator`.
    static func credentials(for configuration: CairnConfiguration, logger: Logger) throws -> [String: Credential] {
        let administrator = Principal(name: "administrator", policies: [BuiltInPolicies.administrator])
        var credentials: [String: Credential] = [:]
        for entry in configuration.principals {
            let principal = Principal(name: entry.name, policies: entry.policies)
            for (id, secret) in entry.accessKeys { credentials[id] = Credential(secret: secret, principal: principal) }
        }
        let adminKeys =
            configuration.accessKeys.isEmpty && configuration.principals.isEmpty
            ? try accessKeys(for: configuration, logger: logger) : configuration.accessKeys
        for (id, secret) in adminKeys { credentials[id] = Credential(secret: secret, principal: administrator) }
        return credentials
    }

    static func accessKeys(for configuration: CairnConfiguration, logger: Logger) throws -> [String: String] {
        if !configuration.accessKeys.isEmpty { return configuration.accessKeys }
        let path = (configuration.dataDir as NSString).appendingPathComponent("admin-credentials")
        if let text = try? String(contentsOfFile: path, encoding: .utf8), let key = parse(text) {
            logger.notice("using administrator key \(key.id) from \(path)")
            return [key.id: key.secret]
        }
        try FileManager.default.createDirectory(atPath: configuration.dataDir, withIntermediateDirectories: true)
        let id = "AKCA" + random(16, from: Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"))
        let secret = random(40, from: Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"))
        let text = "[\(profile)]\naws_access_key_id = \(id)\naws_secret_access_key = \(secret)\n"
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError(key: "dataDir", "cannot write \(path)")
        }
        logger.notice(
            "no access keys configured: created administrator key \(id) in \(path) (mode 0600; AWS_SHARED_CREDENTIALS_FILE=\(path) AWS_PROFILE=\(profile))"
        )
        return [id: secret]
    }

    static func parse(_ text: String) -> (id: String, secret: String)? {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2 { values[kv[0]] = kv[1] }
        }
        guard let id = values["aws_access_key_id"], let secret = values["aws_secret_access_key"] else { return nil }
        return (id, secret)
    }

    static func random(_ count: Int, from alphabet: [Character]) -> String {
        var rng = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int(rng.next(upperBound: UInt64(alphabet.count)))] })
    }
}
