//! [`ExportJobs`] on PostgreSQL. Any server sharing the database runs any
//! job: claiming is one transaction whose `SELECT … FOR UPDATE SKIP LOCKED`
//! hands each job to exactly one worker without making the others wait, and
//! a lease (`claimed_until`) lets another server take over a job whose
//! worker died. The files themselves live in the export directory, which all
//! servers must share.

use crate::sql::{now_micros, pg_error};
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::exports::MAX_EXPORT_ATTEMPTS;
use auditlog_store::{
    AccountId, Compression, ExportFormat, ExportId, ExportJob, ExportJobs, ExportOutcome,
    ExportStatus, NewExportJob, Result, StoreError,
};
use tokio_postgres::Row;

pub(crate) const COLUMNS: &str =
    "id, account_id, requested_by, format, compression, filters, seq_bound, \
    status, created_at, started_at, completed_at, expires_at, row_count, size_bytes, sha256, \
    file_name, error, attempts, claimed_by, claimed_until";

pub(crate) fn to_job(r: &Row) -> Result<ExportJob> {
    let id: i64 = r.get(0);
    let bad = |what: &str, value: &str| {
        StoreError::internal(format!("export {id} has an unknown {what} {value:?}"))
    };
    let ts = |v: Option<i64>| v.map(Timestamp::from_micros);
    let (format, compression, filters, status): (String, String, String, String) =
        (r.get(3), r.get(4), r.get(5), r.get(7));
    Ok(ExportJob {
        id,
        account_id: r.get(1),
        requested_by: r.get(2),
        format: ExportFormat::parse(&format).ok_or_else(|| bad("format", &format))?,
        compression: Compression::parse(&compression)
            .ok_or_else(|| bad("compression", &compression))?,
        filters: serde_json::from_str(&filters).map_err(|e| {
            StoreError::internal_caused_by(format!("export {id} has unreadable filters"), e)
        })?,
        seq_bound: r.get::<_, i64>(6) as u64,
        status: ExportStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
        created_at: Timestamp::from_micros(r.get(8)),
        started_at: ts(r.get(9)),
        completed_at: ts(r.get(10)),
        expires_at: ts(r.get(11)),
        row_count: r.get::<_, Option<i64>>(12).map(|n| n as u64),
        size_bytes: r.get::<_, Option<i64>>(13).map(|n| n as u64),
        sha256: r.get(14),
        file_name: r.get(15),
        error: r.get(16),
        attempts: r.get::<_, i32>(17) as u32,
        claimed_by: r.get(18),
        claimed_until: ts(r.get(19)),
    })
}

#[async_trait]
impl ExportJobs for PgStore {
    async fn create_export(&self, job: NewExportJob) -> Result<ExportJob> {
        let filters = serde_json::to_string(&job.filters)
            .map_err(|e| StoreError::internal_caused_by("cannot encode filters", e))?;
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO export_jobs (account_id, requested_by, format, compression, \
                     filters, seq_bound, status, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7) RETURNING {COLUMNS}"
                ),
                &[
                    &job.account_id,
                    &job.requested_by,
                    &job.format.as_str(),
                    &job.compression.as_str(),
                    &filters,
                    &(job.seq_bound as i64),
                    &job.created_at.micros(),
                ],
            )
            .await
            .map_err(pg_error)?;
        to_job(&row)
    }

    async fn export_by_id(&self, account: AccountId, id: ExportId) -> Result<Option<ExportJob>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM export_jobs WHERE account_id = $1 AND id = $2"),
                &[&account, &id],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_job).transpose()
    }

    async fn exports(&self, account: AccountId) -> Result<Vec<ExportJob>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM export_jobs WHERE account_id = $1 \
                     ORDER BY created_at DESC, id DESC"
                ),
                &[&account],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(to_job).collect()
    }

    async fn claim_export(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<ExportJob>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // Jobs that took their server down too often are given up, with a reason.
        let reason = format!(
            "the export was interrupted {MAX_EXPORT_ATTEMPTS} times (its server stopped \
             while writing it) and is no longer retried; check the server's log and \
             free space in the export directory, then create the export again"
        );
        tx.execute(
            "UPDATE export_jobs SET status = 'failed', claimed_by = NULL, claimed_until = NULL, \
             completed_at = $1, error = $2 \
             WHERE id IN (SELECT id FROM export_jobs WHERE status = 'running' \
               AND claimed_until < $1 AND attempts >= $3 FOR UPDATE SKIP LOCKED)",
            &[&now.micros(), &reason, &(MAX_EXPORT_ATTEMPTS as i32)],
        )
        .await
        .map_err(pg_error)?;
        let claimed = tx
            .query_opt(
                &format!(
                    "UPDATE export_jobs SET status = 'running', claimed_by = $1, \
                     claimed_until = $2, started_at = $3, attempts = attempts + 1 \
                     WHERE id = (SELECT id FROM export_jobs \
                       WHERE status = 'queued' OR (status = 'running' AND claimed_until < $3) \
                       ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     RETURNING {COLUMNS}"
                ),
                &[&worker, &lease_until.micros(), &now.micros()],
            )
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        claimed.as_ref().map(to_job).transpose()
    }

    async fn renew_export_lease(
        &self,
        id: ExportId,
        worker: &str,
        lease_until: Timestamp,
    ) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE export_jobs SET claimed_until = $3 \
                 WHERE id = $1 AND status = 'running' AND claimed_by = $2",
                &[&id, &worker, &lease_until.micros()],
            )
            .await
            .map_err(pg_error)?;
        Ok(n == 1)
    }

    async fn complete_export(
        &self,
        id: ExportId,
        worker: &str,
        outcome: ExportOutcome,
    ) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE export_jobs SET status = 'completed', claimed_by = NULL, \
                 claimed_until = NULL, error = NULL, row_count = $3, size_bytes = $4, \
                 sha256 = $5, file_name = $6, completed_at = $7, expires_at = $8 \
                 WHERE id = $1 AND status = 'running' AND claimed_by = $2",
                &[
                    &id,
                    &worker,
                    &(outcome.row_count as i64),
                    &(outcome.size_bytes as i64),
                    &outcome.sha256,
                    &outcome.file_name,
                    &outcome.completed_at.micros(),
                    &outcome.expires_at.micros(),
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(n == 1)
    }

    async fn fail_export(&self, id: ExportId, worker: &str, error: &str) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE export_jobs SET status = 'failed', claimed_by = NULL, \
                 claimed_until = NULL, error = $3, completed_at = $4 \
                 WHERE id = $1 AND status = 'running' AND claimed_by = $2",
                &[&id, &worker, &error, &now_micros()],
            )
            .await
            .map_err(pg_error)?;
        Ok(n == 1)
    }

    async fn release_export(&self, id: ExportId, worker: &str) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE export_jobs SET status = 'queued', claimed_by = NULL, \
                 claimed_until = NULL, started_at = NULL, attempts = GREATEST(attempts - 1, 0) \
                 WHERE id = $1 AND status = 'running' AND claimed_by = $2",
                &[&id, &worker],
            )
            .await
            .map_err(pg_error)?;
        Ok(n == 1)
    }

    async fn expire_exports(&self, now: Timestamp) -> Result<Vec<ExportJob>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "UPDATE export_jobs SET status = 'expired' \
                     WHERE status = 'completed' AND expires_at <= $1 RETURNING {COLUMNS}"
                ),
                &[&now.micros()],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(to_job).collect()
    }

    async fn count_exports_by_status(&self) -> Result<Vec<(ExportStatus, u64)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT status, count(*) FROM export_jobs GROUP BY status",
                &[],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get(0).map_err(pg_error)?;
                let count: i64 = row.try_get(1).map_err(pg_error)?;
                let status = ExportStatus::parse(&status).ok_or_else(|| {
                    StoreError::internal(format!("export job with unknown status {status:?}"))
                })?;
                Ok((status, count as u64))
            })
            .collect()
    }
}
