//! The tombstones of removed bodies (`removed_events`, migration 0011) as
//! readers see them: by id (idempotency, 410), in a verify scan, counted. A
//! leaf below the store, its writer and its removal.

use crate::sql::pg_error;
use auditlog_core::coverage::SeqRange;
use auditlog_core::merkle::stored_hash_index;
use auditlog_store::append_plan::hash_from_bytes as to_hash;
use auditlog_store::log_key::{bound_key, seq_of, SEQ_BITS};
use auditlog_store::{
    key_hash64, AccountId, KeyColumn, RemovalKind, Result, ScannedEvent, StoreError, Tombstone,
};
use tokio_postgres::GenericClient;

/// Up to `limit` tombstones of `account` with seq > `after_seq`, by seq, as
/// a scan reports them (leaf hashes filled in by the caller).
pub(crate) async fn scanned_tombstones(
    client: &impl GenericClient,
    account: AccountId,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<ScannedEvent>> {
    let rows = client
        .query(
            "SELECT key, event_id FROM removed_events WHERE key > $1 AND key <= $2 ORDER BY key LIMIT $3",
            &[
                &bound_key(account, after_seq),
                &bound_key(account, u64::MAX),
                &(limit as i64),
            ],
        )
        .await
        .map_err(pg_error)?;
    Ok(rows
        .iter()
        .map(|r| ScannedEvent::removed(seq_of(r.get(0)), KeyColumn::Text(r.get(1)), None))
        .collect())
}

/// The tombstones among `ids` of `account`, by id, with their tree leaf hashes.
pub(crate) async fn find_tombstones(
    client: &impl GenericClient,
    account: AccountId,
    ids: &[String],
) -> Result<Vec<(String, Tombstone)>> {
    let hashes: Vec<i64> = ids.iter().map(|id| key_hash64(id)).collect();
    let rows = client
        .query(
            &format!(
                "SELECT key, event_id, record_seq, kind FROM removed_events \
                 WHERE (key >> {SEQ_BITS}) = $1 AND id_hash = ANY($2) AND event_id = ANY($3)"
            ),
            &[&account, &hashes, &ids],
        )
        .await
        .map_err(pg_error)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let indexes: Vec<i64> = rows
        .iter()
        .map(|r| leaf_hash_index(seq_of(r.get(0))))
        .collect();
    let stored: std::collections::HashMap<i64, Vec<u8>> = client
        .query(
            "SELECT hash_index, hash FROM tree_hashes WHERE account_id = $1 AND hash_index = ANY($2)",
            &[&account, &indexes],
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    rows.iter()
        .map(|r| {
            let seq = seq_of(r.get(0));
            let kind: String = r.get(3);
            let kind = RemovalKind::parse(&kind).ok_or_else(|| {
                StoreError::internal(format!("removed event seq {seq} has kind {kind:?}"))
            })?;
            let hash = stored.get(&leaf_hash_index(seq)).ok_or_else(|| {
                StoreError::internal(format!("event seq {seq} has no leaf hash in the tree"))
            })?;
            Ok((
                r.get(1),
                Tombstone {
                    seq,
                    record_seq: r.get::<_, i64>(2) as u64,
                    kind,
                    leaf_hash: to_hash(hash)?,
                },
            ))
        })
        .collect()
}

/// How many tombstones of `range` are under the record at `record_seq`.
pub(crate) async fn removed_under(
    client: &impl GenericClient,
    account: AccountId,
    record_seq: u64,
    range: SeqRange,
) -> Result<u64> {
    let row = client
        .query_one(
            "SELECT COUNT(*) FROM removed_events WHERE key >= $1 AND key <= $2 AND record_seq = $3",
            &[
                &bound_key(account, range.first),
                &bound_key(account, range.last),
                &(record_seq as i64),
            ],
        )
        .await
        .map_err(pg_error)?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// How many tombstones `account` has.
pub(crate) async fn removed_count(client: &impl GenericClient, account: AccountId) -> Result<u64> {
    let row = client
        .query_one(
            "SELECT COUNT(*) FROM removed_events WHERE key > $1 AND key <= $2",
            &[&bound_key(account, 0), &bound_key(account, u64::MAX)],
        )
        .await
        .map_err(pg_error)?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// The stored index of leaf `seq - 1`'s hash.
fn leaf_hash_index(seq: u64) -> i64 {
    stored_hash_index(0, seq as i64 - 1)
}
