import CairnCore
import CairnTesting
import CloudMapWire
import Foundation
import Testing

@testable import CairnAPI

@Suite("One row per operation: what it touches, how IAM checks it, what its audit record says")
struct OperationTableTests {
    static let botocoreOperations: [String] = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            "import botocore,os,gzip,json;p=os.path.join(os.path.dirname(botocore.__file__),'data/servicediscovery/2017-03-14/service-2.json.gz');print('\\n'.join(sorted(json.load(gzip.open(p))['operations'])))",
        ]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return [] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }()

    @Test("The table has exactly the service model's operations, each named by its own row")
    func complete() throws {
        #expect(CloudMapAPI.operationNames == ServiceModel.operations.keys.sorted())
        #expect(CloudMapAPI.operationNames.count == 30)
        if !Self.botocoreOperations.isEmpty { #expect(CloudMapAPI.operationNames == Self.botocoreOperations) }
        for (name, spec) in CloudMapAPI.operations {
            #expect(spec.name == name)
            // Writes are audited with their outcome; reads never submit a command, so they keep no response.
            if spec.access != .write { #expect(spec.auditResponse.render(.none) == nil) }
        }
    }

    struct World {
        var fixture = RegistryFixture()
        let namespace: String
        let service: String
        init() throws {
            namespace = try fixture.namespace("shop.internal", type: .DNS_PRIVATE, network: "default")
            service = try fixture.service("web", in: namespace, records: [.A])
        }
        var state: RegistryState { fixture.state }
        var context: RequestContext { fixture.context }
        func subjects(_ operation: String, _ input: [String: JSONValue]) throws -> (Subjects, [AuthorizationRequest]) {
            let spec = try #require(CloudMapAPI.operations[operation])
            let subjects = Subjects(spec, input: .object(input), state: state, context: context)
            return (subjects, AuthorizationTable.requests(spec, input: .object(input), subjects: subjects))
        }
        var namespaceARN: String { ARN.namespace(region: context.region, account: context.account, id: namespace) }
        var serviceARN: String { ARN.service(region: context.region, account: context.account, id: service) }
    }

    @Test("A service call is checked against the service with the namespace's keys, and audited under both")
    func serviceCall() throws {
        let world = try World()
        let (subjects, requests) = try world.subjects(
            "RegisterInstance", ["ServiceId": .string(world.service), "InstanceId": .string("i-1")])
        #expect(Set(subjects.auditResources) == [world.serviceARN, world.namespaceARN])
        #expect(requests.count == 1)
        #expect(requests[0].action == "servicediscovery:RegisterInstance")
        #expect(requests[0].resource == world.serviceARN)
        #expect(requests[0].keys["servicediscovery:namespacename"] == ["shop.internal"])
        #expect(requests[0].keys["servicediscovery:servicename"] == ["web"])
    }

    @Test("An unknown id is checked and audited by the ARN it would have")
    func unknownService() throws {
        let world = try World()
        let (subjects, requests) = try world.subjects("GetService", ["Id": .string("srv-nothere")])
        let arn = ARN.service(region: "us-east-1", account: "000000000000", id: "srv-nothere")
        #expect(subjects.auditResources == [arn])
        #expect(requests.map(\.resource) == [arn])
        #expect(requests[0].keys["servicediscovery:servicearn"] == [arn])
    }

    @Test("Discovery names what it found by name, and is checked on the namespace and the service")
    func discovery() throws {
        let world = try World()
        let (subjects, requests) = try world.subjects(
            "DiscoverInstances", ["NamespaceName": .string("shop.internal"), "ServiceName": .string("web")])
        #expect(subjects.auditResources == [world.namespaceARN, world.serviceARN])
        #expect(requests.map(\.resource) == [world.namespaceARN, world.serviceARN])
        let (missing, refused) = try world.subjects(
            "DiscoverInstances", ["NamespaceName": .string("nope.internal"), "ServiceName": .string("web")])
        #expect(missing.auditResources.isEmpty)
        #expect(refused.map(\.resource) == ["*"])
        #expect(refused[0].keys["servicediscovery:namespacename"] == ["nope.internal"])
    }

    @Test("Creating with tags is also tagging; request tags become condition keys")
    func createWithTags() throws {
        let world = try World()
        let tags: JSONValue = .array([.object(["Key": .string("Team"), "Value": .string("red")])])
        let (namespaceSubjects, namespaceChecks) = try world.subjects(
            "CreateHttpNamespace", ["Name": .string("new"), "Tags": tags])
        #expect(namespaceSubjects.auditResources.isEmpty)
        #expect(namespaceChecks.map(\.action) == ["servicediscovery:CreateHttpNamespace", "servicediscovery:TagResource"])
        #expect(namespaceChecks[0].keys["servicediscovery:namespacename"] == ["new"])
        #expect(namespaceChecks[0].keys["aws:requesttag/team"] == ["red"])
        #expect(namespaceChecks[0].keys["aws:tagkeys"] == ["Team"])

        let (serviceSubjects, serviceChecks) = try world.subjects(
            "CreateService", ["Name": .string("api"), "NamespaceId": .string(world.namespace), "Tags": tags])
        #expect(serviceSubjects.auditResources == [world.namespaceARN])
        #expect(serviceChecks.map(\.action) == ["servicediscovery:CreateService", "servicediscovery:TagResource"])
        #expect(serviceChecks.allSatisfy { $0.resource == world.namespaceARN })
        #expect(serviceChecks[0].keys["servicediscovery:servicename"] == ["api"])

        // The namespace may be named in DnsConfig alone.
        let (viaDns, _) = try world.subjects(
            "CreateService", ["Name": .string("api"), "DnsConfig": .object(["NamespaceId": .string(world.namespace)])])
        #expect(viaDns.auditResources == [world.namespaceARN])
    }

    @Test("Tag calls are checked on the resource their ARN names; untagging carries the keys")
    func tagging() throws {
        let world = try World()
        let (_, onNamespace) = try world.subjects(
            "UntagResource", ["ResourceARN": .string(world.namespaceARN), "TagKeys": .array([.string("Team")])])
        #expect(onNamespace.map(\.resource) == [world.namespaceARN])
        #expect(onNamespace[0].keys["aws:tagkeys"] == ["Team"])
        let (_, onService) = try world.subjects("ListTagsForResource", ["ResourceARN": .string(world.serviceARN)])
        #expect(onService.map(\.resource) == [world.serviceARN])
    }

    @Test("A list call touches nothing in particular")
    func lists() throws {
        let world = try World()
        for operation in ["ListNamespaces", "ListServices", "ListOperations"] {
            let (subjects, requests) = try world.subjects(operation, [:])
            #expect(subjects.auditResources.isEmpty)
            #expect(requests.map(\.resource) == ["*"])
        }
    }

    static func event(_ name: String) -> CloudTrailEvent {
        CloudTrailEvent(
            eventTime: 1_764_000_000_123, eventName: name, region: "eu-west-1", account: "000000000000", sourceIPAddress: "10.0.0.1",
            userAgent: "test", identity: .init(accessKeyId: "AKID", userName: "alice"), requestParameters: #"{"name":"x"}"#,
            requestID: "req", eventID: "evt", readOnly: false, resources: [])
    }

    static func record(_ entry: AuditEntry) throws -> [String: Any] {
        let bytes = entry.record(sequence: 7, previousHash: AuditChain.genesis)
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test("The writer completes a draft from the outcome as the operation's row says, as a CloudTrail record")
    func drafts() throws {
        let ok = CloudTrailDraft(event: Self.event("RegisterInstance"), response: .operationId).entry(
            outcome: .success(.operation(id: "op-1")))
        let json = try Self.record(ok)
        #expect(json["eventSource"] as? String == "servicediscovery.amazonaws.com")
        #expect(json["eventTime"] as? String == "2025-11-24T16:00:00Z")
        #expect(json["awsRegion"] as? String == "eu-west-1")
        #expect((json["responseElements"] as? [String: Any])?["operationId"] as? String == "op-1")
        #expect((json["userIdentity"] as? [String: Any])?["arn"] as? String == "arn:aws:iam::000000000000:user/alice")
        #expect(json["cairnSequence"] as? Int == 7)
        #expect(json["errorCode"] == nil)
        #expect(ok.principals == ["AKID", "alice"])

        let failed = CloudTrailDraft(event: Self.event("RegisterInstance"), response: .operationId)
            .entry(outcome: .failure(CairnError(.serviceNotFound, String(repeating: "x", count: 5000))))
        let failure = try Self.record(failed)
        #expect(failure["errorCode"] as? String == "ServiceNotFound")
        #expect((failure["errorMessage"] as? String)?.count == AuditRendering.maxErrorMessage)
        #expect(failure["responseElements"] is NSNull)

        var fixture = RegistryFixture()
        let namespace = try fixture.namespace("shop.internal", type: .HTTP)
        let created = try fixture.run(.createService(CreateService(name: "api", namespaceId: namespace)))
        guard case .service(let service) = created else { Issue.record("no service"); return }
        let entry = CloudTrailDraft(event: Self.event("CreateService"), response: .service).entry(outcome: .success(created))
        #expect(entry.resources == [service.arn])
        let rendered = try Self.record(entry)
        let element = (rendered["responseElements"] as? [String: Any])?["service"] as? [String: Any]
        #expect(element?["id"] as? String == service.id)
        let resources = try #require(rendered["resources"] as? [[String: Any]])
        #expect(resources.map { $0["type"] as? String } == ["AWS::ServiceDiscovery::Service"])
    }

    @Test("A draft's record, rendered in parts before the writer takes it, is byte for byte the event's own")
    func draftPartsMatchTheWholeRecord() throws {
        var event = Self.event("RegisterInstance")
        event.userAgent = "agent \"quoted\" \\ tab\t nl\n \u{01} ü"
        event.resources = ["arn:aws:servicediscovery:eu-west-1:000000000000:namespace/ns-a"]
        let outcomes: [Result<CommandResult, CairnError>?] = [
            .success(.operation(id: "op-1")), .failure(CairnError(.serviceNotFound, "no \"such\" service")), nil,
        ]
        for outcome in outcomes {
            let drafted = CloudTrailDraft(event: event, response: .operationId).entry(outcome: outcome)
            var whole = event
            switch outcome {
            case .success(let result)?:
                whole.responseElements = OperationSpec.AuditResponse.operationId.render(result).flatMap(AuditRendering.elements)
            case .failure(let error)?: (whole.errorCode, whole.errorMessage) = (error.code.rawValue, error.message)
            case nil: break
            }
            #expect(drafted == whole.entry)
            let json = try Self.record(drafted)
            #expect(json["userAgent"] as? String == event.userAgent)
            #expect((json["resources"] as? [[String: Any]])?.first?["type"] as? String == "AWS::ServiceDiscovery::Namespace")
        }
    }

    @Test(
        "A Content-Type's media type: before any parameter, trimmed, lower-cased",
        arguments: [
            ("application/x-amz-json-1.1", "application/x-amz-json-1.1"),
            ("Application/X-Amz-JSON-1.1; charset=utf-8", "application/x-amz-json-1.1"),
            (" \tapplication/json \t;x", "application/json"), ("", ""), (";", ""), ("text/xml", "text/xml"),
        ])
    func mediaTypes(contentType: String, expected: String) {
        #expect(CloudMapAPI.mediaType(contentType) == expected)
    }
}
