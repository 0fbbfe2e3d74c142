import ArgumentParser
import CairnClient
import CairnCore
import CairnPostgres
import CairnServer
import CairnStore
import CloudMapWire
import Foundation
import Logging

/// `cairn`: the server and, later, the operator commands.
@available(macOS 10.15, *)
public struct CairnCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cairn",
        abstract: "A self-hosted service registry that speaks the AWS Cloud Map API.",
        subcommands: [
            Serve.self, Namespaces.self, Services.self, Instances.self, Discover.self, Health.self, Operations.self, Tags.self,
            DNSSEC.self, Audit.self, Export.self, Import.self, Recover.self, Agent.self, Version.self,
        ],
        defaultSubcommand: nil)

    public init() {}
}

extension CairnCommand {
    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print Cairn's version.")
        func run() { print("cairn \(cairnVersion)") }
    }

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the Cairn server.",
            discussion: """
                Settings come from the config file (--config or CAIRN_CONFIG), then CAIRN_* environment variables, \
                then these flags; later sources win. See docs/configuration.md.
                """)

        @Option(name: .long, help: "YAML configuration file.")
        var config: String?

        @Option(name: .long, help: "Directory of the embedded SQLite store (default ./cairn-data).")
        var dataDir: String?

        @Option(
            name: .long,
            help: "Store: sqlite (durable, default), memory (lost on exit), or postgres://USER:PASSWORD@HOST:PORT/DB (cluster mode).")
        var store: String?

        @Option(name: .long, help: "API listen address (default 127.0.0.1).")
        var host: String?

        @Option(name: .long, help: "API port (default 8787; 0 picks a free port).")
        var port: Int?

        @Option(name: .long, help: "DNS listen address, UDP and TCP (default 127.0.0.1).")
        var dnsHost: String?

        @Option(name: .long, help: "DNS port, UDP and TCP (default 8853; 0 picks a free one).")
        var dnsPort: Int?

        @Flag(name: .long, help: "Log one line per DNS query (time, client, name, type, rcode, answers).")
        var dnsQueryLog = false

        @Flag(name: .long, help: "Serve no DNS.")
        var noDns = false

        @Option(name: .long, help: "Seconds between health probes of one instance (default 10, minimum 1).")
        var healthInterval: Double?

        @Flag(name: .long, help: "Probe instances registered at loopback or link-local addresses (off: they could scan this host).")
        var healthAllowLoopback = false

        @Option(name: .long, help: "Region for requests without a SigV4 credential scope (default us-east-1).")
        var region: String?

        @Option(name: .long, help: "Regions a credential scope may name, comma-separated; 'prefix*' admits a family (default: AWS's).")
        var regions: String?

        @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
        var logLevel: String?

        @Flag(name: .long, help: "Development mode: accept any credentials, loopback only.")
        var dev = false

        @Flag(name: .long, help: "Turn request throttling off (benchmarks; see throttling in docs/configuration.md).")
        var noThrottling = false

        func run() async throws {
            var configuration = CairnConfiguration()
            do {
                let environment = ProcessInfo.processInfo.environment
                if let path = config ?? environment["CAIRN_CONFIG"] {
                    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                        throw ConfigurationError(key: "config", "file \(path) can't be read")
                    }
                    try configuration.apply(yaml: text, source: path)
                }
                try configuration.apply(environment: environment)
                if let dataDir { configuration.dataDir = dataDir }
                if let store {
                    guard let kind = CairnConfiguration.StoreKind(store) else {
                        throw ConfigurationError(key: "--store", "must be sqlite, memory or a postgres:// URL")
                    }
                    configuration.store = kind
                }
                if let host { configuration.api.host = host }
                if let port { configuration.api.port = port }
                if let region { configuration.region = region }
                if let regions { configuration.regions = regions.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
                if let dnsHost { configuration.dns.host = dnsHost }
                if let dnsPort { configuration.dns.port = dnsPort }
                if dnsQueryLog { configuration.dns.queryLog = true }
                if noDns { configuration.dns.enabled = false }
                if let healthInterval { configuration.health.interval = healthInterval }
                if healthAllowLoopback { configuration.health.allowLoopbackTargets = true }
                if let logLevel { configuration.logLevel = logLevel }
                if dev { configuration.dev = true }
                if noThrottling { configuration.throttling.enabled = false }
                try configuration.validate()
            } catch let error as ConfigurationError {
                FileHandle.standardError.write(Data("cairn: \(error.description)\n".utf8))
                throw ExitCode(2)
            }
            let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "cairn")
            let server: CairnServer
            do {
                server = try await CairnServer.prepare(configuration, logger: logger)
            } catch let error as StoreDamage {
                FileHandle.standardError.write(
                    Data(
                        "cairn: refusing to start: \(error.description)\ncairn: run `cairn recover --data-dir \(configuration.dataDir)` to see what can be kept\n"
                            .utf8))
                throw ExitCode(3)
            } catch let error as PostgresStoreError {
                FileHandle.standardError.write(Data("cairn: refusing to start: \(error.description)\n".utf8))
                throw ExitCode(3)
            } catch let error as DataDirectoryLock.Refusal {
                FileHandle.standardError.write(Data("cairn: refusing to start: \(error.description)\n".utf8))
                throw ExitCode(3)
            }
            logger.notice(
                "registry loaded",
                metadata: [
                    "store": "\(configuration.store)", "dataDir": "\(configuration.dataDir)",
                    "sequence": "\(server.registry.snapshot.state.sequence)",
                ])
            try await server.run()
        }
    }
}

extension CairnCommand {
    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Work with the audit trail.", subcommands: [Lookup.self, ExportTrail.self, Verify.self])
    }
}

extension CairnCommand.Audit {
    struct Lookup: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Look up audit records, newest first.")
        @OptionGroup var options: ClientOptions
        @Option(help: "From this time (epoch seconds or ISO 8601).") var start: String?
        @Option(help: "Until this time (exclusive).") var end: String?
        @Option(help: "Only this API call, e.g. RegisterInstance.") var event: String?
        @Option(help: "Only this principal name or access key id.") var principal: String?
        @Option(help: "Only calls about this namespace or service (ARN or id).") var resource: String?
        @Option(help: "At most this many records.") var max: Int = 50

        func run(_ client: CairnClient) async throws {
            var events: [JSONValue] = []
            var token: String?
            repeat {
                var query: [(String, String)] = [("MaxResults", String(min(1000, max - events.count)))]
                for (name, value) in [
                    ("StartTime", start), ("EndTime", end), ("EventName", event), ("Principal", principal), ("Resource", resource),
                    ("NextToken", token),
                ] {
                    if let value { query.append((name, value)) }
                }
                let page = try JSONValue.parse(try await client.get("/cairn/v1/audit", query: query))
                events += page["Events"]?.arrayValue ?? []
                token = page["NextToken"]?.stringValue
            } while token != nil && events.count < max
            if options.output == .json { return printJSON(.array(events)) }
            printTable(
                ["TIME", "EVENT", "USER", "SOURCE", "ERROR", "REQUEST-ID"],
                events.map {
                    [
                        text($0["eventTime"]), text($0["eventName"]), text($0["userIdentity"]?["userName"]),
                        text($0["sourceIPAddress"]),
                        text($0["errorCode"]), text($0["requestID"]),
                    ]
                })
        }
    }

    struct ExportTrail: ClientCommand {
        static let configuration = CommandConfiguration(
            commandName: "export", abstract: "Write every audit record, oldest first, as JSON lines (byte for byte as stored).")
        @OptionGroup var options: ClientOptions
        @Option(help: "Only records after this sequence number (cairnSequence).") var after: UInt64 = 0
        @Option(help: "Write to this file instead of standard output.") var file: String?

        func run(_ client: CairnClient) async throws {
            let bytes = try await client.get("/cairn/v1/audit/export", query: [("after", String(after))])
            if let file {
                guard FileManager.default.createFile(atPath: file, contents: Data(bytes)) else {
                    throw ClientError(kind: .usage, type: "UsageError", message: "cannot write \(file)")
                }
                progress("exported \(bytes.filter { $0 == 0x0A }.count) records to \(file)")
            } else {
                FileHandle.standardOutput.write(Data(bytes))
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the hash chain of the stored audit trail.",
            discussion: """
                Reads the SQLite store in the data directory, or with --store the cluster's PostgreSQL database (running \
                servers may keep writing), and checks that every \
                record still hashes to its stored hash and links to the record before it. Exit status 0: intact; 1: a \
                record was changed, removed or inserted (the first one is named).
                """)

        @Option(name: .long, help: "Directory of the SQLite store (default ./cairn-data).")
        var dataDir = "./cairn-data"

        @Option(name: .long, help: "A cluster's store, postgres://USER:PASSWORD@HOST:PORT/DB (default: CAIRN_STORE if it is one).")
        var store: String?

        @Flag(name: .long, help: "Print the result as JSON.")
        var json = false

        func run() async throws {
            let result: AuditVerification
            let url = store ?? ProcessInfo.processInfo.environment["CAIRN_STORE"].flatMap { PostgresLocation.isURL($0) ? $0 : nil }
            do {
                if let url {
                    result = try await CairnServer.verifyAudit(store: url)
                } else {
                    result = try await CairnServer.verifyAudit(dataDir: dataDir)
                }
            } catch {
                let place = url.map { CairnConfiguration.StoreKind.postgres(url: $0).description } ?? dataDir
                FileHandle.standardError.write(Data("cairn: cannot read the audit trail in \(place): \(error)\n".utf8))
                throw ExitCode(2)
            }
            if json {
                var fields = [
                    "\"records\": \(result.records)", "\"intact\": \(result.firstBroken == nil)", "\"headHash\": \"\(result.headHash)\"",
                ]
                if let broken = result.firstBroken { fields.append("\"firstBroken\": \(broken)") }
                print("{" + fields.joined(separator: ", ") + "}")
            } else if let problem = result.problem {
                print("audit trail BROKEN: \(problem) (\(result.records) records checked)")
            } else {
                print("audit trail intact: \(result.records) records, head hash \(result.headHash)")
            }
            if result.firstBroken != nil { throw ExitCode(1) }
        }
    }
}

public let cairnVersion = "0.1.0"

@available(macOS 10.15, *)
extension CairnCommand {
    /// Entry point of the `cairn` executable (resolves ArgumentParser's asynchronous `main`).
    public static func start() async {
        CairnServer.fitEventLoopsToCPUs()
        let command: any AsyncParsableCommand.Type = CairnCommand.self
        await command.main()
    }
}

extension CairnCommand {
    struct Recover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Say what a damaged data directory still holds; with --write, keep exactly that.",
            discussion: """
                `cairn serve` refuses a data directory whose files would load less than it acknowledged (a damaged \
                write-ahead log, a gap in the change log, a database that fails SQLite's quick_check, files replaced \
                or lost). This command examines a copy and prints what can be kept and what is lost. With --write it \
                moves the damaged files to DATA_DIR/damaged-<time>/ and writes a new store holding what can be kept, \
                so the server starts again. No server may be running on the directory. Exit status 0: nothing is \
                damaged; 1: damage found (and, with --write, repaired as printed); 2: the directory cannot be read.
                """)

        @Option(name: .long, help: "Directory of the SQLite store (default ./cairn-data).")
        var dataDir = "./cairn-data"

        @Flag(name: .long, help: "Replace the store by what can be kept (the damaged files are moved aside).")
        var write = false

        func run() async throws {
            var logger = Logger(label: "cairn.recover")
            logger.logLevel = .error
            do {
                let (report, aside) = try await SQLiteRecovery.run(directory: dataDir, write: write, logger: logger)
                for line in report.lines { print(line) }
                if let aside { print("wrote a new store with what can be kept; the damaged files are in \(aside)") }
                if report.damaged { throw ExitCode(1) }
            } catch let error as ExitCode {
                throw error
            } catch {
                FileHandle.standardError.write(Data("cairn: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
    }
}
