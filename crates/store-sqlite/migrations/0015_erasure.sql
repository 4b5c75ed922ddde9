-- Erasure (issue 16, docs/ERASURE.md): a data subject's personal values
-- leave the live database under one `Auditlog Erasure` record that covers
-- the subject's seqs (migration 0012 keeps the database's copy of the
-- coverage). A version 2 event keeps its leaf and row; its personal values
-- and openings are deleted (the triggers of 0012 check the coverage) and
-- its `event_personal` row holds what is served instead: which values it
-- had, never what they were, and the subject's pseudonym. A version 1 event loses its
-- whole body (a tombstone of 0012, kind `erased`).

-- The erased form of an erased version 2 event
-- (auditlog_core::leaf_v2::erased, `{"erased": …`) takes the place of its
-- personal values in `event_personal` (whose rows the readers already
-- fall back on): added only under a stored Auditlog Erasure record whose
-- coverage holds the seq; never changed (UPDATE stays refused).
CREATE TRIGGER event_personal_erased_needs_coverage BEFORE INSERT ON event_personal
WHEN substr(CAST(NEW.personal AS TEXT), 1, 10) = '{"erased":' AND NOT EXISTS (
    SELECT 1 FROM removal_coverage c
    JOIN event_log l ON l.key = (c.account_id << 40) | c.record_seq
    JOIN log_values v ON v.id = l.kind
    WHERE c.account_id = NEW.account_id
      AND NEW.seq BETWEEN c.first_seq AND c.last_seq
      AND json_extract(v.value, '$[0]') = 'Auditlog Erasure')
BEGIN
    SELECT RAISE(ABORT, 'an event is erased only under an Auditlog Erasure record that covers its seq');
END;

-- A distinct personal object (0009) leaves once no event's openings name
-- it (the erasure deletes the openings first, under the coverage).
DROP TRIGGER personal_objects_refuse_delete;
CREATE TRIGGER personal_objects_delete_unused BEFORE DELETE ON personal_objects
WHEN EXISTS (SELECT 1 FROM event_openings s WHERE s.object_id = OLD.id)
BEGIN
    SELECT RAISE(ABORT, 'personal values are removed only under an Auditlog Retention or Auditlog Erasure record that covers their seq');
END;
CREATE INDEX event_openings_by_object ON event_openings (object_id);

-- Bumped by each erasure transaction: the writer caches actor and
-- personal object ids, and forgets them when this changes (an erasure
-- renames actors and deletes personal objects).
CREATE TABLE erasure_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL
);
INSERT INTO erasure_generation (id, generation) VALUES (1, 0);

-- Erasure jobs: planned (the subject's seqs as ranges, the pseudonym; never
-- the subject's id), then the record appended, then events erased from
-- `next_seq` on, resumable after a crash and taken with a lease.
CREATE TABLE erasures (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts(id),
    status         TEXT NOT NULL,
    pseudonym      TEXT NOT NULL,
    requested_at   INTEGER NOT NULL,
    requested_by   TEXT NOT NULL,
    source         TEXT NOT NULL,
    covers         TEXT NOT NULL,
    actor_rows     TEXT NOT NULL,
    record_seq     INTEGER,
    next_seq       INTEGER NOT NULL,
    erased         INTEGER NOT NULL DEFAULT 0,
    held           INTEGER NOT NULL DEFAULT 0,
    claimed_until  INTEGER,
    finished_at    INTEGER
);
CREATE INDEX erasures_by_account ON erasures (account_id, id);
