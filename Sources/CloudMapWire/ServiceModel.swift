/// The servicediscovery 2017-03-14 model as data: the generated tables live in `ServiceModel+Generated.swift`.
public enum ServiceModel {
    /// One operation of the model.
    public struct OperationShape: Sendable {
        public let input: String
        public let output: String?
        public let errors: [String]
    }

    /// The constraints of one shape, exactly as the botocore model states them.
    public enum Shape: Sendable {
        case structure(members: [String: String], required: [String])
        case string(min: Int?, max: Int?, pattern: String?, enumValues: [String]?)
        case integer(min: Int64?, max: Int64?)
        case list(member: String, min: Int?, max: Int?)
        case map(key: String, value: String, min: Int?, max: Int?)
        case boolean
        case timestamp
    }
}
