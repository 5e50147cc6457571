"""What a synced SQLite commit costs on this machine, without msrpgw's code:
the queue's schema (queue_schema.py),
one insert and one update per message, each in its own transaction (as at a
low, even rate), with the insert at synchronous=FULL and the update at NORMAL
(as the queue commits them), or both at OFF. Prints CPU per message.
With a pace (ms), the loop sleeps that long before each message, as a
process serving an even, low rate idles between messages (one thread, no
hops: the least a message can cost here).
   python3 Benchmarks/Floors/sqlite_commit.py [PACE_MS]
"""
import os, shutil, sqlite3, sys, tempfile, time

from queue_schema import SCHEMA

PACE = float(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 0


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
