-- The root log (issue 17, SPEC "Witnesses"): one tree whose leaves are the
-- account checkpoints signed, in the order they were stored; the root
-- checkpoints signed over it; the witnesses' cosignatures of those; and the
-- lease of the one server that signs and submits them.

-- Leaf `leaf_index` is the checkpoint of `size` of the account; its leaf
-- bytes are that checkpoint's body as signed (kept in `checkpoints.note`).
-- Appended in the checkpoint's own transaction.
CREATE TABLE root_leaves (
    leaf_index  INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    size        INTEGER NOT NULL,
    UNIQUE (account_id, size)
);

-- The stored hashes of the root tree, in the layout of tree_hashes.
CREATE TABLE root_hashes (
    hash_index  INTEGER PRIMARY KEY,
    hash        BLOB NOT NULL
);

-- Every signed root checkpoint: `note` as signed, without cosignatures.
CREATE TABLE root_checkpoints (
    size        INTEGER PRIMARY KEY,
    root        BLOB NOT NULL,
    note        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- The witnesses' cosignatures: `witness` is its verifier key, `line` the
-- signature line it answered.
CREATE TABLE root_cosignatures (
    size        INTEGER NOT NULL REFERENCES root_checkpoints(size),
    witness     TEXT NOT NULL,
    line        TEXT NOT NULL,
    timestamp   INTEGER NOT NULL,
    PRIMARY KEY (size, witness)
) WITHOUT ROWID;

CREATE INDEX root_cosignatures_by_witness ON root_cosignatures (witness, size);

-- One row: who signs and submits root checkpoints, until when.
CREATE TABLE root_submitter (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    holder  TEXT,
    until   INTEGER
);
INSERT INTO root_submitter (id, holder, until) VALUES (1, NULL, NULL);

CREATE TRIGGER root_leaves_refuse_update BEFORE UPDATE ON root_leaves
BEGIN
    SELECT RAISE(ABORT, 'root leaves are append-only: UPDATE is refused');
END;
CREATE TRIGGER root_leaves_refuse_delete BEFORE DELETE ON root_leaves
BEGIN
    SELECT RAISE(ABORT, 'root leaves are append-only: DELETE is refused');
END;
CREATE TRIGGER root_hashes_refuse_update BEFORE UPDATE ON root_hashes
BEGIN
    SELECT RAISE(ABORT, 'root hashes are append-only: UPDATE is refused');
END;
CREATE TRIGGER root_hashes_refuse_delete BEFORE DELETE ON root_hashes
BEGIN
    SELECT RAISE(ABORT, 'root hashes are append-only: DELETE is refused');
END;
CREATE TRIGGER root_checkpoints_refuse_update BEFORE UPDATE ON root_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'root checkpoints are append-only: UPDATE is refused');
END;
CREATE TRIGGER root_checkpoints_refuse_delete BEFORE DELETE ON root_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'root checkpoints are append-only: DELETE is refused');
END;
CREATE TRIGGER root_cosignatures_refuse_update BEFORE UPDATE ON root_cosignatures
BEGIN
    SELECT RAISE(ABORT, 'cosignatures are append-only: UPDATE is refused');
END;
CREATE TRIGGER root_cosignatures_refuse_delete BEFORE DELETE ON root_cosignatures
BEGIN
    SELECT RAISE(ABORT, 'cosignatures are append-only: DELETE is refused');
END;
