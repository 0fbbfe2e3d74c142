import Foundation

/// One audit record as the store keeps it: the columns it is looked up by, and the record's JSON members already
/// rendered by whoever knows the record format (CloudTrail's, in CairnAPI). The store numbers the record and
/// appends its chain link; CairnCore never reads the members.
public struct AuditEntry: Sendable, Equatable {
    public var time: Int64
    public var eventName: String
    /// The access key id and principal name the record can be looked up by.
    public var principals: [String]
    /// ARNs of the namespaces and services the call touched (look-up by resource).
    public var resources: [String]
    /// `"member":value,…` of one JSON object, without its braces.
    public var members: [UInt8]

    public init(time: Int64, eventName: String, principals: [String], resources: [String], members: [UInt8]) {
        self.time = time
        self.eventName = eventName
        self.principals = principals
        self.resources = resources
        self.members = members
    }

    /// The stored bytes: the members, then Cairn's sequence number and the hash of the previous record, so the
    /// bytes (and their hash) are reproducible.
    public func record(sequence: UInt64, previousHash: String) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        bytes.reserveCapacity(members.count + previousHash.utf8.count + 48)
        bytes += members
        bytes += Array(",\"cairnSequence\":\(sequence),\"cairnPreviousHash\":\"".utf8)
        bytes += previousHash.utf8.filter { $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") && $0 >= 0x20 }
        bytes += Array("\"}".utf8)
        return bytes
    }
}

/// The audit record of one call, handed to the writer with the call's command (or alone, for a call that changes
/// nothing) and made into its entry once the outcome is known, inside the transaction that stores the change.
public protocol AuditDraft: Sendable {
    /// The entry to store; `outcome` is nil for a call that submitted no command.
    func entry(outcome: Result<CommandResult, CairnError>?) -> AuditEntry
    /// Recorded only when the command changed something (Cairn's own deregistration of an expired lease, which a
    /// renewal just before makes a no-op).
    var onlyIfChanged: Bool { get }
}

extension AuditDraft {
    public var onlyIfChanged: Bool { false }
}

/// A record already complete needs no outcome.
extension AuditEntry: AuditDraft {
    public func entry(outcome: Result<CommandResult, CairnError>?) -> AuditEntry { self }
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
