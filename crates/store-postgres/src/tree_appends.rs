//! The tree hashes an appending transaction adds, computed from the stored
//! frontier and inserted in the events' transaction. Used by the writer and
//! by `copy`'s target; reading proofs (`tree`) shares `read_hashes_in`.

use crate::sql::pg_error;
use auditlog_core::merkle::{self, Hash, PrefetchedHashes};
use auditlog_store::append_plan::hash_from_bytes as to_hash;
use auditlog_store::{Result, StoreError};
use deadpool_postgres::Transaction;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// The tree hashes a transaction adds, per account, built in memory from the
/// stored frontier (the roots of the complete subtrees of the current tree:
/// all that adding leaves ever reads).
#[derive(Default)]
pub(crate) struct TreeAppends {
    accounts: HashMap<i64, PrefetchedHashes>,
    account_id: Vec<i64>,
    hash_index: Vec<i64>,
    hash: Vec<Vec<u8>>,
}

impl TreeAppends {
    /// Adds leaf `leaf_index` (0-based: seq - 1) of `account_id`, whose tree
    /// holds exactly `leaf_index` leaves before it. Must hold the account's
    /// sequencer lock.
    pub(crate) async fn add_leaf(
        &mut self,
        tx: &Transaction<'_>,
        account_id: i64,
        leaf_index: i64,
        leaf_hash: Hash,
    ) -> Result<()> {
        let known = match self.accounts.entry(account_id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => {
                let indexes = merkle::tree_hash_indexes(leaf_index);
                slot.insert(read_hashes_in(&**tx, account_id, &indexes).await?)
            }
        };
        let hashes =
            merkle::stored_hashes_for_record(leaf_index, leaf_hash, known).map_err(|e| {
                StoreError::internal_caused_by(format!("tree of account {account_id}"), e)
            })?;
        let first = merkle::stored_hash_index(0, leaf_index);
        for (offset, hash) in hashes.into_iter().enumerate() {
            let index = first + offset as i64;
            known.0.insert(index, hash);
            self.account_id.push(account_id);
            self.hash_index.push(index);
            self.hash.push(hash.to_vec());
        }
        Ok(())
    }

    pub(crate) async fn insert(&self, tx: &Transaction<'_>) -> Result<()> {
        if self.hash.is_empty() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO tree_hashes (account_id, hash_index, hash) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])",
            &[&self.account_id, &self.hash_index, &self.hash],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }
}

/// The stored hashes at `indexes`; `NotFound` names the first missing one.
pub(crate) async fn read_hashes_in(
    client: &impl tokio_postgres::GenericClient,
    account_id: i64,
    indexes: &[i64],
) -> Result<PrefetchedHashes> {
    let mut found = PrefetchedHashes::default();
    if indexes.is_empty() {
        return Ok(found);
    }
    let rows = client
        .query(
            "SELECT hash_index, hash FROM tree_hashes WHERE account_id = $1 AND hash_index = ANY($2)",
            &[&account_id, &indexes],
        )
        .await
        .map_err(pg_error)?;
    for row in rows {
        found.0.insert(row.get(0), to_hash(row.get(1))?);
    }
    if let Some(missing) = indexes.iter().find(|i| !found.0.contains_key(i)) {
        return Err(StoreError::NotFound(format!(
            "no stored hash at index {missing} of account {account_id}"
        )));
    }
    Ok(found)
}
