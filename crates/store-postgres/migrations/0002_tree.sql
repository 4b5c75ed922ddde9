-- Tamper evidence: each account's Merkle tree and its signed checkpoints.
-- Mirrors the embedded backend's 0002_tree.sql.

-- The stored hashes of each account's tree in the layout of Go's sumdb/tlog
-- (see auditlog_core::merkle::stored_hash_index): each leaf hash followed by
-- the hash of every subtree it completes. Written by the event writer in the
-- same transaction as the events they cover, under the account's sequencer
-- lock, so that servers sharing the database build one tree.
CREATE TABLE tree_hashes (
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    hash_index  BIGINT NOT NULL,
    hash        BYTEA NOT NULL,
    PRIMARY KEY (account_id, hash_index)
);

-- Every signed checkpoint, retained: `note` is the signed note as served.
CREATE TABLE checkpoints (
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    size        BIGINT NOT NULL,
    root        BYTEA NOT NULL,
    note        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, size)
);

CREATE FUNCTION tree_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER tree_hashes_refuse_update BEFORE UPDATE ON tree_hashes
    FOR EACH ROW EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER tree_hashes_refuse_delete BEFORE DELETE ON tree_hashes
    FOR EACH ROW EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER tree_hashes_refuse_truncate BEFORE TRUNCATE ON tree_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER checkpoints_refuse_update BEFORE UPDATE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER checkpoints_refuse_delete BEFORE DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER checkpoints_refuse_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION tree_refuse_change();
