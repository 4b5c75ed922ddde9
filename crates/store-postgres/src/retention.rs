//! [`Retention`] on PostgreSQL (migration 0011): the policy in `accounts`,
//! the prune jobs in `prune_jobs`. Planning takes a transaction-level
//! advisory lock per account, so that two servers never plan two prunings
//! of one account; a job is claimed by a conditional update of its lease.

use crate::sql::pg_error;
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::{
    AccountId, PruneJob, PruneJobId, PrunePlan, PruneProgress, PruneStatus, Result, Retention,
    StoreError,
};
use tokio_postgres::Row;

const COLUMNS: &str = "id, account_id, status, planned_at, cutoff, first_seq, last_seq, \
    details::text, record_seq, next_seq, removed, claimed_until, finished_at";

/// Names "auditlog prune planning" among advisory locks (with the account).
const PLAN_LOCK: i32 = 0x7072_756e; // "prun"

fn to_job(r: &Row) -> Result<PruneJob> {
    let id: i64 = r.get(0);
    let status: String = r.get(2);
    let details: String = r.get(7);
    Ok(PruneJob {
        id,
        status: PruneStatus::parse(&status)
            .ok_or_else(|| StoreError::internal(format!("prune job {id} has status {status:?}")))?,
        plan: PrunePlan {
            account_id: r.get(1),
            planned_at: Timestamp::from_micros(r.get(3)),
            cutoff: Timestamp::from_micros(r.get(4)),
            first_seq: r.get::<_, i64>(5) as u64,
            last_seq: r.get::<_, i64>(6) as u64,
            details: serde_json::from_str(&details).map_err(|e| {
                StoreError::internal_caused_by(format!("prune job {id} has unreadable details"), e)
            })?,
        },
        record_seq: r.get::<_, Option<i64>>(8).map(|s| s as u64),
        next_seq: r.get::<_, i64>(9) as u64,
        removed: r.get::<_, i64>(10) as u64,
        claimed_until: r.get::<_, Option<i64>>(11).map(Timestamp::from_micros),
        finished_at: r.get::<_, Option<i64>>(12).map(Timestamp::from_micros),
    })
}

#[async_trait]
impl Retention for PgStore {
    async fn retention_days(&self, account: AccountId) -> Result<Option<u32>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT retention_days FROM accounts WHERE id = $1",
                &[&account],
            )
            .await
            .map_err(pg_error)?
            .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
        Ok(row.get::<_, Option<i32>>(0).map(|d| d as u32))
    }

    async fn set_retention_days(&self, account: AccountId, days: Option<u32>) -> Result<()> {
        let client = self.client().await?;
        let days = days.map(|d| d as i32);
        let changed = client
            .execute(
                "UPDATE accounts SET retention_days = $2 WHERE id = $1",
                &[&account, &days],
            )
            .await
            .map_err(pg_error)?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        Ok(())
    }

    async fn plan_prune(
        &self,
        plan: &PrunePlan,
        lease_until: Timestamp,
    ) -> Result<Option<PruneJob>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2::int)",
            &[&PLAN_LOCK, &(plan.account_id as i32)],
        )
        .await
        .map_err(pg_error)?;
        let details = plan.details.to_string();
        let row = tx
            .query_opt(
                &format!(
                    "INSERT INTO prune_jobs (account_id, status, planned_at, cutoff, first_seq, last_seq, \
                     details, next_seq, claimed_until) \
                     SELECT $1::bigint, 'planned', $2::bigint, $3::bigint, $4::bigint, $5::bigint, $6::text::jsonb, $4::bigint, $7::bigint \
                     WHERE NOT EXISTS (SELECT 1 FROM prune_jobs WHERE account_id = $1 AND status <> 'done') \
                     RETURNING {COLUMNS}"
                ),
                &[
                    &plan.account_id,
                    &plan.planned_at.micros(),
                    &plan.cutoff.micros(),
                    &(plan.first_seq as i64),
                    &(plan.last_seq as i64),
                    &details,
                    &lease_until.micros(),
                ],
            )
            .await
            .map_err(pg_error)?;
        let job = row.as_ref().map(to_job).transpose()?;
        tx.commit().await.map_err(pg_error)?;
        Ok(job)
    }

    async fn claim_prune(
        &self,
        account: AccountId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<PruneJob>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE prune_jobs SET claimed_until = $3 WHERE id = ( \
                       SELECT id FROM prune_jobs WHERE account_id = $1 AND status <> 'done' \
                       AND (claimed_until IS NULL OR claimed_until < $2) \
                       ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     RETURNING {COLUMNS}"
                ),
                &[&account, &now.micros(), &lease_until.micros()],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_job).transpose()
    }

    async fn update_prune(
        &self,
        job: PruneJobId,
        progress: &PruneProgress,
        lease_until: Timestamp,
    ) -> Result<()> {
        let client = self.client().await?;
        let done = progress.status == PruneStatus::Done;
        let record = progress.record_seq.map(|s| s as i64);
        client
            .execute(
                "UPDATE prune_jobs SET status = $2, record_seq = $3, next_seq = $4, removed = $5, \
                 claimed_until = CASE WHEN $6::bool THEN NULL ELSE $7::bigint END, \
                 finished_at = CASE WHEN $6::bool THEN $8::bigint ELSE finished_at END WHERE id = $1",
                &[
                    &job,
                    &progress.status.as_str(),
                    &record,
                    &(progress.next_seq as i64),
                    &(progress.removed as i64),
                    &done,
                    &lease_until.micros(),
                    &Timestamp::now().micros(),
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn prune_jobs(&self, account: AccountId, limit: usize) -> Result<Vec<PruneJob>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM prune_jobs WHERE account_id = $1 ORDER BY id DESC LIMIT $2"
                ),
                &[&account, &(limit as i64)],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(to_job).collect()
    }
}
