-- Log streams (issue 15): destinations an account's events are pushed to,
-- each with its cursor (the highest seq examined), the bounds of the batch
-- in flight, its lease, and a short history of batches. The secret is
-- sealed by the server (encrypted with a key outside the database).
CREATE TABLE log_streams (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts(id),
    kind           TEXT NOT NULL,
    format         TEXT NOT NULL,
    url            TEXT NOT NULL,
    filters        TEXT NOT NULL,
    sealed_secret  BLOB NOT NULL,
    status         TEXT NOT NULL,
    cursor         INTEGER NOT NULL,
    batch_first    INTEGER,
    batch_last     INTEGER,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    failing_since  INTEGER,
    claimed_by     TEXT,
    claimed_until  INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE INDEX log_streams_by_account ON log_streams (account_id, id);

CREATE TABLE log_stream_batches (
    id          INTEGER PRIMARY KEY,
    stream_id   INTEGER NOT NULL REFERENCES log_streams(id) ON DELETE CASCADE,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    status      TEXT NOT NULL,
    response    TEXT NOT NULL,
    at          INTEGER NOT NULL
);

CREATE INDEX log_stream_batches_by_stream ON log_stream_batches (stream_id, id);
