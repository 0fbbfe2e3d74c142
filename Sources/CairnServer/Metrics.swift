import CairnAPI
import CairnCore
import DNSWire
import Foundation
import Hummingbird
import NIOCore
import Prometheus
import Synchronization

/// Cairn's metrics in Prometheus form (swift-prometheus). Label sets known in advance are created once, so the DNS
/// path costs an atomic increment and one histogram observation per query.
final class PrometheusTelemetry: Telemetry {
    let registry = PrometheusCollectorRegistry()

    static let latencyBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(2.5),
    ]
    /// Query types and rcodes counted by name, in the order of `dnsCounters`' rows and columns; the rest is "other".
    static let dnsTypes: [(UInt16, String)] = [(1, "A"), (2, "NS"), (5, "CNAME"), (6, "SOA"), (28, "AAAA"), (33, "SRV"), (255, "ANY")]
    static let rcodes: [String] = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"]

    /// One counter per (type, rcode): row = index in `dnsTypes` (its count: other), column = rcode (6: other); a
    /// query finds its counter by arithmetic, without building a key.
    private let dnsCounters: [Counter]
    private let dnsLatency: DurationHistogram
    private let apiLatency: [String: DurationHistogram]
    /// Successful calls per operation, made up front so the common case takes no lock and builds no key.
    private let apiSuccesses: [String: Counter]
    private let apiCounters = Mutex<[String: Counter]>([:])
    private let probeCounters: [String: Counter]
    private let probeLatency: DurationHistogram
    private let commitLatency: DurationHistogram
    private let commitEntries: ValueHistogram
    private let commitAudit: ValueHistogram
    private let speculationsKept: Counter
    private let lockHeld: DurationHistogram
    private let speculationsDecidedAgain: Counter

    init(operations: [String]) {
        var dns: [Counter] = []
        for type in Self.dnsTypes.map(\.1) + ["other"] {
            for rcode in Self.rcodes + ["other"] {
                dns.append(
                    registry.makeCounter(
                        descriptor: MetricNameDescriptor(
                            namespace: "cairn", subsystem: "dns", metricName: "queries", unitName: "total", helpText: "DNS queries answered"
                        ),
                        labels: [("type", type), ("rcode", rcode)]))
            }
        }
        dnsCounters = dns
        dnsLatency = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "cairn", subsystem: "dns", metricName: "query_duration", unitName: "seconds",
                helpText: "Time to answer a DNS query (parse, look up, encode)"),
            labels: [], buckets: Self.latencyBuckets)
        var api: [String: DurationHistogram] = [:]
        for operation in operations + ["unknown"] {
            api[operation] = registry.makeDurationHistogram(
                descriptor: MetricNameDescriptor(
                    namespace: "cairn", subsystem: "api", metricName: "request_duration", unitName: "seconds",
                    helpText: "Time to answer an API call"),
                labels: [("operation", operation)], buckets: Self.latencyBuckets)
        }
        apiLatency = api
        var successes: [String: Counter] = [:]
        for operation in operations + ["unknown"] { successes[operation] = Self.apiCounter(registry, operation: operation, code: "OK") }
        apiSuccesses = successes
        var probes: [String: Counter] = [:]
        for type in ["HTTP", "HTTPS", "TCP"] {
            for result in ["healthy", "unhealthy"] {
                probes["\(type)|\(result)"] = registry.makeCounter(
                    descriptor: MetricNameDescriptor(
                        namespace: "cairn", subsystem: "health", metricName: "probes", unitName: "total", helpText: "Health probes finished"
                    ),
                    labels: [("type", type), ("result", result)])
            }
        }
        probeCounters = probes
        probeLatency = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "cairn", subsystem: "health", metricName: "probe_duration", unitName: "seconds", helpText: "Health probe time"),
            labels: [], buckets: Self.latencyBuckets)
        commitLatency = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "cairn", subsystem: "store", metricName: "commit_duration", unitName: "seconds",
                helpText: "Durable store transactions (group commits)"),
            labels: [], buckets: Self.latencyBuckets)
        commitEntries = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "cairn", subsystem: "store", metricName: "commit_batch", unitName: "entries",
                helpText: "Change-log entries per transaction"),
            labels: [], buckets: [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000])
        commitAudit = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "cairn", subsystem: "store", metricName: "commit_audit", unitName: "records",
                helpText: "Audit records per transaction"),
            labels: [], buckets: [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000])
        let speculations = MetricNameDescriptor(
            namespace: "cairn", subsystem: "writer", metricName: "speculations", unitName: "total",
            helpText: "Cluster batches decided ahead of the store's lock (proposed or awaiting it): kept, or decided again under it")
        speculationsKept = registry.makeCounter(descriptor: speculations, labels: [("outcome", "kept")])
        speculationsDecidedAgain = registry.makeCounter(descriptor: speculations, labels: [("outcome", "decided_again")])
        lockHeld = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "cairn", subsystem: "store", metricName: "lock_held", unitName: "seconds",
                helpText: "Cluster: time a batch decided again under the store's write lock held it, from granted to the commit answered"),
            labels: [], buckets: Self.latencyBuckets)
    }

    static func apiCounter(_ registry: PrometheusCollectorRegistry, operation: String, code: String) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "cairn", subsystem: "api", metricName: "requests", unitName: "total",
                helpText: "API calls by operation and result (OK or the error code)"),
            labels: [("operation", operation), ("code", code)])
    }

    func apiRequest(operation: String, errorCode: String?, seconds: Double) {
        if errorCode == nil, let counter = apiSuccesses[operation] {
            counter.increment()
        } else {
            let code = errorCode ?? "OK"
            let key = "\(operation)|\(code)"
            let registry = self.registry
            apiCounters.withLock { counters in
                if let counter = counters[key] { return counter }
                let counter = Self.apiCounter(registry, operation: operation, code: code)
                counters[key] = counter
                return counter
            }.increment()
        }
        (apiLatency[operation] ?? apiLatency["unknown"])?.recordNanoseconds(Int64(seconds * 1e9))
    }

    func dnsQuery(type: UInt16, rcode: UInt8, seconds: Double) {
        let row = Self.dnsTypes.firstIndex { $0.0 == type } ?? Self.dnsTypes.count
        let column = Int(min(rcode, UInt8(Self.rcodes.count)))
        dnsCounters[row * (Self.rcodes.count + 1) + column].increment()
        dnsLatency.recordNanoseconds(Int64(seconds * 1e9))
    }

    func healthProbe(type: String, healthy: Bool, seconds: Double) {
        probeCounters["\(type)|\(healthy ? "healthy" : "unhealthy")"]?.increment()
        probeLatency.recordNanoseconds(Int64(seconds * 1e9))
    }

    func storeCommit(seconds: Double, entries: Int, auditRecords: Int) {
        commitLatency.recordNanoseconds(Int64(seconds * 1e9))
        commitEntries.record(Double(entries))
        commitAudit.record(Double(auditRecords))
    }

    func speculation(kept: Bool) {
        (kept ? speculationsKept : speculationsDecidedAgain).increment()
    }

    func storeLockHeld(seconds: Double) {
        lockHeld.recordNanoseconds(Int64(seconds * 1e9))
    }

    /// The exposition: the collectors, then what is read from the snapshot at scrape time (instances by namespace
    /// and health, throttled requests, the change-log sequence).
    func render(
        state: RegistryState, throttledRequests: Int, membership: ClusterMembership.View? = nil,
        watching: (waiting: Int, streams: Int, cutOff: Int) = (0, 0, 0)
    ) -> [UInt8] {
        var out = registry.emitToBuffer()
        var text = "# HELP cairn_instances Registered instances by namespace and reported health\n# TYPE cairn_instances gauge\n"
        var counts: [String: [String: Int]] = [:]
        var names: [String: (String, String)] = [:]
        for service in state.services.values {
            guard let namespace = state.namespaces[service.namespaceId] else { continue }
            names[namespace.id] = (namespace.name, namespace.region)
            for instance in state.instances(of: service.id).values {
                counts[namespace.id, default: [:]][Discovery.reportedHealth(instance, in: service).rawValue, default: 0] += 1
            }
        }
        for (id, byHealth) in counts.sorted(by: { $0.key < $1.key }) {
            let (name, region) = names[id] ?? ("", "")
            for (health, n) in byHealth.sorted(by: { $0.key < $1.key }) {
                text +=
                    "cairn_instances{namespace=\"\(Self.escape(name))\",namespace_id=\"\(id)\",region=\"\(Self.escape(region))\",health=\"\(health)\"} \(n)\n"
            }
        }
        text += "# HELP cairn_throttled_requests_total Requests refused by throttling\n# TYPE cairn_throttled_requests_total counter\n"
        text += "cairn_throttled_requests_total \(throttledRequests)\n"
        text += "# HELP cairn_change_log_sequence The change log's sequence number\n# TYPE cairn_change_log_sequence gauge\n"
        text += "cairn_change_log_sequence \(state.sequence)\n"
        text += "# HELP cairn_waiting_calls Long polls, watch streams and console live views waiting for a change"
        text += " (and the health checker's one wait)\n# TYPE cairn_waiting_calls gauge\n"
        text += "cairn_waiting_calls \(watching.waiting)\n"
        text += "# HELP cairn_watch_streams Watch streams open\n# TYPE cairn_watch_streams gauge\n"
        text += "cairn_watch_streams \(watching.streams)\n"
        text += "# HELP cairn_watch_cutoffs_total Watch streams closed because their client stopped reading\n"
        text += "# TYPE cairn_watch_cutoffs_total counter\ncairn_watch_cutoffs_total \(watching.cutOff)\n"
        if let membership {
            let lag = membership.databaseRevision > state.sequence ? membership.databaseRevision - state.sequence : 0
            text += "# HELP cairn_cluster_database_revision The cluster database's revision when this node last read it\n"
            text += "# TYPE cairn_cluster_database_revision gauge\ncairn_cluster_database_revision \(membership.databaseRevision)\n"
            text += "# HELP cairn_cluster_lag_revisions Changes in the database this node has not applied yet\n"
            text += "# TYPE cairn_cluster_lag_revisions gauge\ncairn_cluster_lag_revisions \(lag)\n"
            text += "# HELP cairn_cluster_live_nodes Nodes whose heartbeat the database saw within the member timeout\n"
            text += "# TYPE cairn_cluster_live_nodes gauge\ncairn_cluster_live_nodes \(membership.live.count)\n"
        }
        out += Array(text.utf8)
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(
            of: "\n", with: "\\n")
    }
}

enum MetricsRoute {
    /// `GET /metrics`: Prometheus text format 0.0.4. Like /healthz it needs no signature (scrapers do not sign);
    /// bind the API to a trusted network or put the scrape behind a proxy if the figures are sensitive.
    static func add(to router: Router<CairnRequestContext>, telemetry: PrometheusTelemetry, api: CloudMapAPI) {
        router.get("/metrics") { _, _ -> Response in
            let body = telemetry.render(
                state: api.registry.snapshot.state, throttledRequests: api.throttle.refusedCount, membership: api.registry.membership?.view,
                watching: (api.registry.watchers.count, api.watchStreams.count, api.watchStreams.cutOffCount))
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }
}
