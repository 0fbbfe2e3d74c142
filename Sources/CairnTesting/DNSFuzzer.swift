import CairnCore
import CairnDNS
import DNSWire
import NIOCore

/// A seeded random-mutation fuzzer for the DNS parser and responder. Every input must either fail to parse or
/// survive a round trip unchanged, and every reply must be a valid message within the UDP size the query allowed.
public struct DNSFuzzer {
    public struct Report: Sendable, CustomStringConvertible {
        public var iterations = 0
        public var parsed = 0
        public var replies = 0
        public var failures: [String] = []
        public var description: String {
            "\(iterations) inputs, \(parsed) parsed, \(replies) replies, \(failures.count) failures"
        }
    }

    let responder: DNSResponder
    let state: RegistryState
    var rng: SplitMix64
    var corpus: [[UInt8]]
    var cache = DNSAnswerCache(slots: 256)

    public init(seed: UInt64, responder: DNSResponder, state: RegistryState, corpus: [[UInt8]]) {
        self.responder = responder
        self.state = state
        self.rng = SplitMix64(seed: seed)
        self.corpus = corpus
    }

    mutating func next(_ bound: Int) -> Int { bound <= 0 ? 0 : Int(rng.next() % UInt64(bound)) }

    /// One mutated input from the corpus.
    mutating func mutate() -> [UInt8] {
        var bytes = corpus[next(corpus.count)]
        for _ in 0...next(4) {
            switch next(9) {
            case 0 where !bytes.isEmpty: bytes[next(bytes.count)] ^= UInt8(1 << next(8))
            case 1 where !bytes.isEmpty: bytes[next(bytes.count)] = UInt8(truncatingIfNeeded: rng.next())
            case 2: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: next(bytes.count + 1))
            case 3 where !bytes.isEmpty: bytes.remove(at: next(bytes.count))
            case 4 where bytes.count > 12: bytes.removeLast(next(bytes.count - 12) + 1)
            case 5 where bytes.count >= 12:  // section counts
                let at = 4 + 2 * next(4)
                bytes[at + 1] = UInt8(next(6))
                bytes[at] = next(8) == 0 ? 0xFF : 0
            case 6 where bytes.count > 14:  // a compression pointer somewhere
                let at = 12 + next(bytes.count - 13)
                bytes[at] = 0xC0 | UInt8(next(0x40))
                bytes[at + 1] = UInt8(truncatingIfNeeded: rng.next())
            case 7:  // splice with another input
                let other = corpus[next(corpus.count)]
                let cut = next(min(bytes.count, other.count) + 1)
                bytes = Array(bytes.prefix(cut)) + Array(other.dropFirst(cut))
            default:
                bytes.append(contentsOf: (0..<next(8)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            }
        }
        return bytes
    }

    public mutating func run(iterations: Int? = nil, until deadline: ContinuousClock.Instant? = nil) -> Report {
        var report = Report()
        let clients: [[UInt8]] = [[127, 0, 0, 1], [127, 0, 0, 2], Array(repeating: 0, count: 15) + [1]]
        while (iterations.map { report.iterations < $0 } ?? true) && (deadline.map { ContinuousClock.now < $0 } ?? true) {
            report.iterations += 1
            let input = mutate()
            if let message = try? DNSMessage.parse(input) {
                report.parsed += 1
                let again = try? DNSMessage.parse(message.encode().bytes)
                if again != message, report.failures.count < 20 { report.failures.append("round trip changed \(hexString(input))") }
                if report.parsed % 64 == 0, corpus.count < 512 { corpus.append(input) }
            }
            let client = clients[next(clients.count)]
            // The ready-answer path, twice (the second time from the cache when the first stored it): the full path's
            // reply but for the random draw, or no reply exactly when the full path gives none.
            for _ in 0..<2 {
                var out = ByteBufferAllocator().buffer(capacity: 512)
                let answered = input.withUnsafeBytes {
                    responder.respond(toUDP: $0, client: DNSClient(bytes: client), state: state, cache: &cache, into: &out)
                }
                let slow = responder.respond(to: input, client: client, transport: .udp, state: state)?.reply
                switch (answered, slow) {
                case (nil, nil): break
                case (.some, let slow?):
                    if let difference = DNSAnswerCheck.difference(
                        query: input, fast: Array(out.readableBytesView), slow: slow, resolver: responder.resolver, client: client,
                        state: state),
                        report.failures.count < 20
                    {
                        report.failures.append("ready answer: \(difference) for \(hexString(input))")
                    }
                default:
                    if report.failures.count < 20 {
                        report.failures.append("ready path replied where the full one did not, or not where it did: \(hexString(input))")
                    }
                }
            }
            for transport in [DNSResponder.Transport.udp, .tcp] {
                // Over TCP as the server answers there: zone transfers are several messages.
                let replies =
                    transport == .tcp
                    ? responder.respondTCP(to: input, client: client, state: state)?.replies
                    : responder.respond(to: input, client: client, transport: transport, state: state).map { [$0.reply] }
                guard let replies else { continue }
                report.replies += 1
                let query = try? DNSMessage.parse(input)
                let limit = transport == .tcp ? 65_535 : max(512, min(Int(query?.edns?.udpPayloadSize ?? 512), 1232))
                for reply in replies {
                    if reply.count > limit, report.failures.count < 20 {
                        report.failures.append("reply of \(reply.count) bytes over \(limit) for \(hexString(input))")
                    }
                    if (try? DNSMessage.parse(reply)) == nil, report.failures.count < 20 {
                        report.failures.append("unparseable reply to \(hexString(input))")
                    }
                }
            }
        }
        return report
    }
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

extension DNSFuzzer {
    /// Queries and answers the fuzzer starts from.
    public static func seedCorpus(resolver: DNSResolver, state: RegistryState) -> [[UInt8]] {
        var corpus: [[UInt8]] = []
        let names = [
            "web.corp.local", "_http._tcp.corp.local", "i1._http._tcp.corp.local", "alias.corp.local", "corp.local", "www.example.com",
            "nope.example.org", "nope.example.com", "example.com",
        ]
        let types = [
            DNSType.a, DNSType.aaaa, DNSType.srv, DNSType.cname, DNSType.soa, DNSType.ns, DNSType.any, 16, DNSType.axfr, DNSType.ixfr,
            DNSType.dnskey, DNSType.rrsig, DNSType.nsec, DNSType.ds,
        ]
        for (i, name) in names.enumerated() {
            for (j, type) in types.enumerated() {
                let question = DNSQuestion(name: DNSName(name)!, type: type)
                let query = DNSMessage(
                    header: DNSHeader(id: UInt16(i * 16 + j), flags: 0x0100), questions: [question],
                    edns: j % 2 == 0
                        ? EDNS(udpPayloadSize: 1232, dnssecOK: j % 4 == 0, options: [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]) : nil)
                corpus.append(query.encode().bytes)
                let answer = resolver.answer(question, client: [127, 0, 0, 1], state: state)
                var reply = query
                reply.header.isResponse = true
                reply.answers = answer.answers
                reply.authority = answer.authority
                corpus.append(reply.encode().bytes)
            }
        }
        return corpus
    }
}

/// Checks the ready-answer path against the full one: the same reply but for the random draw (same header,
/// question bytes, authority and OPT; as many answers, each one the full path could give, none twice).
public enum DNSAnswerCheck {
    /// nil when `fast` is a reply the full path could have given to `query`; else what differs.
    public static func difference(
        query: [UInt8], fast: [UInt8], slow: [UInt8], resolver: DNSResolver, client: [UInt8], state: RegistryState
    )
        -> String?
    {
        guard let f = try? DNSMessage.parse(fast) else { return "the fast reply does not parse" }
        guard let s = try? DNSMessage.parse(slow) else { return "the full reply does not parse" }
        guard f.header == s.header else { return "headers differ: \(f.header) vs \(s.header)" }
        guard f.questions.count == s.questions.count, f.edns == s.edns, f.additional == s.additional else {
            return "question count, OPT or additional records differ"
        }
        let questionEnd = min(fast.count, slow.count, 12 + (f.questions.first.map { $0.name.wireLength + 4 } ?? 0))
        guard fast[12..<questionEnd] == slow[12..<questionEnd] else { return "the question's bytes differ" }
        func exact(_ records: [DNSRecord]) -> [[UInt8]] {
            guard let question = f.questions.first else { return [] }
            return DNSMessage.recordBytes(records, after: question).map(\.bytes)
        }
        guard exact(f.authority) == exact(s.authority) else { return "authority differs" }
        guard f.answers.count == s.answers.count else { return "\(f.answers.count) answers against \(s.answers.count)" }
        guard let question = f.questions.first else { return nil }
        let pool = exact(resolver.plan(question, client: client, state: state).pool)
        // RRSIGs (a signed zone, the DO bit) are made for the records drawn, so they are not in the plan's pool.
        let given = exact(f.answers.filter { $0.type != DNSType.rrsig })
        guard Set(given).count == given.count else { return "an answer repeats" }
        guard given.allSatisfy({ pool.contains($0) }) else { return "an answer the full path could not give" }
        return nil
    }
}
