/// Exact hand-written matchers for the model patterns on hot paths, so a request need not run ICU's regex
/// engine. Each is checked against `NSRegularExpression` on random strings by the unit tests.
enum PatternFastPaths {
    static func isPrintable(_ byte: UInt8) -> Bool { byte >= 0x21 && byte <= 0x7E }

    /// `^[!-~]{min,max}$`, optionally with `(?!arn:)` in front.
    static func printable(_ s: String, min: Int, max: Int?, notARN: Bool) -> Bool {
        var count = 0
        for byte in s.utf8 {
            guard isPrintable(byte) else { return false }
            count += 1
        }
        if count < min { return false }
        if let max, count > max { return false }
        return !(notARN && s.utf8.starts(with: "arn:".utf8))
    }

    static func isAlnum(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    /// `^[0-9a-zA-Z_/:.@-]+$`
    static func instanceId(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { isAlnum($0) || "_/:.@-".utf8.contains($0) }
    }

    /// The ServiceName pattern: `.` alone, or 1–127 characters of dot-separated labels where a one-character label
    /// is alphanumeric and a longer one (up to 63) has `[A-Za-z0-9_]` at both ends and `[A-Za-z0-9_-]` inside.
    static func serviceName(_ s: String) -> Bool {
        let bytes = Array(s.utf8)
        if bytes == [UInt8(ascii: ".")] { return true }
        guard (1...127).contains(bytes.count) else { return false }
        for label in bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            let edge = { (b: UInt8) in isAlnum(b) || b == UInt8(ascii: "_") }
            switch label.count {
            case 1: if !isAlnum(label.first!) { return false }
            case 2...63:
                guard edge(label.first!), edge(label.last!) else { return false }
                if !label.dropFirst().dropLast().allSatisfy({ edge($0) || $0 == UInt8(ascii: "-") }) { return false }
            default: return false
            }
        }
        return true
    }

    /// The AttrValue pattern, `^([a-zA-Z0-9!-~][ \ta-zA-Z0-9!-~]*){0,1}[a-zA-Z0-9!-~]{0,1}$`: empty, or a printable
    /// character followed by printable characters, spaces and tabs (every RegisterInstance's attribute values).
    static func attributeValue(_ s: String) -> Bool {
        var first = true
        for byte in s.utf8 {
            guard isPrintable(byte) || (!first && (byte == 0x20 || byte == 0x09)) else { return false }
            first = false
        }
        return true
    }

    /// The matcher for `pattern`, when there is a fast one.
    static func matcher(for pattern: String) -> (@Sendable (String) -> Bool)? {
        switch pattern {
        case "^[!-~]{1,1024}$": return { printable($0, min: 1, max: 1024, notARN: false) }
        case "^(?!arn:)[!-~]{1,1024}$": return { printable($0, min: 1, max: 1024, notARN: true) }
        case "^(?!arn:)[!-~]{1,253}$": return { printable($0, min: 1, max: 253, notARN: true) }
        case "^[a-zA-Z0-9!-~]+$": return { printable($0, min: 1, max: nil, notARN: false) }
        case "^[0-9a-zA-Z_/:.@-]+$": return { instanceId($0) }
        case "^([a-zA-Z0-9!-~][ \\ta-zA-Z0-9!-~]*){0,1}[a-zA-Z0-9!-~]{0,1}$": return { attributeValue($0) }
        case "((?=^.{1,127}$)^([a-zA-Z0-9_][a-zA-Z0-9-_]{0,61}[a-zA-Z0-9_]|[a-zA-Z0-9])(\\.([a-zA-Z0-9_][a-zA-Z0-9-_]{0,61}[a-zA-Z0-9_]|[a-zA-Z0-9]))*$)|(^\\.$)":
            return { serviceName($0) }
        default: return nil
        }
    }
}
