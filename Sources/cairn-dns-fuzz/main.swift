// Fuzzes the DNS parser and responder for a given time: `cairn-dns-fuzz [seconds] [seed]`. Exit 1 on any failure.
import CairnDNS
import CairnTesting
import Foundation

let arguments = CommandLine.arguments
let seconds = arguments.count > 1 ? Int(arguments[1]) ?? 10 : 10
let seed = arguments.count > 2 ? UInt64(arguments[2]) ?? 1 : UInt64.random(in: 1...UInt64.max)
let state = FuzzWorld.state
let resolver = DNSResolver(configuration: FuzzWorld.configuration)
var fuzzer = DNSFuzzer(
    seed: seed, responder: DNSResponder(resolver: resolver), state: state, corpus: DNSFuzzer.seedCorpus(resolver: resolver, state: state))
let report = fuzzer.run(until: .now + .seconds(seconds))
print("cairn-dns-fuzz seed \(seed), \(seconds) s: \(report)")
for failure in report.failures { print("FAIL \(failure)") }
exit(report.failures.isEmpty ? 0 : 1)
