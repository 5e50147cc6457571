import GRDB

/// The queue's tables, as GRDB migrations: an older database upgrades in place;
/// one with migrations this build does not know is refused (a newer msrpgw wrote it).
enum SQLiteSchema {
    static let known = ["v1-events", "v2-page-mode-sender", "v3-counts-and-indexes", "v4-due-with-target", "v5-purge-by-id"]

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-events") { db in
            try db.execute(sql: """
                CREATE TABLE event (
                  id INTEGER PRIMARY KEY,
                  kind TEXT NOT NULL,
                  state TEXT NOT NULL,
                  adapter TEXT NOT NULL,
                  target TEXT NOT NULL,
                  dedupe_key TEXT UNIQUE,
                  parent_id INTEGER,
                  session_id TEXT,
                  message_id TEXT,
                  from_path TEXT,
                  to_path TEXT,
                  byte_count INTEGER,
                  success_report INTEGER NOT NULL DEFAULT 0,
                  failure_report TEXT NOT NULL DEFAULT 'yes',
                  imdn_message_id TEXT,
                  imdn_dispositions TEXT NOT NULL DEFAULT '',
                  env_from TEXT,
                  env_to TEXT NOT NULL DEFAULT '',
                  env_cc TEXT NOT NULL DEFAULT '',
                  env_subject TEXT,
                  env_datetime TEXT,
                  content_type TEXT NOT NULL,
                  env_headers TEXT,
                  body BLOB,
                  body_path TEXT,
                  body_size INTEGER NOT NULL,
                  attempts INTEGER NOT NULL DEFAULT 0,
                  next_attempt_at INTEGER NOT NULL,
                  retry_base_at INTEGER NOT NULL,
                  lease_owner TEXT,
                  last_error TEXT,
                  proof TEXT,
                  status_code INTEGER,
                  created_at INTEGER NOT NULL,
                  updated_at INTEGER NOT NULL
                );
                -- What workers lease: due events per adapter, leased ones included
                -- (an expired lease is due again).
                CREATE INDEX event_due ON event(adapter, next_attempt_at) WHERE state IN ('queued', 'leased');
                CREATE INDEX event_state ON event(state, updated_at);
                CREATE INDEX event_session ON event(session_id) WHERE session_id IS NOT NULL;
                """)
        }
        // A page-mode sender had been kept in from_path, which holds MSRP URIs.
        m.registerMigration("v2-page-mode-sender") { db in
            try db.execute(sql: """
                ALTER TABLE event ADD COLUMN page_mode_sender TEXT;
                UPDATE event SET page_mode_sender = from_path, from_path = NULL
                  WHERE session_id IS NULL AND (from_path LIKE 'sip:%' OR from_path LIKE 'sips:%');
                """)
        }
        // Calls that must not grow with the table (1.29 M rows made /healthz take
        // 1.2 s): counts per adapter and state kept by triggers in the same
        // transaction as each change, and indexes for every query the API and
        // the dispatcher make (QueryPlanTests checks them with EXPLAIN QUERY PLAN).
        m.registerMigration("v3-counts-and-indexes") { db in
            try db.execute(sql: """
                -- makeDue and pendingCount: one peer's waiting events. Partial and
                -- without next_attempt_at, so that leasing does not rewrite it.
                CREATE INDEX event_target_waiting ON event(adapter, target) WHERE state IN ('queued', 'leased');
                -- GET /v1/events?state=: newest first without sorting the whole state.
                CREATE INDEX event_state_id ON event(state, id);
                CREATE TABLE event_count (
                  adapter TEXT NOT NULL,
                  state TEXT NOT NULL,
                  n INTEGER NOT NULL,
                  PRIMARY KEY (adapter, state)
                ) WITHOUT ROWID;
                INSERT INTO event_count SELECT adapter, state, count(*) FROM event GROUP BY adapter, state;
                CREATE TRIGGER event_count_insert AFTER INSERT ON event BEGIN
                  INSERT INTO event_count(adapter, state, n) VALUES (NEW.adapter, NEW.state, 1)
                    ON CONFLICT(adapter, state) DO UPDATE SET n = n + 1;
                END;
                CREATE TRIGGER event_count_delete AFTER DELETE ON event BEGIN
                  UPDATE event_count SET n = n - 1 WHERE adapter = OLD.adapter AND state = OLD.state;
                END;
                CREATE TRIGGER event_count_update AFTER UPDATE OF state, adapter ON event
                  WHEN OLD.state IS NOT NEW.state OR OLD.adapter IS NOT NEW.adapter BEGIN
                  UPDATE event_count SET n = n - 1 WHERE adapter = OLD.adapter AND state = OLD.state;
                  INSERT INTO event_count(adapter, state, n) VALUES (NEW.adapter, NEW.state, 1)
                    ON CONFLICT(adapter, state) DO UPDATE SET n = n + 1;
                END;
                """)
        }
        // A lease that leaves busy endpoints out reads each due event's target
        // from the index alone (a bounded walk of it, covering: the state is
        // there too), not from the table. The id before the target keeps events
        // due at the same millisecond in queue order without a sort.
        m.registerMigration("v4-due-with-target") { db in
            try db.execute(sql: """
                CREATE INDEX event_due_target ON event(adapter, next_attempt_at, id, target, state) WHERE state IN ('queued', 'leased');
                DROP INDEX event_due;
                """)
        }
        // An index fewer to write with every insert and every change of state
        // (each is a page in the commit): (state, updated_at) served only the
        // purge, which now walks (state, id) up to the cutoff's id (ids begin
        // with their creation time, and an event is updated after it is created).
        m.registerMigration("v5-purge-by-id") { db in
            try db.execute(sql: "DROP INDEX event_state")
        }
        return m
    }
}
