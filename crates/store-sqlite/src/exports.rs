//! [`ExportJobs`] on SQLite. Job rows are written on pooled connections (not
//! through the event writer: they are not events); each change is one
//! statement or one IMMEDIATE transaction, so that claiming is atomic even
//! with several processes on the file.

use crate::sql::{now_micros, sql_error};
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::exports::MAX_EXPORT_ATTEMPTS;
use auditlog_store::{
    AccountId, Compression, ExportFormat, ExportId, ExportJob, ExportJobs, ExportOutcome,
    ExportStatus, NewExportJob, Result, StoreError,
};
use rusqlite::{params, OptionalExtension, Row};

const COLUMNS: &str = "id, account_id, requested_by, format, compression, filters, seq_bound, \
    status, created_at, started_at, completed_at, expires_at, row_count, size_bytes, sha256, \
    file_name, error, attempts, claimed_by, claimed_until";

/// A row as read, before its text columns are checked.
struct RawJob {
    id: i64,
    account_id: i64,
    requested_by: String,
    format: String,
    compression: String,
    filters: String,
    seq_bound: i64,
    status: String,
    created_at: i64,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    expires_at: Option<i64>,
    row_count: Option<i64>,
    size_bytes: Option<i64>,
    sha256: Option<String>,
    file_name: Option<String>,
    error: Option<String>,
    attempts: i64,
    claimed_by: Option<String>,
    claimed_until: Option<i64>,
}

fn raw_job(r: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok(RawJob {
        id: r.get(0)?,
        account_id: r.get(1)?,
        requested_by: r.get(2)?,
        format: r.get(3)?,
        compression: r.get(4)?,
        filters: r.get(5)?,
        seq_bound: r.get(6)?,
        status: r.get(7)?,
        created_at: r.get(8)?,
        started_at: r.get(9)?,
        completed_at: r.get(10)?,
        expires_at: r.get(11)?,
        row_count: r.get(12)?,
        size_bytes: r.get(13)?,
        sha256: r.get(14)?,
        file_name: r.get(15)?,
        error: r.get(16)?,
        attempts: r.get(17)?,
        claimed_by: r.get(18)?,
        claimed_until: r.get(19)?,
    })
}

fn to_job(raw: RawJob) -> Result<ExportJob> {
    let bad = |what: &str, value: &str| {
        StoreError::internal(format!("export {} has an unknown {what} {value:?}", raw.id))
    };
    let ts = |v: Option<i64>| v.map(Timestamp::from_micros);
    Ok(ExportJob {
        id: raw.id,
        account_id: raw.account_id,
        format: ExportFormat::parse(&raw.format).ok_or_else(|| bad("format", &raw.format))?,
        compression: Compression::parse(&raw.compression)
            .ok_or_else(|| bad("compression", &raw.compression))?,
        status: ExportStatus::parse(&raw.status).ok_or_else(|| bad("status", &raw.status))?,
        filters: serde_json::from_str(&raw.filters).map_err(|e| {
            StoreError::internal_caused_by(format!("export {} has unreadable filters", raw.id), e)
        })?,
        requested_by: raw.requested_by,
        seq_bound: raw.seq_bound as u64,
        created_at: Timestamp::from_micros(raw.created_at),
        started_at: ts(raw.started_at),
        completed_at: ts(raw.completed_at),
        expires_at: ts(raw.expires_at),
        row_count: raw.row_count.map(|n| n as u64),
        size_bytes: raw.size_bytes.map(|n| n as u64),
        sha256: raw.sha256,
        file_name: raw.file_name,
        error: raw.error,
        attempts: raw.attempts as u32,
        claimed_by: raw.claimed_by,
        claimed_until: ts(raw.claimed_until),
    })
}

fn collect(rows: impl Iterator<Item = rusqlite::Result<RawJob>>) -> Result<Vec<ExportJob>> {
    rows.map(|r| r.map_err(sql_error).and_then(to_job))
        .collect()
}

#[async_trait]
impl ExportJobs for SqliteStore {
    async fn create_export(&self, job: NewExportJob) -> Result<ExportJob> {
        let filters = serde_json::to_string(&job.filters)
            .map_err(|e| StoreError::internal_caused_by("cannot encode filters", e))?;
        self.with_write_conn(move |conn| {
            let raw = conn
                .query_row(
                    &format!(
                        "INSERT INTO export_jobs (account_id, requested_by, format, compression, \
                         filters, seq_bound, status, created_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7) RETURNING {COLUMNS}"
                    ),
                    params![
                        job.account_id,
                        job.requested_by,
                        job.format.as_str(),
                        job.compression.as_str(),
                        filters,
                        job.seq_bound as i64,
                        job.created_at.micros()
                    ],
                    raw_job,
                )
                .map_err(sql_error)?;
            to_job(raw)
        })
        .await
    }

    async fn export_by_id(&self, account: AccountId, id: ExportId) -> Result<Option<ExportJob>> {
        self.with_conn(move |conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM export_jobs WHERE account_id = ?1 AND id = ?2"),
                params![account, id],
                raw_job,
            )
            .optional()
            .map_err(sql_error)?
            .map(to_job)
            .transpose()
        })
        .await
    }

    async fn exports(&self, account: AccountId) -> Result<Vec<ExportJob>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM export_jobs WHERE account_id = ?1 \
                     ORDER BY created_at DESC, id DESC"
                ))
                .map_err(sql_error)?;
            let rows = stmt.query_map([account], raw_job).map_err(sql_error)?;
            collect(rows)
        })
        .await
    }

    async fn claim_export(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<ExportJob>> {
        let worker = worker.to_string();
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            // Jobs that took their server down too often are given up, with a reason.
            tx.execute(
                "UPDATE export_jobs SET status = 'failed', claimed_by = NULL, claimed_until = NULL, \
                 completed_at = ?1, error = ?2 \
                 WHERE status = 'running' AND claimed_until < ?1 AND attempts >= ?3",
                params![
                    now.micros(),
                    format!(
                        "the export was interrupted {MAX_EXPORT_ATTEMPTS} times (its server stopped \
                         while writing it) and is no longer retried; check the server's log and \
                         free space in the export directory, then create the export again"
                    ),
                    MAX_EXPORT_ATTEMPTS
                ],
            )
            .map_err(sql_error)?;
            let claimed = tx
                .query_row(
                    &format!(
                        "UPDATE export_jobs SET status = 'running', claimed_by = ?1, \
                         claimed_until = ?2, started_at = ?3, attempts = attempts + 1 \
                         WHERE id = (SELECT id FROM export_jobs \
                           WHERE status = 'queued' OR (status = 'running' AND claimed_until < ?3) \
                           ORDER BY id LIMIT 1) \
                         RETURNING {COLUMNS}"
                    ),
                    params![worker, lease_until.micros(), now.micros()],
                    raw_job,
                )
                .optional()
                .map_err(sql_error)?;
            tx.commit().map_err(sql_error)?;
            claimed.map(to_job).transpose()
        })
        .await
    }

    async fn renew_export_lease(
        &self,
        id: ExportId,
        worker: &str,
        lease_until: Timestamp,
    ) -> Result<bool> {
        let worker = worker.to_string();
        self.with_write_conn(move |conn| {
            let n = conn
                .execute(
                    "UPDATE export_jobs SET claimed_until = ?3 \
                     WHERE id = ?1 AND status = 'running' AND claimed_by = ?2",
                    params![id, worker, lease_until.micros()],
                )
                .map_err(sql_error)?;
            Ok(n == 1)
        })
        .await
    }

    async fn complete_export(
        &self,
        id: ExportId,
        worker: &str,
        outcome: ExportOutcome,
    ) -> Result<bool> {
        let worker = worker.to_string();
        self.with_write_conn(move |conn| {
            let n = conn
                .execute(
                    "UPDATE export_jobs SET status = 'completed', claimed_by = NULL, \
                     claimed_until = NULL, error = NULL, row_count = ?3, size_bytes = ?4, \
                     sha256 = ?5, file_name = ?6, completed_at = ?7, expires_at = ?8 \
                     WHERE id = ?1 AND status = 'running' AND claimed_by = ?2",
                    params![
                        id,
                        worker,
                        outcome.row_count as i64,
                        outcome.size_bytes as i64,
                        outcome.sha256,
                        outcome.file_name,
                        outcome.completed_at.micros(),
                        outcome.expires_at.micros()
                    ],
                )
                .map_err(sql_error)?;
            Ok(n == 1)
        })
        .await
    }

    async fn fail_export(&self, id: ExportId, worker: &str, error: &str) -> Result<bool> {
        let (worker, error) = (worker.to_string(), error.to_string());
        self.with_write_conn(move |conn| {
            let n = conn
                .execute(
                    "UPDATE export_jobs SET status = 'failed', claimed_by = NULL, \
                     claimed_until = NULL, error = ?3, completed_at = ?4 \
                     WHERE id = ?1 AND status = 'running' AND claimed_by = ?2",
                    params![id, worker, error, now_micros()],
                )
                .map_err(sql_error)?;
            Ok(n == 1)
        })
        .await
    }

    async fn release_export(&self, id: ExportId, worker: &str) -> Result<bool> {
        let worker = worker.to_string();
        self.with_write_conn(move |conn| {
            let n = conn
                .execute(
                    "UPDATE export_jobs SET status = 'queued', claimed_by = NULL, \
                     claimed_until = NULL, started_at = NULL, attempts = MAX(attempts - 1, 0) \
                     WHERE id = ?1 AND status = 'running' AND claimed_by = ?2",
                    params![id, worker],
                )
                .map_err(sql_error)?;
            Ok(n == 1)
        })
        .await
    }

    async fn expire_exports(&self, now: Timestamp) -> Result<Vec<ExportJob>> {
        self.with_write_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "UPDATE export_jobs SET status = 'expired' \
                     WHERE status = 'completed' AND expires_at <= ?1 RETURNING {COLUMNS}"
                ))
                .map_err(sql_error)?;
            let rows = stmt.query_map([now.micros()], raw_job).map_err(sql_error)?;
            collect(rows)
        })
        .await
    }

    async fn count_exports_by_status(&self) -> Result<Vec<(ExportStatus, u64)>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT status, count(*) FROM export_jobs GROUP BY status")
                .map_err(sql_error)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(sql_error)?;
            rows.map(|row| {
                let (status, count) = row.map_err(sql_error)?;
                let status = ExportStatus::parse(&status).ok_or_else(|| {
                    StoreError::internal(format!("export job with unknown status {status:?}"))
                })?;
                Ok((status, count as u64))
            })
            .collect()
        })
        .await
    }
}

impl SqliteStore {
    /// Marks the account's completed exports whose bound reaches
    /// `first_seq` as expired and returns them (an erasure: their files may
    /// hold erased values; the caller deletes them).
    pub(crate) async fn expire_exports_reaching(
        &self,
        account: AccountId,
        first_seq: u64,
    ) -> Result<Vec<ExportJob>> {
        self.with_write_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "UPDATE export_jobs SET status = 'expired' \
                     WHERE account_id = ?1 AND status = 'completed' AND seq_bound >= ?2 \
                     RETURNING {COLUMNS}"
                ))
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![account, first_seq as i64], raw_job)
                .map_err(sql_error)?;
            collect(rows)
        })
        .await
    }
}
