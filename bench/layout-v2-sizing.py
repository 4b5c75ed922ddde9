#!/usr/bin/env python3
"""Sizes candidate storage layouts for issue 12 (Storage v2) on the events of
an existing Auditlog SQLite store, before any Rust is written for them.

Usage: layout-v2-sizing.py STORE.db [--limit N] [--out DIR]

It reads the store's `events` and `tree_hashes` tables (read-only), builds
each candidate layout in a fresh database under DIR, and prints, per layout:
bytes per event on disk (after a checkpoint, every table and index included)
split by table and index (SQLite's dbstat), and the WAL bytes that appending
the events in commits of 500 wrote per event (what one group commit dirties).

The leaf v2 here is an approximation of SPEC "Leaf version 2" good enough for
sizing: the v1 leaf without the personal values (actor, context.ip,
context.user_agent), with `"v": 2`, a `source` naming a key, and one random
32-byte commitment; the personal values and a 16-byte salt go to their own
table. Needs the `zstandard` package (pip install zstandard)."""

import argparse
import base64
import hashlib
import json
import os
import sqlite3
import struct
import time

import zstandard

GROUP = 500
PERSONAL = ("ip", "user_agent")


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def to_v2(leaf, rng_state):
    """The v1 leaf's JSON as a v2 leaf, and its personal values."""
    event = json.loads(leaf)
    actor = event.pop("actor", None) or {}
    context = event.get("context") or {}
    personal = {"actor": actor}
    for key in PERSONAL:
        if key in context:
            personal[key] = context.pop(key)
    if not context:
        event.pop("context", None)
    event["v"] = 2
    event["source"] = {"key": "k_7Hq2mZpQ", "name": ""}
    rng_state[0] = hashlib.sha256(rng_state[0]).digest()
    event["personal"] = {"c": base64.b64encode(rng_state[0]).decode()}
    return canonical(event), personal


def hash64(account, text):
    digest = hashlib.blake2b(f"{account}\0{text}".encode(), digest_size=8).digest()
    return struct.unpack("<q", digest)[0]


def size_report(path):
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = db.execute(
        "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
    ).fetchall()
    total = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    return total, rows


LAYOUTS = {}


def layout(name):
    def register(fn):
        LAYOUTS[name] = fn
        return fn
    return register


SCHEMA_V2 = """
CREATE TABLE dict (account_id INTEGER NOT NULL, kind INTEGER NOT NULL, value TEXT NOT NULL,
                   id INTEGER NOT NULL, PRIMARY KEY (account_id, kind, value)) WITHOUT ROWID;
CREATE TABLE zdicts (account_id INTEGER NOT NULL, version INTEGER NOT NULL, dict BLOB NOT NULL,
                     PRIMARY KEY (account_id, version)) WITHOUT ROWID;
-- One row per event; rowid = account_id << 40 | seq, so each account's
-- events are one key range appended at its end.
CREATE TABLE log (key INTEGER PRIMARY KEY, time INTEGER NOT NULL, type_id INTEGER NOT NULL,
                  action_id INTEGER NOT NULL, project_id INTEGER, app_id INTEGER,
                  version_id INTEGER, actor_ref INTEGER NOT NULL, target_h INTEGER,
                  id_h INTEGER NOT NULL, received_at INTEGER NOT NULL, leaf BLOB NOT NULL);
-- Personal values: erasure deletes rows here, never in `log`.
CREATE TABLE actors (ref INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, actor_id TEXT NOT NULL,
                     name TEXT, email TEXT);
CREATE UNIQUE INDEX actors_by_id ON actors (account_id, actor_id);
CREATE TABLE personal (key INTEGER PRIMARY KEY, salt BLOB NOT NULL, ip TEXT, ua_ref INTEGER);
CREATE TABLE tree_hashes (account_id INTEGER NOT NULL, hash_index INTEGER NOT NULL,
                          hash BLOB NOT NULL, PRIMARY KEY (account_id, hash_index)) WITHOUT ROWID;
"""

INDEXES = {
    "full": [
        "CREATE INDEX log_by_time ON log (time)",
        "CREATE INDEX log_by_type ON log (type_id, time)",
        "CREATE INDEX log_by_action ON log (action_id, time)",
        "CREATE INDEX log_by_actor ON log (actor_ref, time)",
        "CREATE INDEX log_by_project ON log (project_id, time)",
        "CREATE INDEX log_by_app ON log (app_id, version_id, time)",
        "CREATE INDEX log_by_target ON log (target_h, time)",
        "CREATE INDEX log_by_id ON log (id_h)",
    ],
    # Version is only ever filtered with its app (dictionary ids are per
    # account, so app/version ids already imply the account); the time index
    # keys on the global row key's account part through the rowid.
    "lean": [
        "CREATE INDEX log_by_time ON log (time)",
        "CREATE INDEX log_by_type_action ON log (type_id, action_id, time)",
        "CREATE INDEX log_by_actor ON log (actor_ref, time)",
        "CREATE INDEX log_by_project ON log (project_id, app_id, version_id, time)",
        "CREATE INDEX log_by_target ON log (target_h, time)",
        "CREATE INDEX log_by_id ON log (id_h)",
    ],
    # The random and high-cardinality keys (event id, target, actor) leave
    # the B-trees: the open segment's keys are held in memory (rebuilt from
    # the log's tail at start), and each sealed segment of SEGMENT events
    # gets one sorted run per key, written once as a blob.
    "segmented": [
        "CREATE INDEX log_by_time ON log (time)",
        "CREATE INDEX log_by_type_action ON log (type_id, action_id, time)",
        "CREATE INDEX log_by_project ON log (project_id, app_id, version_id, time)",
        "CREATE TABLE runs (account_id INTEGER NOT NULL, first_seq INTEGER NOT NULL,"
        " kind INTEGER NOT NULL, run BLOB NOT NULL, PRIMARY KEY (account_id, first_seq, kind))"
        " WITHOUT ROWID",
    ],
}
SEGMENT = 65536


def build_v2(src, dst, limit, indexes, block):
    db = sqlite3.connect(dst, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.executescript(SCHEMA_V2)
    for sql in INDEXES[indexes]:
        db.execute(sql)
    rows = src.execute(
        "SELECT account_id, seq, time, event_id, event_type, action, actor_id, project, app,"
        " version, target_id, received_at, leaf FROM events ORDER BY account_id, seq"
        + (f" LIMIT {limit}" if limit else "")
    ).fetchall()
    rng = [b"seed"]
    v2 = []
    for r in rows:
        leaf, personal = to_v2(r[12], rng)
        v2.append((r, leaf, personal))
    # One zstd dictionary per account, trained on its first leaves (they hold
    # no personal values in clear).
    compressors = {}
    for account in sorted({r[0] for r, _, _ in v2}):
        samples = [leaf for r, leaf, _ in v2 if r[0] == account][:20000]
        zdict = zstandard.train_dictionary(64 * 1024, samples)
        compressors[account] = zstandard.ZstdCompressor(level=3, dict_data=zdict)
        db.execute("INSERT INTO zdicts VALUES (?, 1, ?)", (account, zdict.as_bytes()))
    ids = {}
    actors = {}
    uas = {}

    def dict_id(account, kind, value):
        if value is None:
            return None
        key = (account, kind, value)
        if key not in ids:
            ids[key] = len(ids) + 1
            db.execute("INSERT INTO dict VALUES (?, ?, ?, ?)", (account, kind, value, ids[key]))
        return ids[key]

    tree = src.execute(
        "SELECT account_id, hash_index, hash FROM tree_hashes ORDER BY account_id, hash_index"
    ).fetchall()
    wal = dst + "-wal"
    open_runs = {}
    wal_bytes = 0
    leaf_plain = 0
    leaf_stored = 0
    started = time.time()
    for start in range(0, len(v2), GROUP):
        db.execute("BEGIN IMMEDIATE")
        for r, leaf, personal in v2[start:start + GROUP]:
            account, seq = r[0], r[1]
            key = account << 40 | seq
            actor = personal["actor"]
            aref = actors.get((account, actor.get("id")))
            if aref is None:
                aref = len(actors) + 1
                actors[(account, actor.get("id"))] = aref
                db.execute("INSERT INTO actors VALUES (?, ?, ?, ?, ?)",
                           (aref, account, actor.get("id"), actor.get("name"), actor.get("email")))
            ua = personal.get("user_agent")
            ua_ref = None
            if ua is not None:
                ua_ref = uas.setdefault(ua, len(uas) + 1)
            stored = compressors[account].compress(leaf) if block == 1 else leaf
            leaf_plain += len(leaf)
            leaf_stored += len(stored)
            db.execute(
                "INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, r[2], dict_id(account, 1, r[4]), dict_id(account, 2, r[5]),
                 dict_id(account, 3, r[7]), dict_id(account, 4, r[8]), dict_id(account, 5, r[9]),
                 aref, hash64(account, r[10]) if r[10] is not None else None,
                 hash64(account, r[3]), r[11], stored))
            db.execute("INSERT INTO personal VALUES (?, ?, ?, ?)",
                       (key, os.urandom(16), personal.get("ip"), ua_ref))
        if indexes == "segmented":
            seal_segments(db, v2[start:start + GROUP], actors, open_runs)
        db.execute("COMMIT")
    wal_bytes = os.path.getsize(wal) if os.path.exists(wal) else 0
    seconds = time.time() - started
    # Tree hashes are the same in every layout (the leaf hash included:
    # no separate leaf_hash column).
    db.execute("BEGIN")
    db.executemany("INSERT INTO tree_hashes VALUES (?, ?, ?)", tree if not limit else
                   [t for t in tree if t[1] < 2 * limit + 64])
    db.execute("COMMIT")
    db.close()
    return len(v2), wal_bytes, leaf_plain, leaf_stored, seconds


def seal_segments(db, group, actors, open_runs):
    """Adds the group's keys to its accounts' open segments; a segment that
    reaches SEGMENT events is written as three sorted runs (event id hash,
    target hash, actor ref; each entry key + seq)."""
    for r, _, personal in group:
        account, seq = r[0], r[1]
        runs = open_runs.setdefault(account, {"first": seq, "id": [], "target": [], "actor": []})
        runs["id"].append((hash64(account, r[3]), seq))
        if r[10] is not None:
            runs["target"].append((hash64(account, r[10]), seq))
        runs["actor"].append((actors[(account, personal["actor"].get("id"))], seq))
        if seq - runs["first"] + 1 == SEGMENT:
            for kind, name in enumerate(("id", "target", "actor")):
                blob = b"".join(struct.pack("<qI", k, s - runs["first"]) for k, s in sorted(runs[name]))
                db.execute("INSERT INTO runs VALUES (?, ?, ?, ?)",
                           (account, runs["first"], kind, zstandard.ZstdCompressor(level=3).compress(blob)))
            del open_runs[account]


def wal_of_v1(src, dst, limit):
    """The current layout, rebuilt by appending the same events in commits of
    500, for its WAL bytes per event."""
    db = sqlite3.connect(dst, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    schema = [r[0] for r in src.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL"
        " AND type IN ('table', 'index')")]
    for sql in schema:
        db.execute(sql)
    rows = src.execute("SELECT * FROM events ORDER BY account_id, seq"
                       + (f" LIMIT {limit}" if limit else "")).fetchall()
    marks = ",".join("?" * len(rows[0]))
    for start in range(0, len(rows), GROUP):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(f"INSERT INTO events VALUES ({marks})", rows[start:start + GROUP])
        db.execute("COMMIT")
    wal = os.path.getsize(dst + "-wal")
    db.close()
    return len(rows), wal


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--out", default="/tmp/layout-v2")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    src = sqlite3.connect(f"file:{args.store}?mode=ro", uri=True)
    n_all = src.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    total, rows = size_report(args.store) if not args.limit else (0, [])
    if total:
        print(f"## current store: {n_all} events, {total / n_all:,.0f} bytes/event")
        for name, size in rows:
            print(f"  {name:28} {size / n_all:8,.1f}")
    v1_path = os.path.join(args.out, "v1.db")
    for p in (v1_path, v1_path + "-wal"):
        if os.path.exists(p):
            os.remove(p)
    n, wal = wal_of_v1(src, v1_path, args.limit)
    print(f"## v1 layout appended in commits of {GROUP}: WAL {wal / n:,.0f} bytes/event")
    for p in (v1_path, v1_path + "-wal", v1_path + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    for indexes in INDEXES:
        path = os.path.join(args.out, f"v2-{indexes}.db")
        for p in (path, path + "-wal", path + "-shm"):
            if os.path.exists(p):
                os.remove(p)
        n, wal, plain, stored, seconds = build_v2(src, path, args.limit, indexes, 1)
        total, rows = size_report(path)
        print(f"## v2 ({indexes} indexes): {n} events, {total / n:,.0f} bytes/event;"
              f" WAL {wal / n:,.0f} bytes/event in commits of {GROUP};"
              f" leaf v2 {plain / n:,.0f} -> {stored / n:,.0f} bytes zstd+dict;"
              f" {n / seconds:,.0f} events/s (Python)")
        for name, size in rows:
            print(f"  {name:28} {size / n:8,.1f}")
        for p in (path, path + "-wal", path + "-shm"):
            if os.path.exists(p):
                os.remove(p)


if __name__ == "__main__":
    main()
