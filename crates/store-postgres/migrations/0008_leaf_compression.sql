-- Leaf bytes at rest (auditlog_store::leaf_codec): a version 2 leaf is
-- stored compressed with its account's dictionary, named in `leaf_dict`;
-- NULL means the leaf is stored as it is (every version 1 leaf, and an
-- account's first version 2 leaves). TOAST does not compress rows this
-- small, so the application does. Mirrors the embedded backend's
-- 0007_leaf_compression.sql.
CREATE TABLE leaf_dictionaries (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    dictionary  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX leaf_dictionaries_by_account ON leaf_dictionaries (account_id, id);
ALTER TABLE events ADD COLUMN leaf_dict BIGINT REFERENCES leaf_dictionaries(id);

CREATE FUNCTION leaf_dictionaries_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'leaf dictionaries are append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER leaf_dictionaries_refuse_update BEFORE UPDATE ON leaf_dictionaries
    FOR EACH ROW EXECUTE FUNCTION leaf_dictionaries_refuse_change();
CREATE TRIGGER leaf_dictionaries_refuse_delete BEFORE DELETE ON leaf_dictionaries
    FOR EACH ROW EXECUTE FUNCTION leaf_dictionaries_refuse_change();
CREATE TRIGGER leaf_dictionaries_refuse_truncate BEFORE TRUNCATE ON leaf_dictionaries
    FOR EACH STATEMENT EXECUTE FUNCTION leaf_dictionaries_refuse_change();

-- A compressed leaf is not JSON: read the actor of stored-as-is version 1
-- leaves only (version 2 actors come from event_personal).
CREATE OR REPLACE FUNCTION events_note_facets() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    leaf jsonb;
BEGIN
    IF NEW.leaf_dict IS NULL THEN
        leaf := convert_from(NEW.leaf, 'UTF8')::jsonb;
        IF leaf -> 'v' IS NULL THEN
            INSERT INTO event_actors (account_id, actor_id, name, email)
            VALUES (NEW.account_id, NEW.actor_id, leaf -> 'actor' ->> 'name', leaf -> 'actor' ->> 'email')
            ON CONFLICT (account_id, actor_id)
            DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email;
        END IF;
    END IF;
    IF NEW.project IS NOT NULL AND NEW.project <> '' THEN
        INSERT INTO event_projects (account_id, project) VALUES (NEW.account_id, NEW.project)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;
