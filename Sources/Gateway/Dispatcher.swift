import Events
import Foundation
import Logging
import NIOConcurrencyHelpers
import Queue

/// Works the queue: one worker per adapter leases its due events and runs up to
/// `concurrency` deliveries at once (or one batch, for a `BatchAdapter`), records each outcome (the queue applies the
/// retry policy and enqueues what is owed to the sender), and sleeps until woken
/// or until the poll interval brings retries that became due.
final class Dispatcher: Sendable {
    private let queue: any EventQueue
    private let adapters: AdapterRegistry
    private let configuration: GatewayConfiguration
    private let metrics: GatewayMetrics
    private let logger: Logger
    private let signals: [String: WakeSignal]
    private let stopping = NIOLockedValueBox(false)
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

    private func work(_ adapter: any Adapter) async {
        if let batched = adapter as? any BatchAdapter {
            await workBatches(batched)
            return
        }
        let settings = configuration.dispatchSettings(for: adapter.name)
        let owner = self.owner + adapter.name
        let signal = signals[adapter.name] ?? WakeSignal()
        let inFlight = NIOLockedValueBox(0)
        await withDiscardingTaskGroup { group in
            while !isStopping, !Task.isCancelled {
                let free = adapter.concurrency - inFlight.withLockedValue { $0 }
                if free > 0 {
                    do {
                        let batch = try await queue.lease(
                            adapter: adapter.name, owner: owner, limit: min(free, settings.leaseBatch), for: settings.leaseDuration)
                        if !batch.isEmpty {
                            inFlight.withLockedValue { $0 += batch.count }
                            for event in batch {
                                group.addTask {
                                    await self.deliver(event, with: adapter, owner: owner, settings: settings)
                                    inFlight.withLockedValue { $0 -= 1 }
                                    signal.signal()
                                }
                            }
                            continue
                        }
                    } catch {
                        logger.error("cannot lease events", metadata: ["adapter": "\(adapter.name)", "error": "\(error)"])
                    }
                }
                await signal.wait(timeout: settings.pollInterval)
            }
        }
    }

    /// A batch adapter's worker: one batch in flight; its outcomes are recorded
    /// while the next batch is leased and sent (the events stay leased until then,
    /// so nothing is leased twice), all of a batch together (the queue's group
    /// commit makes that one transaction, not one per event).
    private func workBatches(_ adapter: any BatchAdapter) async {
        let settings = configuration.dispatchSettings(for: adapter.name)
        let owner = self.owner + adapter.name
        let signal = signals[adapter.name] ?? WakeSignal()
        var recording: Task<Void, Never>?
        while !isStopping, !Task.isCancelled {
            do {
                let batch = try await queue.lease(adapter: adapter.name, owner: owner, limit: max(1, adapter.batchSize), for: settings.leaseDuration)
                if !batch.isEmpty {
                    let outcomes = await keepingLeases(of: batch, owner: owner, settings: settings) { await adapter.deliver(batch: batch) }
                    if Task.isCancelled { break }  // shutting down hard: the leases are given back by `run`
                    await recording?.value  // at most one batch being recorded
                    recording = Task {
                        await withDiscardingTaskGroup { group in
                            for (i, event) in batch.enumerated() {
                                let outcome = outcomes.flatMap { i < $0.count ? $0[i] : nil }
                                    ?? .retry(after: nil, reason: "the \(adapter.name) adapter gave no outcome for it")
                                group.addTask { await self.record(outcome, of: event, adapter: adapter.name, owner: owner) }
                            }
                        }
                    }
                    continue
                }
            } catch {
                logger.error("cannot lease events", metadata: ["adapter": "\(adapter.name)", "error": "\(error)"])
            }
            await signal.wait(timeout: settings.pollInterval)
        }
        await recording?.value
    }

    private func deliver(_ event: QueuedEvent, with adapter: any Adapter, owner: String, settings: DispatchSettings) async {
        let outcome = await keepingLeases(of: [event], owner: owner, settings: settings) { await adapter.deliver(event) }
            ?? .retry(after: nil, reason: "delivery did not finish")
        if Task.isCancelled { return }  // shutting down hard: the lease is given back by `run`
        await record(outcome, of: event, adapter: adapter.name, owner: owner)
    }

    /// Runs `body` while extending the leases of `events` at half their duration
    /// (a slow delivery keeps what it holds); nil when cancelled first.
    private func keepingLeases<T: Sendable>(
        of events: [QueuedEvent], owner: String, settings: DispatchSettings, _ body: @escaping @Sendable () async -> T
    ) async -> T? {
        await withTaskGroup(of: T?.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: settings.leaseDuration / 2)
                    if Task.isCancelled { break }
                    for event in events { try? await self.queue.extendLease(event.id, owner: owner, by: settings.leaseDuration) }
                }
                return nil
            }
            group.addTask { await body() }
            var result: T?
            for await r in group {
                if let r {
                    result = r
                    group.cancelAll()
                }
            }
            return result
        }
    }

    /// Records an outcome in the queue (three tries: the database may be busy).
    private func record(_ outcome: DeliveryOutcome, of event: QueuedEvent, adapter: String, owner: String) async {
        for attempt in 1...3 {
            do {
                let state = try await queue.complete(event.id, owner: owner, outcome: outcome)
                metrics.delivery(adapter: adapter, state: state)
                log(event, adapter: adapter, outcome: outcome, state: state)
                if event.kind == .delivery, state != .queued { wake(["msrp"]) }
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
