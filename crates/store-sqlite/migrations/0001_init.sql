-- Accounts, keys, users and the append-only events table.
CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    taxonomy    TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    key_hash    BLOB NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts(id),
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (account_id, email)
);

-- One row per event. `leaf` holds the exact leaf bytes (the record itself);
-- the other columns are copies that queries filter on, checked against the
-- leaf by `auditlog verify`. Times are microseconds since the epoch, UTC.
CREATE TABLE events (
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    seq          INTEGER NOT NULL,
    time         INTEGER NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    action       TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    project      TEXT,
    app          TEXT,
    version      TEXT,
    target_id    TEXT,
    received_at  INTEGER NOT NULL,
    leaf         BLOB NOT NULL,
    leaf_hash    BLOB NOT NULL
);

CREATE UNIQUE INDEX events_by_seq ON events (account_id, seq);
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

-- Append-only, enforced by the database itself.
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE is refused');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE is refused');
END;
