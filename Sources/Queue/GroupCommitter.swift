import Foundation
import GRDB

/// Group commit for enqueues. A caller's rows join the pending batch; one writer
/// at a time commits everything pending in a single transaction (one fsync), then
/// takes whatever arrived meanwhile. Each caller resumes when the transaction
/// holding its rows has committed, with its ids, or with the error that stopped
/// the commit (then none of the batch was stored).
final class GroupCommitter: @unchecked Sendable {
    private struct Request {
        var rows: [EventRow]
        var continuation: CheckedContinuation<[EventID], any Error>
    }

    private let pool: DatabasePool
    private let lock = NSLock()
    private var pending: [Request] = []
    private var writing = false

    init(pool: DatabasePool) { self.pool = pool }

    func commit(_ rows: [EventRow]) async throws -> [EventID] {
        try await withCheckedThrowingContinuation { continuation in
            let startWriter: Bool = lock.withLock {
                pending.append(Request(rows: rows, continuation: continuation))
                if writing { return false }
                writing = true
                return true
            }
            if startWriter { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch: [Request] = lock.withLock {
                let b = pending
                pending = []
                if b.isEmpty { writing = false }
                return b
            }
            if batch.isEmpty { return }
            let allRows = batch.map(\.rows)
            do {
                let ids = try await pool.write { db in
                    try allRows.map { rows in try rows.map { try $0.insertOrFind(db) } }
                }
                for (request, result) in zip(batch, ids) { request.continuation.resume(returning: result) }
            } catch {
                for request in batch { request.continuation.resume(throwing: error) }
            }
        }
    }
}
