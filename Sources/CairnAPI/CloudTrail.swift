import CairnCore

/// One API call as the audit trail records it, in CloudTrail's record format (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html).
struct CloudTrailEvent: Sendable, Equatable {
    struct Identity: Sendable, Equatable {
        var accessKeyId: String
        /// The configured principal's name (`dev` in dev mode).
        var userName: String
        init(accessKeyId: String, userName: String) {
            self.accessKeyId = accessKeyId
            self.userName = userName
        }
    }

    var eventTime: Int64
    var eventName: String
    var region: String
    var account: String
    var sourceIPAddress: String
    var userAgent: String
    var identity: Identity?
    /// JSON text with lower-camel member names, or nil.
    var requestParameters: String?
    var responseElements: String?
    var errorCode: String?
    var errorMessage: String?
    var requestID: String
    var eventID: String
    var readOnly: Bool
    /// ARNs of the namespaces and services the call touched (look-up by resource).
    var resources: [String]
    /// A change Cairn made itself (no caller): recorded as CloudTrail records a service's own action,
    /// `userIdentity: {"type": "AWSService", "invokedBy": …}`, and looked up by that name as principal.
    var invokedBy: String?

    init(
        eventTime: Int64, eventName: String, region: String, account: String, sourceIPAddress: String, userAgent: String,
        identity: Identity?, requestParameters: String?, responseElements: String? = nil, errorCode: String? = nil,
        errorMessage: String? = nil, requestID: String, eventID: String, readOnly: Bool, resources: [String] = []
    ) {
        self.eventTime = eventTime
        self.eventName = eventName
        self.region = region
        self.account = account
        self.sourceIPAddress = sourceIPAddress
        self.userAgent = userAgent
        self.identity = identity
        self.requestParameters = requestParameters
        self.responseElements = responseElements
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.requestID = requestID
        self.eventID = eventID
        self.readOnly = readOnly
        self.resources = resources
    }

    /// CloudTrail's fields in a fixed order (so the stored bytes, and their hash, are reproducible), as the members
    /// of the entry the store numbers and chains.
    var entry: AuditEntry {
        var out = JSONText()
        out.bytes = head
        outcome(into: &out)
        out.bytes += tail
        return finished(out.bytes)
    }

    /// The members up to `"responseElements":`, which do not depend on the call's outcome.
    var head: [UInt8] {
        var out = JSONText()
        out.bytes.reserveCapacity(640 + (requestParameters?.utf8.count ?? 0))
        out.raw("\"eventVersion\":\"1.09\",\"userIdentity\":")
        if let identity {
            out.raw("{\"type\":\"IAMUser\",\"principalId\":")
            out.string(identity.accessKeyId)
            out.raw(",\"arn\":")
            out.string("arn:\(ARN.partition(for: region)):iam::\(account):user/\(identity.userName)")
            out.raw(",\"accountId\":")
            out.string(account)
            out.raw(",\"accessKeyId\":")
            out.string(identity.accessKeyId)
            out.raw(",\"userName\":")
            out.string(identity.userName)
            out.raw("}")
        } else if let invokedBy {
            out.raw("{\"type\":\"AWSService\",\"invokedBy\":")
            out.string(invokedBy)
            out.raw("}")
        } else {
            out.raw("{\"type\":\"Unknown\"}")
        }
        out.raw(",\"eventTime\":")
        out.string(Self.timestamp(eventTime))
        out.raw(",\"eventSource\":\"servicediscovery.amazonaws.com\",\"eventName\":")
        out.string(eventName)
        out.raw(",\"awsRegion\":")
        out.string(region)
        out.raw(",\"sourceIPAddress\":")
        out.string(sourceIPAddress)
        out.raw(",\"userAgent\":")
        out.string(userAgent)
        out.raw(",\"requestParameters\":")
        out.raw(requestParameters ?? "null")
        out.raw(",\"responseElements\":")
        return out.bytes
    }

    /// The response elements and the error, the members that depend on the outcome.
    func outcome(into out: inout JSONText) {
        out.raw(responseElements ?? "null")
        if let errorCode {
            out.raw(",\"errorCode\":")
            out.string(errorCode)
            out.raw(",\"errorMessage\":")
            out.string(errorMessage ?? "")
        }
    }

    /// The members after the error: ids, resources and the constant trailer.
    var tail: [UInt8] {
        var out = JSONText()
        out.bytes.reserveCapacity(320 + resources.count * 160)
        out.raw(",\"requestID\":")
        out.string(requestID)
        out.raw(",\"eventID\":")
        out.string(eventID)
        out.raw(readOnly ? ",\"readOnly\":true" : ",\"readOnly\":false")
        out.raw(",\"resources\":[")
        for (index, arn) in resources.enumerated() {
            if index > 0 { out.raw(",") }
            out.raw("{\"accountId\":")
            out.string(account)
            out.raw(
                ARN.isNamespace(arn) ? ",\"type\":\"AWS::ServiceDiscovery::Namespace\"" : ",\"type\":\"AWS::ServiceDiscovery::Service\"")
            out.raw(",\"ARN\":")
            out.string(arn)
            out.raw("}")
        }
        out.raw("],\"eventType\":\"AwsApiCall\",\"managementEvent\":true,\"recipientAccountId\":")
        out.string(account)
        out.raw(",\"eventCategory\":\"Management\"")
        return out.bytes
    }

    func finished(_ members: [UInt8]) -> AuditEntry {
        AuditEntry(
            time: eventTime, eventName: eventName,
            principals: identity.map { [$0.accessKeyId, $0.userName] } ?? invokedBy.map { [$0] } ?? [],
            resources: resources, members: members)
    }

    /// `2026-11-25T06:00:00Z`, as CloudTrail writes eventTime.
    static func timestamp(_ milliseconds: Int64) -> String {
        let t = UTCTime(seconds: milliseconds / 1000)
        return "\(t.year)-\(t.two(t.month))-\(t.two(t.day))T\(t.two(t.hour)):\(t.two(t.minute)):\(t.two(t.second))Z"
    }
}

/// A call's record on its way to the writer: completed from the command's outcome by the operation's response
/// rendering (its `OperationSpec` row), then rendered as CloudTrail's record.
struct CloudTrailDraft: AuditDraft {
    var event: CloudTrailEvent
    var response: OperationSpec.AuditResponse
    var onlyIfChanged = false
    /// The members that do not depend on the outcome, rendered by the request's task before the writer takes the
    /// draft: the writer renders only the outcome, inside the store's write lock.
    private let head: [UInt8]
    private let tail: [UInt8]

    init(event: CloudTrailEvent, response: OperationSpec.AuditResponse) {
        self.event = event
        self.response = response
        head = event.head
        tail = event.tail
    }

    func entry(outcome: Result<CommandResult, CairnError>?) -> AuditEntry {
        var event = self.event
        var tail = self.tail
        switch outcome {
        case .success(let result)?:
            event.responseElements = response.render(result).flatMap(AuditRendering.elements)
            if case .service(let service) = result, !event.resources.contains(service.arn) {
                event.resources.append(service.arn)
                tail = event.tail
            }
        case .failure(let error)?:
            event.errorCode = error.code.rawValue
            event.errorMessage = String(error.message.prefix(AuditRendering.maxErrorMessage))
        case nil:
            break
        }
        var out = JSONText()
        out.bytes.reserveCapacity(head.count + tail.count + 256)
        out.bytes += head
        event.outcome(into: &out)
        out.bytes += tail
        return event.finished(out.bytes)
    }
}

/// A minimal JSON text builder, for records whose member order is fixed.
struct JSONText {
    var bytes: [UInt8] = []

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            // Most strings need no escape: copy them whole.
            guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                bytes.append(contentsOf: utf8)
                return
            }
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): bytes += [0x5C, 0x22]
                case UInt8(ascii: "\\"): bytes += [0x5C, 0x5C]
                case 0x0A: bytes += [0x5C, UInt8(ascii: "n")]
                case 0x0D: bytes += [0x5C, UInt8(ascii: "r")]
                case 0x09: bytes += [0x5C, UInt8(ascii: "t")]
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes += [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
                default: bytes.append(byte)
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
