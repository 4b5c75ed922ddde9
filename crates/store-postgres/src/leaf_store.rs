//! The writer's side of leaf compression (`auditlog_store::leaf_codec`), as
//! on the embedded store (`store-sqlite/src/leaf_store.rs`): per account,
//! whether new leaves are compressed and with which dictionary, and when to
//! train one. Runs inside the writer's transaction, after the account's
//! sequencer row is locked, so two servers never train for one account at
//! once (the second sees the first's dictionary when it looks again).

use crate::sql::{decode_leaf, load_dictionaries, now_micros, pg_error};
use auditlog_core::record::is_version_2;
use auditlog_store::leaf_codec::{
    self, AccountLeaves, DictionaryCache, LeafCompressor, TRAIN_AFTER,
};
use auditlog_store::log_key::bound_key;
use auditlog_store::Result;
use deadpool_postgres::Transaction;
use std::collections::HashMap;
use tokio_postgres::Row;

/// The writer's leaf encoders and the dictionaries it has read.
#[derive(Default)]
pub(crate) struct LeafStore {
    accounts: HashMap<i64, AccountLeaves>,
    dictionaries: DictionaryCache,
}

impl LeafStore {
    /// After a rolled-back transaction: read everything again.
    pub(crate) fn forget(&mut self) {
        *self = Self::default();
    }

    /// The exact leaf bytes of stored rows (the idempotency check), whose
    /// dictionaries (column `dictionary_column`) are loaded first.
    pub(crate) async fn prepare_decoding(
        &self,
        tx: &Transaction<'_>,
        rows: &[Row],
        dictionary_column: usize,
    ) -> Result<()> {
        load_dictionaries(&**tx, &self.dictionaries, rows, dictionary_column).await
    }

    pub(crate) fn decode(&self, dictionary: Option<i64>, stored: Vec<u8>) -> Result<Vec<u8>> {
        decode_leaf(&self.dictionaries, dictionary, stored)
    }

    /// The stored form of a new leaf of `account_id`: its dictionary
    /// (`None` = as it is) and bytes; trains the dictionary first when due.
    pub(crate) async fn encode(
        &mut self,
        tx: &Transaction<'_>,
        account_id: i64,
        leaf: Vec<u8>,
    ) -> Result<(Option<i64>, Vec<u8>)> {
        let state = self
            .accounts
            .entry(account_id)
            .or_insert_with(AccountLeaves::unknown);
        if state.dictionary_due() {
            *state = load_or_train(tx, account_id).await?;
        }
        state.encode(leaf)
    }
}

/// The account's latest dictionary (another server may have trained it);
/// failing that, one trained now on its latest version 2 leaves stored as
/// they are (never version 1 leaves: those hold personal values in clear).
async fn load_or_train(tx: &Transaction<'_>, account_id: i64) -> Result<AccountLeaves> {
    let latest = tx
        .query_opt(
            "SELECT id, dictionary FROM leaf_dictionaries WHERE account_id = $1 ORDER BY id DESC LIMIT 1",
            &[&account_id],
        )
        .await
        .map_err(pg_error)?;
    if let Some(row) = latest {
        return Ok(AccountLeaves::Compressed(LeafCompressor::new(
            row.get(0),
            row.get::<_, &[u8]>(1),
        )?));
    }
    let rows = tx
        .query(
            "SELECT leaf FROM event_log WHERE key > $1 AND key <= $2 AND leaf_dict IS NULL \
             ORDER BY key DESC LIMIT $3",
            &[
                &bound_key(account_id, 0),
                &bound_key(account_id, u64::MAX),
                &(TRAIN_AFTER as i64),
            ],
        )
        .await
        .map_err(pg_error)?;
    let samples: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| r.get::<_, Vec<u8>>(0))
        .filter(|leaf| is_version_2(leaf))
        .collect();
    let Some(dictionary) = leaf_codec::train(&samples) else {
        return Ok(AccountLeaves::waiting());
    };
    let row = tx
        .query_one(
            "INSERT INTO leaf_dictionaries (account_id, dictionary, created_at) VALUES ($1, $2, $3) RETURNING id",
            &[&account_id, &dictionary, &now_micros()],
        )
        .await
        .map_err(pg_error)?;
    let id: i64 = row.get(0);
    tracing::info!(
        account_id,
        dictionary_id = id,
        samples = samples.len(),
        bytes = dictionary.len(),
        "trained a leaf dictionary; new leaves of the account are stored compressed"
    );
    Ok(AccountLeaves::Compressed(LeafCompressor::new(
        id,
        &dictionary,
    )?))
}
