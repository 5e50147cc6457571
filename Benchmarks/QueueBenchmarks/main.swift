// Queue benchmarks, each beside the raw rate of single-row INSERT + commit at
// the same synchronous setting on the same file system, measured in the same run.
// Usage: swift run -c release QueueBenchmarks [enqueue lease-complete lease-latency api-calls postgresql]
import Events
import Foundation
import GRDB
import Queue

func say(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
func elapsed(_ body: () async throws -> Void) async rethrows -> Double {
    let t0 = ContinuousClock.now
    try await body()
    let d = ContinuousClock.now - t0
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}
func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
func scratch() throws -> String {
    let dir = FileManager.default.currentDirectoryPath + "/.build/bench-queue-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}
func event(_ i: Int, session: String = "bench") -> NewEvent {
    NewEvent(adapter: "webhook", target: "https://sink.test/hook",
             origin: EventOrigin(sessionID: session, messageID: "m\(i)", byteCount: 120, successReport: true),
             envelope: EventEnvelope(from: "sip:alice@example.com", to: ["sip:ops@gw.example"], contentType: "text/plain"),
             body: .inline(Array(repeating: 0x61, count: 120)))
}

/// Single-row INSERT, each in its own transaction, synchronous=FULL, WAL.
func rawInsertRate(count: Int = 1000) async throws -> Double {
    let dir = try scratch()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let pool = try DatabasePool(path: dir + "/raw.sqlite")
    // Set on the writer once the pool is open: GRDB sets NORMAL when it turns WAL
    // on, after `prepareDatabase` (where this was set until 2026-12-06: every
    // reference before then was measured at NORMAL, as the queue was).
    try await pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA synchronous = FULL") }
    try await pool.write { try $0.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)") }
    let body = Data(repeating: 0x61, count: 120)
    let secs = try await elapsed {
        for _ in 0..<count {
            try await pool.write { try $0.execute(sql: "INSERT INTO t (body) VALUES (?)", arguments: [body]) }
        }
    }
    return Double(count) / secs
}

func openQueue(_ dir: String) throws -> SQLiteEventQueue {
    try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: dir + "/queue.sqlite", followUps: NoFollowUps(), synchronous: .full))
}

func benchEnqueue() async throws {
    var rates: [Double] = []
    for _ in 0..<3 {
        let dir = try scratch()
        rates.append(try await enqueueRate(try openQueue(dir), producers: 64, each: 300))
        try? FileManager.default.removeItem(atPath: dir)
    }
    let raw = try await rawInsertRate()
    let rate = median(rates)
    say("enqueue, 64 producers, synchronous=FULL: \(Int(rate)) events/s; raw single-row INSERT+commit: \(Int(raw)) /s; ratio \(String(format: "%.1f", rate / raw))x  [target >= 20000/s and >= 10x]")
}

func benchLeaseComplete() async throws {
    var rates: [Double] = []
    for _ in 0..<3 {
        let dir = try scratch()
        rates.append(try await leaseCompleteRate(try openQueue(dir), total: 20_000))
        try? FileManager.default.removeItem(atPath: dir)
    }
    let raw = try await rawInsertRate()
    say("lease + complete (8 workers, leases of 50): \(Int(median(rates))) events/s; raw single-row INSERT+commit: \(Int(raw)) /s  [target >= 20000/s]")
}

func benchLeaseLatency() async throws {
    func latency(queued: Int) async throws -> (Double, Double) {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let queue = try openQueue(dir)
        for start in stride(from: 0, to: queued, by: 10_000) {
            _ = try await queue.enqueue((start..<min(queued, start + 10_000)).map { event($0, session: "fill") })
        }
        var samples: [Double] = []
        for i in 0..<500 {
            _ = try await queue.enqueue([event(50_000_000 + i, session: "probe")])
            let d = try await elapsed { _ = try await queue.lease(adapter: "webhook", owner: "w", limit: 1, for: .seconds(60)) }
            samples.append(d * 1e6)
        }
        samples.sort()
        return (samples[samples.count / 2], samples[samples.count * 99 / 100])
    }
    let empty = try await latency(queued: 0)
    let full = try await latency(queued: 1_000_000)
    say("lease latency (limit 1): empty queue median \(Int(empty.0)) µs p99 \(Int(empty.1)) µs; 1,000,000 queued median \(Int(full.0)) µs p99 \(Int(full.1)) µs; ratio \(String(format: "%.2f", full.0 / empty.0))  [target <= 2x]")
}

/// The calls the API and the dispatcher make (stats for /healthz and /metrics,
/// the newest queued events, makeDue and pendingCount for a peer, a lease for
/// another adapter) with 1,000 events queued (so that a page of 100 is full in
/// both) and with `QUEUED` (default 1,000,000) queued for one failing endpoint:
/// each call's median over 200.
func benchAPICalls() async throws {
    let queued = Int(ProcessInfo.processInfo.environment["QUEUED"] ?? "") ?? 1_000_000
    func timings(queued: Int) async throws -> [(String, Double)] {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let queue = try openQueue(dir)
        for start in stride(from: 0, to: queued, by: 10_000) {
            _ = try await queue.enqueue((start..<min(queued, start + 10_000)).map { event($0, session: "fill") })
        }
        // A peer with a few events waiting for its session.
        _ = try await queue.enqueue((0..<5).map { i in
            NewEvent(kind: .delivery, adapter: "msrp", target: "sip:bob@example.com", origin: EventOrigin(sessionID: "s", messageID: "p\(i)"),
                     envelope: EventEnvelope(contentType: "text/plain"), body: .inline([0x61]))
        })
        let calls: [(String, () async throws -> Void)] = [
            ("stats", { _ = try await queue.stats() }),
            ("events?state=queued&limit=100", { _ = try await queue.events(EventFilter(state: .queued, limit: 100)) }),
            ("makeDue(peer)", { _ = try await queue.makeDue(adapter: "msrp", target: "sip:bob@example.com") }),
            ("pendingCount(peer)", { _ = try await queue.pendingCount(adapter: "msrp", target: "sip:bob@example.com") }),
            ("lease (another adapter)", { _ = try await queue.lease(adapter: "irc", owner: "w", limit: 10, for: .seconds(1)) }),
        ]
        var out: [(String, Double)] = []
        for (name, call) in calls {
            var samples: [Double] = []
            for _ in 0..<200 { samples.append(try await elapsed { try await call() } * 1e6) }
            out.append((name, median(samples)))
        }
        return out
    }
    let small = try await timings(queued: 1000)
    let full = try await timings(queued: queued)
    for ((name, e), (_, f)) in zip(small, full) {
        say(String(format: "%@: 1000 queued %.0f µs, %d queued %.0f µs; ratio %.2f  [target <= 2x]", name, e, queued, f, f / e))
    }
}

let chosen = CommandLine.arguments.dropFirst().isEmpty ? ["enqueue", "lease-complete", "lease-latency", "api-calls"] : Array(CommandLine.arguments.dropFirst())
for name in chosen {
    switch name {
    case "enqueue": try await benchEnqueue()
    case "lease-complete": try await benchLeaseComplete()
    case "lease-latency": try await benchLeaseLatency()
    case "api-calls": try await benchAPICalls()
    case "postgresql": try await benchPostgres()
    case "postgresql-enqueue": try await benchPostgres(quick: true)
    default: say("unknown benchmark \(name)")
    }
}
