import ArgumentParser
import CairnClient
import CloudMapWire
import Foundation

/// `cairn dnssec`: DNSSEC for public DNS namespaces (docs/dns.md, "DNSSEC").
struct DNSSEC: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dnssec",
        abstract: "Sign public DNS namespaces: enable, show the DNSKEY and DS, roll and retire keys, disable.",
        discussion: """
            A signed zone answers queries with the DO bit with RRSIGs (ECDSA P-256, algorithm 13) and proves names \
            and types that do not exist with compact denial (one NSEC). Publish the DS that `show` prints at the \
            parent zone. Key roll: `roll` adds a second key that signs beside the first; publish its DS, wait for the \
            old DS's TTL to pass everywhere, then `retire` the old key by its tag.
            """,
        subcommands: [Show.self, Enable.self, Roll.self, Retire.self, Disable.self], defaultSubcommand: Show.self)

    /// Prints a zone's state: each key's tag, DNSKEY and DS.
    static func print(_ options: ClientOptions, _ body: [UInt8]) throws {
        let answer = try JSONValue.parse(body)
        if options.json { return printJSON(answer) }
        let zone = answer["Zone"]?.stringValue ?? ""
        guard case .array(let keys)? = answer["Keys"], !keys.isEmpty else {
            Swift.print("\(zone) is not signed")
            return
        }
        Swift.print("\(zone) is signed with \(keys.count == 1 ? "1 key" : "\(keys.count) keys (a key roll)")")
        for key in keys {
            let tag: String
            if case .int(let value)? = key["KeyTag"] { tag = String(value) } else { tag = "?" }
            Swift.print("")
            Swift.print("key \(tag)")
            Swift.print("  \(key["DNSKEY"]?.stringValue ?? "")")
            Swift.print("  \(key["DS"]?.stringValue ?? "")")
        }
    }

    static func change(_ client: CairnClient, _ options: ClientOptions, _ namespace: String, _ action: String, keyTag: UInt16? = nil)
        async throws
    {
        var query = [("NamespaceId", namespace), ("Action", action)]
        if let keyTag { query.append(("KeyTag", String(keyTag))) }
        try print(options, try await client.post("/cairn/v1/dnssec", query: query))
    }

    struct Show: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Show a namespace's DNSSEC keys, DNSKEY and DS records.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Namespace id.") var namespace: String

        func run(_ client: CairnClient) async throws {
            try DNSSEC.print(options, try await client.get("/cairn/v1/dnssec", query: [("NamespaceId", namespace)]))
        }
    }

    struct Enable: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Sign a public DNS namespace with a new key (no change if signed).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Namespace id.") var namespace: String

        func run(_ client: CairnClient) async throws { try await DNSSEC.change(client, options, namespace, "Enable") }
    }

    struct Roll: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Start a key roll: add a second key that signs beside the first.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Namespace id.") var namespace: String

        func run(_ client: CairnClient) async throws { try await DNSSEC.change(client, options, namespace, "Roll") }
    }

    struct Retire: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "End a key roll: drop the key with this tag.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Namespace id.") var namespace: String
        @Option(help: "The tag of the key to drop.") var keyTag: UInt16

        func run(_ client: CairnClient) async throws { try await DNSSEC.change(client, options, namespace, "Retire", keyTag: keyTag) }
    }

    struct Disable: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop signing: drop every key. Remove the DS at the parent first, or resolvers fail the zone.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Namespace id.") var namespace: String

        func run(_ client: CairnClient) async throws { try await DNSSEC.change(client, options, namespace, "Disable") }
    }
}
