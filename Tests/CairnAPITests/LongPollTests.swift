import CairnAPI
import CloudMapWire
import Testing

@Suite("Long-poll discovery headers")
struct LongPollTests {
    @Test("An index and a wait in range ask for a wait; either alone, or a wait of 0, for none")
    func parsing() throws {
        #expect(try LongPoll.parse(index: "42", wait: "55") == LongPoll(index: 42, waitSeconds: 55))
        #expect(try LongPoll.parse(index: "18446744073709551615", wait: "1") == LongPoll(index: .max, waitSeconds: 1))
        #expect(try LongPoll.parse(index: "42", wait: "0") == nil)
        #expect(try LongPoll.parse(index: nil, wait: "5") == nil)
        #expect(try LongPoll.parse(index: "7", wait: nil) == nil)
        #expect(try LongPoll.parse(index: nil, wait: nil) == nil)
    }

    @Test(
        "Anything but a plain decimal number in range is InvalidInput",
        arguments: [
            ("1", "56"), ("1", "-1"), ("1", "+5"), ("1", "1.5"), ("1", ""), ("1", "99999999999999999999999"),
            ("abc", "5"), ("18446744073709551616", "5"), ("0x10", "5"), ("1 2", "5"), ("", "5"), ("٣", "5"),
        ])
    func malformed(index: String, wait: String) {
        #expect(throws: WireError.self) { try LongPoll.parse(index: index, wait: wait) }
    }
}
