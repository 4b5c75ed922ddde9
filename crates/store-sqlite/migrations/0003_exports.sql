-- Export jobs. Unlike events these rows change status, so they live in their
-- own table without the append-only triggers. Times are microseconds, UTC.
CREATE TABLE export_jobs (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts(id),
    requested_by   TEXT NOT NULL,
    format         TEXT NOT NULL,
    compression    TEXT NOT NULL,
    filters        TEXT NOT NULL,
    seq_bound      INTEGER NOT NULL,
    status         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    completed_at   INTEGER,
    expires_at     INTEGER,
    row_count      INTEGER,
    size_bytes     INTEGER,
    sha256         TEXT,
    file_name      TEXT,
    error          TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    claimed_by     TEXT,
    claimed_until  INTEGER
);

-- The Exports list, newest first per account.
CREATE INDEX export_jobs_by_account ON export_jobs (account_id, created_at, id);
-- The workers' queue and the expiry sweep.
CREATE INDEX export_jobs_by_status ON export_jobs (status, id);
