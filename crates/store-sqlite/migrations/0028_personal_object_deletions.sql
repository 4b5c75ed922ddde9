-- A count of deleted personal objects (issue 12: export speed). An object
-- never changes (UPDATE is refused) and is deleted only once no event uses
-- it (erasure, 0015 and 0027); a later object may then be given its id. A
-- reader that keeps objects by id across transactions (`object_cache.rs`)
-- reads this count in each transaction and forgets what it kept when the
-- count has moved: until then every id it kept still names the same bytes.
-- One row; the trigger counts in the deleting transaction, so the count
-- and the deletion commit together.
CREATE TABLE personal_object_deletions (
    only     INTEGER PRIMARY KEY CHECK (only = 1),
    deleted  INTEGER NOT NULL
);
INSERT INTO personal_object_deletions (only, deleted) VALUES (1, 0);

CREATE TRIGGER personal_objects_count_deletion AFTER DELETE ON personal_objects
BEGIN
    UPDATE personal_object_deletions SET deleted = deleted + 1 WHERE only = 1;
END;
