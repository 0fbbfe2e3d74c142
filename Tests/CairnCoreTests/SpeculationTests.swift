import CairnCore
import Testing

/// A node of a cluster decides its batch while it waits for the store's lock and keeps the decision when the entries
/// other nodes appended meanwhile write nothing it read (Registry, RegistryState+Speculation). These tests hold that
/// rule to its promise: a kept decision is exactly what deciding again after those entries gives.
@Suite("Deciding a batch ahead of the cluster's lock")
struct SpeculationTests {
    struct Rng: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let now: Int64 = 1_800_000_000_000
    static let instanceIds = ["a", "b", "c", "d", "e", "f"]

    /// Two namespaces with small quotas; a custom-health service and a plain one in the first, a plain one in the
    /// second; a few instances already registered.
    static func base(_ rng: inout Rng) throws -> (Harness, [String]) {
        var h = Harness()
        h.rules.limits.instancesPerService = 4
        h.rules.limits.instancesPerNamespace = 6
        let one = try h.namespace("one")
        let two = try h.namespace("two")
        let services = [try h.service("c", in: one, custom: true).id, try h.service("s", in: one).id, try h.service("t", in: two).id]
        for service in services {
            for id in instanceIds where Bool.random(using: &rng) && Bool.random(using: &rng) {
                _ = try? h.run(.registerInstance(RegisterInstance(serviceId: service, instanceId: id, attributes: ["k": "0"])))
            }
        }
        return (h, services)
    }

    static func command(_ rng: inout Rng, services: [String], state: RegistryState) -> Command {
        let service = Int.random(in: 0..<10, using: &rng) == 0 ? "srv-missing" : services.randomElement(using: &rng)!
        let id = instanceIds.randomElement(using: &rng)!
        switch Int.random(in: 0..<20, using: &rng) {
        case 0..<8:
            let token = Int.random(in: 0..<4, using: &rng) == 0 ? "tok\(Int.random(in: 0..<2, using: &rng))" : nil
            return .registerInstance(
                RegisterInstance(
                    serviceId: service, instanceId: id, attributes: ["k": "\(Int.random(in: 0..<2, using: &rng))"], creatorRequestId: token)
            )
        case 8..<12: return .deregisterInstance(serviceId: service, instanceId: id)
        case 12..<16:
            return .setCustomHealth(serviceId: service, instanceId: id, status: Bool.random(using: &rng) ? .HEALTHY : .UNHEALTHY)
        case 16..<18:
            let registeredAt = state.instances(of: service)[id]?.registeredAt ?? 0
            return .setProbedHealth(serviceId: service, instanceId: id, registeredAt: registeredAt, status: .UNHEALTHY)
        default: return .updateServiceAttributes(serviceId: service, attributes: ["a": "\(Int.random(in: 0..<2, using: &rng))"])
        }
    }

    /// Decides `commands` in order against `state` as the writer does; returns the entries, each outcome as text,
    /// and (tracking) the keys read, nil for "anything".
    static func decide(_ commands: [Command], on state: RegistryState, seed: UInt64, rules: RegistryRules, context: RequestContext)
        -> (entries: [ChangeLogEntry], outcomes: [String], reads: Set<String>?)
    {
        var state = state
        var ids = IdentifierGenerator(seed: seed)
        var entries: [ChangeLogEntry] = []
        var outcomes: [String] = []
        var reads: Set<String>? = []
        for command in commands {
            if let keys = state.speculativeReads(of: command, context: context) { reads?.formUnion(keys) } else { reads = nil }
            do throws(CairnError) {
                let decision = try state.decide(command, context: context, now: now, rules: rules, ids: &ids)
                if !decision.events.isEmpty {
                    let entry = ChangeLogEntry(sequence: state.sequence + 1, time: now, events: decision.events)
                    state.apply(entry)
                    entries.append(entry)
                    reads?.formUnion(RegistryState.speculativeReads(ofEvents: decision.events))
                }
                outcomes.append("\(decision.result)")
            } catch {
                outcomes.append("\(error.code) \(error.message)")
            }
        }
        return (entries, outcomes, reads)
    }

    @Test("A batch kept because the newer entries wrote nothing it read is what deciding it after them gives")
    func keptEqualsDecidedAgain() throws {
        var rng = Rng(state: 7)
        var kept = 0
        var differed = 0
        var conflicting = 0
        for _ in 0..<3000 {
            let (h, services) = try Self.base(&rng)
            let theirs = (0..<Int.random(in: 1...4, using: &rng)).map { _ in Self.command(&rng, services: services, state: h.state) }
            let mine = (0..<Int.random(in: 1...4, using: &rng)).map { _ in Self.command(&rng, services: services, state: h.state) }
            let newer = Self.decide(theirs, on: h.state, seed: 11, rules: h.rules, context: h.context).entries
            let ahead = Self.decide(mine, on: h.state, seed: 13, rules: h.rules, context: h.context)
            var after = h.state
            for entry in newer { after.apply(entry) }
            let again = Self.decide(mine, on: after, seed: 13, rules: h.rules, context: h.context)
            let moved = ahead.entries.map { $0.renumbered(by: UInt64(newer.count)) }
            let same = moved == again.entries && ahead.outcomes == again.outcomes
            let disjoint =
                newer.isEmpty
                || (ahead.reads.map { reads in h.state.speculativeWrites(of: newer)?.isDisjoint(with: reads) ?? false } ?? false)
            if disjoint {
                kept += 1
                #expect(same, "kept, but deciding again differs: mine \(mine), theirs \(theirs)")
            } else {
                conflicting += 1
                if !same { differed += 1 }
            }
        }
        // Both branches are exercised, and the rule is not vacuous: among the batches it sends back, some really
        // decide differently after the newer entries.
        #expect(
            kept > 300 && conflicting > 300 && differed > 100, "kept \(kept), conflicting \(conflicting), of which differed \(differed)")
    }

    @Test("Moving an entry later in the log moves the operations it records with it")
    func renumbering() throws {
        var h = Harness()
        let ns = try h.namespace("demo")
        let service = try h.service("web", in: ns).id
        let decision = try h.state.decide(
            .registerInstance(RegisterInstance(serviceId: service, instanceId: "i", attributes: [:])), context: h.context, now: Self.now,
            rules: h.rules, ids: &h.ids)
        let entry = ChangeLogEntry(sequence: h.state.sequence + 1, time: Self.now, events: decision.events)
        let moved = entry.renumbered(by: 3)
        #expect(moved.sequence == entry.sequence + 3)
        let ops = moved.events.compactMap { event -> UInt64? in
            if case .operationPut(let op) = event { return op.sequence }
            return nil
        }
        #expect(ops == [entry.sequence + 3])
        #expect(entry.renumbered(by: 0) == entry)
    }

    @Test("Operations pruned by another node make every batch be decided again")
    func pruningReadsEverything() throws {
        var rng = Rng(state: 1)
        let (h, _) = try Self.base(&rng)
        let pruned = ChangeLogEntry(sequence: h.state.sequence + 1, time: Self.now, events: [.operationsPruned(ids: ["x"])])
        #expect(h.state.speculativeWrites(of: [pruned]) == nil)
    }
}
