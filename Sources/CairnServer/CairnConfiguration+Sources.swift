import CairnAPI
import CairnCore
import CloudMapWire
import Foundation
import Yams

/// Filling the configuration from a YAML file and from `CAIRN_*` environment variables.
extension CairnConfiguration {
    /// Applies a YAML config file. Unknown keys are errors, so a typo never passes silently.
    public mutating func apply(yaml text: String, source: String) throws(ConfigurationError) {
        let node: Any?
        do { node = try Yams.load(yaml: text) } catch {
            throw ConfigurationError(key: source, "is not valid YAML: \(error)")
        }
        guard let root = node as? [String: Any] else {
            if node == nil { return }
            throw ConfigurationError(key: source, "must be a mapping of keys to values")
        }
        for (key, value) in root {
            switch key {
            case "dataDir": dataDir = try string(value, key)
            case "store":
                let text = try string(value, key)
                guard let kind = StoreKind(text) else { throw ConfigurationError(key: key, StoreKind.expected) }
                store = kind
            case "dev": dev = try bool(value, key)
            case "region": region = try string(value, key)
            case "regions":
                guard let list = value as? [Any], let names = list as? [String] else {
                    throw ConfigurationError(key: key, "must be a list of region names")
                }
                regions = names
            case "account": account = try string(value, key)
            case "logLevel": logLevel = try string(value, key)
            case "api":
                for (sub, v) in try mapping(value, key) {
                    switch sub {
                    case "host": api.host = try string(v, "api.host")
                    case "port": api.port = try int(v, "api.port")
                    case "maxBodyBytes": api.maxBodyBytes = try int(v, "api.maxBodyBytes")
                    case "maxConnections": api.maxConnections = try int(v, "api.maxConnections")
                    case "timeouts":
                        for (t, tv) in try mapping(v, "api.timeouts") {
                            let full = "api.timeouts.\(t)"
                            switch t {
                            case "idleSeconds": api.timeouts.idleSeconds = try double(tv, full)
                            case "bodySeconds": api.timeouts.bodySeconds = try double(tv, full)
                            case "drainSeconds": api.timeouts.drainSeconds = try double(tv, full)
                            default: throw ConfigurationError(key: full, "is not a known key")
                            }
                        }
                    case "watch":
                        for (t, tv) in try mapping(v, "api.watch") {
                            let full = "api.watch.\(t)"
                            switch t {
                            case "maxWaiting": api.watch.maxWaiting = try int(tv, full)
                            case "maxStreams": api.watch.maxStreams = try int(tv, full)
                            case "writeTimeoutSeconds": api.watch.writeTimeoutSeconds = try double(tv, full)
                            case "maxEventsPerSecond": api.watch.maxEventsPerSecond = try int(tv, full)
                            case "maxBytesPerSecond": api.watch.maxBytesPerSecond = try int(tv, full)
                            default: throw ConfigurationError(key: full, "is not a known key")
                            }
                        }
                    case "tls":
                        for (t, tv) in try mapping(v, "api.tls") {
                            switch t {
                            case "certificate": api.tlsCertificate = try string(tv, "api.tls.certificate")
                            case "key": api.tlsKey = try string(tv, "api.tls.key")
                            default: throw ConfigurationError(key: "api.tls.\(t)", "is not a known key")
                            }
                        }
                    default: throw ConfigurationError(key: "api.\(sub)", "is not a known key")
                    }
                }
            case "accessKeys":
                accessKeys.merge(try keyList(value, key)) { $1 }
            case "principals":
                guard let list = value as? [Any] else { throw ConfigurationError(key: key, "must be a list of principals") }
                for (index, item) in list.enumerated() {
                    principals.append(try principal(item, "principals[\(index)]", source: source))
                }
            case "throttling":
                for (sub, v) in try mapping(value, key) {
                    let full = "throttling.\(sub)"
                    switch sub {
                    case "enabled": throttling.enabled = try bool(v, full)
                    case "discoverInstances": throttling.discoverInstances = try rate(v, full)
                    case "discoverInstancesRevision": throttling.discoverInstancesRevision = try rate(v, full)
                    case "controlPlane": throttling.controlPlane = try rate(v, full)
                    default: throw ConfigurationError(key: full, "is not a known key")
                    }
                }
            case "cluster":
                for (sub, v) in try mapping(value, key) {
                    let full = "cluster.\(sub)"
                    switch sub {
                    case "pollMilliseconds": cluster.pollMilliseconds = try int(v, full)
                    case "logRetentionSeconds": cluster.logRetentionSeconds = try int(v, full)
                    default: throw ConfigurationError(key: full, "is not a known key")
                    }
                }
            case "audit":
                for (sub, v) in try mapping(value, key) {
                    let full = "audit.\(sub)"
                    switch sub {
                    case "reads": audit.reads = try bool(v, full)
                    case "discover": audit.discover = try bool(v, full)
                    case "retentionDays": audit.retentionDays = try int(v, full)
                    default: throw ConfigurationError(key: full, "is not a known key")
                    }
                }
            case "dns":
                for (sub, v) in try mapping(value, key) {
                    let full = "dns.\(sub)"
                    switch sub {
                    case "enabled": dns.enabled = try bool(v, full)
                    case "host": dns.host = try string(v, full)
                    case "port": dns.port = try int(v, full)
                    case "maxAnswers": dns.maxAnswers = try int(v, full)
                    case "serverName": dns.serverName = try string(v, full)
                    case "hostmaster": dns.hostmaster = try string(v, full)
                    case "rateLimit":
                        for (r, rv) in try mapping(v, full) {
                            switch r {
                            case "responsesPerSecond": dns.rateLimitPerSecond = try double(rv, "\(full).\(r)")
                            case "slip": dns.rateLimitSlip = try int(rv, "\(full).\(r)")
                            default: throw ConfigurationError(key: "\(full).\(r)", "is not a known key")
                            }
                        }
                    case "ednsPayloadSize": dns.ednsPayloadSize = try int(v, full)
                    case "queryLog": dns.queryLog = try bool(v, full)
                    case "nameServers":
                        guard let list = v as? [Any] else { throw ConfigurationError(key: full, "must be a list of host names") }
                        dns.nameServers = try list.map { (item: Any) throws(ConfigurationError) -> String in try string(item, full) }
                    case "availabilityZones":
                        var zones: [String: [String]] = [:]
                        for (zone, zv) in try mapping(v, full) {
                            guard let list = zv as? [Any] else {
                                throw ConfigurationError(key: "\(full).\(zone)", "must be a list of CIDRs")
                            }
                            zones[zone] = try list.map { (item: Any) throws(ConfigurationError) -> String in
                                try string(item, "\(full).\(zone)")
                            }
                        }
                        dns.availabilityZones = zones
                    case "transfer":
                        for (t, tv) in try mapping(v, full) {
                            let key = "\(full).\(t)"
                            if t == "key" {
                                for (k, kv) in try mapping(tv, key) {
                                    switch k {
                                    case "name": dns.transferKeyName = try string(kv, "\(key).name")
                                    case "secret": dns.transferKeySecret = try string(kv, "\(key).secret")
                                    case "algorithm":
                                        guard try string(kv, "\(key).algorithm").lowercased() == "hmac-sha256" else {
                                            throw ConfigurationError(key: "\(key).algorithm", "must be hmac-sha256")
                                        }
                                    default: throw ConfigurationError(key: "\(key).\(k)", "is not a known key")
                                    }
                                }
                                continue
                            }
                            guard let list = tv as? [Any] else { throw ConfigurationError(key: key, "must be a list") }
                            let items = try list.map { (item: Any) throws(ConfigurationError) -> String in try string(item, key) }
                            switch t {
                            case "allow": dns.transferAllow = items
                            case "notify": dns.notify = items
                            default: throw ConfigurationError(key: key, "is not a known key")
                            }
                        }
                    default: throw ConfigurationError(key: full, "is not a known key")
                    }
                }
            case "health":
                for (sub, v) in try mapping(value, key) {
                    let full = "health.\(sub)"
                    switch sub {
                    case "enabled": health.enabled = try bool(v, full)
                    case "interval": health.interval = try double(v, full)
                    case "historySize": health.historySize = try int(v, full)
                    case "flapTransitions": health.flapTransitions = try int(v, full)
                    case "flapWindowSeconds": health.flapWindowSeconds = try double(v, full)
                    case "allowLoopbackTargets": health.allowLoopbackTargets = try bool(v, full)
                    default: throw ConfigurationError(key: full, "is not a known key")
                    }
                }
            case "networks":
                var result: [String: [String]] = [:]
                for (name, v) in try mapping(value, key) {
                    guard let list = v as? [Any] else { throw ConfigurationError(key: "networks.\(name)", "must be a list of CIDRs") }
                    result[name] = try list.map { (item: Any) throws(ConfigurationError) -> String in try string(item, "networks.\(name)") }
                }
                networks = result
            case "limits":
                for (sub, v) in try mapping(value, key) {
                    let n = try int(v, "limits.\(sub)")
                    switch sub {
                    case "namespacesPerRegion": limits.namespacesPerRegion = n
                    case "instancesPerNamespace": limits.instancesPerNamespace = n
                    case "instancesPerService": limits.instancesPerService = n
                    case "customAttributesPerInstance": limits.customAttributesPerInstance = n
                    case "attributeCharactersPerInstance": limits.attributeCharactersPerInstance = n
                    case "tagsPerResource": limits.tagsPerResource = n
                    case "serviceAttributesPerService": limits.serviceAttributesPerService = n
                    case "operationsRetained": limits.operationsRetained = n
                    default: throw ConfigurationError(key: "limits.\(sub)", "is not a known key")
                    }
                }
            case "compatibility":
                for (sub, v) in try mapping(value, key) {
                    guard sub == "strict" else { throw ConfigurationError(key: "compatibility.\(sub)", "is not a known key") }
                    strict = try bool(v, "compatibility.strict")
                }
            default:
                throw ConfigurationError(key: key, "is not a known key")
            }
        }
    }

    /// Applies `CAIRN_DATA_DIR`, `CAIRN_STORE`, `CAIRN_API_HOST`, `CAIRN_API_PORT`, `CAIRN_DNS_HOST`, `CAIRN_DNS_PORT`,
    /// `CAIRN_DEV`, `CAIRN_REGION`, `CAIRN_LOG_LEVEL`.
    public mutating func apply(environment: [String: String]) throws(ConfigurationError) {
        if let v = environment["CAIRN_DATA_DIR"] { dataDir = v }
        if let v = environment["CAIRN_STORE"] {
            guard let kind = StoreKind(v) else { throw ConfigurationError(key: "CAIRN_STORE", StoreKind.expected) }
            store = kind
        }
        if let v = environment["CAIRN_API_HOST"] { api.host = v }
        if let v = environment["CAIRN_API_PORT"] {
            guard let port = Int(v) else { throw ConfigurationError(key: "CAIRN_API_PORT", "must be a number, not '\(v)'") }
            api.port = port
        }
        if let v = environment["CAIRN_DEV"] { dev = try bool(v, "CAIRN_DEV") }
        if let v = environment["CAIRN_DNS_HOST"] { dns.host = v }
        if let v = environment["CAIRN_DNS_PORT"] {
            guard let port = Int(v) else { throw ConfigurationError(key: "CAIRN_DNS_PORT", "must be a number, not '\(v)'") }
            dns.port = port
        }
        if let v = environment["CAIRN_REGION"] { region = v }
        if let v = environment["CAIRN_REGIONS"] { regions = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        if let v = environment["CAIRN_HEALTH_INTERVAL"] {
            guard let seconds = Double(v) else { throw ConfigurationError(key: "CAIRN_HEALTH_INTERVAL", "must be a number, not '\(v)'") }
            health.interval = seconds
        }
        if let v = environment["CAIRN_LOG_LEVEL"] { logLevel = v }
    }

    private func keyList(_ value: Any, _ key: String) throws(ConfigurationError) -> [String: String] {
        guard let list = value as? [Any] else { throw ConfigurationError(key: key, "must be a list of {id, secret}") }
        var keys: [String: String] = [:]
        for item in list {
            let entry = try mapping(item, key)
            guard let id = entry["id"] as? String, let secret = entry["secret"] as? String, entry.count == 2 else {
                throw ConfigurationError(key: key, "each entry needs exactly 'id' and 'secret'")
            }
            keys[id] = secret
        }
        return keys
    }

    private func rate(_ value: Any, _ key: String) throws(ConfigurationError) -> Throttle.Rate {
        var rate = Throttle.Rate(burst: 0, perSecond: 0)
        for (sub, v) in try mapping(value, key) {
            switch sub {
            case "burst": rate.burst = try double(v, "\(key).burst")
            case "perSecond": rate.perSecond = try double(v, "\(key).perSecond")
            default: throw ConfigurationError(key: "\(key).\(sub)", "is not a known key (burst, perSecond)")
            }
        }
        return rate
    }

    /// `{name, accessKeys: [{id, secret}], policies: [document | JSON text | built-in name], policyFiles: [path]}`.
    private func principal(_ value: Any, _ key: String, source: String) throws(ConfigurationError) -> PrincipalEntry {
        var entry = PrincipalEntry(name: "", accessKeys: [:], policies: [])
        for (sub, v) in try mapping(value, key) {
            let full = "\(key).\(sub)"
            switch sub {
            case "name": entry.name = try string(v, full)
            case "accessKeys": entry.accessKeys = try keyList(v, full)
            case "policies":
                guard let list = v as? [Any] else { throw ConfigurationError(key: full, "must be a list of policy documents") }
                for (index, document) in list.enumerated() {
                    entry.policies.append(try policy(document, "\(full)[\(index)]"))
                }
            case "policyFiles":
                guard let list = v as? [Any] else { throw ConfigurationError(key: full, "must be a list of paths") }
                for (index, item) in list.enumerated() {
                    var path = try string(item, "\(full)[\(index)]")
                    if !path.hasPrefix("/"), source.hasPrefix("/") {
                        path = ((source as NSString).deletingLastPathComponent as NSString).appendingPathComponent(path)
                    }
                    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                        throw ConfigurationError(key: "\(full)[\(index)]", "cannot read \(path)")
                    }
                    entry.policies.append(try policy(text, "\(full)[\(index)] (\(path))"))
                }
            default: throw ConfigurationError(key: full, "is not a known key (name, accessKeys, policies, policyFiles)")
            }
        }
        return entry
    }

    /// A policy given as a YAML mapping, as JSON text, or by the name of a built-in policy.
    private func policy(_ value: Any, _ key: String) throws(ConfigurationError) -> Policy {
        let document: JSONValue
        if let text = value as? String {
            if let builtIn = BuiltInPolicies.named[text] { return builtIn }
            do { document = try JSONValue.parse(Array(text.utf8)) } catch {
                throw ConfigurationError(
                    key: key, "is neither a built-in policy (\(BuiltInPolicies.named.keys.sorted().joined(separator: ", "))) nor JSON")
            }
        } else {
            document = Self.json(value)
        }
        do { return try Policy.parse(document) } catch { throw ConfigurationError(key: key, error.message) }
    }

    /// YAML values as JSON values (an unquoted `2012-10-17` arrives as a date and goes back to that text).
    static func json(_ value: Any) -> JSONValue {
        switch value {
        case let s as String: return .string(s)
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(Int64(i))
        case let d as Double: return .double(d)
        case let date as Date:
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd"
            return .string(formatter.string(from: date))
        case let list as [Any]: return .array(list.map(json))
        case let map as [String: Any]: return .object(map.mapValues(json))
        case let map as [AnyHashable: Any]:
            return .object(Dictionary(map.map { ("\($0.key)", json($0.value)) }, uniquingKeysWith: { $1 }))
        default: return .null
        }
    }

    private func string(_ value: Any, _ key: String) throws(ConfigurationError) -> String {
        if let s = value as? String { return s }
        if let i = value as? Int { return String(i) }
        throw ConfigurationError(key: key, "must be a string")
    }

    private func int(_ value: Any, _ key: String) throws(ConfigurationError) -> Int {
        if let i = value as? Int { return i }
        if let s = value as? String, let i = Int(s) { return i }
        throw ConfigurationError(key: key, "must be a whole number")
    }

    private func double(_ value: Any, _ key: String) throws(ConfigurationError) -> Double {
        if let d = value as? Double { return d }
        if let i = value as? Int { return Double(i) }
        if let s = value as? String, let d = Double(s) { return d }
        throw ConfigurationError(key: key, "must be a number")
    }

    private func bool(_ value: Any, _ key: String) throws(ConfigurationError) -> Bool {
        if let b = value as? Bool { return b }
        if let s = value as? String {
            switch s.lowercased() {
            case "1", "true", "yes", "on": return true
            case "0", "false", "no", "off": return false
            default: break
            }
        }
        throw ConfigurationError(key: key, "must be true or false")
    }

    private func mapping(_ value: Any, _ key: String) throws(ConfigurationError) -> [String: Any] {
        guard let m = value as? [String: Any] else { throw ConfigurationError(key: key, "must be a mapping") }
        return m
    }
}
