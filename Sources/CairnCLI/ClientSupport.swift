import ArgumentParser
import CairnClient
import CloudMapWire
import Foundation

/// Options every client command takes.
struct ClientOptions: ParsableArguments {
    @Option(help: "Cairn's URL (default: CAIRN_ENDPOINT, AWS_ENDPOINT_URL, else http://127.0.0.1:8787).")
    var endpoint: String?

    @Option(help: "Region to sign for (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, us-east-1).")
    var region: String?

    @Option(help: "Profile in ~/.aws/credentials and ~/.aws/config (default: AWS_PROFILE, else the environment's keys, else default).")
    var profile: String?

    @Option(help: "Output: table (for people) or json (for scripts).")
    var output: OutputFormat = .table

    func client() throws(ClientError) -> CairnClient {
        CairnClient(configuration: try ClientConfiguration.resolve(endpoint: endpoint, region: region, profile: profile))
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

/// Exit statuses scripts can rely on.
enum Exit {
    /// The service refused the request, or the operation waited for failed.
    static let refused: Int32 = 1
    /// Wrong usage or client configuration (EX_USAGE, as ArgumentParser's own validation errors).
    static let usage: Int32 = 64
    /// Cairn could not be reached.
    static let unreachable: Int32 = 3
    /// A wait ran out of time.
    static let timedOut: Int32 = 4
}

/// A command that talks to Cairn: it declares its options and answers `run(_:)` with a client; connecting, and
/// turning a client error into one line on stderr and the matching exit status, happen here once.
protocol ClientCommand: AsyncParsableCommand {
    var options: ClientOptions { get }
    func run(_ client: CairnClient) async throws
}

extension ClientCommand {
    func run() async throws { try await withClient(options) { try await run($0) } }
}

/// `--no-wait` and `--timeout`, for commands that start an asynchronous operation.
struct WaitOptions: ParsableArguments {
    @Flag(help: "Return the operation id at once instead of waiting.") var noWait = false
    @Option(help: "Seconds to wait for the operation.") var timeout: Double = 60
}

extension ClientOptions {
    var json: Bool { output == .json }

    /// One object: as JSON, or as aligned fields.
    func show(_ value: JSONValue) { json ? printJSON(value) : printFields(value) }

    /// A list: as a JSON array, or as a table with one row per item.
    func list(_ items: [JSONValue], _ headers: [String], _ row: (JSONValue) -> [String]) {
        json ? printJSON(.array(items)) : printTable(headers, items.map(row))
    }

    /// An operation that was started: waits for it unless told not to, then prints its id.
    func finish(_ client: CairnClient, operation id: String, _ wait: WaitOptions) async throws {
        if !wait.noWait { _ = try await waitForOperation(client, id, timeout: wait.timeout, quiet: json) }
        json ? printJSON(.object(["OperationId": .string(id)])) : print(id)
    }
}

/// `[{Key, Value}]` from KEY=VALUE arguments, sorted by key.
func tagList(_ items: [String]) throws -> [JSONValue] {
    try keyValues(items, what: "tag").sorted { $0.key < $1.key }.map { JSONValue.object(["Key": .string($0.key), "Value": $0.value]) }
}

/// Runs a client command: errors become one line on stderr and the matching exit status.
func withClient(_ options: ClientOptions, _ body: (CairnClient) async throws -> Void) async throws {
    do {
        try await body(try options.client())
    } catch let error as ClientError {
        printError(error.description)
        switch error.kind {
        case .service: throw ExitCode(Exit.refused)
        case .transport: throw ExitCode(Exit.unreachable)
        case .usage: throw ExitCode(Exit.usage)
        }
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data("cairn: \(text)\n".utf8))
}

func progress(_ text: String) {
    FileHandle.standardError.write(Data("\(text)\n".utf8))
}

/// JSON for scripts: pretty, keys sorted.
func printJSON(_ value: JSONValue) {
    print(prettyJSON(value))
}

/// Indented JSON with sorted keys, two spaces a level, and empty objects and arrays as `{}` and `[]`.
func prettyJSON(_ value: JSONValue, indent: String = "") -> String {
    let inner = indent + "  "
    switch value {
    case .object(let members) where !members.isEmpty:
        let lines = members.keys.sorted().map { key in
            "\(inner)\(JSONWriter.renderString(.string(key))): \(prettyJSON(members[key]!, indent: inner))"
        }
        return "{\n" + lines.joined(separator: ",\n") + "\n\(indent)}"
    case .array(let items) where !items.isEmpty:
        return "[\n" + items.map { inner + prettyJSON($0, indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
    case .raw(let text):
        // Pre-rendered JSON (timestamps, stored audit records): parse it to indent it like the rest.
        return (try? JSONValue.parse(Array(text.utf8))).map { prettyJSON($0, indent: indent) } ?? text
    default:
        return JSONWriter.renderString(value)
    }
}

/// A plain text table: a header row and aligned columns.
func printTable(_ headers: [String], _ rows: [[String]]) {
    var widths = headers.map(\.count)
    for row in rows {
        for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, cell in
            i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    print(line(headers))
    for row in rows { print(line(row)) }
}

/// One object as `key: value` lines (nested values as compact JSON).
func printFields(_ value: JSONValue) {
    guard let object = value.objectValue else {
        printJSON(value)
        return
    }
    let width = object.keys.map(\.count).max() ?? 0
    for key in object.keys.sorted() {
        let text: String
        switch object[key]! {
        case .string(let s): text = s
        case .raw(let r): text = r.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        default: text = JSONWriter.renderString(object[key]!)
        }
        print("\(key.padding(toLength: width, withPad: " ", startingAt: 0))  \(text)")
    }
}

/// `k=v` arguments as a map; a missing `=` is a usage error naming the argument.
func keyValues(_ items: [String], what: String) throws -> [String: JSONValue] {
    var result: [String: JSONValue] = [:]
    for item in items {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
            throw ValidationError("\(what) '\(item)' must be KEY=VALUE")
        }
        result[String(item[..<eq])] = .string(String(item[item.index(after: eq)...]))
    }
    return result
}

func text(_ value: JSONValue?) -> String { value?.displayText ?? "" }

/// Waits for an asynchronous operation, showing each status it passes through on stderr.
func waitForOperation(_ client: CairnClient, _ id: String, timeout: Double, quiet: Bool = false) async throws -> JSONValue {
    let deadline = Date().addingTimeInterval(timeout)
    var last = ""
    let started = Date()
    while true {
        let operation = try await client.call("GetOperation", ["OperationId": .string(id)])["Operation"] ?? .object([:])
        let status = text(operation["Status"])
        if status != last, !quiet {
            progress(String(format: "operation %@: %@ (%.1fs)", id, status, Date().timeIntervalSince(started)))
            last = status
        }
        if status == "SUCCESS" { return operation }
        if status == "FAIL" {
            throw ClientError(
                kind: .service(status: 200), type: text(operation["ErrorCode"]).isEmpty ? "OperationFailed" : text(operation["ErrorCode"]),
                message: "operation \(id) failed: \(text(operation["ErrorMessage"]))")
        }
        if Date() > deadline {
            printError("operation \(id) still \(status) after \(Int(timeout))s")
            throw ExitCode(Exit.timedOut)
        }
        try await Task.sleep(for: .milliseconds(200))
    }
}
