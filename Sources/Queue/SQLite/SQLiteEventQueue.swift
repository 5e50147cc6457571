import Events
import Foundation
import GRDB

/// The queue on SQLite (GRDB `DatabasePool`, WAL). Enqueues are group-committed:
/// callers arriving while a transaction commits share the next one, so many
/// producers pay for one fsync, and each returns only once its own events are
/// durable. All database work runs on GRDB's own queues, never on the caller's
/// thread (NIO event loops must not block on SQLite).
public final class SQLiteEventQueue: EventQueue {
    public struct Configuration: Sendable {
        public var path: String
        /// `PRAGMA synchronous`: FULL (default) makes every commit durable on
        /// power loss; NORMAL in WAL mode only on application crash.
        public var synchronous: Synchronous
        /// This gateway node (0-1023), part of every event id.
        public var node: Int
        /// Retry policy per adapter; `defaultRetry` for the others.
        public var retry: [String: RetryPolicy]
        public var defaultRetry: RetryPolicy
        /// What is owed when a delivery ends: the gateway's `Reporter` (REPORTs,
        /// IMDNs), or `NoFollowUps` for a queue used on its own. No default: a
        /// gateway whose queue forgot it would owe its senders nothing.
        public var followUps: any FollowUpPolicy

        public enum Synchronous: String, Sendable { case full = "FULL", normal = "NORMAL", off = "OFF" }

        public init(
            path: String, followUps: any FollowUpPolicy, synchronous: Synchronous = .full, node: Int = 0, retry: [String: RetryPolicy] = [:],
            defaultRetry: RetryPolicy = .standard
        ) {
            self.path = path
            self.synchronous = synchronous
            self.node = node
            self.retry = retry
            self.defaultRetry = defaultRetry
            self.followUps = followUps
        }
    }

    public let configuration: Configuration
    let pool: DatabasePool
    private let ids: EventIDGenerator
    private let committer: GroupCommitter
    private let writes = FailureRun<QueueError>()
    /// The clock; tests move it.
    let now: @Sendable () -> Date

    /// Opens (creating or upgrading) the database. Throws a `QueueError` naming
    /// the cause for a corrupt file, a newer schema, a read-only or full disk.
    public init(_ configuration: Configuration, now: @escaping @Sendable () -> Date = { Date() }) throws(QueueError) {
        self.configuration = configuration
        self.now = now
        self.ids = EventIDGenerator(node: configuration.node)
        var config = GRDB.Configuration()
        config.busyMode = .timeout(10)
        do {
            pool = try DatabasePool(path: configuration.path, configuration: config)
            // On the writer, after the pool is open: GRDB sets `synchronous = NORMAL`
            // when it turns WAL on, after `prepareDatabase` has run, so a level set
            // there was silently lost (commits were never synced: durable on a
            // crash of the process, not of the machine).
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = \(configuration.synchronous.rawValue)") }
            try pool.read { db in try db.execute(sql: "SELECT count(*) FROM sqlite_master") }
            let migrator = SQLiteSchema.migrator
            if try pool.read({ try migrator.hasBeenSuperseded($0) }) {
                let applied = try pool.read { try migrator.appliedIdentifiers($0) }
                throw QueueError(.newerSchema, "\(configuration.path) has migrations \(applied.sorted()) beyond \(SQLiteSchema.known)")
            }
            try migrator.migrate(pool)
        } catch let error as QueueError {
            throw error
        } catch {
            throw QueueError(mapping: error, context: "opening \(configuration.path)")
        }
        // Leases and outcomes wait for the disk with the next commit that syncs
        // (FULL only: at NORMAL or OFF nothing waits for it anyway). Outcomes
        // wait up to 20 ms for another write's transaction: a success REPORT
        // that late is not seen, a transaction per outcome was (issue 15).
        committer = GroupCommitter(
            pool: pool, level: configuration.synchronous.rawValue,
            relaxedLevel: configuration.synchronous == .full ? Configuration.Synchronous.normal.rawValue : nil,
            companyWait: .milliseconds(20))
    }

    func policy(for adapter: String) -> RetryPolicy { configuration.retry[adapter] ?? configuration.defaultRetry }

    // MARK: - Enqueue

    public func enqueue(_ events: [NewEvent]) async throws(QueueError) -> [EventID] {
        try await enqueueNotingRepeats(events).map(\.id)
    }

    public func enqueueNotingRepeats(_ events: [NewEvent]) async throws(QueueError) -> [Enqueued] {
        try await enqueueNotingRepeats(events, claims: [])
    }

    public func enqueueNotingRepeats(_ events: [NewEvent], claims: [LeaseClaim?]) async throws(QueueError) -> [Enqueued] {
        guard !events.isEmpty else { return [] }
        return try await grouped("enqueue", enqueueOperation(events, claims: claims))
    }

    public func enqueueNotingRepeats(
        _ events: [NewEvent], claims: [LeaseClaim?], completion: @escaping @Sendable (Result<[Enqueued], QueueError>) -> Void
    ) {
        guard !events.isEmpty else { return completion(.success([])) }
        committer.submit(enqueueOperation(events, claims: claims)) { result in
            completion(self.settled("enqueue", result))
        }
    }

    /// The write of an enqueue, run in a group transaction.
    private func enqueueOperation(_ events: [NewEvent], claims: [LeaseClaim?]) -> @Sendable (Database) throws -> [Enqueued] {
        let stamp = now()
        let rows = events.enumerated().map { i, e in
            EventRow(new: e, id: ids.next(now: stamp), now: stamp, claim: i < claims.count && e.notBefore == nil ? claims[i] : nil)
        }
        // Bound here, on the caller's thread; one that fails is made again (and
        // its error thrown) in the transaction.
        let fixed = rows.map { try? $0.fixedArguments() }
        return { db in
            // A claim is granted only while nothing of its adapter is due: the
            // claimed event must not overtake events that wait for a lease
            // (an endpoint's backlog, expired leases, retries now due).
            var due: [String: Bool] = [:]
            return try zip(rows, fixed).map { row, fixed in
                var row = row
                if row.claim != nil {
                    let adapter = row.new.adapter
                    let blocked = try due[adapter] ?? Self.hasDue(adapter: adapter, at: Millis(stamp), db)
                    due[adapter] = blocked
                    if blocked { row.claim = nil }
                }
                let stored = try row.insertOrFind(db, fixed: fixed)
                if row.claim == nil, !stored.wasStored, row.dueAt <= Millis(stamp) { due[row.new.adapter] = true }
                return stored
            }
        }
    }

    /// Whether an event of `adapter` is due (an index probe: `event_due`).
    private static func hasDue(adapter: String, at stamp: Millis, _ db: Database) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: hasDueSQL), arguments: [adapter, stamp]) ?? false
    }

    // MARK: - Lease and complete

    public func lease(
        adapter: String, owner: String, limit: Int, for duration: Duration, excludingTargets: [String]
    ) async throws(QueueError) -> [QueuedEvent] {
        let nowMillis = Millis(now())
        let until = nowMillis + Millis(duration)
        // Up to 64 excluded targets in the statement (one cached statement per
        // count); events for the others are leased, and the dispatcher's lanes
        // hold them in order until they can go.
        let excluded = Array(excludingTargets.prefix(64))
        let due = excluded.isEmpty ? Self.dueSQL : Self.dueExcludingSQL(excluded.count)
        let arguments: StatementArguments = excluded.isEmpty
            ? [owner, until, nowMillis, adapter, nowMillis, limit]
            : StatementArguments([owner, until, nowMillis, adapter, nowMillis, Self.dueWindow] as [any DatabaseValueConvertible])
                + StatementArguments(excluded) + [limit]
        return try await grouped("lease", mayWaitForDisk: true) { db in
            // Decoded as the statement steps (a cursor's row reads the statement's
            // columns in place; `fetchAll` would copy every row first).
            let rows = try Row.fetchCursor(db.cachedStatement(sql: """
                UPDATE event SET state = 'leased', lease_owner = ?, next_attempt_at = ?, attempts = attempts + 1, updated_at = ?
                WHERE id IN (\(due))
                RETURNING \(EventRow.columns)
                """), arguments: arguments)
            return try Array(rows.map { try EventRow.decode($0) }).sorted { $0.id < $1.id }
        }
    }

    @discardableResult
    public func complete(_ id: EventID, owner: String, outcome: DeliveryOutcome) async throws(QueueError) -> EventState {
        try await finish(id, owner: owner, outcome: outcome, readyAt: nil).state
    }

    @discardableResult
    public func complete(leased event: QueuedEvent, owner: String, outcome: DeliveryOutcome) async throws(QueueError) -> Completion {
        try await finish(event.id, owner: owner, outcome: outcome, readyAt: nil, leased: event)
    }

    @discardableResult
    public func postpone(_ id: EventID, owner: String, until: Date, reason: String) async throws(QueueError) -> EventState {
        try await finish(id, owner: owner, outcome: .notReady(after: .zero, reason: reason), readyAt: until).state
    }

    /// Records an outcome; a not-ready one is due again at `readyAt` when given.
    /// Every statement here is a cached one: `execute(sql:)` compiles its SQL
    /// each time, and compiling (GRDB's authorizer reading each column) was a
    /// third of the delivery path's CPU (found by the XMPP backlog benchmark:
    /// 3.3 k → 5.7-6.4 k deliveries/s).
    /// Only the columns the outcome needs are read; the whole row (for what is
    /// owed) only when the delivery ended and the caller gave no `leased` copy.
    private func finish(
        _ id: EventID, owner: String, outcome: DeliveryOutcome, readyAt: Date?, leased: QueuedEvent? = nil
    ) async throws(QueueError) -> Completion {
        let stamp = now()
        let policy = policy
        let followUps = configuration.followUps
        let ids = ids
        return try await grouped("complete", mayWaitForDisk: true, mayWaitForCompany: true) { db in
            // The common case in one statement: a delivery proven, of an event the
            // caller holds leased. Its checks are in the WHERE; when it changes
            // nothing, the general path below says why.
            if case .delivered(let proof) = outcome, let leased {
                try db.cachedStatement(sql: """
                    UPDATE event SET state = 'delivered', proof = ?, lease_owner = NULL, updated_at = ?
                    WHERE id = ? AND state = 'leased' AND lease_owner = ?
                    """).execute(arguments: [proof, Millis(stamp), id.rawValue, owner])
                if db.changesCount == 1 {
                    return try Self.owedFollowUps(of: leased, .delivered(proof: proof), state: .delivered, followUps, ids, stamp, db)
                }
            }
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT state, lease_owner, attempts, retry_base_at, adapter FROM event WHERE id = ?"),
                                             arguments: [id.rawValue])
            else { throw QueueError(.notFound, "event \(id)") }
            let state: String = row[0]
            let leaseOwner: String? = row[1]
            guard state == EventState.leased.rawValue, leaseOwner == owner else {
                throw QueueError(.leaseLost, "event \(id) is \(state), leased by \(leaseOwner ?? "nobody")")
            }
            let retryBase = Date(millis: row[3])
            let settlement = Settlement(outcome, attempts: row[2], retryBase: retryBase, now: stamp, readyAt: readyAt, policy: policy(row[4]))
            // Read before the update below: what is owed is judged on the event as leased.
            let ended = try settlement.final.map { final in (final, try leased ?? Self.storedEvent(id, db)) }
            switch settlement {
            case .delivered(let proof):
                try db.cachedStatement(sql: """
                    UPDATE event SET state = 'delivered', proof = ?, lease_owner = NULL, updated_at = ? WHERE id = ?
                    """).execute(arguments: [proof, Millis(stamp), id.rawValue])
            case .retry(let at, let reason):
                try db.cachedStatement(sql: """
                    UPDATE event SET state = 'queued', next_attempt_at = ?, last_error = ?, lease_owner = NULL, updated_at = ?
                    WHERE id = ?
                    """).execute(arguments: [Millis(at), reason, Millis(stamp), id.rawValue])
            case .partial(let proof, let code, let reason):
                try db.cachedStatement(sql: """
                    UPDATE event SET state = 'delivered', proof = ?, status_code = ?, last_error = ?, lease_owner = NULL, updated_at = ?
                    WHERE id = ?
                    """).execute(arguments: [proof, code, reason, Millis(stamp), id.rawValue])
            case .notReady(let at, let reason):
                try db.cachedStatement(sql: """
                    UPDATE event SET state = 'queued', attempts = max(attempts - 1, 0), next_attempt_at = ?, last_error = ?,
                      lease_owner = NULL, updated_at = ?
                    WHERE id = ?
                    """).execute(arguments: [Millis(at), reason, Millis(stamp), id.rawValue])
            case .failed(let code, let reason), .dead(let code, let reason):
                try db.cachedStatement(sql: """
                    UPDATE event SET state = ?, status_code = ?, last_error = ?, lease_owner = NULL, updated_at = ?
                    WHERE id = ?
                    """).execute(arguments: [settlement.state.rawValue, code, reason, Millis(stamp), id.rawValue])
            }
            guard let (final, event) = ended else { return Completion(state: settlement.state, followUpAdapters: []) }
            return try Self.owedFollowUps(of: event, final, state: settlement.state, followUps, ids, stamp, db)
        }
    }

    /// Stores what an ended delivery owes (REPORTs, IMDNs) in its transaction.
    private static func owedFollowUps(
        of event: QueuedEvent, _ final: FinalOutcome, state: EventState, _ followUps: any FollowUpPolicy, _ ids: EventIDGenerator, _ stamp: Date,
        _ db: Database
    ) throws -> Completion {
        var owed: Set<String> = []
        for new in followUps.followUps(for: event, outcome: final) {
            _ = try EventRow(new: new, id: ids.next(now: stamp), now: stamp).insertOrFind(db)
            owed.insert(new.adapter)
        }
        return Completion(state: state, followUpAdapters: owed)
    }

    /// The whole stored event, inside a transaction.
    private static func storedEvent(_ id: EventID, _ db: Database) throws -> QueuedEvent {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT \(EventRow.columns) FROM event WHERE id = ?"), arguments: [id.rawValue])
        else { throw QueueError(.notFound, "event \(id)") }
        return try EventRow.decode(row)
    }

    public func record(_ news: LaterNews, of id: EventID) async throws(QueueError) -> EventState? {
        let stamp = now()
        let followUps = configuration.followUps
        let ids = ids
        return try await grouped("record news") { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT \(EventRow.columns) FROM event WHERE id = ?"), arguments: [id.rawValue])
            else { return nil }
            let event = try EventRow.decode(row)
            guard event.state == .delivered else { return event.state }
            switch news {
            case .delayed(let reason):
                try db.execute(sql: "UPDATE event SET last_error = ?, updated_at = ? WHERE id = ?",
                               arguments: ["delayed: \(reason)", Millis(stamp), id.rawValue])
            case .bounced(let code, let reason):
                try db.execute(sql: "UPDATE event SET state = 'bounced', status_code = ?, last_error = ?, updated_at = ? WHERE id = ?",
                               arguments: [code, reason, Millis(stamp), id.rawValue])
                for new in followUps.followUps(for: event, outcome: .failed(code: code, reason: reason)) {
                    _ = try EventRow(new: new, id: ids.next(now: stamp), now: stamp).insertOrFind(db)
                }
            }
            return .delivered
        }
    }

    public func releaseLeases(ownerPrefix: String) async throws(QueueError) -> Int {
        let stamp = Millis(now())
        return try await grouped("release leases") { db in
            try db.execute(sql: """
                UPDATE event SET state = 'queued', lease_owner = NULL, attempts = max(attempts - 1, 0), next_attempt_at = ?, updated_at = ?
                WHERE state = 'leased' AND substr(lease_owner, 1, length(?)) = ?
                """, arguments: [stamp, stamp, ownerPrefix, ownerPrefix])
            return db.changesCount
        }
    }

    public func makeDue(adapter: String, targets: [String]) async throws(QueueError) -> Int {
        guard !targets.isEmpty else { return 0 }
        return try await grouped("make due") { db in
            var changed = 0
            for target in targets {
                try db.cachedStatement(sql: Self.makeDueSQL).execute(arguments: [adapter, target])
                changed += db.changesCount
            }
            return changed
        }
    }

    public func waitingTargets(adapter: String, notDueBefore date: Date) async throws(QueueError) -> Set<String> {
        try await read("waiting targets") { db in
            Set(try String.fetchAll(db.cachedStatement(sql: Self.waitingTargetsSQL), arguments: [adapter, Millis(date)]))
        }
    }

    public func pendingCount(adapter: String, target: String) async throws(QueueError) -> Int {
        try await read("pending count") { db in
            try Int.fetchOne(db.cachedStatement(sql: Self.pendingCountSQL), arguments: [adapter, target]) ?? 0
        }
    }

    public func extendLease(_ id: EventID, owner: String, by duration: Duration) async throws(QueueError) {
        let until = Millis(now()) + Millis(duration)
        try await grouped("extend lease", mayWaitForDisk: true) { db in
            try db.cachedStatement(sql: """
                UPDATE event SET next_attempt_at = ? WHERE id = ? AND state = 'leased' AND lease_owner = ?
                """).execute(arguments: [until, id.rawValue, owner])
            if db.changesCount == 0 { throw QueueError(.leaseLost, "event \(id) is not leased by \(owner)") }
        }
    }

    // MARK: - Inspection and operation

    public func event(_ id: EventID) async throws(QueueError) -> QueuedEvent? {
        try await read("show") { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT \(EventRow.columns) FROM event WHERE id = ?"), arguments: [id.rawValue]).map(EventRow.decode)
        }
    }

    public func events(_ filter: EventFilter) async throws(QueueError) -> [QueuedEvent] {
        try await read("list") { db in
            var clauses: [String] = []
            var args: [any DatabaseValueConvertible] = []
            if let s = filter.state { clauses.append("state = ?"); args.append(s.rawValue) }
            if let a = filter.adapter { clauses.append("adapter = ?"); args.append(a) }
            if let k = filter.kind { clauses.append("kind = ?"); args.append(k.rawValue) }
            if let s = filter.sessionID { clauses.append("session_id = ?"); args.append(s) }
            if let b = filter.before { clauses.append("id < ?"); args.append(b.rawValue) }
            let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
            args.append(max(1, min(filter.limit, 1000)))
            return try Row.fetchAll(db, sql: Self.listSQL(whereSQL),
                                    arguments: StatementArguments(args)).map(EventRow.decode)
        }
    }

    /// The queries whose plans `QueryPlanTests` checks (indexed, no sort of a whole state).
    static let dueSQL = """
        SELECT id FROM event WHERE adapter = ? AND state IN ('queued', 'leased') AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?
        """
    /// Due from when it was queued, those already due included: the target's
    /// events are then leased in the order they were queued.
    /// How many of the oldest due events a lease that leaves targets out looks
    /// at: a bounded walk of the index, whatever the backlog of the endpoints
    /// left out. (Another endpoint's events behind a longer backlog wait until
    /// the front drains.) The window is read in index order (a co-routine, no
    /// sort), and the filter keeps that order.
    static let dueWindow = 4096
    static func dueExcludingSQL(_ excluded: Int) -> String {
        """
        SELECT id FROM (SELECT id, target, next_attempt_at FROM event
          WHERE adapter = ? AND state IN ('queued', 'leased') AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?)
        WHERE target NOT IN (\(Array(repeating: "?", count: excluded).joined(separator: ", "))) LIMIT ?
        """
    }
    static let hasDueSQL = "SELECT EXISTS (SELECT 1 FROM event WHERE adapter = ? AND state IN ('queued', 'leased') AND next_attempt_at <= ?)"
    static let purgeFilesSQL = """
        SELECT body_path FROM event WHERE state IN ('delivered', 'bounced') AND id < ? AND updated_at < ? AND body_path IS NOT NULL
        """
    static let purgeSQL = "DELETE FROM event WHERE state IN ('delivered', 'bounced') AND id < ? AND updated_at < ?"
    static let makeDueSQL = """
        UPDATE event SET next_attempt_at = created_at
        WHERE adapter = ? AND target = ? AND state IN ('queued', 'leased') AND state = 'queued' AND next_attempt_at > created_at
        """
    static let waitingTargetsSQL = "SELECT DISTINCT target FROM event WHERE adapter = ? AND next_attempt_at >= ? AND state IN ('queued', 'leased') AND state = 'queued'"
    static let pendingCountSQL = "SELECT count(*) FROM event WHERE adapter = ? AND target = ? AND state IN ('queued', 'leased')"
    static func listSQL(_ whereSQL: String) -> String { "SELECT \(EventRow.columns) FROM event \(whereSQL) ORDER BY id DESC LIMIT ?" }
    static let countsSQL = "SELECT adapter, state, n FROM event_count WHERE n > 0"
    static let oldestDueSQL = "SELECT min(next_attempt_at) FROM event WHERE adapter = ? AND state IN ('queued', 'leased')"

    public func stats() async throws(QueueError) -> QueueStats {
        let nowMillis = Millis(now())
        return try await read("stats") { db in
            // Kept by triggers (schema v3): no scan of the events.
            var counts: [QueueStats.Key: Int] = [:]
            for row in try Row.fetchAll(db.cachedStatement(sql: Self.countsSQL)) {
                guard let state = EventState(rawValue: row["state"]) else { continue }
                counts[QueueStats.Key(adapter: row["adapter"], state: state)] = row["n"]
            }
            // The oldest due event, adapter by adapter: the first entry of each
            // adapter's part of the due index.
            var oldest: Int64?
            for adapter in Set(counts.keys.map(\.adapter)) {
                guard let first = try Int64.fetchOne(db.cachedStatement(sql: Self.oldestDueSQL), arguments: [adapter]), first <= nowMillis else { continue }
                oldest = min(oldest ?? first, first)
            }
            return QueueStats(counts: counts, oldestDueAge: oldest.map { .milliseconds(nowMillis - $0) })
        }
    }

    public func replay(_ id: EventID) async throws(QueueError) -> Bool {
        let stamp = Millis(now())
        return try await write("replay") { db in
            try db.execute(sql: """
                UPDATE event SET state = 'queued', attempts = 0, next_attempt_at = ?, retry_base_at = ?, lease_owner = NULL,
                  status_code = NULL, updated_at = ?
                WHERE id = ? AND state IN ('failed', 'dead')
                """, arguments: [stamp, stamp, stamp, id.rawValue])
            return db.changesCount > 0
        }
    }

    public func purge(deliveredBefore date: Date) async throws(QueueError) -> Int {
        let cutoff = Millis(date)
        // Created before the cutoff too (ids are ordered by creation): a range of
        // (state, id), not a walk of every delivered event.
        let arguments: StatementArguments = [EventIDGenerator.firstID(atOrAfter: date).rawValue, cutoff]
        let (count, files) = try await write("purge") { db -> (Int, [String]) in
            let files = try String.fetchAll(db, sql: Self.purgeFilesSQL, arguments: arguments)
            try db.execute(sql: Self.purgeSQL, arguments: arguments)
            return (db.changesCount, files)
        }
        for f in files { try? FileManager.default.removeItem(atPath: f) }
        return count
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    public func integrityCheck() async throws(QueueError) -> String {
        try await read("integrity check") { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "" }
    }

    // MARK: - Plumbing

    /// A write that shares its transaction (and fsync) with concurrent ones.
    /// `mayWaitForDisk`, `mayWaitForCompany`: see `GroupCommitter.perform`.
    private func grouped<T: Sendable>(
        _ what: String, mayWaitForDisk: Bool = false, mayWaitForCompany: Bool = false, _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(QueueError) -> T {
        let result: Result<T, any Error>
        do {
            result = .success(try await committer.perform(mayWaitForDisk: mayWaitForDisk, mayWaitForCompany: mayWaitForCompany, body))
        } catch {
            result = .failure(error)
        }
        return try settled(what, result).get()
    }

    /// A group write's result, its error as a `QueueError`, noted in `writes`.
    private func settled<T>(_ what: String, _ result: Result<T, any Error>) -> Result<T, QueueError> {
        switch result {
        case .success(let value):
            // Only a new row proves the disk takes data again: updates in place
            // (a retry recorded, a lease) still commit on a full disk.
            if what == "enqueue" { writes.succeeded() }
            return .success(value)
        case .failure(let error as QueueError):
            // An operation's own refusal (not found, lease lost) says nothing of the disk.
            if error.isStorageFailure { writes.failed(error) }
            return .failure(error)
        case .failure(let error):
            let mapped = QueueError(mapping: error, context: what)
            writes.failed(mapped)
            return .failure(mapped)
        }
    }

    public var writeFailure: QueueWriteFailure? { writes.current.map { QueueWriteFailure(since: $0.since, error: $0.failure) } }

    /// A write of its own (not grouped), committed at the queue's level.
    private func write<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(QueueError) -> T {
        let committer = committer
        do {
            return try await pool.writeWithoutTransaction { db in try committer.transaction(db, relaxed: false, body) }
        } catch let error as QueueError {
            throw error
        } catch {
            let mapped = QueueError(mapping: error, context: what)
            writes.failed(mapped)
            throw mapped
        }
    }

    private func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(QueueError) -> T {
        do {
            return try await pool.read(body)
        } catch let error as QueueError {
            throw error
        } catch {
            throw QueueError(mapping: error, context: what)
        }
    }
}

typealias Millis = Int64

extension Millis {
    init(_ date: Date) { self = Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    init(_ d: Duration) { self = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000 }
}

extension Date {
    init(millis: Int64) { self.init(timeIntervalSince1970: Double(millis) / 1000) }
}

extension QueueError {
    /// Maps SQLite's result codes to the causes an operator can act on.
    init(mapping error: any Error, context: String) {
        guard let db = error as? DatabaseError else {
            self.init(.other, "\(context): \(error)")
            return
        }
        let detail = "\(context): \(db.message ?? db.description)"
        switch db.resultCode {
        case .SQLITE_FULL: self.init(.diskFull, detail)
        case .SQLITE_READONLY: self.init(.readOnly, detail)
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: self.init(.corrupt, detail)
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH: self.init(.cannotOpen, detail)
        case .SQLITE_BUSY, .SQLITE_LOCKED: self.init(.busy, detail)
        case .SQLITE_IOERR: self.init(.io, detail)
        default: self.init(.other, detail)
        }
    }
}
