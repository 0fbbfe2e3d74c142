import CloudMapWire
import Testing

@Suite("JSON parsing and writing")
struct JSONTests {
    @Test("An empty body is an empty object")
    func emptyBody() throws {
        #expect(try JSONValue.parse(Array("  \n".utf8)) == .object([:]))
    }

    @Test("Booleans, integers, doubles and strings stay distinct")
    func scalarTypes() throws {
        let value = try JSONValue.parse(Array(#"{"b":true,"i":3,"d":1.5,"s":"3","n":null}"#.utf8))
        #expect(value["b"] == .bool(true))
        #expect(value["i"] == .int(3))
        #expect(value["d"] == .double(1.5))
        #expect(value["s"] == .string("3"))
        #expect(value["n"] == nil)
    }

    @Test("Malformed JSON is a SerializationException", arguments: ["{", "{\"a\":}", "nul", "{\"a\":1}}", "[1 2]"])
    func malformed(text: String) {
        #expect(throws: WireError.self) { try JSONValue.parse(Array(text.utf8)) }
    }

    @Test("Writing escapes, sorts keys and renders millisecond timestamps")
    func golden() {
        let value = JSONValue.object([
            "b": .string("quote\" backslash\\ newline\n tab\t bell\u{07} é"),
            "a": .array([.int(-1), .bool(false), .null]),
            "t": .timestamp(milliseconds: 1_587_081_768_034),
        ])
        #expect(
            JSONWriter.renderString(value)
                == #"{"a":[-1,false,null],"b":"quote\" backslash\\ newline\n tab\t bell\u0007 é","t":1587081768.034}"#)
    }

    @Test("Error bodies carry __type, Message and the extra members")
    func errorBody() {
        let error = WireError(type: "DuplicateRequest", message: "m", extra: ["DuplicateOperationId": "op"])
        #expect(String(decoding: error.body, as: UTF8.self) == #"{"DuplicateOperationId":"op","Message":"m","__type":"DuplicateRequest"}"#)
    }

    @Test(
        "Display text: scalars as written, timestamps without quotes, containers as JSON",
        arguments: [
            (JSONValue.string("orders"), "orders"), (.int(42), "42"), (.double(1.5), "1.5"), (.bool(true), "true"), (.null, ""),
            (.timestamp(milliseconds: 1_587_081_768_334), "1587081768.334"), (.array([.string("a"), .int(1)]), #"["a",1]"#),
        ])
    func displayText(value: JSONValue, text: String) {
        #expect(value.displayText == text)
    }
}
