-- Two-factor sign-in (issue 18). A user's TOTP secret is sealed by the
-- server (ChaCha20-Poly1305 under a key outside the database) before it is
-- stored; `last_step` is the last 30-second step a code was accepted in,
-- so that no code is accepted twice. Recovery codes are kept as SHA-256.
CREATE TABLE user_two_factor (
    user_id        BIGINT PRIMARY KEY REFERENCES users(id),
    sealed_secret  BYTEA NOT NULL,
    confirmed_at   BIGINT,
    last_step      BIGINT,
    created_at     BIGINT NOT NULL
);

CREATE TABLE user_recovery_codes (
    user_id    BIGINT NOT NULL REFERENCES users(id),
    code_hash  BYTEA NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- An admin may require two-factor sign-in for everyone in the account.
CREATE TABLE account_two_factor (
    account_id  BIGINT PRIMARY KEY REFERENCES accounts(id),
    required    BOOLEAN NOT NULL
);
