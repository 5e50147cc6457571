import Foundation
import GRDB
import NIOConcurrencyHelpers
import Testing

@testable import Queue

/// Which transactions wait for the disk: only those made of nothing but
/// leases and outcomes (forgotten on a power loss, they are delivered again)
/// commit without a sync; anything else in the batch makes it sync.
@Suite struct GroupCommitterTests {
    /// `PRAGMA synchronous` as an operation sees it inside its transaction.
    static let level: @Sendable (Database) throws -> Int = { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }

    static func committer() throws -> (GroupCommitter, DatabasePool) {
        let pool = try DatabasePool(path: try temporaryDirectory() + "/c.sqlite")
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        return (GroupCommitter(pool: pool, level: "FULL", relaxedLevel: "NORMAL"), pool)
    }

    @Test func aBatchOfOperationsThatMayWaitForTheDiskCommitsWithoutASync() async throws {
        let (committer, pool) = try Self.committer()
        #expect(try await committer.perform(mayWaitForDisk: true, Self.level) == 1)
        #expect(try await committer.perform(mayWaitForDisk: true, Self.level) == 1)
        #expect(try await committer.perform(Self.level) == 2)
        #expect(try await committer.perform(mayWaitForDisk: true, Self.level) == 1)
        // A write of its own (the queue's replay, purge) sets the queue's level first.
        #expect(try await pool.writeWithoutTransaction { db in try committer.transaction(db, relaxed: false, Self.level) } == 2)
    }

    /// A write of its own that fails after writing leaves nothing behind.
    @Test func aTransactionThatThrowsIsRolledBack() async throws {
        let (committer, pool) = try Self.committer()
        struct Refused: Error {}
        try await pool.writeWithoutTransaction { db in try db.execute(sql: "CREATE TABLE t (x INTEGER)") }
        await #expect(throws: Refused.self) {
            try await pool.writeWithoutTransaction { db in
                try committer.transaction(db, relaxed: false) { db in
                    try db.execute(sql: "INSERT INTO t VALUES (1)")
                    throw Refused()
                }
            }
        }
        #expect(try await pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM t") } == 0)
        #expect(try await committer.perform { db in try db.execute(sql: "INSERT INTO t VALUES (2)") } == ())
    }

    @Test func oneOperationThatMustBeOnDiskMakesTheWholeBatchSync() async throws {
        let (committer, pool) = try Self.committer()
        // Hold the writer so that the next two share a batch.
        let gate = DispatchSemaphore(value: 0)
        let held = Task { try await committer.perform { _ in gate.wait() } }
        try await Task.sleep(for: .milliseconds(50))
        let seen = NIOLockedValueBox<[Int]>([])
        let done = DispatchGroup()
        for mayWait in [true, false, true] {
            done.enter()
            committer.submit(mayWaitForDisk: mayWait, Self.level) { result in
                seen.withLockedValue { $0.append((try? result.get()) ?? -1) }
                done.leave()
            }
        }
        gate.signal()
        try await held.value
        await withCheckedContinuation { continuation in done.notify(queue: .global()) { continuation.resume() } }
        #expect(seen.withLockedValue { $0 } == [2, 2, 2])
        #expect(try await pool.writeWithoutTransaction(Self.level) == 2)
    }

    /// A queue at NORMAL or OFF has nothing to relax: every batch commits at its level.
    @Test func withoutARelaxedLevelEveryBatchCommitsAtTheQueuesLevel() async throws {
        let pool = try DatabasePool(path: try temporaryDirectory() + "/c.sqlite")
        try await pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = OFF") }
        let committer = GroupCommitter(pool: pool, level: "OFF")
        #expect(try await committer.perform(mayWaitForDisk: true, Self.level) == 0)
        #expect(try await committer.perform(Self.level) == 0)
    }
}
