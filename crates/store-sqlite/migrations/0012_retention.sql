-- Retention, legal holds and the removal of event bodies (issue 16,
-- docs/RETENTION.md). Pruning and erasure remove an event's body (its row of
-- event_log with its leaf and columns, its personal values) but never its
-- leaf hash, its tree hashes or its id; and only where a later
-- `Auditlog Retention` or `Auditlog Erasure` record covers its seq. The
-- database itself checks that in the removing transaction: the triggers
-- below replace the blanket refusals of DELETE on the log and the personal
-- values with that check. UPDATE stays refused everywhere.

-- The database's copy of what each removal record covers: the ranges of the
-- record's `details.covers` (`auditlog_core::coverage`). `verify` does not
-- trust it (it reads the records' leaves); the triggers use it.
CREATE TABLE removal_coverage (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    record_seq  INTEGER NOT NULL,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    PRIMARY KEY (account_id, record_seq, first_seq)
) WITHOUT ROWID;
CREATE INDEX removal_coverage_by_last ON removal_coverage (account_id, last_seq);

-- A range is only added for a stored removal record with a higher seq.
CREATE TRIGGER removal_coverage_needs_a_record BEFORE INSERT ON removal_coverage
WHEN NEW.first_seq < 1 OR NEW.last_seq < NEW.first_seq OR NEW.last_seq >= NEW.record_seq
  OR NOT EXISTS (
    SELECT 1 FROM event_log l JOIN log_values v ON v.id = l.kind
    WHERE l.key = (NEW.account_id << 40) | NEW.record_seq
      AND v.account_id = NEW.account_id AND v.kind = 1
      AND json_extract(v.value, '$[0]') IN ('Auditlog Retention', 'Auditlog Erasure'))
BEGIN
    SELECT RAISE(ABORT, 'removal coverage must name a stored Auditlog Retention or Auditlog Erasure record with a higher seq');
END;
CREATE TRIGGER removal_coverage_refuse_update BEFORE UPDATE ON removal_coverage
BEGIN
    SELECT RAISE(ABORT, 'removal coverage is append-only: UPDATE is refused');
END;
CREATE TRIGGER removal_coverage_refuse_delete BEFORE DELETE ON removal_coverage
BEGIN
    SELECT RAISE(ABORT, 'removal coverage is append-only: DELETE is refused');
END;

-- One row per event whose body was removed: its log key, its id (text and
-- key_hash64, so that a resent id stays idempotent and GET /events/{id}
-- answers 410), the record that covers it and why (`pruned`, `erased`).
CREATE TABLE removed_events (
    key         INTEGER PRIMARY KEY,
    id_hash     INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    record_seq  INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('pruned', 'erased'))
);
CREATE INDEX removed_events_by_id ON removed_events (id_hash);

CREATE TRIGGER removed_events_need_coverage BEFORE INSERT ON removed_events
WHEN NOT EXISTS (
    SELECT 1 FROM removal_coverage c
    WHERE c.account_id = NEW.key >> 40 AND c.record_seq = NEW.record_seq
      AND (NEW.key & 1099511627775) BETWEEN c.first_seq AND c.last_seq)
BEGIN
    SELECT RAISE(ABORT, 'a body is removed only under an Auditlog Retention or Auditlog Erasure record that covers its seq');
END;
CREATE TRIGGER removed_events_refuse_update BEFORE UPDATE ON removed_events
BEGIN
    SELECT RAISE(ABORT, 'removed events are append-only: UPDATE is refused');
END;
CREATE TRIGGER removed_events_refuse_delete BEFORE DELETE ON removed_events
BEGIN
    SELECT RAISE(ABORT, 'removed events are append-only: DELETE is refused');
END;

-- A row of the log leaves only once its tombstone (with the same id) is
-- written, which needs a covering record; removal records themselves never
-- leave (they are what covers the others).
DROP TRIGGER event_log_refuse_delete;
CREATE TRIGGER event_log_delete_only_covered BEFORE DELETE ON event_log
WHEN NOT EXISTS (SELECT 1 FROM removed_events r WHERE r.key = OLD.key AND r.id_hash = OLD.id_hash)
  OR EXISTS (
    SELECT 1 FROM log_values v WHERE v.id = OLD.kind
      AND json_extract(v.value, '$[0]') IN ('Auditlog Retention', 'Auditlog Erasure'))
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: a body is removed only under an Auditlog Retention or Auditlog Erasure record that covers its seq');
END;

-- Personal values (and openings) of an event leave only where a removal
-- record covers its seq.
DROP TRIGGER event_openings_refuse_delete;
CREATE TRIGGER event_openings_delete_only_covered BEFORE DELETE ON event_openings
WHEN NOT EXISTS (
    SELECT 1 FROM removal_coverage c
    WHERE c.account_id = OLD.account_id AND c.last_seq >= OLD.seq AND c.first_seq <= OLD.seq)
BEGIN
    SELECT RAISE(ABORT, 'openings are removed only under an Auditlog Retention or Auditlog Erasure record that covers their seq');
END;
DROP TRIGGER event_personal_refuse_delete;
CREATE TRIGGER event_personal_delete_only_covered BEFORE DELETE ON event_personal
WHEN NOT EXISTS (
    SELECT 1 FROM removal_coverage c
    WHERE c.account_id = OLD.account_id AND c.last_seq >= OLD.seq AND c.first_seq <= OLD.seq)
BEGIN
    SELECT RAISE(ABORT, 'personal values are removed only under an Auditlog Retention or Auditlog Erasure record that covers their seq');
END;

-- The account's retention policy: events are pruned once received more
-- than this many days ago (NULL: kept forever, the default).
ALTER TABLE accounts ADD COLUMN retention_days INTEGER;

-- Legal holds: while an active hold matches an event, neither pruning nor
-- erasure removes it. `filters` is the JSON of the query filters, `q` a
-- search query read in `tz`. Released holds stay, with who and when.
CREATE TABLE legal_holds (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    name         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    filters      TEXT NOT NULL,
    q            TEXT,
    tz           TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    released_by  TEXT,
    released_at  INTEGER
);
CREATE UNIQUE INDEX legal_holds_active_name ON legal_holds (account_id, name) WHERE released_at IS NULL;

-- Prunings: one row per pruning of an account, planned (range and the
-- holds that keep events in it), then its record appended, then bodies
-- removed from `next_seq` on, resumable after a crash; taken with a lease
-- like export jobs.
CREATE TABLE prune_jobs (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts(id),
    status         TEXT NOT NULL,
    planned_at     INTEGER NOT NULL,
    cutoff         INTEGER NOT NULL,
    first_seq      INTEGER NOT NULL,
    last_seq       INTEGER NOT NULL,
    details        TEXT NOT NULL,
    record_seq     INTEGER,
    next_seq       INTEGER NOT NULL,
    removed        INTEGER NOT NULL DEFAULT 0,
    claimed_until  INTEGER,
    finished_at    INTEGER
);
CREATE INDEX prune_jobs_by_account ON prune_jobs (account_id, id);
