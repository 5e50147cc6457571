import Events
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import PostgresNIO

/// The queue on PostgreSQL (postgres-nio), for several gateway nodes sharing
/// one queue. The same contract as `SQLiteEventQueue`: an enqueue returns once
/// its events are committed, outcomes and what they owe commit together.
/// Concurrent writes are group-committed (`PostgresWriteBatcher`); leases claim
/// rows with `FOR UPDATE SKIP LOCKED`, so nodes leasing at once never wait on,
/// or take, each other's events.
///
/// Times are the node's clock, in milliseconds, as on SQLite: nodes need their
/// clocks in step (NTP), as any lease-based queue does.
public final class PostgresEventQueue: SharedQueue {
    public struct Configuration: Sendable {
        public var location: PostgresLocation
        public var password: String?
        /// Connections this node opens at most.
        public var poolSize: Int
        /// How long an operation may take before the caller is told the queue
        /// is unavailable (PostgreSQL down or unreachable): new work is then
        /// refused, never acknowledged.
        public var operationTimeout: Duration
        /// This gateway node (0-1023): part of every event id, so that ids made
        /// on different nodes never collide. Each node needs its own.
        public var node: Int
        public var retry: [String: RetryPolicy]
        public var defaultRetry: RetryPolicy
        public var followUps: any FollowUpPolicy
        /// Which events only one node may deliver (the gateway's `SessionAffinity`).
        public var affinity: (any NodeAffinity)?
        /// The prefix of this node's lease owners: what the others give back when it is gone.
        public var ownerPrefix: String
        /// How often this node says it is alive ...
        public var heartbeat: Duration
        /// ... and how long after its last heartbeat the others take its leases back.
        public var nodeTimeout: Duration
        /// Where this node writes the large bodies of the events it leases
        /// (emptied at start); by default a directory of its own under /tmp.
        public var bodyCache: String?

        public init(
            location: PostgresLocation, password: String? = nil, followUps: any FollowUpPolicy, poolSize: Int = 8,
            operationTimeout: Duration = .seconds(10), node: Int = 0, retry: [String: RetryPolicy] = [:], defaultRetry: RetryPolicy = .standard,
            affinity: (any NodeAffinity)? = nil, ownerPrefix: String? = nil, heartbeat: Duration = .seconds(2), nodeTimeout: Duration = .seconds(10),
            bodyCache: String? = nil
        ) {
            self.bodyCache = bodyCache
            self.affinity = affinity
            self.ownerPrefix = ownerPrefix ?? "node-\(node)/"
            self.heartbeat = heartbeat
            self.nodeTimeout = nodeTimeout
            self.location = location
            self.password = password
            self.poolSize = poolSize
            self.operationTimeout = operationTimeout
            self.node = node
            self.retry = retry
            self.defaultRetry = defaultRetry
            self.followUps = followUps
        }
    }

    public let configuration: Configuration
    let store: PostgresStore
    var client: PostgresClient { store.client }
    var logger: Logger { store.logger }
    let now: @Sendable () -> Date
    private let running: Task<Void, Never>
    /// The queues' connections on a thread of their own: a storage round trip
    /// never waits behind the MSRP, SIP or HTTP work of the shared event loops
    /// (in a full test run, whose tests all share those, connections to a
    /// healthy server went unanswered for 30 s).
    ///
    /// One for the process, never shut down: work the client or a timed-out
    /// call still has in flight after a queue has gone (a keep-alive, a close,
    /// a late name lookup) then runs on a loop that is there. Each queue shut
    /// its own loop down once, and such late work trapped in NIO ("leaking
    /// promise") or logged "Cannot schedule tasks on an EventLoop that has
    /// already shut down".
    private static let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let registry: NodeRegistry
    private let listener: NewEventListener
    private let heartbeat = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let writes = FailureRun<QueueError>()
    private let batcher: PostgresWriteBatcher
    let bodies: PostgresBodies

    /// Connects, and creates or upgrades the schema. Throws a `QueueError`
    /// naming the cause (unreachable, refused login, a newer schema).
    public init(_ configuration: Configuration, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) async throws(QueueError) {
        self.configuration = configuration
        self.now = now
        bodies = try PostgresBodies(cache: configuration.bodyCache
            ?? NSTemporaryDirectory() + "msrpgw-leased-bodies-\(configuration.node)-" + UUID().uuidString.prefix(8).lowercased())
        let clientConfiguration = try configuration.location.clientConfiguration(
            password: configuration.password, poolSize: configuration.poolSize, connectTimeout: configuration.operationTimeout)
        let loops = Self.loops
        let client = PostgresClient(configuration: clientConfiguration, eventLoopGroup: loops, backgroundLogger: logger)
        let store = PostgresStore(client: client, logger: logger, ids: EventIDGenerator(node: configuration.node), configuration: configuration)
        self.store = store
        running = Task { await client.run() }
        let timeout = configuration.operationTimeout
        // Each group transaction has the operation time-out: its callers hear
        // in bounded time, and one that timed out never commits later.
        batcher = PostgresWriteBatcher { batch in
            try await withDeadline(timeout, "group commit") {
                // Only new events: one INSERT is a transaction of its own (no
                // BEGIN and COMMIT round trips, a third of the time of a batch).
                if PostgresWriteBatcher.onlyNewEvents(batch) {
                    return try await store.client.withConnection { connection in try await store.apply(batch, on: connection) }
                }
                return try await store.transaction { connection in try await store.apply(batch, on: connection) }
            }
        }
        let registry = NodeRegistry(store: store, now: now)
        self.registry = registry
        let loop = loops.next()
        do {
            let connection = try configuration.location.connectionConfiguration(password: configuration.password, connectTimeout: timeout)
            listener = NewEventListener(configuration: connection, loop: loop, logger: logger)
            try await withDeadline(timeout, "connecting to \(configuration.location)") {
                try await PostgresSchema.migrate(connection, on: loop, logger: logger, context: configuration.location.description)
            }
            try await withDeadline(timeout, "registering node \(configuration.node)") { try await registry.register() }
        } catch {
            running.cancel()
            _ = await running.result
            throw error
        }
        heartbeat.withLockedValue { $0 = Task { await registry.run() } }
    }

    /// Leaves the cluster (the other nodes need not wait for this one's
    /// heartbeat to lapse) and closes the connections.
    public func shutdown() async {
        await listener.stop()
        heartbeat.withLockedValue { $0?.cancel() }
        await registry.deregister()
        running.cancel()
        _ = await running.result
        // This node's copies of leased bodies: its leases were given back.
        try? FileManager.default.removeItem(atPath: bodies.cache)
    }

    deinit {
        heartbeat.withLockedValue { $0?.cancel() }
        running.cancel()
        let (cache, listener) = (bodies.cache, listener)
        Task {
            await listener.stop()
            try? FileManager.default.removeItem(atPath: cache)  // as `shutdown` does
        }
    }

    /// Takes out nodes whose heartbeat lapsed now (the heartbeat does it every
    /// beat); for tests.
    func reapLapsedNodes() async throws -> [(Int, Int)] { try await registry.reap() }

    public func onNewEvents(_ handler: @escaping @Sendable (Set<String>) -> Void) { listener.add(handler) }

    // MARK: - Enqueue and outcomes

    public func enqueue(_ events: [NewEvent]) async throws(QueueError) -> [EventID] {
        try await enqueueNotingRepeats(events).map(\.id)
    }

    public func enqueueNotingRepeats(_ events: [NewEvent]) async throws(QueueError) -> [Enqueued] {
        guard !events.isEmpty else { return [] }
        let stamp = now()
        let stored = events.map(PostgresBodies.tableBody)
        let rows = stored.map { EventRow(new: $0.0, id: store.ids.next(now: stamp), now: stamp) }
        let result: [Enqueued]
        if stored.contains(where: { $0.file != nil }) {
            result = try await enqueue(rows, files: stored.map(\.file))
        } else {
            let batcher = batcher
            result = try await writing("enqueue", bounded: false) { try await batcher.enqueue(rows) }
        }
        writes.succeeded()
        return result
    }

    /// Events with bodies in files: stored with their bodies in one
    /// transaction of their own (a large body is many statements: not one for
    /// the group commit to wait on), the files deleted once it commits.
    private func enqueue(_ rows: [EventRow], files: [String?]) async throws(QueueError) -> [Enqueued] {
        let store = store
        let size = rows.reduce(Int64(0)) { $0 + $1.new.body.size }
        let result = try await withDeadline(timeout(moving: size), "enqueue with bodies") {
            try await store.transaction { connection in
                let enqueued = try await store.insert(rows, on: connection)
                for ((row, file), outcome) in zip(zip(rows, files), enqueued) where !outcome.wasStored {
                    if let file { try await PostgresBodies.upload(file, event: row.id, on: connection, logger: store.logger) }
                }
                return enqueued
            }
        }
        for case let file? in files { unlink(file) }
        return result
    }

    @discardableResult
    public func complete(_ id: EventID, owner: String, outcome: DeliveryOutcome) async throws(QueueError) -> EventState {
        try await finish(PostgresWriteBatcher.Finish(id: id, owner: owner, outcome: outcome, readyAt: nil, stamp: now()))
    }

    @discardableResult
    public func postpone(_ id: EventID, owner: String, until: Date, reason: String) async throws(QueueError) -> EventState {
        try await finish(PostgresWriteBatcher.Finish(
            id: id, owner: owner, outcome: .notReady(after: .zero, reason: reason), readyAt: until, stamp: now()))
    }

    private func finish(_ finish: PostgresWriteBatcher.Finish) async throws(QueueError) -> EventState {
        let batcher = batcher
        defer { bodies.forget(finish.id) }
        return try await writing("complete", bounded: false) { try await batcher.finish(finish) }
    }

    public func record(_ news: LaterNews, of id: EventID) async throws(QueueError) -> EventState? {
        let stamp = now()
        let store = store
        return try await writing("record news") {
            try await store.transaction { connection -> EventState? in
                let query: PostgresQuery = "SELECT \(unescaped: EventRow.columns) FROM event WHERE id = \(id.rawValue) FOR UPDATE"
                guard let row = try await connection.query(query, logger: store.logger).collect().first else { return nil }
                let event = try PostgresEventRow.decode(row)
                guard event.state == .delivered else { return event.state }
                switch news {
                case .delayed(let reason):
                    try await connection.query("""
                        UPDATE event SET last_error = \("delayed: \(reason)"), updated_at = \(Millis(stamp)) WHERE id = \(id.rawValue)
                        """, logger: store.logger)
                case .bounced(let code, let reason):
                    try await connection.query("""
                        UPDATE event SET state = 'bounced', status_code = \(code), last_error = \(reason), updated_at = \(Millis(stamp))
                        WHERE id = \(id.rawValue)
                        """, logger: store.logger)
                    let owed = store.configuration.followUps.followUps(for: event, outcome: .failed(code: code, reason: reason))
                    _ = try await store.insert(owed.map { EventRow(new: $0, id: store.ids.next(now: stamp), now: stamp) }, on: connection)
                }
                return .delivered
            }
        }
    }

    // MARK: - Leases

    /// Due events of the adapter in queue order, claimed with SKIP LOCKED: rows
    /// another node is claiming or settling right now are passed over, not
    /// waited for.
    public func lease(
        adapter: String, owner: String, limit: Int, for duration: Duration, excludingTargets: [String]
    ) async throws(QueueError) -> [QueuedEvent] {
        let nowMillis = Millis(now())
        // At most 64 targets left out, as on SQLite: events for the others are
        // leased, and the dispatcher's lanes hold them in order until they can go.
        let statement = LeaseDue(
            owner: owner, until: nowMillis + Millis(duration), now: nowMillis, adapter: adapter, limit: Int64(limit),
            node: Int64(configuration.node), excluding: Array(excludingTargets.prefix(64)))
        let leased = try await writing("lease") {
            let rows = statement.excluding.isEmpty
                ? try await self.client.execute(statement, logger: self.logger).all()
                : try await self.client.execute(LeaseDueExcluding(statement), logger: self.logger).all()
            return try rows.map { row throws(QueueError) in try PostgresEventRow.decode(row) }.sorted { $0.id < $1.id }
        }
        return await withBodies(leased)
    }

    /// The operation time-out for moving a body of `size` bytes: a second
    /// more per 8 MiB.
    private func timeout(moving size: Int64) -> Duration { configuration.operationTimeout + .seconds(size / (8 << 20)) }

    /// Leased events whose bodies are in `event_body`, with them written to
    /// this node's files. One whose body cannot be read now is left out (its
    /// lease expires and it is due again).
    private func withBodies(_ events: [QueuedEvent]) async -> [QueuedEvent] {
        guard events.contains(where: { if case .file(let path, _) = $0.body { PostgresBodies.isInTable(path) } else { false } }) else { return events }
        var out: [QueuedEvent] = []
        for var event in events {
            if case .file(let path, let size) = event.body, PostgresBodies.isInTable(path) {
                do {
                    let (bodies, client, logger, id) = (bodies, client, logger, event.id)
                    let file = try await withDeadline(timeout(moving: size), "reading the body of \(id)") {
                        try await bodies.materialize(id, client: client, logger: logger)
                    }
                    event.body = .file(path: file, size: size)
                } catch {
                    bodies.forget(event.id)
                    logger.warning("cannot read a leased event's body; it is due again when its lease expires", metadata: [
                        "event": "\(event.id)", "error": "\(error)"])
                    continue
                }
            }
            out.append(event)
        }
        return out
    }

    public func extendLease(_ id: EventID, owner: String, by duration: Duration) async throws(QueueError) {
        let until = Millis(now()) + Millis(duration)
        let changed = try await writing("extend lease") {
            try await self.client.query("""
                UPDATE event SET next_attempt_at = \(until) WHERE id = \(id.rawValue) AND state = 'leased' AND lease_owner = \(owner) RETURNING id
                """, logger: self.logger).collect().count
        }
        if changed == 0 { throw QueueError(.leaseLost, "event \(id) is not leased by \(owner)") }
    }

    public func releaseLeases(ownerPrefix: String) async throws(QueueError) -> Int {
        let stamp = Millis(now())
        return try await writing("release leases") {
            try await self.client.query("""
                UPDATE event SET state = 'queued', lease_owner = NULL, attempts = greatest(attempts - 1, 0), next_attempt_at = \(stamp),
                  updated_at = \(stamp)
                WHERE state = 'leased' AND starts_with(lease_owner, \(ownerPrefix)) RETURNING id
                """, logger: self.logger).collect().count
        }
    }

    public func makeDue(adapter: String, targets: [String]) async throws(QueueError) -> Int {
        guard !targets.isEmpty else { return 0 }
        return try await writing("make due") {
            try await self.client.query(PostgresQuery(unsafeSQL: Self.makeDueSQL, binds: Self.binds(adapter, targets)), logger: self.logger)
                .collect().count
        }
    }

    public func waitingTargets(adapter: String, notDueBefore date: Date) async throws(QueueError) -> Set<String> {
        try await reading("waiting targets") {
            Set(try await self.client.query(
                PostgresQuery(unsafeSQL: Self.waitingTargetsSQL, binds: Self.binds(adapter, Millis(date))), logger: self.logger
            ).decode(String.self).all())
        }
    }

    public func pendingCount(adapter: String, target: String) async throws(QueueError) -> Int {
        try await reading("pending count") {
            var count = 0
            for try await n in try await self.client.query(
                PostgresQuery(unsafeSQL: Self.pendingCountSQL, binds: Self.binds(adapter, target)), logger: self.logger
            ).decode(Int64.self) {
                count = Int(n)
            }
            return count
        }
    }

    // MARK: - Inspection and operation

    public func event(_ id: EventID) async throws(QueueError) -> QueuedEvent? {
        try await reading("show") {
            try await self.client.query("SELECT \(unescaped: EventRow.columns) FROM event WHERE id = \(id.rawValue)", logger: self.logger)
                .collect().first.map { row throws(QueueError) in try PostgresEventRow.decode(row) }
        }
    }

    public func events(_ filter: EventFilter) async throws(QueueError) -> [QueuedEvent] {
        var clauses: [String] = []
        var binds = PostgresBindings()
        func bind(_ clause: String, _ value: some PostgresDynamicTypeEncodable) {
            binds.append(value)
            clauses.append("\(clause) $\(binds.count)")
        }
        if let s = filter.state { bind("state =", s.rawValue) }
        if let a = filter.adapter { bind("adapter =", a) }
        if let k = filter.kind { bind("kind =", k.rawValue) }
        if let s = filter.sessionID { bind("session_id =", s) }
        if let b = filter.before { bind("id <", b.rawValue) }
        let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        binds.append(max(1, min(filter.limit, 1000)))
        let query = PostgresQuery(unsafeSQL: Self.listSQL(whereSQL, limit: "$\(binds.count)"), binds: binds)
        return try await reading("list") {
            try await self.client.query(query, logger: self.logger).collect().map { row throws(QueueError) in try PostgresEventRow.decode(row) }
        }
    }

    /// The counts from `event_count` (folded together first, so that the table
    /// stays a few rows per adapter and state), and the oldest due event from
    /// the first entry of each adapter's part of the due index.
    public func stats() async throws(QueueError) -> QueueStats {
        let nowMillis = Millis(now())
        let store = store
        return try await writing("stats") {
            try await store.transaction { connection in
                try await connection.query(PostgresQuery(unsafeSQL: Self.foldCountsSQL), logger: store.logger)
                var counts: [QueueStats.Key: Int] = [:]
                for try await (adapter, state, n) in try await connection.query(PostgresQuery(unsafeSQL: Self.countsSQL), logger: store.logger)
                    .decode((String, String, Int64).self)
                {
                    guard let state = EventState(rawValue: state) else { continue }
                    counts[QueueStats.Key(adapter: adapter, state: state)] = Int(n)
                }
                var oldest: Int64?
                for adapter in Set(counts.keys.map(\.adapter)) {
                    for try await first in try await connection.query(
                        PostgresQuery(unsafeSQL: Self.oldestDueSQL, binds: Self.binds(adapter)), logger: store.logger
                    ).decode(Int64?.self) {
                        guard let first, first <= nowMillis else { continue }
                        oldest = min(oldest ?? first, first)
                    }
                }
                return QueueStats(counts: counts, oldestDueAge: oldest.map { .milliseconds(nowMillis - $0) })
            }
        }
    }

    public func replay(_ id: EventID) async throws(QueueError) -> Bool {
        let stamp = Millis(now())
        return try await writing("replay") {
            try await self.client.query("""
                UPDATE event SET state = 'queued', attempts = 0, next_attempt_at = \(stamp), retry_base_at = \(stamp), lease_owner = NULL,
                  status_code = NULL, updated_at = \(stamp)
                WHERE id = \(id.rawValue) AND state IN ('failed', 'dead') RETURNING id
                """, logger: self.logger).collect().count > 0
        }
    }

    public func purge(deliveredBefore date: Date) async throws(QueueError) -> Int {
        let cutoff = Millis(date)
        let files = try await writing("purge") {
            try await self.client.query("""
                DELETE FROM event WHERE state IN ('delivered', 'bounced') AND updated_at < \(cutoff) RETURNING body_path
                """, logger: self.logger).decode(String?.self).all()
        }
        // Bodies in event_body went with their events; a file is one a version
        // before them stored.
        for case let file? in files where !PostgresBodies.isInTable(file) { try? FileManager.default.removeItem(atPath: file) }
        return files.count
    }

    public var writeFailure: QueueWriteFailure? { writes.current.map { QueueWriteFailure(since: $0.since, error: $0.failure) } }

    // MARK: - Statements (QueryPlanTests checks their plans)

    static let makeDueSQL = """
        UPDATE event SET next_attempt_at = created_at
        WHERE adapter = $1 AND target = ANY($2) AND state IN ('queued', 'leased') AND state = 'queued' AND next_attempt_at > created_at
        RETURNING id
        """
    static let waitingTargetsSQL = """
        SELECT DISTINCT target FROM event WHERE adapter = $1 AND next_attempt_at >= $2 AND state IN ('queued', 'leased') AND state = 'queued'
        """
    static let pendingCountSQL = "SELECT count(*) FROM event WHERE adapter = $1 AND target = $2 AND state IN ('queued', 'leased')"
    static func listSQL(_ whereSQL: String, limit: String) -> String {
        "SELECT \(EventRow.columns) FROM event \(whereSQL) ORDER BY id DESC LIMIT \(limit)"
    }
    static let foldCountsSQL = """
        WITH gone AS (DELETE FROM event_count RETURNING adapter, state, n)
        INSERT INTO event_count (adapter, state, n) SELECT adapter, state, sum(n) FROM gone GROUP BY adapter, state HAVING sum(n) <> 0
        """
    static let countsSQL = "SELECT adapter, state, sum(n)::bigint FROM event_count GROUP BY adapter, state HAVING sum(n) > 0"
    static let oldestDueSQL = "SELECT min(next_attempt_at) FROM event WHERE adapter = $1 AND state IN ('queued', 'leased')"

    static func binds(_ values: any PostgresDynamicTypeEncodable...) -> PostgresBindings {
        var binds = PostgresBindings(capacity: values.count)
        for value in values { binds.append(value) }
        return binds
    }

    // MARK: - Plumbing

    /// A write: a storage failure is remembered for health checks (an
    /// operation's own refusal, not found or lease lost, says nothing of it).
    /// `bounded: false` for writes that go through the batcher, whose
    /// transactions have the deadline already (a deadline here as well would
    /// leave a write pending that its caller was told had failed).
    func writing<T: Sendable>(
        _ what: String, bounded: Bool = true, _ body: @escaping @Sendable () async throws -> T
    ) async throws(QueueError) -> T {
        do {
            if !bounded { return try await Self.mappingErrors(what, body) }
            return try await withDeadline(configuration.operationTimeout, what, body)
        } catch {
            if error.isStorageFailure { writes.failed(error) }
            throw error
        }
    }

    private static func mappingErrors<T: Sendable>(_ what: String, _ body: @Sendable () async throws -> T) async throws(QueueError) -> T {
        do {
            return try await body()
        } catch {
            throw QueueError(from: error, context: what)
        }
    }

    func reading<T: Sendable>(_ what: String, _ body: @escaping @Sendable () async throws -> T) async throws(QueueError) -> T {
        try await withDeadline(configuration.operationTimeout, what, body)
    }
}

extension QueueError {
    /// Maps PostgreSQL's errors to the causes an operator can act on.
    init(postgres error: PSQLError, context: String) {
        let message = error.serverInfo?[.message] ?? "\(error.code)"
        let detail = "\(context): \(message)"
        switch error.serverInfo?[.sqlState] {
        case "53100": self.init(.diskFull, detail)
        case "25006": self.init(.readOnly, detail)
        case "40001", "40P01", "55P03": self.init(.busy, detail)
        case "28000", "28P01", "3D000", "42501": self.init(.cannotOpen, detail)
        case let state? where state.hasPrefix("08") || state.hasPrefix("57P"): self.init(.unavailable, detail)
        case let state? where state.hasPrefix("58"): self.init(.io, detail)
        case .some: self.init(.other, detail)
        case nil: self.init(.unavailable, "\(context): \(error.code)")
        }
    }
}
