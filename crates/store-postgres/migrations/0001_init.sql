-- Accounts, keys, users, the per-account sequencers and the append-only
-- events table. Mirrors the embedded backend's 0001_init.sql column for column.
CREATE TABLE accounts (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    taxonomy    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    key_hash    BYTEA NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id             BIGSERIAL PRIMARY KEY,
    account_id     BIGINT NOT NULL REFERENCES accounts(id),
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    UNIQUE (account_id, email)
);

-- The account's tree size. Every append locks this row FOR UPDATE and moves
-- `last_seq` in the same transaction as its inserts, so seqs are gapless
-- across processes: an aborted transaction leaves no hole, unlike a SEQUENCE.
CREATE TABLE account_sequencers (
    account_id  BIGINT PRIMARY KEY REFERENCES accounts(id),
    last_seq    BIGINT NOT NULL DEFAULT 0
);

-- One row per event. `leaf` holds the exact leaf bytes (the record itself);
-- the other columns are copies that queries filter on, checked against the
-- leaf by `auditlog verify`. Times are microseconds since the epoch, UTC.
CREATE TABLE events (
    account_id   BIGINT NOT NULL REFERENCES accounts(id),
    seq          BIGINT NOT NULL,
    time         BIGINT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    action       TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    project      TEXT,
    app          TEXT,
    version      TEXT,
    target_id    TEXT,
    received_at  BIGINT NOT NULL,
    leaf         BYTEA NOT NULL,
    leaf_hash    BYTEA NOT NULL,
    PRIMARY KEY (account_id, seq)
);

CREATE UNIQUE INDEX events_by_id ON events (account_id, event_id);
-- Newest-first paging, alone and within each seed filter.
CREATE INDEX events_by_time ON events (account_id, time, seq);
CREATE INDEX events_by_type ON events (account_id, event_type, time, seq);
CREATE INDEX events_by_action ON events (account_id, action, time, seq);
CREATE INDEX events_by_actor ON events (account_id, actor_id, time, seq);
CREATE INDEX events_by_project ON events (account_id, project, time, seq);
CREATE INDEX events_by_app ON events (account_id, app, version, time, seq);
CREATE INDEX events_by_version ON events (account_id, version, time, seq);
CREATE INDEX events_by_target ON events (account_id, target_id, time, seq);

-- Append-only, enforced by the database itself (for every role, including
-- the owner; a role without UPDATE/DELETE grants is refused even earlier).
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
