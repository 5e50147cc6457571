import Foundation
import PostgresNIO

/// The cluster's directory on PostgreSQL: `gateway_node` (registered by
/// `NodeRegistry`) and `gateway_session`, this node's rows written by this
/// node only (a node taken out takes its sessions with it: ON DELETE CASCADE).
extension PostgresEventQueue {
    public var node: Int { configuration.node }

    public var registration: Int { registry.registrations }

    public func advertise(addresses: [String]) async throws(QueueError) {
        registry.addresses = addresses
        _ = try await writing("advertise") {
            try await self.client.query(
                "UPDATE gateway_node SET addresses = \(addresses) WHERE id = \(self.node)", logger: self.logger)
        }
    }

    public func clusterNodes() async throws(QueueError) -> [ClusterNode] {
        try await reading("nodes") {
            try await self.client.query(
                "SELECT id, host, addresses, heartbeat_at FROM gateway_node ORDER BY id", logger: self.logger
            ).decode((Int, String, [String], Int64).self).all().map { id, host, addresses, beat in
                ClusterNode(id: id, host: host, addresses: addresses, heartbeatAt: Date(millis: beat))
            }
        }
    }

    public func publishSessions(adding: [ClusterSession], removing: [String]) async throws(QueueError) {
        guard !adding.isEmpty || !removing.isEmpty else { return }
        let store = store
        try await writing("publish sessions") {
            try await store.transaction { connection in
                if !removing.isEmpty {
                    try await connection.query(
                        "DELETE FROM gateway_session WHERE node = \(self.node) AND id = ANY(\(removing))", logger: store.logger)
                }
                try await self.insert(adding, on: connection)
            }
        }
    }

    public func republishSessions(_ sessions: [ClusterSession]) async throws(QueueError) {
        let store = store
        try await writing("republish sessions") {
            try await store.transaction { connection in
                try await connection.query("DELETE FROM gateway_session WHERE node = \(self.node)", logger: store.logger)
                try await self.insert(sessions, on: connection)
            }
        }
    }

    /// One statement for all of them (arrays per column); a session published
    /// again replaces its row.
    private func insert(_ sessions: [ClusterSession], on connection: PostgresConnection) async throws {
        guard !sessions.isEmpty else { return }
        // A text[] per session does not nest in an array column: each path is
        // joined by spaces (MSRP URIs contain none) and split again in SQL.
        let paths = sessions.map { $0.remotePath.joined(separator: " ") }
        try await connection.query("""
            INSERT INTO gateway_session (id, node, peer, route, local_uri, remote_path, created_at)
            SELECT id, \(node), peer, route, local_uri, string_to_array(path, ' '), created_at
            FROM unnest(\(sessions.map(\.id)), \(NullableArray(sessions.map(\.peer))), \(NullableArray(sessions.map(\.route))),
                        \(sessions.map(\.localURI)), \(paths), \(sessions.map { Millis($0.createdAt) }))
              AS s(id, peer, route, local_uri, path, created_at)
            ON CONFLICT (id) DO UPDATE SET node = EXCLUDED.node, peer = EXCLUDED.peer, route = EXCLUDED.route,
              local_uri = EXCLUDED.local_uri, remote_path = EXCLUDED.remote_path
            """, logger: logger)
    }

    public func clusterSessions() async throws(QueueError) -> [ClusterSession] {
        try await reading("sessions") {
            try await self.client.query("SELECT \(unescaped: Self.sessionColumns) FROM gateway_session ORDER BY created_at, id", logger: self.logger)
                .decode(SessionRow.self).all().map(Self.session)
        }
    }

    public func clusterSession(_ id: String) async throws(QueueError) -> ClusterSession? {
        try await reading("session") {
            try await self.client.query("SELECT \(unescaped: Self.sessionColumns) FROM gateway_session WHERE id = \(id)", logger: self.logger)
                .decode(SessionRow.self).all().first.map(Self.session)
        }
    }

    public func node(holdingPeer peer: String, besides node: Int) async throws(QueueError) -> Int? {
        try await reading("session of a peer") {
            try await self.client.query("""
                SELECT node FROM gateway_session WHERE peer = \(peer) AND node <> \(node) ORDER BY created_at DESC LIMIT 1
                """, logger: self.logger).decode(Int.self).all().first
        }
    }

    public func assign(adapter: String, targets: [String], to node: Int) async throws(QueueError) -> Int {
        guard !targets.isEmpty else { return 0 }
        return try await writing("assign") {
            try await self.client.query("""
                UPDATE event SET node = \(node),
                  next_attempt_at = CASE WHEN state = 'queued' AND next_attempt_at > created_at THEN created_at ELSE next_attempt_at END
                WHERE adapter = \(adapter) AND target = ANY(\(targets)) AND state IN ('queued', 'leased') RETURNING id
                """, logger: self.logger).collect().count
        }
    }

    private typealias SessionRow = (String, Int, String?, String?, String, [String], Int64)
    private static let sessionColumns = "id, node, peer, route, local_uri, remote_path, created_at"

    private static func session(_ row: SessionRow) -> ClusterSession {
        ClusterSession(id: row.0, node: row.1, peer: row.2, route: row.3, localURI: row.4, remotePath: row.5, createdAt: Date(millis: row.6))
    }
}
