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
    return try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: p, defaultRetry: retry), now: { clock.now })
}

func message(_ mid: String, session: String = "sess1", adapter: String = "webhook", target: String = "https://sink.test/hook",
             successReport: Bool = true, failureReport: String = "yes", imdn: [String] = []) -> NewEvent {
    NewEvent(
        adapter: adapter, target: target,
        origin: EventOrigin(sessionID: session, messageID: mid, fromPath: "msrp://a:1/x;tcp", toPath: "msrp://gw:2855/s;tcp",
                            byteCount: 5, successReport: successReport, failureReport: failureReport,
                            imdnMessageID: imdn.isEmpty ? nil : "imdn-\(mid)", imdnDispositions: imdn),
        envelope: EventEnvelope(from: "sip:alice@example.com", to: ["sip:ops@gw.example"], subject: "hi", contentType: "text/plain",
                                headers: ["X-Test": "1"]),
        body: .inline(Array("hello".utf8)))
}
