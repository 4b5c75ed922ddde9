-- Personal values once per distinct value (issue 12: bytes per event). A
-- person's actor object, IP and user agent repeat from event to event; a
-- version 2 event now keeps only its openings (the salts, ~40 bytes) and a
-- reference to the distinct personal object its commitment is of, stored
-- once per account in `personal_objects` (the exact canonical JSON that
-- was committed, so the commitment is recomputed from it byte for byte).
-- Erasure removes an object and the events' openings; no leaf, hash or
-- checkpoint changes. Events stored before this migration keep their rows
-- in `event_personal`; readers take whichever holds the event.
CREATE TABLE personal_objects (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    digest      BLOB NOT NULL,
    object      BLOB NOT NULL,
    UNIQUE (account_id, digest)
);

CREATE TABLE event_openings (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    seq         INTEGER NOT NULL,
    openings    BLOB NOT NULL,
    object_id   INTEGER NOT NULL REFERENCES personal_objects(id),
    -- The values of committed `details` paths (canonical JSON), when any.
    details     BLOB,
    PRIMARY KEY (account_id, seq)
) WITHOUT ROWID;

CREATE TRIGGER personal_objects_refuse_update BEFORE UPDATE ON personal_objects
BEGIN
    SELECT RAISE(ABORT, 'personal values are append-only: UPDATE is refused');
END;
CREATE TRIGGER personal_objects_refuse_delete BEFORE DELETE ON personal_objects
BEGIN
    SELECT RAISE(ABORT, 'personal values are append-only: DELETE is refused');
END;
CREATE TRIGGER event_openings_refuse_update BEFORE UPDATE ON event_openings
BEGIN
    SELECT RAISE(ABORT, 'openings are append-only: UPDATE is refused');
END;
CREATE TRIGGER event_openings_refuse_delete BEFORE DELETE ON event_openings
BEGIN
    SELECT RAISE(ABORT, 'openings are append-only: DELETE is refused');
END;

-- The console's actor list: from each event's personal object (the name
-- and email of the latest event win, as before).
CREATE TRIGGER event_openings_note_actor AFTER INSERT ON event_openings
BEGIN
    INSERT INTO event_actors (account_id, actor_id, name, email)
    SELECT NEW.account_id,
           json_extract(CAST(o.object AS TEXT), '$."actor.id"'),
           json_extract(CAST(o.object AS TEXT), '$."actor.name"'),
           json_extract(CAST(o.object AS TEXT), '$."actor.email"')
    FROM personal_objects o WHERE o.id = NEW.object_id
    ON CONFLICT (account_id, actor_id) DO UPDATE SET name = excluded.name, email = excluded.email;
END;
