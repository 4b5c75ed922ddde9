//! [`Removals`] on SQLite (migration 0012): bodies leave the event log under
//! a covering record, each leaving a tombstone in `removed_events`; the
//! triggers of 0012 refuse any removal whose record is not stored (see
//! `auditlog_store::removal`). Removals run on pooled connections in IMMEDIATE
//! transactions (like checkpoints), between the writer's group commits.

use crate::sql::sql_error;
use crate::tombstones;
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::coverage::SeqRange;
use auditlog_store::log_key::log_key;
use auditlog_store::{
    key_hash64, AccountId, RemovalKind, Removals, RemovedBody, Result, SpaceReport, StoreError,
    Tombstone,
};
use rusqlite::{params, Connection};

/// Pages an incremental vacuum step frees (4 KiB each: 8 MiB): each step is
/// one short write transaction, so appends wait at most one step.
const VACUUM_STEP_PAGES: u32 = 2_048;

/// `PRAGMA auto_vacuum`'s value for INCREMENTAL.
const AUTO_VACUUM_INCREMENTAL: i64 = 2;

/// The bytes of the database file and its WAL.
fn bytes_on_disk(path: &std::path::Path) -> Option<u64> {
    let file = std::fs::metadata(path).ok()?.len();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
    Some(file + wal)
}

fn pragma_i64(conn: &Connection, name: &str) -> Result<i64> {
    conn.pragma_query_value(None, name, |r| r.get(0))
        .map_err(sql_error)
}

/// Copies the WAL into the file and truncates both: the file's size is
/// set by the checkpoint, so this is where freed pages leave the disk.
/// Readers in the middle of a read make it stop short (it is retried at
/// the next pruning); that is no error.
fn checkpoint_truncate(conn: &Connection) -> Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(sql_error)
}

/// Removes one body inside `tx`: the tombstone first (which the triggers
/// require, with the coverage), the rollup count, the personal values and
/// openings, then the row. False when the event has no row (already removed).
fn remove_one(
    tx: &Connection,
    account: i64,
    record_seq: u64,
    kind: RemovalKind,
    event: &RemovedBody,
) -> Result<bool> {
    let key = log_key(account, event.seq)?;
    let tombstone = tx
        .prepare_cached(
            "INSERT INTO removed_events (key, id_hash, event_id, record_seq, kind) \
             SELECT key, id_hash, ?2, ?3, ?4 FROM event_log WHERE key = ?1 AND id_hash = ?5",
        )
        .map_err(sql_error)?
        .execute(params![
            key,
            event.event_id,
            record_seq as i64,
            kind.as_str(),
            key_hash64(&event.event_id)
        ])
        .map_err(sql_error)?;
    if tombstone == 0 {
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM event_log WHERE key = ?1)",
                [key],
                |r| r.get(0),
            )
            .map_err(sql_error)?;
        if exists {
            return Err(StoreError::internal(format!(
                "event seq {} does not have the id {:?}: its body is not removed",
                event.seq, event.event_id
            )));
        }
        return Ok(false);
    }
    // The day rollups count events that can be listed: this one no longer
    // (`event_rollups`, and `actor_rollups`, whose empty rows go).
    crate::rollups::subtract_removed(tx, account, key)?;
    for table in ["event_openings", "event_personal"] {
        tx.prepare_cached(&format!(
            "DELETE FROM {table} WHERE account_id = ?1 AND seq = ?2"
        ))
        .map_err(sql_error)?
        .execute(params![account, event.seq as i64])
        .map_err(sql_error)?;
    }
    // Its words too (the actor's name and email among them): the
    // full-text index is contentless with secure-delete, so the entry is
    // removed by its key and its pages overwritten (migration 0014).
    crate::word_index::remove_event(tx, key)?;
    tx.prepare_cached("DELETE FROM event_log WHERE key = ?1")
        .map_err(sql_error)?
        .execute([key])
        .map_err(sql_error)?;
    Ok(true)
}

#[async_trait]
impl Removals for SqliteStore {
    async fn add_coverage(
        &self,
        account: AccountId,
        record_seq: u64,
        ranges: &[SeqRange],
    ) -> Result<()> {
        let ranges = ranges.to_vec();
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO removal_coverage (account_id, record_seq, first_seq, last_seq) \
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    )
                    .map_err(sql_error)?;
                for range in &ranges {
                    insert
                        .execute(params![
                            account,
                            record_seq as i64,
                            range.first as i64,
                            range.last as i64
                        ])
                        .map_err(sql_error)?;
                }
            }
            tx.commit().map_err(sql_error)
        })
        .await
    }

    async fn coverage_records(&self, account: AccountId) -> Result<Vec<u64>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT DISTINCT record_seq FROM removal_coverage WHERE account_id = ?1 ORDER BY record_seq",
                )
                .map_err(sql_error)?;
            let rows = stmt
                .query_map([account], |r| r.get::<_, i64>(0))
                .map_err(sql_error)?;
            rows.map(|r| r.map(|s| s as u64).map_err(sql_error))
                .collect()
        })
        .await
    }

    async fn remove_bodies(
        &self,
        account: AccountId,
        record_seq: u64,
        kind: RemovalKind,
        events: &[RemovedBody],
    ) -> Result<u64> {
        let events = events.to_vec();
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let mut removed = 0;
            for event in &events {
                if remove_one(&tx, account, record_seq, kind, event)? {
                    removed += 1;
                }
            }
            tx.commit().map_err(sql_error)?;
            Ok(removed)
        })
        .await
    }

    async fn tombstone(&self, account: AccountId, id: &str) -> Result<Option<Tombstone>> {
        let id = id.to_string();
        self.with_conn(move |conn| tombstones::find_tombstone(conn, account, &id))
            .await
    }

    async fn reclaim_space(&self) -> Result<SpaceReport> {
        let path = self.path().to_path_buf();
        let bytes_before = bytes_on_disk(&path);
        let incremental = self
            .with_conn(|conn| Ok(pragma_i64(conn, "auto_vacuum")? == AUTO_VACUUM_INCREMENTAL))
            .await?;
        if incremental {
            // Step by step, each step at the write gate like any occasional
            // write, so that ingest goes on between steps.
            let mut last_left = i64::MAX;
            loop {
                let left = self
                    .with_write_conn(|conn| {
                        conn.execute_batch(&format!(
                            "PRAGMA incremental_vacuum({VACUUM_STEP_PAGES})"
                        ))
                        .map_err(sql_error)?;
                        pragma_i64(conn, "freelist_count")
                    })
                    .await?;
                // Stops when nothing is left, or when a step freed nothing
                // (appends took the free pages meanwhile).
                if left == 0 || left >= last_left {
                    break;
                }
                last_left = left;
            }
        }
        self.with_write_conn(|conn| checkpoint_truncate(conn))
            .await?;
        Ok(SpaceReport {
            bytes_before,
            bytes_after: bytes_on_disk(&path),
            incremental,
        })
    }

    async fn compact(&self) -> Result<SpaceReport> {
        let path = self.path().to_path_buf();
        let bytes_before = bytes_on_disk(&path);
        self.with_write_conn(|conn| {
            // Takes effect with the VACUUM that follows, which rebuilds the
            // file with the pointer maps incremental vacuum needs.
            conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
                .map_err(sql_error)?;
            checkpoint_truncate(conn)
        })
        .await?;
        let incremental = self
            .with_conn(|conn| Ok(pragma_i64(conn, "auto_vacuum")? == AUTO_VACUUM_INCREMENTAL))
            .await?;
        Ok(SpaceReport {
            bytes_before,
            bytes_after: bytes_on_disk(&path),
            incremental,
        })
    }

    async fn removed_count(&self, account: AccountId) -> Result<u64> {
        self.with_conn(move |conn| tombstones::removed_count(conn, account))
            .await
    }

    async fn removed_under(
        &self,
        account: AccountId,
        record_seq: u64,
        range: SeqRange,
    ) -> Result<u64> {
        self.with_conn(move |conn| tombstones::removed_under(conn, account, record_seq, range))
            .await
    }
}
