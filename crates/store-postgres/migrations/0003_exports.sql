-- Export jobs. Unlike events these rows change status, so they live in their
-- own table without the append-only triggers. Times are microseconds, UTC.
-- Mirrors the embedded backend's 0003_exports.sql.
CREATE TABLE export_jobs (
    id             BIGSERIAL PRIMARY KEY,
    account_id     BIGINT NOT NULL REFERENCES accounts(id),
    requested_by   TEXT NOT NULL,
    format         TEXT NOT NULL,
    compression    TEXT NOT NULL,
    filters        TEXT NOT NULL,
    seq_bound      BIGINT NOT NULL,
    status         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    started_at     BIGINT,
    completed_at   BIGINT,
    expires_at     BIGINT,
    row_count      BIGINT,
    size_bytes     BIGINT,
    sha256         TEXT,
    file_name      TEXT,
    error          TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    claimed_by     TEXT,
    claimed_until  BIGINT
);

-- The Exports list, newest first per account.
CREATE INDEX export_jobs_by_account ON export_jobs (account_id, created_at, id);
-- The workers' queue and the expiry sweep: only the rows still in play.
CREATE INDEX export_jobs_in_play ON export_jobs (status, id)
    WHERE status IN ('queued', 'running', 'completed');
