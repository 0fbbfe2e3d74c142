import CairnPostgres
import Testing

/// The LISTEN session's deafness check (`Hearing`): the poll finds commits; a commit still unannounced one poll
/// interval after a poll first found it means the session hears nothing.
@Suite struct HearingTests {
    let start = ContinuousClock.now
    let grace = Duration.milliseconds(500)

    @Test func anIdleDatabaseNeverMakesTheSessionDeaf() {
        let hearing = Hearing()
        hearing.started()
        for step in 0..<20 { hearing.polled(revision: 7, at: start + .seconds(step), grace: grace) }
        #expect(!hearing.deaf)
    }

    @Test func announcedCommitsKeepItListening() {
        let hearing = Hearing()
        hearing.started()
        hearing.polled(revision: 7, at: start, grace: grace)
        for revision in 8...30 {
            // The poll can see a commit before its notification arrives; the notification comes before the next poll.
            hearing.polled(revision: Int64(revision), at: start + .seconds(revision), grace: grace)
            hearing.heard("epoch-1:\(revision)")
        }
        #expect(!hearing.deaf)
    }

    @Test func aCommitNoNotificationAnnouncedMakesItDeafAfterThePollInterval() {
        let hearing = Hearing()
        hearing.started()
        hearing.polled(revision: 7, at: start, grace: grace)
        hearing.polled(revision: 9, at: start + .milliseconds(500), grace: grace)
        #expect(!hearing.deaf)
        hearing.polled(revision: 9, at: start + .milliseconds(700), grace: grace)
        #expect(!hearing.deaf)
        hearing.polled(revision: 10, at: start + .milliseconds(1000), grace: grace)
        #expect(hearing.deaf)
    }

    @Test func aLateNotificationClearsTheSuspicion() {
        let hearing = Hearing()
        hearing.started()
        hearing.polled(revision: 7, at: start, grace: grace)
        hearing.polled(revision: 9, at: start + .milliseconds(500), grace: grace)
        hearing.heard("e:9")
        hearing.polled(revision: 9, at: start + .milliseconds(1500), grace: grace)
        #expect(!hearing.deaf)
    }

    @Test func beforeTheSessionListensNothingCounts() {
        let hearing = Hearing()
        hearing.polled(revision: 7, at: start, grace: grace)
        hearing.polled(revision: 9, at: start + .seconds(5), grace: grace)
        hearing.polled(revision: 12, at: start + .seconds(10), grace: grace)
        #expect(!hearing.deaf)
        // What committed before the session listened was never announced to it: the first poll is the baseline.
        hearing.started()
        hearing.polled(revision: 12, at: start + .seconds(11), grace: grace)
        hearing.polled(revision: 12, at: start + .seconds(12), grace: grace)
        #expect(!hearing.deaf)
    }

    @Test func malformedPayloadsAreIgnored() {
        let hearing = Hearing()
        hearing.started()
        hearing.polled(revision: 1, at: start, grace: grace)
        for payload in ["", ":", "x", "e:", "e:-", "e:99999999999999999999999", "e:12a"] { hearing.heard(payload) }
        hearing.polled(revision: 2, at: start + .seconds(1), grace: grace)
        hearing.polled(revision: 2, at: start + .seconds(2), grace: grace)
        #expect(hearing.deaf)
    }
}

@Suite("Committed: which notifications need not wake the follower")
struct CommittedTests {
    @Test func ownAndOlderRevisionsInTheSameEpochAreCovered() {
        let committed = Committed()
        #expect(!committed.covers("e:1"))
        committed.raise(to: 5, epoch: "e")
        #expect(committed.covers("e:5"))
        #expect(committed.covers("e:3"))
        #expect(!committed.covers("e:6"))
        // A lower revision never lowers what was committed.
        committed.raise(to: 4, epoch: "e")
        #expect(committed.covers("e:5"))
    }

    @Test func anotherEpochOrAMalformedPayloadAlwaysWakes() {
        let committed = Committed()
        committed.raise(to: 5, epoch: "e")
        #expect(!committed.covers("f:1"))
        for payload in ["", ":", "e", "e:", "e:x", "5"] { #expect(!committed.covers(payload)) }
        // A restore into another database: its epoch replaces the old one.
        committed.raise(to: 2, epoch: "f")
        #expect(committed.covers("f:2"))
        #expect(!committed.covers("e:1"))
    }
}
