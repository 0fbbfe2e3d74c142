import Foundation

/// Opaque NextTokens: the sort key of the last item returned, bound to the list it came from.
public enum Pagination {
    static let version = "cairn1"

    public static func token(kind: String, lastKey: String) -> String {
        Data("\(version)|\(kind)|\(lastKey)".utf8).base64EncodedString()
    }

    static func decode(_ token: String, kind: String) throws(CairnError) -> String {
        guard let data = Data(base64Encoded: token), let text = String(data: data, encoding: .utf8) else {
            throw CairnError.invalid("The NextToken is not valid.")
        }
        let parts = text.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == version, parts[1] == kind else {
            throw CairnError.invalid("The NextToken is not valid for this request.")
        }
        return String(parts[2])
    }

    /// One page of `items` (sorted ascending by `key`) after `token`; the next token when more remain.
    public static func page<T>(
        _ items: [T], key: (T) -> String, token: String?, maxResults: Int, kind: String
    ) throws(CairnError) -> (page: [T], nextToken: String?) {
        var start = 0
        if let token {
            let after = try decode(token, kind: kind)
            start = items.firstIndex { key($0) > after } ?? items.count
        }
        let end = min(items.count, start + maxResults)
        let page = Array(items[start..<end])
        let next = end < items.count && !page.isEmpty ? Self.token(kind: kind, lastKey: key(page[page.count - 1])) : nil
        return (page, next)
    }

    /// A sort key that orders by a number first: zero-padded so string order equals numeric order.
    public static func key(_ number: Int64, _ id: String) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + "|" + id
    }
}
