import Events
import Foundation
import GRDB
import NIOConcurrencyHelpers
import Testing

@testable import Queue

/// The queue contract, on every backend.
@Suite struct QueueBehaviourTests {
    @Test(arguments: QueueBackend.all) func enqueueLeaseDeliverOwesASuccessReportAndIMDN(_ backend: QueueBackend) async throws {
        let queue = try await makeQueue(backend)
        let ids = try await queue.enqueue([message("m0000001", imdn: ["positive-delivery", "negative-delivery"])])
        #expect(ids.count == 1)
        let stored = try #require(try await queue.event(ids[0]))
        #expect(stored.state == .queued)
        #expect(stored.envelope.headers == ["X-Test": "1"])
        #expect(stored.envelope.to == ["sip:ops@gw.example"])
        #expect(stored.body == .inline(Array("hello".utf8)))
        #expect(stored.origin.imdnDispositions == ["positive-delivery", "negative-delivery"])

        let leased = try await queue.lease(adapter: "webhook", owner: "w1", limit: 10, for: .seconds(30))
        #expect(leased.map(\.id) == ids)
        #expect(leased[0].attempts == 1)
        #expect(try await queue.lease(adapter: "webhook", owner: "w2", limit: 10, for: .seconds(30)).isEmpty)
        #expect(try await queue.complete(ids[0], owner: "w1", outcome: .delivered(proof: "HTTP 200")) == .delivered)

        // The REPORT and the IMDN are events for the msrp adapter, to the origin session.
        let owed = try await queue.lease(adapter: "msrp", owner: "m", limit: 10, for: .seconds(30))
        #expect(owed.map(\.kind).sorted { $0.rawValue < $1.rawValue } == [.imdn, .report])
        #expect(owed.allSatisfy { $0.target == "sess1" && $0.parent == ids[0] })
        #expect(owed.first { $0.kind == .report }?.envelope.headers["status"] == "200")
        #expect(owed.first { $0.kind == .imdn }?.envelope.headers["disposition"] == "delivered")
    }

    @Test(arguments: QueueBackend.all) func duplicateIngressIsOneEventAndFanOutIsOneTransaction(_ backend: QueueBackend) async throws {
        let queue = try await makeQueue(backend)
        let fan = [message("m0000002"), message("m0000002", adapter: "smtp", target: "mailto:oncall@example.com")]
        let first = try await queue.enqueue(fan)
        let again = try await queue.enqueue(fan)
        #expect(first.count == 2)
        #expect(first == again)
        #expect(try await queue.stats().count() == 2)
        // Another session with the same Message-ID is another message.
        let other = try await queue.enqueue([message("m0000002", session: "sess2")])
        #expect(other != [first[0]])
    }

    @Test(arguments: QueueBackend.all) func postponedEventsSpendNoAttemptKeepTheirOrderAndAgeOut(_ backend: QueueBackend) async throws {
        let clock = TestClock()
        let queue = try await makeQueue(backend, clock: clock)
        let ids = try await queue.enqueue((0..<4).map { message("p000000\($0)") })
        let leased = try await queue.lease(adapter: "webhook", owner: "w", limit: 10, for: .seconds(30))
        #expect(leased.map(\.attempts) == [1, 1, 1, 1])
        // Given back newest first, each until a later time: due again in those times' order.
        for (i, id) in ids.enumerated().reversed() {
            #expect(try await queue.postpone(id, owner: "w", until: clock.now.addingTimeInterval(10 + Double(i)), reason: "busy") == .queued)
        }
        #expect(try await queue.lease(adapter: "webhook", owner: "w", limit: 10, for: .seconds(30)).isEmpty)
        clock.advance(.seconds(20))
        let again = try await queue.lease(adapter: "webhook", owner: "w", limit: 10, for: .seconds(30))
        #expect(again.map(\.id) == ids)
        #expect(again.map(\.attempts) == [1, 1, 1, 1], "the postponed attempt did not count")
        // A wait beyond its maximum age ends with its age (what it waits for may
        // come before); given back again once that age has passed, it fails (408)
        // as any retry would.
        #expect(try await queue.postpone(ids[0], owner: "w", until: clock.now.addingTimeInterval(30 * 86_400), reason: "busy") == .queued)
        let end = try #require(try await queue.event(ids[0])).createdAt.addingTimeInterval(3600)  // the test queue's maximum age
        #expect(abs(try #require(try await queue.event(ids[0])).nextAttemptAt.timeIntervalSince(end)) < 0.01)
        clock.advance(.seconds(30 * 86_400))
        let last = try await queue.lease(adapter: "webhook", owner: "w", limit: 10, for: .seconds(30))
        #expect(last.map(\.id).contains(ids[0]), "due when its age ran out (the others' leases ran out too)")
        #expect(try await queue.postpone(ids[0], owner: "w", until: clock.now.addingTimeInterval(10), reason: "busy") == .dead)
        #expect(try await queue.event(ids[0])?.statusCode == 408)
    }

    /// The dispatcher's call: recorded from the leased copy, and what it owes
    /// said, so that only the workers with follow-ups are woken.
    @Test func completingALeasedEventSaysWhichAdaptersItOwes() async throws {
        let queue = try makeQueue()
        _ = try await queue.enqueue([message("c0000001", successReport: true), message("c0000002", successReport: false)])
        let leased = try await queue.lease(adapter: "webhook", owner: "w", limit: 10, for: .seconds(30))
        #expect(leased.count == 2)
        let owing = try await queue.complete(leased: leased[0], owner: "w", outcome: .delivered(proof: "204"))
        #expect(owing == Completion(state: .delivered, followUpAdapters: ["msrp"]))
        let quiet = try await queue.complete(leased: leased[1], owner: "w", outcome: .delivered(proof: "204"))
        #expect(quiet == Completion(state: .delivered, followUpAdapters: []))
        #expect(try await queue.events(EventFilter(kind: .report)).count == 1)
        await #expect(throws: QueueError.self) { try await queue.complete(leased: leased[1], owner: "w", outcome: .delivered(proof: "again")) }
    }

    /// An event the dispatcher has a slot for is stored already leased (one
    /// write instead of a store and a lease), exactly as a lease would return
    /// it, and only while nothing of its adapter is due: it never overtakes
    /// an event waiting for a lease.
    @Test func aClaimedEventIsStoredLeasedUnlessSomethingOfItsAdapterIsDue() async throws {
        let clock = TestClock()
        let queue = try makeQueue(clock: clock)
        let claim = LeaseClaim(owner: "node/w", duration: .seconds(30))
        let first = try await queue.enqueueNotingRepeats([message("k0000001"), message("k0000002", adapter: "irc")], claims: [claim, nil])
        let leased = try #require(first[0].leased)
        #expect(first[1].leased == nil)
        // What the queue holds is what a lease would have returned.
        let read = try #require(try await queue.event(first[0].id))
        #expect(read == leased)
        #expect(read.state == .leased && read.attempts == 1 && read.leaseOwner == "node/w")
        #expect(read.nextAttemptAt == clock.now.addingTimeInterval(30))
        #expect(try await queue.lease(adapter: "webhook", owner: "other", limit: 10, for: .seconds(30)).isEmpty)
        #expect(try await queue.stats().count(adapter: "webhook", state: .leased) == 1)

        // Unclaimed and due, in the same call: the claims after it are refused (order kept);
        // another adapter's claim is not (the irc event of the first call waits for its own).
        let second = try await queue.enqueueNotingRepeats([message("k0000003"), message("k0000004"), message("k0000005", adapter: "email")],
                                                          claims: [nil, claim, claim])
        #expect(second.map { $0.leased != nil } == [false, false, true])
        // In a later call too, while they wait.
        let third = try await queue.enqueueNotingRepeats([message("k0000006")], claims: [claim])
        #expect(third[0].leased == nil)
        // A repeat is not stored again, so not claimed.
        let again = try await queue.enqueueNotingRepeats([message("k0000005", adapter: "email")], claims: [claim])
        #expect(again[0].wasStored && again[0].leased == nil)

        // Once the backlog is leased, claims are granted again; the claimed event completes as a leased one.
        let backlog = try await queue.lease(adapter: "webhook", owner: "w", limit: 10, for: .seconds(30))
        #expect(backlog.map(\.id) == [second[0].id, second[1].id, third[0].id])
        let fourth = try await queue.enqueueNotingRepeats([message("k0000007")], claims: [claim])
        let done = try await queue.complete(leased: try #require(fourth[0].leased), owner: "node/w", outcome: .delivered(proof: "204"))
        #expect(done.state == .delivered)
        // An expired claimed lease is due again, like any lease.
        clock.advance(.seconds(31))
        #expect(try await queue.lease(adapter: "webhook", owner: "w2", limit: 10, for: .seconds(30)).map(\.id).contains(first[0].id))
    }

    /// PostgreSQL, shared by several nodes, grants no claim (the lease is how
    /// they take turns): the events are stored queued and leased as usual.
    @Test(arguments: QueueBackend.all) func aClaimIsGrantedOnlyWhereTheQueueTakesIt(_ backend: QueueBackend) async throws {
        let queue = try await makeQueue(backend)
        let stored = try await queue.enqueueNotingRepeats([message("g0000001")], claims: [LeaseClaim(owner: "w", duration: .seconds(30))])
        #expect((stored[0].leased != nil) == (backend == .sqlite))
        let leased = try await queue.lease(adapter: "webhook", owner: "w", limit: 10, for: .seconds(30))
        #expect(leased.map(\.id) == (backend == .sqlite ? [] : [stored[0].id]))
    }

    /// The enqueue that reports to a completion (the MSRP ingress calls it from
    /// its event loop) stores what the async call stores, says the same of
    /// repeats and claims, and reports once, when the events are durable.
    @Test(arguments: QueueBackend.all) func anEnqueueToldToACompletionStoresWhatTheAsyncCallStores(_ backend: QueueBackend) async throws {
        let queue = try await makeQueue(backend)
        let claim = LeaseClaim(owner: "w", duration: .seconds(30))
        let calls = NIOLockedValueBox(0)
        func enqueue(_ events: [NewEvent], claims: [LeaseClaim?]) async throws -> [Enqueued] {
            try await withCheckedThrowingContinuation { continuation in
                queue.enqueueNotingRepeats(events, claims: claims) { result in
                    calls.withLockedValue { $0 += 1 }
                    continuation.resume(with: result)
                }
            }
        }
        let first = try await enqueue([message("c0000001"), message("c0000002", adapter: "irc")], claims: [claim, nil])
        #expect(first.map(\.wasStored) == [false, false])
        #expect(first.map { $0.leased != nil } == [backend == .sqlite, false])
        for e in first { #expect(try await queue.event(e.id) != nil) }
        let again = try await enqueue([message("c0000002", adapter: "irc"), message("c0000003")], claims: [nil, nil])
        #expect(again.map(\.wasStored) == [true, false] && again[0].id == first[1].id)
        #expect(try await enqueue([], claims: []).isEmpty)
        #expect(calls.withLockedValue { $0 } == 3)
        #expect(try await queue.stats().count(adapter: "webhook", state: .queued) == (backend == .sqlite ? 1 : 2))
    }

    /// The configured level is the writer's: GRDB sets NORMAL when it turns WAL
    /// on, after the connection's preparation, and overrode it once unseen.
    @Test(arguments: [SQLiteEventQueue.Configuration.Synchronous.full, .normal, .off])
    func theWriterCommitsAtTheConfiguredSynchronousLevel(_ level: SQLiteEventQueue.Configuration.Synchronous) throws {
        let path = try temporaryDirectory() + "/queue.sqlite"
        let queue = try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: path, followUps: TestFollowUps(), synchronous: level))
        let value = try queue.pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        #expect(value == ["OFF": 0, "NORMAL": 1, "FULL": 2][level.rawValue])
    }

    /// The claim's owner gives its leases back at a restart like any other.
    @Test func claimedEventsAreGivenBackWithTheOwnersLeases() async throws {
        let queue = try makeQueue()
        let stored = try await queue.enqueueNotingRepeats([message("r0000001")], claims: [LeaseClaim(owner: "node-0/abc/webhook", duration: .seconds(30))])
        #expect(stored[0].leased != nil)
        #expect(try await queue.releaseLeases(ownerPrefix: "node-0/abc/") == 1)
        let again = try await queue.lease(adapter: "webhook", owner: "w", limit: 10, for: .seconds(30))
        #expect(again.map(\.id) == [stored[0].id] && again[0].attempts == 1)
    }

    @Test(arguments: QueueBackend.all) func aLeaseLeavesBusyTargetsOutAndTheirEventsKeepTheirPlace(_ backend: QueueBackend) async throws {
        let queue = try await makeQueue(backend)
        let busy = try await queue.enqueue((0..<5).map { message("b000000\($0)", target: "https://busy.test/") })
        let other = try await queue.enqueue((0..<3).map { message("o000000\($0)", target: "https://other.test/") })
        let first = try await queue.lease(adapter: "webhook", owner: "w", limit: 10, for: .seconds(30), excludingTargets: ["https://busy.test/"])
        #expect(first.map(\.id) == other)
        let then = try await queue.lease(adapter: "webhook", owner: "w", limit: 10, for: .seconds(30), excludingTargets: [])
        #expect(then.map(\.id) == busy)
        #expect(then.allSatisfy { $0.attempts == 1 })
    }

    @Test(arguments: QueueBackend.all) func aLeaseLeavingOutMoreTargetsThanItsStatementTakesStillWorks(_ backend: QueueBackend) async throws {
        let queue = try await makeQueue(backend)
        let targets = (0..<100).map { "https://t\($0).test/" }
        let ids = try await queue.enqueue(targets.map { message("x-\($0)", target: $0) })
        // The first 64 are left out; events for the rest come (the lanes hold them).
        let leased = try await queue.lease(adapter: "webhook", owner: "w", limit: 100, for: .seconds(30), excludingTargets: targets)
        #expect(leased.map(\.id) == Array(ids[64...]))
    }

    @Test(arguments: QueueBackend.all) func expiredLeaseComesBackAndTheOldOwnerLosesIt(_ backend: QueueBackend) async throws {
        let clock = TestClock()
        let queue = try await makeQueue(backend, clock: clock)
        let ids = try await queue.enqueue([message("m0000003")])
        _ = try await queue.lease(adapter: "webhook", owner: "crashed", limit: 1, for: .seconds(10))
        clock.advance(.seconds(5))
        #expect(try await queue.lease(adapter: "webhook", owner: "w2", limit: 1, for: .seconds(10)).isEmpty)
        clock.advance(.seconds(6))
        let again = try await queue.lease(adapter: "webhook", owner: "w2", limit: 1, for: .seconds(10))
        #expect(again.map(\.id) == ids)
        #expect(again[0].attempts == 2)
        await #expect(throws: QueueError.self) { try await queue.complete(ids[0], owner: "crashed", outcome: .delivered(proof: "late")) }
        #expect(try await queue.complete(ids[0], owner: "w2", outcome: .delivered(proof: "ok")) == .delivered)
    }

    @Test(arguments: QueueBackend.all) func extendLeaseKeepsIt(_ backend: QueueBackend) async throws {
        let clock = TestClock()
        let queue = try await makeQueue(backend, clock: clock)
        let ids = try await queue.enqueue([message("m0000004")])
        _ = try await queue.lease(adapter: "webhook", owner: "w1", limit: 1, for: .seconds(10))
        clock.advance(.seconds(8))
        try await queue.extendLease(ids[0], owner: "w1", by: .seconds(10))
        clock.advance(.seconds(8))
        #expect(try await queue.lease(adapter: "webhook", owner: "w2", limit: 1, for: .seconds(10)).isEmpty)
        await #expect(throws: QueueError.self) { try await queue.extendLease(ids[0], owner: "w2", by: .seconds(1)) }
    }

    @Test(arguments: QueueBackend.all) func retriesFollowTheScheduleThenDeadLetterWith408(_ backend: QueueBackend) async throws {
        let clock = TestClock()
        let queue = try await makeQueue(backend, clock: clock)
        let ids = try await queue.enqueue([message("m0000005", imdn: ["negative-delivery"])])
        var lease = try await queue.lease(adapter: "webhook", owner: "w", limit: 1, for: .seconds(30))
        #expect(try await queue.complete(ids[0], owner: "w", outcome: .retry(after: nil, reason: "HTTP 500")) == .queued)
        let e = try #require(try await queue.event(ids[0]))
        #expect(e.nextAttemptAt == clock.now.addingTimeInterval(5))
        #expect(e.lastError == "HTTP 500")
        clock.advance(.seconds(4))
        #expect(try await queue.lease(adapter: "webhook", owner: "w", limit: 1, for: .seconds(30)).isEmpty)
        clock.advance(.seconds(1))
        lease = try await queue.lease(adapter: "webhook", owner: "w", limit: 1, for: .seconds(30))
        #expect(lease.count == 1)
        // A Retry-After is honoured.
        #expect(try await queue.complete(ids[0], owner: "w", outcome: .retry(after: .seconds(120), reason: "HTTP 429")) == .queued)
        clock.advance(.seconds(120))
        lease = try await queue.lease(adapter: "webhook", owner: "w", limit: 1, for: .seconds(30))
        #expect(lease.first?.attempts == 3)
        // The third attempt is the last one: dead letter, failure REPORT 408, IMDN failed.
        #expect(try await queue.complete(ids[0], owner: "w", outcome: .retry(after: nil, reason: "HTTP 503")) == .dead)
        let dead = try #require(try await queue.event(ids[0]))
        #expect(dead.statusCode == 408)
        let owed = try await queue.lease(adapter: "msrp", owner: "m", limit: 10, for: .seconds(30))
        #expect(owed.first { $0.kind == .report }?.envelope.headers["status"] == "408")
        #expect(owed.first { $0.kind == .imdn }?.envelope.headers["disposition"] == "failed")
        // Replay puts it back with fresh attempts.
        #expect(try await queue.replay(ids[0]))
        #expect(try await queue.event(ids[0])?.state == .queued)
        #expect(try await queue.lease(adapter: "webhook", owner: "w", limit: 1, for: .seconds(30)).first?.attempts == 1)
        #expect(try await queue.replay(ids[0]) == false)  // it is leased, not failed
    }

    @Test(arguments: QueueBackend.all) func permanentFailureRecordsItsCodeAndWhatIsOwed(_ backend: QueueBackend) async throws {
        let queue = try await makeQueue(backend)
        let ids = try await queue.enqueue([message("m0000006")])
        _ = try await queue.lease(adapter: "webhook", owner: "w", limit: 10, for: .seconds(30))
        #expect(try await queue.complete(ids[0], owner: "w", outcome: .permanentFailure(code: 403, reason: "HTTP 400")) == .failed)
        #expect(try await queue.event(ids[0])?.statusCode == 403)
        let owed = try await queue.lease(adapter: "msrp", owner: "m", limit: 10, for: .seconds(30))
        #expect(owed.count == 1)
        #expect(owed.first?.parent == ids[0])
        #expect(owed.first?.envelope.headers["status"] == "403")
    }

    @Test(arguments: QueueBackend.all) func aBounceAfterDeliveryOwesTheFailureOnce(_ backend: QueueBackend) async throws {
        let clock = TestClock()
        let queue = try await makeQueue(backend, clock: clock)
        let ids = try await queue.enqueue([message("m0000010", adapter: "smtp", target: "mailto:x@example.org", imdn: ["negative-delivery"])])
        _ = try await queue.lease(adapter: "smtp", owner: "w", limit: 10, for: .seconds(30))
        #expect(try await queue.complete(ids[0], owner: "w", outcome: .delivered(proof: "250 ok")) == .delivered)
        let success = try await queue.lease(adapter: "msrp", owner: "m", limit: 10, for: .seconds(30))
        #expect(success.map { $0.envelope.headers["status"] ?? $0.envelope.headers["disposition"] ?? "" }.sorted() == ["200", "delivered"])
        // Delayed: noted, nothing owed, still delivered.
        #expect(try await queue.record(.delayed(reason: "4.4.1 no answer"), of: ids[0]) == .delivered)
        #expect(try await queue.event(ids[0])?.state == .delivered)
        #expect(try await queue.event(ids[0])?.lastError == "delayed: 4.4.1 no answer")
        #expect(try await queue.lease(adapter: "msrp", owner: "m", limit: 10, for: .seconds(30)).isEmpty)
        // Bounced: the failure REPORT and IMDN, once.
        #expect(try await queue.record(.bounced(code: 404, reason: "5.1.1 unknown user"), of: ids[0]) == .delivered)
        #expect(try await queue.record(.bounced(code: 404, reason: "again"), of: ids[0]) == .bounced, "taken once")
        #expect(try await queue.record(.bounced(code: 404, reason: "no such"), of: EventID(rawValue: 12345)) == nil)
        let event = try #require(try await queue.event(ids[0]))
        #expect(event.state == .bounced && event.statusCode == 404 && event.lastError == "5.1.1 unknown user")
        let owed = try await queue.lease(adapter: "msrp", owner: "m", limit: 10, for: .seconds(30))
        // (TestFollowUps keys its IMDN per event: the failed one is the delivered one's repeat. The Reporter's are per disposition.)
        #expect(owed.map { $0.envelope.headers["status"] ?? "" } == ["404"])
        #expect(try await queue.stats().count(state: .bounced) == 1)
        // Bounced events go with the retention, as delivered ones.
        clock.advance(.seconds(1))
        #expect(try await queue.purge(deliveredBefore: clock.now) >= 1)
        #expect(try await queue.event(ids[0]) == nil)
    }

    @Test(arguments: QueueBackend.all) func deadLetterOutcomeOwesAFailureAndCanBeReplayed(_ backend: QueueBackend) async throws {
        let queue = try await makeQueue(backend)
        let ids = try await queue.enqueue([message("m0000009", imdn: ["negative-delivery"])])
        _ = try await queue.lease(adapter: "webhook", owner: "w", limit: 1, for: .seconds(30))
        #expect(try await queue.complete(ids[0], owner: "w", outcome: .deadLetter(code: 404, reason: "HTTP 410: endpoint gone")) == .dead)
        let stored = try #require(try await queue.event(ids[0]))
        #expect(stored.statusCode == 404)
        let owed = try await queue.lease(adapter: "msrp", owner: "m", limit: 10, for: .seconds(30))
        #expect(Set(owed.map(\.kind)) == [.report, .imdn])
        #expect(try await queue.replay(ids[0]))
        #expect(try await queue.event(ids[0])?.state == .queued)
    }

    /// Completions share group transactions: one with a lost lease fails alone,
    /// the others in its batch commit.
    @Test(arguments: QueueBackend.all) func aLostLeaseInABatchFailsOnlyItsCaller(_ backend: QueueBackend) async throws {
        let queue = try await makeQueue(backend)
        let ids = try await queue.enqueue((0..<40).map { message("m20000\($0)y", successReport: false) })
        _ = try await queue.lease(adapter: "webhook", owner: "w", limit: 40, for: .seconds(30))
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for (i, id) in ids.enumerated() {
                group.addTask {
                    let owner = i % 4 == 0 ? "impostor" : "w"
                    let ok = (try? await queue.complete(id, owner: owner, outcome: .delivered(proof: "200"))) != nil
                    return (i, ok)
                }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        for (i, ok) in results { #expect(ok == (i % 4 != 0), "completion \(i)") }
        let stats = try await queue.stats()
        #expect(stats.count(state: .delivered) == 30)
        #expect(stats.count(state: .leased) == 10)
    }

    @Test(arguments: QueueBackend.all) func tooOldIsGivenUp(_ backend: QueueBackend) async throws {
        let clock = TestClock()
        let queue = try await makeQueue(backend, clock: clock, retry: RetryPolicy(schedule: [.seconds(600)], maxAttempts: 100, maxAge: .seconds(300), jitter: false))
        let ids = try await queue.enqueue([message("m0000008")])
        _ = try await queue.lease(adapter: "webhook", owner: "w", limit: 1, for: .seconds(30))
        #expect(try await queue.complete(ids[0], owner: "w", outcome: .retry(after: nil, reason: "down")) == .dead)
    }

    @Test(arguments: QueueBackend.all) func statsListAndPurge(_ backend: QueueBackend) async throws {
        let clock = TestClock()
        let queue = try await makeQueue(backend, clock: clock)
        let ids = try await queue.enqueue((0..<5).map { message("m10000\($0)x", successReport: false) })
        clock.advance(.seconds(7))
        var stats = try await queue.stats()
        #expect(stats.count(adapter: "webhook", state: .queued) == 5)
        #expect(stats.oldestDueAge == .seconds(7))
        _ = try await queue.lease(adapter: "webhook", owner: "w", limit: 2, for: .seconds(30))
        _ = try await queue.complete(ids[0], owner: "w", outcome: .delivered(proof: "200"))
        stats = try await queue.stats()
        #expect(stats.count(state: .delivered) == 1)
        #expect(stats.count(state: .leased) == 1)
        #expect(try await queue.events(EventFilter(state: .queued)).count == 3)
        #expect(try await queue.events(EventFilter(limit: 2)).map(\.id) == [ids[4], ids[3]])
        #expect(try await queue.events(EventFilter(sessionID: "sess1", before: ids[2])).map(\.id) == [ids[1], ids[0]])
        #expect(try await queue.purge(deliveredBefore: clock.now) == 0)
        clock.advance(.seconds(1))
        #expect(try await queue.purge(deliveredBefore: clock.now) == 1)
        #expect(try await queue.event(ids[0]) == nil)
        if let sqlite = queue as? SQLiteEventQueue { #expect(try await sqlite.integrityCheck() == "ok") }
    }

    @Test func retryPolicyJitterStaysWithinTheSchedule() {
        var rng = SystemRandomNumberGenerator()
        let p = RetryPolicy.standard
        let t0 = Date(timeIntervalSince1970: 0)
        for attempt in 1...10 {
            guard case .retry(let at) = p.decide(attempts: attempt, createdAt: t0, now: t0, requested: nil, using: &rng) else {
                Issue.record("gave up at \(attempt)")
                return
            }
            #expect(at >= t0)
            #expect(at.timeIntervalSince(t0) <= Double(p.schedule[attempt - 1].components.seconds))
        }
        #expect(p.decide(attempts: 11, createdAt: t0, now: t0, requested: nil, using: &rng) == .giveUp(reason: "11 attempts spent"))
    }
}
