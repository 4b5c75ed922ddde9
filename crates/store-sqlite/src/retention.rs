//! [`Retention`] on SQLite (migration 0012): the policy in `accounts`, the
//! prune jobs in `prune_jobs`, each change one statement or one IMMEDIATE
//! transaction on a pooled connection (like export jobs).

use crate::sql::sql_error;
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::{
    AccountId, PruneJob, PruneJobId, PrunePlan, PruneProgress, PruneStatus, Result, Retention,
    StoreError,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

const COLUMNS: &str = "id, account_id, status, planned_at, cutoff, first_seq, last_seq, details, \
    record_seq, next_seq, removed, claimed_until, finished_at";

type RawJob = (
    i64,
    i64,
    String,
    i64,
    i64,
    i64,
    i64,
    String,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

fn raw_job(r: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    ))
}

fn to_job(raw: RawJob) -> Result<PruneJob> {
    let (
        id,
        account_id,
        status,
        planned_at,
        cutoff,
        first,
        last,
        details,
        record,
        next,
        removed,
        claimed,
        finished,
    ) = raw;
    Ok(PruneJob {
        id,
        status: PruneStatus::parse(&status)
            .ok_or_else(|| StoreError::internal(format!("prune job {id} has status {status:?}")))?,
        plan: PrunePlan {
            account_id,
            planned_at: Timestamp::from_micros(planned_at),
            cutoff: Timestamp::from_micros(cutoff),
            first_seq: first as u64,
            last_seq: last as u64,
            details: serde_json::from_str(&details).map_err(|e| {
                StoreError::internal_caused_by(format!("prune job {id} has unreadable details"), e)
            })?,
        },
        record_seq: record.map(|s| s as u64),
        next_seq: next as u64,
        removed: removed as u64,
        claimed_until: claimed.map(Timestamp::from_micros),
        finished_at: finished.map(Timestamp::from_micros),
    })
}

fn job_by_id(conn: &Connection, id: PruneJobId) -> Result<Option<PruneJob>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM prune_jobs WHERE id = ?1"),
        [id],
        raw_job,
    )
    .optional()
    .map_err(sql_error)?
    .map(to_job)
    .transpose()
}

#[async_trait]
impl Retention for SqliteStore {
    async fn retention_days(&self, account: AccountId) -> Result<Option<u32>> {
        self.with_conn(move |conn| {
            let days: Option<Option<i64>> = conn
                .query_row(
                    "SELECT retention_days FROM accounts WHERE id = ?1",
                    [account],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_error)?;
            match days {
                None => Err(StoreError::NotFound(format!("account {account}"))),
                Some(days) => Ok(days.map(|d| d as u32)),
            }
        })
        .await
    }

    async fn set_retention_days(&self, account: AccountId, days: Option<u32>) -> Result<()> {
        self.with_write_conn(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE accounts SET retention_days = ?2 WHERE id = ?1",
                    params![account, days.map(i64::from)],
                )
                .map_err(sql_error)?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("account {account}")));
            }
            Ok(())
        })
        .await
    }

    async fn plan_prune(
        &self,
        plan: &PrunePlan,
        lease_until: Timestamp,
    ) -> Result<Option<PruneJob>> {
        let plan = plan.clone();
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let inserted = tx
                .execute(
                    "INSERT INTO prune_jobs (account_id, status, planned_at, cutoff, first_seq, last_seq, \
                     details, next_seq, claimed_until) \
                     SELECT ?1, 'planned', ?2, ?3, ?4, ?5, ?6, ?4, ?7 \
                     WHERE NOT EXISTS (SELECT 1 FROM prune_jobs WHERE account_id = ?1 AND status <> 'done')",
                    params![
                        plan.account_id,
                        plan.planned_at.micros(),
                        plan.cutoff.micros(),
                        plan.first_seq as i64,
                        plan.last_seq as i64,
                        plan.details.to_string(),
                        lease_until.micros()
                    ],
                )
                .map_err(sql_error)?;
            let job = if inserted == 0 {
                None
            } else {
                job_by_id(&tx, tx.last_insert_rowid())?
            };
            tx.commit().map_err(sql_error)?;
            Ok(job)
        })
        .await
    }

    async fn claim_prune(
        &self,
        account: AccountId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<PruneJob>> {
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let id: Option<i64> = tx
                .query_row(
                    "SELECT id FROM prune_jobs WHERE account_id = ?1 AND status <> 'done' \
                     AND (claimed_until IS NULL OR claimed_until < ?2) ORDER BY id LIMIT 1",
                    params![account, now.micros()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_error)?;
            let Some(id) = id else { return Ok(None) };
            tx.execute(
                "UPDATE prune_jobs SET claimed_until = ?2 WHERE id = ?1",
                params![id, lease_until.micros()],
            )
            .map_err(sql_error)?;
            let job = job_by_id(&tx, id)?;
            tx.commit().map_err(sql_error)?;
            Ok(job)
        })
        .await
    }

    async fn update_prune(
        &self,
        job: PruneJobId,
        progress: &PruneProgress,
        lease_until: Timestamp,
    ) -> Result<()> {
        let progress = progress.clone();
        self.with_write_conn(move |conn| {
            let done = progress.status == PruneStatus::Done;
            conn.execute(
                "UPDATE prune_jobs SET status = ?2, record_seq = ?3, next_seq = ?4, removed = ?5, \
                 claimed_until = CASE WHEN ?6 THEN NULL ELSE ?7 END, \
                 finished_at = CASE WHEN ?6 THEN ?8 ELSE finished_at END WHERE id = ?1",
                params![
                    job,
                    progress.status.as_str(),
                    progress.record_seq.map(|s| s as i64),
                    progress.next_seq as i64,
                    progress.removed as i64,
                    done,
                    lease_until.micros(),
                    Timestamp::now().micros()
                ],
            )
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn prune_jobs(&self, account: AccountId, limit: usize) -> Result<Vec<PruneJob>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM prune_jobs WHERE account_id = ?1 ORDER BY id DESC LIMIT ?2"
                ))
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![account, limit as i64], raw_job)
                .map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error).and_then(to_job)).collect()
        })
        .await
    }
}
