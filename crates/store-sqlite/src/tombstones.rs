//! The tombstones of removed bodies (`removed_events`, migration 0012) as
//! readers see them: by id (idempotency, 410), in a verify scan, counted. A
//! leaf below the store, its writer and its removal.

use crate::sql::sql_error;
use auditlog_core::coverage::SeqRange;
use auditlog_core::merkle;
use auditlog_store::append_plan::hash_from_bytes as to_hash;
use auditlog_store::log_key::{account_keys, bound_key, seq_of};
use auditlog_store::{
    key_hash64, KeyColumn, RemovalKind, Result, ScannedEvent, StoreError, Tombstone,
};
use rusqlite::{params, Connection, OptionalExtension};

/// The tombstone of the removed event `id` of `account`, confirmed against
/// its id text; its leaf hash is the tree's.
pub(crate) fn find_tombstone(
    conn: &Connection,
    account: i64,
    id: &str,
) -> Result<Option<Tombstone>> {
    let (first, last) = account_keys(account);
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, record_seq, kind FROM removed_events INDEXED BY removed_events_by_id \
             WHERE id_hash = ?1 AND key BETWEEN ?2 AND ?3 AND event_id = ?4",
        )
        .map_err(sql_error)?;
    let row = stmt
        .query_row(params![key_hash64(id), first, last, id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .optional()
        .map_err(sql_error)?;
    let Some((key, record_seq, kind)) = row else {
        return Ok(None);
    };
    let seq = seq_of(key);
    let kind = RemovalKind::parse(&kind).ok_or_else(|| {
        StoreError::internal(format!("removed event seq {seq} has kind {kind:?}"))
    })?;
    Ok(Some(Tombstone {
        seq,
        record_seq: record_seq as u64,
        kind,
        leaf_hash: leaf_hash(conn, account, seq)?,
    }))
}

/// The tree's hash of leaf `seq - 1`: what stands for a removed leaf.
fn leaf_hash(conn: &Connection, account: i64, seq: u64) -> Result<[u8; 32]> {
    let index = merkle::stored_hash_index(0, seq as i64 - 1);
    let bytes: Vec<u8> = conn
        .query_row(
            "SELECT hash FROM tree_hashes WHERE account_id = ?1 AND hash_index = ?2",
            params![account, index],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_error)?
        .ok_or_else(|| {
            StoreError::internal(format!("event seq {seq} has no leaf hash in the tree"))
        })?;
    to_hash(&bytes)
}

/// Up to `limit` tombstones of `account` with seq > `after_seq`, by seq, as
/// a scan reports them (their leaf hashes are filled in by the caller).
pub(crate) fn scanned_tombstones(
    conn: &Connection,
    account: i64,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<ScannedEvent>> {
    let (_, last) = account_keys(account);
    let first = bound_key(account, after_seq.saturating_add(1));
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, event_id FROM removed_events WHERE key BETWEEN ?1 AND ?2 ORDER BY key LIMIT ?3",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![first, last, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(sql_error)?;
    rows.map(|row| {
        let (key, id) = row.map_err(sql_error)?;
        Ok(ScannedEvent::removed(
            seq_of(key),
            KeyColumn::Text(id),
            None,
        ))
    })
    .collect()
}

/// How many tombstones `account` has.
pub(crate) fn removed_under(
    conn: &Connection,
    account: i64,
    record_seq: u64,
    range: SeqRange,
) -> Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM removed_events WHERE key BETWEEN ?1 AND ?2 AND record_seq = ?3",
        params![
            bound_key(account, range.first),
            bound_key(account, range.last),
            record_seq as i64
        ],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .map_err(sql_error)
}

pub(crate) fn removed_count(conn: &Connection, account: i64) -> Result<u64> {
    let (first, last) = account_keys(account);
    conn.query_row(
        "SELECT COUNT(*) FROM removed_events WHERE key BETWEEN ?1 AND ?2",
        params![first, last],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .map_err(sql_error)
}
