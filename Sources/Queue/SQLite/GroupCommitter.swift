import Foundation
import GRDB

/// Group commit for the queue's writes (enqueues, completions, lease extensions).
///
/// A caller's operation joins the pending batch; one writer at a time runs
/// everything pending in a single transaction (one fsync at `synchronous=FULL`),
/// then takes whatever arrived meanwhile. Each caller resumes only once the
/// transaction holding its operation has committed: with its result, with the
/// `QueueError` its own operation threw before writing anything (the others
/// commit), or with the error that stopped the commit (then nothing of the batch
/// was stored).
///
/// Why: at `synchronous=FULL` a commit costs an fsync; with many producers and
/// workers, sharing one per batch is what makes the queue fast without weakening
/// "when the call returns, it is on disk".
final class GroupCommitter: @unchecked Sendable {
    /// One caller's operation, type-erased. `apply` runs it inside the batch's
    /// transaction and returns how to resume its caller after the commit.
    private struct Request: Sendable {
        var apply: @Sendable (Database) throws -> @Sendable () -> Void
        var fail: @Sendable (any Error) -> Void
        var mayWaitForDisk: Bool
        var mayWaitForCompany: Bool
    }

    private let pool: DatabasePool
    /// At most this many operations per transaction, so that one transaction
    /// (and the callers waiting for it) stays short under a flood.
    private let maxBatch: Int
    /// The `PRAGMA synchronous` the queue runs at, and the one a batch of only
    /// `mayWaitForDisk` operations commits at (nil: the same).
    private let level: String
    private let relaxedLevel: String?
    /// Whether the writer connection may be at `relaxedLevel` now. Read and
    /// written only on the writer's queue (inside the pool's writes).
    private var mayBeRelaxed = false
    /// How long an operation that `mayWaitForCompany` may wait for another's
    /// transaction to ride in (nil: none waits).
    private let companyWait: Duration?
    private let lock = NSLock()
    private var pending: [Request] = []
    private var writing = false
    /// A timer will start the writer for operations that wait for company.
    private var companyTimerSet = false

    /// `relaxedLevel`: see `perform(mayWaitForDisk:)`; it must not be stricter than `level`.
    /// `companyWait`: see `perform(mayWaitForCompany:)`.
    init(pool: DatabasePool, maxBatch: Int = 1024, level: String = "FULL", relaxedLevel: String? = nil, companyWait: Duration? = nil) {
        self.pool = pool
        self.maxBatch = maxBatch
        self.level = level
        self.relaxedLevel = relaxedLevel
        self.companyWait = companyWait
    }

    /// Runs `operation` in the next group transaction and returns its result once
    /// that transaction is durable. `operation` may throw a `QueueError` only
    /// before it writes (checks first, then writes): it then reaches this caller
    /// alone.
    ///
    /// `mayWaitForDisk`: the operation records what is safe to forget on a power
    /// loss (a lease, a delivery's outcome: forgotten, the event is delivered
    /// again). A transaction of only such operations commits at `relaxedLevel`
    /// (WAL at NORMAL: no fsync; the next transaction that syncs carries it, so
    /// it is never lost without what came before it; a crash of the process
    /// loses nothing). A transaction with any other operation syncs as always.
    ///
    /// `mayWaitForCompany`: when the writer is idle, the operation waits up to
    /// `companyWait` for another to start a transaction, and rides in it (a
    /// delivery's outcome with the next message's store). Why: at a low, even
    /// rate every message's outcome was a transaction of its own, a thread
    /// wake-up and a commit (issue 15: riding, the writer's CPU per message at
    /// an even 500 msg/s fell by a quarter).
    func perform<T: Sendable>(
        mayWaitForDisk: Bool = false, mayWaitForCompany: Bool = false, _ operation: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            submit(mayWaitForDisk: mayWaitForDisk, mayWaitForCompany: mayWaitForCompany, operation) { continuation.resume(with: $0) }
        }
    }

    /// `perform`, told to `completion` on the writer's queue once the transaction
    /// is durable: a caller on an event loop needs no task to wait in (the MSRP
    /// ingress: a lone message's store costs one thread hop, not three).
    func submit<T: Sendable>(
        mayWaitForDisk: Bool = false, mayWaitForCompany: Bool = false, _ operation: @escaping @Sendable (Database) throws -> T,
        completion: @escaping @Sendable (Result<T, any Error>) -> Void
    ) {
        let request = Request(
            apply: { db in
                // No savepoint per operation (it doubled the cost of an insert):
                // an operation throws its QueueError before it writes. One that
                // wrote and then threw would leave half its work in the batch,
                // so that fails the whole batch instead, and nothing commits.
                let changesBefore = db.totalChangesCount
                do {
                    let result = try operation(db)
                    return { completion(.success(result)) }
                } catch let error as QueueError {
                    guard db.totalChangesCount == changesBefore else {
                        throw QueueError(.other, "an operation wrote, then failed (\(error)): batch rolled back")
                    }
                    return { completion(.failure(error)) }
                }
            },
            fail: { completion(.failure($0)) },
            mayWaitForDisk: mayWaitForDisk, mayWaitForCompany: mayWaitForCompany && companyWait != nil)
        let next: WriterStart = lock.withLock {
            pending.append(request)
            if writing { return .nothing }
            if request.mayWaitForCompany, pending.allSatisfy(\.mayWaitForCompany) {
                if companyTimerSet { return .nothing }
                companyTimerSet = true
                return .setTimer
            }
            writing = true
            return .write
        }
        switch next {
        case .write: drainNext()
        case .setTimer: setCompanyTimer()
        case .nothing: break
        }
    }

    /// What a new operation asks of the writer.
    private enum WriterStart { case nothing, write, setTimer }

    /// Writes what waits for company once `companyWait` has passed, unless a
    /// transaction took it meanwhile.
    private func setCompanyTimer() {
        guard let companyWait else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(companyWait.nanoseconds))) {
            let startWriter: Bool = self.lock.withLock {
                self.companyTimerSet = false
                if self.writing || self.pending.isEmpty { return false }
                self.writing = true
                return true
            }
            if startWriter { self.drainNext() }
        }
    }

    /// Writes the next batch on GRDB's writer queue and, from its completion on
    /// that queue, the one after, until nothing is pending. Why not a Task that
    /// awaits `pool.write`: that is three thread hops per transaction (the
    /// Task's start, the writer queue, the Task's resumption) where this is one,
    /// and at low load every message pays three transactions (store, lease,
    /// outcome): the hops were a visible part of its CPU (issue 15).
    private func drainNext() {
        let batch: [Request] = lock.withLock {
            let b = Array(pending.prefix(maxBatch))
            pending.removeFirst(b.count)
            if b.isEmpty { writing = false }
            return b
        }
        if batch.isEmpty { return }
        let relaxed = batch.allSatisfy(\.mayWaitForDisk)
        pool.asyncWriteWithoutTransaction { db in
            let result = Result { try self.transaction(db, relaxed: relaxed) { db in try batch.map { try $0.apply(db) } } }
            switch result {
            case .success(let resumers): for resume in resumers { resume() }
            case .failure(let error): for request in batch { request.fail(error) }
            }
            self.drainNext()
        }
    }

    /// `body` in a transaction on the writer connection (on the writer's queue),
    /// committed at the queue's level, or at `relaxedLevel` when `relaxed`:
    /// every write on the connection goes through here, so none commits at a
    /// level another left behind.
    func transaction<T>(_ db: Database, relaxed: Bool, _ body: (Database) throws -> T) throws -> T {
        try setLevel(relaxed: relaxed, db)
        try db.beginTransaction()
        do {
            let value = try body(db)
            try db.commit()
            return value
        } catch {
            if db.isInsideTransaction { try? db.rollback() }
            throw error
        }
    }

    /// Puts the writer connection at the level a transaction needs, before it
    /// begins (SQLite refuses the change inside one). When the change fails,
    /// the transaction does not run (its callers hear the error) and the next
    /// one that must sync tries again.
    private func setLevel(relaxed: Bool, _ db: Database) throws {
        guard let relaxedLevel, relaxed || mayBeRelaxed else { return }
        mayBeRelaxed = true
        try db.cachedStatement(sql: "PRAGMA synchronous = \(relaxed ? relaxedLevel : level)").execute()
        mayBeRelaxed = relaxed
    }
}
