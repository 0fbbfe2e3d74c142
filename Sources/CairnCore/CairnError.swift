/// A registry error with a code; only the API layer maps codes to `__type` and HTTP status.
public struct CairnError: Error, Sendable, Equatable {
    public enum Code: String, Sendable, Codable {
        case invalidInput = "InvalidInput"
        case namespaceNotFound = "NamespaceNotFound"
        case serviceNotFound = "ServiceNotFound"
        case instanceNotFound = "InstanceNotFound"
        case operationNotFound = "OperationNotFound"
        case resourceNotFound = "ResourceNotFoundException"
        case namespaceAlreadyExists = "NamespaceAlreadyExists"
        case serviceAlreadyExists = "ServiceAlreadyExists"
        case duplicateRequest = "DuplicateRequest"
        case resourceInUse = "ResourceInUse"
        case resourceLimitExceeded = "ResourceLimitExceeded"
        case tooManyTags = "TooManyTagsException"
        case serviceAttributesLimitExceeded = "ServiceAttributesLimitExceededException"
        case customHealthNotFound = "CustomHealthNotFound"
        case requestLimitExceeded = "RequestLimitExceeded"
        case internalFailure = "InternalFailure"
        case serviceUnavailable = "ServiceUnavailable"
    }

    public var code: Code
    public var message: String
    /// Extra members of the modelled error (`NamespaceId`, `DuplicateOperationId`, ...).
    public var extra: [String: String]

    public init(_ code: Code, _ message: String, extra: [String: String] = [:]) {
        self.code = code
        self.message = message
        self.extra = extra
    }

    public static func invalid(_ message: String) -> CairnError { CairnError(.invalidInput, message) }
}
