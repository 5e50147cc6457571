import Events
import Foundation
import Logging
import NIOConcurrencyHelpers
import Queue

/// Works the queue: one worker per adapter leases its due events and runs up to
/// `concurrency` deliveries at once, each endpoint in its own lane (its own cap,
/// a fair share of the slots, a circuit breaker: `EndpointLanes`), records each
/// outcome (the queue applies the retry policy and enqueues what is owed to the
/// sender), and sleeps until woken or until the poll interval brings retries
/// that became due.
final class Dispatcher: Sendable {
    private let queue: any EventQueue
    private let adapters: AdapterRegistry
    private let configuration: GatewayConfiguration
    private let metrics: GatewayMetrics
    private let logger: Logger
    private let signals: [String: WakeSignal]
    private let stopping = NIOLockedValueBox(false)
    /// The running workers, by adapter: where `claims` takes slots.
    private let workers = NIOLockedValueBox<[String: LaneContext]>([:])
    /// This run's lease owner prefix: `node-<id>/<random>/`.
    let owner: String

    init(queue: any EventQueue, adapters: AdapterRegistry, configuration: GatewayConfiguration, metrics: GatewayMetrics, logger: Logger) {
        self.queue = queue
        self.adapters = adapters
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.signals = Dictionary(uniqueKeysWithValues: adapters.adapters.keys.map { ($0, WakeSignal()) })
        self.owner = configuration.leaseOwnerPrefix + UUID().uuidString.prefix(8).lowercased() + "/"
    }

    /// Work is waiting for these adapters.
    func wake(_ names: Set<String>) {
        for n in names { signals[n]?.signal() }
    }

    /// Stops leasing; `run` returns once the deliveries in flight have ended.
    func stop() {
        stopping.withLockedValue { $0 = true }
        for s in signals.values { s.signal() }
    }

    private var isStopping: Bool { stopping.withLockedValue { $0 } }

    // MARK: - Events handed over by the ingress

    /// Slots for events about to be stored, taken in their endpoints' lanes where
    /// one is free (`EndpointLanes.reserve`): the queue stores such an event
    /// already leased to this node (if nothing of its adapter waits before it),
    /// and `handOver` starts it. At low and moderate rates that is every message:
    /// a store, a delivery and an outcome, without a lease transaction or a
    /// wake-up of the worker between them. Every claim must reach `handOver`.
    func claims(for events: [NewEvent]) -> DeliveryClaims {
        guard !isStopping else { return DeliveryClaims() }
        let running = workers.withLockedValue { $0 }
        var claims = DeliveryClaims()
        for event in events {
            guard event.notBefore == nil, let lane = running[event.adapter] else {
                claims.append(nil)
                continue
            }
            let endpoint = lane.adapter.endpoint(of: event.target)
            guard lane.lanes.withLockedValue({ $0.reserve(endpoint: endpoint, target: event.target) }) else {
                claims.append(nil)
                continue
            }
            lane.direct.reserved()
            claims.append(lane)
        }
        return claims
    }

    /// After the store (`stored` nil: it failed): starts each event stored
    /// leased, and gives back the slots of the others (the worker leases them
    /// as usual once woken). Returns the adapters of the events not started.
    @discardableResult
    func handOver(_ events: [NewEvent], _ claims: DeliveryClaims, stored: [Enqueued]?) -> Set<String> {
        var notStarted: Set<String> = []
        for (i, event) in events.enumerated() {
            let leased = stored.flatMap { i < $0.count ? $0[i].leased : nil }
            guard let lane = claims.lane(i) else {
                if leased == nil { notStarted.insert(event.adapter) }
                continue
            }
            // Stopping: a claimed event stays leased; `run` gives it back.
            guard let leased, !isStopping else {
                let endpoint = lane.adapter.endpoint(of: event.target)
                lane.lanes.withLockedValue { $0.unreserve(endpoint: endpoint) }
                lane.direct.cancelled()
                lane.signal.signal()
                notStarted.insert(event.adapter)
                continue
            }
            lane.keeper.hold([leased.id])
            lane.direct.start { await self.deliver([leased], probe: false, in: lane) }
        }
        return notStarted
    }

    /// Runs every adapter's worker until `stop()` (and the in-flight work), or
    /// until cancelled; then gives back whatever this run still holds.
    func run() async {
        await withDiscardingTaskGroup { group in
            for adapter in adapters.adapters.values {
                group.addTask { await self.work(adapter) }
            }
        }
        do {
            let n = try await queue.releaseLeases(ownerPrefix: owner)
            if n > 0 { logger.info("released unfinished deliveries", metadata: ["count": "\(n)"]) }
        } catch {
            logger.error("cannot release leases at shutdown; they expire by themselves", metadata: ["error": "\(error)"])
        }
    }

    /// Events an earlier run told to wait for their endpoint's circuit wait long
    /// (until it closes, which that run would have seen): this run makes them
    /// due when their endpoint first answers.
    private func inheritWaiting(_ adapter: any Adapter, into lanes: NIOLockedValueBox<EndpointLanes<QueuedEvent>>) async {
        do {
            let targets = try await queue.waitingTargets(adapter: adapter.name, notDueBefore: Date().addingTimeInterval(1))
            guard !targets.isEmpty else { return }
            let byEndpoint = Dictionary(grouping: targets) { adapter.endpoint(of: $0) }.mapValues(Set.init)
            lanes.withLockedValue { $0.inherit(waiting: byEndpoint) }
        } catch {
            logger.warning("cannot read which events wait for their endpoint; they wait their time", metadata: [
                "adapter": "\(adapter.name)", "error": "\(error)"])
        }
    }

    /// One adapter's worker: leases what its endpoints' lanes can take, starts
    /// each event its lane admits (a `BatchAdapter`'s as batches, `batchesInFlight` per endpoint),
    /// gives back to the queue, as not ready, what must wait for its endpoint,
    /// and starts buffered events as slots free up.
    private func work(_ adapter: any Adapter) async {
        let settings = configuration.dispatchSettings(for: adapter.name)
        let batched = adapter as? any BatchAdapter
        let batchSize = batched?.batchSize
        let lanes = NIOLockedValueBox(EndpointLanes<QueuedEvent>(EndpointLanes.Settings(
            concurrency: max(1, adapter.concurrency), endpointConcurrency: max(1, settings.endpointConcurrency ?? adapter.endpointConcurrency),
            batchSize: batchSize, batchesInFlight: batched?.batchesInFlight ?? 1, breaker: settings.breaker,
            probeGrace: settings.pollInterval * 2 + .seconds(1))))
        let lane = LaneContext(adapter: adapter, owner: owner + adapter.name, settings: settings, lanes: lanes,
                               signal: signals[adapter.name] ?? WakeSignal())
        await inheritWaiting(adapter, into: lanes)
        workers.withLockedValue { $0[adapter.name] = lane }
        // When a lease that left full endpoints out found nothing, the next one
        // waits until those endpoints change or a little time has passed (wake-ups
        // come with every message stored; each such lease walks the due window).
        var foundNothingBesides: (full: Set<String>, at: ContinuousClock.Instant)?
        let recheck = min(settings.pollInterval, .milliseconds(100))
        await withDiscardingTaskGroup { group in
            group.addTask {
                await lane.keeper.run(queue: self.queue, owner: lane.owner, duration: settings.leaseDuration) { self.isStopping }
            }
            while !isStopping, !Task.isCancelled {
                let lost = lanes.withLockedValue { $0.lostProbeCandidates(now: Date()) }
                if !lost.isEmpty { lane.asked.withLockedValue { $0.dueTargets.formUnion(lost) } }
                await doAskedWrites(in: lane)
                for events in lanes.withLockedValue({ $0.startable() }) {
                    let place = lane.place(for: events)
                    group.addTask { await self.deliver(events, probe: false, in: lane, place: place) }
                }
                let room = lanes.withLockedValue { $0.room(leaseBatch: batchSize ?? settings.leaseBatch) }
                let full = room > 0 ? lanes.withLockedValue { $0.fullTargets } : []
                let pointless = foundNothingBesides.map { $0.full == full && ContinuousClock.now - $0.at < recheck } ?? false
                // Whether a freed slot may let the next lease bring more (see `deliver`).
                lane.mayHaveMore.withLockedValue { $0 = true }
                if room > 0, !pointless {
                    do {
                        let batch = try await queue.lease(
                            adapter: adapter.name, owner: lane.owner, limit: room, for: settings.leaseDuration, excludingTargets: Array(full))
                        if batch.count < room, full.isEmpty { lane.mayHaveMore.withLockedValue { $0 = false } }
                        if !batch.isEmpty {
                            if !full.isEmpty { foundNothingBesides = nil }
                            let (starts, waiting) = admit(batch, in: lane)
                            for (events, probe) in starts {
                                let place = lane.place(for: events)
                                group.addTask { await self.deliver(events, probe: probe, in: lane, place: place) }
                            }
                            if !waiting.isEmpty { await postpone(waiting, in: lane) }
                            continue
                        }
                        if !full.isEmpty { foundNothingBesides = (full, ContinuousClock.now) }
                    } catch {
                        logger.error("cannot lease events", metadata: ["adapter": "\(adapter.name)", "error": "\(error)"])
                    }
                }
                await lane.signal.wait(timeout: pointless ? recheck : settings.pollInterval)
            }
            // Not started: `run` gives their leases back.
            for event in lanes.withLockedValue({ $0.takeBuffered() }) { lane.keeper.release(event.id) }
            workers.withLockedValue { $0[adapter.name] = nil }
            await lane.direct.drained()
        }
    }

    /// The queue writes the lanes asked for (`apply`), one after the other, so
    /// that events told to wait are in the queue before a circuit's waiters are
    /// made due.
    private func doAskedWrites(in lane: LaneContext) async {
        let asked = lane.asked.withLockedValue { a in defer { a = AskedWrites() }; return a }
        if !asked.waits.isEmpty { await postpone(asked.waits, in: lane) }
        guard !asked.dueTargets.isEmpty else { return }
        do { try await queue.makeDue(adapter: lane.adapter.name, targets: asked.dueTargets.sorted()) } catch {
            logger.error("cannot make waiting events due", metadata: ["adapter": "\(lane.adapter.name)", "error": "\(error)"])
        }
    }

    /// Puts each leased event in its lane: what starts now (with whether it is
    /// its endpoint's probe), and what goes back to the queue (its circuit is
    /// open). The buffered ones start later, from `startable()`.
    private func admit(_ batch: [QueuedEvent], in lane: LaneContext) -> (starts: [([QueuedEvent], Bool)], waiting: [Postponement]) {
        lane.keeper.hold(batch.map(\.id))
        let now = Date()
        var starts: [([QueuedEvent], Bool)] = []
        var waiting: [Postponement] = []
        lane.lanes.withLockedValue { lanes in
            for event in batch {
                switch lanes.admit(event, endpoint: lane.adapter.endpoint(of: event.target), target: event.target, now: now) {
                case .start(let probe): starts.append(([event], probe))
                case .buffered: break
                case .wait(let until, let reason): waiting.append(Postponement(event: event, until: until, reason: reason))
                }
            }
        }
        return (starts, waiting)
    }

    /// Delivers events of one endpoint (one event, or a `BatchAdapter`'s batch),
    /// tells the lanes how the endpoint did, then records the outcomes.
    /// `place`: a batch's turn to send among its endpoint's batches (`SendOrder`).
    private func deliver(_ events: [QueuedEvent], probe: Bool, in lane: LaneContext, place: SendOrder.Place? = nil) async {
        guard let first = events.first else { return }
        let adapter = lane.adapter
        let endpoint = adapter.endpoint(of: first.target)
        if probe { logger.info("probing endpoint", metadata: ["adapter": "\(adapter.name)", "endpoint": "\(endpoint)", "event": "\(first.id)"]) }
        let outcomes: [DeliveryOutcome]
        if let batched = adapter as? any BatchAdapter {
            await place?.previous?.wait()
            let mine = place?.mine
            outcomes = await batched.deliver(batch: events, sent: { mine?.sent() })
            mine?.sent()
        } else {
            var each: [DeliveryOutcome] = []
            for event in events { each.append(await adapter.deliver(event)) }
            outcomes = each
        }
        if Task.isCancelled { return }  // shutting down hard: the leases are given back by `run`
        let results = events.indices.map { i in
            i < outcomes.count ? outcomes[i] : .retry(after: nil, reason: "the \(adapter.name) adapter gave no outcome for it")
        }
        let health = CircuitBreaker.Result(results, adapter: adapter)
        let cause = health == .failed ? results.lazy.compactMap(\.failureReason).first : nil
        let (finished, buffered) = lane.lanes.withLockedValue {
            ($0.finished(endpoint: endpoint, result: health, cause: cause, count: events.count, now: Date()), $0.hasBuffered)
        }
        // The freed slot is the worker's business only if something waits for
        // one: buffered events, or due events its last lease had no room for.
        // Otherwise waking it would cost a lease that finds nothing.
        if buffered || lane.mayHaveMore.withLockedValue({ $0 }) { lane.signal.signal() }
        if events.count == 1 {
            await record(results[0], of: first, adapter: adapter.name, owner: lane.owner)
            lane.keeper.release(first.id)
        } else {
            // A batch's outcomes together: the group commit makes them one transaction.
            await withDiscardingTaskGroup { group in
                for (event, outcome) in zip(events, results) {
                    group.addTask {
                        await self.record(outcome, of: event, adapter: adapter.name, owner: lane.owner)
                        lane.keeper.release(event.id)
                    }
                }
            }
        }
        apply(finished, endpoint: endpoint, in: lane)
        makeWaitersDue(after: events, results, in: lane)
    }

    /// An event that had waited for its endpoint's circuit, delivered now: the
    /// other events that wait for it are due. Another node sharing the queue may
    /// have opened that circuit and told them to wait long; this node, which
    /// reaches the endpoint, then delivers them (the node that opened it may be
    /// gone, or its probe's candidate may be the event delivered here).
    private func makeWaitersDue(after events: [QueuedEvent], _ results: [DeliveryOutcome], in lane: LaneContext) {
        var targets: Set<String> = []
        for (event, outcome) in zip(events, results) where EndpointLanes<QueuedEvent>.waitedForCircuit(event.lastError) {
            if case .delivered = outcome { targets.insert(event.target) }
        }
        guard !targets.isEmpty else { return }
        lane.asked.withLockedValue { $0.dueTargets.formUnion(targets) }
        lane.signal.signal()
    }

    /// Acts on what an endpoint's last delivery changed: a circuit that opened
    /// (its buffered events wait in the queue) or closed (what waited for it is
    /// due now). The worker does the writes.
    private func apply(_ finished: EndpointLanes<QueuedEvent>.Finished, endpoint: String, in lane: LaneContext) {
        let name = lane.adapter.name
        switch finished.transition {
        case .opened(let until):
            logger.warning("endpoint is not answering: its circuit is open, its events wait without spending attempts", metadata: [
                "adapter": "\(name)", "endpoint": "\(endpoint)", "until": "\(RFC3339.string(from: until))"])
        case .closed:
            logger.info("endpoint answers again: its circuit is closed", metadata: ["adapter": "\(name)", "endpoint": "\(endpoint)"])
        case .none:
            break
        }
        if finished.transition != .none {
            metrics.openCircuits(adapter: name, count: lane.lanes.withLockedValue { $0.openCircuits })
        }
        if !finished.toWait.isEmpty || !finished.dueTargets.isEmpty {
            lane.asked.withLockedValue {
                $0.waits += finished.toWait.map { Postponement(event: $0.item, until: $0.until, reason: $0.reason) }
                $0.dueTargets.formUnion(finished.dueTargets)
            }
            lane.signal.signal()
        }
    }

    /// Gives events back to the queue as not ready until their endpoint can take
    /// them: no attempt spent, their order kept.
    private func postpone(_ waiting: [Postponement], in lane: LaneContext) async {
        metrics.postponed(adapter: lane.adapter.name, count: waiting.count)
        await withDiscardingTaskGroup { group in
            for w in waiting {
                group.addTask {
                    defer { lane.keeper.release(w.event.id) }
                    do {
                        let state = try await self.queue.postpone(w.event.id, owner: lane.owner, until: w.until, reason: w.reason)
                        if state != .queued {
                            // Its age ran out while it waited: it ended here, and its sender is owed a failure.
                            self.metrics.delivery(adapter: lane.adapter.name, state: state)
                            self.logger.warning("delivery given up while its endpoint could not take it", metadata: [
                                "event": "\(w.event.id)", "adapter": "\(lane.adapter.name)", "state": "\(state.rawValue)", "reason": "\(w.reason)"])
                            if w.event.kind == .delivery { self.wake(["msrp"]) }
                        }
                    } catch {
                        self.logger.warning("cannot give a waiting event back; its lease will expire", metadata: [
                            "event": "\(w.event.id)", "error": "\(error)"])
                    }
                }
            }
        }
    }

    /// Records an outcome in the queue (three tries: the database may be busy).
    private func record(_ outcome: DeliveryOutcome, of event: QueuedEvent, adapter: String, owner: String) async {
        for attempt in 1...3 {
            do {
                let done = try await queue.complete(leased: event, owner: owner, outcome: outcome)
                metrics.delivery(adapter: adapter, state: done.state)
                log(event, adapter: adapter, outcome: outcome, state: done.state)
                // Only the workers with follow-ups to deliver (each wake costs a lease).
                if event.kind == .delivery, done.state != .queued { wake(done.followUpAdapters ?? ["msrp"]) }
                return
            } catch where error.kind == .leaseLost {
                logger.warning("lease lost during delivery; it will be tried again", metadata: ["event": "\(event.id)", "adapter": "\(adapter)"])
                return
            } catch {
                logger.error("cannot record a delivery outcome", metadata: ["event": "\(event.id)", "attempt": "\(attempt)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(200 * attempt * attempt))
            }
        }
    }

    private func log(_ event: QueuedEvent, adapter: String, outcome: DeliveryOutcome, state: EventState) {
        var metadata: Logger.Metadata = ["event": "\(event.id)", "adapter": "\(adapter)", "kind": "\(event.kind.rawValue)", "state": "\(state.rawValue)"]
        switch outcome {
        case .delivered(let proof):
            metadata["proof"] = "\(proof)"
            logger.debug("delivered", metadata: metadata)
        case .partial(let proof, let code, let reason):
            metadata["proof"] = "\(proof)"
            metadata["code"] = "\(code)"
            metadata["reason"] = "\(reason)"
            logger.warning("delivered to some recipients only", metadata: metadata)
        case .notReady(_, let reason):
            metadata["reason"] = "\(reason)"
            logger.debug("waiting for the recipient", metadata: metadata)
        case .retry(_, let reason):
            metadata["reason"] = "\(reason)"
            metadata["attempts"] = "\(event.attempts)"
            state == .queued ? logger.info("delivery will be retried", metadata: metadata) : logger.warning("delivery given up", metadata: metadata)
        case .permanentFailure(let code, let reason), .deadLetter(let code, let reason):
            metadata["code"] = "\(code)"
            metadata["reason"] = "\(reason)"
            logger.warning("delivery failed", metadata: metadata)
        }
    }
}

/// What a worker's deliveries share.
private struct LaneContext: Sendable {
    let adapter: any Adapter
    let owner: String
    let settings: DispatchSettings
    let lanes: NIOLockedValueBox<EndpointLanes<QueuedEvent>>
    let signal: WakeSignal
    /// Queue writes the lanes asked for, for the worker to do.
    let asked = NIOLockedValueBox(AskedWrites())
    /// The leases of what the worker holds, kept alive.
    let keeper = LeaseKeeper()
    /// What the ingress started (`Dispatcher.claims`).
    let direct = DirectDeliveries()
    /// The worker's last lease may have left due events in the queue (it had
    /// no room, or took all it asked for, or left full endpoints out).
    let mayHaveMore = NIOLockedValueBox(true)
    /// A batch adapter's batches to one endpoint leave in the order they start.
    let sendOrder = SendOrder()

    /// The turn of a group about to start (a batch adapter's with several
    /// batches in flight per endpoint; nil otherwise: one at a time needs no
    /// turns). Taken in the worker, in start order.
    func place(for events: [QueuedEvent]) -> SendOrder.Place? {
        guard let batched = adapter as? any BatchAdapter, batched.batchesInFlight > 1, let first = events.first else { return nil }
        return sendOrder.take(adapter.endpoint(of: first.target))
    }
}

/// The slots `Dispatcher.claims` took, one entry per event (nil: none), for
/// the queue (`leases`) and then `Dispatcher.handOver`.
struct DeliveryClaims: Sendable {
    private var lanes: [LaneContext?] = []

    /// What the queue is asked to store already leased, in the events' order.
    var leases: [LeaseClaim?] {
        lanes.map { $0.map { LeaseClaim(owner: $0.owner, duration: $0.settings.leaseDuration) } }
    }

    fileprivate mutating func append(_ lane: LaneContext?) { lanes.append(lane) }
    fileprivate func lane(_ i: Int) -> LaneContext? { i < lanes.count ? lanes[i] : nil }
}

struct AskedWrites: Sendable {
    var waits: [Postponement] = []
    var dueTargets: Set<String> = []
}

/// An event given back to the queue until its endpoint can take it.
struct Postponement: Sendable {
    let event: QueuedEvent
    let until: Date
    let reason: String
}

extension CircuitBreaker.Result {
    /// How an endpoint did over the outcomes of one delivery or batch: failed if
    /// every event failed against it (as `adapter` judges), otherwise answered;
    /// neutral when only recipients were not ready.
    init(_ outcomes: [DeliveryOutcome], adapter: any Adapter) {
        var failed = false
        for outcome in outcomes {
            if adapter.isEndpointFailure(outcome) {
                failed = true
            } else if case .notReady = outcome {
                continue
            } else {
                self = .answered
                return
            }
        }
        self = failed ? .failed : .neutral
    }
}

extension DeliveryOutcome {
    /// Why it did not go (nil when it did).
    var failureReason: String? {
        switch self {
        case .delivered: nil
        case .retry(_, let reason), .notReady(_, let reason): reason
        case .partial(_, _, let reason), .permanentFailure(_, let reason), .deadLetter(_, let reason): reason
        }
    }
}
