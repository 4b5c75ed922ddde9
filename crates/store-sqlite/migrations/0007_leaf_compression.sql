-- Leaf bytes at rest (auditlog_store::leaf_codec): a version 2 leaf is
-- stored compressed with its account's dictionary, named in `leaf_dict`;
-- NULL means the leaf is stored as it is (every version 1 leaf, and an
-- account's first version 2 leaves). `leaf_hash` is always the hash of the
-- exact leaf bytes, so verify decompresses and hashes.
ALTER TABLE events ADD COLUMN leaf_dict INTEGER REFERENCES leaf_dictionaries(id);

-- Each account's dictionaries, trained on its own version 2 leaves (which
-- hold no personal value in clear), so no dictionary does either. Ids are
-- unique across accounts; a dictionary is never changed once leaves use it.
CREATE TABLE leaf_dictionaries (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    dictionary  BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX leaf_dictionaries_by_account ON leaf_dictionaries (account_id, id);

CREATE TRIGGER leaf_dictionaries_refuse_update BEFORE UPDATE ON leaf_dictionaries
BEGIN
    SELECT RAISE(ABORT, 'leaf dictionaries are append-only: UPDATE is refused');
END;

CREATE TRIGGER leaf_dictionaries_refuse_delete BEFORE DELETE ON leaf_dictionaries
BEGIN
    SELECT RAISE(ABORT, 'leaf dictionaries are append-only: DELETE is refused');
END;

-- A compressed leaf is not JSON: the actor trigger reads only stored-as-is
-- version 1 leaves (version 2 actors come from event_personal).
DROP TRIGGER events_note_actor;
CREATE TRIGGER events_note_actor AFTER INSERT ON events
WHEN NEW.leaf_dict IS NULL AND CASE WHEN NEW.leaf_dict IS NULL
    THEN json_extract(CAST(NEW.leaf AS TEXT), '$.v') IS NULL ELSE 0 END
BEGIN
    INSERT INTO event_actors (account_id, actor_id, name, email)
    VALUES (NEW.account_id, NEW.actor_id,
            json_extract(CAST(NEW.leaf AS TEXT), '$.actor.name'),
            json_extract(CAST(NEW.leaf AS TEXT), '$.actor.email'))
    ON CONFLICT (account_id, actor_id) DO UPDATE SET name = excluded.name, email = excluded.email;
END;
