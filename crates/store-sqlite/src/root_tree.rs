//! The root tree on one connection (migration 0011): its size and stored
//! hashes, the root leaf each account checkpoint appends in its own
//! transaction, the backfill of a store signed before the root log, and the
//! rows read back. Kept apart from `root_log` (the store's trait methods) so
//! that the store's opening can call it without a module cycle.

use crate::sql::sql_error;
use crate::writer::to_hash;
use auditlog_core::merkle::{self, Hash, PrefetchedHashes};
use auditlog_core::Timestamp;
use auditlog_store::root_log::{root_hashes_for_leaf, root_leaf_hash};
use auditlog_store::{AccountId, Result, RootLeaf, StoreError, StoredCheckpoint};
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) const CHECKPOINT_COLUMNS: &str = "size, root, note, created_at";

pub(crate) fn read_root_hashes_in(conn: &Connection, indexes: &[i64]) -> Result<PrefetchedHashes> {
    let mut select = conn
        .prepare_cached("SELECT hash FROM root_hashes WHERE hash_index = ?1")
        .map_err(sql_error)?;
    let mut found = PrefetchedHashes::default();
    for &index in indexes {
        let bytes: Option<Vec<u8>> = select
            .query_row([index], |r| r.get(0))
            .optional()
            .map_err(sql_error)?;
        let bytes = bytes
            .ok_or_else(|| StoreError::NotFound(format!("no stored root hash at index {index}")))?;
        found.0.insert(index, to_hash(&bytes)?);
    }
    Ok(found)
}

pub(crate) fn root_size_in(conn: &Connection) -> Result<u64> {
    conn.query_row(
        "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM root_leaves",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .map_err(sql_error)
}

/// Appends the account checkpoint of `size` as the next root leaf; inside
/// the caller's (immediate) transaction, which serialises appends.
pub(crate) fn append_root_leaf(
    conn: &Connection,
    account: AccountId,
    size: u64,
    leaf_hash: Hash,
) -> Result<()> {
    let index = root_size_in(conn)?;
    let mut known = read_root_hashes_in(conn, &merkle::tree_hash_indexes(index as i64))?;
    let added = root_hashes_for_leaf(index, leaf_hash, &mut known)?;
    conn.execute(
        "INSERT INTO root_leaves (leaf_index, account_id, size) VALUES (?1, ?2, ?3)",
        params![index as i64, account, size as i64],
    )
    .map_err(sql_error)?;
    let mut insert = conn
        .prepare_cached("INSERT INTO root_hashes (hash_index, hash) VALUES (?1, ?2)")
        .map_err(sql_error)?;
    for (at, hash) in added {
        insert.execute(params![at, &hash[..]]).map_err(sql_error)?;
    }
    Ok(())
}

/// When the root log is empty but checkpoints exist, appends each account's
/// latest checkpoint (oldest signature first); returns how many.
pub(crate) fn backfill(conn: &mut Connection) -> Result<u64> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    if root_size_in(&tx)? > 0 {
        return Ok(0);
    }
    let latest: Vec<(AccountId, i64, String)> = {
        let mut select = tx
            .prepare(
                "SELECT c.account_id, c.size, c.note FROM checkpoints c \
                 WHERE c.size = (SELECT MAX(size) FROM checkpoints m WHERE m.account_id = c.account_id) \
                 ORDER BY c.created_at, c.account_id",
            )
            .map_err(sql_error)?;
        let rows = select
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_error)?
    };
    for (account, size, note) in &latest {
        append_root_leaf(&tx, *account, *size as u64, root_leaf_hash(note))?;
    }
    tx.commit().map_err(sql_error)?;
    Ok(latest.len() as u64)
}

pub(crate) fn checkpoint_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, Vec<u8>, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

pub(crate) fn to_checkpoint(
    (size, root, note, created_at): (i64, Vec<u8>, String, i64),
) -> Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        size: size as u64,
        root: to_hash(&root)?,
        note,
        created_at: Timestamp::from_micros(created_at),
    })
}

pub(crate) fn to_leaf((index, size): (i64, i64)) -> RootLeaf {
    RootLeaf {
        index: index as u64,
        size: size as u64,
    }
}
