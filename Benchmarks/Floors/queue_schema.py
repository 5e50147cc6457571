"""The queue's SQLite schema as migrations v1-v5 of
Sources/Queue/SQLite/SQLiteSchema.swift leave it, for the floors measured
without our code. A copy on purpose (these scripts measure SQLite, not our
migrations): keep it in step when a migration changes the table or its indexes.
"""
SCHEMA = """
CREATE TABLE event (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, adapter TEXT NOT NULL, target TEXT NOT NULL, dedupe_key TEXT UNIQUE, parent_id INTEGER, session_id TEXT, message_id TEXT, from_path TEXT, to_path TEXT, byte_count INTEGER, success_report INTEGER NOT NULL DEFAULT 0, failure_report TEXT NOT NULL DEFAULT 'yes', imdn_message_id TEXT, imdn_dispositions TEXT NOT NULL DEFAULT '', env_from TEXT, env_to TEXT NOT NULL DEFAULT '', env_cc TEXT NOT NULL DEFAULT '', env_subject TEXT, env_datetime TEXT, content_type TEXT NOT NULL, env_headers TEXT, body BLOB, body_path TEXT, body_size INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, retry_base_at INTEGER NOT NULL, lease_owner TEXT, last_error TEXT, proof TEXT, status_code INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, page_mode_sender TEXT);
CREATE INDEX event_session ON event(session_id) WHERE session_id IS NOT NULL;
CREATE INDEX event_target_waiting ON event(adapter, target) WHERE state IN ('queued', 'leased');
CREATE INDEX event_state_id ON event(state, id);
CREATE TABLE event_count (adapter TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (adapter, state)) WITHOUT ROWID;
CREATE TRIGGER event_count_insert AFTER INSERT ON event BEGIN INSERT INTO event_count(adapter, state, n) VALUES (NEW.adapter, NEW.state, 1) ON CONFLICT(adapter, state) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER event_count_delete AFTER DELETE ON event BEGIN UPDATE event_count SET n = n - 1 WHERE adapter = OLD.adapter AND state = OLD.state; END;
CREATE TRIGGER event_count_update AFTER UPDATE OF state, adapter ON event WHEN OLD.state IS NOT NEW.state OR OLD.adapter IS NOT NEW.adapter BEGIN UPDATE event_count SET n = n - 1 WHERE adapter = OLD.adapter AND state = OLD.state; INSERT INTO event_count(adapter, state, n) VALUES (NEW.adapter, NEW.state, 1) ON CONFLICT(adapter, state) DO UPDATE SET n = n + 1; END;
CREATE INDEX event_due_target ON event(adapter, next_attempt_at, id, target, state) WHERE state IN ('queued', 'leased');
"""

# A message as the ingress stores it (leased to the webhook adapter), with the
# parameters (id, dedupe key, session, message id, body, and four times in ms).
INSERT_LEASED = """INSERT INTO event(id, kind, state, adapter, target, dedupe_key, session_id, message_id, from_path, to_path,
      content_type, body, body_size, next_attempt_at, retry_base_at, lease_owner, created_at, updated_at, env_from, env_to)
    VALUES (?, 'delivery', 'leased', 'webhook', 'webhook:sink', ?, ?, ?, 'msrp://127.0.0.1:1234/abcdefgh;tcp',
      'msrp://127.0.0.1:2855/ijklmn;tcp', 'text/plain', ?, 300, ?, ?, 'node-1/abcd/webhook', ?, ?,
      'Load <sip:load1@example.com>', '<sip:ops@gw.example>')"""

# Its delivery's outcome (updated_at, id).
DELIVERED = "UPDATE event SET state = 'delivered', lease_owner = NULL, proof = 'HTTP 204', updated_at = ? WHERE id = ?"
