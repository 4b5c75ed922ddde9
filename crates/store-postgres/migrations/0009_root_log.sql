-- The root log (issue 17, SPEC "Witnesses"). Mirrors the embedded
-- backend's 0011_root_log.sql: one tree whose leaves are the account
-- checkpoints signed, in the order they were stored (appended in each
-- checkpoint's transaction under an advisory lock, so that servers sharing
-- the database build one root tree); the root checkpoints signed over it;
-- the witnesses' cosignatures; and the lease of the one server that signs
-- and submits root checkpoints.
CREATE TABLE root_leaves (
    leaf_index  BIGINT PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    size        BIGINT NOT NULL,
    UNIQUE (account_id, size)
);

CREATE TABLE root_hashes (
    hash_index  BIGINT PRIMARY KEY,
    hash        BYTEA NOT NULL
);

CREATE TABLE root_checkpoints (
    size        BIGINT PRIMARY KEY,
    root        BYTEA NOT NULL,
    note        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE root_cosignatures (
    size        BIGINT NOT NULL REFERENCES root_checkpoints(size),
    witness     TEXT NOT NULL,
    line        TEXT NOT NULL,
    timestamp   BIGINT NOT NULL,
    PRIMARY KEY (size, witness)
);

CREATE INDEX root_cosignatures_by_witness ON root_cosignatures (witness, size);

CREATE TABLE root_submitter (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    holder  TEXT,
    until   BIGINT
);
INSERT INTO root_submitter (id, holder, until) VALUES (1, NULL, NULL);

-- tree_refuse_change() is 0002's.
CREATE TRIGGER root_leaves_refuse_update BEFORE UPDATE ON root_leaves
    FOR EACH ROW EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER root_leaves_refuse_delete BEFORE DELETE ON root_leaves
    FOR EACH ROW EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER root_leaves_refuse_truncate BEFORE TRUNCATE ON root_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER root_hashes_refuse_update BEFORE UPDATE ON root_hashes
    FOR EACH ROW EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER root_hashes_refuse_delete BEFORE DELETE ON root_hashes
    FOR EACH ROW EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER root_hashes_refuse_truncate BEFORE TRUNCATE ON root_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER root_checkpoints_refuse_update BEFORE UPDATE ON root_checkpoints
    FOR EACH ROW EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER root_checkpoints_refuse_delete BEFORE DELETE ON root_checkpoints
    FOR EACH ROW EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER root_checkpoints_refuse_truncate BEFORE TRUNCATE ON root_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER root_cosignatures_refuse_update BEFORE UPDATE ON root_cosignatures
    FOR EACH ROW EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER root_cosignatures_refuse_delete BEFORE DELETE ON root_cosignatures
    FOR EACH ROW EXECUTE FUNCTION tree_refuse_change();
CREATE TRIGGER root_cosignatures_refuse_truncate BEFORE TRUNCATE ON root_cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION tree_refuse_change();
