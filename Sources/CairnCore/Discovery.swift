/// What DiscoverInstances asks for besides the names.
public struct DiscoveryQuery: Sendable, Equatable {
    public var queryParameters: [String: String]
    public var optionalParameters: [String: String]
    public var healthStatus: HealthStatusFilter
    public var maxResults: Int

    public init(
        queryParameters: [String: String] = [:], optionalParameters: [String: String] = [:],
        healthStatus: HealthStatusFilter = .HEALTHY, maxResults: Int = 100
    ) {
        self.queryParameters = queryParameters
        self.optionalParameters = optionalParameters
        self.healthStatus = healthStatus
        self.maxResults = maxResults
    }
}

/// Instance selection shared by DiscoverInstances and (later) DNS, so the two never disagree about health.
public enum Discovery {
    /// The health an instance reports: UNKNOWN for services without any health checking.
    public static func reportedHealth(_ instance: Instance, in service: Service) -> HealthStatus {
        service.hasHealthChecking ? instance.health : .UNKNOWN
    }

    @usableFromInline
    static func matches(_ attributes: [String: String], _ wanted: [String: String]) -> Bool {
        for (key, value) in wanted where attributes[key] != value { return false }
        return true
    }

    /// Query parameters (AND) → optional parameters (soft: applied only if something still matches) →
    /// health filter (ignored when the service has no health checking) → a random subset of at most
    /// `maxResults`, in random order.
    @inlinable
    public static func select<T, R: RandomNumberGenerator>(
        _ items: [T], service: Service, query: DiscoveryQuery, attributes: (T) -> [String: String],
        health: (T) -> HealthStatus, using rng: inout R
    ) -> [T] {
        var chosen = items
        if !query.queryParameters.isEmpty {
            chosen = chosen.filter { matches(attributes($0), query.queryParameters) }
        }
        if !query.optionalParameters.isEmpty {
            let narrowed = chosen.filter { matches(attributes($0), query.optionalParameters) }
            if !narrowed.isEmpty { chosen = narrowed }
        }
        if service.hasHealthChecking {
            switch query.healthStatus {
            case .ALL: break
            case .HEALTHY: chosen = chosen.filter { health($0) == .HEALTHY }
            case .UNHEALTHY: chosen = chosen.filter { health($0) == .UNHEALTHY }
            case .HEALTHY_OR_ELSE_ALL:
                let healthy = chosen.filter { health($0) == .HEALTHY }
                if !healthy.isEmpty { chosen = healthy }
            }
        }
        chosen.shuffle(using: &rng)
        if chosen.count > query.maxResults { chosen.removeLast(chosen.count - query.maxResults) }
        return chosen
    }
}
