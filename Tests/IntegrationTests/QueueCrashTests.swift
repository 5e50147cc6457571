import Events
import Foundation
import GRDB
import Queue
import Testing
import TestPeers

/// SIGKILL at random moments while a child process enqueues and leases under
/// load, 20 times over one database: every enqueue the child saw succeed is
/// there after reopening, every delivery it saw recorded is delivered, the file
/// passes `PRAGMA integrity_check`, and no message was stored twice.
@Suite(.serialized) struct QueueCrashTests {
    @Test func sigkillLosesNothingAcknowledged() async throws {
        let dir = try Scratch.directory("crash")
        let db = dir + "/queue.sqlite", log = dir + "/acknowledged.log"
        var rng = SystemRandomNumberGenerator()
        var totalEnqueued = 0
        for round in 0..<20 {
            let child = try ChildProcess(Executables.queueTorture, ["--db", db, "--log", log], name: "queue-torture")
            try await child.waitFor("READY")
            try await Task.sleep(for: .milliseconds(Int.random(in: 100...500, using: &rng)))
            child.signal(SIGKILL)
            _ = try await child.wait()

            let queue = try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: db, followUps: NoFollowUps()))
            #expect(try await queue.integrityCheck() == "ok", "round \(round)")
            let lines = (try String(contentsOfFile: log, encoding: .utf8)).split(separator: "\n")
            var enqueued = Set<EventID>(), delivered = Set<EventID>()
            for line in lines {
                let parts = line.split(separator: " ")
                guard parts.count == 2, let id = EventID(String(parts[1])) else { continue }  // a torn last line
                if parts[0] == "E" { enqueued.insert(id) } else if parts[0] == "D" { delivered.insert(id) }
            }
            // One read of the whole table (the queue API is per event).
            let reader = try DatabaseQueue(path: db, configuration: { var c = Configuration(); c.readonly = true; return c }())
            let (states, distinctMessages) = try await reader.read { d in
                let rows = try Row.fetchAll(d, sql: "SELECT id, state FROM event")
                let states = Dictionary(uniqueKeysWithValues: rows.map { (EventID(rawValue: $0["id"]), $0["state"] as String) })
                return (states, try Int.fetchOne(d, sql: "SELECT count(DISTINCT message_id) FROM event") ?? 0)
            }
            try reader.close()
            let lost = enqueued.filter { states[$0] == nil }
            #expect(lost.isEmpty, "round \(round): \(lost.count) acknowledged events are gone")
            let undelivered = delivered.filter { states[$0] != "delivered" }
            #expect(undelivered.isEmpty, "round \(round): \(undelivered.count) recorded deliveries are lost")
            #expect(distinctMessages == states.count, "round \(round): a message stored twice")
            totalEnqueued = enqueued.count
        }
        #expect(totalEnqueued > 100, "the child did too little work to prove anything: \(totalEnqueued)")
    }
}
