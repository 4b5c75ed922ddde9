-- Console: sign-in sessions, and the distinct actors and projects of each
-- account (for the console's User type-ahead and Project select). Mirrors
-- the embedded backend's 0004_sessions.sql.

-- Only the SHA-256 of a session's secret is stored; the secret lives in the
-- visitor's cookie.
CREATE TABLE console_sessions (
    token_hash  BYTEA PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);

-- Kept by triggers on append, so that the writer needs no change and the
-- console lists them without scanning the events.
CREATE TABLE event_actors (
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    actor_id    TEXT NOT NULL,
    name        TEXT,
    email       TEXT,
    PRIMARY KEY (account_id, actor_id)
);

CREATE TABLE event_projects (
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    project     TEXT NOT NULL,
    PRIMARY KEY (account_id, project)
);

INSERT INTO event_actors (account_id, actor_id, name, email)
SELECT DISTINCT ON (account_id, actor_id) account_id, actor_id,
       convert_from(leaf, 'UTF8')::jsonb -> 'actor' ->> 'name',
       convert_from(leaf, 'UTF8')::jsonb -> 'actor' ->> 'email'
FROM events ORDER BY account_id, actor_id, seq DESC;

INSERT INTO event_projects (account_id, project)
SELECT DISTINCT account_id, project FROM events WHERE project IS NOT NULL AND project <> '';

-- The latest event of an actor gives its name and email.
CREATE FUNCTION events_note_facets() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor jsonb := convert_from(NEW.leaf, 'UTF8')::jsonb -> 'actor';
BEGIN
    INSERT INTO event_actors (account_id, actor_id, name, email)
    VALUES (NEW.account_id, NEW.actor_id, actor ->> 'name', actor ->> 'email')
    ON CONFLICT (account_id, actor_id)
    DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email;
    IF NEW.project IS NOT NULL AND NEW.project <> '' THEN
        INSERT INTO event_projects (account_id, project) VALUES (NEW.account_id, NEW.project)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_note_facets AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_note_facets();
