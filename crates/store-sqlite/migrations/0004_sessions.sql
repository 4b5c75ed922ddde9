-- Console: sign-in sessions, and the distinct actors and projects of each
-- account (for the console's User type-ahead and Project select).

-- Only the SHA-256 of a session's secret is stored; the secret lives in the
-- visitor's cookie.
CREATE TABLE console_sessions (
    token_hash  BLOB PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);

-- Kept by triggers on append, so that the writer needs no change and the
-- console lists them without scanning the events.
CREATE TABLE event_actors (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    actor_id    TEXT NOT NULL,
    name        TEXT,
    email       TEXT,
    PRIMARY KEY (account_id, actor_id)
) WITHOUT ROWID;

CREATE TABLE event_projects (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    project     TEXT NOT NULL,
    PRIMARY KEY (account_id, project)
) WITHOUT ROWID;

INSERT INTO event_actors (account_id, actor_id, name, email)
SELECT account_id, actor_id,
       json_extract(CAST(leaf AS TEXT), '$.actor.name'),
       json_extract(CAST(leaf AS TEXT), '$.actor.email')
FROM events WHERE true
ORDER BY seq
ON CONFLICT (account_id, actor_id) DO UPDATE SET name = excluded.name, email = excluded.email;

INSERT OR IGNORE INTO event_projects (account_id, project)
SELECT DISTINCT account_id, project FROM events WHERE project IS NOT NULL AND project <> '';

CREATE TRIGGER events_note_actor AFTER INSERT ON events
BEGIN
    INSERT INTO event_actors (account_id, actor_id, name, email)
    VALUES (NEW.account_id, NEW.actor_id,
            json_extract(CAST(NEW.leaf AS TEXT), '$.actor.name'),
            json_extract(CAST(NEW.leaf AS TEXT), '$.actor.email'))
    ON CONFLICT (account_id, actor_id) DO UPDATE SET name = excluded.name, email = excluded.email;
END;

CREATE TRIGGER events_note_project AFTER INSERT ON events
WHEN NEW.project IS NOT NULL AND NEW.project <> ''
BEGIN
    INSERT OR IGNORE INTO event_projects (account_id, project) VALUES (NEW.account_id, NEW.project);
END;
