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

from queue_schema import DELIVERED, INSERT_LEASED, SCHEMA

PACE = float(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 0


def run(synced, n=3000):
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "q.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    body = os.urandom(300)
    started = time.process_time()
    for i in range(n):
        if PACE:
            time.sleep(PACE)
        t = 1_700_000_000_000 + i
        db.execute("PRAGMA synchronous=FULL" if synced else "PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        db.execute(INSERT_LEASED, (t * 1000, f"msrp:s{i % 64}:l{i}", f"s{i % 64}", f"l{i}", body, t, t, t, t))
        db.execute("COMMIT")
        db.execute("PRAGMA synchronous=NORMAL" if synced else "PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        db.execute(DELIVERED, (t + 1, t * 1000))
        db.execute("COMMIT")
    cpu = time.process_time() - started
    db.close()
    shutil.rmtree(directory)
    return cpu / n * 1e6


for _ in range(2):
    print(f"pace {PACE * 1000:g} ms: synchronous OFF: {run(False):.0f} us CPU/msg; insert at FULL: {run(True):.0f} us CPU/msg")
