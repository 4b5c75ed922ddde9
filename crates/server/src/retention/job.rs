//! One pruning, run from its stored state, so that a server killed at any
//! point leaves a job that the next run finishes:
//! 1. `planned`: append the `Auditlog Retention` / `Prune` record. Its id
//!    (`auditlog-prune-<job>`) and time are the job's, so appending it again
//!    after a crash is an idempotent repeat, never a second record.
//! 2. store the record's coverage (idempotent), then `removing`: remove the
//!    bodies of the range from `next_seq` on, a batch per transaction,
//!    skipping held events and removal records, recording progress;
//! 3. `done`.

use super::RetentionSettings;
use crate::holds::ActiveHolds;
use auditlog_core::coverage::{is_removal_record, SeqRange};
use auditlog_core::leaf_v2::Source;
use auditlog_core::leaf_view::LeafView;
use auditlog_core::taxonomy::RETENTION;
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::{
    Account, PruneJob, PruneProgress, PruneStatus, RemovalKind, RemovedBody, Store, StoreError,
};
use serde_json::json;
use std::time::Duration;

/// The id of a job's record.
pub fn record_id(job: &PruneJob) -> String {
    format!("auditlog-prune-{}", job.id)
}

fn lease(duration: Duration) -> Timestamp {
    Timestamp::from_micros(Timestamp::now().micros() + duration.as_micros() as i64)
}

/// The record event of a job.
fn record_event(account: &Account, job: &PruneJob) -> Result<NewEvent, StoreError> {
    let plan = &job.plan;
    let body = json!({
        "id": record_id(job),
        "time": plan.planned_at.to_rfc3339(),
        "event_type": RETENTION,
        "action": "Prune",
        "actor": {"id": "auditlog", "name": "Auditlog retention"},
        "target": {"id": format!("prune-{}", job.id),
                   "name": format!("seqs {} to {}", plan.first_seq, plan.last_seq)},
        "details": plan.details,
    });
    NewEvent::parse(&body, &account.taxonomy.with_own_types(), Timestamp::now()).map_err(|errors| {
        let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
        StoreError::internal(format!(
            "the Auditlog Retention record of account {} is invalid: {}",
            account.name,
            reasons.join("; ")
        ))
    })
}

/// Runs `job` to its end (or to the first error; the job keeps its state
/// and its lease runs out, so it resumes on the next run). Returns the
/// bodies it removed in this run.
pub async fn run(
    store: &dyn Store,
    account: &Account,
    mut job: PruneJob,
    holds: &ActiveHolds,
    settings: &RetentionSettings,
) -> Result<u64, StoreError> {
    let (batch, lease_for) = (settings.batch, settings.lease);
    let mut progress = PruneProgress {
        status: job.status,
        record_seq: job.record_seq,
        next_seq: job.next_seq,
        removed: job.removed,
    };
    if job.status == PruneStatus::Planned || job.record_seq.is_none() {
        let event = record_event(account, &job)?;
        let receipts = store
            .append_from(account, &Source::System, vec![event])
            .await?;
        let record_seq = receipts.first().map(|r| r.seq).ok_or_else(|| {
            StoreError::internal("appending the prune record returned no receipt")
        })?;
        progress.record_seq = Some(record_seq);
        job.record_seq = Some(record_seq);
    }
    let record_seq = progress
        .record_seq
        .ok_or_else(|| StoreError::internal("a prune job without its record"))?;
    let range = SeqRange::new(job.plan.first_seq, job.plan.last_seq)
        .ok_or_else(|| StoreError::internal(format!("prune job {} has an empty range", job.id)))?;
    store.add_coverage(account.id, record_seq, &[range]).await?;
    if job.status == PruneStatus::Removing {
        // Resumed: a kill between a batch's removal and its progress left
        // `removed` short of what the store holds, and that batch, run
        // again, skips the bodies already gone.
        progress.removed = store.removed_under(account.id, record_seq, range).await?;
    }
    progress.status = PruneStatus::Removing;
    store
        .update_prune(job.id, &progress, lease(lease_for))
        .await?;

    let mut removed_now = 0;
    while progress.next_seq <= job.plan.last_seq {
        let after = progress.next_seq - 1;
        let through = (after + batch as u64).min(job.plan.last_seq);
        let events = store
            .events_in_seq_range(account.id, &Default::default(), after, through)
            .await?;
        // Holds created since the job began keep their events too (a hold
        // that no longer reads keeps every event).
        let active = store.holds(account.id, false).await?;
        let (newer, _) = ActiveHolds::new(&active, &account.taxonomy);
        let mut bodies = Vec::with_capacity(events.len());
        for event in &events {
            let Ok(view) = LeafView::parse(&event.leaf_bytes) else {
                // Unreadable: left for verify to name, never removed.
                continue;
            };
            let stored = event.stored();
            if is_removal_record(view.event_type())
                || !holds.holding(&stored).is_empty()
                || !newer.holding(&stored).is_empty()
            {
                continue;
            }
            bodies.push(RemovedBody {
                seq: event.seq,
                event_id: view.id().to_string(),
            });
        }
        let removed = if bodies.is_empty() {
            0
        } else {
            store
                .remove_bodies(account.id, record_seq, RemovalKind::Pruned, &bodies)
                .await?
        };
        removed_now += removed;
        progress.removed += removed;
        progress.next_seq = through + 1;
        store
            .update_prune(job.id, &progress, lease(lease_for))
            .await?;
        metrics::counter!(crate::metrics::PRUNED_EVENTS).increment(removed);
        if !settings.batch_pause.is_zero() {
            tokio::time::sleep(settings.batch_pause).await;
        }
    }
    progress.status = PruneStatus::Done;
    store
        .update_prune(job.id, &progress, lease(lease_for))
        .await?;
    metrics::counter!(crate::metrics::PRUNINGS).increment(1);
    tracing::info!(
        account = %account.name,
        job = job.id,
        first_seq = job.plan.first_seq,
        last_seq = job.plan.last_seq,
        record_seq,
        removed = progress.removed,
        "pruning finished"
    );
    if removed_now > 0 {
        // The pruning is done whatever happens here; the space is given
        // back at the next one if this fails.
        match store.reclaim_space().await {
            Ok(space) => tracing::info!(
                account = %account.name,
                job = job.id,
                bytes_before = space.bytes_before,
                bytes_after = space.bytes_after,
                incremental = space.incremental,
                "space of the pruned bodies given back"
            ),
            Err(e) => tracing::warn!(
                account = %account.name,
                job = job.id,
                error = %auditlog_core::ErrorChain(&e),
                "could not give back the space of the pruned bodies; retried after the next pruning"
            ),
        }
    }
    Ok(removed_now)
}
