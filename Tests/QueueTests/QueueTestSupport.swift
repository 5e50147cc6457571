import Events
import Foundation
import Queue

/// A clock tests move by hand.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current = Date(timeIntervalSince1970: 1_800_000_000)
    var now: Date { lock.withLock { current } }
    func advance(_ d: Duration) {
        lock.withLock { current = current.addingTimeInterval(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) }
    }
}

func temporaryDirectory() throws -> String {
    let dir = NSTemporaryDirectory() + "msrpgw-queue-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func makeQueue(
    clock: TestClock = TestClock(), retry: RetryPolicy = RetryPolicy(schedule: [.seconds(5), .seconds(60)], maxAttempts: 3, maxAge: .seconds(3600), jitter: false),
    path: String? = nil
) throws -> SQLiteEventQueue {
    let p = try path ?? (temporaryDirectory() + "/queue.sqlite")
    return try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: p, followUps: TestFollowUps(), defaultRetry: retry), now: { clock.now })
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
