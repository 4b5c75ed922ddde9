-- How many events' openings name each personal object, in place of the
-- index `event_openings_by_object` (migration 0015), which answered the
-- same question ("does any event still use this object?", asked by an
-- erasure before it deletes an object, and by the trigger that refuses
-- deleting one in use) with one entry per event. That index grew at each
-- object's own append point: a group commit of about 1,000 events wrote
-- 329 of its pages to the WAL, 13 % of all the WAL frames of ingest at 1M
-- events (BENCHMARKS.md, "Where the WAL's bytes go"). A count per object
-- is one small row: the benchmark's 1M events name 12,002 objects, whose
-- counts fill about 40 pages.
--
-- The writer adds each group's uses in the group's transaction, once per
-- object (`personal_store::PersonalStore::write_uses`), with single-row
-- statements. Not a trigger on INSERT: a trigger opens a statement
-- transaction for each event's INSERT, and FTS5 flushes its pending terms
-- at every one of them (27 % slower ingest, BENCHMARKS.md, "A count of uses
-- per personal object"). Deletions (erasure, pruning: rare, and already
-- running triggers) take the count down by the trigger below. The writer
-- is the only code that adds openings (`auditlog copy` appends through it).
CREATE TABLE object_uses (
    object_id  INTEGER PRIMARY KEY,
    uses       INTEGER NOT NULL
);

-- The openings already stored, counted from the index being replaced.
INSERT INTO object_uses (object_id, uses)
SELECT object_id, COUNT(*) FROM event_openings INDEXED BY event_openings_by_object
GROUP BY object_id;

CREATE TRIGGER event_openings_uncount_use AFTER DELETE ON event_openings
BEGIN
    UPDATE object_uses SET uses = uses - 1 WHERE object_id = OLD.object_id;
END;

-- 0015's rule, read from the count.
DROP TRIGGER personal_objects_delete_unused;
CREATE TRIGGER personal_objects_delete_unused BEFORE DELETE ON personal_objects
WHEN COALESCE((SELECT uses FROM object_uses WHERE object_id = OLD.id), 0) > 0
BEGIN
    SELECT RAISE(ABORT, 'personal values are removed only under an Auditlog Retention or Auditlog Erasure record that covers their seq');
END;

-- A deleted object's count goes with it.
CREATE TRIGGER personal_objects_forget_uses AFTER DELETE ON personal_objects
BEGIN
    DELETE FROM object_uses WHERE object_id = OLD.id;
END;

DROP INDEX event_openings_by_object;
