/// An error as it goes on the wire: `{"__type": type, "Message": message, ...extra}` with an HTTP status.
public struct WireError: Error, Sendable, Equatable {
    public var type: String
    public var message: String
    public var status: Int
    public var extra: [String: String]

    public init(type: String, message: String, status: Int = 400, extra: [String: String] = [:]) {
        self.type = type
        self.message = message
        self.status = status
        self.extra = extra
    }

    public var body: [UInt8] {
        var members: [String: JSONValue] = ["__type": .string(type), "Message": .string(message)]
        for (k, v) in extra { members[k] = .string(v) }
        return JSONWriter.render(.object(members))
    }
}
