-- The event log laid out in seq order (issue 12, docs/STORAGE-V2.md).
--
-- This file creates the new tables; the migration itself is Rust
-- (`src/layout_migration.rs`): in the same transaction it verifies every
-- event of the old `events` table (leaf against its hash, the tree and its
-- columns; personal values against the leaf's commitments) and refuses the
-- store, naming the seq, at the first that fails; it then copies the events
-- in seq order and runs `0010_event_log_finish.sql`, which drops the old
-- table. Nothing of it commits unless all of it succeeds.

-- Low-cardinality values, once per account: kind 1 holds an event type and
-- action (`["Test Case","Update"]`), kind 2 a project, app and version
-- (`["Checkout","Web","2.3"]`, `null` where the event has none), as the
-- JSON array of their texts. The ids are unique across accounts, so that
-- an index on an id needs no account column. Values never change: an edit
-- would change what every event using it reads (verify names the first).
CREATE TABLE log_values (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    kind        INTEGER NOT NULL,
    value       TEXT NOT NULL,
    UNIQUE (account_id, kind, value)
);

CREATE TRIGGER log_values_refuse_update BEFORE UPDATE ON log_values
BEGIN
    SELECT RAISE(ABORT, 'log values are append-only: UPDATE is refused');
END;

CREATE TRIGGER log_values_refuse_delete BEFORE DELETE ON log_values
BEGIN
    SELECT RAISE(ABORT, 'log values are append-only: DELETE is refused');
END;

-- Each actor of an account once, referenced from the log by `id`: the
-- actor's id is a personal value, so it lives here and not in the log,
-- where erasure (issue 16) can replace it without touching the log, its
-- tree hashes or its checkpoints. `name` and `email` are those of the
-- actor's latest event (the console's user list).
CREATE TABLE actors (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    actor_id    TEXT NOT NULL,
    name        TEXT,
    email       TEXT,
    UNIQUE (account_id, actor_id)
);

-- One row per event, in seq order: `key` is `account_id << 40 | seq`, the
-- table's INTEGER PRIMARY KEY, so the table is its own seq index and each
-- account's events are one key range that only grows at its end.
--   time, received_at  microseconds since the epoch, UTC;
--   kind               log_values id of the event type and action;
--   place              log_values id of the project, app and version
--                      (NULL when the event has none of them);
--   actor              actors id;
--   id_hash,           key_hash64 of the event id and of the target's id
--   target_hash        (auditlog_store::key_hash64: the first 8 bytes of their
--                      SHA-256), confirmed against the leaf by every reader;
--   leaf_dict, leaf    the exact leaf bytes, compressed with dictionary
--                      `leaf_dict` of leaf_dictionaries (NULL: as they are).
-- The leaf hash is not stored here: tree_hashes holds it at the leaf's
-- stored index (auditlog_core::merkle::stored_hash_index(0, seq - 1)).
-- There are no foreign keys: the writer resolves every id in the appending
-- transaction, and verify reads every row through them.
CREATE TABLE event_log (
    key          INTEGER PRIMARY KEY,
    time         INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    kind         INTEGER NOT NULL,
    place        INTEGER,
    actor        INTEGER NOT NULL,
    id_hash      INTEGER NOT NULL,
    target_hash  INTEGER,
    leaf_dict    INTEGER,
    leaf         BLOB NOT NULL
);

-- Every index ends in `time` (and, implicitly, `key`), so that newest-first
-- pages read one index range in order, and each grows at a few append
-- points (one per value in use) rather than at a random page per event.
-- An account's events in time order: the unfiltered page and time ranges.
CREATE INDEX event_log_by_time ON event_log (key >> 40, time);
-- Event type and action (one id per pair).
CREATE INDEX event_log_by_kind ON event_log (kind, time);
-- Project, app and version (one id per triple).
CREATE INDEX event_log_by_place ON event_log (place, time) WHERE place IS NOT NULL;
-- One user's activity (`user`, and `user` + time range).
CREATE INDEX event_log_by_actor ON event_log (actor, time);
-- Event ids: idempotency and `GET /events/{id}` (a random key: one entry
-- of 8 bytes plus the key, not the id's text).
CREATE INDEX event_log_by_id ON event_log (id_hash);
-- An entity's history (`target_id`).
CREATE INDEX event_log_by_target ON event_log (target_hash, time) WHERE target_hash IS NOT NULL;

-- Append-only, enforced by the database itself.
CREATE TRIGGER event_log_refuse_update BEFORE UPDATE ON event_log
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE is refused');
END;

CREATE TRIGGER event_log_refuse_delete BEFORE DELETE ON event_log
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE is refused');
END;

-- Room for search (issue 13): a contentless FTS5 table whose rowid is the
-- log's `key` (`CREATE VIRTUAL TABLE event_search USING fts5(..., content='',
-- contentless_delete=1)` with `secure_delete`), written by the writer in the
-- appending transaction; there is no content table to keep in step.

-- The console's actor list moves into `actors` (the writer keeps names and
-- emails now; the triggers that did are dropped with their tables).
INSERT INTO actors (account_id, actor_id, name, email)
SELECT account_id, actor_id, name, email FROM event_actors ORDER BY account_id, actor_id;
