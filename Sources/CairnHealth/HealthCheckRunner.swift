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
    /// Every checked instance by key (`serviceId/instanceId`), and the keys of each service, so a write to one
    /// service re-reads only that service's instances.
    struct Tracking: Sendable {
        var all: [String: Tracked] = [:]
        var byService: [String: Set<String>] = [:]
    }
    private let tracked = Mutex(Tracking())
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
        tracked.withLock { tracking in
            tracking.all["\(serviceId)/\(instanceId)"].map {
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
    public var checkedCount: Int { tracked.withLock { $0.all.count } }

    /// Probes done, and how late they started against their schedule (mean and worst, seconds), since start.
    public var lag: (probes: Int, meanSeconds: Double, maxSeconds: Double) {
        statistics.withLock { ($0.probes, $0.probes == 0 ? 0 : $0.lagSum / Double($0.probes), $0.lagMax) }
    }

    /// Every instance that should be probed now, from the registry's snapshot.
    static func targets(_ state: RegistryState) -> [String: ProbeTarget] {
        var result: [String: ProbeTarget] = [:]
        for service in state.services.values { targets(of: service, in: state, into: &result) }
        return result
    }

    /// The instances of one service that should be probed now.
    static func targets(of service: Service, in state: RegistryState, into result: inout [String: ProbeTarget]) {
        guard let check = service.healthCheckConfig, let namespace = state.namespaces[service.namespaceId] else { return }
        for instance in state.instances(of: service.id).values {
            if let target = target(service: service, check: check, namespace: namespace, instance: instance) {
                result[target.key] = target
            }
        }
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
        var lastServices = UInt64.max
        var lastNamespaces = UInt64.max
        // Service id → the instances revision last read. A health write leaves the revision alone (as Cloud Map's
        // does), so status changes, this checker's own writes above all, re-read nothing.
        var revisions: [String: UInt64] = [:]
        while !Task.isCancelled {
            let snapshot = registry.snapshot
            let state = snapshot.state
            let members = membership?.view.version ?? 0
            if state.sequence != lastSequence || members != lastMembers {
                lastSequence = state.sequence
                var fresh: [ProbeTarget] = []
                if state.servicesVersion != lastServices || state.namespacesVersion != lastNamespaces || members != lastMembers {
                    // A service or namespace changed (or the live nodes did): read everything again.
                    lastServices = state.servicesVersion
                    lastNamespaces = state.namespacesVersion
                    lastMembers = members
                    revisions = [:]
                    for service in state.services.values where service.healthCheckConfig != nil {
                        revisions[service.id] = service.instancesRevision
                    }
                    fresh = reconcile(owned(Self.targets(state)), services: nil)
                } else {
                    // Only instances changed: read again the services whose instances revision moved.
                    for service in state.services.values where service.healthCheckConfig != nil {
                        guard revisions[service.id] != service.instancesRevision else { continue }
                        revisions[service.id] = service.instancesRevision
                        var wanted: [String: ProbeTarget] = [:]
                        Self.targets(of: service, in: state, into: &wanted)
                        fresh += reconcile(owned(wanted), services: [service.id])
                    }
                }
                for target in fresh {
                    // Spread first probes over the interval by a hash of the instance, so thousands never fire together.
                    let offset = Double(abs(target.key.hashValue % 1000)) / 1000
                    due.insert(Due(at: ContinuousClock.now + interval * offset, key: target.key))
                }
            }
            let now = ContinuousClock.now
            var batch: [ProbeTarget] = []
            var lateness = 0.0
            var worst = 0.0
            var started = 0
            while let next = due.min, next.at <= now {
                _ = due.removeMin()
                // Claim the target: gone (removed or replaced since scheduled) or still in flight means skip.
                let target = tracked.withLock { tracking -> (ProbeTarget, Bool)? in
                    guard let entry = tracking.all[next.key] else { return nil }
                    if entry.inFlight { return (entry.target, false) }
                    tracking.all[next.key]!.inFlight = true
                    return (entry.target, true)
                }
                guard let (target, claimed) = target else { continue }
                due.insert(Due(at: next.at + interval, key: next.key))
                guard claimed else { continue }
                let late = Double((now - next.at).components.attoseconds) / 1e18 + Double((now - next.at).components.seconds)
                lateness += late
                worst = max(worst, late)
                started += 1
                batch.append(target)
            }
            launch(batch, changes: changes)
            if started > 0 {
                statistics.withLock {
                    $0.probes += started
                    $0.lagSum += lateness
                    $0.lagMax = max($0.lagMax, worst)
                }
            }
            // Ticks at least 10 ms apart: a probe starts up to 10 ms late (on an interval of a second or more), and
            // each tick hands its probes to the event loops in one task per loop, not one cross-thread wake-up each.
            // Between ticks the checker sleeps until the next probe is due or the writer publishes a change (the
            // change feed: a new instance is probed at once, and an idle registry costs no wake-ups), and at most a
            // second on a cluster, where the live nodes can change without a write.
            let tick = ContinuousClock.now
            var wait = due.min.map { $0.at - tick } ?? .seconds(3600)
            if membership != nil { wait = min(wait, .seconds(1)) }
            if wait > .milliseconds(10) {
                let registry = self.registry
                let seen = state.sequence
                let wait = wait
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { try? await Task.sleep(for: wait) }
                    group.addTask {
                        // Too many calls wait already: look again every 50 ms instead.
                        if !(await registry.awaitPublish(beyond: seen)) { try? await Task.sleep(for: min(wait, .milliseconds(50))) }
                    }
                    _ = await group.next()
                    group.cancelAll()
                }
            }
            let since = ContinuousClock.now - tick
            if since < .milliseconds(10) { try? await Task.sleep(for: .milliseconds(10) - since) }
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

    /// Starts a tick's probes, dealt out over the event loops in one task per loop.
    func launch(_ batch: [ProbeTarget], changes: AsyncStream<Change>.Continuation) {
        guard !batch.isEmpty else { return }
        let loops = Array(group.makeIterator())
        let offset = Int.random(in: 0..<loops.count)
        for (i, loop) in loops.enumerated() {
            let first = (i + offset) % loops.count
            guard first < batch.count else { continue }
            let share = batch[first...].striding(loops.count)
            loop.execute {
                for target in share { self.launch(target, on: loop, changes: changes) }
            }
        }
    }

    /// Starts one probe on an event loop; its result goes through the thresholds when it completes.
    func launch(_ target: ProbeTarget, on loop: any EventLoop, changes: AsyncStream<Change>.Continuation) {
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
        probe(for: target.type).probe(target, on: loop).whenSuccess { healthy, detail in
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
        let status = tracked.withLock { tracking -> HealthStatus? in
            guard tracking.all[target.key]?.target == target else { return nil }
            // Changed in place: a copy taken out and written back would copy the history on every probe.
            return Self.record(record, into: &tracking.all[target.key]!, limit: limit, damping: damping)
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

    static func record(_ record: ProbeRecord, into entry: inout Tracked, limit: Int, damping: HealthThresholds.Damping?) -> HealthStatus {
        entry.inFlight = false
        entry.history.append(record)
        if entry.history.count > limit { entry.history.removeFirst(entry.history.count - limit) }
        return entry.thresholds.record(healthy: record.healthy, at: record.time, threshold: entry.target.threshold, damping: damping)
    }

    /// In a cluster, this node's share of the targets (rendezvous hashing over the live nodes: a node that joins or
    /// dies moves only its own share); all of them on a single node.
    func owned(_ targets: [String: ProbeTarget]) -> [String: ProbeTarget] {
        guard let membership else { return targets }
        return targets.filter { membership.owns($0.key) }
    }

    /// Aligns the tracked set with the registry, for the given services (nil: all of them; a service missing
    /// from `wanted` has its instances dropped); returns targets that are new (or replaced) and need scheduling.
    func reconcile(_ wanted: [String: ProbeTarget], services scope: Set<String>?) -> [ProbeTarget] {
        tracked.withLock { tracking in
            var fresh: [ProbeTarget] = []
            let stale: [String]
            if let scope {
                stale = scope.flatMap { tracking.byService[$0] ?? [] }.filter { wanted[$0] == nil }
            } else {
                stale = tracking.all.keys.filter { wanted[$0] == nil }
            }
            for key in stale {
                guard let gone = tracking.all.removeValue(forKey: key) else { continue }
                tracking.byService[gone.target.serviceId]?.remove(key)
                if tracking.byService[gone.target.serviceId]?.isEmpty == true { tracking.byService[gone.target.serviceId] = nil }
            }
            for (key, target) in wanted where tracking.all[key]?.target != target {
                tracking.all[key] = Tracked(target: target)
                tracking.byService[target.serviceId, default: []].insert(key)
                fresh.append(target)
            }
            return fresh
        }
    }
}

extension ArraySlice {
    /// Every `step`-th element, from the first.
    func striding(_ step: Int) -> [Element] {
        stride(from: startIndex, to: endIndex, by: step).map { self[$0] }
    }
}
