//! Between tokio-postgres and the store's types: driver and pool errors
//! mapped into `StoreError`, and rows read into accounts, users and event
//! records. A leaf below the store, its writer and the tree, which all use it.

use auditlog_core::leaf;
use auditlog_core::{Taxonomy, Timestamp};
use auditlog_store::leaf_codec::DictionaryCache;
use auditlog_store::log_key::seq_of;
use auditlog_store::{Account, AccountId, EventRecord, Result, Role, StoreError, User};
use tokio_postgres::error::SqlState;
use tokio_postgres::{GenericClient, Row};

/// Maps a driver error into the store's error, keeping it as the cause. Lost
/// connections, an unreachable or overloaded server and I/O errors are worth
/// a retry; a full disk is said as such (the server rolled back the
/// transaction, so nothing of it was stored).
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let retryable = e.is_closed()
        || matches!(
            e.code(),
            Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::DISK_FULL
                || *code == SqlState::IO_ERROR
        )
        || e.code().is_none();
    // `Display` of a server error is only "db error"; the detail is in its
    // source, which `ErrorChain` shows.
    if e.code() == Some(&SqlState::DISK_FULL) {
        StoreError::full_caused_by("the database server's disk has no room", e)
    } else if retryable {
        StoreError::unavailable_caused_by("the database cannot take this request now", e)
    } else {
        StoreError::internal_caused_by("the database refused a statement", e)
    }
}

pub(crate) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(e),
        other => StoreError::unavailable_caused_by("no database connection", other),
    }
}

pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

pub(crate) fn now_micros() -> i64 {
    Timestamp::now().micros()
}

pub(crate) fn to_account(row: &Row) -> Result<Account> {
    let name: String = row.get(1);
    let taxonomy: String = row.get(2);
    let taxonomy: Taxonomy = serde_json::from_str(&taxonomy).map_err(|e| {
        StoreError::internal_caused_by(format!("account {name} has an unreadable taxonomy"), e)
    })?;
    Ok(Account {
        id: row.get(0),
        name,
        taxonomy,
    })
}

/// The columns [`to_record`] reads, from `event_log` aliased `l`: the
/// personal values of a version 2 leaf come from their own table.
pub(crate) const RECORD_COLUMNS: &str = "l.key, l.time, l.leaf, \
     (SELECT personal FROM event_personal p WHERE p.account_id = l.key >> 40 AND p.seq = l.key & 1099511627775), \
     l.leaf_dict";

/// The column of [`RECORD_COLUMNS`] that names the leaf's dictionary.
pub(crate) const RECORD_DICTIONARY: usize = 4;

/// The record of a row read with [`RECORD_COLUMNS`], its leaf decompressed
/// (its dictionary loaded first with [`load_dictionaries`]). The leaf hash
/// is not stored beside the leaf: it is the leaf's hash (the tree's copy at
/// the leaf's stored index is what proofs and verify compare).
pub(crate) fn to_record(row: &Row, dictionaries: &DictionaryCache) -> Result<EventRecord> {
    let leaf_bytes = decode_leaf(dictionaries, row.get(4), row.get(2))?;
    Ok(EventRecord {
        seq: seq_of(row.get(0)),
        time: Timestamp::from_micros(row.get(1)),
        leaf_hash: leaf::leaf_hash(&leaf_bytes),
        leaf_bytes,
        personal: row.get(3),
    })
}

/// The exact leaf bytes of a stored leaf whose dictionary is loaded.
pub(crate) fn decode_leaf(
    dictionaries: &DictionaryCache,
    dictionary: Option<i64>,
    stored: Vec<u8>,
) -> Result<Vec<u8>> {
    dictionaries.decode(dictionary, stored, |id| {
        Err(StoreError::internal(format!(
            "a stored leaf names dictionary {id}, which does not exist (it was removed)"
        )))
    })
}

/// Loads into `dictionaries` those that `rows` name (column `column`) and
/// it lacks, in one query.
pub(crate) async fn load_dictionaries(
    client: &(impl GenericClient + Sync),
    dictionaries: &DictionaryCache,
    rows: &[Row],
    column: usize,
) -> Result<()> {
    let missing = dictionaries.missing(rows.iter().filter_map(|r| r.get::<_, Option<i64>>(column)));
    if missing.is_empty() {
        return Ok(());
    }
    let found = client
        .query(
            "SELECT id, dictionary FROM leaf_dictionaries WHERE id = ANY($1)",
            &[&missing],
        )
        .await
        .map_err(pg_error)?;
    for row in found {
        dictionaries.insert(row.get(0), row.get::<_, &[u8]>(1))?;
    }
    Ok(())
}

pub(crate) fn to_user(account: AccountId, row: &Row) -> Result<User> {
    let role: String = row.get(3);
    let role =
        Role::parse(&role).ok_or_else(|| StoreError::internal(format!("unknown role {role:?}")))?;
    Ok(User {
        id: row.get(0),
        account_id: account,
        email: row.get(1),
        password_hash: row.get(2),
        role,
    })
}
