-- Retention, legal holds and the removal of event bodies (issue 16,
-- docs/RETENTION.md), on PostgreSQL. Mirrors the embedded backend's
-- 0012_retention.sql where it fits PostgreSQL.
--
-- Pruning and erasure remove an event's body (its event_log row with its
-- leaf and columns, its personal values) but never its leaf hash, its tree
-- hashes or its id, and only where a later `Auditlog Retention` or
-- `Auditlog Erasure` record covers its seq. The service role has no DELETE
-- grant (service-role.sql): `auditlog_remove_body`, a SECURITY DEFINER
-- function, is the only way it removes a body, and the triggers below (which
-- bind every role, the owner's included) check the covering record in the
-- removing transaction. UPDATE and TRUNCATE stay refused.

-- event ids' 64-bit hash, as auditlog_store::key_hash64 computes it.
CREATE FUNCTION auditlog_key_hash64(text TEXT) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT ('x' || encode(substring(sha256('\x00'::bytea || convert_to(text, 'UTF8')) FROM 1 FOR 8), 'hex'))::bit(64)::bigint
$$;

-- Whether the event at `key` is a removal record (never removed itself).
CREATE FUNCTION auditlog_is_removal_record(record_key BIGINT) RETURNS BOOLEAN LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM event_log l JOIN log_values v ON v.id = l.kind
        WHERE l.key = record_key AND v.kind = 1 AND v.account_id = (record_key >> 40)
          AND v.value ->> 0 IN ('Auditlog Retention', 'Auditlog Erasure'))
$$;

-- The database's copy of what each removal record covers (the ranges of
-- its `details.covers`); verify reads the records' leaves instead.
CREATE TABLE removal_coverage (
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    record_seq  BIGINT NOT NULL,
    first_seq   BIGINT NOT NULL,
    last_seq    BIGINT NOT NULL,
    PRIMARY KEY (account_id, record_seq, first_seq)
);
CREATE INDEX removal_coverage_by_last ON removal_coverage (account_id, last_seq);

-- Whether a stored removal record covers seq `seq` of `account`.
CREATE FUNCTION auditlog_is_covered(account BIGINT, seq BIGINT) RETURNS BOOLEAN LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM removal_coverage c
        WHERE c.account_id = account AND c.first_seq <= seq AND c.last_seq >= seq)
$$;

CREATE FUNCTION removal_coverage_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.first_seq < 1 OR NEW.last_seq < NEW.first_seq OR NEW.last_seq >= NEW.record_seq
       OR NOT auditlog_is_removal_record((NEW.account_id << 40) | NEW.record_seq) THEN
        RAISE EXCEPTION 'removal coverage must name a stored Auditlog Retention or Auditlog Erasure record with a higher seq'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER removal_coverage_needs_a_record BEFORE INSERT ON removal_coverage
    FOR EACH ROW EXECUTE FUNCTION removal_coverage_check();
CREATE TRIGGER removal_coverage_refuse_update BEFORE UPDATE ON removal_coverage
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER removal_coverage_refuse_delete BEFORE DELETE ON removal_coverage
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER removal_coverage_refuse_truncate BEFORE TRUNCATE ON removal_coverage
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- One row per event whose body was removed: its key, its id (hash and
-- text: idempotency and 410 stay exact), the record that covers it, why.
CREATE TABLE removed_events (
    key         BIGINT PRIMARY KEY,
    id_hash     BIGINT NOT NULL,
    event_id    TEXT NOT NULL,
    record_seq  BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('pruned', 'erased'))
);
CREATE INDEX removed_events_by_id ON removed_events ((key >> 40), id_hash);

CREATE FUNCTION removed_events_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM removal_coverage c
        WHERE c.account_id = NEW.key >> 40 AND c.record_seq = NEW.record_seq
          AND (NEW.key & 1099511627775) BETWEEN c.first_seq AND c.last_seq) THEN
        RAISE EXCEPTION 'a body is removed only under an Auditlog Retention or Auditlog Erasure record that covers its seq'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER removed_events_need_coverage BEFORE INSERT ON removed_events
    FOR EACH ROW EXECUTE FUNCTION removed_events_check();
CREATE TRIGGER removed_events_refuse_update BEFORE UPDATE ON removed_events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER removed_events_refuse_delete BEFORE DELETE ON removed_events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER removed_events_refuse_truncate BEFORE TRUNCATE ON removed_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- A row of the log leaves only once its tombstone (with the same id) is
-- written, which needs a covering record; removal records never leave.
CREATE FUNCTION event_log_delete_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM removed_events r WHERE r.key = OLD.key AND r.id_hash = OLD.id_hash)
       OR auditlog_is_removal_record(OLD.key) THEN
        RAISE EXCEPTION 'events are append-only: a body is removed only under an Auditlog Retention or Auditlog Erasure record that covers its seq'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END;
$$;
DROP TRIGGER event_log_refuse_delete ON event_log;
CREATE TRIGGER event_log_delete_only_covered BEFORE DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION event_log_delete_check();

-- Personal values leave only where a removal record covers their seq.
CREATE FUNCTION event_personal_delete_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT auditlog_is_covered(OLD.account_id, OLD.seq) THEN
        RAISE EXCEPTION 'personal values are removed only under an Auditlog Retention or Auditlog Erasure record that covers their seq'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END;
$$;
DROP TRIGGER event_personal_refuse_delete ON event_personal;
CREATE TRIGGER event_personal_delete_only_covered BEFORE DELETE ON event_personal
    FOR EACH ROW EXECUTE FUNCTION event_personal_delete_check();

-- The only way the service role removes a body: the tombstone (its id
-- checked against the row's hash), the personal values, the row. Runs as
-- the owner of the tables; the triggers above still check the coverage.
-- False when the event has no row (already removed).
CREATE FUNCTION auditlog_remove_body(account BIGINT, seq BIGINT, event_id TEXT, record_seq BIGINT, kind TEXT)
RETURNS BOOLEAN LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    row_key BIGINT := (account << 40) | seq;
    stored_hash BIGINT;
BEGIN
    SELECT l.id_hash INTO stored_hash FROM event_log l WHERE l.key = row_key;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    IF stored_hash <> auditlog_key_hash64(event_id) THEN
        RAISE EXCEPTION 'event seq % does not have the id %: its body is not removed', seq, event_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    INSERT INTO removed_events (key, id_hash, event_id, record_seq, kind)
    VALUES (row_key, stored_hash, event_id, record_seq, kind);
    DELETE FROM event_personal p WHERE p.account_id = account AND p.seq = auditlog_remove_body.seq;
    DELETE FROM event_log l WHERE l.key = row_key;
    RETURN TRUE;
END;
$$;
REVOKE ALL ON FUNCTION auditlog_remove_body(BIGINT, BIGINT, TEXT, BIGINT, TEXT) FROM PUBLIC;

-- The account's retention policy in days (NULL: kept forever, the default).
ALTER TABLE accounts ADD COLUMN retention_days INTEGER;

-- Legal holds (see the embedded backend's 0012_retention.sql).
CREATE TABLE legal_holds (
    id           BIGSERIAL PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts(id),
    name         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    filters      JSONB NOT NULL,
    q            TEXT,
    tz           TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    released_by  TEXT,
    released_at  BIGINT
);
CREATE UNIQUE INDEX legal_holds_active_name ON legal_holds (account_id, name) WHERE released_at IS NULL;

-- Prunings, resumable and leased across servers (like export jobs).
CREATE TABLE prune_jobs (
    id             BIGSERIAL PRIMARY KEY,
    account_id     BIGINT NOT NULL REFERENCES accounts(id),
    status         TEXT NOT NULL,
    planned_at     BIGINT NOT NULL,
    cutoff         BIGINT NOT NULL,
    first_seq      BIGINT NOT NULL,
    last_seq       BIGINT NOT NULL,
    details        JSONB NOT NULL,
    record_seq     BIGINT,
    next_seq       BIGINT NOT NULL,
    removed        BIGINT NOT NULL DEFAULT 0,
    claimed_until  BIGINT,
    finished_at    BIGINT
);
CREATE INDEX prune_jobs_by_account ON prune_jobs (account_id, id);
