//! [`LogStreams`] on PostgreSQL. Any server sharing the database may
//! deliver any stream: a claim is one statement whose `SELECT … FOR UPDATE
//! SKIP LOCKED` hands each stream to exactly one worker without making the
//! others wait, and the lease (`claimed_until`) lets another server take
//! over a stream whose server died.

use crate::sql::pg_error;
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::log_key::{bound_key, seq_of};
use auditlog_store::streams::BATCH_HISTORY;
use auditlog_store::{
    AccountId, BatchRecord, Delivery, LogStream, LogStreams, NewStream, Result, StoreError,
    StreamChange, StreamId, StreamStatus,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

const COLUMNS: &str = "id, account_id, kind, format, url, filters, sealed_secret, status, cursor, \
    batch_first, batch_last, attempts, last_error, failing_since, claimed_by, claimed_until, \
    created_at, updated_at, options, sealed_client_key";

fn to_stream(r: &Row) -> Result<LogStream> {
    let id: i64 = r.get(0);
    let status: String = r.get(7);
    let filters: String = r.get(5);
    let first: Option<i64> = r.get(9);
    let last: Option<i64> = r.get(10);
    let options: String = r.get(18);
    Ok(LogStream {
        id,
        account_id: r.get(1),
        kind: r.get(2),
        format: r.get(3),
        url: r.get(4),
        filters: serde_json::from_str(&filters).map_err(|e| {
            StoreError::internal_caused_by(format!("log stream {id} has unreadable filters"), e)
        })?,
        sealed_secret: r.get(6),
        options: serde_json::from_str(&options).map_err(|e| {
            StoreError::internal_caused_by(format!("log stream {id} has unreadable options"), e)
        })?,
        sealed_client_key: r.get(19),
        status: StreamStatus::parse(&status).ok_or_else(|| {
            StoreError::internal(format!("log stream {id} has an unknown status {status:?}"))
        })?,
        cursor: r.get::<_, i64>(8) as u64,
        pending: first.zip(last).map(|(f, l)| (f as u64, l as u64)),
        attempts: r.get::<_, i32>(11) as u32,
        last_error: r.get(12),
        failing_since: r.get::<_, Option<i64>>(13).map(Timestamp::from_micros),
        claimed_by: r.get(14),
        claimed_until: r.get::<_, Option<i64>>(15).map(Timestamp::from_micros),
        created_at: Timestamp::from_micros(r.get(16)),
        updated_at: Timestamp::from_micros(r.get(17)),
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

#[async_trait]
impl LogStreams for PgStore {
    async fn create_stream(&self, stream: NewStream) -> Result<LogStream> {
        let filters = encode_filters(&stream.filters)?;
        let options = encode_options(&stream.options)?;
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO log_streams (account_id, kind, format, url, filters, sealed_secret, \
                     status, cursor, created_at, updated_at, options, sealed_client_key) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $8, $9, $10) RETURNING {COLUMNS}"
                ),
                &[
                    &stream.account_id,
                    &stream.kind,
                    &stream.format,
                    &stream.url,
                    &filters,
                    &stream.sealed_secret,
                    &(stream.cursor as i64),
                    &stream.created_at.micros(),
                    &options,
                    &stream.sealed_client_key,
                ],
            )
            .await
            .map_err(pg_error)?;
        to_stream(&row)
    }

    async fn streams(&self, account: AccountId) -> Result<Vec<LogStream>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM log_streams WHERE account_id = $1 ORDER BY id"),
                &[&account],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(to_stream).collect()
    }

    async fn stream_by_id(&self, account: AccountId, id: StreamId) -> Result<Option<LogStream>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM log_streams WHERE account_id = $1 AND id = $2"),
                &[&account, &id],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_stream).transpose()
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let at = now.micros();
        let locked = tx
            .query_opt(
                "SELECT 1 FROM log_streams WHERE account_id = $1 AND id = $2 FOR UPDATE",
                &[&account, &id],
            )
            .await
            .map_err(pg_error)?;
        if locked.is_none() {
            return Ok(None);
        }
        // The settings a change replaces whole, one column each.
        let settings: [(&str, Option<&(dyn ToSql + Sync)>); 5] = [
            ("url", change.url.as_ref().map(|v| v as _)),
            ("filters", filters.as_ref().map(|v| v as _)),
            (
                "sealed_secret",
                change.sealed_secret.as_ref().map(|v| v as _),
            ),
            ("options", options.as_ref().map(|v| v as _)),
            (
                "sealed_client_key",
                change.sealed_client_key.as_ref().map(|v| v as _),
            ),
        ];
        for (column, value) in settings {
            if let Some(value) = value {
                tx.execute(
                    &format!("UPDATE log_streams SET {column} = $2, updated_at = $3 WHERE id = $1"),
                    &[&id, value, &at],
                )
                .await
                .map_err(pg_error)?;
            }
        }
        if let Some(status) = change.status {
            tx.execute(
                "UPDATE log_streams SET status = $2, updated_at = $3, \
                 failing_since = CASE WHEN $2 = 'active' THEN NULL ELSE failing_since END, \
                 last_error = CASE WHEN $2 = 'active' THEN NULL ELSE last_error END \
                 WHERE id = $1",
                &[&id, &status.as_str(), &at],
            )
            .await
            .map_err(pg_error)?;
        }
        if let Some(cursor) = change.cursor {
            tx.execute(
                "UPDATE log_streams SET cursor = $2, batch_first = NULL, batch_last = NULL, \
                 attempts = 0, updated_at = $3 WHERE id = $1",
                &[&id, &(cursor as i64), &at],
            )
            .await
            .map_err(pg_error)?;
        }
        let row = tx
            .query_one(
                &format!("SELECT {COLUMNS} FROM log_streams WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        to_stream(&row).map(Some)
    }

    async fn delete_stream(&self, account: AccountId, id: StreamId) -> Result<bool> {
        let client = self.client().await?;
        // The history goes with it (ON DELETE CASCADE).
        let n = client
            .execute(
                "DELETE FROM log_streams WHERE account_id = $1 AND id = $2",
                &[&account, &id],
            )
            .await
            .map_err(pg_error)?;
        Ok(n > 0)
    }

    async fn claim_stream(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<LogStream>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE log_streams SET claimed_by = $1, claimed_until = $2 \
                     WHERE id = (SELECT id FROM log_streams \
                       WHERE status IN ('active', 'failing') \
                       AND (claimed_until IS NULL OR claimed_until < $3) \
                       ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     RETURNING {COLUMNS}"
                ),
                &[&worker, &lease_until.micros(), &now.micros()],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_stream).transpose()
    }

    async fn renew_stream(
        &self,
        id: StreamId,
        worker: &str,
        lease_until: Timestamp,
    ) -> Result<Option<LogStream>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE log_streams SET claimed_until = $3 \
                     WHERE id = $1 AND claimed_by = $2 RETURNING {COLUMNS}"
                ),
                &[&id, &worker, &lease_until.micros()],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_stream).transpose()
    }

    async fn release_stream(&self, id: StreamId, worker: &str) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE log_streams SET claimed_by = NULL, claimed_until = NULL \
                 WHERE id = $1 AND claimed_by = $2",
                &[&id, &worker],
            )
            .await
            .map_err(pg_error)?;
        Ok(n > 0)
    }

    async fn begin_batch(&self, id: StreamId, worker: &str, first: u64, last: u64) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE log_streams SET batch_first = $3, batch_last = $4 \
                 WHERE id = $1 AND claimed_by = $2 AND status IN ('active', 'failing')",
                &[&id, &worker, &(first as i64), &(last as i64)],
            )
            .await
            .map_err(pg_error)?;
        Ok(n > 0)
    }

    async fn record_delivery(
        &self,
        id: StreamId,
        worker: &str,
        delivery: Delivery,
        now: Timestamp,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
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
                let row = tx
                    .query_opt(
                        "UPDATE log_streams SET cursor = $3, \
                         batch_first = CASE WHEN status IN ('active', 'failing') THEN $6::BIGINT END, \
                         batch_last = CASE WHEN status IN ('active', 'failing') THEN $7::BIGINT END, \
                         attempts = 0, last_error = NULL, failing_since = NULL, \
                         status = CASE WHEN status = 'failing' THEN 'active' ELSE status END, \
                         updated_at = $4 WHERE id = $1 AND claimed_by = $2 AND cursor = $5 \
                         RETURNING status IN ('active', 'failing')",
                        &[&id, &worker, &(*through as i64), &at, &(*from as i64), &first, &last],
                    )
                    .await
                    .map_err(pg_error)?;
                match row {
                    Some(row) => (1, row.get::<_, bool>(0) || next.is_none()),
                    None => (0, false),
                }
            }
            Delivery::Failed { status, error, .. } => tx
                .execute(
                    "UPDATE log_streams SET attempts = attempts + 1, last_error = $3, \
                     failing_since = COALESCE(failing_since, $4), \
                     status = CASE WHEN status = 'paused' THEN status ELSE $5 END, \
                     updated_at = $4 WHERE id = $1 AND claimed_by = $2",
                    &[&id, &worker, error, &at, &status.as_str()],
                )
                .await
                .map_err(pg_error)
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
            tx.execute(
                "INSERT INTO log_stream_batches (stream_id, first_seq, last_seq, events, attempts, status, response, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &id,
                    &(batch.first_seq as i64),
                    &(batch.last_seq as i64),
                    &(batch.events as i64),
                    &(batch.attempts as i32),
                    &batch.status,
                    &batch.response,
                    &batch.at.micros(),
                ],
            )
            .await
            .map_err(pg_error)?;
            tx.execute(
                "DELETE FROM log_stream_batches WHERE stream_id = $1 AND id <= \
                 (SELECT id FROM log_stream_batches WHERE stream_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                &[&id, &(BATCH_HISTORY as i64)],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(begun)
    }

    async fn first_seq_received_since(
        &self,
        account: AccountId,
        since: Timestamp,
    ) -> Result<Option<u64>> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT MIN(key) FROM event_log WHERE key > $1 AND key <= $2 AND received_at >= $3",
                &[
                    &bound_key(account, 0),
                    &bound_key(account, u64::MAX),
                    &since.micros(),
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.get::<_, Option<i64>>(0).map(seq_of))
    }

    async fn stream_batches(
        &self,
        account: AccountId,
        id: StreamId,
        limit: usize,
    ) -> Result<Vec<BatchRecord>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT b.first_seq, b.last_seq, b.events, b.attempts, b.status, b.response, b.at \
                 FROM log_stream_batches b JOIN log_streams s ON s.id = b.stream_id \
                 WHERE s.account_id = $1 AND b.stream_id = $2 ORDER BY b.id DESC LIMIT $3",
                &[&account, &id, &(limit as i64)],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| BatchRecord {
                first_seq: r.get::<_, i64>(0) as u64,
                last_seq: r.get::<_, i64>(1) as u64,
                events: r.get::<_, i64>(2) as u64,
                attempts: r.get::<_, i32>(3) as u32,
                status: r.get(4),
                response: r.get(5),
                at: Timestamp::from_micros(r.get(6)),
            })
            .collect())
    }
}
