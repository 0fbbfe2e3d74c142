import CloudMapWire

/// Long-poll discovery, a Cairn extension (docs/api-compatibility.md): `DiscoverInstances` and
/// `DiscoverInstancesRevision` with `X-Cairn-Index` (the index of an earlier answer) and `X-Cairn-Wait` (seconds,
/// at most `maxWait`, below botocore's 60 s read timeout) answer once the service's answer differs from the one at
/// that index, or when the wait ends. Every such answer carries the current index in `X-Cairn-Index`.
public struct LongPoll: Sendable, Equatable {
    public static let indexHeader = "x-cairn-index"
    public static let waitHeader = "x-cairn-wait"
    public static let maxWait = 55

    public var index: UInt64
    public var waitSeconds: Int

    public init(index: UInt64, waitSeconds: Int) {
        self.index = index
        self.waitSeconds = waitSeconds
    }

    /// The headers as sent: nil when they ask for no wait (neither given, or one without the other, or a wait of 0);
    /// `InvalidInput` when either is not a plain decimal number in range.
    public static func parse(index: String?, wait: String?) throws(WireError) -> LongPoll? {
        var parsedIndex: UInt64?
        if let index {
            guard let value = decimal(index, max: UInt64.max) else {
                throw WireError(
                    type: "InvalidInput",
                    message: "X-Cairn-Index must be the index of an earlier answer (a decimal number), not '\(index.prefix(32))'.")
            }
            parsedIndex = value
        }
        var parsedWait: Int?
        if let wait {
            guard let value = decimal(wait, max: UInt64(maxWait)) else {
                throw WireError(
                    type: "InvalidInput",
                    message: "X-Cairn-Wait must be a whole number of seconds from 0 to \(maxWait), not '\(wait.prefix(32))'.")
            }
            parsedWait = Int(value)
        }
        guard let parsedIndex, let parsedWait, parsedWait > 0 else { return nil }
        return LongPoll(index: parsedIndex, waitSeconds: parsedWait)
    }

    /// A decimal number of at most 20 digits, not above `max`; nil for anything else (signs, spaces, overflow).
    static func decimal(_ text: String, max: UInt64) -> UInt64? {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = sum
        }
        return value <= max ? value : nil
    }
}
