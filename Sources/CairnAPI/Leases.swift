import CairnCore
import CloudMapWire
import Foundation
import Logging

/// Ephemeral instances, a Cairn extension (docs/api-compatibility.md): an instance registered with
/// `CAIRN_LEASE_SECONDS` is deregistered by Cairn when its lease is not renewed in time.
extension CloudMapAPI {
    /// `POST /cairn/v1/leases/renew?ServiceId=…&InstanceId=…`: renews the lease now. Allowed to whoever may
    /// `servicediscovery:RegisterInstance` in the service, under that call's throttling class. Renewals are stored
    /// (so every node of a cluster knows them) but not audited: they change nothing anybody reads.
    public func renewLease(_ signed: SigV4.Request, parameters: [String: String]) async -> Reply {
        let requestId = RequestID.next()
        guard let spec = Self.operations["RegisterInstance"] else {
            return errorReply(WireError(type: "InternalFailure", message: "RegisterInstance is not in the model.", status: 500))
        }
        do throws(WireError) {
            let caller = try authenticate(signed)
            guard throttle.admit(principal: caller.accessKeyId, region: caller.region, kind: spec.throttle) else {
                throw Self.throttled(spec)
            }
            guard let serviceId = parameters["ServiceId"], !serviceId.isEmpty, serviceId.utf8.count <= 64,
                let instanceId = parameters["InstanceId"], !instanceId.isEmpty, instanceId.utf8.count <= 64
            else {
                throw WireError(type: "InvalidInput", message: "Renewing a lease needs ServiceId and InstanceId (at most 64 bytes each).")
            }
            let context = RequestContext(region: caller.region, account: configuration.account)
            if caller.principal != nil {
                let input = JSONValue.object(["ServiceId": .string(serviceId), "InstanceId": .string(instanceId)])
                try authorize(
                    caller, spec, input: input, subjects: Subjects(spec, input: input, state: state, context: context), context: context)
            }
            let result: CommandResult
            do throws(CairnError) {
                result = try await registry.submit(.renewLease(serviceId: serviceId, instanceId: instanceId), context: context)
            } catch {
                throw Self.wireError(error)
            }
            guard case .lease(let expiresAt) = result else {
                throw WireError(type: "InternalFailure", message: "The lease was not renewed.", status: 500)
            }
            let body = JSONValue.object([
                "ServiceId": .string(serviceId), "InstanceId": .string(instanceId),
                "ExpiresAt": .double(Double(expiresAt) / 1000),
            ])
            return Reply(status: 200, body: JSONWriter.render(body), requestId: requestId, operation: "RenewInstanceLease")
        } catch {
            return Reply(
                status: error.status, body: error.body, requestId: requestId, operation: "RenewInstanceLease", errorCode: error.type)
        }
    }

    /// An audit record of Cairn deregistering an instance whose lease ran out.
    func leaseExpiryAudit(service: Service, instanceId: String, now: Int64) -> (any AuditDraft)? {
        guard let spec = Self.operations["DeregisterInstance"] else { return nil }
        var event = CloudTrailEvent(
            eventTime: now, eventName: "DeregisterInstance", region: service.region, account: configuration.account,
            sourceIPAddress: "cairn", userAgent: "cairn-lease-expiry", identity: nil,
            requestParameters: AuditRendering.parameters(.object(["ServiceId": .string(service.id), "InstanceId": .string(instanceId)])),
            requestID: RequestID.next(), eventID: RequestID.next(), readOnly: false, resources: [service.arn])
        event.invokedBy = LeaseExpirer.actor
        var draft = CloudTrailDraft(event: event, response: spec.auditResponse)
        draft.onlyIfChanged = true
        return draft
    }
}

/// Deregisters ephemeral instances whose lease ran out, once a second. On a cluster each instance's lease is
/// watched by one live node (the same rendezvous hashing that divides health checks). After it starts, the expirer
/// gives every lease one full length from its start before expiring it: renewals older than the checkpoint a node
/// loaded are not kept (`RegistryState.leases`), and a client alive then renews within that time.
public final class LeaseExpirer: Sendable {
    public static let actor = "cairn.lease-expiry"

    let api: CloudMapAPI
    let logger: Logger
    let clock: @Sendable () -> Int64

    public init(api: CloudMapAPI, logger: Logger, clock: @escaping @Sendable () -> Int64 = Registry.systemMilliseconds) {
        self.api = api
        self.logger = logger
        self.clock = clock
    }

    /// The leases due at `now` in `state` (key, service, instance id, renewedAt), for an expirer started at `started`.
    static func due(_ state: RegistryState, now: Int64, started: Int64, owns: (String) -> Bool) -> [(Service, String, Int64)] {
        var due: [(Service, String, Int64)] = []
        for (key, renewedAt) in state.leases {
            guard let slash = key.firstIndex(of: "/") else { continue }
            let serviceId = String(key[..<slash])
            let instanceId = String(key[key.index(after: slash)...])
            guard let service = state.services[serviceId], let instance = state.instances[serviceId]?[instanceId],
                let seconds = Lease.seconds(instance.attributes)
            else { continue }
            guard now >= max(renewedAt, started) + seconds * 1000, owns(key) else { continue }
            due.append((service, instanceId, renewedAt))
        }
        return due
    }

    /// Runs until cancelled.
    public func run() async {
        let started = clock()
        while (try? await Task.sleep(for: .seconds(1))) != nil {
            let registry = api.registry
            let now = clock()
            let membership = registry.membership
            for (service, instanceId, renewedAt) in Self.due(
                registry.snapshot.state, now: now, started: started, owns: { membership?.owns($0) ?? true })
            {
                do {
                    let result = try await registry.submit(
                        .expireLease(serviceId: service.id, instanceId: instanceId, renewedAt: renewedAt),
                        context: RequestContext(region: service.region, account: service.account),
                        audit: api.leaseExpiryAudit(service: service, instanceId: instanceId, now: now))
                    if case .operation = result {
                        logger.info(
                            "lease expired: instance deregistered", metadata: ["service": "\(service.id)", "instance": "\(instanceId)"])
                    }
                } catch {
                    logger.warning(
                        "could not deregister an instance whose lease expired",
                        metadata: ["instance": "\(instanceId)", "error": "\(error)"])
                }
            }
        }
    }
}
