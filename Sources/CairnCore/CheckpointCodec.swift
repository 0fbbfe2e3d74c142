import Foundation

/// The binary encoding of a checkpoint (a whole `RegistryState`). A checkpoint is what a node reads first at every
/// start, and JSON made it the slow part: 100,000 instances took seconds to decode through `JSONDecoder`. This
/// format keeps the bulk (instances, operations, idempotency records) in length-prefixed binary fields, with the
/// strings that repeat (regions, accounts, service ids, attribute keys and values) written once in a string table and
/// referred to by index, so decoding makes each of them once and instances share them. Namespaces and services, few
/// next to instances, stay JSON inside it. A checksum over the whole covers damage; JSON checkpoints from earlier
/// versions still decode.
///
/// Layout: magic `CAIRNCK1`, then varints and length-prefixed byte strings: sequence, namespaces+services JSON, the
/// string table, instances (per service), operations, tokens; last, the FNV-1a 64 checksum of all before it.
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
        var body = Writer()
        var table = Interner()
        body.varint(UInt64(state.instances.count))
        for (serviceId, instances) in state.instances {
            body.varint(table.index(serviceId))
            body.varint(UInt64(instances.count))
            for (id, instance) in instances {
                body.string(id)
                body.string(instance.id == id ? "" : instance.id)
                body.varint(table.index(instance.serviceId))
                body.map(instance.attributes, &table)
                body.optional(instance.creatorRequestId)
                body.varint(table.index(instance.createdByAccount))
                body.byte(Self.code(instance.health))
                body.signed(instance.registeredAt)
            }
        }
        body.varint(UInt64(state.operations.count))
        for (id, operation) in state.operations {
            body.string(id)
            body.string(operation.id == id ? "" : operation.id)
            body.varint(table.index(operation.region))
            body.varint(table.index(operation.account))
            body.varint(table.index(operation.type.rawValue))
            body.varint(table.index(operation.status.rawValue))
            body.optional(operation.errorCode)
            body.optional(operation.errorMessage)
            body.signed(operation.createDate)
            body.signed(operation.updateDate)
            body.map(operation.targets, &table)
            body.varint(UInt64(operation.history.count))
            for transition in operation.history {
                body.varint(table.index(transition.status.rawValue))
                body.signed(transition.at)
            }
            body.varint(operation.sequence)
        }
        body.varint(UInt64(state.tokens.count))
        for (key, record) in state.tokens {
            body.string(key)
            body.string(record.resultId)
            body.string(record.fingerprint)
        }
        writer.varint(UInt64(table.strings.count))
        for string in table.strings { writer.string(string) }
        writer.bytes.append(contentsOf: body.bytes)
        let sum = fnv1a(writer.bytes[...])
        for shift in stride(from: 56, through: 0, by: -8) { writer.byte(UInt8(truncatingIfNeeded: sum >> UInt64(shift))) }
        return Data(writer.bytes)
    }

    static func decode(_ data: Data) throws -> RegistryState {
        let bytes = [UInt8](data)
        guard bytes.count >= magic.count + 8, bytes.starts(with: magic) else { throw CheckpointDamage("not a Cairn checkpoint") }
        let end = bytes.count - 8
        var stored: UInt64 = 0
        for byte in bytes[end...] { stored = stored << 8 | UInt64(byte) }
        guard fnv1a(bytes[..<end]) == stored else { throw CheckpointDamage("the checkpoint's checksum does not match (it is damaged)") }
        var reader = Reader(bytes: bytes, position: magic.count, end: end)
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
                let id = try reader.string()
                let instance = Instance(
                    id: id.isEmpty ? key : id, serviceId: try reader.shared(), attributes: try reader.map(),
                    creatorRequestId: try reader.optional(), createdByAccount: try reader.shared(), health: try Self.health(reader.byte()),
                    registeredAt: try reader.signed())
                members.append((key, instance))
            }
            instances[serviceId] = try Self.keyed(members)
        }
        var operations: [(String, Operation)] = []
        let operationCount = try reader.count()
        operations.reserveCapacity(operationCount)
        for _ in 0..<operationCount {
            let key = try reader.string()
            let id = try reader.string()
            let region = try reader.shared()
            let account = try reader.shared()
            guard let type = OperationType(rawValue: try reader.shared()), let status = OperationStatus(rawValue: try reader.shared())
            else {
                throw CheckpointDamage("an operation of an unknown type or status")
            }
            let errorCode = try reader.optional()
            let errorMessage = try reader.optional()
            let createDate = try reader.signed()
            let updateDate = try reader.signed()
            let targets = try reader.map()
            var history: [OperationTransition] = []
            for _ in 0..<(try reader.count()) {
                guard let status = OperationStatus(rawValue: try reader.shared()) else {
                    throw CheckpointDamage("an unknown operation status")
                }
                history.append(OperationTransition(status: status, at: try reader.signed()))
            }
            operations.append(
                (
                    key,
                    Operation(
                        id: id.isEmpty ? key : id, region: region, account: account, type: type, status: status, errorCode: errorCode,
                        errorMessage: errorMessage, createDate: createDate, updateDate: updateDate, targets: targets, history: history,
                        sequence: try reader.varint())
                ))
        }
        var tokens: [(String, IdempotencyRecord)] = []
        let tokenCount = try reader.count()
        tokens.reserveCapacity(tokenCount)
        for _ in 0..<tokenCount {
            tokens.append((try reader.string(), IdempotencyRecord(resultId: try reader.string(), fingerprint: try reader.string())))
        }
        guard reader.position == end else { throw CheckpointDamage("the checkpoint has bytes after its last record") }
        return RegistryState(
            sequence: sequence, namespaces: head.namespaces, services: head.services, instances: instances,
            operations: try keyed(operations), tokens: try keyed(tokens))
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
        mutating func map(_ value: [String: String], _ table: inout Interner) {
            varint(UInt64(value.count))
            for (key, item) in value {
                varint(table.index(key))
                varint(table.index(item))
            }
        }
    }

    /// Reads with every length checked against what is left: a damaged checkpoint throws, it never traps or makes
    /// an allocation larger than the checkpoint itself.
    struct Reader {
        let bytes: [UInt8]
        var position: Int
        let end: Int
        /// The string table, once read.
        var table: [String] = []

        /// A string from the table, by its index.
        mutating func shared() throws -> String {
            let index = try varint()
            guard index < UInt64(table.count) else { throw CheckpointDamage("a string index past the table") }
            return table[Int(index)]
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
