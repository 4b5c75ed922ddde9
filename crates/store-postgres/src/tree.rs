//! The PostgreSQL side of tamper evidence: the tree hashes that appends add
//! (computed under the account's sequencer lock, in the events'
//! transaction, so several servers build one tree), retained checkpoints,
//! and the raw scan `auditlog verify` compares.

use crate::sql::{decode_leaf, is_unique_violation, load_dictionaries, pg_error};
use crate::tombstones;
use crate::tree_appends::read_hashes_in;
use crate::writer::to_hash;
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::merkle::{stored_hash_index, Hash};
use auditlog_core::Timestamp;
use auditlog_store::log_key::{bound_key, seq_of, SEQ_MASK};
use auditlog_store::tree::merge_scans;
use auditlog_store::{
    AccountId, IndexedColumns, KeyColumn, Result, ScannedEvent, StoreError, StoredCheckpoint,
    TreeStore,
};
use std::collections::HashMap;
use tokio_postgres::Row;

const CHECKPOINT_COLUMNS: &str = "size, root, note, created_at";

fn to_checkpoint(row: &Row) -> Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        size: row.get::<_, i64>(0) as u64,
        root: to_hash(row.get(1))?,
        note: row.get(2),
        created_at: Timestamp::from_micros(row.get(3)),
    })
}

#[async_trait]
impl TreeStore for PgStore {
    async fn read_hashes(&self, account: AccountId, indexes: &[i64]) -> Result<Vec<Hash>> {
        let client = self.client().await?;
        let found = read_hashes_in(&**client, account, indexes).await?;
        indexes
            .iter()
            .map(|i| {
                found
                    .0
                    .get(i)
                    .copied()
                    .ok_or_else(|| StoreError::NotFound(format!("no stored hash at index {i}")))
            })
            .collect()
    }

    async fn stored_hash_count(&self, account: AccountId) -> Result<i64> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM tree_hashes WHERE account_id = $1",
                &[&account],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.get(0))
    }

    async fn add_checkpoint(
        &self,
        account: AccountId,
        checkpoint: &StoredCheckpoint,
    ) -> Result<()> {
        let mut client = self.client().await?;
        // The checkpoint and its root leaf, in one transaction: no
        // checkpoint is ever left out of the root log.
        let tx = client.transaction().await.map_err(pg_error)?;
        match tx
            .execute(
                "INSERT INTO checkpoints (account_id, size, root, note, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &account,
                    &(checkpoint.size as i64),
                    &&checkpoint.root[..],
                    &checkpoint.note,
                    &checkpoint.created_at.micros(),
                ],
            )
            .await
        {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!(
                    "checkpoint of size {}",
                    checkpoint.size
                )))
            }
            Err(e) => return Err(pg_error(e)),
        }
        crate::root_log::append_root_leaf(
            &tx,
            account,
            checkpoint.size,
            auditlog_store::root_log::root_leaf_hash(&checkpoint.note),
        )
        .await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn latest_checkpoint(&self, account: AccountId) -> Result<Option<StoredCheckpoint>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE account_id = $1 \
                     ORDER BY size DESC LIMIT 1"
                ),
                &[&account],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_checkpoint).transpose()
    }

    async fn checkpoint_at(
        &self,
        account: AccountId,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE account_id = $1 AND size = $2"
                ),
                &[&account, &(size as i64)],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_checkpoint).transpose()
    }

    async fn checkpoints(&self, account: AccountId) -> Result<Vec<StoredCheckpoint>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE account_id = $1 ORDER BY size"
                ),
                &[&account],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(to_checkpoint).collect()
    }

    async fn event_row_count(&self, account: AccountId) -> Result<u64> {
        let client = self.client().await?;
        // Counted from the table, whatever the seqs: duplicates show up.
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM event_log WHERE key > $1 AND key <= $2",
                &[&bound_key(account, 0), &bound_key(account, u64::MAX)],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.get::<_, i64>(0) as u64 + tombstones::removed_count(&**client, account).await?)
    }

    async fn scan_events(
        &self,
        account: AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<ScannedEvent>> {
        let client = self.client().await?;
        // Every id read through its table; a dangling id reads as a value
        // no leaf holds, so that verify names the column.
        let rows = client
            .query(
                &format!(
                    "SELECT l.key, l.time, k.value ->> 0, k.value ->> 1, a.actor_id, \
                     p.value ->> 0, p.value ->> 1, p.value ->> 2, l.received_at, l.leaf, \
                     (SELECT personal FROM event_personal e WHERE e.account_id = $1 AND e.seq = l.key & {SEQ_MASK}), \
                     l.leaf_dict, l.id_hash, l.target_hash, \
                     k.id IS NULL OR k.account_id <> $1 OR k.kind <> 1, \
                     l.place IS NOT NULL AND (p.id IS NULL OR p.account_id <> $1 OR p.kind <> 2), \
                     a.id IS NULL OR a.account_id <> $1 \
                     FROM event_log l \
                     LEFT JOIN log_values k ON k.id = l.kind \
                     LEFT JOIN log_values p ON p.id = l.place \
                     LEFT JOIN actors a ON a.id = l.actor \
                     WHERE l.key > $2 AND l.key <= $3 ORDER BY l.key LIMIT $4"
                ),
                &[
                    &account,
                    &bound_key(account, after_seq),
                    &bound_key(account, u64::MAX),
                    &(limit as i64),
                ],
            )
            .await
            .map_err(pg_error)?;
        load_dictionaries(&**client, &self.dictionaries, &rows, 11).await?;
        let scanned: Vec<ScannedEvent> = rows
            .iter()
            .map(|r| {
                // A leaf that no longer decompresses is reported by verify
                // at its seq (its stored bytes do not read as a leaf).
                let leaf_bytes = {
                    let stored: Vec<u8> = r.get(9);
                    match r.get::<_, Option<i64>>(11) {
                        None => stored,
                        dictionary => decode_leaf(&self.dictionaries, dictionary, stored.clone())
                            .unwrap_or(stored),
                    }
                };
                let personal: Option<Vec<u8>> = r.get(10);
                // An id that names no value of the account's reads as the
                // column that differs.
                let dangling = [(14, "event_type"), (15, "project"), (16, "actor_id")]
                    .into_iter()
                    .find(|(column, _)| r.get::<_, bool>(*column))
                    .map(|(_, name)| name);
                ScannedEvent {
                    columns: IndexedColumns {
                        seq: seq_of(r.get(0)),
                        event_id: KeyColumn::Hash(r.get(12)),
                        time: r.get(1),
                        event_type: r.get::<_, Option<String>>(2).unwrap_or_default(),
                        action: r.get::<_, Option<String>>(3).unwrap_or_default(),
                        actor_id: r.get::<_, Option<String>>(4).unwrap_or_default(),
                        project: r.get(5),
                        app: r.get(6),
                        version: r.get(7),
                        target_id: r.get::<_, Option<i64>>(13).map(KeyColumn::Hash),
                        received_at: r.get(8),
                    },
                    leaf_bytes,
                    stored_leaf_hash: None,
                    personal,
                    dangling,
                    body_removed: false,
                }
            })
            .collect();
        // Removed bodies come as their tombstones, in seq order.
        let tombstones =
            tombstones::scanned_tombstones(&**client, account, after_seq, limit).await?;
        let mut scanned = merge_scans(scanned, tombstones, limit);
        // The leaf hashes are those of the tree, at each leaf's stored index.
        let indexes: Vec<i64> = scanned
            .iter()
            .map(|e| stored_hash_index(0, e.columns.seq as i64 - 1))
            .collect();
        let hashes: HashMap<i64, Vec<u8>> = client
            .query(
                "SELECT hash_index, hash FROM tree_hashes WHERE account_id = $1 AND hash_index = ANY($2)",
                &[&account, &indexes],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for (event, index) in scanned.iter_mut().zip(indexes) {
            event.stored_leaf_hash = hashes.get(&index).cloned();
        }
        Ok(scanned)
    }
}
