//! One erasure, run from its stored state, so that a server killed at any
//! point leaves a job that the next run finishes:
//! 1. `planned`: append the `Auditlog Erasure` / `Erase` record. Its id
//!    (`auditlog-erasure-<job>`) and time are the job's, so appending it
//!    again after a crash is an idempotent repeat, never a second record.
//!    It covers every seq of the subject found when it was requested, held
//!    ones included (they are erased under it once released).
//! 2. store the record's coverage (idempotent), then `erasing`: from
//!    `next_seq` on, a batch per transaction, erase each covered event no
//!    hold keeps — a version 2 event's personal values replaced by the
//!    erased form and its words re-indexed, a version 1 event's whole body
//!    removed — recording progress;
//! 3. `waiting` while holds keep events (each run looks again), else: the
//!    subject's actor rows renamed to the pseudonym, the account's export
//!    files that may hold erased values deleted (after any export still
//!    running), the space reclaimed, and `done`.

use super::ErasureSettings;
use crate::holds::ActiveHolds;
use auditlog_core::coverage::{covers_json, SeqRange};
use auditlog_core::leaf_v2::erased::erased_form;
use auditlog_core::leaf_v2::Source;
use auditlog_core::leaf_view::LeafView;
use auditlog_core::taxonomy::ERASURE;
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::search_plan::index_words;
use auditlog_store::{
    Account, ErasedEvent, Erasure, ErasureProgress, ErasureStatus, EventRecord, RemovalKind,
    RemovedBody, Store, StoreError,
};
use serde_json::json;
use std::time::Duration;

/// The id of a job's record.
pub fn record_id(job: &Erasure) -> String {
    format!("auditlog-erasure-{}", job.id)
}

fn lease(duration: Duration) -> Timestamp {
    Timestamp::from_micros(Timestamp::now().micros() + duration.as_micros() as i64)
}

/// How many events the record counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub events: u64,
    pub held: u64,
}

/// The record event of a job.
fn record_event(account: &Account, job: &Erasure, counts: Counts) -> Result<NewEvent, StoreError> {
    let plan = &job.plan;
    let body = json!({
        "id": record_id(job),
        "time": plan.requested_at.to_rfc3339(),
        "event_type": ERASURE,
        "action": "Erase",
        "actor": {"id": plan.requested_by},
        "target": {"id": plan.pseudonym, "name": "data subject"},
        "details": {
            "erasure_id": job.id,
            "subject": plan.pseudonym,
            "covers": covers_json(&plan.covers),
            "events": counts.events,
            "erased": counts.events - counts.held,
            "held": counts.held,
        },
    });
    NewEvent::parse(&body, &account.taxonomy.with_own_types(), Timestamp::now()).map_err(|errors| {
        let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
        StoreError::internal(format!(
            "the Auditlog Erasure record of account {} is invalid: {}",
            account.name,
            reasons.join("; ")
        ))
    })
}

/// The covered events in `after < seq <= through`, in seq order.
async fn covered_events(
    store: &dyn Store,
    account: &Account,
    covers: &[SeqRange],
    after: u64,
    through: u64,
) -> Result<Vec<EventRecord>, StoreError> {
    let mut events = Vec::new();
    for range in covers {
        let from = range.first.max(after + 1);
        let to = range.last.min(through);
        if from > to {
            continue;
        }
        events.extend(
            store
                .events_in_seq_range(account.id, &Default::default(), from - 1, to)
                .await?,
        );
    }
    Ok(events)
}

/// What the record says: the covered events and those a hold keeps now.
async fn count(
    store: &dyn Store,
    account: &Account,
    job: &Erasure,
    holds: &ActiveHolds,
    batch: usize,
) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    let Some(last) = job.plan.covers.last().map(|r| r.last) else {
        return Ok(counts);
    };
    let mut after = 0;
    while after < last {
        let through = (after + batch as u64).min(last);
        for event in covered_events(store, account, &job.plan.covers, after, through).await? {
            counts.events += 1;
            if !holds.holding(&event.stored()).is_empty() {
                counts.held += 1;
            }
        }
        after = through;
    }
    Ok(counts)
}

/// Runs `job` as far as it goes now: to `done`, or to `waiting` while holds
/// keep events, or to the first error (the job keeps its state and its
/// lease runs out, so it resumes on the next run). Returns the events it
/// erased in this run.
pub async fn run(
    store: &dyn Store,
    account: &Account,
    mut job: Erasure,
    holds: &ActiveHolds,
    settings: &ErasureSettings,
) -> Result<u64, StoreError> {
    let lease_for = settings.lease;
    let batch = settings.batch.max(1);
    let first = job.plan.covers.first().map_or(1, |r| r.first);
    let last = job.plan.covers.last().map_or(0, |r| r.last);
    let mut progress = ErasureProgress {
        status: job.status,
        record_seq: job.record_seq,
        next_seq: job.next_seq,
        erased: job.erased,
        held: job.held,
    };
    if job.status == ErasureStatus::Planned || job.record_seq.is_none() {
        let counts = count(store, account, &job, holds, batch).await?;
        let event = record_event(account, &job, counts)?;
        let source = Source::from_json(&job.plan.source).unwrap_or(Source::System);
        let receipts = store.append_from(account, &source, vec![event]).await?;
        let record_seq = receipts.first().map(|r| r.seq).ok_or_else(|| {
            StoreError::internal("appending the erasure record returned no receipt")
        })?;
        progress.record_seq = Some(record_seq);
        job.record_seq = Some(record_seq);
    }
    let record_seq = progress
        .record_seq
        .ok_or_else(|| StoreError::internal("an erasure job without its record"))?;
    if !job.plan.covers.is_empty() {
        store
            .add_coverage(account.id, record_seq, &job.plan.covers)
            .await?;
    }
    if progress.status != ErasureStatus::Erasing {
        // A new pass (the first, or a waiting job looking again).
        progress.next_seq = first;
        progress.held = 0;
    }
    progress.status = ErasureStatus::Erasing;
    store
        .update_erasure(job.id, &progress, lease(lease_for))
        .await?;

    let mut erased_now = 0;
    while progress.next_seq <= last {
        let after = progress.next_seq - 1;
        let through = (after + batch as u64).min(last);
        let events = covered_events(store, account, &job.plan.covers, after, through).await?;
        let mut v2 = Vec::new();
        let mut v1 = Vec::new();
        for event in &events {
            let stored = event.stored();
            if stored.is_erased() {
                continue;
            }
            let Ok(view) = LeafView::parse(&event.leaf_bytes) else {
                // Unreadable: left for verify to name, never touched.
                continue;
            };
            if !holds.holding(&stored).is_empty() {
                progress.held += 1;
                continue;
            }
            match &event.personal {
                Some(personal) if view.is_version_2() => {
                    let form = erased_form(personal, &job.plan.pseudonym).map_err(|e| {
                        StoreError::internal_caused_by(
                            format!("event seq {} has unreadable personal values", event.seq),
                            e,
                        )
                    })?;
                    let erased = auditlog_core::StoredRecord::new(&event.leaf_bytes, Some(&form))
                        .stored_event()
                        .map_err(|e| {
                            StoreError::internal_caused_by(
                                format!("event seq {} does not read once erased", event.seq),
                                e,
                            )
                        })?;
                    v2.push(ErasedEvent {
                        seq: event.seq,
                        words: index_words(erased.event()),
                        erased_form: form,
                    });
                }
                Some(_) => continue,
                None => v1.push(RemovedBody {
                    seq: event.seq,
                    event_id: view.id().to_string(),
                }),
            }
        }
        let mut erased = 0;
        if !v2.is_empty() {
            erased += store.erase_personal(account.id, record_seq, &v2).await?;
        }
        if !v1.is_empty() {
            erased += store
                .remove_bodies(account.id, record_seq, RemovalKind::Erased, &v1)
                .await?;
        }
        erased_now += erased;
        progress.erased += erased;
        progress.next_seq = through + 1;
        store
            .update_erasure(job.id, &progress, lease(lease_for))
            .await?;
        metrics::counter!(crate::metrics::ERASED_EVENTS).increment(erased);
    }
    if progress.held > 0 {
        progress.status = ErasureStatus::Waiting;
        store
            .update_erasure(job.id, &progress, lease(lease_for))
            .await?;
        tracing::info!(account = %account.name, job = job.id, held = progress.held,
                       "erasure waits for legal holds to be released");
        return Ok(erased_now);
    }
    store
        .retire_actors(
            account.id,
            record_seq,
            &job.plan.pseudonym,
            &job.plan.actor_rows,
        )
        .await?;
    // An export written while the values were there must not outlive
    // them: wait for running ones, then delete every file that may hold
    // a covered event (`expired`: its download answers 410).
    if store.export_in_progress(account.id).await? {
        return Err(StoreError::unavailable(
            "an export of the account is queued or running; the erasure finishes after it",
        ));
    }
    if !job.plan.covers.is_empty() {
        for export in store.expire_exports_from(account.id, first).await? {
            if let Some(name) = &export.file_name {
                let path = settings.export_dir.join(name);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(StoreError::unavailable_caused_by(
                            format!("cannot delete export file {}", path.display()),
                            e,
                        ))
                    }
                }
            }
            tracing::info!(account = %account.name, export = export.id,
                           "export deleted: it may hold erased values");
        }
    }
    store.reclaim_erased().await?;
    progress.status = ErasureStatus::Done;
    store
        .update_erasure(job.id, &progress, lease(lease_for))
        .await?;
    metrics::counter!(crate::metrics::ERASURES).increment(1);
    tracing::info!(
        account = %account.name,
        job = job.id,
        record_seq,
        erased = progress.erased,
        "erasure finished"
    );
    Ok(erased_now)
}
