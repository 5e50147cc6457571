import Events
import Foundation
import Logging
import Queue
import TestPeers
import Testing

/// A clock tests move by hand.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current = Date(timeIntervalSince1970: 1_800_000_000)
    var now: Date { lock.withLock { current } }
    func advance(_ d: Duration) {
        lock.withLock { current = current.addingTimeInterval(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) }
    }
}

func temporaryDirectory() throws -> String { try Scratch.directory("queue") }

func makeQueue(
    clock: TestClock = TestClock(), retry: RetryPolicy = RetryPolicy(schedule: [.seconds(5), .seconds(60)], maxAttempts: 3, maxAge: .seconds(3600), jitter: false),
    path: String? = nil
) throws -> SQLiteEventQueue {
    let p = try path ?? (temporaryDirectory() + "/queue.sqlite")
    return try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: p, followUps: TestFollowUps(), defaultRetry: retry), now: { clock.now })
}

/// The backends the conformance tests run on: SQLite always, PostgreSQL where
/// it is installed (and always under MSRPGW_REQUIRE_PEERS=1).
enum QueueBackend: String, Sendable, CustomTestStringConvertible {
    case sqlite, postgresql
    static var all: [QueueBackend] { PostgresServer.available ? [.sqlite, .postgresql] : [.sqlite] }
    var testDescription: String { rawValue }
}

/// A new, empty queue on `backend` (on PostgreSQL, a database of its own on
/// the test process's shared server).
func makeQueue(
    _ backend: QueueBackend, clock: TestClock = TestClock(),
    retry: RetryPolicy = RetryPolicy(schedule: [.seconds(5), .seconds(60)], maxAttempts: 3, maxAge: .seconds(3600), jitter: false),
    node: Int = 0
) async throws -> any EventQueue {
    switch backend {
    case .sqlite:
        return try makeQueue(clock: clock, retry: retry)
    case .postgresql:
        let server = try await PostgresServer.shared()
        let database = try await server.createDatabase()
        return try await makePostgresQueue(url: server.url(database: database), clock: clock, retry: retry, node: node)
    }
}

/// A PostgreSQL queue on `url` (another node on the same database, say).
func makePostgresQueue(
    url: String, clock: TestClock = TestClock(),
    retry: RetryPolicy = RetryPolicy(schedule: [.seconds(5), .seconds(60)], maxAttempts: 3, maxAge: .seconds(3600), jitter: false),
    node: Int = 0, operationTimeout: Duration = .seconds(60)
) async throws -> PostgresEventQueue {
    try await PostgresEventQueue(
        PostgresEventQueue.Configuration(
            location: try PostgresLocation(url: url), followUps: TestFollowUps(), poolSize: 4, operationTimeout: operationTimeout, node: node,
            defaultRetry: retry, affinity: SessionPrefixAffinity(), bodyCache: Scratch.path("leased-bodies")),
        logger: quietLogger, now: { clock.now })
}

/// The queue's own tests need a follow-up policy to see that what it returns is
/// stored with the outcome: this one owes a `report` carrying the final status
/// (for a success, only when the origin asked for one), and an `imdn` when the
/// origin asked for any disposition.
/// MSRP's and IMDN's real rules are the gateway's `Reporter`, tested there.
struct TestFollowUps: FollowUpPolicy {
    func followUps(for event: QueuedEvent, outcome: FinalOutcome) -> [NewEvent] {
        guard event.kind == .delivery, let session = event.origin.sessionID else { return [] }
        let (status, disposition): (String, String)
        switch outcome {
        case .delivered:
            guard event.origin.successReport else { return [] }
            (status, disposition) = ("200", "delivered")
        case .failed(let code, _), .partial(_, let code, _): (status, disposition) = (String(code), "failed")
        }
        var owed = [NewEvent(kind: .report, adapter: "msrp", target: session, origin: event.origin,
                             envelope: EventEnvelope(headers: ["status": status]), dedupeKey: "\(event.id)|report|\(status)", parent: event.id)]
        if !event.origin.imdnDispositions.isEmpty {
            owed.append(NewEvent(kind: .imdn, adapter: "msrp", target: session, origin: event.origin,
                                 envelope: EventEnvelope(headers: ["disposition": disposition]), dedupeKey: "\(event.id)|imdn", parent: event.id))
        }
        return owed
    }
}

func message(_ mid: String, session: String = "sess1", adapter: String = "webhook", target: String = "https://sink.test/hook",
             successReport: Bool = true, failureReport: FailureReportRequest = .yes, imdn: [String] = []) -> NewEvent {
    NewEvent(
        adapter: adapter, target: target,
        origin: EventOrigin(sessionID: session, messageID: mid, fromPath: ["msrp://a:1/x;tcp"], toPath: ["msrp://gw:2855/s;tcp"],
                            byteCount: 5, successReport: successReport, failureReport: failureReport,
                            imdnMessageID: imdn.isEmpty ? nil : "imdn-\(mid)", imdnDispositions: imdn),
        envelope: EventEnvelope(from: "sip:alice@example.com", to: ["sip:ops@gw.example"], subject: "hi", contentType: "text/plain",
                                headers: ["X-Test": "1"]),
        body: .inline(Array("hello".utf8)))
}

/// postgres-nio says every failed connection attempt at info: a server stopped
/// on purpose would fill the output.
private let quietLogger: Logger = {
    var logger = Logger(label: "queue-test")
    logger.logLevel = .warning
    return logger
}()

/// The gateway's rule (`SessionAffinity`, which the queue's tests cannot
/// import), restated: `msrp` events to a session `n<node>-...` are that node's.
struct SessionPrefixAffinity: NodeAffinity {
    func node(for event: NewEvent) -> Int? {
        guard event.adapter == "msrp", event.target.hasPrefix("n"), let dash = event.target.firstIndex(of: "-") else { return nil }
        return Int(event.target[event.target.index(after: event.target.startIndex)..<dash])
    }
}

/// Producers enqueueing one event at a time and four consumers leasing and
/// completing, all at once, spread over `nodes` (queues on one database, or
/// one queue): what the consumers were handed, to check that every event was
/// handed out exactly once.
func produceAndConsume(nodes: [any EventQueue], producers: Int, perProducer: Int) async throws -> DeliveryLog {
    let delivered = DeliveryLog()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for p in 0..<producers {
            group.addTask {
                for i in 0..<perProducer {
                    _ = try await nodes[p % nodes.count].enqueue([message("p\(p)m\(String(format: "%05d", i))", session: "s\(p)", successReport: false)])
                }
            }
        }
        for c in 0..<4 {
            group.addTask {
                let queue = nodes[c % nodes.count]
                let owner = "node\(c % nodes.count)-c\(c)"
                let deadline = ContinuousClock.now + .seconds(120)
                while await delivered.count < producers * perProducer, ContinuousClock.now < deadline {
                    let batch = try await queue.lease(adapter: "webhook", owner: owner, limit: 16, for: .seconds(600))
                    if batch.isEmpty {
                        try await Task.sleep(for: .milliseconds(2))
                        continue
                    }
                    // Completed at once, as the dispatcher does: they share group transactions.
                    try await withThrowingTaskGroup(of: Void.self) { each in
                        for e in batch {
                            await delivered.add(e.id)
                            each.addTask { try await queue.complete(e.id, owner: owner, outcome: .delivered(proof: "ok")) }
                        }
                        try await each.waitForAll()
                    }
                }
            }
        }
        try await group.waitForAll()
    }
    return delivered
}

/// The events consumers were handed, and any handed out twice.
actor DeliveryLog {
    var seen = Set<EventID>()
    var duplicates: [EventID] = []
    var count: Int { seen.count }
    func add(_ id: EventID) {
        if !seen.insert(id).inserted { duplicates.append(id) }
    }
}
