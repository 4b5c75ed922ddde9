//! The SQLite side of tamper evidence: reading the tree hashes the writer
//! stored, retaining checkpoints, and the raw scan `verify` compares.

use crate::event_log;
use crate::sql::{any_bytes, is_unique_violation, personal_of_log_row, sql_error, LeafDecoder};
use crate::tombstones;
use crate::writer::{to_hash, ConnHashes};
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::merkle::{self, Hash, HashReader, MerkleError};
use auditlog_core::Timestamp;
use auditlog_store::root_log::root_leaf_hash;
use auditlog_store::tree::merge_scans;
use auditlog_store::{
    AccountId, IndexedColumns, KeyColumn, Result, ScannedEvent, StoreError, StoredCheckpoint,
    TreeStore,
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
        self.with_write_conn(move |conn| {
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
            crate::root_tree::append_root_leaf(
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
            // NOT INDEXED: the count must come from the table itself (its
            // key range), not from an index an attacker might have dropped
            // or rebuilt.
            let (first, last) = event_log::account_keys(account);
            let rows = conn
                .query_row(
                    "SELECT COUNT(*) FROM event_log NOT INDEXED WHERE key BETWEEN ?1 AND ?2",
                    [first, last],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| n as u64)
                .map_err(sql_error)?;
            Ok(rows + tombstones::removed_count(conn, account)?)
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
            // One read transaction: the rows and their tree hashes agree.
            let tx = conn.transaction().map_err(sql_error)?;
            let (_, last) = event_log::account_keys(account);
            let first = event_log::bound_key(account, after_seq.saturating_add(1));
            // The ids of the row are read through to their values, which
            // must be the account's and of the column's kind; verify
            // compares those texts with the leaf.
            let mut stmt = tx
                .prepare_cached(concat!(
                    "SELECT key, time, received_at, id_hash, target_hash, leaf, leaf_dict, ",
                    personal_of_log_row!(),
                    ", place, k.value, p.value, a.actor_id FROM event_log \
                     LEFT JOIN log_values k ON k.id = event_log.kind AND k.account_id = ?1 AND k.kind = 1 \
                     LEFT JOIN log_values p ON p.id = event_log.place AND p.account_id = ?1 AND p.kind = 2 \
                     LEFT JOIN actors a ON a.id = event_log.actor AND a.account_id = ?1 \
                     WHERE key BETWEEN ?2 AND ?3 ORDER BY key LIMIT ?4",
                ))
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![account, first, last, limit as i64], |r| {
                    let mut dangling = None;
                    let kind = r
                        .get::<_, Option<String>>(9)?
                        .as_deref()
                        .and_then(event_log::value_parts);
                    let (event_type, action) = match kind.as_deref() {
                        Some([Some(event_type), Some(action)]) => {
                            (event_type.clone(), action.clone())
                        }
                        _ => {
                            dangling = Some("event_type");
                            (String::new(), String::new())
                        }
                    };
                    let place: Option<i64> = r.get(8)?;
                    let (project, app, version) = match place {
                        None => (None, None, None),
                        Some(_) => {
                            let parts = r
                                .get::<_, Option<String>>(10)?
                                .as_deref()
                                .and_then(event_log::value_parts);
                            match parts.as_deref() {
                                Some([project, app, version]) => {
                                    (project.clone(), app.clone(), version.clone())
                                }
                                _ => {
                                    dangling = dangling.or(Some("project"));
                                    (None, None, None)
                                }
                            }
                        }
                    };
                    let actor_id = match r.get::<_, Option<String>>(11)? {
                        Some(actor_id) => actor_id,
                        None => {
                            dangling = dangling.or(Some("actor_id"));
                            String::new()
                        }
                    };
                    let key: i64 = r.get(0)?;
                    let scanned = ScannedEvent {
                        columns: IndexedColumns {
                            seq: event_log::seq_of(key),
                            event_id: KeyColumn::Hash(r.get(3)?),
                            time: r.get(1)?,
                            event_type,
                            action,
                            actor_id,
                            project,
                            app,
                            version,
                            target_id: r.get::<_, Option<i64>>(4)?.map(KeyColumn::Hash),
                            received_at: r.get(2)?,
                        },
                        leaf_bytes: any_bytes(r.get_ref(5)?).unwrap_or_default(),
                        stored_leaf_hash: None,
                        personal: any_bytes(r.get_ref(7)?),
                        dangling,
                        body_removed: false,
                    };
                    Ok((scanned, r.get::<_, Option<i64>>(6)?))
                })
                .map_err(sql_error)?;
            let leaves = LeafDecoder {
                cache: &dictionaries,
                conn: &tx,
                objects: None,
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
            drop(stmt);
            // Removed bodies come as their tombstones, in seq order.
            let tombstones = tombstones::scanned_tombstones(&tx, account, after_seq, limit)?;
            let mut scanned = merge_scans(scanned, tombstones, limit);
            leaf_hashes_from_tree(&tx, account, &mut scanned)?;
            Ok(scanned)
        })
        .await
    }
}

/// Fills in each scanned event's stored leaf hash: the tree's hash at its
/// leaf's index (the log keeps no other), read in one range of the page.
fn leaf_hashes_from_tree(
    conn: &rusqlite::Connection,
    account: AccountId,
    scanned: &mut [ScannedEvent],
) -> Result<()> {
    let leaf_index = |event: &ScannedEvent| event.columns.seq.checked_sub(1).map(|i| i as i64);
    let indexes = scanned.iter().filter_map(leaf_index);
    let (Some(low), Some(high)) = (indexes.clone().min(), indexes.max()) else {
        return Ok(());
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT hash_index, hash FROM tree_hashes \
             WHERE account_id = ?1 AND hash_index BETWEEN ?2 AND ?3",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(
            params![
                account,
                merkle::stored_hash_index(0, low),
                merkle::stored_hash_index(0, high)
            ],
            |r| Ok((r.get::<_, i64>(0)?, any_bytes(r.get_ref(1)?))),
        )
        .map_err(sql_error)?;
    let mut hashes = std::collections::HashMap::new();
    for row in rows {
        let (index, hash) = row.map_err(sql_error)?;
        if let Some(hash) = hash {
            hashes.insert(index, hash);
        }
    }
    for event in scanned {
        event.stored_leaf_hash = leaf_index(event)
            .and_then(|i| hashes.get(&merkle::stored_hash_index(0, i)))
            .cloned();
    }
    Ok(())
}

fn is_primary_key_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}
