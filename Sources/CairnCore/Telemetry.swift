/// What the server counts and times, reported by the parts that do the work; the server turns it into metrics
/// (Prometheus text at `/metrics`). Implementations must be cheap: DNS reports every query.
public protocol Telemetry: Sendable {
    /// One API call: the operation (or `unknown`), the error code (nil for success) and the time to answer.
    func apiRequest(operation: String, errorCode: String?, seconds: Double)
    /// One DNS query answered: question type, response code and the time to answer.
    func dnsQuery(type: UInt16, rcode: UInt8, seconds: Double)
    /// One health probe finished.
    func healthProbe(type: String, healthy: Bool, seconds: Double)
    /// One durable store transaction: how long it took and what it carried.
    func storeCommit(seconds: Double, entries: Int, auditRecords: Int)
    /// On a cluster: a batch decided while the store's lock was awaited was kept (nothing the other nodes appended
    /// meanwhile touched what it read), or was decided again under the lock.
    func speculation(kept: Bool)
    /// On a cluster: how long one batch held the store's write lock (from the lock granted to the commit answered).
    func storeLockHeld(seconds: Double)
}

extension Telemetry {
    public func speculation(kept: Bool) {}
    public func storeLockHeld(seconds: Double) {}
}

/// Reports nothing (tests, tools).
public struct NoTelemetry: Telemetry {
    public init() {}
    public func apiRequest(operation: String, errorCode: String?, seconds: Double) {}
    public func dnsQuery(type: UInt16, rcode: UInt8, seconds: Double) {}
    public func healthProbe(type: String, healthy: Bool, seconds: Double) {}
    public func storeCommit(seconds: Double, entries: Int, auditRecords: Int) {}
}
