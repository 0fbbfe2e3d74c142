import ArgumentParser
import CairnClient
import CairnCore
import CairnHealth
import CloudMapWire
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import UnixSignals

extension CairnCommand {
    /// `cairn agent`: a sidecar that keeps the instances of one host registered (docs/agent.md).
    struct Agent: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "agent",
            abstract: "Keep local instances registered: leases renewed, health pushed from local checks, deregistered on SIGTERM.",
            discussion: """
                Registers every instance in the YAML file as an ephemeral instance (CAIRN_LEASE_SECONDS), renews the \
                leases every third of their length, runs each instance's local check (HTTP, HTTPS, TCP or a command) \
                and pushes its status with UpdateInstanceCustomHealthStatus (the service needs HealthCheckCustomConfig), \
                registers again when Cairn no longer knows an instance (a restart on an empty store, a lease that ran \
                out while Cairn was unreachable), and deregisters everything on SIGTERM or SIGINT. If the agent dies \
                without that (kill -9, the host lost), the leases run out and Cairn deregisters the instances itself. \
                Credentials and region come from the usual AWS sources. See docs/agent.md.
                """)

        @Option(name: .long, help: "The agent's YAML file (see docs/agent.md).")
        var config: String

        @Option(help: "Cairn's URL (default: the file's endpoint, CAIRN_ENDPOINT, AWS_ENDPOINT_URL, else http://127.0.0.1:8787).")
        var endpoint: String?

        @Option(help: "Region to sign for (default: the file's region, AWS_REGION, AWS_DEFAULT_REGION, the profile's, us-east-1).")
        var region: String?

        @Option(help: "Profile in ~/.aws/credentials and ~/.aws/config (default: the file's profile, AWS_PROFILE, the environment's keys).")
        var profile: String?

        func run() async throws {
            let file: AgentConfiguration
            let client: CairnClient
            do {
                let text = try String(contentsOfFile: config, encoding: .utf8)
                file = try AgentConfiguration.parse(
                    yaml: text, hostname: ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host")
                client = CairnClient(
                    configuration: try ClientConfiguration.resolve(
                        endpoint: endpoint ?? file.endpoint, region: region ?? file.region, profile: profile ?? file.profile),
                    timeout: 10)
            } catch let error as AgentConfiguration.Invalid {
                printError("\(config): \(error)")
                throw ExitCode(Exit.usage)
            } catch let error as ClientError {
                printError(error.description)
                throw ExitCode(Exit.usage)
            } catch {
                printError("cannot read \(config): \(error.localizedDescription)")
                throw ExitCode(Exit.usage)
            }
            let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
            let agent = RegistrationAgent(client: client, configuration: file)
            let outcome = await withTaskGroup(of: RegistrationAgent.Outcome.self) { group in
                group.addTask { await agent.run() }
                group.addTask {
                    for await signal in signals {
                        agentLog("\(signal) received: deregistering")
                        return .stopped
                    }
                    return .stopped
                }
                let first = await group.next() ?? .stopped
                group.cancelAll()
                return first
            }
            if case .failed(let message) = outcome {
                printError(message)
                await agent.deregisterAll()
                throw ExitCode(Exit.refused)
            }
            await agent.deregisterAll()
        }
    }
}

func agentLog(_ text: String) {
    FileHandle.standardError.write(Data("\(Date().ISO8601Format()) cairn agent: \(text)\n".utf8))
}

/// The agent's work: one loop per instance, and the set of instances registered, which SIGTERM deregisters.
final class RegistrationAgent: Sendable {
    enum Outcome: Sendable {
        case stopped
        /// A mistake no retry mends (an unknown service, a check on a service without custom health).
        case failed(String)
    }

    struct Key: Hashable, Sendable {
        let serviceId: String
        let instanceId: String
    }

    let client: CairnClient
    let configuration: AgentConfiguration
    private let registered = Mutex<Set<Key>>([])

    init(client: CairnClient, configuration: AgentConfiguration) {
        self.client = client
        self.configuration = configuration
    }

    /// Runs until cancelled, or until a registration cannot be made at all.
    func run() async -> Outcome {
        var resolved: [(AgentConfiguration.Registration, String)] = []
        for registration in configuration.registrations {
            switch await resolve(registration) {
            case .success(let id): resolved.append((registration, id))
            case .failure(let message): return .failed(message)
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for (registration, serviceId) in resolved {
                group.addTask { await self.keep(registration, serviceId: serviceId) }
            }
        }
        return .stopped
    }

    /// Deregisters every instance registered, waiting (up to 10 s in all) for the operations to finish.
    func deregisterAll() async {
        let keys = registered.withLock { $0 }
        let deadline = ContinuousClock.now + .seconds(10)
        await withTaskGroup(of: Void.self) { group in
            for key in keys {
                group.addTask {
                    do {
                        let answer = try await self.client.call(
                            "DeregisterInstance", ["ServiceId": .string(key.serviceId), "InstanceId": .string(key.instanceId)])
                        if let id = answer["OperationId"]?.stringValue { try await self.settle(id, until: deadline) }
                        self.registered.withLock { _ = $0.remove(key) }
                        agentLog("deregistered \(key.instanceId) from \(key.serviceId)")
                    } catch let error as ClientError where error.type == "InstanceNotFound" {
                        agentLog("\(key.instanceId) was no longer registered in \(key.serviceId)")
                    } catch {
                        agentLog("could not deregister \(key.instanceId) from \(key.serviceId): \(error); its lease will run out")
                    }
                }
            }
        }
    }

    enum Resolution {
        case success(String)
        case failure(String)
    }

    /// The service's id, checked: it exists, and has custom health when the instance has a check. Retries while
    /// Cairn cannot be reached or is busy.
    func resolve(_ registration: AgentConfiguration.Registration) async -> Resolution {
        var backoff = Backoff()
        while !Task.isCancelled {
            do {
                let serviceId: String
                switch registration.service {
                case .id(let id): serviceId = id
                case .named(let namespace, let name):
                    let namespaces = try await client.paginate("ListNamespaces", key: "Namespaces")
                    let matching = namespaces.filter { $0["Name"]?.stringValue == namespace }
                    guard matching.count == 1, let nsId = matching[0]["Id"]?.stringValue else {
                        return .failure(
                            matching.isEmpty
                                ? "there is no namespace \(namespace)"
                                : "\(matching.count) namespaces are named \(namespace): give serviceId")
                    }
                    let services = try await client.paginate(
                        "ListServices",
                        [
                            "Filters": .array([
                                .object(["Name": .string("NAMESPACE_ID"), "Values": .array([.string(nsId)]), "Condition": .string("EQ")])
                            ])
                        ],
                        key: "Services")
                    guard let id = services.first(where: { $0["Name"]?.stringValue == name })?["Id"]?.stringValue else {
                        return .failure("the namespace \(namespace) has no service \(name)")
                    }
                    serviceId = id
                }
                let service = try await client.call("GetService", ["Id": .string(serviceId)])["Service"] ?? .object([:])
                if registration.check != nil, service["HealthCheckCustomConfig"] == nil {
                    return .failure(
                        "\(registration.instanceId) has a check, but the service \(serviceId) has no HealthCheckCustomConfig to push its results to (create the service with --health-check-custom-config)"
                    )
                }
                return .success(serviceId)
            } catch {
                guard Self.retryable(error) else { return .failure("\(registration.instanceId): \(error)") }
                agentLog("\(registration.instanceId): \(error); retrying in \(backoff.seconds) s")
                await backoff.pause()
            }
        }
        return .failure("stopped")
    }

    /// Registers one instance, keeps its lease, runs its check and pushes the status, until cancelled.
    func keep(_ registration: AgentConfiguration.Registration, serviceId first: String) async {
        var serviceId = first
        var key = Key(serviceId: serviceId, instanceId: registration.instanceId)
        let name = registration.instanceId
        var health = registration.check.map { HealthDebounce(failureThreshold: $0.failureThreshold, successThreshold: $0.successThreshold) }
        let probe = registration.check.map(LocalCheck.init)
        let renewEvery = Duration.milliseconds(configuration.leaseSeconds * 1000 / 3)
        var isRegistered = false
        var pushed: Bool?  // the status Cairn has, as far as the agent knows
        var nextRenew = ContinuousClock.now
        var nextCheck = ContinuousClock.now
        var backoff = Backoff()
        while !Task.isCancelled {
            do {
                if !isRegistered {
                    var attributes = registration.attributes
                    // A new registration with a check starts as the check last found it (unhealthy before the first).
                    if health != nil { attributes["AWS_INIT_HEALTH_STATUS"] = health?.status == true ? "HEALTHY" : "UNHEALTHY" }
                    let answer = try await client.call(
                        "RegisterInstance",
                        [
                            "ServiceId": .string(serviceId), "InstanceId": .string(name),
                            "CreatorRequestId": .string(UUID().uuidString),
                            "Attributes": .object(attributes.mapValues { .string($0) }),
                        ])
                    registered.withLock { _ = $0.insert(key) }
                    if let id = answer["OperationId"]?.stringValue { try await settle(id, until: .now + .seconds(30)) }
                    isRegistered = true
                    pushed = health.map { $0.status == true }
                    nextRenew = .now + renewEvery
                    agentLog("registered \(name) in \(serviceId) (lease \(configuration.leaseSeconds) s)")
                }
                if let probe, ContinuousClock.now >= nextCheck, var debounce = health {
                    let (healthy, detail) = await probe.run()
                    nextCheck = .now + probe.interval
                    if let changed = debounce.record(healthy: healthy) {
                        agentLog("\(name): check \(changed ? "passes" : "fails") (\(detail))")
                    }
                    health = debounce
                }
                if let status = health?.status, status != pushed {
                    _ = try await client.call(
                        "UpdateInstanceCustomHealthStatus",
                        ["ServiceId": .string(serviceId), "InstanceId": .string(name), "Status": .string(status ? "HEALTHY" : "UNHEALTHY")])
                    pushed = status
                    agentLog("\(name) is \(status ? "HEALTHY" : "UNHEALTHY")")
                }
                if ContinuousClock.now >= nextRenew {
                    _ = try await client.post("/cairn/v1/leases/renew", query: [("ServiceId", serviceId), ("InstanceId", name)])
                    nextRenew = .now + renewEvery
                }
                backoff = Backoff()
                let next = probe == nil ? nextRenew : min(nextRenew, nextCheck)
                try? await Task.sleep(until: next, clock: .continuous)
            } catch let error as ClientError
                where error.type == "InstanceNotFound" || (error.type == "InvalidInput" && error.message.contains("has no lease"))
            {
                // Cairn no longer knows the instance, or it was registered again without a lease: register it at once.
                agentLog("\(name): \(error.message); registering again")
                isRegistered = false
            } catch let error as ClientError where error.type == "ServiceNotFound" {
                // The service went: one given by name may be there again under a new id (a registry restored or
                // moved); one given by id is retried as it is.
                agentLog("\(name): \(error.message)")
                isRegistered = false
                if case .named = registration.service, case .success(let id) = await resolve(registration), id != serviceId {
                    registered.withLock { _ = $0.remove(key) }
                    serviceId = id
                    key = Key(serviceId: id, instanceId: name)
                    agentLog("\(name): the service is now \(id); registering again")
                    continue
                }
                await backoff.pause()
            } catch {
                if Task.isCancelled { return }
                agentLog("\(name): \(error); retrying in \(backoff.seconds) s")
                await backoff.pause()
            }
        }
    }

    /// Waits for an operation to succeed; its error when it failed.
    func settle(_ operation: String, until deadline: ContinuousClock.Instant) async throws {
        while true {
            let op = try await client.call("GetOperation", ["OperationId": .string(operation)])["Operation"] ?? .object([:])
            switch op["Status"]?.stringValue {
            case "SUCCESS": return
            case "FAIL":
                throw ClientError(
                    kind: .service(status: 200), type: op["ErrorCode"]?.stringValue ?? "OperationFailed",
                    message: op["ErrorMessage"]?.stringValue ?? "operation \(operation) failed")
            default:
                guard ContinuousClock.now < deadline else {
                    throw ClientError(kind: .transport, type: "Timeout", message: "operation \(operation) did not finish")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Errors worth retrying: no answer, throttling, a server error or a node without its database.
    static func retryable(_ error: ClientError) -> Bool {
        switch error.kind {
        case .transport: return true
        case .usage: return false
        case .service(let status):
            return status >= 500 || status == 429
                || ["ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable"].contains(error.type)
        }
    }
}

/// Exponential pauses between retries: 1 s doubling to 30 s.
struct Backoff {
    private(set) var seconds = 1
    mutating func pause() async {
        try? await Task.sleep(for: .seconds(seconds))
        seconds = min(30, seconds * 2)
    }
}

/// One instance's local check, run by the agent itself.
struct LocalCheck: Sendable {
    let check: AgentConfiguration.Check
    var interval: Duration { .milliseconds(Int64(check.intervalSeconds * 1000)) }
    var timeout: TimeAmount { .milliseconds(Int64(check.timeoutSeconds * 1000)) }

    init(_ check: AgentConfiguration.Check) { self.check = check }

    /// Whether the check passed, and what it found.
    func run() async -> (Bool, String) {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        switch check.kind {
        case .http(let https, let address, let port, let path):
            let target = ProbeTarget(
                serviceId: "", instanceId: "", registeredAt: 0, type: https ? .HTTPS : .HTTP, path: path, threshold: 1,
                address: address, port: port, hostHeader: address.contains(":") ? "[\(address)]" : address)
            guard let probe = try? HTTPHealthProbe(https: https, connectTimeout: timeout, responseTimeout: timeout) else {
                return (false, "TLS is not available")
            }
            return await (try? probe.probe(target, on: loop).get()) ?? (false, "probe failed")
        case .tcp(let address, let port):
            let target = ProbeTarget(
                serviceId: "", instanceId: "", registeredAt: 0, type: .TCP, path: "/", threshold: 1, address: address, port: port,
                hostHeader: address)
            return await (try? TCPHealthProbe(connectTimeout: timeout).probe(target, on: loop).get()) ?? (false, "probe failed")
        case .command(let argv):
            return await CommandCheck.run(argv, timeout: .milliseconds(Int64(check.timeoutSeconds * 1000)))
        }
    }
}

/// A command check: the program, found on PATH unless its name holds a slash, run without a shell; healthy when
/// it exits with 0 within the timeout (after which it is sent SIGTERM, and SIGKILL a second later).
enum CommandCheck {
    static func run(_ argv: [String], timeout: Duration) async -> (Bool, String) {
        guard let program = argv.first, let path = locate(program) else { return (false, "\(argv.first ?? "") not found") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = Array(argv.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let (exits, exited) = AsyncStream<Int32>.makeStream()
        process.terminationHandler = {
            exited.yield($0.terminationStatus)
            exited.finish()
        }
        do { try process.run() } catch { return (false, "\(program) could not be started: \(error.localizedDescription)") }
        let pid = process.processIdentifier
        let timedOut = Atomic<Bool>(false)
        let killer = Task {
            try await Task.sleep(for: timeout)
            timedOut.store(true, ordering: .relaxed)
            kill(pid, SIGTERM)
            try await Task.sleep(for: .seconds(1))
            kill(pid, SIGKILL)
        }
        var status: Int32 = -1
        for await code in exits { status = code }
        killer.cancel()
        if timedOut.load(ordering: .relaxed) { return (false, "timeout") }
        return (status == 0, "exit status \(status)")
    }

    /// The program's path: as given when it holds a slash, else the first executable of that name on PATH.
    static func locate(_ program: String) -> String? {
        if program.contains("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
