-- The event log laid out in seq order (issue 12, docs/STORAGE-V2.md), on
-- PostgreSQL. Mirrors the embedded backend's 0010_event_log.sql where it
-- fits PostgreSQL.
--
-- Before this file runs, `src/layout_migration.rs` checks every event of the
-- old `events` table in the same transaction (the leaf against its stored
-- hash and the tree's, its seq, its personal values and its columns) and
-- refuses the database, naming the account and seq, at the first that
-- fails: tampered columns are never laundered into the new layout. Nothing
-- of this migration commits unless all of it succeeds.

-- Low-cardinality values, once per account: kind 1 holds an event type and
-- action (`["Test Case", "Update"]`), kind 2 a project, app and version
-- (`["Checkout", "Web", "2.3"]`, `null` where the event has none). The ids
-- are unique across accounts, so that an index on an id needs no account
-- column. Values never change (an edit would change what every event using
-- it reads; verify names the first).
CREATE TABLE log_values (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    kind        SMALLINT NOT NULL,
    value       JSONB NOT NULL,
    UNIQUE (account_id, kind, value)
);

-- Each actor of an account once, referenced from the log by `id`: the
-- actor's id is a personal value, so it lives here and not in the log,
-- where erasure can replace it without touching the log, its tree hashes
-- or its checkpoints. `name` and `email` are those of the actor's latest
-- event as the writer saw it (the console's user list).
CREATE TABLE actors (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    actor_id    TEXT NOT NULL,
    name        TEXT,
    email       TEXT,
    UNIQUE (account_id, actor_id)
);

-- One row per event: `key` is `account_id << 40 | seq` (the primary key, so
-- each account's events are one key range that only grows at its end).
--   time, received_at  microseconds since the epoch, UTC;
--   kind               log_values id of the event type and action;
--   place              log_values id of the project, app and version
--                      (NULL when the event has none of them);
--   actor              actors id;
--   id_hash,           the first 8 bytes of the leaf-style SHA-256 (a zero
--   target_hash        byte, then the text) of the event id and the target id,
--                      confirmed against the leaf by every reader that answers
--                      with one event;
--   leaf_dict, leaf    the exact leaf bytes, compressed with dictionary
--                      `leaf_dict` of leaf_dictionaries (NULL: as they are).
-- The leaf hash is not stored here: tree_hashes holds it at the leaf's
-- stored index. No foreign keys: the writer resolves every id in the
-- appending transaction, and verify reads every row through them.
CREATE TABLE event_log (
    key          BIGINT PRIMARY KEY,
    time         BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    kind         BIGINT NOT NULL,
    place        BIGINT,
    actor        BIGINT NOT NULL,
    id_hash      BIGINT NOT NULL,
    target_hash  BIGINT,
    leaf_dict    BIGINT,
    leaf         BYTEA NOT NULL
);

-- Event ids: idempotency and `GET /events/{id}`. Several servers share the
-- database and none holds the log's tail in memory, so this stays a B-tree;
-- unique per account, and confirmed against the leaf before it answers.
CREATE UNIQUE INDEX event_log_by_id ON event_log ((key >> 40), id_hash);
-- Every other index ends in (time, key), so that newest-first pages read one
-- index range in order and each grows at a few append points (one per value
-- in use) rather than at a random page per event.
CREATE INDEX event_log_by_time ON event_log ((key >> 40), time, key);
CREATE INDEX event_log_by_kind ON event_log (kind, time, key);
CREATE INDEX event_log_by_place ON event_log (place, time, key) WHERE place IS NOT NULL;
CREATE INDEX event_log_by_actor ON event_log (actor, time, key);
CREATE INDEX event_log_by_target ON event_log (target_hash, time, key) WHERE target_hash IS NOT NULL;

-- Append-only, enforced by the database itself (for every role, the owner's
-- included), as the old table was.
CREATE TRIGGER event_log_refuse_update BEFORE UPDATE ON event_log
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER event_log_refuse_delete BEFORE DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER event_log_refuse_truncate BEFORE TRUNCATE ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER log_values_refuse_update BEFORE UPDATE ON log_values
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER log_values_refuse_delete BEFORE DELETE ON log_values
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER log_values_refuse_truncate BEFORE TRUNCATE ON log_values
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- The data, moved in place (already checked, see above).
CREATE FUNCTION pg_temp.key_hash64(text TEXT) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT ('x' || encode(substring(sha256('\x00'::bytea || convert_to(text, 'UTF8')) FROM 1 FOR 8), 'hex'))::bit(64)::bigint
$$;

INSERT INTO log_values (account_id, kind, value)
SELECT DISTINCT account_id, 1::smallint, jsonb_build_array(event_type, action) FROM events;
INSERT INTO log_values (account_id, kind, value)
SELECT DISTINCT account_id, 2::smallint, jsonb_build_array(project, app, version) FROM events
WHERE project IS NOT NULL OR app IS NOT NULL OR version IS NOT NULL;

INSERT INTO actors (account_id, actor_id, name, email)
SELECT account_id, actor_id, name, email FROM event_actors;
INSERT INTO actors (account_id, actor_id)
SELECT DISTINCT account_id, actor_id FROM events
ON CONFLICT (account_id, actor_id) DO NOTHING;

INSERT INTO event_log (key, time, received_at, kind, place, actor, id_hash, target_hash, leaf_dict, leaf)
SELECT e.account_id << 40 | e.seq, e.time, e.received_at, k.id, p.id, a.id,
       pg_temp.key_hash64(e.event_id),
       CASE WHEN e.target_id IS NULL THEN NULL ELSE pg_temp.key_hash64(e.target_id) END,
       e.leaf_dict, e.leaf
FROM events e
JOIN log_values k ON k.account_id = e.account_id AND k.kind = 1
     AND k.value = jsonb_build_array(e.event_type, e.action)
LEFT JOIN log_values p ON p.account_id = e.account_id AND p.kind = 2
     AND p.value = jsonb_build_array(e.project, e.app, e.version)
JOIN actors a ON a.account_id = e.account_id AND a.actor_id = e.actor_id
ORDER BY e.account_id, e.seq;

-- The old table, its facet triggers and lists go: the writer keeps actors
-- (names and emails) and the console reads projects from log_values.
DROP TRIGGER event_personal_note_actor ON event_personal;
DROP FUNCTION event_personal_note_actor();
DROP TABLE events;
DROP FUNCTION events_note_facets();
DROP TABLE event_actors;
DROP TABLE event_projects;
