import CairnAPI
import CairnCore
import CairnDNS
import CairnHealth
import CairnPostgres
import CairnStore
import DNSWire
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import UnixSignals

/// Composes the store, the registry writer and the API server into one `ServiceGroup`. SIGTERM/SIGINT stop the
/// API first (no new requests, in-flight ones finish), then the writer (queued writes are stored), then the store.
public struct CairnServer: Sendable {
    public let configuration: CairnConfiguration
    public let registry: Registry
    public let api: CloudMapAPI
    let store: any RegistryStore
    let logger: Logger
    let telemetry: PrometheusTelemetry

    /// One NIO event loop per CPU the process may run on. NIO counts the machine's CPUs (or its cgroup quota), not
    /// the process's affinity, so under `taskset -c 0` it would start two loops on a two-CPU machine that then take
    /// turns on one CPU. Call it first thing, before anything uses NIO; `NIO_SINGLETON_GROUP_LOOP_COUNT` still wins.
    public static func fitEventLoopsToCPUs() {
        #if os(Linux)
            guard ProcessInfo.processInfo.environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] == nil else { return }
            // The affinity mask as the kernel reports it (`Cpus_allowed: ff,ffffffff`); Glibc's sched_getaffinity is not
            // visible from Swift.
            guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") })
            else { return }
            var allowed = 0
            for character in line.dropFirst("Cpus_allowed:".count) {
                guard let digit = character.hexDigitValue else { continue }
                allowed += digit.nonzeroBitCount
            }
            if allowed > 0 && allowed < System.coreCount { NIOSingletons.groupLoopCountSuggestion = allowed }
        #endif
    }

    /// Opens the store and loads the registry; nothing listens yet.
    public static func prepare(_ configuration: CairnConfiguration, logger: Logger) async throws -> CairnServer {
        try configuration.validate()
        let store: any RegistryStore
        switch configuration.store {
        case .sqlite: store = try await SQLiteRegistryStore.open(directory: configuration.dataDir, logger: logger)
        case .memory: store = InMemoryRegistryStore(hash: SQLiteRegistryStore.chain.hash)
        case .postgres(let url):
            store = try await PostgresRegistryStore.open(
                url: url,
                options: PostgresRegistryStore.Options(
                    pollInterval: configuration.cluster.pollInterval, logRetention: .seconds(configuration.cluster.logRetentionSeconds)),
                logger: logger)
        }
        let rules = RegistryRules(limits: configuration.limits, networks: Set(configuration.networks.keys), strict: configuration.strict)
        let telemetry = PrometheusTelemetry(operations: CloudMapAPI.operationNames)
        let registry: Registry
        do {
            registry = try await Registry.open(
                store: store,
                configuration: Registry.Configuration(
                    rules: rules, telemetry: telemetry, logger: logger, longPollLimit: configuration.api.watch.maxWaiting))
            SQLiteRegistryStore.releaseFreedHeap()  // what loading decoded and replayed, for either store
        } catch {
            try? await store.close()
            throw error
        }
        let keys = try configuration.dev ? nil : AdministratorKey.credentials(for: configuration, logger: logger)
        let api = CloudMapAPI(
            registry: registry,
            configuration: CloudMapAPI.Configuration(
                defaultRegion: configuration.region, account: configuration.account, maxBodyBytes: configuration.api.maxBodyBytes,
                accessKeys: keys, throttling: configuration.throttling,
                audit: CloudMapAPI.AuditSettings(reads: configuration.audit.reads, discover: configuration.audit.discover),
                regions: RegionSet(configuration.regions) ?? .default, watchStreams: configuration.api.watch.maxStreams,
                watchWriteTimeout: .milliseconds(Int64(configuration.api.watch.writeTimeoutSeconds * 1000)),
                watchEventsPerSecond: configuration.api.watch.maxEventsPerSecond,
                watchBytesPerSecond: configuration.api.watch.maxBytesPerSecond),
            logger: logger, telemetry: telemetry)
        return CairnServer(configuration: configuration, registry: registry, api: api, store: store, logger: logger, telemetry: telemetry)
    }

    /// Runs until SIGTERM/SIGINT (or `signals: []` and task cancellation). `onListening` gets the bound API port.
    public func run(
        signals: [UnixSignal] = [.sigterm, .sigint], onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        let logger = self.logger
        let configuration = self.configuration
        if configuration.dev {
            logger.warning(
                "DEV MODE: any access key and secret are accepted, no signature is checked; listening on loopback only. Never expose this to a network."
            )
        }
        let router = api.router()
        MetricsRoute.add(to: router, telemetry: telemetry, api: api)
        var health: HealthCheckRunner?
        if configuration.health.enabled {
            let runner = try HealthCheckRunner(
                registry: registry, configuration: healthConfiguration, logger: logger, telemetry: telemetry, membership: store.membership)
            ProbeHistoryRoute.add(to: router, runner: runner, api: api)
            health = runner
        }
        let checker = health
        let resolver = DNSResolver(configuration: dnsConfiguration)
        Console(
            api: api, secureCookies: configuration.api.tlsCertificate != nil,
            sources: Console.Sources(
                probeHistory: { service, instance in
                    checker.flatMap { ProbeHistoryRoute.json($0, serviceId: service, instanceId: instance) }
                },
                dnsRecords: { service, state in resolver.publishedRecords(of: service, state: state).map(\.description) },
                dnsAnswerLimit: configuration.dns.maxAnswers)
        ).add(to: router)
        let scheme = configuration.api.tlsCertificate == nil ? "http" : "https"
        let app = Application(
            router: router,
            server: try serverBuilder(),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.api.host, port: configuration.api.port), serverName: "Cairn",
                availableConnectionsDelegate: MaximumAvailableConnections(Self.connectionCap(configured: configuration.api.maxConnections))),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.api.port
                logger.notice("cairn API listening on \(configuration.api.host):\(port)", metadata: ["scheme": "\(scheme)"])
                await onListening(port)
            },
            logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: RegistryService(registry: registry, store: store, logger: logger))
        ]
        if configuration.dns.enabled {
            // Bound before the API listens, so "API listening" means DNS answers too.
            let hosts = configuration.dns.hosts
            let dns = try await DNSServer.bind(
                hosts: hosts.required, optional: hosts.optional, port: configuration.dns.port,
                responder: DNSResponder(resolver: resolver),
                registry: registry, queryLog: configuration.dns.queryLog ? Self.queryLogger() : nil, telemetry: telemetry,
                rateLimit: DNSRateLimit(
                    responsesPerSecond: configuration.dns.rateLimitPerSecond, slip: configuration.dns.rateLimitSlip))
            logger.notice("cairn DNS listening on \(configuration.dns.host):\(dns.port) (udp, tcp)")
            services.append(.init(service: DNSService(server: dns)))
            let targets = configuration.dns.notify.compactMap(DNSNotifier.Target.init)
            if !targets.isEmpty {
                let notifier = DNSNotifier(targets: targets, resolver: resolver, registry: registry, logger: logger, telemetry: telemetry)
                services.append(.init(service: NotifyService(notifier: notifier)))
            }
        }
        if let health { services.append(.init(service: HealthService(runner: health))) }
        services.append(.init(service: LeaseExpiryService(expirer: LeaseExpirer(api: api, logger: logger))))
        if configuration.audit.retentionDays > 0 {
            services.append(
                .init(service: AuditRetentionService(registry: registry, days: configuration.audit.retentionDays, logger: logger)))
        }
        services.append(.init(service: app))
        // Shut down first (the group stops services in reverse order): waiting long-poll calls answer at once
        // instead of holding the HTTP server's drain.
        services.append(.init(service: LongPollShutdown(watchers: registry.watchers)))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services,
                gracefulShutdownSignals: signals, logger: logger))
        try await group.run()
    }
}

extension CairnServer {
    /// Checks the audit chain of the SQLite store in `dataDir` without starting a server.
    /// Checks the audit chain of a cluster's database (read only: no migration, no membership row).
    public static func verifyAudit(store url: String) async throws -> AuditVerification {
        var logger = Logger(label: "cairn.audit")
        logger.logLevel = .error
        let store = try await PostgresRegistryStore.open(url: url, access: .reader, logger: logger)
        let result = try await store.verifyAudit()
        try await store.close()
        return result
    }

    public static func verifyAudit(dataDir: String) async throws -> AuditVerification {
        let path = (dataDir as NSString).appendingPathComponent("cairn.sqlite")
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigurationError(key: "dataDir", "has no store (\(path) does not exist)")
        }
        var logger = Logger(label: "cairn.audit")
        logger.logLevel = .error
        let store = try await SQLiteRegistryStore.open(directory: dataDir, access: .reader, logger: logger)
        let result = try await store.verifyAudit()
        try await store.close()
        return result
    }

    /// The configured connection cap, lowered to leave 64 descriptors of the process's limit for the store, DNS,
    /// health probes and the log: past the limit, accept() fails in a loop instead of waiting.
    static func connectionCap(configured: Int) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return configured }
        return max(1, min(configured, Int(clamping: limit.rlim_cur) - 64))
    }

    /// The query log writes at info whatever the general log level: turning it on is asking for it.
    static func queryLogger() -> Logger {
        var logger = Logger(label: "cairn.dns.query")
        logger.logLevel = .info
        return logger
    }

    /// Plain HTTP/1.1, or HTTPS with the configured certificate chain and key (swift-nio-ssl).
    func serverBuilder() throws -> HTTPServerBuilder {
        let t = configuration.api.timeouts
        let limits = ConnectionDeadlines.Limits(
            idle: .milliseconds(Int64(t.idleSeconds * 1000)), body: .milliseconds(Int64(t.bodySeconds * 1000)),
            drain: .milliseconds(Int64(t.drainSeconds * 1000)))
        let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [ConnectionDeadlines(limits: limits)])
        guard let certificate = configuration.api.tlsCertificate, let key = configuration.api.tlsKey else {
            return .http1(configuration: http1)
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
            tls.minimumTLSVersion = .tlsv12
            return try .tls(.http1(configuration: http1), tlsConfiguration: tls)
        } catch {
            throw ConfigurationError(key: "api.tls", "cannot load the certificate or key: \(error)")
        }
    }

    var healthConfiguration: HealthCheckConfiguration {
        let h = configuration.health
        return HealthCheckConfiguration(
            interval: h.interval,
            damping: h.flapTransitions > 0
                ? HealthThresholds.Damping(maxTransitions: h.flapTransitions, windowMilliseconds: Int64(h.flapWindowSeconds * 1000)) : nil,
            historySize: h.historySize, allowLoopbackTargets: h.allowLoopbackTargets)
    }

    /// The DNS settings in the resolver's terms (validated by `CairnConfiguration.validate`).
    var dnsConfiguration: DNSConfiguration {
        let defaults = DNSConfiguration()
        return DNSConfiguration(
            serverName: DNSName(configuration.dns.serverName) ?? defaults.serverName,
            hostmaster: DNSName(configuration.dns.hostmaster) ?? defaults.hostmaster,
            maxAnswers: configuration.dns.maxAnswers, ednsPayloadSize: configuration.dns.ednsPayloadSize,
            networks: configuration.networks.mapValues { $0.compactMap(CIDR.init) },
            transferAllow: configuration.dns.transferAllow.compactMap(CIDR.init), transferKey: configuration.dns.transferKey,
            availabilityZones: configuration.dns.availabilityZones.mapValues { $0.compactMap(CIDR.init) },
            nameServers: configuration.dns.nameServers.compactMap(DNSName.init))
    }
}

/// The health checker as a lifecycle service: probing stops when shutdown begins.
struct HealthService: ServiceLifecycle.Service {
    let runner: HealthCheckRunner

    func run() async throws {
        await cancelWhenGracefulShutdown { await runner.run() }
    }
}

/// NOTIFY to the configured secondaries as a lifecycle service: it stops when shutdown begins.
struct NotifyService: ServiceLifecycle.Service {
    let notifier: DNSNotifier

    func run() async throws {
        await cancelWhenGracefulShutdown { await notifier.run() }
    }
}

/// The DNS sockets as a lifecycle service: they close on shutdown, after the API has stopped.
struct DNSService: ServiceLifecycle.Service {
    let server: DNSServer

    func run() async throws {
        try? await gracefulShutdown()
        await server.close()
    }
}

/// Drops audit records older than the retention period, at start and then hourly.
struct AuditRetentionService: ServiceLifecycle.Service {
    let registry: Registry
    let days: Int
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let cutoff = Registry.systemMilliseconds() - Int64(days) * 86_400_000
                do {
                    // On a cluster one node prunes: the holder of the lease, renewed every round.
                    guard try await registry.lease("audit-retention", for: .seconds(2 * 3600)) else {
                        try? await Task.sleep(for: .seconds(3600))
                        continue
                    }
                    let dropped = try await registry.pruneAudit(olderThan: cutoff)
                    if dropped > 0 { logger.notice("audit retention: dropped \(dropped) records older than \(days) days") }
                } catch {
                    logger.warning("audit retention failed: \(error)")
                }
                try? await Task.sleep(for: .seconds(3600))
            }
        }
    }
}

/// Answers every waiting long-poll call when shutdown begins.
/// Cairn's deregistration of ephemeral instances whose lease ran out, until shutdown.
struct LeaseExpiryService: ServiceLifecycle.Service {
    let expirer: LeaseExpirer

    func run() async throws {
        await cancelWhenGracefulShutdown { await expirer.run() }
    }
}

struct LongPollShutdown: ServiceLifecycle.Service {
    let watchers: ServiceWatchers

    func run() async throws {
        try? await gracefulShutdown()
        watchers.close()
    }
}

/// The registry's writer loop as a lifecycle service: on shutdown it stops taking commands, stores what is
/// queued, answers it, and closes the store.
struct RegistryService: ServiceLifecycle.Service {
    let registry: Registry
    let store: any RegistryStore
    let logger: Logger

    func run() async throws {
        await withGracefulShutdownHandler {
            await registry.run()
        } onGracefulShutdown: {
            registry.shutdown()
        }
        try await store.close()
        logger.notice("registry stopped at sequence \(registry.snapshot.state.sequence)")
    }
}
