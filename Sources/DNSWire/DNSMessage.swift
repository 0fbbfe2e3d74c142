/// Record types Cairn answers or reads.
public enum DNSType {
    public static let a: UInt16 = 1
    public static let ns: UInt16 = 2
    public static let cname: UInt16 = 5
    public static let soa: UInt16 = 6
    public static let hinfo: UInt16 = 13
    public static let aaaa: UInt16 = 28
    public static let srv: UInt16 = 33
    public static let opt: UInt16 = 41
    public static let ds: UInt16 = 43
    public static let rrsig: UInt16 = 46
    public static let nsec: UInt16 = 47
    public static let dnskey: UInt16 = 48
    /// RFC 9824's pseudo-type in the NSEC of a compact denial: the name does not exist.
    public static let nxname: UInt16 = 128
    public static let ixfr: UInt16 = 251
    public static let axfr: UInt16 = 252
    public static let any: UInt16 = 255
}

public enum DNSClass {
    public static let `in`: UInt16 = 1
    public static let any: UInt16 = 255
}

public enum DNSRcode {
    public static let noError: UInt16 = 0
    public static let formErr: UInt16 = 1
    public static let servFail: UInt16 = 2
    public static let nxDomain: UInt16 = 3
    public static let notImp: UInt16 = 4
    public static let refused: UInt16 = 5
    /// Extended (needs OPT): the 12-bit value 16.
    public static let badVers: UInt16 = 16
}

public struct DNSHeader: Sendable, Equatable {
    public var id: UInt16
    /// QR, opcode, AA, TC, RD, RA, Z, AD, CD and the low 4 bits of the rcode, as on the wire.
    public var flags: UInt16

    public init(id: UInt16, flags: UInt16) {
        self.id = id
        self.flags = flags
    }

    public var isResponse: Bool {
        get { flags & 0x8000 != 0 }
        set { flags = newValue ? flags | 0x8000 : flags & ~0x8000 }
    }
    public var opcode: UInt8 { UInt8((flags >> 11) & 0xF) }
    public var authoritative: Bool {
        get { flags & 0x0400 != 0 }
        set { flags = newValue ? flags | 0x0400 : flags & ~0x0400 }
    }
    public var truncated: Bool {
        get { flags & 0x0200 != 0 }
        set { flags = newValue ? flags | 0x0200 : flags & ~0x0200 }
    }
    public var recursionDesired: Bool { flags & 0x0100 != 0 }
    public var recursionAvailable: Bool { flags & 0x0080 != 0 }
    /// The low four bits of the response code.
    public var rcode: UInt16 {
        get { flags & 0x000F }
        set { flags = (flags & ~0x000F) | (newValue & 0x000F) }
    }
}

public struct DNSQuestion: Sendable, Equatable {
    public var name: DNSName
    public var type: UInt16
    public var qclass: UInt16

    public init(name: DNSName, type: UInt16, qclass: UInt16 = DNSClass.in) {
        self.name = name
        self.type = type
        self.qclass = qclass
    }
}

public struct SOAData: Sendable, Hashable {
    public var mname: DNSName
    public var rname: DNSName
    public var serial: UInt32
    public var refresh: UInt32
    public var retry: UInt32
    public var expire: UInt32
    public var minimum: UInt32

    public init(mname: DNSName, rname: DNSName, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32) {
        self.mname = mname
        self.rname = rname
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

public enum RData: Sendable, Hashable {
    case a([UInt8])
    case aaaa([UInt8])
    case ns(DNSName)
    case cname(DNSName)
    case soa(SOAData)
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DNSName)
    case hinfo(cpu: [UInt8], os: [UInt8])
    /// Anything else, kept as bytes (names inside are not decompressed).
    case raw([UInt8])
}

public struct DNSRecord: Sendable, Hashable {
    public var name: DNSName
    public var type: UInt16
    public var rclass: UInt16
    public var ttl: UInt32
    public var data: RData

    public init(name: DNSName, type: UInt16, rclass: UInt16 = DNSClass.in, ttl: UInt32, data: RData) {
        self.name = name
        self.type = type
        self.rclass = rclass
        self.ttl = ttl
        self.data = data
    }
}

/// The OPT pseudo-record of EDNS(0) (RFC 6891).
public struct EDNS: Sendable, Equatable {
    public var udpPayloadSize: UInt16
    /// The upper 8 bits of the 12-bit response code.
    public var extendedRcode: UInt8
    public var version: UInt8
    public var dnssecOK: Bool
    /// Options as on the wire (code, length, data ...).
    public var options: [UInt8]

    public init(udpPayloadSize: UInt16, extendedRcode: UInt8 = 0, version: UInt8 = 0, dnssecOK: Bool = false, options: [UInt8] = []) {
        self.udpPayloadSize = udpPayloadSize
        self.extendedRcode = extendedRcode
        self.version = version
        self.dnssecOK = dnssecOK
        self.options = options
    }
}

public struct DNSMessage: Sendable, Equatable {
    public var header: DNSHeader
    public var questions: [DNSQuestion]
    public var answers: [DNSRecord]
    public var authority: [DNSRecord]
    /// Additional records other than OPT.
    public var additional: [DNSRecord]
    public var edns: EDNS?

    public init(
        header: DNSHeader, questions: [DNSQuestion] = [], answers: [DNSRecord] = [], authority: [DNSRecord] = [],
        additional: [DNSRecord] = [], edns: EDNS? = nil
    ) {
        self.header = header
        self.questions = questions
        self.answers = answers
        self.authority = authority
        self.additional = additional
        self.edns = edns
    }

    /// The full 12-bit response code (header bits plus the OPT extension).
    public var rcode: UInt16 { (UInt16(edns?.extendedRcode ?? 0) << 4) | header.rcode }
}
