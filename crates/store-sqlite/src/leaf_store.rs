//! The writer's side of leaf compression (`auditlog_store::leaf_codec`):
//! per account, whether its new leaves are compressed and with which
//! dictionary, and when to train one. Runs inside the writer's transaction,
//! so a dictionary and the first leaves it compresses commit together.

use crate::sql::{sql_error, LeafDecoder};
use auditlog_core::record::is_version_2;
use auditlog_store::leaf_codec::{
    self, AccountLeaves, DictionaryCache, LeafCompressor, TRAIN_AFTER,
};
use auditlog_store::Result;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;

/// The writer's leaf encoders and the dictionaries it has read.
#[derive(Default)]
pub(crate) struct LeafStore {
    accounts: HashMap<i64, AccountLeaves>,
    dictionaries: DictionaryCache,
}

impl LeafStore {
    /// After a rolled-back transaction: what it created (a dictionary, its
    /// id) is gone, so everything is read again from the database.
    pub(crate) fn forget(&mut self) {
        *self = Self::default();
    }

    /// Reads stored leaves (the idempotency check) inside `tx`.
    pub(crate) fn decoder<'c>(&'c self, tx: &'c Connection) -> LeafDecoder<'c> {
        LeafDecoder {
            cache: &self.dictionaries,
            conn: tx,
            objects: None,
        }
    }

    /// The stored form of a new leaf of `account_id`: its dictionary (`None`
    /// = as it is) and bytes. Trains the account's dictionary first when it
    /// is due.
    pub(crate) fn encode(
        &mut self,
        tx: &Connection,
        account_id: i64,
        leaf: Vec<u8>,
    ) -> Result<(Option<i64>, Vec<u8>)> {
        let state = match self.accounts.entry(account_id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(load(tx, account_id)?),
        };
        if state.dictionary_due() {
            *state = train(tx, account_id)?;
        }
        state.encode(leaf)
    }
}

/// The account's latest dictionary, or a state that checks for enough
/// samples at once (an account whose dictionary could not be trained
/// before, or a store written before compression).
fn load(tx: &Connection, account_id: i64) -> Result<AccountLeaves> {
    let latest: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT id, dictionary FROM leaf_dictionaries WHERE account_id = ?1 ORDER BY id DESC LIMIT 1",
            [account_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql_error)?;
    match latest {
        Some((id, dictionary)) => Ok(AccountLeaves::Compressed(LeafCompressor::new(
            id,
            &dictionary,
        )?)),
        None => Ok(AccountLeaves::unknown()),
    }
}

/// Trains a dictionary on the account's latest version 2 leaves stored as
/// they are (never a version 1 leaf: those hold personal values in clear).
fn train(tx: &Connection, account_id: i64) -> Result<AccountLeaves> {
    let (first, last) = crate::event_log::account_keys(account_id);
    let mut stmt = tx
        .prepare_cached(
            "SELECT leaf FROM event_log WHERE key BETWEEN ?1 AND ?2 AND leaf_dict IS NULL \
             ORDER BY key DESC LIMIT ?3",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![first, last, TRAIN_AFTER as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .map_err(sql_error)?;
    let mut samples = Vec::new();
    for row in rows {
        let leaf = row.map_err(sql_error)?;
        if is_version_2(&leaf) {
            samples.push(leaf);
        }
    }
    let Some(dictionary) = leaf_codec::train(&samples) else {
        return Ok(AccountLeaves::waiting());
    };
    tx.execute(
        "INSERT INTO leaf_dictionaries (account_id, dictionary, created_at) VALUES (?1, ?2, ?3)",
        params![account_id, dictionary, crate::sql::now_micros()],
    )
    .map_err(sql_error)?;
    let id = tx.last_insert_rowid();
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
