import Testing

@testable import CairnCore

@Suite("Long-poll waiters")
struct ServiceWatchersTests {
    /// Returns once `service` has `n` waiters in the table.
    static func settle(_ watchers: ServiceWatchers, _ service: String, _ n: Int) async {
        while watchers.waiting(on: service) != n { try? await Task.sleep(for: .milliseconds(1)) }
    }

    @Test("A change to the waited service wakes its waiter; one to another service, or to the same version, does not")
    func wakesOnlyTheChangedService() async throws {
        let watchers = ServiceWatchers(limit: 10)
        let ticket = try #require(watchers.ticket())
        let waiter = Task { await watchers.wait(ticket, service: "a", version: 5) { 5 } }
        await Self.settle(watchers, "a", 1)
        watchers.changed(["b"]) { _ in 6 }
        watchers.changed(["a"]) { _ in 5 }
        #expect(watchers.waiting(on: "a") == 1)
        watchers.changed(["a"]) { _ in 6 }
        await waiter.value
        #expect(watchers.count == 0 && watchers.waiting(on: "a") == 0)
        // nil: any service may have changed.
        let second = try #require(watchers.ticket())
        let other = Task { await watchers.wait(second, service: "c", version: 1) { 1 } }
        await Self.settle(watchers, "c", 1)
        watchers.changed(nil) { _ in 2 }
        await other.value
        #expect(watchers.count == 0)
    }

    @Test("A waiter whose version already moved returns at once")
    func alreadyChanged() async {
        let watchers = ServiceWatchers(limit: 10)
        let ticket = try! #require(watchers.ticket())
        await watchers.wait(ticket, service: "a", version: 5) { 6 }
        await watchers.wait(try! #require(watchers.ticket()), service: "gone", version: 5) { nil }
        #expect(watchers.count == 0)
    }

    @Test("No more than the limit wait at once, and shutdown answers every waiter")
    func limitAndClose() async {
        let watchers = ServiceWatchers(limit: 2)
        let tickets = [watchers.ticket(), watchers.ticket()].compactMap { $0 }
        #expect(tickets.count == 2)
        #expect(watchers.ticket() == nil)
        // Cairn's own wait (the health checker's) is not refused by the callers' limit.
        let own = try! #require(watchers.ticket(exempt: true))
        await watchers.wait(own, service: ServiceWatchers.anyChange, version: 1) { 2 }
        await withTaskGroup(of: Void.self) { group in
            for ticket in tickets {
                group.addTask { await watchers.wait(ticket, service: "a", version: 1) { 1 } }
            }
            await Self.settle(watchers, "a", 2)
            watchers.close()
            await group.waitForAll()
        }
        #expect(watchers.count == 0)
        #expect(watchers.ticket() == nil)
    }

    @Test("A wait cancelled, before or after its waiter was added, ends and frees its place")
    func cancellation() async {
        let watchers = ServiceWatchers(limit: 1)
        for added in [false, true] {
            let ticket = try! #require(watchers.ticket())
            let task = Task { await watchers.wait(ticket, service: "a", version: 1) { 1 } }
            if added { await Self.settle(watchers, "a", 1) }
            task.cancel()
            await task.value
            #expect(watchers.count == 0)
        }
    }

    @Test("A hang-up ends the wait under way and every later one at once, and frees their places")
    func hangup() async throws {
        let watchers = ServiceWatchers(limit: 2)
        let hangup = Hangup()
        // A wait that would last an hour with no change, until its client goes away.
        let ticket = try #require(watchers.ticket())
        let waiting = Task { await watchers.wait(ticket, service: "a", version: 1, timeout: .seconds(3600), hangup: hangup) { 1 } }
        await Self.settle(watchers, "a", 1)
        #expect(!hangup.hungUp)
        hangup.hangUp()
        await waiting.value
        #expect(hangup.hungUp && watchers.count == 0 && watchers.waiting(on: "a") == 0 && watchers.timers.waits == 0)
        // Once hung up, a wait (a stream's pace, say) does not begin.
        await watchers.wait(try #require(watchers.ticket()), service: "b", version: 1, timeout: .seconds(3600), hangup: hangup) { 1 }
        #expect(watchers.count == 0)
        // Another stream's hang-up touches no one else's wait; a wait that ended by itself leaves nothing to end.
        let other = Hangup()
        await watchers.wait(try #require(watchers.ticket()), service: "c", version: 1, hangup: other) { 2 }
        let stays = try #require(watchers.ticket())
        let staying = Task { await watchers.wait(stays, service: "c", version: 1, hangup: Hangup()) { 1 } }
        await Self.settle(watchers, "c", 1)
        other.hangUp()
        #expect(watchers.waiting(on: "c") == 1)
        watchers.changed(["c"]) { _ in 2 }
        await staying.value
        #expect(watchers.count == 0)
    }

    @Test("A timed wait ends at its timeout with no change; one woken first leaves no timer behind; the sweeper stops")
    func timeouts() async throws {
        let watchers = ServiceWatchers(limit: 10)
        // Ends by itself: nothing changes; never before its timeout, whatever part of a tick it started in.
        for offset in 0..<4 {
            try await Task.sleep(for: .milliseconds(13 * offset))
            let started = ContinuousClock.now
            await watchers.wait(try #require(watchers.ticket()), service: "a", version: 1, timeout: .milliseconds(120)) { 1 }
            #expect(ContinuousClock.now - started >= .milliseconds(120))
            #expect(watchers.count == 0)
        }
        // Woken by a change long before its timeout: its deadline goes with it.
        let ticket = try #require(watchers.ticket())
        let waiter = Task { await watchers.wait(ticket, service: "a", version: 1, timeout: .seconds(3600)) { 1 } }
        await Self.settle(watchers, "a", 1)
        #expect(watchers.timers.waits == 1)
        watchers.changed(["a"]) { _ in 2 }
        await waiter.value
        #expect(watchers.timers.waits == 0 && watchers.count == 0)
        // With no timed wait left, the sweeper ends within a tick or two.
        while watchers.timers.sweeping { try await Task.sleep(for: .milliseconds(10)) }
        // Many at once, on several services, each ends; cancelled ones free their timers too.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<8 {
                let ticket = try #require(watchers.ticket())
                group.addTask {
                    await watchers.wait(ticket, service: "s\(i % 3)", version: 1, timeout: .milliseconds(50 * (i + 1))) { 1 }
                }
            }
            try await group.waitForAll()
        }
        #expect(watchers.count == 0 && watchers.timers.waits == 0)
        let cancelled = try #require(watchers.ticket())
        let task = Task { await watchers.wait(cancelled, service: "a", version: 1, timeout: .seconds(3600)) { 1 } }
        await Self.settle(watchers, "a", 1)
        task.cancel()
        await task.value
        #expect(watchers.count == 0 && watchers.timers.waits == 0)
    }

    @Test("A namespace change may change any service's answer; operations change none")
    func touchedServices() {
        let put = ChangeLogEntry(sequence: 1, time: 0, events: [.healthSet(serviceId: "s", instanceId: "i", status: .HEALTHY)])
        #expect(ServiceWatchers.services(touchedBy: [put]) == ["s"])
        let ns = ChangeLogEntry(sequence: 2, time: 0, events: [.namespaceDeleted(id: "n")])
        #expect(ServiceWatchers.services(touchedBy: [put, ns]) == nil)
        let pruned = ChangeLogEntry(sequence: 3, time: 0, events: [.operationsPruned(ids: ["o"])])
        #expect(ServiceWatchers.services(touchedBy: [pruned]) == [])
    }
}
