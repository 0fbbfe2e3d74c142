import CairnCore
import Testing

@Suite("Ephemeral instances: leases renewed, expired, fenced and rebuilt")
struct LeaseTests {
    static let lease = ["AWS_INSTANCE_IPV4": "10.0.0.1", Lease.attribute: "30"]

    @Test("Registering takes the lease, a renewal moves it, and neither moves any revision")
    func renewal() throws {
        var h = Harness()
        let s = try h.service("web", in: try h.namespace("demo"))
        try h.run(.registerInstance(RegisterInstance(serviceId: s.id, instanceId: "e", attributes: Self.lease)))
        try h.run(.registerInstance(RegisterInstance(serviceId: s.id, instanceId: "p", attributes: ["AWS_INSTANCE_IPV4": "10.0.0.2"])))
        let registered = try #require(h.state.leases[Lease.key(s.id, "e")])
        #expect(h.state.leases.count == 1)
        let before = try #require(h.state.services[s.id])
        let result = try h.run(.renewLease(serviceId: s.id, instanceId: "e"))
        #expect(result == .lease(expiresAt: h.now + 30_000))
        #expect(h.state.leases[Lease.key(s.id, "e")] == h.now && h.now > registered)
        let after = try #require(h.state.services[s.id])
        #expect(after.viewVersion == before.viewVersion && after.instancesRevision == before.instancesRevision)
        #expect(h.code { try h.run(.renewLease(serviceId: s.id, instanceId: "p")) } == .invalidInput)
        #expect(h.code { try h.run(.renewLease(serviceId: s.id, instanceId: "nobody")) } == .instanceNotFound)
    }

    @Test("Expiry deregisters only the lease as it was seen: a renewal or a new registration since makes it a no-op")
    func fencing() throws {
        var h = Harness()
        let s = try h.service("web", in: try h.namespace("demo"))
        try h.run(.registerInstance(RegisterInstance(serviceId: s.id, instanceId: "e", attributes: Self.lease)))
        let seen = try #require(h.state.leases[Lease.key(s.id, "e")])
        try h.run(.renewLease(serviceId: s.id, instanceId: "e"))
        #expect(try h.run(.expireLease(serviceId: s.id, instanceId: "e", renewedAt: seen)) == CommandResult.none)
        #expect(h.state.instances[s.id]?["e"] != nil)
        let renewed = try #require(h.state.leases[Lease.key(s.id, "e")])
        guard case .operation(let op) = try h.run(.expireLease(serviceId: s.id, instanceId: "e", renewedAt: renewed)) else {
            Issue.record("not deregistered")
            return
        }
        #expect(h.state.instances[s.id]?["e"] == nil && h.state.leases.isEmpty)
        #expect(h.state.operations[op]?.type == .DEREGISTER_INSTANCE)
        #expect(try h.run(.expireLease(serviceId: s.id, instanceId: "e", renewedAt: renewed)) == CommandResult.none)
    }

    @Test("Registered again without the attribute, an instance is no longer leased")
    func dropped() throws {
        var h = Harness()
        let s = try h.service("web", in: try h.namespace("demo"))
        try h.run(.registerInstance(RegisterInstance(serviceId: s.id, instanceId: "e", attributes: Self.lease)))
        try h.run(.registerInstance(RegisterInstance(serviceId: s.id, instanceId: "e", attributes: ["AWS_INSTANCE_IPV4": "10.0.0.1"])))
        #expect(h.state.leases.isEmpty)
    }

    @Test(
        "A lease outside 5...86400 whole seconds is refused at registration",
        arguments: ["0", "4", "86401", "-5", "abc", "", "1e3", "0x10"])
    func range(text: String) throws {
        var h = Harness()
        let s = try h.service("web", in: try h.namespace("demo"))
        #expect(
            h.code {
                try h.run(
                    .registerInstance(
                        RegisterInstance(
                            serviceId: s.id, instanceId: "e", attributes: [Lease.attribute: text, "AWS_INSTANCE_IPV4": "10.0.0.1"])))
            } == .invalidInput)
        #expect(Lease.seconds([Lease.attribute: "5"]) == 5 && Lease.seconds([Lease.attribute: "86400"]) == 86_400)
    }

    @Test("Entries keep renewals; a checkpoint does not, and its load starts each lease at the registration")
    func codecs() throws {
        let entry = ChangeLogEntry(sequence: 7, time: 9, events: [.leaseRenewed(serviceId: "srv-1", instanceId: "a/b", at: 12_345)])
        #expect(try RegistryCodec.decodeEntry(try RegistryCodec.encode(entry)) == entry)
        var h = Harness()
        let s = try h.service("web", in: try h.namespace("demo"))
        try h.run(.registerInstance(RegisterInstance(serviceId: s.id, instanceId: "e", attributes: Self.lease)))
        let registered = try #require(h.state.instances[s.id]?["e"]?.registeredAt)
        try h.run(.renewLease(serviceId: s.id, instanceId: "e"))
        let loaded = try RegistryCodec.decodeState(try RegistryCodec.encode(h.state))
        #expect(loaded.leases == [Lease.key(s.id, "e"): registered])
    }
}
