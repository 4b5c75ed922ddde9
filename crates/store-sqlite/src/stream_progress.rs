//! Log streams' delivery progress in a side database, `stream-progress.db`
//! in the data directory (issue 15).
//!
//! A delivering stream records each batch: its acceptance moves the cursor
//! and persists the next batch's bounds (the `webhook-id` after a crash),
//! and a failure counts an attempt. In `auditlog.db` each of those commits
//! would wait for SQLite's one write lock, which ingest's group commits hold
//! most of the time under full ingest (BENCHMARKS.md, "Log stream delivery
//! off the event store's write lock"). So this progress lives here, in a
//! small file of its own (WAL, `synchronous=FULL`: an acknowledged move
//! survives kill -9 and power loss) with one connection and its own lock;
//! the configuration, the status, the lease, creation, replay and deletion
//! stay in `auditlog.db`.
//!
//! Which of the two holds: `log_streams.progress_epoch` (migration 0022)
//! gets a new random value on creation and on each replay, and a row here
//! counts only while it carries the stream's epoch; otherwise the values of
//! `log_streams` hold (the cursor the stream was created or replayed with).
//! So a replay wins over progress recorded before it, even if the server
//! died between the two files' commits.
//!
//! The order of the two files: every write here that depends on the
//! stream (its lease, its status, its epoch) reads `log_streams` while it
//! holds this file's lock, and creation and deletion clear this file's rows
//! of the stream under the same lock after their commit. So a batch
//! recorded for a stream being deleted is either cleared by the deletion or
//! sees the stream gone, and a stream id that SQLite gives again after a
//! deletion never inherits the old stream's rows.

use crate::sql::{open_connection, sql_error};
use auditlog_core::Timestamp;
use auditlog_store::streams::BATCH_HISTORY;
use auditlog_store::{BatchRecord, LogStream, Result, StoreError, StreamId};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// The side database's file name inside the data directory.
pub const PROGRESS_FILE: &str = "stream-progress.db";

/// The whole schema (created if missing; only ever added to).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stream_progress (
    stream_id      INTEGER PRIMARY KEY,
    epoch          INTEGER NOT NULL,
    cursor         INTEGER NOT NULL,
    batch_first    INTEGER,
    batch_last     INTEGER,
    attempts       INTEGER NOT NULL,
    last_error     TEXT,
    failing_since  INTEGER,
    updated_at     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stream_batches (
    id          INTEGER PRIMARY KEY,
    stream_id   INTEGER NOT NULL,
    epoch       INTEGER NOT NULL,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    status      TEXT NOT NULL,
    response    TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS stream_batches_by_stream ON stream_batches (stream_id, id);
";

/// What changes per batch: the part of a [`LogStream`] kept here.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub cursor: u64,
    pub pending: Option<(u64, u64)>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub failing_since: Option<Timestamp>,
    pub updated_at: Timestamp,
}

impl Progress {
    /// The progress as `log_streams` holds it (no current row here).
    pub fn of(stream: &LogStream) -> Self {
        Self {
            cursor: stream.cursor,
            pending: stream.pending,
            attempts: stream.attempts,
            last_error: stream.last_error.clone(),
            failing_since: stream.failing_since,
            updated_at: stream.updated_at,
        }
    }

    /// `stream` as it is with this progress.
    pub fn apply(self, stream: &mut LogStream) {
        stream.cursor = self.cursor;
        stream.pending = self.pending;
        stream.attempts = self.attempts;
        stream.last_error = self.last_error;
        stream.failing_since = self.failing_since;
        stream.updated_at = stream.updated_at.max(self.updated_at);
    }
}

/// The WAL size, in pages, at which a commit to the progress file copies
/// its WAL (SQLite's default).
const PROGRESS_WAL_PAGES: i64 = 1_000;

/// The side database: one connection, behind its own lock.
pub struct ProgressDb {
    conn: Mutex<Connection>,
}

impl ProgressDb {
    /// Opens (creating if needed) `stream-progress.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let conn = open_connection(&data_dir.join(PROGRESS_FILE))?;
        // No checkpointer watches this file (`checkpointer.rs` copies the
        // event store's WAL): its own commits copy its WAL, at SQLite's
        // default threshold, or it would grow for as long as streams run.
        conn.pragma_update(None, "wal_autocheckpoint", PROGRESS_WAL_PAGES)
            .map_err(sql_error)?;
        conn.execute_batch(SCHEMA).map_err(sql_error)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// The connection, for as long as the guard lives (see the module's
    /// note on the order of the two files).
    pub fn lock(&self) -> Result<MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| StoreError::internal("the log streams' progress connection is poisoned"))
    }
}

/// The stream's progress here, if a row of `epoch` holds it.
pub fn read(conn: &Connection, id: StreamId, epoch: i64) -> Result<Option<Progress>> {
    conn.prepare_cached(
        "SELECT cursor, batch_first, batch_last, attempts, last_error, failing_since, updated_at \
         FROM stream_progress WHERE stream_id = ?1 AND epoch = ?2",
    )
    .map_err(sql_error)?
    .query_row(params![id, epoch], |r| {
        let first: Option<i64> = r.get(1)?;
        let last: Option<i64> = r.get(2)?;
        Ok(Progress {
            cursor: r.get::<_, i64>(0)? as u64,
            pending: first.zip(last).map(|(f, l)| (f as u64, l as u64)),
            attempts: r.get::<_, i64>(3)? as u32,
            last_error: r.get(4)?,
            failing_since: r.get::<_, Option<i64>>(5)?.map(Timestamp::from_micros),
            updated_at: Timestamp::from_micros(r.get(6)?),
        })
    })
    .optional()
    .map_err(sql_error)
}

/// `stream` with its progress from here (when a row of `epoch` holds it).
pub fn overlay(conn: &Connection, mut stream: LogStream, epoch: i64) -> Result<LogStream> {
    if let Some(progress) = read(conn, stream.id, epoch)? {
        progress.apply(&mut stream);
    }
    Ok(stream)
}

/// Stores the stream's progress for `epoch` (replacing any row).
pub fn write(conn: &Connection, id: StreamId, epoch: i64, progress: &Progress) -> Result<()> {
    let (first, last) = progress.pending.map(|(f, l)| (f as i64, l as i64)).unzip();
    conn.prepare_cached(
        "INSERT OR REPLACE INTO stream_progress (stream_id, epoch, cursor, batch_first, batch_last, \
         attempts, last_error, failing_since, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .map_err(sql_error)?
    .execute(params![
        id,
        epoch,
        progress.cursor as i64,
        first,
        last,
        progress.attempts,
        progress.last_error,
        progress.failing_since.map(|t| t.micros()),
        progress.updated_at.micros()
    ])
    .map_err(sql_error)?;
    Ok(())
}

/// Clears the failure record of the stream's current row (resumed).
pub fn clear_failure(conn: &Connection, id: StreamId, epoch: i64) -> Result<()> {
    conn.execute(
        "UPDATE stream_progress SET last_error = NULL, failing_since = NULL \
         WHERE stream_id = ?1 AND epoch = ?2",
        params![id, epoch],
    )
    .map_err(sql_error)?;
    Ok(())
}

/// Adds a batch to the stream's history, keeping the newest [`BATCH_HISTORY`].
pub fn add_batch(conn: &Connection, id: StreamId, epoch: i64, batch: &BatchRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO stream_batches (stream_id, epoch, first_seq, last_seq, events, attempts, status, response, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .map_err(sql_error)?
    .execute(params![
        id,
        epoch,
        batch.first_seq as i64,
        batch.last_seq as i64,
        batch.events as i64,
        batch.attempts,
        batch.status,
        batch.response,
        batch.at.micros()
    ])
    .map_err(sql_error)?;
    conn.prepare_cached(
        "DELETE FROM stream_batches WHERE stream_id = ?1 AND id <= \
         (SELECT id FROM stream_batches WHERE stream_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )
    .map_err(sql_error)?
    .execute(params![id, BATCH_HISTORY as i64])
    .map_err(sql_error)?;
    Ok(())
}

/// The stream's most recent batches recorded here, newest first.
pub fn batches(conn: &Connection, id: StreamId, limit: usize) -> Result<Vec<BatchRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT first_seq, last_seq, events, attempts, status, response, at \
             FROM stream_batches WHERE stream_id = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![id, limit as i64], batch_record)
        .map_err(sql_error)?;
    rows.map(|r| r.map_err(sql_error)).collect()
}

/// A history row (`first_seq, last_seq, events, attempts, status, response, at`).
pub fn batch_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<BatchRecord> {
    Ok(BatchRecord {
        first_seq: r.get::<_, i64>(0)? as u64,
        last_seq: r.get::<_, i64>(1)? as u64,
        events: r.get::<_, i64>(2)? as u64,
        attempts: r.get::<_, i64>(3)? as u32,
        status: r.get(4)?,
        response: r.get(5)?,
        at: Timestamp::from_micros(r.get(6)?),
    })
}

/// Removes the stream's rows here, except those of `keep` (a new stream's
/// epoch: rows left by a deleted stream that had the same id go).
pub fn forget(conn: &Connection, id: StreamId, keep: Option<i64>) -> Result<()> {
    let keep = keep.map_or(
        rusqlite::types::Value::Null,
        rusqlite::types::Value::Integer,
    );
    let tx = conn.unchecked_transaction().map_err(sql_error)?;
    for table in ["stream_progress", "stream_batches"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE stream_id = ?1 AND epoch IS NOT ?2"),
            params![id, keep],
        )
        .map_err(sql_error)?;
    }
    tx.commit().map_err(sql_error)
}
