import Foundation

/// The dispatcher's bookkeeping for one adapter's endpoints (a webhook URL, an
/// IRC network, an SMTP relay, an MSRP peer), as a value: time is given and
/// nothing runs, so every rule is unit-tested.
///
/// Why: endpoints share an adapter's delivery slots. Without lanes, the events
/// of one dead or slow endpoint fill every slot and the others get nothing.
/// Each endpoint (lane) has
/// - a cap on deliveries in flight: the smaller of its configured concurrency
///   and a fair share that shrinks as more lanes are busy, so that busy lanes
///   always leave slots free for the others;
/// - a small buffer of leased events waiting for its next free slot (so that
///   one busy endpoint does not turn every lease into writes);
/// - a circuit breaker.
///
/// An event that cannot go or wait in the buffer is told to wait in the queue:
/// behind the lane's earlier waiters, spaced at the rate the lane drains, so
/// that a lane's events keep their order and do not come back all at once; or,
/// while the circuit is open, until the circuit closes (one of them until the
/// back-off ends, to be the probe). The adapter's lease size is what the lanes
/// can take: global slots minus what is in flight and buffered.
struct EndpointLanes<Item: Sendable>: Sendable {
    struct Settings: Sendable, Hashable {
        /// Deliveries in flight at once, all endpoints together.
        var concurrency: Int
        /// Deliveries in flight at once to one endpoint (before the fair share).
        var endpointConcurrency: Int
        /// One batch in flight per endpoint (a `BatchAdapter`), of at most `batchSize`.
        var batchSize: Int?
        var breaker: CircuitBreaker.Settings
        /// The longest an event is told to wait behind its lane's earlier waiters.
        var maximumWait: Duration = .seconds(600)
    }

    /// What to do with an admitted event.
    enum Admission: Sendable {
        case start(probe: Bool)
        /// Kept in the lane's buffer; `startable()` hands it out when a slot frees.
        case buffered
        /// Give it back to the queue as not ready until `until` (no attempt spent).
        case wait(until: Date, reason: String)
    }

    /// What a finished delivery (or batch) changed.
    struct Finished: Sendable {
        /// Buffered events that must now wait in the queue (the circuit opened).
        var toWait: [(item: Item, until: Date, reason: String)] = []
        /// The circuit opened (`until`) or closed.
        var transition: CircuitBreaker.Transition = .none
        /// Targets whose waiting events are due now: the circuit closed, or the
        /// lane went idle while they waited.
        var dueTargets: Set<String> = []
    }

    private struct Lane: Sendable {
        var inFlight = 0
        var buffer: [Item] = []
        var breaker: CircuitBreaker
        /// When the last event told to wait behind this lane comes due.
        var horizon: Date?
        /// Its waiters are being made due (`recalled` ends it).
        var recalling = false
        /// An event already waits to be the next probe (the circuit is open).
        var hasProbeCandidate = false
        /// The newest event told to wait behind the horizon.
        var lastWaiter: Int64 = 0
        /// Moving average of a delivery's duration, in seconds.
        var latency: Double = 0.1
        /// Targets whose events were told to wait (made due when the circuit closes or the lane idles).
        var waitingTargets: Set<String> = []

        var isBusy: Bool { inFlight > 0 || !buffer.isEmpty }

        /// No event waits behind the lane any more.
        mutating func endLine() {
            lastWaiter = 0
            horizon = nil
            waitingTargets = []
        }
    }

    let settings: Settings
    private var lanes: [String: Lane] = [:]
    private var inFlight = 0
    private var buffered = 0
    private var busyLanes = 0

    init(_ settings: Settings) {
        self.settings = settings
    }

    /// How many events a lease may take now.
    func room(leaseBatch: Int) -> Int {
        max(0, min(leaseBatch, settings.concurrency - inFlight - buffered))
    }

    var isIdle: Bool { inFlight == 0 && buffered == 0 }

    /// Lanes remembered: busy ones, ones with waiters or failures.
    var laneCount: Int { lanes.count }

    /// Whether the endpoint's circuit is open (for metrics and logs).
    func isOpen(_ endpoint: String) -> Bool { !(lanes[endpoint]?.breaker.isClosed ?? true) }

    var openCircuits: Int { lanes.values.filter { !$0.breaker.isClosed }.count }

    /// Decides for one leased event of `endpoint` (whose queue target is `target`;
    /// `order` is its place in the queue, its id). A batch adapter's events are
    /// buffered, and `startable()` makes each free lane's buffer one batch.
    mutating func admit(_ item: Item, order: Int64, endpoint: String, target: String, now: Date) -> Admission {
        update(endpoint) { lanes, lane in
            let limit = lanes.limit()
            switch lane.breaker.permission(now: now) {
            case .wait(let until):
                // One waiter per back-off comes due when the probe may go (the
                // candidate); the others wait long, and come due at once when the
                // circuit closes. So a dead endpoint's backlog is not leased and
                // given back every back-off period.
                lane.waitingTargets.insert(target)
                lane.lastWaiter = max(lane.lastWaiter, order)
                let reason = "endpoint \(endpoint) is not answering (circuit open)"
                if lane.hasProbeCandidate { return .wait(until: now.addingTimeInterval(lanes.settings.maximumWait.seconds), reason: reason) }
                lane.hasProbeCandidate = true
                return .wait(until: until, reason: reason)
            case .probe:
                lane.hasProbeCandidate = false  // the next waiter is the candidate if this probe fails
                lane.inFlight += 1
                lanes.inFlight += 1
                return .start(probe: true)
            case .deliver:
                if !lane.recalling, let h = lane.horizon, now.timeIntervalSince(h) > 5 {
                    // The newest waiter never came back (replayed, purged): the line is stale.
                    lane.endLine()
                }
                // A newer event does not overtake the lane's waiters; a waiter back
                // from the queue (or an older event) is not put behind them.
                let behind = lane.lastWaiter != 0 && order > lane.lastWaiter
                if behind, lane.recalling {
                    // The waiters are being made due: it goes back, to come after them.
                    return .wait(until: now.addingTimeInterval(0.001), reason: "endpoint \(endpoint) has earlier events to deliver first")
                }
                if !behind {
                    // The newest waiter taken: the line of waiters is through.
                    if lanes.settings.batchSize == nil, lane.inFlight < limit, lane.buffer.isEmpty {
                        if order == lane.lastWaiter { lane.endLine() }
                        lane.inFlight += 1
                        lanes.inFlight += 1
                        return .start(probe: false)
                    }
                    if lane.buffer.count < lanes.settings.batchSize ?? limit {
                        if order == lane.lastWaiter { lane.endLine() }
                        lane.buffer.append(item)
                        lanes.buffered += 1
                        return .buffered
                    }
                }
                // Behind the lane's earlier waiters, spaced at the rate it drains.
                let step = min(max(lane.latency / Double(limit), 0.001), 1)
                let at = max(lane.horizon ?? now, now).addingTimeInterval(step)
                let until = min(at, now.addingTimeInterval(lanes.settings.maximumWait.seconds))
                lane.horizon = until
                lane.lastWaiter = max(lane.lastWaiter, order)
                lane.waitingTargets.insert(target)
                return .wait(until: until, reason: "endpoint \(endpoint) is busy (\(lane.inFlight) in flight)")
            }
        }
    }

    /// Buffered events that may start now, lane by lane; for a batch adapter each
    /// group is one batch.
    mutating func startable() -> [[Item]] {
        var groups: [[Item]] = []
        for key in lanes.keys where !(lanes[key]?.buffer.isEmpty ?? true) {
            update(key) { lanes, lane in
                guard lane.breaker.isClosed else { return }
                let n: Int
                if lanes.settings.batchSize != nil {
                    n = lane.inFlight == 0 ? lane.buffer.count : 0
                } else {
                    n = min(lane.buffer.count, max(0, lanes.limit() - lane.inFlight))
                }
                guard n > 0 else { return }
                groups.append(Array(lane.buffer.prefix(n)))
                lane.buffer.removeFirst(n)
                lanes.buffered -= n
                lanes.inFlight += n
                lane.inFlight += lanes.settings.batchSize == nil ? n : 1
            }
        }
        return groups
    }

    /// Records the end of a delivery, or of a batch of `count` events.
    mutating func finished(endpoint: String, result: CircuitBreaker.Result, count: Int = 1, latency: Duration, now: Date) -> Finished {
        guard lanes[endpoint] != nil else { return Finished() }
        return update(endpoint) { lanes, lane in
            var out = Finished()
            lane.inFlight -= 1
            lanes.inFlight -= count
            lane.latency = lane.latency * 0.8 + latency.seconds * 0.2
            out.transition = lane.breaker.record(result, now: now)
            switch out.transition {
            case .opened(let until):
                // The buffered events come back when the probe may go (candidates).
                out.toWait = lane.buffer.map { ($0, until, "endpoint \(endpoint) is not answering (circuit open)") }
                lane.hasProbeCandidate = !lane.buffer.isEmpty
                lanes.buffered -= lane.buffer.count
                lane.buffer = []
            case .closed:
                out.dueTargets = lane.waitingTargets
                lane.recalling = !lane.waitingTargets.isEmpty
                lane.waitingTargets = []
                lane.horizon = nil
            case .none:
                break
            }
            if let h = lane.horizon, h > now, lane.inFlight == 0, lane.buffer.isEmpty, lane.breaker.isClosed {
                // Idle while events still wait for it: the drain rate was
                // underestimated (a slow spell that passed). They are due now.
                out.dueTargets.formUnion(lane.waitingTargets)
                lane.recalling = true
                lane.horizon = nil
                lane.waitingTargets = []
            }
            return out
        }
    }

    /// The waiters of these endpoints (`Finished.dueTargets`) are due again in the queue.
    mutating func recalled(_ endpoints: Set<String>) {
        for endpoint in endpoints where lanes[endpoint] != nil {
            update(endpoint) { _, lane in
                lane.recalling = false
            }
        }
    }

    /// Runs `body` on the lane of `endpoint` (a fresh one if it has none), keeps
    /// the count of busy lanes, and forgets a lane with nothing to remember.
    private mutating func update<T>(_ endpoint: String, _ body: (inout Self, inout Lane) -> T) -> T {
        var lane = lanes.removeValue(forKey: endpoint) ?? Lane(breaker: CircuitBreaker(settings.breaker))
        if lane.isBusy { busyLanes -= 1 }
        let result = body(&self, &lane)
        if lane.isBusy { busyLanes += 1 }
        if lane.isBusy || lane.horizon != nil || lane.lastWaiter != 0 || lane.recalling || lane.breaker.state != .closed(consecutiveFailures: 0) {
            lanes[endpoint] = lane
        }
        return result
    }

    /// The cap of the lane being updated: its configured concurrency, within a
    /// fair share of the adapter's slots. A lane holds at most twice its cap (in
    /// flight and buffered), so k busy lanes hold at most k/(k+1) of the slots:
    /// there is always room to lease for another endpoint. Called inside
    /// `update`, where that lane is out of `busyLanes`.
    private func limit() -> Int {
        if settings.batchSize != nil { return 1 }
        let busy = busyLanes + 1
        return max(1, min(settings.endpointConcurrency, settings.concurrency / (2 * (busy + 1))))
    }
}
