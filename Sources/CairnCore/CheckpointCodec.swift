import Foundation

/// The binary encodings of checkpoints (a whole `RegistryState`) and change-log entries. A checkpoint is what a node
/// reads first at every start, and JSON made it the slow part: 100,000 instances took seconds to decode through
/// `JSONDecoder`. Entries are on the write path: a node encodes its own and, in a cluster, decodes every other node's.
/// Instances, operations and idempotency records are length-prefixed binary fields; in a checkpoint the strings that
/// repeat (regions, accounts, service ids, attribute keys and values) are written once in a string table and referred
/// to by index, so decoding makes each of them once and instances share them. Namespaces and services, few next to
/// instances, stay JSON inside. A checksum over the whole covers damage; JSON written by earlier versions still
/// decodes.
///
/// Checkpoint: magic `CAIRNCK1`, then varints and length-prefixed byte strings: sequence, namespaces+services JSON,
/// the string table, instances (per service), operations, tokens. Entry: magic `CA 01`, sequence, time, events (a
/// kind byte each). Both end with the FNV-1a 64 checksum of all before it. An entry without its position (magic
/// `CA 02`, for a store that numbers entries as it stores them) leaves the sequence out and writes each operation's
/// sequence as its distance from the entry's: the store's sequence column completes it when it is read.
enum CheckpointCodec {
    static let magic = Array("CAIRNCK1".utf8)

    struct Head: Codable {
        var namespaces: Table<Namespace>
        var services: Table<Service>
    }

    static func isBinary(_ data: Data) -> Bool { data.starts(with: magic) }

    static func encode(_ state: RegistryState) throws -> Data {
        var writer = Writer()
        writer.bytes.append(contentsOf: magic)
        writer.varint(state.sequence)
        writer.blob(Array(try JSONEncoder().encode(Head(namespaces: state.namespaces, services: state.services))))
        // The string table comes before the records that use it, so records are written to a second buffer first.
        var body = Writer(interner: Interner())
        body.varint(UInt64(state.instances.count))
        for (serviceId, instances) in state.instances {
            body.shared(serviceId)
            body.varint(UInt64(instances.count))
            for (id, instance) in instances {
                body.string(id)
                body.instance(instance, key: id)
            }
        }
        body.varint(UInt64(state.operations.count))
        for (id, operation) in state.operations {
            body.string(id)
            body.operation(operation, key: id)
        }
        body.varint(UInt64(state.tokens.count))
        for (key, record) in state.tokens {
            body.string(key)
            body.string(record.resultId)
            body.string(record.fingerprint)
        }
        let table = body.interner ?? Interner()
        writer.varint(UInt64(table.strings.count))
        for string in table.strings { writer.string(string) }
        writer.bytes.append(contentsOf: body.bytes)
        writer.seal()
        return Data(writer.bytes)
    }

    static func decode(_ data: Data) throws -> RegistryState {
        var reader = try Reader(sealed: data, magic: magic, what: "checkpoint")
        let sequence = try reader.varint()
        let head = try JSONDecoder().decode(Head.self, from: Data(try reader.blob()))
        let count = try reader.count()
        var table: [String] = []
        table.reserveCapacity(count)
        for _ in 0..<count { table.append(try reader.string()) }
        reader.table = table
        var instances: Table<Table<Instance>> = [:]
        for _ in 0..<(try reader.count()) {
            let serviceId = try reader.shared()
            var members: [(String, Instance)] = []
            let size = try reader.count()
            members.reserveCapacity(size)
            for _ in 0..<size {
                let key = try reader.string()
                members.append((key, try reader.instance(key: key)))
            }
            instances[serviceId] = try Self.keyed(members)
        }
        var operations: [(String, Operation)] = []
        let operationCount = try reader.count()
        operations.reserveCapacity(operationCount)
        for _ in 0..<operationCount {
            let key = try reader.string()
            operations.append((key, try reader.operation(key: key)))
        }
        var tokens: [(String, IdempotencyRecord)] = []
        let tokenCount = try reader.count()
        tokens.reserveCapacity(tokenCount)
        for _ in 0..<tokenCount {
            tokens.append((try reader.string(), IdempotencyRecord(resultId: try reader.string(), fingerprint: try reader.string())))
        }
        try reader.finish()
        return RegistryState(
            sequence: sequence, namespaces: head.namespaces, services: head.services, instances: instances,
            operations: try keyed(operations), tokens: try keyed(tokens))
    }

    // MARK: Change-log entries

    /// Entries are binary too, for the same reason: every node decodes every entry any node wrote, and encodes its
    /// own, on the write path. Strings are inline (no table); namespaces and services, rare, are JSON inside.
    static let entryMagic: [UInt8] = [0xCA, 0x01]
    static let unplacedEntryMagic: [UInt8] = [0xCA, 0x02]

    /// `placed: false` writes the entry without its position (`CA 02`).
    static func encode(_ entry: ChangeLogEntry, placed: Bool = true) throws -> Data {
        var writer = Writer()
        writer.bytes.reserveCapacity(256)
        writer.bytes.append(contentsOf: placed ? entryMagic : unplacedEntryMagic)
        if placed { writer.varint(entry.sequence) }
        writer.signed(entry.time)
        writer.varint(UInt64(entry.events.count))
        for event in entry.events {
            switch event {
            case .namespacePut(let namespace):
                writer.byte(0)
                writer.blob(Array(try JSONEncoder().encode(namespace)))
            case .namespaceDeleted(let id):
                writer.byte(1)
                writer.string(id)
            case .servicePut(let service):
                writer.byte(2)
                writer.blob(Array(try JSONEncoder().encode(service)))
            case .serviceDeleted(let id):
                writer.byte(3)
                writer.string(id)
            case .instancePut(let instance):
                writer.byte(4)
                writer.instance(instance, key: nil)
            case .instanceDeleted(let serviceId, let instanceId):
                writer.byte(5)
                writer.string(serviceId)
                writer.string(instanceId)
            case .healthSet(let serviceId, let instanceId, let status):
                writer.byte(6)
                writer.string(serviceId)
                writer.string(instanceId)
                writer.byte(Self.code(status))
            case .operationPut(let operation):
                writer.byte(7)
                writer.operation(operation, key: nil, relativeTo: placed ? nil : entry.sequence)
            case .tokenRecorded(let key, let record):
                writer.byte(8)
                writer.string(key)
                writer.string(record.resultId)
                writer.string(record.fingerprint)
            case .operationsPruned(let ids):
                writer.byte(9)
                writer.varint(UInt64(ids.count))
                for id in ids { writer.string(id) }
            case .leaseRenewed(let serviceId, let instanceId, let at):
                writer.byte(10)
                writer.string(serviceId)
                writer.string(instanceId)
                writer.signed(at)
            }
        }
        writer.seal()
        return Data(writer.bytes)
    }

    static func isBinaryEntry(_ data: Data) -> Bool { data.starts(with: entryMagic) || data.starts(with: unplacedEntryMagic) }

    /// `sequence` is where the store keeps the entry: it places an entry written without its position, and must agree
    /// with one written with it.
    static func decodeEntry(_ data: Data, at position: UInt64? = nil) throws -> ChangeLogEntry {
        let placed = data.starts(with: entryMagic)
        var reader = try Reader(sealed: data, magic: placed ? entryMagic : unplacedEntryMagic, what: "change-log entry")
        let sequence: UInt64
        if placed {
            sequence = try reader.varint()
            if let position, position != sequence {
                throw CheckpointDamage("a change-log entry numbered \(sequence) is stored as \(position)")
            }
        } else {
            guard let position else { throw CheckpointDamage("a change-log entry without its position, read where none is stored") }
            sequence = position
        }
        let time = try reader.signed()
        var events: [RegistryEvent] = []
        let count = try reader.count()
        events.reserveCapacity(count)
        for _ in 0..<count {
            switch try reader.byte() {
            case 0: events.append(.namespacePut(try JSONDecoder().decode(Namespace.self, from: Data(try reader.blob()))))
            case 1: events.append(.namespaceDeleted(id: try reader.string()))
            case 2: events.append(.servicePut(try JSONDecoder().decode(Service.self, from: Data(try reader.blob()))))
            case 3: events.append(.serviceDeleted(id: try reader.string()))
            case 4: events.append(.instancePut(try reader.instance(key: nil)))
            case 5: events.append(.instanceDeleted(serviceId: try reader.string(), instanceId: try reader.string()))
            case 6:
                events.append(
                    .healthSet(serviceId: try reader.string(), instanceId: try reader.string(), status: try health(reader.byte())))
            case 7: events.append(.operationPut(try reader.operation(key: nil, relativeTo: placed ? nil : sequence)))
            case 8:
                events.append(
                    .tokenRecorded(
                        key: try reader.string(), record: IdempotencyRecord(resultId: try reader.string(), fingerprint: try reader.string())
                    ))
            case 9:
                var ids: [String] = []
                for _ in 0..<(try reader.count()) { ids.append(try reader.string()) }
                events.append(.operationsPruned(ids: ids))
            case 10: events.append(.leaseRenewed(serviceId: try reader.string(), instanceId: try reader.string(), at: try reader.signed()))
            case let tag: throw CheckpointDamage("an unknown event kind \(tag)")
            }
        }
        try reader.finish()
        return ChangeLogEntry(sequence: sequence, time: time, events: events)
    }

    static func keyed<Value>(_ members: [(String, Value)]) throws -> Table<Value> {
        var result: Table<Value> = [:]
        for (key, value) in members {
            guard result.updateValue(value, forKey: key) == nil else { throw CheckpointDamage("a key appears twice: \(key)") }
        }
        return result
    }

    static func code(_ health: HealthStatus) -> UInt8 {
        switch health {
        case .HEALTHY: 0
        case .UNHEALTHY: 1
        case .UNKNOWN: 2
        }
    }

    static func health(_ code: UInt8) throws -> HealthStatus {
        switch code {
        case 0: .HEALTHY
        case 1: .UNHEALTHY
        case 2: .UNKNOWN
        default: throw CheckpointDamage("an unknown health status \(code)")
        }
    }

    static func fnv1a(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    struct Interner {
        var strings: [String] = []
        var indexes: [String: UInt64] = [:]
        mutating func index(_ string: String) -> UInt64 {
            if let found = indexes[string] { return found }
            let index = UInt64(strings.count)
            strings.append(string)
            indexes[string] = index
            return index
        }
    }

    struct Writer {
        var bytes: [UInt8] = []
        /// With an interner, repeated strings go to its table and are written as indexes; without, inline.
        var interner: Interner?

        mutating func shared(_ value: String) {
            if let index = interner?.index(value) { varint(index) } else { string(value) }
        }

        /// The 64-bit FNV-1a checksum of everything written, big-endian, at the end.
        mutating func seal() {
            let sum = fnv1a(bytes[...])
            for shift in stride(from: 56, through: 0, by: -8) { byte(UInt8(truncatingIfNeeded: sum >> UInt64(shift))) }
        }

        /// An instance; `key` is the id it is filed under (written as "" when it is the instance's own).
        mutating func instance(_ instance: Instance, key: String?) {
            string(instance.id == key ? "" : instance.id)
            shared(instance.serviceId)
            map(instance.attributes)
            optional(instance.creatorRequestId)
            shared(instance.createdByAccount)
            byte(CheckpointCodec.code(instance.health))
            signed(instance.registeredAt)
        }

        /// `relativeTo`: the operation's sequence is written as its distance from this one (an entry without its
        /// position).
        mutating func operation(_ operation: Operation, key: String?, relativeTo base: UInt64? = nil) {
            string(operation.id == key ? "" : operation.id)
            shared(operation.region)
            shared(operation.account)
            shared(operation.type.rawValue)
            shared(operation.status.rawValue)
            optional(operation.errorCode)
            optional(operation.errorMessage)
            signed(operation.createDate)
            signed(operation.updateDate)
            map(operation.targets)
            varint(UInt64(operation.history.count))
            for transition in operation.history {
                shared(transition.status.rawValue)
                signed(transition.at)
            }
            if let base {
                signed(Int64(truncatingIfNeeded: operation.sequence &- base))
            } else {
                varint(operation.sequence)
            }
        }
        mutating func byte(_ value: UInt8) { bytes.append(value) }
        mutating func varint(_ value: UInt64) {
            var rest = value
            while rest >= 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
                rest >>= 7
            }
            bytes.append(UInt8(rest))
        }
        /// Zig-zag, so small negative numbers stay short.
        mutating func signed(_ value: Int64) { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }
        mutating func blob(_ value: [UInt8]) {
            varint(UInt64(value.count))
            bytes.append(contentsOf: value)
        }
        mutating func string(_ value: String) {
            var value = value
            value.withUTF8 { utf8 in
                varint(UInt64(utf8.count))
                bytes.append(contentsOf: utf8)
            }
        }
        /// 0 for nil, else 1 and the string.
        mutating func optional(_ value: String?) {
            guard let value else { return byte(0) }
            byte(1)
            string(value)
        }
        mutating func map(_ value: [String: String]) {
            varint(UInt64(value.count))
            for (key, item) in value {
                shared(key)
                shared(item)
            }
        }
    }

    /// Reads with every length checked against what is left: a damaged checkpoint throws, it never traps or makes
    /// an allocation larger than the checkpoint itself.
    struct Reader {
        let bytes: [UInt8]
        var position: Int
        let end: Int
        /// The string table, once read (checkpoints); nil where strings are inline (entries).
        var table: [String]?

        /// Checks the magic and the checksum; reads start after the magic and end before the checksum.
        init(sealed data: Data, magic: [UInt8], what: String) throws {
            bytes = [UInt8](data)
            guard bytes.count >= magic.count + 8, bytes.starts(with: magic) else { throw CheckpointDamage("not a Cairn \(what)") }
            end = bytes.count - 8
            var stored: UInt64 = 0
            for byte in bytes[end...] { stored = stored << 8 | UInt64(byte) }
            guard fnv1a(bytes[..<end]) == stored else { throw CheckpointDamage("the \(what)'s checksum does not match (it is damaged)") }
            position = magic.count
        }

        mutating func finish() throws {
            guard position == end else { throw CheckpointDamage("bytes after the last record") }
        }

        /// A string from the table by its index, or inline.
        mutating func shared() throws -> String {
            guard let table else { return try string() }
            let index = try varint()
            guard index < UInt64(table.count) else { throw CheckpointDamage("a string index past the table") }
            return table[Int(index)]
        }

        mutating func instance(key: String?) throws -> Instance {
            let id = try string()
            return Instance(
                id: id.isEmpty ? key ?? "" : id, serviceId: try shared(), attributes: try map(), creatorRequestId: try optional(),
                createdByAccount: try shared(), health: try CheckpointCodec.health(byte()), registeredAt: try signed())
        }

        mutating func operation(key: String?, relativeTo base: UInt64? = nil) throws -> Operation {
            let id = try string()
            let region = try shared()
            let account = try shared()
            guard let type = OperationType(rawValue: try shared()), let status = OperationStatus(rawValue: try shared()) else {
                throw CheckpointDamage("an operation of an unknown type or status")
            }
            let errorCode = try optional()
            let errorMessage = try optional()
            let createDate = try signed()
            let updateDate = try signed()
            let targets = try map()
            var history: [OperationTransition] = []
            for _ in 0..<(try count()) {
                guard let status = OperationStatus(rawValue: try shared()) else { throw CheckpointDamage("an unknown operation status") }
                history.append(OperationTransition(status: status, at: try signed()))
            }
            let sequence: UInt64
            if let base {
                let (placed, overflow) = Int64(clamping: base).addingReportingOverflow(try signed())
                guard !overflow, placed >= 0 else { throw CheckpointDamage("an operation placed before the log's start") }
                sequence = UInt64(placed)
            } else {
                sequence = try varint()
            }
            return Operation(
                id: id.isEmpty ? key ?? "" : id, region: region, account: account, type: type, status: status, errorCode: errorCode,
                errorMessage: errorMessage, createDate: createDate, updateDate: updateDate, targets: targets, history: history,
                sequence: sequence)
        }

        mutating func byte() throws -> UInt8 {
            guard position < end else { throw CheckpointDamage("the checkpoint ends early") }
            defer { position += 1 }
            return bytes[position]
        }

        mutating func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let byte = try self.byte()
                guard shift < 64, shift < 63 || byte <= 1 else { throw CheckpointDamage("a number is too long") }
                value |= UInt64(byte & 0x7f) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
        }

        mutating func signed() throws -> Int64 {
            let raw = try varint()
            return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
        }

        /// A count of things each at least one byte long: never more than the bytes left.
        mutating func count() throws -> Int {
            let value = try varint()
            guard value <= UInt64(end - position) else { throw CheckpointDamage("a count larger than the checkpoint") }
            return Int(value)
        }

        mutating func blob() throws -> ArraySlice<UInt8> {
            let length = try count()
            defer { position += length }
            return bytes[position..<position + length]
        }

        mutating func string() throws -> String {
            let slice = try blob()
            guard let string = String(validating: slice, as: UTF8.self) else { throw CheckpointDamage("a string is not UTF-8") }
            return string
        }

        mutating func optional() throws -> String? {
            switch try byte() {
            case 0: return nil
            case 1: return try string()
            default: throw CheckpointDamage("a malformed optional string")
            }
        }

        mutating func map() throws -> [String: String] {
            let size = try count()
            var result: [String: String] = [:]
            result.reserveCapacity(size)
            for _ in 0..<size {
                let key = try shared()
                guard result.updateValue(try shared(), forKey: key) == nil else { throw CheckpointDamage("a key appears twice: \(key)") }
            }
            return result
        }
    }
}

/// A checkpoint that does not decode: the store reports it as damage.
struct CheckpointDamage: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
