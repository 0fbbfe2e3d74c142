import Foundation

/// A parsed JSON document. Requests are parsed into this, validated against the model, then read by handlers.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
    /// Pre-rendered JSON text inserted verbatim (timestamps with millisecond fractions, cached fragments).
    case raw(String)

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self, let value = members[key], value != .null { return value }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var intValue: Int64? {
        if case .int(let i) = self { return i }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// A `map<string,string>` member as a dictionary (validated input only).
    public var stringMap: [String: String]? {
        guard case .object(let o) = self else { return nil }
        var result: [String: String] = [:]
        for (k, v) in o { if let s = v.stringValue { result[k] = s } }
        return result
    }

    public var stringList: [String]? {
        arrayValue?.compactMap(\.stringValue)
    }

    /// The value as a person reads it in a table or a page: strings bare, numbers and booleans as written, null
    /// empty, pre-rendered values without their quotes, arrays and objects as JSON.
    public var displayText: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return String(b)
        case .raw(let r): return r.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        case .null: return ""
        case .array, .object: return JSONWriter.renderString(self)
        }
    }
}

extension JSONValue {
    /// Parses a request body; an empty body is `{}` as in every AWS JSON protocol.
    public static func parse(_ bytes: [UInt8]) throws(WireError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { buffer throws(WireError) in try parse(buffer) }
    }

    /// Parses a request body in contiguous memory (the path every API request takes, specialised).
    public static func parse(_ buffer: UnsafeBufferPointer<UInt8>) throws(WireError) -> JSONValue {
        var index = 0
        while index < buffer.count, buffer[index] == 0x20 || buffer[index] == 0x0A || buffer[index] == 0x0D || buffer[index] == 0x09 {
            index += 1
        }
        if index == buffer.count { return .object([:]) }
        do { return try JSONParser.parse(buffer) } catch {
            throw WireError(type: "SerializationException", message: "The request body is not valid JSON.")
        }
    }

    /// Parses a request body from any collection of bytes.
    public static func parse(_ bytes: some Collection<UInt8>) throws(WireError) -> JSONValue {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .object([:]) }
        func parsed(_ buffer: UnsafeBufferPointer<UInt8>) -> JSONValue? { try? JSONParser.parse(buffer) }
        let value: JSONValue? = bytes.withContiguousStorageIfAvailable(parsed) ?? Array(bytes).withUnsafeBufferPointer(parsed)
        guard let value else { throw WireError(type: "SerializationException", message: "The request body is not valid JSON.") }
        return value
    }
}
