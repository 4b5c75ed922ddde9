//! The PostgreSQL side of tamper evidence: the tree hashes that appends add
//! (computed under the account's sequencer lock, in the events'
//! transaction, so several servers build one tree), retained checkpoints,
//! and the raw scan `auditlog verify` compares.

use crate::sql::{decode_leaf, is_unique_violation, load_dictionaries, pg_error};
use crate::tree_appends::read_hashes_in;
use crate::writer::to_hash;
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::merkle::Hash;
use auditlog_core::Timestamp;
use auditlog_store::{
    AccountId, IndexedColumns, KeyColumn, Result, ScannedEvent, StoreError, StoredCheckpoint,
    TreeStore,
};
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
                "SELECT COUNT(*) FROM events WHERE account_id = $1",
                &[&account],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn scan_events(
        &self,
        account: AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<ScannedEvent>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT seq, event_id, time, event_type, action, actor_id, project, app, version, \
                 target_id, received_at, leaf, leaf_hash, \
                 (SELECT personal FROM event_personal p WHERE p.account_id = events.account_id AND p.seq = events.seq), \
                 leaf_dict FROM events \
                 WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&account, &(after_seq as i64), &(limit as i64)],
            )
            .await
            .map_err(pg_error)?;
        load_dictionaries(&**client, &self.dictionaries, &rows, 14).await?;
        Ok(rows
            .iter()
            .map(|r| ScannedEvent {
                columns: IndexedColumns {
                    seq: r.get::<_, i64>(0) as u64,
                    event_id: KeyColumn::Text(r.get(1)),
                    time: r.get(2),
                    event_type: r.get(3),
                    action: r.get(4),
                    actor_id: r.get(5),
                    project: r.get(6),
                    app: r.get(7),
                    version: r.get(8),
                    target_id: r.get::<_, Option<String>>(9).map(KeyColumn::Text),
                    received_at: r.get(10),
                },
                // A leaf that no longer decompresses is reported by verify
                // at its seq (its stored bytes do not read as a leaf).
                leaf_bytes: {
                    let stored: Vec<u8> = r.get(11);
                    match r.get::<_, Option<i64>>(14) {
                        None => stored,
                        dictionary => decode_leaf(&self.dictionaries, dictionary, stored.clone())
                            .unwrap_or(stored),
                    }
                },
                stored_leaf_hash: Some(r.get(12)),
                personal: r.get(13),
                dangling: None,
            })
            .collect())
    }
}
