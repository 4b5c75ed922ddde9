-- Erasure (issue 16, docs/ERASURE.md), on PostgreSQL. Mirrors the embedded
-- backend's 0015_erasure.sql where it fits PostgreSQL: a version 2 event's
-- personal values (its event_personal row) are replaced by the erased form
-- (auditlog_core::leaf_v2::erased, `{"erased": …`), which says which values
-- it had, never what they were; its leaf, row and tree hashes stay. The
-- service role has no DELETE grant: `auditlog_erase_personal` (SECURITY
-- DEFINER) is the only way it erases, and the triggers below and of 0011
-- check the covering Auditlog Erasure record in the same transaction.

-- Whether a stored Auditlog Erasure record covers seq `seq` of `account`.
CREATE FUNCTION auditlog_is_erasure_covered(account BIGINT, seq BIGINT) RETURNS BOOLEAN
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM removal_coverage c
        JOIN event_log l ON l.key = (c.account_id << 40) | c.record_seq
        JOIN log_values v ON v.id = l.kind
        WHERE c.account_id = account AND c.first_seq <= seq AND c.last_seq >= seq
          AND v.value ->> 0 = 'Auditlog Erasure')
$$;

CREATE FUNCTION event_personal_erased_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF substring(NEW.personal FROM 1 FOR 10) = convert_to('{"erased":', 'UTF8')
       AND NOT auditlog_is_erasure_covered(NEW.account_id, NEW.seq) THEN
        RAISE EXCEPTION 'an event is erased only under an Auditlog Erasure record that covers its seq'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER event_personal_erased_needs_coverage BEFORE INSERT ON event_personal
    FOR EACH ROW EXECUTE FUNCTION event_personal_erased_check();

-- Bumped by each erasure transaction that renames actors: writers cache
-- actor ids and forget them when this changes.
CREATE TABLE erasure_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO erasure_generation (id, generation) VALUES (1, 0);

-- The only way the service role erases a version 2 event: its personal
-- values deleted (0011's trigger checks the coverage) and the erased form
-- put in their place (the trigger above checks that an Auditlog Erasure
-- record covers it). False when the event has no personal values to erase
-- (already erased, a version 1 event, or removed).
CREATE FUNCTION auditlog_erase_personal(account BIGINT, seq BIGINT, erased BYTEA)
RETURNS BOOLEAN LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    stored BYTEA;
BEGIN
    SELECT p.personal INTO stored FROM event_personal p
    WHERE p.account_id = account AND p.seq = auditlog_erase_personal.seq;
    IF NOT FOUND OR substring(stored FROM 1 FOR 10) = convert_to('{"erased":', 'UTF8') THEN
        RETURN FALSE;
    END IF;
    IF substring(erased FROM 1 FOR 10) <> convert_to('{"erased":', 'UTF8') THEN
        RAISE EXCEPTION 'event seq %: what replaces its personal values must be the erased form', seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    DELETE FROM event_personal p WHERE p.account_id = account AND p.seq = auditlog_erase_personal.seq;
    INSERT INTO event_personal (account_id, seq, personal) VALUES (account, seq, erased);
    RETURN TRUE;
END;
$$;
REVOKE ALL ON FUNCTION auditlog_erase_personal(BIGINT, BIGINT, BYTEA) FROM PUBLIC;

-- Erasure jobs (see the embedded backend's 0015_erasure.sql): never the
-- subject's id, only its pseudonym and seqs.
CREATE TABLE erasures (
    id             BIGSERIAL PRIMARY KEY,
    account_id     BIGINT NOT NULL REFERENCES accounts(id),
    status         TEXT NOT NULL,
    pseudonym      TEXT NOT NULL,
    requested_at   BIGINT NOT NULL,
    requested_by   TEXT NOT NULL,
    source         JSONB NOT NULL,
    covers         JSONB NOT NULL,
    actor_rows     JSONB NOT NULL,
    record_seq     BIGINT,
    next_seq       BIGINT NOT NULL,
    erased         BIGINT NOT NULL DEFAULT 0,
    held           BIGINT NOT NULL DEFAULT 0,
    claimed_until  BIGINT,
    finished_at    BIGINT
);
CREATE INDEX erasures_by_account ON erasures (account_id, id);
