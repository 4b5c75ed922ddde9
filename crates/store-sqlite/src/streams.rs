//! [`LogStreams`] on SQLite: rows written on pooled connections (they are
//! not events), each change one statement or one IMMEDIATE transaction, so
//! that a claim is atomic even with several processes on the file.
//!
//! A stream's delivery progress (cursor, batch in flight, failure record,
//! batch history) is written to the side database `stream-progress.db`
//! (`stream_progress`), not here, so that recording a batch never waits for
//! ingest's write lock; every read of a stream lays that progress over its
//! row (`stream_progress::overlay`) when it carries the row's
//! `progress_epoch`.

use crate::event_log;
use crate::sql::sql_error;
use crate::stream_progress::{self, Progress};
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::streams::BATCH_HISTORY;
use auditlog_store::{
    AccountId, BatchRecord, Delivery, LogStream, LogStreams, NewStream, Result, StoreError,
    StreamChange, StreamId, StreamStatus,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

const COLUMNS: &str = "id, account_id, kind, format, url, filters, sealed_secret, status, cursor, \
    batch_first, batch_last, attempts, last_error, failing_since, claimed_by, claimed_until, \
    created_at, updated_at, options, sealed_client_key, progress_epoch";

/// A row as read, before its text columns are checked.
struct RawStream {
    id: i64,
    account_id: i64,
    kind: String,
    format: String,
    url: String,
    filters: String,
    sealed_secret: Vec<u8>,
    status: String,
    cursor: i64,
    batch_first: Option<i64>,
    batch_last: Option<i64>,
    attempts: i64,
    last_error: Option<String>,
    failing_since: Option<i64>,
    claimed_by: Option<String>,
    claimed_until: Option<i64>,
    created_at: i64,
    updated_at: i64,
    options: String,
    sealed_client_key: Option<Vec<u8>>,
    progress_epoch: i64,
}

fn raw_stream(r: &Row<'_>) -> rusqlite::Result<RawStream> {
    Ok(RawStream {
        id: r.get(0)?,
        account_id: r.get(1)?,
        kind: r.get(2)?,
        format: r.get(3)?,
        url: r.get(4)?,
        filters: r.get(5)?,
        sealed_secret: r.get(6)?,
        status: r.get(7)?,
        cursor: r.get(8)?,
        batch_first: r.get(9)?,
        batch_last: r.get(10)?,
        attempts: r.get(11)?,
        last_error: r.get(12)?,
        failing_since: r.get(13)?,
        claimed_by: r.get(14)?,
        claimed_until: r.get(15)?,
        created_at: r.get(16)?,
        updated_at: r.get(17)?,
        options: r.get(18)?,
        sealed_client_key: r.get(19)?,
        progress_epoch: r.get(20)?,
    })
}

/// The stream as `log_streams` holds it, and its progress epoch.
fn to_stream(raw: RawStream) -> Result<(LogStream, i64)> {
    let status = StreamStatus::parse(&raw.status).ok_or_else(|| {
        StoreError::internal(format!(
            "log stream {} has an unknown status {:?}",
            raw.id, raw.status
        ))
    })?;
    let filters = serde_json::from_str(&raw.filters).map_err(|e| {
        StoreError::internal_caused_by(format!("log stream {} has unreadable filters", raw.id), e)
    })?;
    let options = serde_json::from_str(&raw.options).map_err(|e| {
        StoreError::internal_caused_by(format!("log stream {} has unreadable options", raw.id), e)
    })?;
    let stream = LogStream {
        id: raw.id,
        account_id: raw.account_id,
        kind: raw.kind,
        format: raw.format,
        url: raw.url,
        filters,
        sealed_secret: raw.sealed_secret,
        options,
        sealed_client_key: raw.sealed_client_key,
        status,
        cursor: raw.cursor as u64,
        pending: raw
            .batch_first
            .zip(raw.batch_last)
            .map(|(f, l)| (f as u64, l as u64)),
        attempts: raw.attempts as u32,
        last_error: raw.last_error,
        failing_since: raw.failing_since.map(Timestamp::from_micros),
        claimed_by: raw.claimed_by,
        claimed_until: raw.claimed_until.map(Timestamp::from_micros),
        created_at: Timestamp::from_micros(raw.created_at),
        updated_at: Timestamp::from_micros(raw.updated_at),
    };
    Ok((stream, raw.progress_epoch))
}

fn encode_filters(filters: &serde_json::Value) -> Result<String> {
    serde_json::to_string(filters)
        .map_err(|e| StoreError::internal_caused_by("cannot encode a stream's filters", e))
}

fn encode_options(options: &serde_json::Value) -> Result<String> {
    serde_json::to_string(options)
        .map_err(|e| StoreError::internal_caused_by("cannot encode a stream's options", e))
}

/// The stream with `id` as `log_streams` holds it, and its progress epoch.
fn by_id(conn: &Connection, id: StreamId) -> Result<Option<(LogStream, i64)>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM log_streams WHERE id = ?1"))
        .map_err(sql_error)?
        .query_row([id], raw_stream)
        .optional()
        .map_err(sql_error)?
        .map(to_stream)
        .transpose()
}

#[async_trait]
impl LogStreams for SqliteStore {
    async fn create_stream(&self, stream: NewStream) -> Result<LogStream> {
        let filters = encode_filters(&stream.filters)?;
        let options = encode_options(&stream.options)?;
        let raw = self
            .with_write_conn(move |conn| {
            let raw = conn
                .query_row(
                    &format!(
                        "INSERT INTO log_streams (account_id, kind, format, url, filters, sealed_secret, \
                         status, cursor, created_at, updated_at, options, sealed_client_key, progress_epoch) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?8, ?8, ?9, ?10, random()) RETURNING {COLUMNS}"
                    ),
                    params![
                        stream.account_id,
                        stream.kind,
                        stream.format,
                        stream.url,
                        filters,
                        stream.sealed_secret,
                        stream.cursor as i64,
                        stream.created_at.micros(),
                        options,
                        stream.sealed_client_key
                    ],
                    raw_stream,
                )
                .map_err(sql_error)?;
            to_stream(raw)
        })
        .await?;
        // SQLite gives a deleted stream's id again: whatever progress that
        // stream left in the side database goes (its epoch was another).
        let (stream, epoch) = raw;
        let id = stream.id;
        self.on_progress(move |side| stream_progress::forget(side, id, Some(epoch)))
            .await?;
        Ok(stream)
    }

    async fn streams(&self, account: AccountId) -> Result<Vec<LogStream>> {
        let progress = self.progress.clone();
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM log_streams WHERE account_id = ?1 ORDER BY id"
                ))
                .map_err(sql_error)?;
            let rows = stmt.query_map([account], raw_stream).map_err(sql_error)?;
            let streams = rows
                .map(|r| r.map_err(sql_error).and_then(to_stream))
                .collect::<Result<Vec<_>>>()?;
            let side = progress.lock()?;
            streams
                .into_iter()
                .map(|(stream, epoch)| stream_progress::overlay(&side, stream, epoch))
                .collect()
        })
        .await
    }

    async fn stream_by_id(&self, account: AccountId, id: StreamId) -> Result<Option<LogStream>> {
        let progress = self.progress.clone();
        self.with_conn(move |conn| {
            let found = conn
                .query_row(
                    &format!("SELECT {COLUMNS} FROM log_streams WHERE account_id = ?1 AND id = ?2"),
                    params![account, id],
                    raw_stream,
                )
                .optional()
                .map_err(sql_error)?
                .map(to_stream)
                .transpose()?;
            let Some((stream, epoch)) = found else {
                return Ok(None);
            };
            let side = progress.lock()?;
            stream_progress::overlay(&side, stream, epoch).map(Some)
        })
        .await
    }

    async fn change_stream(
        &self,
        account: AccountId,
        id: StreamId,
        change: StreamChange,
        now: Timestamp,
    ) -> Result<Option<LogStream>> {
        let filters = change.filters.as_ref().map(encode_filters).transpose()?;
        let options = change.options.as_ref().map(encode_options).transpose()?;
        let resumed = change.status == Some(StreamStatus::Active);
        let changed = self
            .with_write_conn(move |conn| {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sql_error)?;
                let exists: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM log_streams WHERE account_id = ?1 AND id = ?2)",
                        params![account, id],
                        |r| r.get(0),
                    )
                    .map_err(sql_error)?;
                if !exists {
                    return Ok(None);
                }
                let at = now.micros();
                // The settings a change replaces whole, one column each.
                let settings: [(&str, Option<&dyn rusqlite::ToSql>); 5] = [
                    ("url", change.url.as_ref().map(|v| v as _)),
                    ("filters", filters.as_ref().map(|v| v as _)),
                    ("sealed_secret", change.sealed_secret.as_ref().map(|v| v as _)),
                    ("options", options.as_ref().map(|v| v as _)),
                    ("sealed_client_key", change.sealed_client_key.as_ref().map(|v| v as _)),
                ];
                for (column, value) in settings {
                    if let Some(value) = value {
                        tx.execute(
                            &format!("UPDATE log_streams SET {column} = ?2, updated_at = ?3 WHERE id = ?1"),
                            params![id, value, at],
                        )
                        .map_err(sql_error)?;
                    }
                }
                if let Some(status) = change.status {
                    tx.execute(
                        "UPDATE log_streams SET status = ?2, updated_at = ?3, \
                         failing_since = CASE WHEN ?2 = 'active' THEN NULL ELSE failing_since END, \
                         last_error = CASE WHEN ?2 = 'active' THEN NULL ELSE last_error END \
                         WHERE id = ?1",
                        params![id, status.as_str(), at],
                    )
                    .map_err(sql_error)?;
                }
                if let Some(cursor) = change.cursor {
                    // A new epoch: the progress in the side database, all
                    // recorded before this replay, no longer counts.
                    tx.execute(
                        "UPDATE log_streams SET cursor = ?2, batch_first = NULL, batch_last = NULL, \
                         attempts = 0, updated_at = ?3, progress_epoch = random() WHERE id = ?1",
                        params![id, cursor as i64, at],
                    )
                    .map_err(sql_error)?;
                }
                let stream = by_id(&tx, id)?;
                tx.commit().map_err(sql_error)?;
                Ok(stream)
            })
            .await?;
        let Some((stream, epoch)) = changed else {
            return Ok(None);
        };
        self.on_progress(move |side| {
            if resumed {
                stream_progress::clear_failure(side, id, epoch)?;
            }
            stream_progress::overlay(side, stream, epoch).map(Some)
        })
        .await
    }

    async fn delete_stream(&self, account: AccountId, id: StreamId) -> Result<bool> {
        let deleted = self
            .with_write_conn(move |conn| {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sql_error)?;
                tx.execute(
                    "DELETE FROM log_stream_batches WHERE stream_id = \
                     (SELECT id FROM log_streams WHERE account_id = ?1 AND id = ?2)",
                    params![account, id],
                )
                .map_err(sql_error)?;
                let n = tx
                    .execute(
                        "DELETE FROM log_streams WHERE account_id = ?1 AND id = ?2",
                        params![account, id],
                    )
                    .map_err(sql_error)?;
                tx.commit().map_err(sql_error)?;
                Ok(n > 0)
            })
            .await?;
        if deleted {
            self.on_progress(move |side| stream_progress::forget(side, id, None))
                .await?;
        }
        Ok(deleted)
    }

    async fn claim_stream(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<LogStream>> {
        let worker = worker.to_string();
        let claimed = self
            .with_write_conn(move |conn| {
                conn.query_row(
                    &format!(
                        "UPDATE log_streams SET claimed_by = ?1, claimed_until = ?2 \
                         WHERE id = (SELECT id FROM log_streams \
                           WHERE status IN ('active', 'failing') \
                           AND (claimed_until IS NULL OR claimed_until < ?3) \
                           ORDER BY id LIMIT 1) \
                         RETURNING {COLUMNS}"
                    ),
                    params![worker, lease_until.micros(), now.micros()],
                    raw_stream,
                )
                .optional()
                .map_err(sql_error)?
                .map(to_stream)
                .transpose()
            })
            .await?;
        self.with_progress(claimed).await
    }

    async fn renew_stream(
        &self,
        id: StreamId,
        worker: &str,
        lease_until: Timestamp,
    ) -> Result<Option<LogStream>> {
        let worker = worker.to_string();
        let renewed = self
            .with_write_conn(move |conn| {
                conn.query_row(
                    &format!(
                        "UPDATE log_streams SET claimed_until = ?3 \
                         WHERE id = ?1 AND claimed_by = ?2 RETURNING {COLUMNS}"
                    ),
                    params![id, worker, lease_until.micros()],
                    raw_stream,
                )
                .optional()
                .map_err(sql_error)?
                .map(to_stream)
                .transpose()
            })
            .await?;
        self.with_progress(renewed).await
    }

    async fn release_stream(&self, id: StreamId, worker: &str) -> Result<bool> {
        let worker = worker.to_string();
        self.with_write_conn(move |conn| {
            let n = conn
                .execute(
                    "UPDATE log_streams SET claimed_by = NULL, claimed_until = NULL \
                     WHERE id = ?1 AND claimed_by = ?2",
                    params![id, worker],
                )
                .map_err(sql_error)?;
            Ok(n > 0)
        })
        .await
    }

    async fn begin_batch(&self, id: StreamId, worker: &str, first: u64, last: u64) -> Result<bool> {
        let worker = worker.to_string();
        let progress = self.progress.clone();
        // No write to auditlog.db: a read of the stream's row, and one
        // commit of the side database (see `stream_progress`).
        self.with_conn(move |conn| {
            let side = progress.lock()?;
            let Some((stream, epoch)) = by_id(conn, id)? else {
                return Ok(false);
            };
            if stream.claimed_by.as_deref() != Some(worker.as_str()) || !stream.status.delivers() {
                return Ok(false);
            }
            let mut now =
                stream_progress::read(&side, id, epoch)?.unwrap_or_else(|| Progress::of(&stream));
            now.pending = Some((first, last));
            stream_progress::write(&side, id, epoch, &now)?;
            Ok(true)
        })
        .await
    }

    async fn record_delivery(
        &self,
        id: StreamId,
        worker: &str,
        delivery: Delivery,
        now: Timestamp,
    ) -> Result<bool> {
        let worker = worker.to_string();
        let progress = self.progress.clone();
        let gate = self.gate.clone();
        // The progress is one commit of the side database; auditlog.db is
        // only read, and written (at the write gate) when the status
        // changes: failing → active on an acceptance, or what a failure
        // makes it (failing, disabled).
        self.with_conn(move |conn| {
            let mut side = progress.lock()?;
            let Some((stream, epoch)) = by_id(conn, id)? else {
                return Ok(false);
            };
            if stream.claimed_by.as_deref() != Some(worker.as_str()) {
                return Ok(false);
            }
            let tx = side
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let mut kept =
                stream_progress::read(&tx, id, epoch)?.unwrap_or_else(|| Progress::of(&stream));
            let (batch, result, status) = match delivery {
                Delivery::Accepted {
                    from,
                    through,
                    batch,
                    next,
                } => {
                    if kept.cursor != from {
                        return Ok(false);
                    }
                    let delivers = stream.status.delivers();
                    kept = Progress {
                        cursor: through,
                        pending: if delivers { next } else { None },
                        attempts: 0,
                        last_error: None,
                        failing_since: None,
                        updated_at: now,
                    };
                    let status =
                        (stream.status == StreamStatus::Failing).then_some(StreamStatus::Active);
                    (batch, delivers || next.is_none(), status)
                }
                Delivery::Failed {
                    batch,
                    status,
                    error,
                } => {
                    kept.attempts = kept.attempts.saturating_add(1);
                    kept.last_error = Some(error);
                    kept.failing_since = kept.failing_since.or(Some(now));
                    kept.updated_at = now;
                    let status = (stream.status != StreamStatus::Paused && stream.status != status)
                        .then_some(status);
                    (Some(batch), true, status)
                }
            };
            stream_progress::write(&tx, id, epoch, &kept)?;
            if let Some(batch) = &batch {
                stream_progress::add_batch(&tx, id, epoch, batch)?;
            }
            tx.commit().map_err(sql_error)?;
            drop(side);
            if let Some(status) = status {
                crate::write_gate::write_in_turn(&gate, conn, |conn| {
                    conn.execute(
                        "UPDATE log_streams SET status = ?3, updated_at = ?4 \
                         WHERE id = ?1 AND claimed_by = ?2 AND status NOT IN ('paused', ?3)",
                        params![id, worker, status.as_str(), now.micros()],
                    )
                    .map_err(sql_error)
                })?;
            }
            Ok(result)
        })
        .await
    }

    async fn first_seq_received_since(
        &self,
        account: AccountId,
        since: Timestamp,
    ) -> Result<Option<u64>> {
        self.with_conn(move |conn| {
            // The account's rows in seq order, up to the first received then.
            let (first, last) = event_log::account_keys(account);
            let key: Option<i64> = conn
                .query_row(
                    "SELECT MIN(key) FROM event_log WHERE key BETWEEN ?1 AND ?2 AND received_at >= ?3",
                    params![first, last, since.micros()],
                    |r| r.get(0),
                )
                .map_err(sql_error)?;
            Ok(key.map(event_log::seq_of))
        })
        .await
    }

    async fn stream_batches(
        &self,
        account: AccountId,
        id: StreamId,
        limit: usize,
    ) -> Result<Vec<BatchRecord>> {
        let progress = self.progress.clone();
        self.with_conn(move |conn| {
            let exists: bool = conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM log_streams WHERE account_id = ?1 AND id = ?2)",
                    params![account, id],
                    |r| r.get(0),
                )
                .map_err(sql_error)?;
            if !exists {
                return Ok(Vec::new());
            }
            let limit = limit.min(BATCH_HISTORY);
            let side = progress.lock()?;
            let mut batches = stream_progress::batches(&side, id, limit)?;
            drop(side);
            // Then the history recorded in auditlog.db before migration 0022.
            if batches.len() < limit {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT first_seq, last_seq, events, attempts, status, response, at \
                         FROM log_stream_batches WHERE stream_id = ?1 ORDER BY id DESC LIMIT ?2",
                    )
                    .map_err(sql_error)?;
                let rows = stmt
                    .query_map(
                        params![id, (limit - batches.len()) as i64],
                        stream_progress::batch_record,
                    )
                    .map_err(sql_error)?;
                for row in rows {
                    batches.push(row.map_err(sql_error)?);
                }
            }
            Ok(batches)
        })
        .await
    }
}

impl SqliteStore {
    /// A stream read from `log_streams` with its progress laid over it.
    async fn with_progress(&self, found: Option<(LogStream, i64)>) -> Result<Option<LogStream>> {
        let Some((stream, epoch)) = found else {
            return Ok(None);
        };
        self.on_progress(move |side| stream_progress::overlay(side, stream, epoch).map(Some))
            .await
    }

    /// Runs `f` on the side database's connection, holding its lock, on a
    /// blocking thread.
    async fn on_progress<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let progress = self.progress.clone();
        tokio::task::spawn_blocking(move || {
            let side = progress.lock()?;
            f(&side)
        })
        .await
        .map_err(|e| StoreError::internal_caused_by("a storage task failed", e))?
    }
}
