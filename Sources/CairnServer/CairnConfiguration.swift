import CairnAPI
import CairnCore
import CairnDNS
import CairnPostgres
import DNSWire
import Foundation

/// Everything `cairn serve` can be told, with its defaults in one place. The config file, the environment and
/// flags all fill this same struct, in that order of precedence (flags win); it is validated once at start.
public struct CairnConfiguration: Sendable, Equatable {
    public struct API: Sendable, Equatable {
        public var host = "127.0.0.1"
        public var port = 8787
        public var maxBodyBytes = CloudMapAPI.defaultMaxBodyBytes
        /// PEM certificate chain and private key: when both are set the API serves HTTPS only.
        public var tlsCertificate: String?
        public var tlsKey: String?
        /// Open connections at most (lowered to fit the process's descriptor limit); more wait in the backlog.
        public var maxConnections = 4096
        public var timeouts = Timeouts()
        public var watch = Watch()
        public init() {}
    }

    /// Long-poll discovery and watch streams: calls waiting for a change at once (long polls and streams between
    /// events), streams open at once, and how long a stream's client may take to accept one event.
    public struct Watch: Sendable, Equatable {
        public var maxWaiting = 10_000
        public var maxStreams = 10_000
        public var writeTimeoutSeconds = 30.0
        /// The `change` events, and their bytes, all streams send per second at most, together (the fan-out budget).
        public var maxEventsPerSecond = WatchStreams.defaultEventsPerSecond
        public var maxBytesPerSecond = WatchStreams.defaultBytesPerSecond
        public init() {}
    }

    /// Deadlines on API connections (seconds): idle between requests (also bounds a trickled request head), a
    /// request body's arrival, and how long shutdown waits for busy connections before closing them.
    public struct Timeouts: Sendable, Equatable {
        public var idleSeconds = 60.0
        public var bodySeconds = 30.0
        public var drainSeconds = 10.0
        public init() {}
    }

    /// A named principal: its access keys and the IAM-style policies that decide what they may do.
    public struct PrincipalEntry: Sendable, Equatable {
        public var name: String
        /// Access key id → secret.
        public var accessKeys: [String: String]
        public var policies: [Policy]
        public init(name: String, accessKeys: [String: String], policies: [Policy]) {
            self.name = name
            self.accessKeys = accessKeys
            self.policies = policies
        }
    }

    public struct Audit: Sendable, Equatable {
        /// Record Get*/List* calls (writes are always recorded).
        public var reads = true
        /// Record DiscoverInstances and DiscoverInstancesRevision (off, as in AWS CloudTrail).
        public var discover = false
        /// Days a record is kept (0: forever).
        public var retentionDays = 90
        public init() {}
    }

    public struct DNS: Sendable, Equatable {
        public var enabled = true
        /// Listen addresses, comma-separated. The default serves the `default` network's both families: IPv4
        /// loopback, and `::1` where the host has IPv6.
        public var host = DNS.defaultHost
        public static let defaultHost = "127.0.0.1,::1"

        /// The addresses that must bind, and those bound only where possible (the default's `::1`).
        public var hosts: (required: [String], optional: [String]) {
            let all = host.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return host == DNS.defaultHost ? (["127.0.0.1"], ["::1"]) : (all, [])
        }
        public var port = 8853
        public var maxAnswers = DNSConfiguration.defaultMaxAnswers
        public var serverName = DNSConfiguration.defaultServerName
        public var hostmaster = DNSConfiguration.defaultHostmaster
        public var ednsPayloadSize = DNSConfiguration.defaultEDNSPayloadSize
        public var queryLog = false
        /// UDP answers a second to one client network (/24, /56) before response-rate limiting; 0 turns it off.
        public var rateLimitPerSecond = 1000.0
        /// Past the rate, every `rateLimitSlip`-th answer is sent truncated (TC), the rest dropped; 0 drops all.
        public var rateLimitSlip = 2
        /// Zone transfers: the CIDRs that may transfer (AXFR/IXFR over TCP; none by default) and the secondaries
        /// (`host:port`) sent a NOTIFY when a zone changes.
        public var transferAllow: [String] = []
        public var notify: [String] = []
        /// The TSIG key (HMAC-SHA256) transfers must be signed with and NOTIFY is signed with: its name and its
        /// secret in base64, as `tsig-keygen` prints them.
        public var transferKeyName: String?
        public var transferKeySecret: String?
        /// Name servers listed in every zone's NS records besides `serverName` (the secondaries that serve the zones).
        public var nameServers: [String] = []
        /// Availability zone → the client networks (CIDRs) in it, for zone-aware services (tag `cairn:zone-aware`).
        public var availabilityZones: [String: [String]] = [:]
        public init() {}

        /// The transfer key, when both parts are set and valid (checked by `validate`).
        public var transferKey: TSIGKey? {
            guard let name = transferKeyName, let secret = transferKeySecret, let bytes = Data(base64Encoded: secret) else { return nil }
            return TSIGKey(name: name, secret: Array(bytes))
        }
    }

    public struct Health: Sendable, Equatable {
        public var enabled = true
        /// Seconds between probes of one instance (minimum 1).
        public var interval = 10.0
        public var historySize = 20
        /// Flap damping: more than `flapTransitions` changes within `flapWindowSeconds` hold UNHEALTHY (0: off).
        public var flapTransitions = 0
        public var flapWindowSeconds = 300.0
        /// Probe instances registered at loopback, link-local or unspecified addresses (off: a port-scan oracle).
        public var allowLoopbackTargets = false
        public init() {}
    }

    /// `sqlite` (the embedded default, in `dataDir`), `memory` (lost on exit), or a `postgres://` URL (cluster mode:
    /// any number of nodes on one database).
    public enum StoreKind: Sendable, Equatable, CustomStringConvertible {
        case sqlite, memory
        case postgres(url: String)

        public init?(_ text: String) {
            switch text {
            case "sqlite": self = .sqlite
            case "memory": self = .memory
            default:
                guard PostgresLocation.isURL(text) else { return nil }
                self = .postgres(url: text)
            }
        }

        static let expected = "must be sqlite, memory or a postgres://USER:PASSWORD@HOST:PORT/DATABASE URL"

        /// For logs: a URL without its password.
        public var description: String {
            switch self {
            case .sqlite: return "sqlite"
            case .memory: return "memory"
            case .postgres(let url): return (try? PostgresLocation.parse(url).redacted) ?? PostgresLocation.redact(url)
            }
        }
    }

    public var dataDir = "./cairn-data"
    public var store = StoreKind.sqlite
    public var api = API()
    public var dns = DNS()
    public var health = Health()
    /// Accept any credentials; loopback only; loudly logged.
    public var dev = false
    /// Administrator access keys (id → secret), allowed everything. With neither these nor `principals` outside
    /// dev mode, an administrator key is created in the data directory.
    public var accessKeys: [String: String] = [:]
    public var principals: [PrincipalEntry] = []
    public var throttling = Throttle.Configuration()
    public var audit = Audit()

    /// Cluster mode (a `postgres://` store).
    public struct Cluster: Sendable, Equatable {
        /// How often a node looks at the database's clock when no notification arrived (milliseconds).
        public var pollMilliseconds = 500
        /// How long change-log entries are kept behind the checkpoint (seconds); a node away longer reloads.
        public var logRetentionSeconds = 3600
        var pollInterval: Duration { .milliseconds(pollMilliseconds) }
        public init() {}
    }
    public var cluster = Cluster()
    /// Region for requests without a SigV4 credential scope.
    public var region = "us-east-1"
    /// Regions a credential scope may name: exact names, or prefixes ending in `*`. Default: AWS's regions.
    public var regions = RegionSet.aws
    public var account = "000000000000"
    /// Networks a private DNS namespace may name as its `Vpc`: name → CIDRs.
    public var networks: [String: [String]] = ["default": ["127.0.0.0/8", "::1/128"]]
    public var limits = RegistryLimits()
    public var strict = false
    public var logLevel = "info"

    public init() {}

    /// Problems that stop the server from starting, each naming its key.
    public func validate() throws(ConfigurationError) {
        if !(0...65535).contains(api.port) { throw ConfigurationError(key: "api.port", "must be 0 to 65535, not \(api.port)") }
        if api.maxBodyBytes < 1024 { throw ConfigurationError(key: "api.maxBodyBytes", "must be at least 1024") }
        if api.maxConnections < 1 { throw ConfigurationError(key: "api.maxConnections", "must be at least 1") }
        for (key, value) in [
            ("api.timeouts.idleSeconds", api.timeouts.idleSeconds), ("api.timeouts.bodySeconds", api.timeouts.bodySeconds),
            ("api.timeouts.drainSeconds", api.timeouts.drainSeconds),
        ] where !(value > 0 && value <= 86_400) {
            throw ConfigurationError(key: key, "must be more than 0 and at most 86400 seconds")
        }
        if api.watch.maxWaiting < 0 { throw ConfigurationError(key: "api.watch.maxWaiting", "must be 0 or more") }
        if api.watch.maxStreams < 0 { throw ConfigurationError(key: "api.watch.maxStreams", "must be 0 or more") }
        if !(api.watch.writeTimeoutSeconds >= 1 && api.watch.writeTimeoutSeconds <= 3600) {
            throw ConfigurationError(key: "api.watch.writeTimeoutSeconds", "must be 1 to 3600 seconds")
        }
        if !(1...10_000_000).contains(api.watch.maxEventsPerSecond) {
            throw ConfigurationError(key: "api.watch.maxEventsPerSecond", "must be 1 to 10000000")
        }
        if !(65_536...(1 << 40)).contains(api.watch.maxBytesPerSecond) {
            throw ConfigurationError(key: "api.watch.maxBytesPerSecond", "must be 65536 to 1099511627776")
        }
        for cidr in dns.transferAllow where CIDR(cidr) == nil {
            throw ConfigurationError(key: "dns.transfer.allow", "'\(cidr.prefix(64))' is not a CIDR such as 10.0.0.0/8 or fd00::/8")
        }
        if (dns.transferKeyName != nil || dns.transferKeySecret != nil) && dns.transferKey == nil {
            throw ConfigurationError(
                key: "dns.transfer.key", "needs a name (a DNS name) and a secret of 16 to 512 bytes in base64, as tsig-keygen prints")
        }
        for name in dns.nameServers where DNSName(name).map({ $0.labels.isEmpty }) ?? true {
            throw ConfigurationError(key: "dns.nameServers", "'\(name.prefix(64))' is not a host name")
        }
        if dns.nameServers.count > 13 { throw ConfigurationError(key: "dns.nameServers", "lists at most 13 names") }
        for (zone, cidrs) in dns.availabilityZones {
            guard !zone.isEmpty, zone.utf8.count <= 255, !cidrs.isEmpty else {
                throw ConfigurationError(key: "dns.availabilityZones", "each zone needs a name and at least one CIDR")
            }
            for cidr in cidrs where CIDR(cidr) == nil {
                throw ConfigurationError(
                    key: "dns.availabilityZones.\(zone.prefix(64))", "'\(cidr.prefix(64))' is not a CIDR such as 10.0.0.0/8 or fd00::/8")
            }
        }
        if networks.count + dns.availabilityZones.count > 64 {
            throw ConfigurationError(key: "dns.availabilityZones", "networks and availability zones together are at most 64")
        }
        for target in dns.notify where DNSNotifier.Target(target) == nil {
            throw ConfigurationError(
                key: "dns.transfer.notify", "'\(target.prefix(64))' is not HOST:PORT with an IP address (or [IPv6]:PORT)")
        }
        if dataDir.isEmpty && store == .sqlite { throw ConfigurationError(key: "dataDir", "must not be empty") }
        if !(10...60_000).contains(cluster.pollMilliseconds) {
            throw ConfigurationError(key: "cluster.pollMilliseconds", "must be between 10 and 60000")
        }
        if cluster.logRetentionSeconds < 60 { throw ConfigurationError(key: "cluster.logRetentionSeconds", "must be at least 60") }
        if case .postgres(let url) = store {
            do { _ = try PostgresLocation.parse(url) } catch { throw ConfigurationError(key: "store", "\(error)") }
        }
        if account.count != 12 || !account.allSatisfy(\.isNumber) {
            throw ConfigurationError(key: "account", "must be 12 digits, not '\(account)'")
        }
        if region.isEmpty { throw ConfigurationError(key: "region", "must not be empty") }
        guard let regionSet = RegionSet(regions) else {
            throw ConfigurationError(
                key: "regions", "must list region names (lower-case letters, digits, hyphens) or prefixes ending in '*'")
        }
        if !regionSet.contains(region) { throw ConfigurationError(key: "region", "'\(region)' is not one of the accepted regions") }
        if networks.isEmpty { throw ConfigurationError(key: "networks", "must name at least one network") }
        for (name, cidrs) in networks where cidrs.isEmpty {
            throw ConfigurationError(key: "networks.\(name)", "must list at least one CIDR")
        }
        if !["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) {
            throw ConfigurationError(key: "logLevel", "must be one of trace, debug, info, notice, warning, error, critical")
        }
        let limitValues = [
            ("limits.namespacesPerRegion", limits.namespacesPerRegion), ("limits.instancesPerNamespace", limits.instancesPerNamespace),
            ("limits.instancesPerService", limits.instancesPerService), ("limits.tagsPerResource", limits.tagsPerResource),
            ("limits.customAttributesPerInstance", limits.customAttributesPerInstance),
            ("limits.attributeCharactersPerInstance", limits.attributeCharactersPerInstance),
            ("limits.serviceAttributesPerService", limits.serviceAttributesPerService),
            ("limits.operationsRetained", limits.operationsRetained),
        ]
        for (key, value) in limitValues where value < 1 { throw ConfigurationError(key: key, "must be at least 1") }
        for (id, secret) in accessKeys where id.isEmpty || secret.count < 16 || id.contains("/") {
            throw ConfigurationError(key: "accessKeys", "need an id without '/' and a secret of at least 16 characters (id '\(id)')")
        }
        var seenKeys = Set(accessKeys.keys)
        var seenNames = Set<String>()
        for (index, principal) in principals.enumerated() {
            let key = "principals[\(index)]"
            if principal.name.isEmpty || principal.name.contains(where: { $0 == " " || $0 == "/" }) {
                throw ConfigurationError(key: "\(key).name", "must be a name without spaces or '/'")
            }
            if !seenNames.insert(principal.name).inserted {
                throw ConfigurationError(key: "\(key).name", "'\(principal.name)' is used twice")
            }
            if principal.accessKeys.isEmpty { throw ConfigurationError(key: "\(key).accessKeys", "must list at least one {id, secret}") }
            for (id, secret) in principal.accessKeys {
                if id.isEmpty || secret.count < 16 || id.contains("/") {
                    throw ConfigurationError(
                        key: "\(key).accessKeys", "need an id without '/' and a secret of at least 16 characters (id '\(id)')")
                }
                if !seenKeys.insert(id).inserted {
                    throw ConfigurationError(key: "\(key).accessKeys", "access key '\(id)' is configured twice")
                }
            }
            if principal.policies.isEmpty { throw ConfigurationError(key: "\(key).policies", "must hold at least one policy") }
        }
        for (name, rate) in [
            ("discoverInstances", throttling.discoverInstances), ("discoverInstancesRevision", throttling.discoverInstancesRevision),
            ("controlPlane", throttling.controlPlane),
        ] where rate.burst < 1 || rate.perSecond <= 0 {
            throw ConfigurationError(key: "throttling.\(name)", "needs burst ≥ 1 and perSecond > 0")
        }
        if audit.retentionDays < 0 { throw ConfigurationError(key: "audit.retentionDays", "must be 0 (forever) or more") }
        if (api.tlsCertificate == nil) != (api.tlsKey == nil) {
            throw ConfigurationError(key: "api.tls", "needs both certificate and key")
        }
        for (key, path) in [("api.tls.certificate", api.tlsCertificate), ("api.tls.key", api.tlsKey)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw ConfigurationError(key: key, "cannot read \(path)")
            }
        }
        if dev && !Self.isLoopback(api.host) {
            throw ConfigurationError(key: "api.host", "must be a loopback address in --dev mode, not \(api.host)")
        }
        if dns.enabled {
            if !(0...65535).contains(dns.port) { throw ConfigurationError(key: "dns.port", "must be 0 to 65535, not \(dns.port)") }
            let hosts = dns.hosts.required + dns.hosts.optional
            if hosts.isEmpty { throw ConfigurationError(key: "dns.host", "must name at least one address") }
            if dev, let outside = hosts.first(where: { !Self.isLoopback($0) }) {
                throw ConfigurationError(key: "dns.host", "must be loopback addresses in --dev mode, not \(outside)")
            }
        }
        if health.interval < 1 { throw ConfigurationError(key: "health.interval", "must be at least 1 second, not \(health.interval)") }
        if !(1...1000).contains(health.historySize) { throw ConfigurationError(key: "health.historySize", "must be 1 to 1000") }
        if health.flapTransitions < 0 { throw ConfigurationError(key: "health.flapTransitions", "must be 0 (off) or more") }
        if health.flapWindowSeconds <= 0 { throw ConfigurationError(key: "health.flapWindowSeconds", "must be positive") }
        if !(1...100).contains(dns.maxAnswers) { throw ConfigurationError(key: "dns.maxAnswers", "must be 1 to 100") }
        if dns.rateLimitPerSecond < 0 { throw ConfigurationError(key: "dns.rateLimit.responsesPerSecond", "must be 0 (off) or more") }
        if !(0...10).contains(dns.rateLimitSlip) { throw ConfigurationError(key: "dns.rateLimit.slip", "must be 0 to 10") }
        if !(512...4096).contains(dns.ednsPayloadSize) { throw ConfigurationError(key: "dns.ednsPayloadSize", "must be 512 to 4096") }
        if DNSName(dns.serverName) == nil || dns.serverName.isEmpty {
            throw ConfigurationError(key: "dns.serverName", "must be a domain name, not '\(dns.serverName)'")
        }
        if DNSName(dns.hostmaster) == nil || dns.hostmaster.isEmpty {
            throw ConfigurationError(key: "dns.hostmaster", "must be a domain name, not '\(dns.hostmaster)'")
        }
        for (name, cidrs) in networks {
            for cidr in cidrs where CIDR(cidr) == nil {
                throw ConfigurationError(key: "networks.\(name)", "'\(cidr)' is not a CIDR such as 10.0.0.0/8 or fd00::/8")
            }
        }
    }

    /// `localhost`, `::1` or an IPv4 literal in 127.0.0.0/8; a name that merely starts with `127.` is not.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        guard let v4 = IPAddress.ipv4(host) else { return false }
        return v4.first == 127
    }
}

public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var key: String
    public var problem: String
    public init(key: String, _ problem: String) {
        self.key = key
        self.problem = problem
    }
    public var description: String { "configuration: \(key) \(problem)" }
}
