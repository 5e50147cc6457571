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
/// - a buffer of leased events, in queue order, waiting for its next free slot
///   (what one lease brought beyond its free slots; for a batch adapter, the
///   next batch);
/// - a circuit breaker.
///
/// A lane whose slots and buffer are full is left out of the next lease
/// (`fullTargets`): its events stay due in the queue, in order, and cost
/// nothing until it has room. (What one lease brought for it beyond that is
/// buffered too: an endpoint's events are never sent back for being busy, so
/// they keep their order.) While its circuit is open, its events go back to
/// the queue until the circuit closes (one of them until the back-off ends, to
/// be the probe), spending no attempts.
struct EndpointLanes<Item: Sendable>: Sendable {
    struct Settings: Sendable, Hashable {
        /// Deliveries in flight at once, all endpoints together.
        var concurrency: Int
        /// Deliveries in flight at once to one endpoint (before the fair share).
        var endpointConcurrency: Int
        /// Batches in flight per endpoint (a `BatchAdapter`), of at most `batchSize`.
        var batchSize: Int?
        var batchesInFlight = 1
        var breaker: CircuitBreaker.Settings
        /// How long the events of an open circuit wait, but for the probe's
        /// candidate (they are due at once when it closes).
        var openCircuitWait: Duration = .seconds(600)
        /// How long after its time the probe's candidate may take to come back
        /// before it counts as lost (on a queue other nodes share, another node
        /// may have leased it): then the lane's waiters are made due, and the
        /// next one leased is the probe.
        var probeGrace: Duration = .seconds(5)
    }

    /// The reason an event waits for its endpoint's circuit (stored as its last
    /// error: `waitedForCircuit` recognises it in whichever node leases it next),
    /// with the failure that opened it: an event that ages out while it waits
    /// keeps why ("TLS failed...", "connection refused") for the operator.
    static func circuitOpenReason(_ endpoint: String, cause: String? = nil) -> String {
        "endpoint \(endpoint) is not answering\(cause.map { ": " + $0 } ?? "") (\(circuitOpenMark))"
    }

    /// Whether an event's last error says it waited for its endpoint's circuit.
    static func waitedForCircuit(_ lastError: String?) -> Bool {
        lastError?.hasSuffix("(\(circuitOpenMark))") ?? false
    }

    private static var circuitOpenMark: String { "circuit open" }

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
        /// Targets whose events waited for the circuit: due now that it closed.
        var dueTargets: Set<String> = []
    }

    private struct Lane: Sendable {
        var inFlight = 0
        var buffer: [Item] = []
        var breaker: CircuitBreaker
        /// The queue targets seen on this lane while it is busy (what a lease
        /// leaves out when it is full).
        var targets: Set<String> = []
        /// Targets whose events wait for the circuit (made due when it closes).
        var waitingTargets: Set<String> = []
        /// An event already waits to be the next probe (the circuit is open).
        var hasProbeCandidate = false
        /// Why the last failed delivery failed (the cause an open circuit names).
        var lastFailure: String?

        var isBusy: Bool { inFlight > 0 || !buffer.isEmpty }
    }

    let settings: Settings
    private var lanes: [String: Lane] = [:]
    /// Endpoint → targets with events an earlier run told to wait (not in any
    /// lane's `waitingTargets`): made due at the endpoint's first answer.
    private var inherited: [String: Set<String>] = [:]
    private var inFlight = 0
    private var buffered = 0
    private var busyLanes = 0

    init(_ settings: Settings) {
        self.settings = settings
    }

    /// How many events a lease may take now. While a busy endpoint has free
    /// slots, only as many as they are: more would wait in its buffer, leased
    /// for nothing (leasing 64 ahead of a lone webhook's slots halved what it
    /// delivered at 2,000 msg/s). Once every busy endpoint is full, the lease
    /// leaves them out, so what it brings is for other endpoints: then up to a
    /// quarter of the slots, so that one lease for a single new endpoint leaves
    /// room for others.
    func room(leaseBatch: Int) -> Int {
        // An adapter whose one endpoint may take every slot (SMTP's relay) has no
        // other endpoint to leave room for: a lease fills every free slot (a
        // quarter, 2 of SMTP's 8, made a lease, a write, for every two mails).
        let share = settings.endpointConcurrency >= settings.concurrency ? settings.concurrency : max(1, settings.concurrency / 4)
        let cap = max(0, min(leaseBatch, share, settings.concurrency - inFlight - buffered))
        guard settings.batchSize == nil else { return cap }
        var free = 0
        for lane in lanes.values where lane.isBusy && lane.breaker.isClosed {
            let limit = limit(for: lane, inTable: true)
            let n = limit - lane.inFlight - lane.buffer.count
            if n >= Self.leaseFloor(limit) { free += n }
        }
        return free > 0 ? min(cap, free) : cap
    }

    /// Lanes remembered: busy ones, ones with failures or an open circuit.
    var laneCount: Int { lanes.count }

    /// Endpoints whose circuit is open (for the metric).
    var openCircuits: Int { lanes.values.filter { !$0.breaker.isClosed }.count }

    /// The targets of lanes that can take nothing more now, or fewer than a
    /// lease's floor: the next lease leaves them out, so that their events wait
    /// in the queue, in order, at no cost.
    var fullTargets: Set<String> {
        var out: Set<String> = []
        for lane in lanes.values where lane.breaker.isClosed {
            let limit = limit(for: lane, inTable: true)
            let full = settings.batchSize == nil
                ? limit - lane.inFlight - lane.buffer.count < Self.leaseFloor(limit)
                : lane.inFlight >= limit && lane.buffer.count >= bufferSize
            if full { out.formUnion(lane.targets) }
        }
        return out
    }

    /// How many slots a busy lane must have free before a lease brings it more: a
    /// quarter of its cap. With a backlog, each slot freed one at a time made a
    /// lease (a transaction, and a walk of the due window) for one or two events;
    /// a quarter of 128 costs a few milliseconds of fewer deliveries in flight.
    /// (Events stored while a lane has a free slot and nothing waits are not
    /// leased at all: `reserve`.)
    static func leaseFloor(_ limit: Int) -> Int { max(1, limit / 4) }

    /// Decides for one leased event of `endpoint` (whose queue target is `target`).
    /// A batch adapter's events are buffered, and `startable()` makes of each
    /// lane's buffer as many batches as it may have in flight.
    mutating func admit(_ item: Item, endpoint: String, target: String, now: Date) -> Admission {
        update(endpoint) { lanes, lane in
            let limit = lanes.limit(for: lane)
            switch lane.breaker.permission(now: now) {
            case .wait(let until):
                // One waiter per back-off comes due when the probe may go (the
                // candidate); the others wait long, and are due at once when the
                // circuit closes. So a dead endpoint's backlog is not leased and
                // given back every back-off period.
                lane.waitingTargets.insert(target)
                let reason = Self.circuitOpenReason(endpoint, cause: lane.lastFailure)
                if lane.hasProbeCandidate { return .wait(until: now.addingTimeInterval(lanes.settings.openCircuitWait.seconds), reason: reason) }
                lane.hasProbeCandidate = true
                return .wait(until: until, reason: reason)
            case .probe:
                lane.hasProbeCandidate = false  // the next waiter is the candidate if this probe fails
                lane.inFlight += 1
                lanes.inFlight += 1
                return .start(probe: true)
            case .deliver:
                lane.targets.insert(target)
                if lanes.settings.batchSize == nil, lane.inFlight < limit, lane.buffer.isEmpty {
                    lane.inFlight += 1
                    lanes.inFlight += 1
                    return .start(probe: false)
                }
                // Past the buffer's size only with events of the lease that filled
                // it (the next leaves the lane out): held in order, never sent back.
                lane.buffer.append(item)
                lanes.buffered += 1
                return .buffered
            }
        }
    }

    /// Takes a slot of `endpoint` for an event about to be stored, which starts
    /// without a lease once stored (`Dispatcher.claims`): only while its circuit
    /// is closed, it has a free slot within its share, and nothing is buffered
    /// for it (which the event would overtake). Never for a batch adapter (its
    /// events go as batches). `unreserve` gives the slot back if the event was
    /// not stored leased; otherwise `finished` ends it, as for a leased one.
    mutating func reserve(endpoint: String, target: String) -> Bool {
        guard settings.batchSize == nil, inFlight + buffered < settings.concurrency else { return false }
        if let lane = lanes[endpoint], !lane.breaker.isClosed || !lane.buffer.isEmpty { return false }
        return update(endpoint) { lanes, lane in
            guard lane.inFlight < lanes.limit(for: lane) else { return false }
            lane.targets.insert(target)
            lane.inFlight += 1
            lanes.inFlight += 1
            return true
        }
    }

    /// Gives back a slot `reserve` took.
    mutating func unreserve(endpoint: String) {
        guard lanes[endpoint] != nil else { return }
        update(endpoint) { lanes, lane in
            lane.inFlight -= 1
            lanes.inFlight -= 1
        }
    }

    /// Some lane holds events waiting for a slot.
    var hasBuffered: Bool { buffered > 0 }

    /// Buffered events that may start now, lane by lane, one group per delivery:
    /// for a batch adapter a batch, otherwise a single event.
    mutating func startable() -> [[Item]] {
        var groups: [[Item]] = []
        for key in lanes.keys where !(lanes[key]?.buffer.isEmpty ?? true) {
            update(key) { lanes, lane in
                guard lane.breaker.isClosed else { return }
                if let batchSize = lanes.settings.batchSize {
                    // As many batches as the lane may have in flight, in order;
                    // the buffer is shortened once (per batch, it cost a copy of
                    // the whole buffer each).
                    var taken = 0
                    while lane.inFlight < lanes.limit(for: lane), taken < lane.buffer.count {
                        let n = min(lane.buffer.count - taken, batchSize)
                        groups.append(Array(lane.buffer[taken..<(taken + n)]))
                        taken += n
                        lanes.buffered -= n
                        lanes.inFlight += n
                        lane.inFlight += 1
                    }
                    lane.buffer.removeFirst(taken)
                    return
                }
                let n = min(lane.buffer.count, max(0, lanes.limit(for: lane) - lane.inFlight))
                guard n > 0 else { return }
                // Each event a delivery of its own. (Groups of several events for a
                // one-by-one adapter were delivered as their first only; the others
                // were retried for want of an outcome, and the lane's count fell
                // behind the adapter's until the lane looked full for good: a
                // backlog that never drained.)
                groups += lane.buffer.prefix(n).map { [$0] }
                lane.buffer.removeFirst(n)
                lanes.buffered -= n
                lanes.inFlight += n
                lane.inFlight += n
            }
        }
        return groups
    }

    /// Empties every buffer (the worker stops: their leases are given back).
    mutating func takeBuffered() -> [Item] {
        var out: [Item] = []
        for key in lanes.keys where !(lanes[key]?.buffer.isEmpty ?? true) {
            update(key) { lanes, lane in
                out += lane.buffer
                lanes.buffered -= lane.buffer.count
                lane.buffer = []
            }
        }
        return out
    }

    /// Targets whose events a previous run left waiting, by endpoint (at start).
    mutating func inherit(waiting: [String: Set<String>]) { inherited = waiting }

    /// Records the end of a delivery, or of a batch of `count` events; `cause`
    /// says why a failed one failed.
    mutating func finished(endpoint: String, result: CircuitBreaker.Result, cause: String? = nil, count: Int = 1, now: Date) -> Finished {
        guard lanes[endpoint] != nil else { return Finished() }
        let inheritedDue = result == .answered && !inherited.isEmpty ? inherited.removeValue(forKey: endpoint) : nil
        return update(endpoint) { lanes, lane in
            var out = Finished()
            if let inheritedDue { out.dueTargets = inheritedDue }
            // As `startable` counted them: a batch is one delivery in its lane.
            lane.inFlight -= lanes.settings.batchSize == nil ? count : 1
            lanes.inFlight -= count
            if result == .failed, let cause { lane.lastFailure = cause }
            out.transition = lane.breaker.record(result, now: now)
            switch out.transition {
            case .opened(let until):
                // The buffered events come back when the probe may go (candidates).
                let reason = Self.circuitOpenReason(endpoint, cause: lane.lastFailure)
                out.toWait = lane.buffer.map { ($0, until, reason) }
                lane.hasProbeCandidate = !lane.buffer.isEmpty
                lanes.buffered -= lane.buffer.count
                lane.buffer = []
            case .closed:
                out.dueTargets.formUnion(lane.waitingTargets)
                lane.waitingTargets = []
            case .none:
                break
            }
            return out
        }
    }

    /// Targets whose waiters must be made due because their lane's probe
    /// candidate did not come back within `probeGrace` of its time (another
    /// node sharing the queue delivered it, or it was lost): the next of them
    /// leased is the probe. Without this the rest wait `openCircuitWait`.
    mutating func lostProbeCandidates(now: Date) -> Set<String> {
        var due: Set<String> = []
        for key in lanes.keys {
            guard let lane = lanes[key], lane.hasProbeCandidate, case .open(let until) = lane.breaker.state,
                  now >= until.addingTimeInterval(settings.probeGrace.seconds) else { continue }
            update(key) { _, lane in
                lane.hasProbeCandidate = false
                due.formUnion(lane.waitingTargets)
            }
        }
        return due
    }

    /// Runs `body` on the lane of `endpoint` (a fresh one if it has none), keeps
    /// the count of busy lanes, and forgets a lane with nothing to remember.
    private mutating func update<T>(_ endpoint: String, _ body: (inout Self, inout Lane) -> T) -> T {
        var lane = lanes.removeValue(forKey: endpoint) ?? Lane(breaker: CircuitBreaker(settings.breaker))
        if lane.isBusy { busyLanes -= 1 }
        let result = body(&self, &lane)
        if lane.isBusy { busyLanes += 1 }
        if !lane.isBusy { lane.targets = [] }
        if lane.isBusy || !lane.waitingTargets.isEmpty || lane.breaker.state != .closed(consecutiveFailures: 0) {
            lanes[endpoint] = lane
        }
        return result
    }

    /// A lane's cap: its configured concurrency, within a fair share of the
    /// adapter's slots: k busy lanes have at most k/(k+1) of them in flight (and
    /// a lease's worth, a quarter, buffered), so there is always room to lease
    /// for another endpoint. An adapter whose one endpoint has all its slots
    /// (SMTP's relay) is not shared.
    /// `inTable`: the lane is in `lanes` (and counted in `busyLanes` if busy);
    /// inside `update` it is not.
    private func limit(for lane: Lane, inTable: Bool = false) -> Int {
        if settings.batchSize != nil { return max(1, settings.batchesInFlight) }
        if settings.endpointConcurrency >= settings.concurrency { return settings.concurrency }
        let busy = busyLanes + (inTable && lane.isBusy ? 0 : 1)
        return max(1, min(settings.endpointConcurrency, settings.concurrency / (busy + 1)))
    }

    /// What a full lane holds besides what is in flight: the next batch (a batch
    /// adapter); nothing otherwise (what one lease brought beyond its free slots
    /// waits in the buffer, and the next lease leaves the lane out).
    private var bufferSize: Int { settings.batchSize ?? 0 }
}
