-- Tamper evidence: each account's Merkle tree and its signed checkpoints.

-- The stored hashes of each account's tree in the layout of Go's sumdb/tlog
-- (see auditlog_core::merkle::stored_hash_index): each leaf hash followed by
-- the hash of every subtree it completes. Written by the event writer in the
-- same transaction as the events they cover.
CREATE TABLE tree_hashes (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    hash_index  INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    PRIMARY KEY (account_id, hash_index)
) WITHOUT ROWID;

-- Every signed checkpoint, retained: `note` is the signed note as served.
CREATE TABLE checkpoints (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    size        INTEGER NOT NULL,
    root        BLOB NOT NULL,
    note        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, size)
) WITHOUT ROWID;

CREATE TRIGGER tree_hashes_refuse_update BEFORE UPDATE ON tree_hashes
BEGIN
    SELECT RAISE(ABORT, 'tree hashes are append-only: UPDATE is refused');
END;

CREATE TRIGGER tree_hashes_refuse_delete BEFORE DELETE ON tree_hashes
BEGIN
    SELECT RAISE(ABORT, 'tree hashes are append-only: DELETE is refused');
END;

CREATE TRIGGER checkpoints_refuse_update BEFORE UPDATE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are append-only: UPDATE is refused');
END;

CREATE TRIGGER checkpoints_refuse_delete BEFORE DELETE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are append-only: DELETE is refused');
END;
