import CairnAPI
import CairnCore
import CairnHealth
import CloudMapWire
import Hummingbird
import NIOCore

/// `GET /cairn/v1/probe-history?ServiceId=srv-...&InstanceId=...`: a Cairn extension showing why an instance is
/// (un)healthy: the status the checker publishes and its last probes with time, latency and the reason.
enum ProbeHistoryRoute {
    static func add(to router: Router<CairnRequestContext>, runner: HealthCheckRunner, api: CloudMapAPI) {
        // How the checker keeps up: instances checked, probes started, lateness against the schedule.
        router.get("/cairn/v1/health-checker") { request, _ -> Response in
            if let refusal = api.refusal(CloudMapAPI.signed(request), action: "GetHealthChecker") { return refusal }
            let lag = runner.lag
            let body = JSONValue.object([
                "Instances": .int(Int64(runner.checkedCount)), "Probes": .int(Int64(lag.probes)),
                "MeanLagSeconds": .double(lag.meanSeconds), "MaxLagSeconds": .double(lag.maxSeconds),
            ])
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.render(body))))
        }
        router.get("/cairn/v1/probe-history") { request, _ -> Response in
            if let refusal = api.refusal(CloudMapAPI.signed(request), action: "GetProbeHistory") { return refusal }
            let serviceId = request.uri.queryParameters["ServiceId"].map(String.init) ?? ""
            let instanceId = request.uri.queryParameters["InstanceId"].map(String.init) ?? ""
            guard let body = json(runner, serviceId: serviceId, instanceId: instanceId) else {
                let error = WireError(
                    type: "InstanceNotFound",
                    message: "No health-checked instance \(instanceId) in service \(serviceId) (is HealthCheckConfig set on the service?)")
                return Response(
                    status: .notFound, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: error.body)))
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.render(body))))
        }
    }

    /// The probe history of one checked instance, newest probe first; nil when it is not checked.
    /// In a cluster, an instance another node probes has its history there: the answer names that node
    /// (`ProbedBy`) with no probes.
    static func json(_ runner: HealthCheckRunner, serviceId: String, instanceId: String) -> JSONValue? {
        if let node = runner.prober(serviceId: serviceId, instanceId: instanceId) {
            return JSONValue.object([
                "ServiceId": .string(serviceId), "InstanceId": .string(instanceId), "ProbedBy": .string(node), "Probes": .array([]),
            ])
        }
        guard let history = runner.history(serviceId: serviceId, instanceId: instanceId) else { return nil }
        let t = history.target
        return JSONValue.object([
            "ServiceId": .string(t.serviceId), "InstanceId": .string(t.instanceId), "Status": .string(history.status.rawValue),
            "FlapDamped": .bool(history.damped),
            "Check": .object([
                "Type": .string(t.type.rawValue), "Endpoint": .string("\(t.address):\(t.port)"), "ResourcePath": .string(t.path),
                "Host": .string(t.hostHeader), "FailureThreshold": .int(Int64(t.threshold)),
            ]),
            "Probes": .array(
                history.probes.reversed().map {
                    .object([
                        "Time": .timestamp(milliseconds: $0.time), "Healthy": .bool($0.healthy),
                        "LatencyMs": .double(($0.latencyMilliseconds * 1000).rounded() / 1000), "Detail": .string($0.detail),
                    ])
                }),
        ])
    }
}
