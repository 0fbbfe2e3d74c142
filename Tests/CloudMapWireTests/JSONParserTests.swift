import CloudMapWire
import Foundation
import Testing

/// The byte parser against Foundation's `JSONSerialization`, which it replaced: the same values for what both read,
/// a SerializationException for what Foundation refused. Where they differ the parser follows RFC 8259 and
/// Foundation did not: a trailing comma (Foundation accepted it) and negative integers below about -10^18 that fit
/// Int64 (Foundation made them doubles).
@Suite("JSON parser, beside Foundation's")
struct JSONParserTests {
    /// Foundation's objects as JSON values, as `JSONValue.parse` converted them before.
    static func foundation(_ text: [UInt8]) -> JSONValue? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text), options: [.fragmentsAllowed]) else { return nil }
        return convert(object)
    }

    static func convert(_ object: Any) -> JSONValue {
        switch object {
        case let string as String: return .string(string)
        case let dictionary as [String: Any]: return .object(dictionary.mapValues(convert))
        case let array as [Any]: return .array(array.map(convert))
        case is NSNull: return .null
        case let number as NSNumber:
            let code = String(cString: number.objCType)
            if code == "c" || code == "B" { return .bool(number.boolValue) }
            if number is NSDecimalNumber || code == "d" || code == "f" {
                let double = number.doubleValue
                if let exact = Int64(exactly: double), !(number is NSDecimalNumber) { return .int(exact) }
                return .double(double)
            }
            return .int(number.int64Value)
        default: return .null
        }
    }

    static func ours(_ text: [UInt8]) -> JSONValue? { try? JSONValue.parse(text) }

    @Test(
        "Documents both read give the same value",
        arguments: [
            #"{"NamespaceName":"bench","ServiceName":"svc","HealthStatus":"ALL","MaxResults":1000}"#,
            #"{"a":[1,-2,0,-0,3.5,-1.25e3,1e2,1.0,2E-2,9223372036854775807,-922337203685477580],"b":{"c":{}},"d":[]}"#,
            #"{"s":"quote\" slash\/ back\\ \b\f\n\r\t \u00e9 \u20AC \ud83d\ude00 é €","t":true,"f":false,"n":null}"#,
            #"  [ 1 , { "x" : [ ] } , "y" ]  "#, #""just a string""#, "42", "true", "null", "-0.0",
            #"{"k":1,"k":2}"#, #"{"":""}"#, "\u{FEFF}{\"bom\":1}",
        ])
    func agrees(text: String) {
        let bytes = Array(text.utf8)
        #expect(Self.ours(bytes) != nil)
        #expect(Self.ours(bytes) == Self.foundation(bytes))
    }

    @Test(
        "What is not JSON is refused",
        arguments: [
            "{", "}", "[", "]", "{\"a\":}", "{\"a\" 1}", "[,1]", "nul", "tru", "falsey", "{\"a\":1}}",
            "[1 2]", "01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "NaN", "Infinity", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"",
            "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"tab\tinside\"", "\"open", "{'a':1}", "{a:1}", "[1]x", "// c\n1",
        ])
    func refused(text: String) {
        #expect(Self.ours(Array(text.utf8)) == nil)
        #expect(Self.foundation(Array(text.utf8)) == nil, "Foundation refuses it too")
    }

    @Test("Where Foundation was lenient or lossy, RFC 8259 and Int64 hold")
    func departures() {
        for text in [#"{"a":1,}"#, "[1,]", "[1,2,]"] {
            #expect(Self.ours(Array(text.utf8)) == nil)
            #expect(Self.foundation(Array(text.utf8)) != nil, "Foundation accepted a trailing comma")
        }
        #expect(Self.ours(Array("-9223372036854775808".utf8)) == .int(.min))
        #expect(Self.ours(Array("-1056139811788927690".utf8)) == .int(-1_056_139_811_788_927_690))
    }

    @Test("Invalid UTF-8 in a string is refused")
    func invalidUTF8() {
        for bytes: [UInt8] in [
            [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0x5C, 0x6E, 0xC0, 0xAF, 0x22],
        ] {
            #expect(Self.ours(bytes) == nil)
        }
    }

    @Test("Nesting is bounded: 512 levels read, deeper refused without exhausting the stack")
    func depth() {
        #expect(Self.ours(Array((String(repeating: "[", count: 512) + String(repeating: "]", count: 512)).utf8)) != nil)
        #expect(Self.ours(Array((String(repeating: "[", count: 513) + String(repeating: "]", count: 513)).utf8)) == nil)
        #expect(Self.ours(Array((String(repeating: "{\"a\":", count: 100_000) + "1" + String(repeating: "}", count: 100_000)).utf8)) == nil)
    }

    @Test("Numbers: integers past Int64 become doubles, exact fractions integers, huge exponents infinite doubles")
    func numbers() {
        #expect(Self.ours(Array("9223372036854775808".utf8)) == .double(9_223_372_036_854_775_808))
        #expect(Self.ours(Array("-9223372036854775809".utf8)) == .double(-9_223_372_036_854_775_809))
        #expect(Self.ours(Array("100.000".utf8)) == .int(100))
        #expect(Self.ours(Array("1e400".utf8)) == .double(.infinity))
        #expect(Self.ours(Array("123456789012345678901234567890".utf8)) == .double(1.2345678901234568e29))
    }

    @Test("Random documents read as Foundation reads them")
    func randomDocuments() {
        var rng = SystemRandomNumberGenerator()
        func scalar() -> String {
            switch Int.random(in: 0..<8, using: &rng) {
            case 0: return String(Int64.random(in: -(1 << 59)...Int64.max, using: &rng))
            case 1: return String(Int.random(in: -1000...1000, using: &rng)) + "." + String(Int.random(in: 0...999, using: &rng))
            case 2: return ["true", "false", "null"].randomElement(using: &rng)!
            case 3: return "\(Int.random(in: 1...9, using: &rng))e\(Int.random(in: -5...5, using: &rng))"
            default:
                let pieces = ["a", "Z", "0", " ", "\\\"", "\\\\", "\\n", "\\u00e9", "é", "€", "😀", "\\ud83d\\ude00", "/", "\\/"]
                return "\"" + (0..<Int.random(in: 0...6, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined() + "\""
            }
        }
        func document(_ depth: Int) -> String {
            guard depth < 4, Bool.random(using: &rng) else { return scalar() }
            let count = Int.random(in: 0...4, using: &rng)
            if Bool.random(using: &rng) {
                return "[" + (0..<count).map { _ in document(depth + 1) }.joined(separator: ",") + "]"
            }
            return "{" + (0..<count).map { i in "\"k\(i)\" : " + document(depth + 1) }.joined(separator: " ,") + "}"
        }
        for _ in 0..<2000 {
            let bytes = Array(document(0).utf8)
            let expected = Self.foundation(bytes)
            #expect(expected != nil)
            #expect(Self.ours(bytes) == expected, "\(String(decoding: bytes, as: UTF8.self))")
        }
    }
}
