//! [`Erasures`] on PostgreSQL (migration 0014): erasure jobs in
//! `erasures`, claimed by a conditional update of their lease (like prune
//! jobs); a version 2 event is erased only through
//! `auditlog_erase_personal` (SECURITY DEFINER; the service role has no
//! DELETE grant), whose deletion and insertion the triggers check against
//! the covering Auditlog Erasure record. Renaming the subject's actor rows
//! locks the account's sequencer row first, so that no append of the
//! account runs meanwhile, and bumps `erasure_generation`, which tells every
//! server's writer to forget its cached actor ids.

use crate::exports::{to_job as export_job, COLUMNS as EXPORT_COLUMNS};
use crate::sql::pg_error;
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::coverage::{covers_json, parse_covers};
use auditlog_core::Timestamp;
use auditlog_store::log_key::{SEQ_BITS, SEQ_MASK};
use auditlog_store::{
    AccountId, ErasedEvent, Erasure, ErasureId, ErasurePlan, ErasureProgress, ErasureStatus,
    Erasures, ExportJob, Result, StoreError, SubjectEvents,
};
use tokio_postgres::Row;

/// How long the rewrite after an erasure waits for older snapshots.
const RECLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

const COLUMNS: &str = "id, account_id, status, pseudonym, requested_at, requested_by, \
    source::text, covers::text, actor_rows::text, record_seq, next_seq, erased, held, \
    claimed_until, finished_at, record_seqs::text";

fn to_erasure(r: &Row) -> Result<Erasure> {
    let id: i64 = r.get(0);
    let unreadable =
        |what: &str| StoreError::internal(format!("erasure {id} has unreadable {what}"));
    let status: String = r.get(2);
    let source: String = r.get(6);
    let covers: String = r.get(7);
    let actor_rows: String = r.get(8);
    let covers: serde_json::Value =
        serde_json::from_str(&covers).map_err(|_| unreadable("covers"))?;
    Ok(Erasure {
        id,
        status: ErasureStatus::parse(&status).ok_or_else(|| unreadable("status"))?,
        plan: ErasurePlan {
            account_id: r.get(1),
            pseudonym: r.get(3),
            requested_at: Timestamp::from_micros(r.get(4)),
            requested_by: r.get(5),
            source: serde_json::from_str(&source).map_err(|_| unreadable("source"))?,
            covers: parse_covers(&serde_json::json!({ "covers": covers }))
                .ok_or_else(|| unreadable("covers"))?,
            actor_rows: serde_json::from_str(&actor_rows).map_err(|_| unreadable("actor rows"))?,
        },
        record_seqs: match r.get::<_, Option<String>>(15) {
            Some(json) => serde_json::from_str(&json).map_err(|_| unreadable("record seqs"))?,
            None => r
                .get::<_, Option<i64>>(9)
                .map(|s| s as u64)
                .into_iter()
                .collect(),
        },
        next_seq: r.get::<_, i64>(10) as u64,
        erased: r.get::<_, i64>(11) as u64,
        held: r.get::<_, i64>(12) as u64,
        claimed_until: r.get::<_, Option<i64>>(13).map(Timestamp::from_micros),
        finished_at: r.get::<_, Option<i64>>(14).map(Timestamp::from_micros),
    })
}

#[async_trait]
impl Erasures for PgStore {
    async fn subject_events(&self, account: AccountId, actor_id: &str) -> Result<SubjectEvents> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id FROM actors WHERE account_id = $1 AND actor_id = $2",
                &[&account, &actor_id],
            )
            .await
            .map_err(pg_error)?;
        let actor_rows: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let seqs = client
            .query(
                &format!(
                    "SELECT key & {SEQ_MASK} FROM event_log \
                     WHERE actor = ANY($1) AND (key >> {SEQ_BITS}) = $2 ORDER BY key"
                ),
                &[&actor_rows, &account],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| r.get::<_, i64>(0) as u64)
            .collect();
        Ok(SubjectEvents { seqs, actor_rows })
    }

    async fn plan_erasure(&self, plan: &ErasurePlan, lease_until: Timestamp) -> Result<Erasure> {
        let client = self.client().await?;
        let first = plan.covers.first().map_or(1, |r| r.first) as i64;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO erasures (account_id, status, pseudonym, requested_at, requested_by, \
                     source, covers, actor_rows, next_seq, claimed_until) \
                     VALUES ($1, 'planned', $2, $3, $4, $5::text::jsonb, $6::text::jsonb, $7::text::jsonb, $8, $9) \
                     RETURNING {COLUMNS}"
                ),
                &[
                    &plan.account_id,
                    &plan.pseudonym,
                    &plan.requested_at.micros(),
                    &plan.requested_by,
                    &plan.source.to_string(),
                    &covers_json(&plan.covers).to_string(),
                    &serde_json::Value::from(plan.actor_rows.clone()).to_string(),
                    &first,
                    &lease_until.micros(),
                ],
            )
            .await
            .map_err(pg_error)?;
        to_erasure(&row)
    }

    async fn claim_erasure(
        &self,
        account: AccountId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Erasure>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE erasures SET claimed_until = $3 WHERE id = ( \
                       SELECT id FROM erasures WHERE account_id = $1 AND status <> 'done' \
                       AND (claimed_until IS NULL OR claimed_until < $2) \
                       ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     RETURNING {COLUMNS}"
                ),
                &[&account, &now.micros(), &lease_until.micros()],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_erasure).transpose()
    }

    async fn update_erasure(
        &self,
        id: ErasureId,
        progress: &ErasureProgress,
        lease_until: Timestamp,
    ) -> Result<()> {
        let client = self.client().await?;
        let done = progress.status == ErasureStatus::Done;
        let released = done || progress.status == ErasureStatus::Waiting;
        let record = progress.record_seqs.first().map(|s| *s as i64);
        let record_seqs = (!progress.record_seqs.is_empty())
            .then(|| serde_json::Value::from(progress.record_seqs.clone()).to_string());
        client
            .execute(
                "UPDATE erasures SET status = $2, record_seq = $3, next_seq = $4, erased = $5, \
                 held = $6, claimed_until = CASE WHEN $7::bool THEN NULL ELSE $8::bigint END, \
                 finished_at = CASE WHEN $9::bool THEN $10::bigint ELSE finished_at END, \
                 record_seqs = $11::text::jsonb WHERE id = $1",
                &[
                    &id,
                    &progress.status.as_str(),
                    &record,
                    &(progress.next_seq as i64),
                    &(progress.erased as i64),
                    &(progress.held as i64),
                    &released,
                    &lease_until.micros(),
                    &done,
                    &Timestamp::now().micros(),
                    &record_seqs,
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn erasures(&self, account: AccountId, limit: usize) -> Result<Vec<Erasure>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM erasures WHERE account_id = $1 ORDER BY id DESC LIMIT $2"
                ),
                &[&account, &(limit as i64)],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(to_erasure).collect()
    }

    async fn erasure(&self, account: AccountId, id: ErasureId) -> Result<Option<Erasure>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM erasures WHERE account_id = $1 AND id = $2"),
                &[&account, &id],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_erasure).transpose()
    }

    async fn erase_personal(
        &self,
        account: AccountId,
        _record_seq: u64,
        events: &[ErasedEvent],
    ) -> Result<u64> {
        let mut client = self.client().await?;
        let seqs: Vec<i64> = events.iter().map(|e| e.seq as i64).collect();
        let forms: Vec<&[u8]> = events.iter().map(|e| e.erased_form.as_slice()).collect();
        let tx = client.transaction().await.map_err(pg_error)?;
        let rows = tx
            .query(
                "SELECT auditlog_erase_personal($1, s, f) \
                 FROM unnest($2::bigint[], $3::bytea[]) WITH ORDINALITY AS t(s, f, n) ORDER BY n",
                &[&account, &seqs, &forms],
            )
            .await
            .map_err(pg_error)?;
        let erased = rows.iter().filter(|r| r.get::<_, bool>(0)).count() as u64;
        self.replace_words(&tx, account, events).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(erased)
    }

    async fn retire_actors(
        &self,
        account: AccountId,
        _record_seq: u64,
        pseudonym: &str,
        actor_rows: &[i64],
    ) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // No append of the account while the rows are renamed: a writer
        // that read its cached ids before the generation moved would
        // otherwise name a renamed row for a new event.
        tx.execute(
            "SELECT 1 FROM account_sequencers WHERE account_id = $1 FOR UPDATE",
            &[&account],
        )
        .await
        .map_err(pg_error)?;
        let mut retired = 0;
        for actor in actor_rows {
            let kept: bool = tx
                .query_one(
                    &format!(
                        "SELECT EXISTS (SELECT 1 FROM event_log l WHERE l.actor = $1 \
                           AND (l.key >> {SEQ_BITS}) = $2 AND NOT EXISTS ( \
                             SELECT 1 FROM event_personal p WHERE p.account_id = $2 \
                               AND p.seq = l.key & {SEQ_MASK} \
                               AND substring(p.personal FROM 1 FOR 10) = convert_to('{{\"erased\":', 'UTF8')))"
                    ),
                    &[actor, &account],
                )
                .await
                .map_err(pg_error)?
                .get(0);
            if kept {
                continue;
            }
            let current: Option<String> = tx
                .query_opt(
                    "SELECT actor_id FROM actors WHERE id = $1 AND account_id = $2",
                    &[actor, &account],
                )
                .await
                .map_err(pg_error)?
                .map(|r| r.get(0));
            let Some(current) = current else { continue };
            if current.starts_with(pseudonym) {
                continue;
            }
            let taken: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM actors WHERE account_id = $1 AND actor_id = $2)",
                    &[&account, &pseudonym],
                )
                .await
                .map_err(pg_error)?
                .get(0);
            let name = if taken {
                format!("{pseudonym}~{actor}")
            } else {
                pseudonym.to_string()
            };
            tx.execute(
                "UPDATE actors SET actor_id = $2, name = NULL, email = NULL WHERE id = $1",
                &[actor, &name],
            )
            .await
            .map_err(pg_error)?;
            retired += 1;
        }
        if retired > 0 {
            tx.execute(
                "UPDATE erasure_generation SET generation = generation + 1",
                &[],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(retired)
    }

    async fn reclaim_erased(&self) -> Result<()> {
        let client = self.client().await?;
        // A plain VACUUM only marks the old row versions' space reusable:
        // their bytes stay in the pages until overwritten, and GIN keeps a
        // word's key after its last posting is gone. `VACUUM (FULL)`
        // rewrites each table into new files without the dead versions and
        // rebuilds its indexes (the word index's keys included), then
        // unlinks the old files. It holds an ACCESS EXCLUSIVE lock on each
        // table while it runs (docs/ERASURE.md). It needs the tables'
        // owner: under a role that lacks it PostgreSQL warns and skips a
        // table, and the values stay in free space until an owner runs it.
        //
        // The rewrite copies a dead version that a snapshot still open in
        // the database may see (a read that began before the erasure
        // committed, an ANALYZE). It also keeps one that the rewrite's own
        // snapshot may see: a snapshot's xmin is the oldest transaction
        // running in the whole cluster, so a write still running in
        // another database, begun before the erasure committed, keeps the
        // old versions alive too (CI found this with other tests' databases
        // busy beside it). So first wait until no transaction of the
        // cluster older than the erasure's last change is running (our own
        // fresh snapshot's xmin says so, with no privilege needed) and
        // every snapshot of this database is newer than it.
        let horizon: i64 = client
            .query_one("SELECT txid_snapshot_xmax(txid_current_snapshot())", &[])
            .await
            .map_err(pg_error)?
            .get(0);
        let deadline = std::time::Instant::now() + RECLAIM_WAIT;
        loop {
            let row = client
                .query_one(
                    "SELECT (txid_snapshot_xmin(txid_current_snapshot()) < $1)::int \
                          + (SELECT count(*) FROM pg_stat_activity \
                             WHERE datname = current_database() AND pid <> pg_backend_pid() \
                               AND ((backend_xmin IS NOT NULL AND age(backend_xmin) > age(($1 % 4294967296)::text::xid)) \
                                 OR (backend_xid IS NOT NULL AND age(backend_xid) > age(($1 % 4294967296)::text::xid))))",
                    &[&horizon],
                )
                .await
                .map_err(pg_error)?;
            let older: i64 = row.get(0);
            if older == 0 {
                break;
            }
            if std::time::Instant::now() > deadline {
                tracing::warn!(
                    transactions = older,
                    "erasure: transactions older than the erasure are still open after {:?}; \
                     rewriting anyway (old values they can see stay in the new files until \
                     the next rewrite)",
                    RECLAIM_WAIT
                );
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        client
            .batch_execute("VACUUM (FULL) event_personal, actors, event_log")
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn expire_exports_from(
        &self,
        account: AccountId,
        first_seq: u64,
    ) -> Result<Vec<ExportJob>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "UPDATE export_jobs SET status = 'expired' \
                     WHERE account_id = $1 AND status = 'completed' AND seq_bound >= $2 \
                     RETURNING {EXPORT_COLUMNS}"
                ),
                &[&account, &(first_seq as i64)],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(export_job).collect()
    }

    async fn export_in_progress(&self, account: AccountId) -> Result<bool> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM export_jobs WHERE account_id = $1 \
                 AND status IN ('queued', 'running'))",
                &[&account],
            )
            .await
            .map_err(pg_error)?
            .get(0))
    }
}

impl PgStore {
    /// The search words of erased events, replaced in the erasing
    /// transaction by those of the event as it is served once erased.
    async fn replace_words(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        account: AccountId,
        events: &[ErasedEvent],
    ) -> Result<()> {
        for event in events {
            let words = crate::word_index::column_text_of(event.words.clone());
            tx.query_one(
                "SELECT auditlog_replace_words($1, $2, $3)",
                &[&account, &(event.seq as i64), &words],
            )
            .await
            .map_err(pg_error)?;
        }
        Ok(())
    }
}
