import CairnTesting
import Foundation
import Testing

@Suite("The API over HTTP, in process")
struct APIServerTests {
    @Test("A create, discover round trip answers with the AWS shapes and a request id")
    func roundTrip() async throws {
        try await TestCairn.withServer { client in
            let created = try await client.call("CreateHttpNamespace", #"{"Name":"demo"}"#)
            #expect(created.status == 200)
            #expect(created.headers["x-amzn-requestid"] != nil)
            let opId = try #require(created.json["OperationId"] as? String)
            let op = try await client.call("GetOperation", #"{"OperationId":"\#(opId)"}"#)
            let operation = try #require(op.json["Operation"] as? [String: Any])
            #expect(operation["Status"] as? String == "SUCCESS")
            let nsId = try #require((operation["Targets"] as? [String: Any])?["NAMESPACE"] as? String)
            let service = try await client.call("CreateService", #"{"Name":"web","NamespaceId":"\#(nsId)"}"#)
            let serviceId = try #require((service.json["Service"] as? [String: Any])?["Id"] as? String)
            _ = try await client.call(
                "RegisterInstance", #"{"ServiceId":"\#(serviceId)","InstanceId":"i-1","Attributes":{"k":"v \"quoted\""}}"#)
            let found = try await client.call("DiscoverInstances", #"{"NamespaceName":"demo","ServiceName":"web"}"#)
            let instances = try #require(found.json["Instances"] as? [[String: Any]])
            #expect(instances.count == 1)
            #expect((instances.first?["Attributes"] as? [String: String]) == ["k": "v \"quoted\""])
            #expect(instances.first?["HealthStatus"] as? String == "UNKNOWN")
            #expect((found.json["InstancesRevision"] as? Int ?? 0) > 0)
        }
    }

    @Test(
        "Malformed requests get 4xx AWS-style errors",
        arguments: [
            ("ListNamespaces", "{", "application/x-amz-json-1.1", 400, "SerializationException"),
            ("ListNamespaces", #"{"MaxResults":"1"}"#, "application/x-amz-json-1.1", 400, "SerializationException"),
            ("CreateHttpNamespace", "{}", "application/x-amz-json-1.1", 400, "InvalidInput"),
            ("Nope", "{}", "application/x-amz-json-1.1", 400, "UnknownOperationException"),
            ("ListNamespaces", "{}", "text/xml", 415, "UnsupportedMediaTypeException"),
        ])
    func badRequests(operation: String, body: String, contentType: String, status: Int, type: String) async throws {
        try await TestCairn.withServer { client in
            let response = try await client.call(operation, body, contentType: contentType)
            #expect(response.status == status)
            #expect(response.errorType == type)
            #expect(response.headers["x-amzn-requestid"] != nil)
        }
    }
}
