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

    /// A delivery's outcome waits for the next write's transaction instead of
    /// taking one of its own (issue 15): it rides in the next one that comes,
    /// and commits alone once its wait is over when none does.
    @Test func anOperationThatMayWaitForCompanyRidesInTheNextTransaction() async throws {
        let pool = try DatabasePool(path: try temporaryDirectory() + "/c.sqlite")
        try await pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let committer = GroupCommitter(pool: pool, level: "FULL", relaxedLevel: "NORMAL", companyWait: .seconds(60))
        // Submitted (pending) before the next operation, which then carries it
        // (a wait far longer than the microseconds between them).
        let seen = NIOLockedValueBox<Int?>(nil)
        let done = DispatchSemaphore(value: 0)
        committer.submit(mayWaitForDisk: true, mayWaitForCompany: true, Self.level) { result in
            seen.withLockedValue { $0 = (try? result.get()) ?? -1 }
            done.signal()
        }
        #expect(seen.withLockedValue { $0 } == nil)
        // That transaction syncs (its other operation is not relaxed): the outcome saw FULL.
        #expect(try await committer.perform(Self.level) == 2)
        // Answered in the same pass of the writer, before the second's caller resumed.
        #expect(done.wait(timeout: .now()) == .success)
        #expect(seen.withLockedValue { $0 } == 2)
    }

    @Test func anOperationThatMayWaitForCompanyCommitsAloneAfterItsWait() async throws {
        let pool = try DatabasePool(path: try temporaryDirectory() + "/c.sqlite")
        try await pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let committer = GroupCommitter(pool: pool, level: "FULL", relaxedLevel: "NORMAL", companyWait: .milliseconds(200))
        let started = ContinuousClock.now
        #expect(try await committer.perform(mayWaitForDisk: true, mayWaitForCompany: true, Self.level) == 1)
        // A lower bound only: the wait happened (a loaded machine only makes it longer).
        #expect(ContinuousClock.now - started >= .milliseconds(200))
        // Without a wait configured, it goes at once like any other.
        let eager = GroupCommitter(pool: pool, level: "FULL", relaxedLevel: "NORMAL")
        #expect(try await eager.perform(mayWaitForDisk: true, mayWaitForCompany: true, Self.level) == 1)
    }
}
