//! The SQLite side of tamper evidence: reading the tree hashes the writer
//! stored, retaining checkpoints, and the raw scan `verify` compares.

use crate::sql::{is_unique_violation, personal_of_events_row, sql_error, LeafDecoder};
use crate::writer::{to_hash, ConnHashes};
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::merkle::{Hash, HashReader, MerkleError};
use auditlog_core::Timestamp;
use auditlog_store::root_log::root_leaf_hash;
use auditlog_store::{
    AccountId, IndexedColumns, Result, ScannedEvent, StoreError, StoredCheckpoint, TreeStore,
};
use rusqlite::{params, OptionalExtension};

const CHECKPOINT_COLUMNS: &str = "size, root, note, created_at";

fn checkpoint_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Vec<u8>, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_checkpoint(
    (size, root, note, created_at): (i64, Vec<u8>, String, i64),
) -> Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        size: size as u64,
        root: to_hash(&root)?,
        note,
        created_at: Timestamp::from_micros(created_at),
    })
}

#[async_trait]
impl TreeStore for SqliteStore {
    async fn read_hashes(&self, account: AccountId, indexes: &[i64]) -> Result<Vec<Hash>> {
        let indexes = indexes.to_vec();
        self.with_conn(move |conn| {
            // One read transaction, so that every hash comes from one snapshot.
            let tx = conn.transaction().map_err(sql_error)?;
            let reader = ConnHashes {
                conn: &tx,
                account_id: account,
            };
            reader.read_hashes(&indexes).map_err(|e| match e {
                MerkleError::Read(m) => StoreError::NotFound(m),
                other => StoreError::internal_caused_by("the stored tree is inconsistent", other),
            })
        })
        .await
    }

    async fn read_hash_range(&self, account: AccountId, start: i64, end: i64) -> Result<Vec<Hash>> {
        self.with_conn(move |conn| {
            // One range scan of the primary key instead of a lookup per index.
            let mut select = conn
                .prepare_cached(
                    "SELECT hash_index, hash FROM tree_hashes \
                     WHERE account_id = ?1 AND hash_index >= ?2 AND hash_index < ?3 \
                     ORDER BY hash_index",
                )
                .map_err(sql_error)?;
            let mut rows = select
                .query(params![account, start, end])
                .map_err(sql_error)?;
            let missing =
                |index: i64| StoreError::NotFound(format!("no stored hash at index {index}"));
            let mut hashes = Vec::with_capacity((end - start).max(0) as usize);
            let mut next = start;
            while let Some(row) = rows.next().map_err(sql_error)? {
                let index: i64 = row.get(0).map_err(sql_error)?;
                if index != next {
                    return Err(missing(next));
                }
                let bytes = row.get_ref(1).map_err(sql_error)?;
                let bytes = bytes.as_blob().map_err(|e| {
                    StoreError::internal_caused_by(format!("stored hash {index}"), e)
                })?;
                hashes.push(to_hash(bytes)?);
                next += 1;
            }
            if next < end {
                return Err(missing(next));
            }
            Ok(hashes)
        })
        .await
    }

    async fn stored_hash_count(&self, account: AccountId) -> Result<i64> {
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM tree_hashes WHERE account_id = ?1",
                [account],
                |r| r.get(0),
            )
            .map_err(sql_error)
        })
        .await
    }

    async fn add_checkpoint(
        &self,
        account: AccountId,
        checkpoint: &StoredCheckpoint,
    ) -> Result<()> {
        let checkpoint = checkpoint.clone();
        self.with_conn(move |conn| {
            // The checkpoint and its root leaf, in one transaction: no
            // checkpoint is ever left out of the root log.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            match tx.execute(
                "INSERT INTO checkpoints (account_id, size, root, note, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    account,
                    checkpoint.size as i64,
                    &checkpoint.root[..],
                    checkpoint.note,
                    checkpoint.created_at.micros()
                ],
            ) {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) || is_primary_key_violation(&e) => {
                    return Err(StoreError::AlreadyExists(format!(
                        "checkpoint of size {}",
                        checkpoint.size
                    )))
                }
                Err(e) => return Err(sql_error(e)),
            }
            crate::root_log::append_root_leaf(
                &tx,
                account,
                checkpoint.size,
                root_leaf_hash(&checkpoint.note),
            )?;
            tx.commit().map_err(sql_error)
        })
        .await
    }

    async fn latest_checkpoint(&self, account: AccountId) -> Result<Option<StoredCheckpoint>> {
        self.with_conn(move |conn| {
            conn.query_row(
                &format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE account_id = ?1 ORDER BY size DESC LIMIT 1"),
                [account],
                checkpoint_row,
            )
            .optional()
            .map_err(sql_error)?
            .map(to_checkpoint)
            .transpose()
        })
        .await
    }

    async fn checkpoint_at(
        &self,
        account: AccountId,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>> {
        self.with_conn(move |conn| {
            conn.query_row(
                &format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE account_id = ?1 AND size = ?2"),
                params![account, size as i64],
                checkpoint_row,
            )
            .optional()
            .map_err(sql_error)?
            .map(to_checkpoint)
            .transpose()
        })
        .await
    }

    async fn checkpoints(&self, account: AccountId) -> Result<Vec<StoredCheckpoint>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE account_id = ?1 ORDER BY size"
                ))
                .map_err(sql_error)?;
            let rows = stmt.query_map([account], checkpoint_row).map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error).and_then(to_checkpoint))
                .collect()
        })
        .await
    }

    async fn event_row_count(&self, account: AccountId) -> Result<u64> {
        self.with_conn(move |conn| {
            // NOT INDEXED: the count must come from the table itself, not from
            // an index an attacker might have dropped or rebuilt.
            conn.query_row(
                "SELECT COUNT(*) FROM events NOT INDEXED WHERE account_id = ?1",
                [account],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(sql_error)
        })
        .await
    }

    async fn scan_events(
        &self,
        account: AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<ScannedEvent>> {
        let dictionaries = self.dictionaries.clone();
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(concat!(
                    "SELECT seq, event_id, time, event_type, action, actor_id, project, app, version, \
                     target_id, received_at, leaf, leaf_hash, ",
                    personal_of_events_row!(),
                    ", leaf_dict FROM events \
                     WHERE account_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                ))
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![account, after_seq as i64, limit as i64], |r| {
                    let scanned = ScannedEvent {
                        columns: IndexedColumns {
                            seq: r.get::<_, i64>(0)? as u64,
                            event_id: r.get(1)?,
                            time: r.get(2)?,
                            event_type: r.get(3)?,
                            action: r.get(4)?,
                            actor_id: r.get(5)?,
                            project: r.get(6)?,
                            app: r.get(7)?,
                            version: r.get(8)?,
                            target_id: r.get(9)?,
                            received_at: r.get(10)?,
                        },
                        leaf_bytes: any_bytes(r.get_ref(11)?).unwrap_or_default(),
                        stored_leaf_hash: any_bytes(r.get_ref(12)?).unwrap_or_default(),
                        personal: any_bytes(r.get_ref(13)?),
                    };
                    Ok((scanned, r.get::<_, Option<i64>>(14)?))
                })
                .map_err(sql_error)?;
            let leaves = LeafDecoder {
                cache: &dictionaries,
                conn,
            };
            let mut scanned = Vec::with_capacity(limit.min(8_192));
            for row in rows {
                let (mut event, dictionary) = row.map_err(sql_error)?;
                if dictionary.is_some() {
                    // A leaf that no longer decompresses is reported by
                    // verify at its seq (its stored bytes do not read as a
                    // leaf), not as a failure of the whole scan.
                    if let Ok(leaf) = leaves.decode(dictionary, event.leaf_bytes.clone()) {
                        event.leaf_bytes = leaf;
                    }
                }
                scanned.push(event);
            }
            Ok(scanned)
        })
        .await
    }
}

/// A stored value's bytes whatever type someone gave it: SQLite lets a
/// BLOB column hold text or numbers, and verify must report such a row at
/// its seq (its bytes do not read as a leaf, or do not hash as stored)
/// rather than fail the whole scan on a type error. `None` for NULL.
fn any_bytes(value: rusqlite::types::ValueRef<'_>) -> Option<Vec<u8>> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => None,
        ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Some(bytes.to_vec()),
        ValueRef::Integer(n) => Some(n.to_string().into_bytes()),
        ValueRef::Real(x) => Some(x.to_string().into_bytes()),
    }
}

fn is_primary_key_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}
