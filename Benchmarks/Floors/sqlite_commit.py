"""What a synced SQLite commit costs on this machine, without msrpgw's code:
the queue's schema (migrations v1-v5 of Sources/Queue/SQLite/SQLiteSchema.swift),
one insert and one update per message, each in its own transaction (as at a
low, even rate), with the insert at synchronous=FULL and the update at NORMAL
(as the queue commits them), or both at OFF. Prints CPU per message.
With a pace (ms), the loop sleeps that long before each message, as a
process serving an even, low rate idles between messages (one thread, no
hops: the least a message can cost here).
   python3 Benchmarks/Floors/sqlite_commit.py [PACE_MS]
"""
import os, shutil, sqlite3, sys, tempfile, time

PACE = float(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 0

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


def run(synced, n=3000):
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "q.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    body = os.urandom(300)
    insert = """INSERT INTO event(id, kind, state, adapter, target, dedupe_key, session_id, message_id, from_path, to_path,
                  content_type, body, body_size, next_attempt_at, retry_base_at, lease_owner, created_at, updated_at, env_from, env_to)
                VALUES (?, 'delivery', 'leased', 'webhook', 'webhook:sink', ?, ?, ?, 'msrp://127.0.0.1:1234/abcdefgh;tcp',
                  'msrp://127.0.0.1:2855/ijklmn;tcp', 'text/plain', ?, 300, ?, ?, 'node-1/abcd/webhook', ?, ?,
                  'Load <sip:load1@example.com>', '<sip:ops@gw.example>')"""
    started = time.process_time()
    for i in range(n):
        if PACE:
            time.sleep(PACE)
        t = 1_700_000_000_000 + i
        db.execute("PRAGMA synchronous=FULL" if synced else "PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        db.execute(insert, (t * 1000, f"msrp:s{i % 64}:l{i}", f"s{i % 64}", f"l{i}", body, t, t, t, t))
        db.execute("COMMIT")
        db.execute("PRAGMA synchronous=NORMAL" if synced else "PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        db.execute("UPDATE event SET state='delivered', lease_owner=NULL, proof='HTTP 204', updated_at=? WHERE id=?", (t + 1, t * 1000))
        db.execute("COMMIT")
    cpu = time.process_time() - started
    db.close()
    shutil.rmtree(directory)
    return cpu / n * 1e6


for _ in range(2):
    print(f"pace {PACE * 1000:g} ms: synchronous OFF: {run(False):.0f} us CPU/msg; insert at FULL: {run(True):.0f} us CPU/msg")
