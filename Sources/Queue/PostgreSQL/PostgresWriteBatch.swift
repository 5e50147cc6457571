import Events
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO

/// Group commit on PostgreSQL: the enqueues and outcomes that arrive while a
/// transaction runs share the next one, and that transaction is a handful of
/// statements whatever its size (one SELECT ... FOR UPDATE of the leased rows,
/// one UPDATE of all outcomes, one multi-row INSERT of all new events and
/// follow-ups), so a round trip and a WAL flush are shared by many callers.
/// Each caller resumes once the transaction holding its write has committed.
///
/// Writes are data, not closures, because they are merged: an operation that
/// ran statements of its own would cost a round trip each (postgres-nio does
/// not pipeline), which is what makes one transaction per event slow.
final class PostgresWriteBatcher: Sendable {
    enum Write: Sendable {
        case enqueue([EventRow], CheckedContinuation<[Enqueued], any Error>)
        case finish(Finish, CheckedContinuation<EventState, any Error>)
    }

    /// Nothing but new events: one INSERT statement, atomic by itself (up to
    /// 1,000 of them: `apply` splits larger ones, which then need a transaction).
    static func onlyNewEvents(_ batch: [Write]) -> Bool {
        var rows = 0
        for write in batch {
            guard case .enqueue(let new, _) = write else { return false }
            rows += new.count
        }
        return rows <= PostgresEventRow.rowsPerInsert
    }

    /// An outcome to record for a leased event.
    struct Finish: Sendable {
        var id: EventID
        var owner: String
        var outcome: DeliveryOutcome
        var readyAt: Date?
        var stamp: Date
    }

    private struct State {
        var pending: [Write] = []
        var writers = 0
    }

    private let state = NIOLockedValueBox(State())
    private let maxBatch: Int
    /// Transactions in flight at once: while one waits for its WAL flush the
    /// next is sent, and the server flushes them together.
    private let maxWriters: Int
    private let run: @Sendable ([Write]) async throws -> [@Sendable () -> Void]

    /// `run` applies a batch in one transaction and returns how to resume each
    /// caller; it throws when nothing of the batch committed.
    init(maxBatch: Int = 1024, maxWriters: Int = 2, run: @escaping @Sendable ([Write]) async throws -> [@Sendable () -> Void]) {
        self.maxBatch = maxBatch
        self.maxWriters = maxWriters
        self.run = run
    }

    func enqueue(_ rows: [EventRow]) async throws -> [Enqueued] {
        try await withCheckedThrowingContinuation { submit(.enqueue(rows, $0)) }
    }

    func finish(_ finish: Finish) async throws -> EventState {
        try await withCheckedThrowingContinuation { submit(.finish(finish, $0)) }
    }

    private func submit(_ write: Write) {
        let startWriter = state.withLockedValue { state in
            state.pending.append(write)
            if state.writers >= maxWriters { return false }
            state.writers += 1
            return true
        }
        if startWriter { Task { await self.drain() } }
    }

    private func drain() async {
        while true {
            // An even share of what waits, so that the writers' transactions overlap.
            let batch: [Write] = state.withLockedValue { state in
                let share = (state.pending.count + state.writers - 1) / max(state.writers, 1)
                let batch = Array(state.pending.prefix(min(maxBatch, max(share, 1))))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.writers -= 1 }
                return batch
            }
            if batch.isEmpty { return }
            do {
                for resume in try await run(batch) { resume() }
            } catch {
                for write in batch {
                    switch write {
                    case .enqueue(_, let continuation): continuation.resume(throwing: error)
                    case .finish(_, let continuation): continuation.resume(throwing: error)
                    }
                }
            }
        }
    }
}

/// What the queue's writes need: the pool, the id generator and the policies.
/// A value of its own so that the batcher can hold it without holding the queue.
struct PostgresStore: Sendable {
    let client: PostgresClient
    let logger: Logger
    let ids: EventIDGenerator
    let configuration: PostgresEventQueue.Configuration

    func policy(for adapter: String) -> RetryPolicy { configuration.retry[adapter] ?? configuration.defaultRetry }

    /// The only node that may deliver `event`: the one its affinity names, or
    /// this one for a body in a file outside `event_body` (only this node can
    /// read it; `PostgresEventQueue.enqueue` stores bodies in the table).
    func node(for event: NewEvent) -> Int? {
        if let node = configuration.affinity?.node(for: event) { return node }
        if case .file(let path, _) = event.body, !PostgresBodies.isInTable(path) { return configuration.node }
        return nil
    }

    /// Runs `body` in one transaction on one connection.
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                let result = try await body(connection)
                // Its caller was told it failed (the deadline passed): it must not commit now.
                try Task.checkCancellation()
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch {
                // The connection goes back to the pool clean; a broken one the pool drops.
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// Applies a batch of writes on `connection`, inside a transaction.
    func apply(_ batch: [PostgresWriteBatcher.Write], on connection: PostgresConnection) async throws -> [@Sendable () -> Void] {
        var resumers: [@Sendable () -> Void] = []
        var inserts: [EventRow] = []
        var updates: [OutcomeUpdate] = []
        // What each enqueue waits for: its rows' range in `inserts`.
        var enqueued: [(Range<Int>, CheckedContinuation<[Enqueued], any Error>)] = []

        let finishes = batch.compactMap { write -> PostgresWriteBatcher.Finish? in
            if case .finish(let finish, _) = write { return finish }
            return nil
        }
        var current = try await lockedRows(finishes.map(\.id.rawValue), on: connection)
        for write in batch {
            switch write {
            case .enqueue(let rows, let continuation):
                enqueued.append((inserts.count..<inserts.count + rows.count, continuation))
                inserts += rows
            case .finish(let finish, let continuation):
                guard let (event, retryBase) = current[finish.id.rawValue] else {
                    resumers.append { continuation.resume(throwing: QueueError(.notFound, "event \(finish.id)")) }
                    continue
                }
                guard event.state == .leased, event.leaseOwner == finish.owner else {
                    let error = QueueError(.leaseLost, "event \(finish.id) is \(event.state.rawValue), leased by \(event.leaseOwner ?? "nobody")")
                    resumers.append { continuation.resume(throwing: error) }
                    continue
                }
                let settlement = Settlement(finish.outcome, attempts: event.attempts, retryBase: retryBase, now: finish.stamp,
                                            readyAt: finish.readyAt, policy: policy(for: event.adapter))
                let update = OutcomeUpdate(event: event, settlement: settlement, stamp: finish.stamp)
                updates.append(update)
                var settled = event
                settled.state = settlement.state
                settled.leaseOwner = nil
                current[finish.id.rawValue] = (settled, retryBase)
                if let final = settlement.final {
                    inserts += configuration.followUps.followUps(for: event, outcome: final).map {
                        EventRow(new: $0, id: ids.next(now: finish.stamp), now: finish.stamp)
                    }
                }
                let state = settlement.state
                resumers.append { continuation.resume(returning: state) }
            }
        }
        try await write(updates, on: connection)
        let stored = try await insert(inserts, on: connection)
        for (range, continuation) in enqueued {
            let result = Array(stored[range])
            resumers.append { continuation.resume(returning: result) }
        }
        return resumers
    }

    /// The rows of `ids`, locked until the transaction ends, with their retry base.
    private func lockedRows(_ ids: [Int64], on connection: PostgresConnection) async throws -> [Int64: (QueuedEvent, Date)] {
        guard !ids.isEmpty else { return [:] }
        var rows: [Int64: (QueuedEvent, Date)] = [:]
        for try await row in try await connection.execute(LockRows(ids: ids), logger: logger) {
            let event = try PostgresEventRow.decode(row)
            rows[event.id.rawValue] = (event, try PostgresEventRow.retryBase(row))
        }
        return rows
    }

    /// One UPDATE for all outcomes, from one array per column.
    private func write(_ updates: [OutcomeUpdate], on connection: PostgresConnection) async throws {
        guard !updates.isEmpty else { return }
        _ = try await connection.execute(SettleRows(updates: updates, node: Int64(configuration.node)), logger: logger)
    }

    /// Inserts new events (one statement per 1,000 rows); an event whose dedupe key
    /// is stored already is not added, and its existing id is returned.
    func insert(_ rows: [EventRow], on connection: PostgresConnection) async throws -> [Enqueued] {
        guard !rows.isEmpty else { return [] }
        var inserted: Set<Int64> = []
        for chunk in rows.chunks(of: PostgresEventRow.rowsPerInsert) {
            var columns = PostgresEventRow.Columns()
            for row in chunk { try columns.append(row, node: node(for: row.new)) }
            for try await id in try await connection.execute(PostgresEventRow.Insert(columns: columns), logger: logger) { inserted.insert(id) }
        }
        // Repeats: their stored ids by dedupe key (a repeat within this batch
        // finds the first of its key, inserted above).
        let repeatedKeys = rows.filter { !inserted.contains($0.id.rawValue) }.map { $0.new.dedupeKey }
        var existing: [String: Int64] = [:]
        if !repeatedKeys.isEmpty {
            let keys = repeatedKeys.compactMap { $0 }
            for try await (id, key) in try await connection.query(
                "SELECT id, dedupe_key FROM event WHERE dedupe_key = ANY(\(keys))", logger: logger
            ).decode((Int64, String).self) {
                existing[key] = id
            }
        }
        return try rows.map { row in
            if inserted.contains(row.id.rawValue) { return Enqueued(id: row.id, wasStored: false) }
            guard let key = row.new.dedupeKey, let id = existing[key] else {
                throw QueueError(.other, "insert of event \(row.id) changed nothing")
            }
            return Enqueued(id: EventID(rawValue: id), wasStored: true)
        }
    }
}

/// The rows a batch settles, locked (a statement each connection prepares once).
struct LockRows: PostgresPreparedStatement {
    static let name = "msrpgw_lock_rows"
    static let sql = "SELECT \(EventRow.columns) FROM event WHERE id = ANY($1) ORDER BY id FOR UPDATE"
    typealias Row = PostgresRow
    let ids: [Int64]

    func makeBindings() throws -> PostgresBindings {
        var binds = PostgresBindings(capacity: 1)
        binds.append(ids)
        return binds
    }

    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

/// Every outcome of a batch in one UPDATE, from one array per column (a
/// statement each connection prepares once). An event handed to another node
/// while this one held it (its peer connected there: `assign`) is due at once
/// for that node, whatever wait this node's outcome gave it.
struct SettleRows: PostgresPreparedStatement {
    static let name = "msrpgw_settle_rows"
    static let sql = """
        UPDATE event AS e SET state = v.state, proof = v.proof, status_code = v.status_code, last_error = v.last_error,
          next_attempt_at = CASE WHEN v.state = 'queued' AND e.node IS NOT NULL AND e.node <> $9
            THEN least(v.next_attempt_at, v.updated_at) ELSE v.next_attempt_at END,
          attempts = v.attempts, lease_owner = NULL, updated_at = v.updated_at
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::bigint[], $7::integer[], $8::bigint[])
          AS v(id, state, proof, status_code, last_error, next_attempt_at, attempts, updated_at)
        WHERE e.id = v.id
        """
    typealias Row = ()
    let updates: [OutcomeUpdate]
    let node: Int64

    func makeBindings() throws -> PostgresBindings {
        var binds = PostgresBindings(capacity: 9)
        binds.append(updates.map(\.id))
        binds.append(updates.map(\.state))
        binds.append(NullableArray(updates.map(\.proof)))
        binds.append(NullableArray(updates.map { $0.statusCode.map(Int32.init) }))
        binds.append(NullableArray(updates.map(\.lastError)))
        binds.append(updates.map(\.nextAttemptAt))
        binds.append(updates.map { Int32($0.attempts) })
        binds.append(updates.map(\.updatedAt))
        binds.append(node)
        return binds
    }

    func decodeRow(_ row: PostgresRow) throws {}
}

/// The columns an outcome sets on a leased event: all of them computed from the
/// locked row, so that one UPDATE statement serves every kind of outcome.
struct OutcomeUpdate: Sendable {
    var id: Int64
    var state: String
    var proof: String?
    var statusCode: Int?
    var lastError: String?
    var nextAttemptAt: Int64
    var attempts: Int
    var updatedAt: Int64

    init(event: QueuedEvent, settlement: Settlement, stamp: Date) {
        id = event.id.rawValue
        state = settlement.state.rawValue
        proof = event.proof
        statusCode = event.statusCode
        lastError = event.lastError
        nextAttemptAt = Millis(event.nextAttemptAt)
        attempts = event.attempts
        updatedAt = Millis(stamp)
        switch settlement {
        case .delivered(let proof):
            self.proof = proof
        case .partial(let proof, let code, let reason):
            (self.proof, statusCode, lastError) = (proof, code, reason)
        case .retry(let at, let reason):
            (nextAttemptAt, lastError) = (Millis(at), reason)
        case .notReady(let at, let reason):
            (nextAttemptAt, lastError, attempts) = (Millis(at), reason, max(event.attempts - 1, 0))
        case .failed(let code, let reason), .dead(let code, let reason):
            (statusCode, lastError) = (code, reason)
        }
    }
}

extension Array {
    /// Consecutive slices of at most `size` elements.
    func chunks(of size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}

extension AsyncSequence where Self: Sendable {
    /// Every element (rows decoded from a result, say).
    func all() async throws -> [Element] {
        var elements: [Element] = []
        for try await element in self { elements.append(element) }
        return elements
    }
}
