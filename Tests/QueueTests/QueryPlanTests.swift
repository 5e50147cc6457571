import Events
import Foundation
import GRDB
import Testing

@testable import Queue

/// The calls the API and the dispatcher make must not grow with the table:
/// each query is answered from an index (EXPLAIN QUERY PLAN shows no scan of
/// the events and no sort of a whole state), and the counts come from a table
/// the triggers keep in the same transactions as the events.
struct QueryPlanTests {
    /// EXPLAIN QUERY PLAN of `sql` on a migrated database, one detail per line.
    static func plan(_ sql: String, _ arguments: StatementArguments) throws -> String {
        let path = try temporaryDirectory() + "/queue.sqlite"
        _ = try makeQueue(path: path)
        let db = try DatabaseQueue(path: path)
        return try db.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }.joined(separator: "\n")
        }
    }

    @Test(arguments: [
        ("lease", SQLiteEventQueue.dueSQL, ["webhook", "0", "10"]),
        ("makeDue", SQLiteEventQueue.makeDueSQL, ["webhook", "t"]),
        ("anything due (a claim)", SQLiteEventQueue.hasDueSQL, ["webhook", "0"]),
        ("purge's files", SQLiteEventQueue.purgeFilesSQL, ["100", "0"]),
        ("purge", SQLiteEventQueue.purgeSQL, ["100", "0"]),
        ("pending count", SQLiteEventQueue.pendingCountSQL, ["webhook", "t"]),
        ("list by state", SQLiteEventQueue.listSQL("WHERE state = ?"), ["queued", "100"]),
        ("list by state and adapter", SQLiteEventQueue.listSQL("WHERE state = ? AND adapter = ?"), ["queued", "webhook", "100"]),
        ("list by session", SQLiteEventQueue.listSQL("WHERE session_id = ?"), ["s", "100"]),
        ("list", SQLiteEventQueue.listSQL(""), ["100"]),
        ("counts", SQLiteEventQueue.countsSQL, []),
        ("oldest due", SQLiteEventQueue.oldestDueSQL, ["webhook"]),
    ])
    func answeredFromAnIndex(_ name: String, _ sql: String, _ arguments: [String]) throws {
        let plan = try Self.plan(sql, StatementArguments(arguments))
        // "SCAN event" is the whole table (event_count is small by design).
        let scans = plan.split(separator: "\n").filter { ($0 == "SCAN event" || $0.hasPrefix("SCAN event ")) && !$0.contains("USING") }
        #expect(scans.isEmpty || name == "list", "\(name) scans the events: \(plan)")
        #expect(!plan.contains("TEMP B-TREE"), "\(name) sorts: \(plan)")
    }

    /// The purge walks the delivered (and bounced) events created before its
    /// cutoff, not every older event (the rowid) nor every delivered one.
    @Test func thePurgeReadsARangeOfStateAndID() throws {
        for sql in [SQLiteEventQueue.purgeSQL, SQLiteEventQueue.purgeFilesSQL] {
            let plan = try Self.plan(sql, ["100", "0"])
            #expect(plan.contains("INDEX event_state_id (state=? AND id<?)"), "\(plan)")
        }
    }

    /// A database written before schema v5 (with `event_state` and its events)
    /// upgrades in place: the index goes, the events stay, the purge works.
    @Test func aV4DatabaseUpgradesKeepingItsEvents() async throws {
        let clock = TestClock()
        let path = try temporaryDirectory() + "/queue.sqlite"
        var queue: SQLiteEventQueue? = try makeQueue(clock: clock, path: path)
        let ids = try await queue!.enqueue((0..<3).map { message("u000000\($0)", successReport: false) })
        let leased = try await queue!.lease(adapter: "webhook", owner: "w", limit: 1, for: .seconds(30))
        _ = try await queue!.complete(leased[0].id, owner: "w", outcome: .delivered(proof: "204"))
        queue = nil
        // Back to v4: its index, and no record of v5.
        let db = try DatabaseQueue(path: path)
        try await db.write { db in
            try db.execute(sql: "CREATE INDEX event_state ON event(state, updated_at)")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v5-purge-by-id'")
        }
        try db.close()
        let upgraded = try makeQueue(clock: clock, path: path)
        let indexes = try await upgraded.pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index'") }
        #expect(!indexes.contains("event_state") && indexes.contains("event_state_id"))
        #expect(try await upgraded.events(EventFilter()).map(\.id).sorted() == ids.sorted())
        clock.advance(.seconds(1))
        #expect(try await upgraded.purge(deliveredBefore: clock.now) == 1)
        #expect(try await upgraded.stats().count(adapter: "webhook", state: .queued) == 2)
    }

    /// A lease that leaves busy endpoints out walks a bounded window of the due
    /// index, in its order and from the index alone: no table, no sort.
    @Test func leasingAroundBusyEndpointsReadsABoundedWindowOfTheIndex() throws {
        let plan = try Self.plan(SQLiteEventQueue.dueExcludingSQL(2), ["webhook", "0", "4096", "https://a", "https://b", "10"])
        #expect(plan.contains("USING COVERING INDEX event_due_target"), "\(plan)")
        #expect(!plan.split(separator: "\n").contains { $0.hasPrefix("SCAN event") && !$0.contains("INDEX") }, "\(plan)")
        #expect(!plan.contains("TEMP B-TREE"), "\(plan)")
    }

    /// At start, once: the targets whose events wait (a range of the due index;
    /// the DISTINCT may sort, over targets, not events).
    @Test func waitingTargetsReadTheDueIndex() async throws {
        let plan = try Self.plan(SQLiteEventQueue.waitingTargetsSQL, ["webhook", "0"])
        #expect(plan.contains("INDEX event_due"), "\(plan)")
        #expect(!plan.split(separator: "\n").contains { $0.hasPrefix("SCAN event") && !$0.contains("INDEX") }, "\(plan)")
        let clock = TestClock()
        let queue = try makeQueue(clock: clock, path: try temporaryDirectory() + "/queue.sqlite")
        _ = try await queue.enqueue((0..<6).map { message("w\($0)", target: $0 < 3 ? "https://a.test" : "https://b.test") })
        let leased = try await queue.lease(adapter: "webhook", owner: "w", limit: 6, for: .seconds(30))
        for e in leased where e.target == "https://a.test" {
            _ = try await queue.postpone(e.id, owner: "w", until: clock.now.addingTimeInterval(600), reason: "circuit open")
        }
        for e in leased where e.target == "https://b.test" { _ = try await queue.complete(e.id, owner: "w", outcome: .delivered(proof: "ok")) }
        #expect(try await queue.waitingTargets(adapter: "webhook", notDueBefore: clock.now.addingTimeInterval(1)) == ["https://a.test"])
        #expect(try await queue.waitingTargets(adapter: "webhook", notDueBefore: clock.now.addingTimeInterval(601)).isEmpty)
    }

    @Test func countsFollowEveryChange() async throws {
        let clock = TestClock()
        let path = try temporaryDirectory() + "/queue.sqlite"
        let queue = try makeQueue(clock: clock, path: path)
        let ids = try await queue.enqueue((0..<20).map { message("m\($0)", target: $0 % 2 == 0 ? "https://a.test" : "https://b.test") })
        #expect(ids.count == 20)
        let leased = try await queue.lease(adapter: "webhook", owner: "w", limit: 8, for: .seconds(30))
        for (i, e) in leased.enumerated() {
            _ = try await queue.complete(e.id, owner: "w", outcome: i % 2 == 0 ? .delivered(proof: "ok") : .permanentFailure(code: 403, reason: "no"))
        }
        clock.advance(.seconds(86_400 * 30))
        _ = try await queue.purge(deliveredBefore: clock.now)
        let stats = try await queue.stats()
        // The truth, counted from the rows.
        let db = try DatabaseQueue(path: path)
        let truth = try await db.read { db in
            var counts: [QueueStats.Key: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT adapter, state, count(*) AS n FROM event GROUP BY adapter, state") {
                guard let state = EventState(rawValue: row["state"]) else { continue }
                counts[QueueStats.Key(adapter: row["adapter"], state: state)] = row["n"]
            }
            return counts
        }
        #expect(stats.counts == truth)
        #expect(truth.values.reduce(0, +) > 0 && truth.count >= 3, "queued, failed and more: \(truth)")
    }
}
