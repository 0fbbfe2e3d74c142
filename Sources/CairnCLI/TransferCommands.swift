import ArgumentParser
import CairnClient
import CloudMapWire
import Foundation

struct Export: ClientCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the whole registry (every region) as one JSON document.",
        discussion: "The document is consistent as of one change-log sequence number. See docs/operations.md.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Write to this file instead of standard output.") var file: String?

    func run(_ client: CairnClient) async throws {
        let document = try JSONValue.parse(try await client.get("/cairn/v1/export"))
        let bytes = JSONWriter.render(document)
        let pretty: Data
        if let object = try? JSONSerialization.jsonObject(with: Data(bytes)),
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        {
            pretty = data + Data("\n".utf8)
        } else {
            pretty = Data(bytes)
        }
        if let file {
            guard FileManager.default.createFile(atPath: file, contents: pretty) else {
                throw ClientError(kind: .usage, type: "UsageError", message: "cannot write \(file)")
            }
            progress("exported \(countNamespaces(document)) namespaces to \(file)")
        } else {
            FileHandle.standardOutput.write(pretty)
        }
    }
}

func countNamespaces(_ document: JSONValue) -> Int {
    (document["regions"]?.objectValue ?? [:]).values.reduce(0) { $0 + ($1["namespaces"]?.arrayValue?.count ?? 0) }
}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply an export document: create what is missing, update what differs, delete nothing.",
        discussion: "Run with --dry-run first to see the steps. Safe to repeat: a second run has nothing to do.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Export document (from cairn export); - reads standard input.") var file: String
    @Flag(help: "Show the steps without changing anything.") var dryRun = false

    func run() async throws {
        let data: Data?
        if file == "-" { data = FileHandle.standardInput.readDataToEndOfFile() } else { data = FileManager.default.contents(atPath: file) }
        guard let data else {
            printError("cannot read \(file)")
            throw ExitCode(Exit.usage)
        }
        let desired: JSONValue
        do { desired = try JSONValue.parse(Array(data)) } catch {
            printError("\(file) is not JSON")
            throw ExitCode(Exit.usage)
        }
        try await withClient(options) { client in
            let current = try JSONValue.parse(try await client.get("/cairn/v1/export"))
            let steps = try RegistryImport.plan(desired: desired, current: current)
            if dryRun {
                if options.output == .json { return printJSON(.array(steps.map { .string($0.description) })) }
                if steps.isEmpty { print("nothing to do: the registry already holds everything in \(file)") }
                for step in steps { print(step.description) }
                return
            }
            try await RegistryImport.apply(steps, client: client) { index, step in
                progress("[\(index + 1)/\(steps.count)] \(step.description)")
            }
            if options.output == .json {
                printJSON(.object(["Steps": .int(Int64(steps.count))]))
            } else {
                print(steps.isEmpty ? "nothing to do" : "applied \(steps.count) steps")
            }
        }
    }
}
