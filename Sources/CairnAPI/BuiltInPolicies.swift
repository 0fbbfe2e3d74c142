import CloudMapWire

/// Policies a configuration can name instead of spelling out: the same documents as docs/policies/.
public enum BuiltInPolicies {
    /// Everything: every Cloud Map action and Cairn's own (`cairn:*`: audit look-up and export, probe history).
    public static let administrator = Policy(statements: [
        statement("EverythingInCloudMap", "servicediscovery:*"), statement("CairnExtensions", "cairn:*"),
    ])

    /// Discovery only, like AWS's managed policy AWSCloudMapDiscoverInstanceAccess.
    public static let reader = Policy(statements: [
        Policy.Statement(
            sid: "DiscoverOnly", effect: .Allow,
            actions: Policy.Patterns(
                patterns: ["servicediscovery:DiscoverInstances", "servicediscovery:DiscoverInstancesRevision"], negated: false),
            resources: Policy.Patterns(patterns: ["*"], negated: false), conditions: [])
    ])

    public static let named: [String: Policy] = ["administrator": administrator, "reader": reader]

    static func statement(_ sid: String, _ action: String) -> Policy.Statement {
        Policy.Statement(
            sid: sid, effect: .Allow, actions: Policy.Patterns(patterns: [action], negated: false),
            resources: Policy.Patterns(patterns: ["*"], negated: false), conditions: [])
    }
}
