import Events
import Foundation
import NIOConcurrencyHelpers
import Queue
import TestPeers
import Testing

@testable import Gateway

/// The dispatcher's per-endpoint rules, with time as a value.
@Suite struct EndpointLanesTests {
    let t0 = Date(timeIntervalSince1970: 1_000_000)
    func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    func lanes(concurrency: Int = 64, endpoint: Int = 16, batch: Int? = nil, failures: Int = 3) -> EndpointLanes<Int> {
        EndpointLanes(EndpointLanes.Settings(
            concurrency: concurrency, endpointConcurrency: endpoint, batchSize: batch,
            breaker: CircuitBreaker.Settings(failureThreshold: failures, minimumBackoff: .seconds(2), maximumBackoff: .seconds(8))))
    }

    @Test func breakerOpensAfterConsecutiveFailuresProbesAndBacksOffDoubling() {
        var b = CircuitBreaker(CircuitBreaker.Settings(failureThreshold: 3, minimumBackoff: .seconds(2), maximumBackoff: .seconds(5)))
        #expect(b.record(.failed, now: at(0)) == .none)
        #expect(b.record(.answered, now: at(0)) == .none)  // not consecutive: starts again
        #expect(b.record(.failed, now: at(1)) == .none)
        #expect(b.record(.failed, now: at(1)) == .none)
        #expect(b.record(.failed, now: at(1)) == .opened(until: at(3)))
        #expect(b.permission(now: at(2.9)) == .wait(until: at(3)))
        #expect(b.permission(now: at(3)) == .probe)
        #expect(b.permission(now: at(3)) == .wait(until: at(5)))  // one probe at a time
        #expect(b.record(.failed, now: at(4)) == .opened(until: at(8)))  // 4 s: doubled
        #expect(b.permission(now: at(8)) == .probe)
        #expect(b.record(.failed, now: at(8)) == .opened(until: at(13)))  // 5 s: the maximum
        #expect(b.permission(now: at(13)) == .probe)
        #expect(b.record(.answered, now: at(13.1)) == .closed)
        #expect(b.permission(now: at(13.1)) == .deliver)
        // Closed again: the back-off starts from the minimum.
        for _ in 0..<2 { _ = b.record(.failed, now: at(20)) }
        #expect(b.record(.failed, now: at(20)) == .opened(until: at(22)))
    }

    @Test func aProbeThatProvesNothingLetsTheNextOneProbe() {
        var b = CircuitBreaker(CircuitBreaker.Settings(failureThreshold: 1))
        _ = b.record(.failed, now: at(0))
        #expect(b.permission(now: at(2)) == .probe)
        #expect(b.record(.neutral, now: at(2)) == .none)
        #expect(b.permission(now: at(2)) == .probe)
    }

    @Test func aLaneTakesItsCapThenBuffersThenIsLeftOutOfLeases() {
        var l = lanes(concurrency: 64, endpoint: 16)
        var started = 0, buffered = 0
        for i in 0..<32 {
            switch l.admit(i, endpoint: "a", target: "https://a/", now: at(0)) {
            case .start: started += 1
            case .buffered: buffered += 1
            case .wait: Issue.record("a busy endpoint's event was sent back")
            }
        }
        // One busy lane: its 16 slots in flight; what the lease brought
        // beyond them waits in order; the next lease leaves the lane out.
        #expect(started == 16)
        #expect(buffered == 16)
        #expect(l.fullTargets == ["https://a/"] as Set)
        #expect(l.room(leaseBatch: 64) == 16, "slots stay free for other endpoints (a quarter per lease)")
        // A finished delivery frees a slot for the first buffered event, in order;
        // the lane stays left out until its buffer is empty and a quarter of its
        // slots are free (a lease's floor: not a lease per freed slot).
        _ = l.finished(endpoint: "a", result: .answered, now: at(0.01))
        #expect(l.startable() == [[16]])
        #expect(l.fullTargets == ["https://a/"] as Set)
        for _ in 0..<15 {
            _ = l.finished(endpoint: "a", result: .answered, now: at(0.02))
            _ = l.startable()
        }
        for _ in 0..<3 { _ = l.finished(endpoint: "a", result: .answered, now: at(0.03)) }
        #expect(l.fullTargets == ["https://a/"] as Set, "3 of 16 free")
        #expect(l.room(leaseBatch: 64) == 16, "room for other endpoints meanwhile")
        _ = l.finished(endpoint: "a", result: .answered, now: at(0.03))
        #expect(l.fullTargets.isEmpty)
        #expect(l.room(leaseBatch: 64) == 4, "a's free slots")
    }

    @Test func busyLanesGetFairSharesAndAlwaysLeaveRoomForAnother() {
        var l = lanes(concurrency: 64, endpoint: 32)
        /// Leases for `endpoint` as the dispatcher does (a lease's worth at a time,
        /// until the lease leaves it out); returns how many started.
        func fill(_ endpoint: String, from first: Int) -> Int {
            var started = 0, next = first
            while l.room(leaseBatch: 64) > 0, !l.fullTargets.contains(endpoint) {
                for _ in 0..<l.room(leaseBatch: 64) {
                    if case .start = l.admit(next, endpoint: endpoint, target: endpoint, now: at(0)) { started += 1 }
                    next += 1
                }
            }
            return started
        }
        #expect(fill("a", from: 0) == 32)  // 64 / 2
        #expect(l.room(leaseBatch: 64) == 16)
        #expect(fill("b", from: 100) == 21)  // 64 / 3
        // As a's deliveries finish, it is not refilled above its new share.
        for _ in 0..<11 { _ = l.finished(endpoint: "a", result: .answered, now: at(1)) }
        _ = l.startable()
        #expect(l.fullTargets.contains("a"), "a is at its share of three")
        #expect(l.room(leaseBatch: 64) > 0, "room for a third endpoint")
        #expect(fill("c", from: 200) > 0)
    }

    @Test func anOpenCircuitSendsTheBufferBackAndOnlyAProbeGoes() {
        var l = lanes(concurrency: 8, endpoint: 2, failures: 2)
        for i in 0..<4 { _ = l.admit(i, endpoint: "dead", target: "http://dead/", now: at(0)) }  // 2 in flight, 2 buffered
        _ = l.finished(endpoint: "dead", result: .failed, cause: "connection refused", now: at(2))
        let opened = l.finished(endpoint: "dead", result: .failed, cause: "TLS failed: bad certificate", now: at(2))
        #expect(opened.transition == .opened(until: at(4)))
        #expect(opened.toWait.map(\.item) == [2, 3])
        #expect(opened.toWait.allSatisfy { $0.until == at(4) })
        // The events that wait keep the failure that opened the circuit.
        #expect(opened.toWait.allSatisfy { $0.reason == "endpoint dead is not answering: TLS failed: bad certificate (circuit open)" })
        #expect(l.startable().isEmpty)
        #expect(l.openCircuits == 1)
        // Meanwhile another endpoint goes at once.
        guard case .start(probe: false) = l.admit(9, endpoint: "ok", target: "http://ok/", now: at(2)) else {
            Issue.record("a healthy endpoint waited")
            return
        }
        guard case .wait(let until, let reason) = l.admit(4, endpoint: "dead", target: "http://dead/", now: at(3)) else {
            Issue.record("an open circuit let an event go")
            return
        }
        #expect(reason.hasPrefix("endpoint dead is not answering: TLS failed") && EndpointLanes<Int>.waitedForCircuit(reason))
        #expect(until == at(603), "the buffered events are the probe candidates; the others wait until the circuit closes")
        guard case .start(probe: true) = l.admit(5, endpoint: "dead", target: "http://dead/", now: at(4)) else {
            Issue.record("no probe after the back-off")
            return
        }
        guard case .wait = l.admit(6, endpoint: "dead", target: "http://dead/", now: at(4)) else {
            Issue.record("a second event went while the probe is out")
            return
        }
        let closed = l.finished(endpoint: "dead", result: .answered, now: at(4.1))
        #expect(closed.transition == .closed)
        #expect(closed.dueTargets == ["http://dead/"])
    }

    /// On a queue other nodes share, another node may lease and deliver the
    /// probe's candidate: when it has not come back within the grace after its
    /// time, the lane's waiters are made due (once), and the next one leased
    /// is the probe.
    @Test func aProbeCandidateThatDoesNotComeBackMakesTheWaitersDue() {
        var l = lanes(concurrency: 8, endpoint: 2, failures: 1)
        _ = l.admit(0, endpoint: "dead", target: "http://dead/a", now: at(0))
        #expect(l.finished(endpoint: "dead", result: .failed, now: at(1)).transition == .opened(until: at(3)))
        guard case .wait(let candidate, _) = l.admit(1, endpoint: "dead", target: "http://dead/a", now: at(1)),
              case .wait(let long, _) = l.admit(2, endpoint: "dead", target: "http://dead/b", now: at(1)) else {
            Issue.record("an open circuit let an event go")
            return
        }
        #expect(candidate == at(3) && long == at(601))
        #expect(l.lostProbeCandidates(now: at(7.9)).isEmpty, "within the grace (5 s) the candidate may still come")
        #expect(l.lostProbeCandidates(now: at(8.1)) == ["http://dead/a", "http://dead/b"])
        #expect(l.lostProbeCandidates(now: at(20)).isEmpty, "made due once")
        guard case .start(probe: true) = l.admit(2, endpoint: "dead", target: "http://dead/b", now: at(20)) else {
            Issue.record("the next event leased was not the probe")
            return
        }
    }

    @Test func theCircuitReasonIsRecognisedInTheLastError() {
        #expect(EndpointLanes<Int>.waitedForCircuit(EndpointLanes<Int>.circuitOpenReason("http://x/")))
        #expect(EndpointLanes<Int>.waitedForCircuit(EndpointLanes<Int>.circuitOpenReason("http://x/", cause: "HTTP 503 (twice)")))
        #expect(!EndpointLanes<Int>.waitedForCircuit("HTTP 503"))
        #expect(!EndpointLanes<Int>.waitedForCircuit(nil))
    }

    /// Events an earlier run told to wait for an open circuit (long, as the
    /// non-candidates do) are not in this run's lanes: the endpoint's first
    /// answer makes its inherited targets due, once; a failure does not.
    @Test func theFirstAnswerMakesAnEarlierRunsWaitersDue() {
        var l = lanes()
        l.inherit(waiting: ["ok": ["http://ok/a", "http://ok/b"], "down": ["http://down/"]])
        _ = l.admit(3, endpoint: "down", target: "http://down/", now: at(0))
        let failed = l.finished(endpoint: "down", result: .failed, now: at(1))
        #expect(failed.dueTargets.isEmpty, "only an answer says the endpoint is back")
        _ = l.admit(1, endpoint: "ok", target: "http://ok/a", now: at(0))
        let first = l.finished(endpoint: "ok", result: .answered, now: at(1))
        #expect(first.dueTargets == ["http://ok/a", "http://ok/b"])
        _ = l.admit(2, endpoint: "ok", target: "http://ok/a", now: at(1))
        let second = l.finished(endpoint: "ok", result: .answered, now: at(2))
        #expect(second.dueTargets.isEmpty)
    }

    @Test func aBatchLaneHasOneBatchInFlight() {
        var l = lanes(concurrency: 40, batch: 10)
        for i in 0..<10 {
            guard case .buffered = l.admit(i, endpoint: "irc:a", target: "irc://a/#x", now: at(0)) else {
                Issue.record("\(i) not buffered")
                return
            }
        }
        #expect(l.startable() == [Array(0..<10)])
        for i in 10..<25 { _ = l.admit(i, endpoint: "irc:a", target: "irc://a/#x", now: at(0)) }
        #expect(l.startable().isEmpty, "one batch per network at a time")
        for i in 25..<30 { _ = l.admit(i, endpoint: "irc:b", target: "irc://b/#y", now: at(0)) }
        #expect(l.startable() == [Array(25..<30)], "another network's batch does not wait for the first")
        _ = l.finished(endpoint: "irc:a", result: .answered, count: 10, now: at(0.001))
        #expect(l.startable() == [Array(10..<20)])
    }

    /// An adapter whose batch waits on the far side (XMPP's receipts) may have
    /// the next batch of the same endpoint out meanwhile, and no more.
    @Test func aBatchLaneMayHaveTheNextBatchInFlightWhenItsAdapterSaysSo() {
        var l = EndpointLanes<Int>(EndpointLanes.Settings(concurrency: 40, endpointConcurrency: 40, batchSize: 10, batchesInFlight: 2,
                                                         breaker: CircuitBreaker.Settings()))
        for i in 0..<35 { _ = l.admit(i, endpoint: "xmpp:a", target: "xmpp:a@x", now: at(0)) }
        #expect(l.startable() == [Array(0..<10), Array(10..<20)], "two batches, in order")
        #expect(l.startable().isEmpty, "not a third")
        #expect(l.fullTargets == ["xmpp:a@x"])
        _ = l.finished(endpoint: "xmpp:a", result: .answered, count: 10, now: at(0.001))
        #expect(l.startable() == [Array(20..<30)])
        _ = l.finished(endpoint: "xmpp:a", result: .answered, count: 10, now: at(0.002))
        _ = l.finished(endpoint: "xmpp:a", result: .answered, count: 10, now: at(0.003))
        #expect(l.startable() == [Array(30..<35)])
        _ = l.finished(endpoint: "xmpp:a", result: .answered, count: 5, now: at(0.004))
        #expect(l.laneCount == 0)
        #expect(l.room(leaseBatch: 1000) == 40)
    }

    @Test func anIdleHealthyLaneIsForgotten() {
        var l = lanes()
        _ = l.admit(1, endpoint: "a", target: "a", now: at(0))
        _ = l.finished(endpoint: "a", result: .answered, now: at(0))
        #expect(l.laneCount == 0)
        // A failure is remembered (the next failures must count on it).
        _ = l.admit(1, endpoint: "a", target: "a", now: at(0))
        _ = l.finished(endpoint: "a", result: .failed, now: at(0))
        #expect(l.laneCount == 1)
    }
}

/// What a worker holds keeps its lease while it takes long; what it let go does not.
@Suite struct LeaseKeeperTests {
    /// The queue's clock, moved by hand.
    final class Clock: Sendable {
        let date = NIOLockedValueBox(Date(timeIntervalSince1970: 1_800_000_000))
        func advance(_ seconds: Double) { date.withLockedValue { $0 = $0.addingTimeInterval(seconds) } }
    }

    @Test func heldLeasesAreExtendedReleasedOnesExpire() async throws {
        let directory = try Scratch.directory("keeper")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clock = Clock()
        let queue = try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: directory + "/q.sqlite", followUps: NoFollowUps()),
                                         now: { clock.date.withLockedValue { $0 } })
        let ids = try await queue.enqueue((0..<2).map { i in
            NewEvent(adapter: "webhook", target: "https://x/", origin: EventOrigin(sessionID: "s", messageID: "k\(i)"), body: .inline([1]))
        })
        let lease = Duration.seconds(6)
        _ = try await queue.lease(adapter: "webhook", owner: "w", limit: 2, for: lease)
        let keeper = LeaseKeeper()
        let start = ContinuousClock.now
        keeper.hold(ids)
        keeper.release(ids[1])
        // 2 s on: nothing to extend yet. 4 s on: the held one is extended (to 10 s).
        clock.advance(2)
        await keeper.extendDue(queue: queue, owner: "w", duration: lease, now: start + .seconds(2))
        clock.advance(2)
        await keeper.extendDue(queue: queue, owner: "w", duration: lease, now: start + .seconds(4))
        // 7 s on: the released one expired and is leased again; the held one is still ours.
        clock.advance(3)
        let again = try await queue.lease(adapter: "webhook", owner: "other", limit: 2, for: .seconds(30))
        #expect(again.map(\.id) == [ids[1]])
        #expect(try await queue.complete(ids[0], owner: "w", outcome: .delivered(proof: "ok")) == .delivered)
        // A lease found lost is let go.
        keeper.hold([ids[1]])
        await keeper.extendDue(queue: queue, owner: "w", duration: lease, now: .now + .seconds(60))
        keeper.release(ids[0])
        #expect(keeper.isEmpty)
    }
}

/// An adapter whose one endpoint has all its slots (SMTP's relay) is not shared.
@Suite struct SingleEndpointAdapterTests {
    @Test func theRelayGetsEverySlot() {
        var l = EndpointLanes<Int>(EndpointLanes.Settings(concurrency: 4, endpointConcurrency: 4, batchSize: nil, breaker: CircuitBreaker.Settings()))
        let now = Date()
        var started = 0
        for i in 0..<4 { if case .start = l.admit(i, endpoint: "smtp://relay:25", target: "mailto:x\(i)@example.com", now: now) { started += 1 } }
        #expect(started == 4)
    }
}

/// Slots taken for events about to be stored already leased (`reserve`).
@Suite struct EndpointLaneReservationTests {
    let t0 = Date(timeIntervalSince1970: 1_000_000)

    func lanes(concurrency: Int = 8, endpoint: Int = 2, batch: Int? = nil) -> EndpointLanes<Int> {
        EndpointLanes(EndpointLanes.Settings(
            concurrency: concurrency, endpointConcurrency: endpoint, batchSize: batch,
            breaker: CircuitBreaker.Settings(failureThreshold: 1, minimumBackoff: .seconds(2), maximumBackoff: .seconds(8))))
    }

    /// `reserve` outside `#expect` (which cannot take a mutating call).
    func take(_ l: inout EndpointLanes<Int>, endpoint: String, target: String) -> Bool {
        l.reserve(endpoint: endpoint, target: target)
    }

    @Test func aReservationIsASlotInFlightUpToTheLanesCap() {
        var l = lanes()
        #expect(take(&l, endpoint: "a", target: "https://a/"))
        #expect(take(&l, endpoint: "a", target: "https://a/"))
        #expect(!take(&l, endpoint: "a", target: "https://a/"))  // its cap: 2
        // A full lane is left out of leases, like one whose slots leased events took.
        #expect(l.fullTargets == ["https://a/"])
        #expect(take(&l, endpoint: "b", target: "https://b/"))
        l.unreserve(endpoint: "a")
        #expect(l.fullTargets.isEmpty)
        _ = l.finished(endpoint: "a", result: .answered, now: t0)
        _ = l.finished(endpoint: "b", result: .answered, now: t0)
        #expect(l.laneCount == 0)  // nothing held once all ended
        #expect(l.room(leaseBatch: 64) == 2)  // a quarter of 8, as before any reservation
    }

    @Test func noReservationOverBufferedEventsAnOpenCircuitOrForABatchAdapter() {
        var l = lanes(endpoint: 1)
        guard case .start = l.admit(1, endpoint: "a", target: "https://a/", now: t0),
              case .buffered = l.admit(2, endpoint: "a", target: "https://a/", now: t0)
        else { Issue.record("the first event did not start, or the second was not buffered"); return }
        _ = l.finished(endpoint: "a", result: .answered, now: t0)
        // A slot is free, but event 2 waits for it: a new event must not overtake it.
        #expect(!take(&l, endpoint: "a", target: "https://a/"))
        #expect(l.startable() == [[2]])
        let opened = l.finished(endpoint: "a", result: .failed, now: t0)
        #expect(opened.transition != .none)
        #expect(!take(&l, endpoint: "a", target: "https://a/"))  // its circuit is open
        var batch = lanes(batch: 10)
        #expect(!take(&batch, endpoint: "a", target: "irc://a/#x"))
    }

    @Test func reservationsKeepTheAdaptersTotalCap() {
        var l = lanes(concurrency: 2, endpoint: 2)
        #expect(take(&l, endpoint: "a", target: "a"))
        #expect(take(&l, endpoint: "b", target: "b"))
        #expect(!take(&l, endpoint: "c", target: "c"))
        #expect(l.room(leaseBatch: 64) == 0)
    }
}

/// The lanes' counts as the dispatcher uses them: deliveries started one group
/// at a time (a lease's admission, a buffer's turn, a reservation) and finished
/// one group at a time. A lane's count and the adapter's must stay together:
/// when a one-by-one adapter's buffer came out as one group of several events,
/// the adapter's count fell behind by all but one each time, and the lane
/// looked full for good (a backlog that never drained).
@Suite struct EndpointLanesCountTests {
    /// Ending several one-by-one deliveries at once frees as many slots in the
    /// lane as in the adapter (a batch is one delivery in its lane).
    @Test func endingSeveralDeliveriesAtOnceFreesTheirSlots() {
        var l = EndpointLanes<Int>(EndpointLanes.Settings(concurrency: 8, endpointConcurrency: 4, batchSize: nil,
                                                         breaker: CircuitBreaker.Settings(failureThreshold: 3)))
        for i in 0..<3 { _ = l.admit(i, endpoint: "a", target: "a", now: Date()) }
        _ = l.finished(endpoint: "a", result: .answered, count: 3, now: Date())
        #expect(l.laneCount == 0)
        #expect(l.room(leaseBatch: 64) == 2)
    }

    @Test(arguments: [(nil, 1), (8, 1), (8, 2)] as [(Int?, Int)])
    func deliveriesStartedAndFinishedInAnyOrderLeaveNothingBehind(_ batch: Int?, _ batchesInFlight: Int) async {
        await OwnThread.run { Self.walk(batch, batchesInFlight) }
    }

    /// 50,000 random steps, seconds of CPU: on a thread of its own (`OwnThread`).
    private static func walk(_ batch: Int?, _ batchesInFlight: Int) {
        var l = EndpointLanes<String>(EndpointLanes.Settings(concurrency: 256, endpointConcurrency: 128, batchSize: batch,
                                                            batchesInFlight: batchesInFlight, breaker: CircuitBreaker.Settings(failureThreshold: 3)))
        var rng = SystemRandomNumberGenerator()
        var running: [(endpoint: String, count: Int)] = []
        var reserved: [String] = []
        let now = Date()
        func finish(_ d: (endpoint: String, count: Int)) {
            _ = l.finished(endpoint: d.endpoint, result: .answered, count: d.count, now: now)
        }
        func start(_ groups: [[String]]) {
            for group in groups {
                if batch == nil { #expect(group.count == 1, "a one-by-one adapter's delivery is one event") }
                if let first = group.first { running.append((first, group.count)) }
            }
        }
        for step in 0..<50_000 {
            let endpoint = ["a", "b", "c"][Int.random(in: 0..<3, using: &rng)]
            switch Int.random(in: 0..<5, using: &rng) {
            case 0:
                if l.reserve(endpoint: endpoint, target: endpoint) { reserved.append(endpoint) }
            case 1:
                // A reservation's event: stored leased (it runs) or not (its slot is given back).
                guard !reserved.isEmpty else { break }
                let e = reserved.removeFirst()
                if Bool.random(using: &rng) { running.append((e, 1)) } else { l.unreserve(endpoint: e) }
            case 2:
                for _ in 0..<Int.random(in: 1...40, using: &rng) {
                    if case .start = l.admit(endpoint, endpoint: endpoint, target: endpoint, now: now) { running.append((endpoint, 1)) }
                }
            case 3:
                for _ in 0..<Int.random(in: 1...20, using: &rng) where !running.isEmpty {
                    finish(running.remove(at: Int.random(in: 0..<running.count, using: &rng)))
                }
            default:
                start(l.startable())
            }
            _ = step
        }
        // Everything ends: nothing is left in flight, and the whole share is free again.
        for e in reserved { l.unreserve(endpoint: e) }
        start(l.startable())
        while !running.isEmpty {
            for d in running { finish(d) }
            running = []
            start(l.startable())
        }
        #expect(l.laneCount == 0)
        #expect(l.fullTargets.isEmpty)
        #expect(l.room(leaseBatch: 1000) == 64)
    }
}
