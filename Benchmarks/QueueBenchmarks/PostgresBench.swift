import Events
import Foundation
import Logging
import Queue
import TestPeers

/// The queue on PostgreSQL beside the SQLite queue and beside pgbench running
/// the equivalent one-transaction-per-event statements on the same server, in
/// the same run. The server: a throwaway cluster (TestPeers.PostgresServer)
/// with its defaults (fsync on, synchronous_commit = on).
func benchPostgres(quick: Bool = false) async throws {
    // PG_SETTINGS="synchronous_commit=off,..." to see what a setting changes.
    let settings = (ProcessInfo.processInfo.environment["PG_SETTINGS"] ?? "").split(separator: ",").reduce(into: [String: String]()) { all, pair in
        let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
        if parts.count == 2 { all[parts[0]] = parts[1] }
    }
    let server = try await PostgresServer.start(settings: settings)
    defer { Task { try? await server.stop() } }
    var logger = Logger(label: "bench")
    logger.logLevel = .warning
    func pgQueue() async throws -> PostgresEventQueue {
        let database = try await server.createDatabase("bench")
        return try await PostgresEventQueue(
            PostgresEventQueue.Configuration(location: try PostgresLocation(url: server.url(database: database)), followUps: NoFollowUps(), poolSize: 8),
            logger: logger)
    }
    let producers = 64, each = 300

    var pgEnqueue: [Double] = [], sqliteEnqueue: [Double] = []
    if quick {
        // Only the PostgreSQL enqueue figure, for working on it.
        for _ in 0..<3 { pgEnqueue.append(try await enqueueRate(try await pgQueue(), producers: producers, each: each)) }
        say(String(format: "PostgreSQL enqueue, %d producers: %.0f events/s (runs %@)", producers, median(pgEnqueue),
                   pgEnqueue.map { String(Int($0)) }.joined(separator: ", ")))
        return
    }
    for _ in 0..<3 {
        pgEnqueue.append(try await enqueueRate(try await pgQueue(), producers: producers, each: each))
        let dir = try scratch()
        sqliteEnqueue.append(try await enqueueRate(try openQueue(dir), producers: producers, each: each))
        try? FileManager.default.removeItem(atPath: dir)
    }
    let benchDatabase = try await server.createDatabase("pgbench")
    try await server.psql("CREATE TABLE job (id bigserial PRIMARY KEY, state text NOT NULL DEFAULT 'queued', body text NOT NULL)", database: benchDatabase)
    let insert = "INSERT INTO job (body) VALUES (repeat('a', 120));"
    let insertTPS = try await pgbench(server, database: benchDatabase, clients: producers, script: insert)
    let insertOneClient = try await pgbench(server, database: benchDatabase, clients: 1, script: insert)
    say(String(format: "PostgreSQL enqueue, %d producers: %.0f events/s (runs %@; SQLite same run %.0f); pgbench single-row INSERT per transaction, %d clients: %.0f tps (1 client: %.0f); ratio %.1fx (%.1fx of 1 client)  [target >= 3x pgbench]",
               producers, median(pgEnqueue), pgEnqueue.map { String(Int($0)) }.joined(separator: ", "), median(sqliteEnqueue), producers, insertTPS,
               insertOneClient, median(pgEnqueue) / insertTPS, median(pgEnqueue) / insertOneClient))
    // The server's own ceiling for the queue's rows: pgbench alone (no client
    // of ours on the cores) inserting 16 event rows per transaction into the
    // queue's table, with its indexes and triggers, from 4 clients.
    let ceilingDatabase = try await server.createDatabase("ceiling")
    // (The queue creates the schema.)
    try await PostgresEventQueue(
        PostgresEventQueue.Configuration(location: try PostgresLocation(url: server.url(database: ceilingDatabase)), followUps: NoFollowUps(), poolSize: 1),
        logger: logger).shutdown()
    try await server.psql("CREATE SEQUENCE bench_id", database: ceilingDatabase)
    let ceiling = try await pgbench(server, database: ceilingDatabase, clients: 4, script: """
        INSERT INTO event (id, kind, state, adapter, target, dedupe_key, session_id, message_id, from_path, to_path, byte_count, success_report,
          failure_report, imdn_dispositions, env_from, env_to, env_cc, env_datetime, content_type, body, body_size, next_attempt_at,
          retry_base_at, created_at, updated_at)
        SELECT nextval('bench_id'), 'delivery', 'queued', 'webhook', 'https://hook.example/x', 'k' || currval('bench_id'), 'n1-abcdef',
          'm' || currval('bench_id'), 'msrp://a/b;tcp', 'msrp://c/d;tcp', 120, false, 'yes', '', '<sip:a@b>', '<sip:ops@gw>', '',
          '2026-12-06T00:00:00Z', 'text/plain', decode(repeat('61', 120), 'hex'), 120, 1, 1, 1, 1
        FROM generate_series(1, 16) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id;
        """) * 16
    say(String(format: "PostgreSQL's ceiling for the queue's rows (pgbench alone, 16 event rows per transaction, 4 clients): %.0f rows/s; the queue's enqueue is %.2f of it; 3x pgbench would be %.0f",
               ceiling, median(pgEnqueue) / ceiling, 3 * insertTPS))

    var pgLease: [Double] = [], sqliteLease: [Double] = []
    for _ in 0..<3 {
        pgLease.append(try await leaseCompleteRate(try await pgQueue(), total: 20_000))
        let dir = try scratch()
        sqliteLease.append(try await leaseCompleteRate(try openQueue(dir), total: 20_000))
        try? FileManager.default.removeItem(atPath: dir)
    }
    try await server.psql("TRUNCATE job; INSERT INTO job (body) SELECT repeat('a', 120) FROM generate_series(1, 400000)", database: benchDatabase)
    let claimTPS = try await pgbench(server, database: benchDatabase, clients: 8, script: """
        UPDATE job SET state = 'leased' WHERE id = (SELECT id FROM job WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id AS claimed \\gset
        UPDATE job SET state = 'done' WHERE id = :claimed;
        """)
    say(String(format: "PostgreSQL lease + complete, 8 workers, leases of 50: %.0f events/s (SQLite same run %.0f); pgbench claim (UPDATE ... SKIP LOCKED) + complete, one transaction each, 8 clients: %.0f events/s; ratio %.1fx",
               median(pgLease), median(sqliteLease), claimTPS, median(pgLease) / claimTPS))
}

/// Events/s of `producers` tasks each enqueuing `each` events one at a time.
func enqueueRate(_ queue: any EventQueue, producers: Int, each: Int) async throws -> Double {
    let secs = try await elapsed {
        try await withThrowingTaskGroup(of: Void.self) { g in
            for p in 0..<producers {
                g.addTask { for i in 0..<each { _ = try await queue.enqueue([event(p * 1_000_000 + i)]) } }
            }
            try await g.waitForAll()
        }
    }
    return Double(producers * each) / secs
}

/// Events/s of 8 workers leasing 50 at a time and completing each.
func leaseCompleteRate(_ queue: any EventQueue, total: Int) async throws -> Double {
    for start in stride(from: 0, to: total, by: 1000) { _ = try await queue.enqueue((start..<(start + 1000)).map { event($0) }) }
    let secs = try await elapsed {
        try await withThrowingTaskGroup(of: Void.self) { g in
            for w in 0..<8 {
                g.addTask {
                    while true {
                        let batch = try await queue.lease(adapter: "webhook", owner: "w\(w)", limit: 50, for: .seconds(60))
                        if batch.isEmpty { return }
                        try await withThrowingTaskGroup(of: Void.self) { inner in
                            for e in batch {
                                inner.addTask { try await queue.complete(e.id, owner: "w\(w)", outcome: .delivered(proof: "200")) }
                            }
                            try await inner.waitForAll()
                        }
                    }
                }
            }
            try await g.waitForAll()
        }
    }
    return Double(total) / secs
}

/// pgbench running `script` (one transaction per statement) for 10 s; its tps.
func pgbench(_ server: PostgresServer, database: String, clients: Int, script: String) async throws -> Double {
    let file = NSTemporaryDirectory() + "msrpgw-pgbench-" + UUID().uuidString + ".sql"
    try script.write(toFile: file, atomically: true, encoding: .utf8)
    guard let binaries = PostgresServer.binaries else { throw Peers.PeerMissing(description: "pgbench: apt-get install postgresql") }
    let child = try ChildProcess(binaries + "/pgbench", [
        "-n", "-h", "127.0.0.1", "-p", String(server.port), "-U", server.user, "-c", String(clients), "-j", "2", "-T", "10", "-f", file, database,
    ], name: "pgbench")
    _ = try await child.wait(timeout: .seconds(60))
    guard let line = child.stdout.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
        let tps = Double(line.dropFirst(6).split(separator: " ").first ?? "")
    else { throw ChildProcess.ChildFailed(description: "pgbench printed no tps: \(child.stdout) \(child.stderr)") }
    // One run of the script is one event (the claim script: two transactions).
    return tps
}
