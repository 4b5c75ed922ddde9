-- Leaf version 2 (SPEC "Proofs"): new events keep their personal values and
-- the salts that open their leaf's commitments here, beside the log and
-- never in it, so that erasure can remove them without changing any leaf or
-- hash. Version 1 events have no row here. Mirrors the embedded backend's
-- 0006_leaf_v2.sql.
CREATE TABLE event_personal (
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    seq         BIGINT NOT NULL,
    personal    BYTEA NOT NULL,
    PRIMARY KEY (account_id, seq)
);

-- Appended with their events; only the erasure of a later release may
-- remove them, through its own audited path.
CREATE FUNCTION event_personal_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'personal values are append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER event_personal_refuse_update BEFORE UPDATE ON event_personal
    FOR EACH ROW EXECUTE FUNCTION event_personal_refuse_change();
CREATE TRIGGER event_personal_refuse_delete BEFORE DELETE ON event_personal
    FOR EACH ROW EXECUTE FUNCTION event_personal_refuse_change();
CREATE TRIGGER event_personal_refuse_truncate BEFORE TRUNCATE ON event_personal
    FOR EACH STATEMENT EXECUTE FUNCTION event_personal_refuse_change();

-- The console's actor list: a version 2 leaf holds no actor, so its name
-- and email come from the personal values; the trigger on events keeps the
-- projects, and the actors of version 1 leaves.
CREATE OR REPLACE FUNCTION events_note_facets() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    leaf jsonb := convert_from(NEW.leaf, 'UTF8')::jsonb;
BEGIN
    IF leaf -> 'v' IS NULL THEN
        INSERT INTO event_actors (account_id, actor_id, name, email)
        VALUES (NEW.account_id, NEW.actor_id, leaf -> 'actor' ->> 'name', leaf -> 'actor' ->> 'email')
        ON CONFLICT (account_id, actor_id)
        DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email;
    END IF;
    IF NEW.project IS NOT NULL AND NEW.project <> '' THEN
        INSERT INTO event_projects (account_id, project) VALUES (NEW.account_id, NEW.project)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION event_personal_note_actor() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    personal jsonb := convert_from(NEW.personal, 'UTF8')::jsonb -> 'personal';
BEGIN
    INSERT INTO event_actors (account_id, actor_id, name, email)
    VALUES (NEW.account_id, personal ->> 'actor.id', personal ->> 'actor.name', personal ->> 'actor.email')
    ON CONFLICT (account_id, actor_id)
    DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email;
    RETURN NULL;
END;
$$;
CREATE TRIGGER event_personal_note_actor AFTER INSERT ON event_personal
    FOR EACH ROW EXECUTE FUNCTION event_personal_note_actor();

-- `source.key` of what a key stores: a public id that is not the secret,
-- stable across `auditlog copy`; and the key's name (empty until named).
ALTER TABLE api_keys ADD COLUMN public_id TEXT;
ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT '';
UPDATE api_keys SET public_id = 'key_' || substr(md5(random()::text || id::text), 1, 16)
    WHERE public_id IS NULL;
ALTER TABLE api_keys ALTER COLUMN public_id SET NOT NULL;
CREATE UNIQUE INDEX api_keys_by_public_id ON api_keys (public_id);
