import Events
import Foundation
import GatewayTesting
import MSRPTransport
import NIOConcurrencyHelpers
import Queue
import TestPeers
import Testing

@testable import Gateway

/// A `BatchAdapter` gets its events a batch at a time, in queue order, never
/// more than its batch size, and every outcome is recorded for its own event.
@Suite struct BatchDispatchTests {
    final class BatchRecorder: BatchAdapter {
        let name = "irc"
        let schemes = ["irc"]
        let concurrency = 28
        let batchSize = 7
        /// Like the IRC adapter: a network's targets share one lane.
        func endpoint(of target: String) -> String { "irc:net" }
        let batches = NIOLockedValueBox<[[String]]>([])
        /// Targets whose first delivery is retried.
        let retryOnce = NIOLockedValueBox<Set<String>>(["irc://net/5"])

        func deliver(_ event: QueuedEvent) async -> DeliveryOutcome { await deliver(batch: [event])[0] }

        func deliver(batch: [QueuedEvent]) async -> [DeliveryOutcome] {
            batches.withLockedValue { $0.append(batch.map(\.target)) }
            try? await Task.sleep(for: .milliseconds(5))
            return batch.map { e in
                retryOnce.withLockedValue { $0.remove(e.target) } != nil ? .retry(after: nil, reason: "scripted") : .delivered(proof: "batch")
            }
        }
    }

    /// Stores `events`, runs a gateway with `adapter` until all of them are
    /// delivered, stops it, and hands the queue to `check`.
    static func deliverAll(_ events: [NewEvent], by adapter: any Adapter, check: (SQLiteEventQueue) async throws -> Void) async throws {
        let directory = try Scratch.directory("batch")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let queue = try SQLiteEventQueue(SQLiteEventQueue.Configuration(
            path: directory + "/q.sqlite", followUps: Reporter(), defaultRetry: RetryPolicy(schedule: [.zero], maxAttempts: 3, maxAge: .seconds(60), jitter: false)))
        var config = GatewayConfiguration(identity: "sip:gateway@gw.example", bodyDirectory: directory + "/bodies")
        // Leases long enough that a loaded full run's stalls (tens of seconds early
        // on) do not let one expire and its event come round a third time.
        config.defaultDispatch = DispatchSettings(leaseBatch: 64, leaseDuration: .seconds(120), pollInterval: .milliseconds(50))
        let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: TestGateway.group)
        _ = try await queue.enqueue(events)
        let gateway = try Gateway(configuration: config, queue: queue, endpoint: endpoint, adapters: [adapter], routes: [:])
        let run = Task { await gateway.run() }
        // Generous: early in a full run on two loaded cores, 30 s once did not suffice (0.6 s alone).
        await eventually("all delivered", timeout: .seconds(90)) {
            ((try? await queue.events(EventFilter(state: .delivered, adapter: adapter.name, limit: events.count)))?.count ?? 0) == events.count
        }
        gateway.stop()
        await run.value
        await endpoint.shutdown()
        try await check(queue)
    }

    @Test func batchesInOrderWithTheirOwnOutcomes() async throws {
        let adapter = BatchRecorder()
        let events = (0..<30).map { i in
            NewEvent(adapter: "irc", target: "irc://net/\(i)", origin: EventOrigin(sessionID: "s", messageID: "m\(i)"),
                     envelope: EventEnvelope(contentType: "text/plain"), body: .inline(Array("line \(i)".utf8)))
        }
        try await Self.deliverAll(events, by: adapter) { queue in
            let batches = adapter.batches.withLockedValue { $0 }
            #expect(batches.allSatisfy { $0.count <= 7 })
            // Each is first tried in queue order; the retried one comes again later.
            let all: [String] = batches.flatMap { $0 }
            let expected: [String] = (0..<30).map { "irc://net/\($0)" }
            var firstTries: [String] = []
            for t in all where !firstTries.contains(t) { firstTries.append(t) }
            #expect(firstTries == expected, "\(batches)")
            let fives = all.filter { $0 == "irc://net/5" }
            #expect(fives.count == 2)
            let five = try await queue.events(EventFilter(adapter: "irc")).first { $0.target == "irc://net/5" }
            #expect(five?.attempts == 2)
            #expect(five?.state == .delivered)
        }
    }

    /// Two batches in flight to one endpoint (XMPP's case): the second's task may
    /// start first, so it waits for the first to have sent. Each batch here
    /// starts sending after a random pause and waits a random time for its
    /// outcomes after it sent: what goes on the wire is still in queue order.
    final class PipelinedRecorder: BatchAdapter {
        let name = "xmpp"
        let schemes = ["xmpp"]
        let concurrency = 64
        let batchSize = 5
        let batchesInFlight = 2
        func endpoint(of target: String) -> String { "xmpp:one" }
        let wire = NIOLockedValueBox<[String]>([])
        let inFlight = NIOLockedValueBox((now: 0, most: 0))

        func deliver(_ event: QueuedEvent) async -> DeliveryOutcome { await deliver(batch: [event])[0] }
        func deliver(batch: [QueuedEvent]) async -> [DeliveryOutcome] { await deliver(batch: batch, sent: {}) }

        func deliver(batch: [QueuedEvent], sent: @escaping @Sendable () -> Void) async -> [DeliveryOutcome] {
            inFlight.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now) }
            try? await Task.sleep(for: .milliseconds(Int.random(in: 0...10)))
            wire.withLockedValue { $0 += batch.map(\.target) }
            sent()
            try? await Task.sleep(for: .milliseconds(Int.random(in: 0...8)))
            inFlight.withLockedValue { $0.now -= 1 }
            return batch.map { _ in .delivered(proof: "pipelined") }
        }
    }

    /// 100 events, 20 batches: a chain of batches each waiting for the one
    /// before, and each link a few hops through the cooperative pool; early in
    /// a loaded full run (two cores, every suite at once) 200 events once took
    /// over 90 s where they take 0.6 s alone. Without the wait, twenty reorder
    /// (fail) in nearly every run (checked: 10 of 10).
    @Test func batchesInFlightTogetherLeaveInQueueOrder() async throws {
        let adapter = PipelinedRecorder()
        let events = (0..<100).map { i in
            NewEvent(adapter: "xmpp", target: "xmpp:bob@example.org#\(i)", origin: EventOrigin(sessionID: "s", messageID: "m\(i)"),
                     envelope: EventEnvelope(contentType: "text/plain"), body: .inline(Array("line \(i)".utf8)))
        }
        try await Self.deliverAll(events, by: adapter) { _ in }
        #expect(adapter.wire.withLockedValue { $0 } == events.map(\.target))
        #expect(adapter.inFlight.withLockedValue { $0.most } == 2, "two batches were never in flight at once")
    }
}
