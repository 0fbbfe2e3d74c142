import CairnCore
import Foundation
import Testing

@Suite("Checkpoint codec: binary checkpoints")
struct CheckpointCodecTests {
    /// A state with every kind of record: namespaces of two types, services with DNS and custom health, instances
    /// with attributes (non-ASCII too), health of each kind, a failed operation, idempotency tokens.
    static func state() throws -> RegistryState {
        var h = Harness()
        let http = try h.namespace("apps")
        let dns = try h.namespace("lab.internal", type: .DNS_PRIVATE, token: "token-1")
        let web = try h.service("web", in: http, custom: true)
        let api = try h.service("api", in: dns, records: [DnsRecord(type: .A, ttl: 30), DnsRecord(type: .SRV, ttl: 30)])
        for i in 0..<40 {
            try h.run(
                .registerInstance(
                    RegisterInstance(
                        serviceId: web.id, instanceId: "i-\(i)",
                        attributes: ["AWS_INSTANCE_IPV4": "10.0.0.\(i)", "AWS_INSTANCE_PORT": "8080", "zone": "é-\(i % 3)"])))
            try h.run(
                .registerInstance(
                    RegisterInstance(
                        serviceId: api.id, instanceId: "a-\(i)",
                        attributes: ["AWS_INSTANCE_IPV4": "10.1.0.\(i)", "AWS_INSTANCE_PORT": "\(9000 + i)"])))
        }
        try h.run(.setCustomHealth(serviceId: web.id, instanceId: "i-1", status: .UNHEALTHY))
        try h.run(.setCustomHealth(serviceId: web.id, instanceId: "i-2", status: .HEALTHY))
        // A second namespace of the same name: its operation fails and is kept with its error.
        _ = try? h.namespace("apps", token: "token-2")
        return h.state
    }

    static func json(_ state: RegistryState) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(state)
    }

    @Test func roundTripsEveryRecord() throws {
        let state = try Self.state()
        let data = try RegistryCodec.encode(state)
        #expect(data.starts(with: Array("CAIRNCK1".utf8)))
        let decoded = try RegistryCodec.decodeState(data)
        #expect(try Self.json(decoded) == Self.json(state))
        #expect(decoded.sequence == state.sequence)
        #expect(!decoded.operations.isEmpty && !decoded.tokens.isEmpty)
        // What decoded encodes again to a checkpoint of the same state.
        #expect(try Self.json(RegistryCodec.decodeState(try RegistryCodec.encode(decoded))) == Self.json(state))
    }

    @Test func anEmptyStateRoundTrips() throws {
        let decoded = try RegistryCodec.decodeState(try RegistryCodec.encode(RegistryState()))
        #expect(decoded.sequence == 0 && decoded.instances.isEmpty)
    }

    @Test func aJSONCheckpointFromAnEarlierVersionStillDecodes() throws {
        let state = try Self.state()
        let decoded = try RegistryCodec.decodeState(try JSONEncoder().encode(state))
        #expect(try Self.json(decoded) == Self.json(state))
    }

    @Test func everyTruncationIsRefused() throws {
        let data = try RegistryCodec.encode(try Self.state())
        for length in stride(from: 0, to: data.count, by: max(1, data.count / 400)) {
            #expect(throws: (any Error).self) { try RegistryCodec.decodeState(data.prefix(length)) }
        }
    }

    @Test func aFlippedByteAnywhereIsRefused() throws {
        let data = try RegistryCodec.encode(try Self.state())
        for position in stride(from: 8, to: data.count, by: max(1, data.count / 400)) {
            var damaged = data
            damaged[position] ^= 0x20
            #expect(throws: (any Error).self) { try RegistryCodec.decodeState(damaged) }
        }
    }

    @Test func hostileBytesWithAValidChecksumThrowAndNeverTrap() throws {
        // Random bodies behind the magic, sealed with a correct checksum, so the reader's own checks are exercised.
        var generator = SystemRandomNumberGenerator()
        for size in [0, 1, 2, 5, 9, 17, 64, 300] {
            for _ in 0..<200 {
                var bytes = Array("CAIRNCK1".utf8)
                for _ in 0..<size { bytes.append(UInt8.random(in: 0...255, using: &generator)) }
                var hash: UInt64 = 0xcbf2_9ce4_8422_2325
                for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
                for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: hash >> UInt64(shift))) }
                _ = try? RegistryCodec.decodeState(Data(bytes))
            }
        }
        // A count far larger than the checkpoint is refused before anything is allocated for it: an empty state
        // (its last four varints are the counts of strings, instances, operations and tokens, all 0) with an
        // instance count of 2^32 - 1.
        let empty = [UInt8](try RegistryCodec.encode(RegistryState()))
        #expect(empty.dropLast(8).suffix(4) == [0, 0, 0, 0])
        var huge = Array(empty.dropLast(12)) + [0x00, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00]
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in huge { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        for shift in stride(from: 56, through: 0, by: -8) { huge.append(UInt8(truncatingIfNeeded: hash >> UInt64(shift))) }
        #expect(throws: (any Error).self) { try RegistryCodec.decodeState(Data(huge)) }
    }
}

@Suite("Checkpoint codec: binary change-log entries")
struct EntryCodecTests {
    /// One entry with every kind of event, taken from a real state where the kind carries a record.
    static func entry() throws -> ChangeLogEntry {
        let state = try CheckpointCodecTests.state()
        let namespace = try #require(state.namespaces.values.first)
        let service = try #require(
            state.services.values.first { !$0.attributes.isEmpty || $0.dnsConfig != nil } ?? state.services.values.first)
        let instance = try #require(state.instances.values.first?.values.first)
        let operation = try #require(state.operations.values.first { $0.errorCode != nil } ?? state.operations.values.first)
        let token = try #require(state.tokens.first)
        return ChangeLogEntry(
            sequence: 1 << 40, time: -5,
            events: [
                .namespacePut(namespace), .namespaceDeleted(id: namespace.id), .servicePut(service), .serviceDeleted(id: service.id),
                .instancePut(instance), .instanceDeleted(serviceId: instance.serviceId, instanceId: instance.id),
                .healthSet(serviceId: instance.serviceId, instanceId: instance.id, status: .UNHEALTHY), .operationPut(operation),
                .tokenRecorded(key: token.key, record: token.value), .operationsPruned(ids: [operation.id, "ü"]),
            ])
    }

    @Test func everyEventKindRoundTrips() throws {
        let entry = try Self.entry()
        let data = try RegistryCodec.encode(entry)
        #expect(data.starts(with: [0xCA, 0x01]))
        #expect(try RegistryCodec.decodeEntry(data) == entry)
        let empty = ChangeLogEntry(sequence: 0, time: 0, events: [])
        #expect(try RegistryCodec.decodeEntry(try RegistryCodec.encode(empty)) == empty)
    }

    @Test func aJSONEntryFromAnEarlierVersionStillDecodes() throws {
        let entry = try Self.entry()
        #expect(try RegistryCodec.decodeEntry(try JSONEncoder().encode(entry)) == entry)
    }

    @Test func damageIsRefused() throws {
        let data = try RegistryCodec.encode(try Self.entry())
        for length in 0..<data.count {
            #expect(throws: (any Error).self) { try RegistryCodec.decodeEntry(data.prefix(length)) }
        }
        for position in 2..<data.count {
            var damaged = data
            damaged[position] ^= 0x01
            #expect(throws: (any Error).self) { try RegistryCodec.decodeEntry(damaged) }
        }
    }

    @Test("An entry stored without its position takes it from the store, operations included, as a move would")
    func anUnplacedEntryTakesItsPositionFromTheStore() throws {
        let entry = try Self.entry()
        let data = try RegistryCodec.encodeUnplaced(entry)
        #expect(data.starts(with: [0xCA, 0x02]))
        #expect(try RegistryCodec.decodeEntry(data, at: entry.sequence) == entry)
        // Stored further on (another node's entries came first): the same as moving it there.
        #expect(try RegistryCodec.decodeEntry(data, at: entry.sequence + 7) == entry.renumbered(by: 7))
        // Without a position there is nothing to place it at.
        #expect(throws: (any Error).self) { try RegistryCodec.decodeEntry(data) }
        // A placed entry must agree with where the store keeps it.
        let placed = try RegistryCodec.encode(entry)
        #expect(try RegistryCodec.decodeEntry(placed, at: entry.sequence) == entry)
        #expect(throws: (any Error).self) { try RegistryCodec.decodeEntry(placed, at: entry.sequence + 1) }
        for length in 0..<data.count {
            #expect(throws: (any Error).self) { try RegistryCodec.decodeEntry(data.prefix(length), at: 1) }
        }
    }
}
