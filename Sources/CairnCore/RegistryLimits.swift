/// Quotas and rules the registry enforces; AWS's defaults, each configurable.
public struct RegistryLimits: Sendable, Equatable, Codable {
    public var namespacesPerRegion = 50
    public var instancesPerNamespace = 2_000
    public var instancesPerService = 1_000
    public var customAttributesPerInstance = 30
    public var attributeCharactersPerInstance = 5_000
    public var tagsPerResource = 50
    public var serviceAttributesPerService = 30
    /// Operation records kept for GetOperation/ListOperations; the oldest beyond this are dropped.
    public var operationsRetained = 100_000

    public init() {}
}

/// Everything besides the state that deciding a command depends on.
public struct RegistryRules: Sendable, Equatable {
    public var limits: RegistryLimits
    /// Network names a private DNS namespace may use as its `Vpc`.
    public var networks: Set<String>
    /// `compatibility.strict`: restore AWS behaviour where Cairn deliberately differs.
    public var strict: Bool

    public init(limits: RegistryLimits = RegistryLimits(), networks: Set<String> = ["default"], strict: Bool = false) {
        self.limits = limits
        self.networks = networks
        self.strict = strict
    }
}
