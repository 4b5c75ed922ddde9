//! The PostgreSQL side of the root log (migration 0009): root leaves
//! appended in each checkpoint's transaction under an advisory lock (so
//! that servers sharing the database build one root tree), root
//! checkpoints, cosignatures and the submitter's lease.

use crate::sql::{is_unique_violation, pg_error};
use crate::writer::to_hash;
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::merkle::{self, Hash, PrefetchedHashes};
use auditlog_core::Timestamp;
use auditlog_store::root_log::{root_hashes_for_leaf, root_leaf_hash};
use auditlog_store::{
    AccountId, Result, RootLeaf, RootLogStore, StoreError, StoredCheckpoint, StoredCosignature,
};
use tokio_postgres::{GenericClient, Row};

/// An arbitrary constant naming "the root log" among advisory locks.
const ROOT_LOG_LOCK: i64 = 0x726f_6f74_6c6f_6721; // "rootlog!"

const CHECKPOINT_COLUMNS: &str = "size, root, note, created_at";

async fn read_root_hashes_in(
    client: &impl GenericClient,
    indexes: &[i64],
) -> Result<PrefetchedHashes> {
    let mut found = PrefetchedHashes::default();
    if indexes.is_empty() {
        return Ok(found);
    }
    let rows = client
        .query(
            "SELECT hash_index, hash FROM root_hashes WHERE hash_index = ANY($1)",
            &[&indexes],
        )
        .await
        .map_err(pg_error)?;
    for row in rows {
        found.0.insert(row.get(0), to_hash(row.get(1))?);
    }
    if let Some(missing) = indexes.iter().find(|i| !found.0.contains_key(i)) {
        return Err(StoreError::NotFound(format!(
            "no stored root hash at index {missing}"
        )));
    }
    Ok(found)
}

async fn root_size_in(client: &impl GenericClient) -> Result<u64> {
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM root_leaves",
            &[],
        )
        .await
        .map_err(pg_error)?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Appends the account checkpoint of `size` as the next root leaf, inside
/// the caller's transaction, under the root log's advisory lock (held until
/// that transaction ends).
pub(crate) async fn append_root_leaf(
    tx: &deadpool_postgres::Transaction<'_>,
    account: AccountId,
    size: u64,
    leaf_hash: Hash,
) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ROOT_LOG_LOCK])
        .await
        .map_err(pg_error)?;
    let index = root_size_in(&**tx).await?;
    let mut known = read_root_hashes_in(&**tx, &merkle::tree_hash_indexes(index as i64)).await?;
    let added = root_hashes_for_leaf(index, leaf_hash, &mut known)?;
    tx.execute(
        "INSERT INTO root_leaves (leaf_index, account_id, size) VALUES ($1, $2, $3)",
        &[&(index as i64), &account, &(size as i64)],
    )
    .await
    .map_err(pg_error)?;
    let indexes: Vec<i64> = added.iter().map(|(at, _)| *at).collect();
    let hashes: Vec<Vec<u8>> = added.iter().map(|(_, hash)| hash.to_vec()).collect();
    tx.execute(
        "INSERT INTO root_hashes (hash_index, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])",
        &[&indexes, &hashes],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

fn to_checkpoint(row: &Row) -> Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        size: row.get::<_, i64>(0) as u64,
        root: to_hash(row.get(1))?,
        note: row.get(2),
        created_at: Timestamp::from_micros(row.get(3)),
    })
}

fn to_leaf(row: &Row) -> RootLeaf {
    RootLeaf {
        index: row.get::<_, i64>(0) as u64,
        size: row.get::<_, i64>(1) as u64,
    }
}

#[async_trait]
impl RootLogStore for PgStore {
    async fn root_size(&self) -> Result<u64> {
        let client = self.client().await?;
        root_size_in(&**client).await
    }

    async fn read_root_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>> {
        let client = self.client().await?;
        let found = read_root_hashes_in(&**client, indexes).await?;
        Ok(indexes.iter().map(|i| found.0[i]).collect())
    }

    async fn backfill_root_log(&self) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ROOT_LOG_LOCK])
            .await
            .map_err(pg_error)?;
        if root_size_in(&*tx).await? > 0 {
            return Ok(0);
        }
        let rows = tx
            .query(
                "SELECT DISTINCT ON (account_id) account_id, size, note, created_at FROM checkpoints \
                 ORDER BY account_id, size DESC",
                &[],
            )
            .await
            .map_err(pg_error)?;
        let mut latest: Vec<(i64, i64, String, i64)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        latest.sort_by_key(|(account, _, _, created_at)| (*created_at, *account));
        for (account, size, note, _) in &latest {
            append_root_leaf(&tx, *account, *size as u64, root_leaf_hash(note)).await?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(latest.len() as u64)
    }

    async fn root_leaf_of(&self, account: AccountId, size: u64) -> Result<Option<RootLeaf>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT leaf_index, size FROM root_leaves WHERE account_id = $1 AND size = $2",
                &[&account, &(size as i64)],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.as_ref().map(to_leaf))
    }

    async fn latest_root_leaf(
        &self,
        account: AccountId,
        root_size: u64,
    ) -> Result<Option<RootLeaf>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT leaf_index, size FROM root_leaves WHERE account_id = $1 AND leaf_index < $2 \
                 ORDER BY size DESC LIMIT 1",
                &[&account, &(root_size as i64)],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.as_ref().map(to_leaf))
    }

    async fn add_root_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<()> {
        let client = self.client().await?;
        match client
            .execute(
                "INSERT INTO root_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4)",
                &[
                    &(checkpoint.size as i64),
                    &&checkpoint.root[..],
                    &checkpoint.note,
                    &checkpoint.created_at.micros(),
                ],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!(
                "root checkpoint of size {}",
                checkpoint.size
            ))),
            Err(e) => Err(pg_error(e)),
        }
    }

    async fn latest_root_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM root_checkpoints ORDER BY size DESC LIMIT 1"
                ),
                &[],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_checkpoint).transpose()
    }

    async fn root_checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {CHECKPOINT_COLUMNS} FROM root_checkpoints WHERE size = $1"),
                &[&(size as i64)],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_checkpoint).transpose()
    }

    async fn add_cosignature(&self, c: &StoredCosignature) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO root_cosignatures (size, witness, line, timestamp) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (size, witness) DO NOTHING",
                &[&(c.size as i64), &c.witness, &c.line, &(c.timestamp as i64)],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn cosignatures(&self, size: u64) -> Result<Vec<StoredCosignature>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT witness, line, timestamp FROM root_cosignatures WHERE size = $1 ORDER BY witness",
                &[&(size as i64)],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| StoredCosignature {
                size,
                witness: r.get(0),
                line: r.get(1),
                timestamp: r.get::<_, i64>(2) as u64,
            })
            .collect())
    }

    async fn cosigned_sizes(&self) -> Result<Vec<(String, u64)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT witness, MAX(size) FROM root_cosignatures GROUP BY witness",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    async fn latest_cosigned_root(
        &self,
        witnesses: &[String],
        quorum: usize,
    ) -> Result<Option<u64>> {
        if quorum == 0 {
            return Ok(self.latest_root_checkpoint().await?.map(|c| c.size));
        }
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT size FROM root_cosignatures WHERE witness = ANY($1) \
                 GROUP BY size HAVING COUNT(DISTINCT witness) >= $2 ORDER BY size DESC LIMIT 1",
                &[&witnesses, &(quorum as i64)],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    async fn claim_root_submitter(
        &self,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE root_submitter SET holder = $1, until = $2 \
                 WHERE id = 1 AND (holder IS NULL OR holder = $1 OR until < $3)",
                &[&holder, &until.micros(), &now.micros()],
            )
            .await
            .map_err(pg_error)?;
        Ok(changed == 1)
    }

    async fn release_root_submitter(&self, holder: &str) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE root_submitter SET holder = NULL, until = NULL WHERE id = 1 AND holder = $1",
                &[&holder],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }
}
