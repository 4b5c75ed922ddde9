-- Log streams (issue 15): mirrors the embedded backend's 0008_streams.sql.
CREATE TABLE log_streams (
    id             BIGSERIAL PRIMARY KEY,
    account_id     BIGINT NOT NULL REFERENCES accounts(id),
    kind           TEXT NOT NULL,
    format         TEXT NOT NULL,
    url            TEXT NOT NULL,
    filters        TEXT NOT NULL,
    sealed_secret  BYTEA NOT NULL,
    status         TEXT NOT NULL,
    cursor         BIGINT NOT NULL,
    batch_first    BIGINT,
    batch_last     BIGINT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    failing_since  BIGINT,
    claimed_by     TEXT,
    claimed_until  BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE INDEX log_streams_by_account ON log_streams (account_id, id);

CREATE TABLE log_stream_batches (
    id          BIGSERIAL PRIMARY KEY,
    stream_id   BIGINT NOT NULL REFERENCES log_streams(id) ON DELETE CASCADE,
    first_seq   BIGINT NOT NULL,
    last_seq    BIGINT NOT NULL,
    events      BIGINT NOT NULL,
    attempts    INTEGER NOT NULL,
    status      TEXT NOT NULL,
    response    TEXT NOT NULL,
    at          BIGINT NOT NULL
);

CREATE INDEX log_stream_batches_by_stream ON log_stream_batches (stream_id, id);
