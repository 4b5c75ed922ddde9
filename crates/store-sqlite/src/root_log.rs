//! The SQLite side of the root log (migration 0011): root leaves appended in
//! each checkpoint's transaction, root checkpoints, cosignatures and the
//! submitter's lease.

use crate::root_tree::{
    backfill, checkpoint_row, read_root_hashes_in, root_size_in, to_checkpoint, to_leaf,
    CHECKPOINT_COLUMNS,
};
use crate::sql::{is_unique_violation, sql_error};
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::merkle::Hash;
use auditlog_core::Timestamp;
use auditlog_store::{
    AccountId, Result, RootLeaf, RootLogStore, StoreError, StoredCheckpoint, StoredCosignature,
};
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl RootLogStore for SqliteStore {
    async fn root_size(&self) -> Result<u64> {
        self.with_conn(|conn| root_size_in(conn)).await
    }

    async fn read_root_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>> {
        let indexes = indexes.to_vec();
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(sql_error)?;
            let found = read_root_hashes_in(&tx, &indexes)?;
            Ok(indexes.iter().map(|i| found.0[i]).collect())
        })
        .await
    }

    async fn backfill_root_log(&self) -> Result<u64> {
        self.with_write_conn(backfill).await
    }

    async fn root_leaf_of(&self, account: AccountId, size: u64) -> Result<Option<RootLeaf>> {
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT leaf_index, size FROM root_leaves WHERE account_id = ?1 AND size = ?2",
                params![account, size as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map(|leaf| leaf.map(to_leaf))
            .map_err(sql_error)
        })
        .await
    }

    async fn latest_root_leaf(
        &self,
        account: AccountId,
        root_size: u64,
    ) -> Result<Option<RootLeaf>> {
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT leaf_index, size FROM root_leaves WHERE account_id = ?1 AND leaf_index < ?2 \
                 ORDER BY size DESC LIMIT 1",
                params![account, root_size as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map(|leaf| leaf.map(to_leaf))
            .map_err(sql_error)
        })
        .await
    }

    async fn add_root_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<()> {
        let checkpoint = checkpoint.clone();
        self.with_write_conn(move |conn| {
            match conn.execute(
                "INSERT INTO root_checkpoints (size, root, note, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    checkpoint.size as i64,
                    &checkpoint.root[..],
                    checkpoint.note,
                    checkpoint.created_at.micros()
                ],
            ) {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) || is_primary_key(&e) => Err(
                    StoreError::AlreadyExists(format!("root checkpoint of size {}", checkpoint.size)),
                ),
                Err(e) => Err(sql_error(e)),
            }
        })
        .await
    }

    async fn latest_root_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        self.with_conn(|conn| {
            conn.query_row(
                &format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM root_checkpoints ORDER BY size DESC LIMIT 1"
                ),
                [],
                checkpoint_row,
            )
            .optional()
            .map_err(sql_error)?
            .map(to_checkpoint)
            .transpose()
        })
        .await
    }

    async fn root_checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>> {
        self.with_conn(move |conn| {
            conn.query_row(
                &format!("SELECT {CHECKPOINT_COLUMNS} FROM root_checkpoints WHERE size = ?1"),
                [size as i64],
                checkpoint_row,
            )
            .optional()
            .map_err(sql_error)?
            .map(to_checkpoint)
            .transpose()
        })
        .await
    }

    async fn add_cosignature(&self, cosignature: &StoredCosignature) -> Result<()> {
        let c = cosignature.clone();
        self.with_write_conn(move |conn| {
            conn.execute(
                "INSERT INTO root_cosignatures (size, witness, line, timestamp) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (size, witness) DO NOTHING",
                params![c.size as i64, c.witness, c.line, c.timestamp as i64],
            )
            .map(|_| ())
            .map_err(sql_error)
        })
        .await
    }

    async fn cosignatures(&self, size: u64) -> Result<Vec<StoredCosignature>> {
        self.with_conn(move |conn| {
            let mut select = conn
                .prepare_cached(
                    "SELECT witness, line, timestamp FROM root_cosignatures WHERE size = ?1 ORDER BY witness",
                )
                .map_err(sql_error)?;
            let rows = select
                .query_map([size as i64], |r| {
                    Ok(StoredCosignature {
                        size,
                        witness: r.get(0)?,
                        line: r.get(1)?,
                        timestamp: r.get::<_, i64>(2)? as u64,
                    })
                })
                .map_err(sql_error)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql_error)
        })
        .await
    }

    async fn cosigned_sizes(&self) -> Result<Vec<(String, u64)>> {
        self.with_conn(|conn| {
            let mut select = conn
                .prepare_cached("SELECT witness, MAX(size) FROM root_cosignatures GROUP BY witness")
                .map_err(sql_error)?;
            let rows = select
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
                .map_err(sql_error)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql_error)
        })
        .await
    }

    async fn latest_cosigned_root(
        &self,
        witnesses: &[String],
        quorum: usize,
    ) -> Result<Option<u64>> {
        if quorum == 0 {
            return Ok(self.latest_root_checkpoint().await?.map(|c| c.size));
        }
        let witnesses = witnesses.to_vec();
        self.with_conn(move |conn| {
            let placeholders = vec!["?"; witnesses.len()].join(", ");
            let sql = format!(
                "SELECT size FROM root_cosignatures WHERE witness IN ({placeholders}) \
                 GROUP BY size HAVING COUNT(DISTINCT witness) >= {quorum} ORDER BY size DESC LIMIT 1"
            );
            conn.query_row(&sql, rusqlite::params_from_iter(witnesses.iter()), |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map(|size| size.map(|s| s as u64))
            .map_err(sql_error)
        })
        .await
    }

    async fn claim_root_submitter(
        &self,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        let holder = holder.to_string();
        self.with_write_conn(move |conn| {
            conn.execute(
                "UPDATE root_submitter SET holder = ?1, until = ?2 \
                 WHERE id = 1 AND (holder IS NULL OR holder = ?1 OR until < ?3)",
                params![holder, until.micros(), now.micros()],
            )
            .map(|changed| changed == 1)
            .map_err(sql_error)
        })
        .await
    }

    async fn release_root_submitter(&self, holder: &str) -> Result<()> {
        let holder = holder.to_string();
        self.with_write_conn(move |conn| {
            conn.execute(
                "UPDATE root_submitter SET holder = NULL, until = NULL WHERE id = 1 AND holder = ?1",
                [holder],
            )
            .map(|_| ())
            .map_err(sql_error)
        })
        .await
    }
}

fn is_primary_key(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}
