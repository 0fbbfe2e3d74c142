import Foundation
import Yams

/// What `cairn agent` keeps registered, from its YAML file (docs/agent.md):
///
///     lease: 30                     # seconds (5-86400): each instance is ephemeral, renewed every lease/3
///     services:
///       - namespace: shop           # with service: (the names), or serviceId: srv-...
///         service: web
///         instanceId: web-1         # default: HOSTNAME-PORT
///         ipv4: 10.0.0.5            # AWS_INSTANCE_IPV4 (and/or ipv6: AWS_INSTANCE_IPV6)
///         port: 8080                # AWS_INSTANCE_PORT
///         attributes: {version: "2"}
///         check:                    # one of http:, https:, tcp:, command:
///           http: http://127.0.0.1:8080/healthz
///           interval: 10            # seconds between checks
///           timeout: 2              # seconds a check may take
///           failureThreshold: 3     # consecutive failures before UNHEALTHY
///           successThreshold: 1     # consecutive successes before HEALTHY
///
/// Unknown keys are errors, so a typo never passes silently.
public struct AgentConfiguration: Sendable, Equatable {
    public struct Registration: Sendable, Equatable {
        public enum Service: Sendable, Equatable {
            case id(String)
            case named(namespace: String, service: String)
        }
        public var service: Service
        public var instanceId: String
        /// Every attribute registered, the reserved ones (address, port, lease, initial health) included.
        public var attributes: [String: String]
        public var check: Check?
    }

    public struct Check: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// GET the URL (`http://` or `https://`, an IP address or `localhost`): healthy on 2xx and 3xx.
            case http(https: Bool, address: String, port: Int, path: String)
            /// A TCP connection opens.
            case tcp(address: String, port: Int)
            /// The program exits with status 0 (run without a shell, its output discarded).
            case command([String])
        }
        public var kind: Kind
        public var intervalSeconds: Double = 10
        public var timeoutSeconds: Double = 2
        public var failureThreshold = 3
        public var successThreshold = 1
    }

    public var leaseSeconds = 30
    public var registrations: [Registration] = []
    /// Where and as whom, unless the command line says otherwise (`endpoint`, `region`, `profile` keys).
    public var endpoint: String?
    public var region: String?
    public var profile: String?

    public static let leaseRange = 5...86_400

    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public var key: String
        public var problem: String
        public var description: String { "\(key) \(problem)" }
        init(_ key: String, _ problem: String) {
            self.key = key
            self.problem = problem
        }
    }

    /// Parses the file; `hostname` names instances whose `instanceId` is not given.
    public static func parse(yaml text: String, hostname: String) throws(Invalid) -> AgentConfiguration {
        let node: Any?
        do { node = try Yams.load(yaml: text) } catch { throw Invalid("the agent file", "is not valid YAML: \(error)") }
        guard let root = node as? [String: Any] else { throw Invalid("the agent file", "must be a mapping with a services: list") }
        var configuration = AgentConfiguration()
        var services: [Any] = []
        for (key, value) in root {
            switch key {
            case "lease":
                configuration.leaseSeconds = try int(value, key)
                guard leaseRange.contains(configuration.leaseSeconds) else {
                    throw Invalid(key, "must be from \(leaseRange.lowerBound) to \(leaseRange.upperBound) seconds")
                }
            case "services":
                guard let list = value as? [Any] else { throw Invalid(key, "must be a list of instances to register") }
                services = list
            case "endpoint": configuration.endpoint = try string(value, key)
            case "region": configuration.region = try string(value, key)
            case "profile": configuration.profile = try string(value, key)
            default: throw Invalid(key, "is not a known key (lease, services, endpoint, region, profile)")
            }
        }
        guard !services.isEmpty else { throw Invalid("services", "must list at least one instance to register") }
        for (index, item) in services.enumerated() {
            configuration.registrations.append(
                try registration(item, "services[\(index)]", lease: configuration.leaseSeconds, hostname: hostname))
        }
        var seen = Set<String>()
        for registration in configuration.registrations {
            let key = "\(registration.service)/\(registration.instanceId)"
            guard seen.insert(key).inserted else {
                throw Invalid("services", "lists the instance \(registration.instanceId) of one service twice")
            }
        }
        return configuration
    }

    static func registration(_ value: Any, _ at: String, lease: Int, hostname: String) throws(Invalid) -> Registration {
        guard let map = value as? [String: Any] else { throw Invalid(at, "must be a mapping") }
        var namespace: String?
        var serviceName: String?
        var serviceId: String?
        var instanceId: String?
        var attributes: [String: String] = [:]
        var port: Int?
        var check: Check?
        for (key, v) in map {
            let full = "\(at).\(key)"
            switch key {
            case "namespace": namespace = try string(v, full)
            case "service": serviceName = try string(v, full)
            case "serviceId": serviceId = try string(v, full)
            case "instanceId": instanceId = try string(v, full)
            case "ipv4": attributes["AWS_INSTANCE_IPV4"] = try string(v, full)
            case "ipv6": attributes["AWS_INSTANCE_IPV6"] = try string(v, full)
            case "port":
                let p = try int(v, full)
                guard (1...65_535).contains(p) else { throw Invalid(full, "must be a port from 1 to 65535") }
                port = p
            case "attributes":
                guard let pairs = v as? [String: Any] else { throw Invalid(full, "must be a mapping of names to values") }
                for (name, value) in pairs {
                    guard !name.hasPrefix("AWS_"), !name.hasPrefix("CAIRN_") else {
                        throw Invalid("\(full).\(name)", "is reserved: the agent sets it from ipv4, ipv6, port, lease and check")
                    }
                    attributes[name] = try scalar(value, "\(full).\(name)")
                }
            case "check": check = try Self.check(v, full)
            default:
                throw Invalid(
                    full, "is not a known key (namespace, service, serviceId, instanceId, ipv4, ipv6, port, attributes, check)")
            }
        }
        let service: Registration.Service
        switch (serviceId, namespace, serviceName) {
        case (let id?, nil, nil): service = .id(id)
        case (nil, let ns?, let name?): service = .named(namespace: ns, service: name)
        default: throw Invalid(at, "needs either serviceId, or namespace and service")
        }
        if let port { attributes["AWS_INSTANCE_PORT"] = String(port) }
        attributes["CAIRN_LEASE_SECONDS"] = String(lease)
        let id = instanceId ?? (port.map { "\(hostname)-\($0)" } ?? hostname)
        guard !id.isEmpty, id.utf8.count <= 64 else { throw Invalid("\(at).instanceId", "must be 1 to 64 characters") }
        return Registration(service: service, instanceId: id, attributes: attributes, check: check)
    }

    static func check(_ value: Any, _ at: String) throws(Invalid) -> Check {
        guard let map = value as? [String: Any] else { throw Invalid(at, "must be a mapping with one of http, https, tcp, command") }
        var kind: Check.Kind?
        var check = Check(kind: .command([]))
        func once(_ key: String, _ found: Check.Kind) throws(Invalid) {
            guard kind == nil else { throw Invalid(at, "must have only one of http, https, tcp, command") }
            kind = found
        }
        for (key, v) in map {
            let full = "\(at).\(key)"
            switch key {
            case "http", "https": try once(key, try url(try string(v, full), full))
            case "tcp":
                let text = try string(v, full)
                guard let (address, port) = hostPort(text) else { throw Invalid(full, "must be ADDRESS:PORT, as 127.0.0.1:5432") }
                try once(key, .tcp(address: address, port: port))
            case "command":
                let argv: [String]
                if let list = v as? [Any] {
                    argv = try list.enumerated().map { (i, item) throws(Invalid) in try scalar(item, "\(full)[\(i)]") }
                } else {
                    argv = try string(v, full).split(separator: " ").map(String.init)
                }
                guard let program = argv.first, !program.isEmpty else { throw Invalid(full, "must name a program") }
                try once(key, .command(argv))
            case "interval":
                check.intervalSeconds = try double(v, full)
                guard (0.1...86_400).contains(check.intervalSeconds) else { throw Invalid(full, "must be from 0.1 to 86400 seconds") }
            case "timeout":
                check.timeoutSeconds = try double(v, full)
                guard (0.1...3_600).contains(check.timeoutSeconds) else { throw Invalid(full, "must be from 0.1 to 3600 seconds") }
            case "failureThreshold":
                check.failureThreshold = try int(v, full)
                guard (1...100).contains(check.failureThreshold) else { throw Invalid(full, "must be from 1 to 100") }
            case "successThreshold":
                check.successThreshold = try int(v, full)
                guard (1...100).contains(check.successThreshold) else { throw Invalid(full, "must be from 1 to 100") }
            default:
                throw Invalid(
                    full, "is not a known key (http, https, tcp, command, interval, timeout, failureThreshold, successThreshold)")
            }
        }
        guard let kind else { throw Invalid(at, "needs one of http, https, tcp, command") }
        check.kind = kind
        return check
    }

    /// `http(s)://ADDRESS[:PORT][/PATH]`, where ADDRESS is an IP address (IPv6 in brackets) or `localhost`: the
    /// agent checks its own host, so it resolves no names.
    static func url(_ text: String, _ at: String) throws(Invalid) -> Check.Kind {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            var host = url.host, !host.isEmpty
        else { throw Invalid(at, "must be an http:// or https:// URL") }
        if host == "localhost" { host = "127.0.0.1" }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard isIPAddress(host) else { throw Invalid(at, "must name an IP address or localhost, not \(host)") }
        let https = scheme == "https"
        let port = url.port ?? (https ? 443 : 80)
        guard (1...65_535).contains(port) else { throw Invalid(at, "has a port out of range") }
        var path = url.path.isEmpty ? "/" : url.path
        if let query = url.query { path += "?" + query }
        return .http(https: https, address: host, port: port, path: path)
    }

    static func hostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (1...65_535).contains(port) else { return nil }
        if host == "localhost" { host = "127.0.0.1" }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return isIPAddress(host) ? (host, port) : nil
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    static func string(_ value: Any, _ key: String) throws(Invalid) -> String {
        guard let text = value as? String else { throw Invalid(key, "must be a string") }
        return text
    }

    /// A scalar as the text it was written as (attribute values are strings to Cloud Map).
    static func scalar(_ value: Any, _ key: String) throws(Invalid) -> String {
        switch value {
        case let text as String: return text
        case let number as Int: return String(number)
        case let number as Double: return String(number)
        case let flag as Bool: return flag ? "true" : "false"
        default: throw Invalid(key, "must be a string, a number or a Boolean")
        }
    }

    static func int(_ value: Any, _ key: String) throws(Invalid) -> Int {
        guard let number = value as? Int else { throw Invalid(key, "must be a whole number") }
        return number
    }

    static func double(_ value: Any, _ key: String) throws(Invalid) -> Double {
        if let number = value as? Int { return Double(number) }
        guard let number = value as? Double, number.isFinite else { throw Invalid(key, "must be a number") }
        return number
    }
}

/// A check's results turned into the status to push: the first result decides at once; after that the status
/// turns only after `failureThreshold` consecutive failures or `successThreshold` consecutive successes.
public struct HealthDebounce: Sendable, Equatable {
    public private(set) var status: Bool?
    private var streak = 0
    let failureThreshold: Int
    let successThreshold: Int

    public init(failureThreshold: Int, successThreshold: Int) {
        self.failureThreshold = max(1, failureThreshold)
        self.successThreshold = max(1, successThreshold)
    }

    /// Records one result; returns the new status when it changed (true: healthy).
    public mutating func record(healthy: Bool) -> Bool? {
        guard let current = status else {
            status = healthy
            return healthy
        }
        if healthy == current {
            streak = 0
            return nil
        }
        streak += 1
        guard streak >= (healthy ? successThreshold : failureThreshold) else { return nil }
        status = healthy
        streak = 0
        return healthy
    }
}
