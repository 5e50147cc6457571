import Logging
import PostgresNIO

/// The queue's tables on PostgreSQL, as named migrations applied in order and
/// recorded in `msrpgw_migration`. Several nodes may start at once: the
/// migration runs in one transaction under an advisory lock, so one applies it
/// and the others find it applied. A database with a migration this build does
/// not know is refused (a newer msrpgw wrote it), as for SQLite.
enum PostgresSchema {
    struct Migration {
        var name: String
        var sql: [String]
    }

    /// Any fixed number: the lock that serialises migrations between nodes.
    static let migrationLock: Int64 = 0x6D73_7270_6777
    static var known: [String] { migrations.map(\.name) }

    static let migrations: [Migration] = [
        Migration(name: "v1-events", sql: [
            """
            CREATE TABLE event (
              id bigint PRIMARY KEY,
              kind text NOT NULL,
              state text NOT NULL,
              adapter text NOT NULL,
              target text NOT NULL,
              dedupe_key text UNIQUE,
              parent_id bigint,
              session_id text,
              message_id text,
              from_path text,
              to_path text,
              byte_count bigint,
              success_report boolean NOT NULL DEFAULT false,
              failure_report text NOT NULL DEFAULT 'yes',
              imdn_message_id text,
              imdn_dispositions text NOT NULL DEFAULT '',
              env_from text,
              env_to text NOT NULL DEFAULT '',
              env_cc text NOT NULL DEFAULT '',
              env_subject text,
              env_datetime text,
              content_type text NOT NULL,
              env_headers text,
              body bytea,
              body_path text,
              body_size bigint NOT NULL,
              attempts integer NOT NULL DEFAULT 0,
              next_attempt_at bigint NOT NULL,
              retry_base_at bigint NOT NULL,
              lease_owner text,
              last_error text,
              proof text,
              status_code integer,
              created_at bigint NOT NULL,
              updated_at bigint NOT NULL,
              page_mode_sender text,
              node integer
            )
            """,
            // What dispatchers lease: due events per adapter in queue order
            // (an expired lease is due again), the target and the node in the
            // index for leases that leave busy endpoints and other nodes' events out.
            "CREATE INDEX event_due ON event (adapter, next_attempt_at, id) INCLUDE (target, node) WHERE state IN ('queued', 'leased')",
            // Events only one node may deliver (`node`: what goes out on its
            // sessions), found again when that node is gone.
            "CREATE INDEX event_pinned ON event (node) WHERE node IS NOT NULL AND state IN ('queued', 'leased')",
            // The nodes sharing the queue: each beats its heartbeat; one whose
            // heartbeat lapses is taken out by the others (its leases given back,
            // its events for any node).
            """
            CREATE TABLE gateway_node (
              id integer PRIMARY KEY,
              host text NOT NULL,
              owner_prefix text NOT NULL,
              started_at bigint NOT NULL,
              heartbeat_at bigint NOT NULL
            )
            """,
            // makeDue, pendingCount and waitingTargets: one peer's waiting events.
            "CREATE INDEX event_target_waiting ON event (adapter, target) WHERE state IN ('queued', 'leased')",
            // GET /v1/events?state=: newest first without sorting the whole state.
            "CREATE INDEX event_state_id ON event (state, id)",
            "CREATE INDEX event_session ON event (session_id, id) WHERE session_id IS NOT NULL",
            "CREATE INDEX event_finished ON event (updated_at) WHERE state IN ('delivered', 'bounced')",
            // Counts per adapter and state without a scan: every statement that
            // changes states adds its net change as a row (inserts only, so
            // concurrent transactions never wait on, or deadlock over, a
            // counter row); `stats` folds the rows together now and then.
            "CREATE TABLE event_count (adapter text NOT NULL, state text NOT NULL, n bigint NOT NULL)",
            """
            CREATE FUNCTION event_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO event_count (adapter, state, n) SELECT adapter, state, count(*) FROM new_rows GROUP BY adapter, state;
              -- Wakes the nodes' idle dispatchers when this commits (LISTEN msrpgw_new):
              -- the adapters that have new events.
              PERFORM pg_notify('msrpgw_new', (SELECT string_agg(DISTINCT adapter, ',') FROM new_rows));
              RETURN NULL;
            END $$
            """,
            """
            CREATE FUNCTION event_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO event_count (adapter, state, n) SELECT adapter, state, -count(*) FROM old_rows GROUP BY adapter, state;
              RETURN NULL;
            END $$
            """,
            """
            CREATE FUNCTION event_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO event_count (adapter, state, n)
                SELECT adapter, state, sum(n) FROM (
                  SELECT adapter, state, -1 AS n FROM old_rows UNION ALL SELECT adapter, state, 1 FROM new_rows
                ) AS change GROUP BY adapter, state HAVING sum(n) <> 0;
              RETURN NULL;
            END $$
            """,
            """
            CREATE TRIGGER event_count_insert AFTER INSERT ON event REFERENCING NEW TABLE AS new_rows
              FOR EACH STATEMENT EXECUTE FUNCTION event_count_inserted()
            """,
            """
            CREATE TRIGGER event_count_delete AFTER DELETE ON event REFERENCING OLD TABLE AS old_rows
              FOR EACH STATEMENT EXECUTE FUNCTION event_count_deleted()
            """,
            """
            CREATE TRIGGER event_count_update AFTER UPDATE ON event REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
              FOR EACH STATEMENT EXECUTE FUNCTION event_count_updated()
            """,
        ]),
        Migration(name: "v2-sessions", sql: [
            // Where each node can be reached (its API, its MSRP listeners), for
            // an operator or an API answer that names another node.
            "ALTER TABLE gateway_node ADD COLUMN addresses text[] NOT NULL DEFAULT '{}'",
            // The live sessions of every node: the API lists them on any node, a
            // message for another node's session is queued for it, and a peer's
            // waiting messages go to the node it is connected to. A node taken
            // out takes its sessions with it.
            """
            CREATE TABLE gateway_session (
              id text PRIMARY KEY,
              node integer NOT NULL REFERENCES gateway_node (id) ON DELETE CASCADE,
              peer text,
              route text,
              local_uri text NOT NULL,
              remote_path text[] NOT NULL,
              created_at bigint NOT NULL
            )
            """,
            "CREATE INDEX gateway_session_node ON gateway_session (node)",
            "CREATE INDEX gateway_session_peer ON gateway_session (peer) WHERE peer IS NOT NULL",
        ]),
        Migration(name: "v3-bodies", sql: [
            // Large bodies, in chunks, so that any node can deliver their events
            // (`PostgresBodies`); they go with their event.
            """
            CREATE TABLE event_body (
              event_id bigint NOT NULL REFERENCES event (id) ON DELETE CASCADE,
              seq integer NOT NULL,
              data bytea NOT NULL,
              PRIMARY KEY (event_id, seq)
            )
            """,
        ]),
    ]

    /// Brings the database to this build's schema, or throws `newerSchema`.
    static func migrate(
        _ configuration: PostgresConnection.Configuration, on loop: any EventLoop, logger: Logger, context: String
    ) async throws(QueueError) {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(on: loop, configuration: configuration, id: 0, logger: logger)
        } catch {
            throw QueueError(from: error, context: "connecting to \(context)")
        }
        do {
            try await migrate(on: connection, logger: logger, context: context)
            try? await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }

    private static func migrate(on connection: PostgresConnection, logger: Logger, context: String) async throws(QueueError) {
        do {
            try await connection.query("BEGIN", logger: logger)
            do {
                try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger)
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS msrpgw_migration (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())
                    """, logger: logger)
                var applied: Set<String> = []
                for try await name in try await connection.query("SELECT name FROM msrpgw_migration", logger: logger).decode(String.self) {
                    applied.insert(name)
                }
                let unknown = applied.subtracting(known)
                guard unknown.isEmpty else {
                    throw QueueError(.newerSchema, "\(context) has migrations \(applied.sorted()) beyond \(known)")
                }
                for migration in migrations where !applied.contains(migration.name) {
                    for statement in migration.sql {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query("INSERT INTO msrpgw_migration (name) VALUES (\(migration.name))", logger: logger)
                    logger.info("queue schema migrated", metadata: ["migration": "\(migration.name)"])
                }
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        } catch let error as QueueError {
            throw error
        } catch let error as PSQLError {
            throw QueueError(postgres: error, context: "migrating \(context)")
        } catch {
            throw QueueError(.other, "migrating \(context): \(error)")
        }
    }
}
