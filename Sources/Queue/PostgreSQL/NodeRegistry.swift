import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO

/// The nodes sharing one PostgreSQL queue (`gateway_node`): each registers at
/// start and beats a heartbeat; every node also looks for nodes whose heartbeat
/// lapsed and takes them out: their leases are given back at once (not when
/// each lease expires) and the events only they could deliver (REPORTs on
/// their sessions) become any node's, which records them undeliverable as a
/// single node does for a session that ended.
struct NodeRegistry: Sendable {
    let store: PostgresStore
    let now: @Sendable () -> Date
    var configuration: PostgresEventQueue.Configuration { store.configuration }
    var logger: Logger { store.logger }
    private let state = NIOLockedValueBox((registrations: 0, addresses: [String]()))

    /// How many times this node registered (a change: it was taken out and
    /// came back, and its published sessions went with it).
    var registrations: Int { state.withLockedValue { $0.registrations } }

    /// Where this node can be reached: kept for registering again.
    var addresses: [String] {
        get { state.withLockedValue { $0.addresses } }
        nonmutating set { state.withLockedValue { $0.addresses = newValue } }
    }

    init(store: PostgresStore, now: @escaping @Sendable () -> Date) {
        self.store = store
        self.now = now
    }

    static var hostName: String { ProcessInfo.processInfo.hostName }

    /// Registers this node; refuses when another host runs a node with the
    /// same id (each node needs its own: ids are part of every event id).
    func register() async throws {
        let me = configuration.node
        let nowMillis = Millis(now())
        let host = Self.hostName
        try await store.transaction { connection in
            let found = try await connection.query("SELECT host, heartbeat_at FROM gateway_node WHERE id = \(me) FOR UPDATE", logger: logger)
            let rows = try await found.decode((String, Int64).self).all()
            if let (other, beat) = rows.first, other != host, nowMillis - beat < Millis(configuration.nodeTimeout) {
                throw QueueError(.cannotOpen, "node \(me) is in use by \(other) (heartbeat \(nowMillis - beat) ms ago): give each node its own gateway.node")
            }
            try await connection.query("""
                INSERT INTO gateway_node (id, host, owner_prefix, started_at, heartbeat_at, addresses)
                VALUES (\(me), \(host), \(configuration.ownerPrefix), \(nowMillis), \(nowMillis), \(addresses))
                ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, owner_prefix = EXCLUDED.owner_prefix,
                  started_at = EXCLUDED.started_at, addresses = EXCLUDED.addresses,
                  heartbeat_at = GREATEST(gateway_node.heartbeat_at, EXCLUDED.heartbeat_at)
                """, logger: logger)
            // The heartbeat never moves back (as in `beat`): a registration that
            // stalled on its way must not make a node registered since look lapsed.
            // A previous run's sessions ended with it; after being taken out
            // the node publishes its live ones again (`registrations` changed).
            try await connection.query("DELETE FROM gateway_session WHERE node = \(me)", logger: logger)
        }
        state.withLockedValue { $0.registrations += 1 }
    }

    /// Heartbeats and reaping until cancelled; a failure (the server away) is
    /// logged and tried again on the next beat.
    func run() async {
        while !Task.isCancelled {
            do {
                try await beat()
                let reaped = try await reap()
                for (node, leases) in reaped {
                    logger.warning("a gateway node stopped beating: its leases given back, its sessions' events to any node", metadata: [
                        "node": "\(node)", "leases": "\(leases)"])
                }
            } catch where Task.isCancelled {
                return  // the queue is closing: the beat it interrupted does not matter
            } catch let error as PSQLError {
                logger.warning("node heartbeat failed", metadata: ["error": "\(QueueError(postgres: error, context: "heartbeat"))"])
            } catch {
                logger.warning("node heartbeat failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.heartbeat)
        }
    }

    /// One heartbeat (`run` beats every `heartbeat`; tests beat at once).
    func beat() async throws {
        let nowMillis = Millis(now())
        let me = configuration.node
        // Never backwards: a beat delayed on its way (a stalled process) must not
        // make the node look older than a later beat said, or the others reap a
        // live node and its registering again drops its published sessions.
        let changed = try await store.client.query(
            "UPDATE gateway_node SET heartbeat_at = GREATEST(heartbeat_at, \(nowMillis)) WHERE id = \(me) RETURNING id", logger: logger
        ).collect().count
        // Taken out by the others (this node stalled past the time-out): register again.
        if changed == 0 { try await register() }
    }

    /// Takes out the nodes whose heartbeat lapsed; returns them with the number
    /// of leases given back.
    func reap() async throws -> [(Int, Int)] {
        let nowMillis = Millis(now())
        let cutoff = nowMillis - Millis(configuration.nodeTimeout)
        let me = configuration.node
        return try await store.transaction { connection in
            let deleted = try await connection.query("""
                DELETE FROM gateway_node WHERE heartbeat_at < \(cutoff) AND id <> \(me) RETURNING id, owner_prefix
                """, logger: logger)
            let dead = try await deleted.decode((Int, String).self).all()
            var reaped: [(Int, Int)] = []
            for (node, prefix) in dead {
                let released = try await connection.query("""
                    UPDATE event SET state = 'queued', lease_owner = NULL, attempts = greatest(attempts - 1, 0),
                      next_attempt_at = \(nowMillis), updated_at = \(nowMillis)
                    WHERE state = 'leased' AND starts_with(lease_owner, \(prefix)) RETURNING id
                    """, logger: logger).collect().count
                reaped.append((node, released))
            }
            // Events pinned to a node that is not registered (gone, or never
            // started): any node's now.
            try await connection.query("""
                UPDATE event SET node = NULL
                WHERE node IS NOT NULL AND state IN ('queued', 'leased') AND node <> ALL(ARRAY(SELECT id FROM gateway_node))
                """, logger: logger)
            return reaped
        }
    }

    /// Leaves the cluster on a clean stop: the others need not wait for the time-out.
    func deregister() async {
        _ = try? await store.client.query("DELETE FROM gateway_node WHERE id = \(configuration.node)", logger: logger)
    }
}
