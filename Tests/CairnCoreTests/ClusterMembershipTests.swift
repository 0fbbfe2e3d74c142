import CairnCore
import Testing

@Suite("Cluster membership: who does which piece of work")
struct ClusterMembershipTests {
    static let keys = (0..<2000).map { "srv-\($0 % 7)/i-\($0)" }

    @Test("Every key has exactly one owner among the live nodes, and every node gets a share")
    func oneOwner() {
        let nodes = ["a", "b", "c"]
        var shares: [String: Int] = [:]
        for key in Self.keys {
            let owner = ClusterMembership.owner(of: key, among: nodes)!
            shares[owner, default: 0] += 1
            // The answer does not depend on the order the nodes are listed in.
            #expect(ClusterMembership.owner(of: key, among: nodes.reversed()) == owner)
        }
        #expect(shares.values.reduce(0, +) == Self.keys.count)
        #expect(shares.count == 3)
        #expect(shares.values.allSatisfy { $0 > Self.keys.count / 6 })
    }

    @Test("When a node dies only its keys move; when it returns they come back")
    func minimalMovement() {
        for key in Self.keys {
            let before = ClusterMembership.owner(of: key, among: ["a", "b", "c"])!
            let after = ClusterMembership.owner(of: key, among: ["a", "c"])!
            if before != "b" { #expect(after == before) }
            #expect(ClusterMembership.owner(of: key, among: ["a", "b", "c"]) == before)
        }
    }

    @Test("A node always counts itself live; the version moves only when the live set changes")
    func view() {
        let membership = ClusterMembership(node: "me")
        #expect(membership.view.live == ["me"])
        #expect(Self.keys.allSatisfy { membership.owns($0) })
        membership.update(live: ["other"])
        #expect(membership.view.live == ["me", "other"])
        let version = membership.view.version
        membership.update(live: ["other", "me"])
        #expect(membership.view.version == version)
        membership.update(live: [])
        #expect(membership.view.live == ["me"])
        #expect(membership.view.version == version + 1)
        membership.update(databaseRevision: 9)
        membership.update(databaseRevision: 4)
        #expect(membership.view.databaseRevision == 9)
    }

    @Test("Work is admitted only in the term the write lock read; not live (nil) admits nothing")
    func terms() {
        let membership = ClusterMembership(node: "me")
        #expect(membership.view.term == 0)
        #expect(!membership.admits(term: 0))
        membership.update(term: 1)
        membership.update(lockedTerm: 1)
        #expect(membership.view.term == 1)
        #expect(membership.admits(term: 1))
        membership.update(lockedTerm: nil)
        #expect(!membership.admits(term: 1))
        membership.update(lockedTerm: 2)
        #expect(!membership.admits(term: 1))
        #expect(membership.admits(term: 2))
    }
}
