//! [`LogStreams`] on SQLite: rows written on pooled connections (they are
//! not events), each change one statement or one IMMEDIATE transaction, so
//! that a claim is atomic even with several processes on the file.

use crate::event_log;
use crate::sql::sql_error;
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::streams::BATCH_HISTORY;
use auditlog_store::{
    AccountId, BatchRecord, Delivery, LogStream, LogStreams, NewStream, Result, StoreError,
    StreamChange, StreamId, StreamStatus,
};
use rusqlite::{params, OptionalExtension, Row, Transaction};

const COLUMNS: &str = "id, account_id, kind, format, url, filters, sealed_secret, status, cursor, \
    batch_first, batch_last, attempts, last_error, failing_since, claimed_by, claimed_until, \
    created_at, updated_at, options, sealed_client_key";

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
    })
}

fn to_stream(raw: RawStream) -> Result<LogStream> {
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
    Ok(LogStream {
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
    })
}

fn encode_filters(filters: &serde_json::Value) -> Result<String> {
    serde_json::to_string(filters)
        .map_err(|e| StoreError::internal_caused_by("cannot encode a stream's filters", e))
}

fn encode_options(options: &serde_json::Value) -> Result<String> {
    serde_json::to_string(options)
        .map_err(|e| StoreError::internal_caused_by("cannot encode a stream's options", e))
}

fn one(tx: &Transaction<'_>, id: StreamId) -> Result<Option<LogStream>> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM log_streams WHERE id = ?1"),
        [id],
        raw_stream,
    )
    .optional()
    .map_err(sql_error)?
    .map(to_stream)
    .transpose()
}

fn add_batch(tx: &Transaction<'_>, id: StreamId, batch: &BatchRecord) -> Result<()> {
    tx.execute(
        "INSERT INTO log_stream_batches (stream_id, first_seq, last_seq, events, attempts, status, response, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id,
            batch.first_seq as i64,
            batch.last_seq as i64,
            batch.events as i64,
            batch.attempts,
            batch.status,
            batch.response,
            batch.at.micros()
        ],
    )
    .map_err(sql_error)?;
    tx.execute(
        "DELETE FROM log_stream_batches WHERE stream_id = ?1 AND id <= \
         (SELECT id FROM log_stream_batches WHERE stream_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        params![id, BATCH_HISTORY as i64],
    )
    .map_err(sql_error)?;
    Ok(())
}

#[async_trait]
impl LogStreams for SqliteStore {
    async fn create_stream(&self, stream: NewStream) -> Result<LogStream> {
        let filters = encode_filters(&stream.filters)?;
        let options = encode_options(&stream.options)?;
        self.with_write_conn(move |conn| {
            let raw = conn
                .query_row(
                    &format!(
                        "INSERT INTO log_streams (account_id, kind, format, url, filters, sealed_secret, \
                         status, cursor, created_at, updated_at, options, sealed_client_key) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?8, ?8, ?9, ?10) RETURNING {COLUMNS}"
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
        .await
    }

    async fn streams(&self, account: AccountId) -> Result<Vec<LogStream>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM log_streams WHERE account_id = ?1 ORDER BY id"
                ))
                .map_err(sql_error)?;
            let rows = stmt.query_map([account], raw_stream).map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error).and_then(to_stream))
                .collect()
        })
        .await
    }

    async fn stream_by_id(&self, account: AccountId, id: StreamId) -> Result<Option<LogStream>> {
        self.with_conn(move |conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM log_streams WHERE account_id = ?1 AND id = ?2"),
                params![account, id],
                raw_stream,
            )
            .optional()
            .map_err(sql_error)?
            .map(to_stream)
            .transpose()
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
        self.with_write_conn(move |conn| {
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
            if let Some(url) = &change.url {
                tx.execute(
                    "UPDATE log_streams SET url = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, url, at],
                )
                .map_err(sql_error)?;
            }
            if let Some(filters) = &filters {
                tx.execute(
                    "UPDATE log_streams SET filters = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, filters, at],
                )
                .map_err(sql_error)?;
            }
            if let Some(secret) = &change.sealed_secret {
                tx.execute(
                    "UPDATE log_streams SET sealed_secret = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, secret, at],
                )
                .map_err(sql_error)?;
            }
            if let Some(options) = &options {
                tx.execute(
                    "UPDATE log_streams SET options = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, options, at],
                )
                .map_err(sql_error)?;
            }
            if let Some(key) = &change.sealed_client_key {
                tx.execute(
                    "UPDATE log_streams SET sealed_client_key = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, key, at],
                )
                .map_err(sql_error)?;
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
                tx.execute(
                    "UPDATE log_streams SET cursor = ?2, batch_first = NULL, batch_last = NULL, \
                     attempts = 0, updated_at = ?3 WHERE id = ?1",
                    params![id, cursor as i64, at],
                )
                .map_err(sql_error)?;
            }
            let stream = one(&tx, id)?;
            tx.commit().map_err(sql_error)?;
            Ok(stream)
        })
        .await
    }

    async fn delete_stream(&self, account: AccountId, id: StreamId) -> Result<bool> {
        self.with_write_conn(move |conn| {
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
        .await
    }

    async fn claim_stream(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<LogStream>> {
        let worker = worker.to_string();
        self.with_write_conn(move |conn| {
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
        .await
    }

    async fn renew_stream(
        &self,
        id: StreamId,
        worker: &str,
        lease_until: Timestamp,
    ) -> Result<Option<LogStream>> {
        let worker = worker.to_string();
        self.with_write_conn(move |conn| {
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
        .await
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
        self.with_write_conn(move |conn| {
            let n = conn
                .execute(
                    "UPDATE log_streams SET batch_first = ?3, batch_last = ?4 \
                     WHERE id = ?1 AND claimed_by = ?2 AND status IN ('active', 'failing')",
                    params![id, worker, first as i64, last as i64],
                )
                .map_err(sql_error)?;
            Ok(n > 0)
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
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let at = now.micros();
            // Rows changed, and whether the next batch (if any) began.
            let (n, begun) = match &delivery {
                Delivery::Accepted {
                    from,
                    through,
                    next,
                    ..
                } => {
                    let (first, last) = next.map(|(f, l)| (f as i64, l as i64)).unzip();
                    let begun: Option<bool> = tx
                        .query_row(
                            "UPDATE log_streams SET cursor = ?3, \
                             batch_first = CASE WHEN status IN ('active', 'failing') THEN ?6 END, \
                             batch_last = CASE WHEN status IN ('active', 'failing') THEN ?7 END, \
                             attempts = 0, last_error = NULL, failing_since = NULL, \
                             status = CASE WHEN status = 'failing' THEN 'active' ELSE status END, \
                             updated_at = ?4 WHERE id = ?1 AND claimed_by = ?2 AND cursor = ?5 \
                             RETURNING status IN ('active', 'failing')",
                            params![id, worker, *through as i64, at, *from as i64, first, last],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(sql_error)?;
                    match begun {
                        Some(delivers) => (1, delivers || next.is_none()),
                        None => (0, false),
                    }
                }
                Delivery::Failed { status, error, .. } => tx
                    .execute(
                        "UPDATE log_streams SET attempts = attempts + 1, last_error = ?3, \
                         failing_since = COALESCE(failing_since, ?4), \
                         status = CASE WHEN status = 'paused' THEN status ELSE ?5 END, \
                         updated_at = ?4 WHERE id = ?1 AND claimed_by = ?2",
                        params![id, worker, error, at, status.as_str()],
                    )
                    .map_err(sql_error)
                    .map(|n| (n, true))?,
            };
            if n == 0 {
                return Ok(false);
            }
            let batch = match &delivery {
                Delivery::Accepted { batch, .. } => batch.as_ref(),
                Delivery::Failed { batch, .. } => Some(batch),
            };
            if let Some(batch) = batch {
                add_batch(&tx, id, batch)?;
            }
            tx.commit().map_err(sql_error)?;
            Ok(begun)
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
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT b.first_seq, b.last_seq, b.events, b.attempts, b.status, b.response, b.at \
                     FROM log_stream_batches b JOIN log_streams s ON s.id = b.stream_id \
                     WHERE s.account_id = ?1 AND b.stream_id = ?2 ORDER BY b.id DESC LIMIT ?3",
                )
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![account, id, limit as i64], |r| {
                    Ok(BatchRecord {
                        first_seq: r.get::<_, i64>(0)? as u64,
                        last_seq: r.get::<_, i64>(1)? as u64,
                        events: r.get::<_, i64>(2)? as u64,
                        attempts: r.get::<_, i64>(3)? as u32,
                        status: r.get(4)?,
                        response: r.get(5)?,
                        at: Timestamp::from_micros(r.get(6)?),
                    })
                })
                .map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error)).collect()
        })
        .await
    }
}
