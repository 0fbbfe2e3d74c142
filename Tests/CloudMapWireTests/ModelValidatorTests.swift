import CloudMapWire
import Testing

@Suite("Validation against the botocore model")
struct ModelValidatorTests {
    @Test("Every pattern of the model compiles")
    func patternsCompile() {
        #expect(ModelValidator.uncompilablePatterns.isEmpty)
    }

    @Test("The table has all 30 operations")
    func thirtyOperations() {
        #expect(ServiceModel.operations.count == 30)
        #expect(ServiceModel.operations["DiscoverInstances"]?.input == "DiscoverInstancesRequest")
    }

    /// (operation, request JSON, expected error type or nil when valid, a fragment the message must contain)
    static let cases: [(String, String, String?, String)] = [
        ("CreateHttpNamespace", #"{"Name":"ok"}"#, nil, ""),
        ("CreateHttpNamespace", #"{}"#, "InvalidInput", "'name'"),
        ("CreateHttpNamespace", #"{"Name":null}"#, "InvalidInput", "must not be null"),
        ("CreateHttpNamespace", #"{"Name":"arn:x"}"#, "InvalidInput", "regular expression"),
        ("CreateHttpNamespace", #"{"Name":"a b"}"#, "InvalidInput", "regular expression"),
        ("CreateHttpNamespace", #"{"Name":7}"#, "SerializationException", "'name'"),
        ("CreateHttpNamespace", #"{"Name":"ok","Unknown":{"x":[1,2]}}"#, nil, ""),
        ("CreateHttpNamespace", #"{"Name":"ok","Tags":[{"Key":"a"}]}"#, "InvalidInput", "tags.1.member.value"),
        ("ListNamespaces", #"{"MaxResults":0}"#, "InvalidInput", "greater than or equal to 1"),
        ("ListNamespaces", #"{"MaxResults":101}"#, "InvalidInput", "less than or equal to 100"),
        ("ListNamespaces", #"{"MaxResults":1.5}"#, "SerializationException", "maxResults"),
        ("ListNamespaces", #"{"Filters":[{"Name":"TYPE","Values":["HTTP"],"Condition":"LIKE"}]}"#, "InvalidInput", "enum"),
        ("DiscoverInstances", #"{"NamespaceName":"n","ServiceName":"_"}"#, "InvalidInput", "serviceName"),
        ("DiscoverInstances", #"{"NamespaceName":"n","ServiceName":"."}"#, nil, ""),
        ("DiscoverInstances", #"{"NamespaceName":"n","ServiceName":"_http._tcp"}"#, nil, ""),
        ("DiscoverInstances", #"{"NamespaceName":"n","ServiceName":"s","MaxResults":1000}"#, nil, ""),
        ("DiscoverInstances", #"{"NamespaceName":"n","ServiceName":"s","OwnerAccount":"123"}"#, "InvalidInput", "ownerAccount"),
        ("RegisterInstance", #"{"ServiceId":"s","InstanceId":"i","Attributes":{"k":" v"}}"#, "InvalidInput", "attributes.k"),
        ("RegisterInstance", #"{"ServiceId":"s","InstanceId":"i","Attributes":{"k":"v\t"}}"#, nil, ""),
        ("RegisterInstance", #"{"ServiceId":"s","InstanceId":"i","Attributes":{"":"v"}}"#, "InvalidInput", "attributes.key"),
        ("RegisterInstance", #"{"ServiceId":"s","InstanceId":"i","Attributes":{"k":1}}"#, "SerializationException", "attributes.k"),
        ("RegisterInstance", #"{"ServiceId":"s","InstanceId":"a b","Attributes":{}}"#, "InvalidInput", "instanceId"),
        ("CreatePrivateDnsNamespace", #"{"Name":"a.local","Vpc":"v","Properties":{}}"#, "InvalidInput", "properties.dnsProperties"),
        (
            "CreatePrivateDnsNamespace", #"{"Name":"a.local","Vpc":"v","Properties":{"DnsProperties":{"SOA":{"TTL":2147483648}}}}"#,
            "InvalidInput", "TTL"
        ),
        ("UpdateServiceAttributes", #"{"ServiceId":"s","Attributes":{}}"#, "InvalidInput", "greater than or equal to 1"),
        ("GetInstancesHealthStatus", #"{"ServiceId":"s","Instances":[]}"#, "InvalidInput", "instances"),
    ]

    @Test("Constraints from the model", arguments: cases)
    func validation(operation: String, json: String, expected: String?, fragment: String) throws {
        let input = try JSONValue.parse(Array(json.utf8))
        do {
            try ModelValidator.validate(input, operation: operation)
            #expect(expected == nil, "expected \(expected ?? "") for \(json)")
        } catch {
            #expect(error.type == expected, "\(json): \(error.message)")
            #expect(error.message.lowercased().contains(fragment.lowercased()), "\(error.message)")
        }
    }

    @Test("Public DNS names need at least two LDH labels")
    func publicNames() {
        for good in ["example.com", "a.b.c", "x-1.example"] { #expect(ModelValidator.matches(good, shape: "NamespaceNamePublic")) }
        for bad in ["example", "-a.com", "a_b.com", "example.com.", "a..com"] {
            #expect(!ModelValidator.matches(bad, shape: "NamespaceNamePublic"), "\(bad)")
        }
    }

    @Test("A trailing newline never satisfies an anchored pattern")
    func fullMatch() {
        #expect(!ModelValidator.matches("abc\n", shape: "NamespaceNameHttp"))
    }
}
