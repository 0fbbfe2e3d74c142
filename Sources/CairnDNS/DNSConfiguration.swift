import DNSWire

/// What the DNS server needs besides the registry.
public struct DNSConfiguration: Sendable {
    /// Name of this server in NS records and the SOA MNAME.
    public var serverName: DNSName
    /// The zones' NS records: `serverName` and the secondaries that serve them too (`dns.nameServers`).
    public var nameServers: [DNSName]
    /// The SOA RNAME (the hostmaster's mailbox as a name).
    public var hostmaster: DNSName
    /// Most records in a MULTIVALUE answer (Route 53 answers 8).
    public var maxAnswers: Int
    /// The UDP payload size Cairn advertises in its OPT record and honours at most.
    public var ednsPayloadSize: Int
    /// Network name → CIDRs: who may query a private namespace on that network.
    public var networks: [String: [CIDR]]
    /// TTL of the NS records at each apex.
    public var nsTTL: UInt32
    /// Who may transfer zones (AXFR, IXFR over TCP); nobody when empty.
    public var transferAllow: [CIDR]
    /// When set, transfers must be signed with this key (TSIG) and NOTIFY is signed with it.
    public var transferKey: TSIGKey?
    /// Availability zone → the client networks in it: zone-aware services answer a client with healthy instances
    /// whose `AVAILABILITY_ZONE` is the client's first.
    public var availabilityZones: [String: [CIDR]]

    /// The defaults, in one place: `cairn serve`'s configuration starts from these too.
    public static let defaultServerName = "ns1.cairn.internal"
    public static let defaultHostmaster = "hostmaster.cairn.internal"
    public static let defaultMaxAnswers = 8
    public static let defaultEDNSPayloadSize = 1232

    public init(
        serverName: DNSName = DNSName(DNSConfiguration.defaultServerName)!,
        hostmaster: DNSName = DNSName(DNSConfiguration.defaultHostmaster)!,
        maxAnswers: Int = DNSConfiguration.defaultMaxAnswers, ednsPayloadSize: Int = DNSConfiguration.defaultEDNSPayloadSize,
        networks: [String: [CIDR]] = ["default": [CIDR("127.0.0.0/8")!, CIDR("::1/128")!]],
        nsTTL: UInt32 = 172_800, transferAllow: [CIDR] = [], transferKey: TSIGKey? = nil,
        availabilityZones: [String: [CIDR]] = [:], nameServers: [DNSName] = []
    ) {
        self.nameServers = [serverName] + nameServers.filter { $0 != serverName }
        self.availabilityZones = availabilityZones
        self.transferAllow = transferAllow
        self.transferKey = transferKey
        self.serverName = serverName
        self.hostmaster = hostmaster
        self.maxAnswers = maxAnswers
        self.ednsPayloadSize = ednsPayloadSize
        self.networks = networks
        self.nsTTL = nsTTL
    }
}
