-- Console users as admins manage them (issue 18): a user may be disabled
-- (refused at sign-in; every session ended), the time of the last password
-- change is kept (what the audit trail's old → new shows, never the
-- password), one-time sign-in links by the SHA-256 of their token (never
-- the token), and the per-account key of the keyed hash that `Login
-- Failed` events record instead of the attempted email.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
ALTER TABLE users ADD COLUMN password_changed_at INTEGER;

CREATE TABLE sign_in_links (
    token_hash  BLOB PRIMARY KEY,
    user_id     INTEGER NOT NULL UNIQUE REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX console_sessions_by_user ON console_sessions (user_id);

CREATE TABLE login_hash_keys (
    account_id  INTEGER PRIMARY KEY REFERENCES accounts(id),
    key         BLOB NOT NULL
);
