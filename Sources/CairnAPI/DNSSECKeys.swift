import CairnCore
import CairnDNS
import CloudMapWire
import DNSWire
import Foundation

/// DNSSEC for public DNS namespaces, a Cairn extension (docs/dns.md, "DNSSEC"; docs/api-compatibility.md):
/// `GET /cairn/v1/dnssec?NamespaceId=…` shows a zone's keys, with the DNSKEY and the DS to publish at the parent;
/// `POST /cairn/v1/dnssec?NamespaceId=…&Action=Enable|Roll|Retire|Disable[&KeyTag=…]` changes them. Reading needs
/// what `GetNamespace` needs on the namespace, changing what `UpdatePublicDnsNamespace` needs, under those calls'
/// throttling; changes are written to the audit trail (without key material).
extension CloudMapAPI {
    public func dnssec(_ signed: SigV4.Request, method: String, parameters: [String: String], peer: @autoclosure () -> String) async
        -> Reply
    {
        let requestId = RequestID.next()
        let change = method == "POST"
        let action = parameters["Action"] ?? ""
        let eventName =
            change
            ? [
                "Enable": "EnableDNSSEC", "Roll": "RollDNSSECKey", "Retire": "RetireDNSSECKey", "Disable": "DisableDNSSEC",
                "Restore": "RestoreDNSSECKeys",
            ][action]
                ?? "UpdateDNSSEC"
            : "GetDNSSEC"
        guard let spec = Self.operations[change ? "UpdatePublicDnsNamespace" : "GetNamespace"] else {
            return errorReply(WireError(type: "InternalFailure", message: "The namespace operations are not in the model.", status: 500))
        }
        var event: CloudTrailEvent?
        do throws(WireError) {
            let caller = try authenticate(signed)
            guard throttle.admit(principal: caller.accessKeyId, region: caller.region, kind: spec.throttle) else {
                throw Self.throttled(spec)
            }
            guard let namespaceId = parameters["NamespaceId"], !namespaceId.isEmpty, namespaceId.utf8.count <= 255 else {
                throw WireError(type: "InvalidInput", message: "NamespaceId is required (at most 255 bytes).")
            }
            let context = RequestContext(region: caller.region, account: configuration.account)
            let input = JSONValue.object(["Id": .string(namespaceId)])
            if change || shouldAudit(spec) {
                var parameters = parameters
                parameters["Action"] = change ? action : nil
                event = CloudTrailEvent(
                    eventTime: clock(), eventName: eventName, region: caller.region, account: configuration.account,
                    sourceIPAddress: peer(), userAgent: signed.header("user-agent") ?? "", identity: caller.identity,
                    requestParameters: AuditRendering.parameters(.object(parameters.mapValues { .string($0) })), requestID: requestId,
                    eventID: RequestID.next(), readOnly: !change)
                if let ns = try? state.namespace(namespaceId, in: context) { event?.resources = [ns.arn] }
            }
            if caller.principal != nil {
                try authorize(
                    caller, spec, input: input, subjects: Subjects(spec, input: input, state: state, context: context), context: context)
            }
            if change {
                let keyChange: SigningKeyChange
                let now = clock()
                switch action {
                case "Enable": keyChange = .enable(DNSSECSigner.newKey(now: now))
                case "Roll": keyChange = .roll(DNSSECSigner.newKey(now: now))
                case "Disable": keyChange = .disable
                case "Retire":
                    guard let text = parameters["KeyTag"], text.utf8.count <= 5, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                        let tag = UInt16(text)
                    else {
                        throw WireError(type: "InvalidInput", message: "Retire needs KeyTag, the tag of the key to drop (0-65535).")
                    }
                    keyChange = .retire(keyTag: tag)
                case "Restore": keyChange = .restore(try Self.restoredKeys(signed.body))
                default:
                    throw WireError(type: "InvalidInput", message: "Action must be one of Enable, Roll, Retire, Disable, Restore.")
                }
                do throws(CairnError) {
                    _ = try await registry.submit(.dnssec(namespaceId: namespaceId, change: keyChange), context: context)
                } catch {
                    throw Self.wireError(error)
                }
            }
            let ns: Namespace
            do throws(CairnError) {
                ns = try state.namespace(namespaceId, in: context)
            } catch {
                throw Self.wireError(error)
            }
            if let event { registry.record(event.entry) }
            return Reply(status: 200, body: JSONWriter.render(Self.dnssecView(ns)), requestId: requestId, operation: eventName)
        } catch {
            if var event {
                event.errorCode = error.type
                event.errorMessage = String(error.message.prefix(AuditRendering.maxErrorMessage))
                registry.record(event.entry)
            }
            return Reply(status: error.status, body: error.body, requestId: requestId, operation: eventName, errorCode: error.type)
        }
    }

    /// The keys of a Restore body, `{"Keys": [{"PrivateKey": base64 of 32 bytes, "CreatedAt": milliseconds}]}` (what
    /// `cairn import` sends from an export); each public key is worked out here, never taken from the caller.
    static func restoredKeys(_ body: [UInt8]) throws(WireError) -> [SigningKey] {
        let refused = WireError(
            type: "InvalidInput",
            message: "Restore needs a body {\"Keys\": [{\"PrivateKey\": base64, \"CreatedAt\": milliseconds}]} with one or two keys.")
        guard let document = try? JSONValue.parse(body), let list = document["Keys"]?.arrayValue, (1...2).contains(list.count) else {
            throw refused
        }
        var keys: [SigningKey] = []
        for item in list {
            guard let text = item["PrivateKey"]?.stringValue, text.utf8.count <= 64, let raw = Data(base64Encoded: text), raw.count == 32,
                let key = DNSSECSigner.key(privateKey: Array(raw), createdAt: item["CreatedAt"]?.intValue ?? 0)
            else { throw refused }
            keys.append(key)
        }
        return keys
    }

    /// A zone's DNSSEC state as the API, the CLI and the console show it: never the private keys.
    static func dnssecView(_ ns: Namespace) -> JSONValue {
        let apex = DNSName(ns.name) ?? .root
        let keys = (ns.signingKeys ?? []).map { key -> JSONValue in
            .object([
                "KeyTag": .int(Int64(key.keyTag)), "Algorithm": .int(Int64(SigningKey.algorithm)), "Flags": .int(Int64(SigningKey.flags)),
                "CreatedAt": .double(Double(key.createdAt) / 1000),
                "DNSKEY": .string("\(apex) \(DNSSECSigner.dnskeyTTL) IN DNSKEY \(DNSSECSigner.dnskeyText(key))"),
                "DS": .string("\(apex) \(DNSSECSigner.dnskeyTTL) IN DS \(DNSSECSigner.dsText(key, apex: apex))"),
            ])
        }
        return .object([
            "NamespaceId": .string(ns.id), "Zone": .string(apex.description), "Signed": .bool(!keys.isEmpty), "Keys": .array(keys),
        ])
    }
}
