"""Where the queue's WAL pages come from at full speed, without msrpgw's code:
the queue's schema (queue_schema.py), messages from 64 sessions stored in
batches of 24 per transaction (leased, as the ingress stores them), each
batch's transaction also recording the previous batch's deliveries, as the
queue's writer groups them. Prints WAL frames (pages written) and CPU per
message (SQLite's and this script's) with the schema as it is, without the
session index, without the dedupe key's UNIQUE index, and without both.
Why: an index keyed by session takes a page per message, because 64 sessions
insert at 64 places and a batch rarely holds two messages of one session; each
dirty page is written whole to the WAL at every commit and again at the
checkpoint (issue 15, BENCHMARKS.md eighth pass).
   python3 Benchmarks/Floors/sqlite_index_pages.py [PAGE_SIZE]
"""
import os, random, shutil, sqlite3, sys, tempfile, time

from queue_schema import DELIVERED, INSERT_LEASED, SCHEMA

PAGE_SIZE = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
BATCH, MESSAGES, SESSIONS = 24, 24_000, 64
SESSION_INDEX = "CREATE INDEX event_session ON event(session_id) WHERE session_id IS NOT NULL;"


def store(db, sessions, first, body):
    """Stores MESSAGES messages from number `first` on; the last batch stays leased."""
    previous = []
    for b in range(MESSAGES // BATCH):
        db.execute("BEGIN")
        current = []
        for j in range(BATCH):
            i = first + b * BATCH + j
            t = 1_700_000_000_000 + i
            s = sessions[i % SESSIONS]
            db.execute(INSERT_LEASED, (t * 1000, f"{s}|m{i}|delivery|webhook|webhook:sink", s, f"m{i}", body, t, t, t, t))
            current.append(t)
        for t in previous:
            db.execute(DELIVERED, (t + 1, t * 1000))
        db.execute("COMMIT")
        previous = current


def run(session_index, dedupe_unique):
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "q.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA page_size={PAGE_SIZE}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")  # the WAL's growth is the measure
    schema = SCHEMA if session_index else SCHEMA.replace(SESSION_INDEX, "")
    if not dedupe_unique:
        schema = schema.replace("dedupe_key TEXT UNIQUE", "dedupe_key TEXT")
    db.executescript(schema)
    db.execute("PRAGMA synchronous=OFF")  # CPU without the flush
    sessions = [f"{random.getrandbits(64):016x}" for _ in range(SESSIONS)]
    body = os.urandom(300)
    store(db, sessions, 0, body)  # a table that is not empty
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    started = time.process_time()
    store(db, sessions, MESSAGES, body)
    cpu = time.process_time() - started
    frames = (os.path.getsize(path + "-wal") - 32) / (PAGE_SIZE + 24)
    db.close()
    shutil.rmtree(directory)
    return frames / MESSAGES, cpu / MESSAGES * 1e6


for label, session_index, dedupe_unique in [("as it is", True, True), ("without event_session", False, True),
                                            ("without the dedupe key's UNIQUE", True, False), ("without both", False, False)]:
    frames, cpu = run(session_index, dedupe_unique)
    print(f"{label}: {frames:.2f} WAL pages per message, {cpu:.0f} us CPU per message (page size {PAGE_SIZE}, batches of {BATCH}, {SESSIONS} sessions)")
