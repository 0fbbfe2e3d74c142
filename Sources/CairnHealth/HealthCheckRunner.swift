import CairnCore
import Foundation
import HeapModule
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Settings of Cairn's own health checking.
public struct HealthCheckConfiguration: Sendable {
    /// Seconds between two probes of one instance (Route 53: 30; Cairn's default 10, minimum 1).
    public var interval: Double
    public var damping: HealthThresholds.Damping?
    /// Probe results kept per instance for the probe-history route.
    public var historySize: Int

    /// Whether instances registered at loopback, link-local or unspecified addresses are probed. Off by default: a
    /// registrant could otherwise scan the Cairn host's own ports and read the answers from the probe history.
    public var allowLoopbackTargets: Bool

    public init(
        interval: Double = 10, damping: HealthThresholds.Damping? = nil, historySize: Int = 20, allowLoopbackTargets: Bool = false
    ) {
        self.allowLoopbackTargets = allowLoopbackTargets
        self.interval = interval
        self.damping = damping
        self.historySize = historySize
    }
}

/// Probes every instance of every service with a HealthCheckConfig, on its own schedule: first probes are spread
/// over the interval, probes run concurrently and never block anything else. Results pass through the threshold
/// state machine; only a change of the published status is written, through the registry like any write.
public final class HealthCheckRunner: Sendable {
    /// What the probe-history route shows for one instance.
    public struct History: Sendable {
        public var target: ProbeTarget
        public var status: HealthStatus
        public var damped: Bool
        public var probes: [ProbeRecord]
    }

    struct Tracked: Sendable {
        var target: ProbeTarget
        var thresholds = HealthThresholds()
        var history: [ProbeRecord] = []
        var inFlight = false
    }

    let registry: Registry
    let configuration: HealthCheckConfiguration
    let logger: Logger
    let group: any EventLoopGroup
    let tcp: TCPHealthProbe
    let http: HTTPHealthProbe
    let https: HTTPHealthProbe
    let telemetry: any Telemetry
    /// In a cluster: the live nodes, so this one probes only its share of the instances.
    let membership: ClusterMembership?
    private let tracked = Mutex<[String: Tracked]>([:])
    private let statistics = Mutex<(probes: Int, lagSum: Double, lagMax: Double)>((0, 0, 0))

    public init(
        registry: Registry, configuration: HealthCheckConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger, telemetry: any Telemetry = NoTelemetry(), membership: ClusterMembership? = nil
    ) throws {
        self.membership = membership
        self.telemetry = telemetry
        self.registry = registry
        self.configuration = configuration
        self.logger = logger
        self.group = group
        self.tcp = TCPHealthProbe()
        self.http = try HTTPHealthProbe(https: false)
        self.https = try HTTPHealthProbe(https: true)
    }

    /// The probe history of one instance, if it is being checked.
    public func history(serviceId: String, instanceId: String) -> History? {
        tracked.withLock { all in
            all["\(serviceId)/\(instanceId)"].map {
                History(target: $0.target, status: $0.thresholds.reported, damped: $0.thresholds.damped, probes: $0.history)
            }
        }
    }

    /// In a cluster, the live node that probes an instance this node does not (nil: this node probes it, or it is
    /// not checked). Probe histories stay in the memory of the node that probes.
    public func prober(serviceId: String, instanceId: String) -> String? {
        guard let membership else { return nil }
        let state = registry.snapshot.state
        guard let service = state.services[serviceId], let check = service.healthCheckConfig,
            let namespace = state.namespaces[service.namespaceId], let instance = state.instances(of: serviceId)[instanceId],
            Self.target(service: service, check: check, namespace: namespace, instance: instance) != nil
        else { return nil }
        let key = "\(serviceId)/\(instanceId)"
        let view = membership.view
        let owner = ClusterMembership.owner(of: key, among: view.live)
        return owner == view.node ? nil : owner
    }

    /// How many instances are being checked.
    public var checkedCount: Int { tracked.withLock { $0.count } }

    /// Probes done, and how late they started against their schedule (mean and worst, seconds), since start.
    public var lag: (probes: Int, meanSeconds: Double, maxSeconds: Double) {
        statistics.withLock { ($0.probes, $0.probes == 0 ? 0 : $0.lagSum / Double($0.probes), $0.lagMax) }
    }

    /// Every instance that should be probed now, from the registry's snapshot.
    static func targets(_ state: RegistryState) -> [String: ProbeTarget] {
        var result: [String: ProbeTarget] = [:]
        for service in state.services.values {
            guard let check = service.healthCheckConfig, let namespace = state.namespaces[service.namespaceId] else { continue }
            for instance in state.instances(of: service.id).values {
                if let target = target(service: service, check: check, namespace: namespace, instance: instance) {
                    result[target.key] = target
                }
            }
        }
        return result
    }

    /// What probing one instance means (nil: its service has no check, or it has no address and port).
    static func target(service: Service, check: HealthCheckConfig, namespace ns: Namespace, instance: Instance) -> ProbeTarget? {
        let a = instance.attributes
        guard let address = a["AWS_INSTANCE_IPV4"] ?? a["AWS_INSTANCE_IPV6"], let port = a["AWS_INSTANCE_PORT"].flatMap(Int.init)
        else { return nil }
        return ProbeTarget(
            serviceId: service.id, instanceId: instance.id, registeredAt: instance.registeredAt, type: check.type,
            path: check.resourcePath ?? "/", threshold: check.failureThreshold ?? 3, address: address, port: port,
            hostHeader: service.name == "." ? ns.name : "\(service.name).\(ns.name)")
    }

    /// A published status that differs from the registry's, to be written.
    struct Change: Sendable {
        var target: ProbeTarget
        var status: HealthStatus
        var detail: String
        /// The cluster membership term the deciding probe started in (nil on a single node).
        var term: UInt64?
    }

    /// Runs until the task is cancelled. Probes run on the event loops; changes of status are written one after
    /// another by a single consumer, through the registry like any write.
    public func run() async {
        let (changes, sink) = AsyncStream.makeStream(of: Change.self)
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                await self.schedule(changes: sink)
                sink.finish()
            }
            tasks.addTask {
                // Up to 64 writes in flight, so a burst of changes shares durable transactions (group commit).
                await withTaskGroup(of: Void.self) { writes in
                    var inFlight = 0
                    for await change in changes {
                        if inFlight >= 64 {
                            await writes.next()
                            inFlight -= 1
                        }
                        writes.addTask { await self.write(change) }
                        inFlight += 1
                    }
                }
            }
        }
    }

    func schedule(changes: AsyncStream<Change>.Continuation) async {
        let interval = Duration.milliseconds(Int64(max(1, configuration.interval) * 1000))
        var due = Heap<Due>()
        var lastSequence = UInt64.max
        var lastMembers = UInt64.max
        while !Task.isCancelled {
            let snapshot = registry.snapshot
            let members = membership?.view.version ?? 0
            if snapshot.state.sequence != lastSequence || members != lastMembers {
                lastSequence = snapshot.state.sequence
                lastMembers = members
                var wanted = Self.targets(snapshot.state)
                if let membership {
                    // Rendezvous hashing over the live nodes: a node that joins or dies moves only its own share.
                    wanted = wanted.filter { membership.owns($0.key) }
                }
                for target in reconcile(wanted) {
                    // Spread first probes over the interval by a hash of the instance, so thousands never fire together.
                    let offset = Double(abs(target.key.hashValue % 1000)) / 1000
                    due.insert(Due(at: ContinuousClock.now + interval * offset, key: target.key))
                }
            }
            let now = ContinuousClock.now
            var lateness = 0.0
            var worst = 0.0
            var started = 0
            while let next = due.min, next.at <= now {
                _ = due.removeMin()
                // Claim the target: gone (removed or replaced since scheduled) or still in flight means skip.
                let target = tracked.withLock { all -> (ProbeTarget, Bool)? in
                    guard let entry = all[next.key] else { return nil }
                    if entry.inFlight { return (entry.target, false) }
                    all[next.key]!.inFlight = true
                    return (entry.target, true)
                }
                guard let (target, claimed) = target else { continue }
                due.insert(Due(at: next.at + interval, key: next.key))
                guard claimed else { continue }
                let late = Double((now - next.at).components.attoseconds) / 1e18 + Double((now - next.at).components.seconds)
                lateness += late
                worst = max(worst, late)
                started += 1
                launch(target, changes: changes)
            }
            if started > 0 {
                statistics.withLock {
                    $0.probes += started
                    $0.lagSum += lateness
                    $0.lagMax = max($0.lagMax, worst)
                }
            }
            let wait = due.min.map { min($0.at - ContinuousClock.now, .milliseconds(50)) } ?? .milliseconds(50)
            try? await Task.sleep(for: max(wait, .milliseconds(1)))
        }
    }

    struct Due: Comparable, Sendable {
        var at: ContinuousClock.Instant
        var key: String
        static func < (a: Due, b: Due) -> Bool { a.at < b.at }
        static func == (a: Due, b: Due) -> Bool { a.at == b.at && a.key == b.key }
    }

    func probe(for type: HealthCheckType) -> any HealthProbe {
        switch type {
        case .TCP: return tcp
        case .HTTP: return http
        case .HTTPS: return https
        }
    }

    /// Starts one probe on an event loop; its result goes through the thresholds when it completes.
    func launch(_ target: ProbeTarget, changes: AsyncStream<Change>.Continuation) {
        let startedAt = Registry.systemMilliseconds()
        if !configuration.allowLoopbackTargets, let reason = ProbeTarget.restricted(target.address) {
            let record = ProbeRecord(
                time: startedAt, healthy: false, latencyMilliseconds: 0,
                detail: "not probed: \(target.address) is \(reason) (health.allowLoopbackTargets)")
            finish(target, record, term: membership?.view.term, changes: changes)
            return
        }
        let clock = ContinuousClock.now
        let term = membership?.view.term
        probe(for: target.type).probe(target, on: group.next()).whenSuccess { healthy, detail in
            let elapsed = ContinuousClock.now - clock
            let latency = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            self.telemetry.healthProbe(type: target.type.rawValue, healthy: healthy, seconds: latency / 1000)
            self.finish(
                target, ProbeRecord(time: startedAt, healthy: healthy, latencyMilliseconds: latency, detail: detail), term: term,
                changes: changes)
        }
    }

    func finish(_ target: ProbeTarget, _ record: ProbeRecord, term: UInt64?, changes: AsyncStream<Change>.Continuation) {
        let limit = configuration.historySize
        let damping = configuration.damping
        let status = tracked.withLock { all -> HealthStatus? in
            guard var entry = all[target.key], entry.target == target else { return nil }
            entry.inFlight = false
            entry.history.append(record)
            if entry.history.count > limit { entry.history.removeFirst(entry.history.count - limit) }
            let status = entry.thresholds.record(healthy: record.healthy, at: record.time, threshold: target.threshold, damping: damping)
            all[target.key] = entry
            return status
        }
        guard let status, status != .UNKNOWN else { return }
        if let instance = registry.snapshot.state.instances[target.serviceId]?[target.instanceId],
            instance.registeredAt == target.registeredAt, instance.health != status
        {
            changes.yield(Change(target: target, status: status, detail: record.detail, term: term))
        }
    }

    func write(_ change: Change) async {
        let target = change.target
        let state = registry.snapshot.state
        guard let service = state.services[target.serviceId] else { return }
        do {
            _ = try await registry.submit(
                .setProbedHealth(
                    serviceId: target.serviceId, instanceId: target.instanceId, registeredAt: target.registeredAt, status: change.status),
                context: RequestContext(region: service.region, account: service.account, membershipTerm: change.term))
            logger.info("health \(target.serviceId)/\(target.instanceId) → \(change.status.rawValue) (\(change.detail))")
        } catch {
            logger.warning("could not record health of \(target.key): \(error.message)")
        }
    }

    /// Aligns the tracked set with the registry; returns targets that are new (or replaced) and need scheduling.
    func reconcile(_ wanted: [String: ProbeTarget]) -> [ProbeTarget] {
        tracked.withLock { all in
            var fresh: [ProbeTarget] = []
            for key in all.keys where wanted[key] == nil { all[key] = nil }
            for (key, target) in wanted where all[key]?.target != target {
                all[key] = Tracked(target: target)
                fresh.append(target)
            }
            return fresh
        }
    }
}
