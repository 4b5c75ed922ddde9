-- API keys as admins manage them (issue 18): the secret's first characters
-- for listings, an optional expiry, who created the key, when it was last
-- used (to the minute) and when it was revoked. A revoked or expired key is
-- refused by the query that authenticates (`api_key_by_hash`).
ALTER TABLE api_keys ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
CREATE INDEX api_keys_by_account ON api_keys (account_id, id);
