import Foundation

/// One API call as the audit trail records it, before the store numbers and chains it. Rendered as a
/// CloudTrail record (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html).
public struct AuditEvent: Sendable, Equatable {
    public struct Identity: Sendable, Equatable {
        public var accessKeyId: String
        /// The configured principal's name (`dev` in dev mode).
        public var userName: String
        public init(accessKeyId: String, userName: String) {
            self.accessKeyId = accessKeyId
            self.userName = userName
        }
    }

    public var eventTime: Int64
    public var eventName: String
    public var region: String
    public var account: String
    public var sourceIPAddress: String
    public var userAgent: String
    public var identity: Identity?
    /// JSON text with lower-camel member names, or nil.
    public var requestParameters: String?
    public var responseElements: String?
    public var errorCode: String?
    public var errorMessage: String?
    public var requestID: String
    public var eventID: String
    public var readOnly: Bool
    /// ARNs of the namespaces and services the call touched (look-up by resource).
    public var resources: [String]

    public init(
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

    /// The stored record: CloudTrail's fields in a fixed order, then Cairn's sequence number and the hash of the
    /// previous record, so the bytes (and their hash) are reproducible.
    public func render(sequence: UInt64, previousHash: String) -> [UInt8] {
        var out = JSONText()
        out.raw("{\"eventVersion\":\"1.09\",\"userIdentity\":")
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
        out.raw(responseElements ?? "null")
        if let errorCode {
            out.raw(",\"errorCode\":")
            out.string(errorCode)
            out.raw(",\"errorMessage\":")
            out.string(errorMessage ?? "")
        }
        out.raw(",\"requestID\":")
        out.string(requestID)
        out.raw(",\"eventID\":")
        out.string(eventID)
        out.raw(",\"readOnly\":\(readOnly)")
        out.raw(",\"resources\":[")
        for (index, arn) in resources.enumerated() {
            if index > 0 { out.raw(",") }
            out.raw("{\"accountId\":")
            out.string(account)
            out.raw(",\"type\":")
            out.string(arn.contains(":namespace/") ? "AWS::ServiceDiscovery::Namespace" : "AWS::ServiceDiscovery::Service")
            out.raw(",\"ARN\":")
            out.string(arn)
            out.raw("}")
        }
        out.raw("],\"eventType\":\"AwsApiCall\",\"managementEvent\":true,\"recipientAccountId\":")
        out.string(account)
        out.raw(",\"eventCategory\":\"Management\",\"cairnSequence\":\(sequence),\"cairnPreviousHash\":")
        out.string(previousHash)
        out.raw("}")
        return out.bytes
    }

    /// `2026-11-25T06:00:00Z`, as CloudTrail writes eventTime.
    public static func timestamp(_ milliseconds: Int64) -> String {
        let t = UTCTime(seconds: milliseconds / 1000)
        return "\(t.year)-\(t.two(t.month))-\(t.two(t.day))T\(t.two(t.hour)):\(t.two(t.minute)):\(t.two(t.second))Z"
    }
}

/// A UTC calendar time from seconds since 1970, without a DateFormatter (which costs more than what uses it):
/// the civil date by Howard Hinnant's algorithm. The audit trail's and SigV4's timestamps are both made of it.
public struct UTCTime: Sendable, Equatable {
    public var year, month, day, hour, minute, second: Int64

    public init(seconds: Int64) {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let rest = seconds - days * 86400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        hour = rest / 3600
        minute = rest / 60 % 60
        second = rest % 60
    }

    /// Two digits, zero-padded.
    public func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
}

/// A stored audit record: its number, time and the exact bytes that were chained.
public struct AuditRecord: Sendable, Equatable {
    public var sequence: UInt64
    public var time: Int64
    public var record: [UInt8]
    public var hash: String

    public init(sequence: UInt64, time: Int64, record: [UInt8], hash: String) {
        self.sequence = sequence
        self.time = time
        self.record = record
        self.hash = hash
    }
}

/// A look-up of the trail: every given criterion must hold. Results come newest first.
public struct AuditQuery: Sendable, Equatable {
    public var startTime: Int64?
    public var endTime: Int64?
    public var eventName: String?
    /// An access key id or a principal's name.
    public var principal: String?
    /// A namespace or service ARN, or a bare id (`ns-…`, `srv-…`).
    public var resource: String?
    public var limit: Int
    /// Records older than this sequence number (the previous page's token).
    public var before: UInt64?

    public init(
        startTime: Int64? = nil, endTime: Int64? = nil, eventName: String? = nil, principal: String? = nil, resource: String? = nil,
        limit: Int = 50, before: UInt64? = nil
    ) {
        self.startTime = startTime
        self.endTime = endTime
        self.eventName = eventName
        self.principal = principal
        self.resource = resource
        self.limit = limit
        self.before = before
    }
}

public struct AuditPage: Sendable, Equatable {
    public var records: [AuditRecord]
    /// The `before` of the next page, nil on the last.
    public var next: UInt64?
    public init(records: [AuditRecord], next: UInt64?) {
        self.records = records
        self.next = next
    }
}

/// The outcome of checking the stored chain.
public struct AuditVerification: Sendable, Equatable {
    public var records: Int
    /// The first record whose hash or link does not match, nil when the chain is intact.
    public var firstBroken: UInt64?
    public var problem: String?
    /// The hash of the newest record (note it somewhere safe to detect a rewrite of the whole tail).
    public var headHash: String

    public init(records: Int, firstBroken: UInt64?, problem: String?, headHash: String) {
        self.records = records
        self.firstBroken = firstBroken
        self.problem = problem
        self.headHash = headHash
    }
}

/// A minimal JSON text builder (CairnCore stays free of the wire module).
struct JSONText {
    var bytes: [UInt8] = []

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
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
        bytes.append(UInt8(ascii: "\""))
    }
}
