-- Leaf version 2 (SPEC "Proofs"): new events keep their personal values
-- (actor, context.ip and context.user_agent, declared details paths) and the
-- salts that open their leaf's commitments here, beside the log and never in
-- it, so that erasure can remove them without changing any leaf or hash.
-- Version 1 events have no row here: their leaf holds everything.
CREATE TABLE event_personal (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    seq         INTEGER NOT NULL,
    personal    BLOB NOT NULL,
    PRIMARY KEY (account_id, seq)
) WITHOUT ROWID;

-- Appended with their events; only the erasure of a later release may
-- remove them, through its own audited path.
CREATE TRIGGER event_personal_refuse_update BEFORE UPDATE ON event_personal
BEGIN
    SELECT RAISE(ABORT, 'personal values are append-only: UPDATE is refused');
END;

CREATE TRIGGER event_personal_refuse_delete BEFORE DELETE ON event_personal
BEGIN
    SELECT RAISE(ABORT, 'personal values are append-only: DELETE is refused');
END;

-- The console's actor list: a version 2 leaf holds no actor, so the names
-- come from the personal values; the trigger on events keeps version 1 only.
DROP TRIGGER events_note_actor;
CREATE TRIGGER events_note_actor AFTER INSERT ON events
WHEN json_extract(CAST(NEW.leaf AS TEXT), '$.v') IS NULL
BEGIN
    INSERT INTO event_actors (account_id, actor_id, name, email)
    VALUES (NEW.account_id, NEW.actor_id,
            json_extract(CAST(NEW.leaf AS TEXT), '$.actor.name'),
            json_extract(CAST(NEW.leaf AS TEXT), '$.actor.email'))
    ON CONFLICT (account_id, actor_id) DO UPDATE SET name = excluded.name, email = excluded.email;
END;

CREATE TRIGGER event_personal_note_actor AFTER INSERT ON event_personal
BEGIN
    INSERT INTO event_actors (account_id, actor_id, name, email)
    VALUES (NEW.account_id,
            json_extract(CAST(NEW.personal AS TEXT), '$.personal."actor.id"'),
            json_extract(CAST(NEW.personal AS TEXT), '$.personal."actor.name"'),
            json_extract(CAST(NEW.personal AS TEXT), '$.personal."actor.email"'))
    ON CONFLICT (account_id, actor_id) DO UPDATE SET name = excluded.name, email = excluded.email;
END;

-- `source.key` of what a key stores: a public id that is not the secret,
-- stable across `auditlog copy`; and the key's name (empty until named).
ALTER TABLE api_keys ADD COLUMN public_id TEXT;
ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT '';
UPDATE api_keys SET public_id = 'key_' || lower(hex(randomblob(8))) WHERE public_id IS NULL;
CREATE UNIQUE INDEX api_keys_by_public_id ON api_keys (public_id);
