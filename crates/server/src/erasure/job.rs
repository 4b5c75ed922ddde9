//! One erasure, run from its stored state, so that a server killed at any
//! point leaves a job that the next run finishes:
//! 1. `planned`: append the `Auditlog Erasure` / `Erase` record. Its id
//!    (`auditlog-erasure-<job>`) and time are the job's, so appending it
//!    again after a crash is an idempotent repeat, never a second record.
//!    It covers every seq of the subject found when it was requested, held
//!    ones included (they are erased under it once released). A subject
//!    with thousands of scattered events has more ranges than one record
//!    can carry (a leaf is at most 65,535 bytes): the job then appends
//!    several records in one batch, `auditlog-erasure-<job>`,
//!    `auditlog-erasure-<job>-2`, …, each covering a part of the seqs in
//!    order (`split_for_records`, the same split every time).
//! 2. store each record's coverage (idempotent), then `erasing`: from
//!    `next_seq` on, a batch per transaction, erase each covered event no
//!    hold keeps — a version 2 event's personal values replaced by the
//!    erased form and its words re-indexed, a version 1 event's whole body
//!    removed — under the record that covers it, recording progress;
//! 3. `waiting` while holds keep events (each run looks again), else: the
//!    subject's actor rows renamed to the pseudonym, the account's export
//!    files that may hold erased values deleted (after any export still
//!    running), the space reclaimed, and `done`.

use super::ErasureSettings;
use crate::holds::ActiveHolds;
use auditlog_core::coverage::{covers_json, split_for_records, SeqRange, RECORD_COVERS_BYTES};
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

/// The id of a job's record: part 0 is `auditlog-erasure-<job>` (the only
/// one of most jobs), part k > 0 `auditlog-erasure-<job>-<k+1>`.
pub fn record_id(job: &Erasure, part: usize) -> String {
    match part {
        0 => format!("auditlog-erasure-{}", job.id),
        _ => format!("auditlog-erasure-{}-{}", job.id, part + 1),
    }
}

/// The seqs each of a job's records covers, in order: at least one part
/// (empty when the subject has no events). A job that already has one
/// record (appended before erasures were split, with up to 64 KiB of
/// ranges) keeps it for all its seqs.
pub fn record_parts(job: &Erasure) -> Vec<Vec<SeqRange>> {
    if job.record_seqs.len() == 1 {
        return vec![job.plan.covers.clone()];
    }
    let parts = split_for_records(&job.plan.covers, RECORD_COVERS_BYTES);
    if parts.is_empty() {
        vec![Vec::new()]
    } else {
        parts
    }
}

/// Which of `parts` covers `seq` (the last when none does: never the case
/// for a seq taken from the job's coverage).
fn part_of(parts: &[Vec<SeqRange>], seq: u64) -> usize {
    parts
        .partition_point(|part| part.last().is_some_and(|r| r.last < seq))
        .min(parts.len().saturating_sub(1))
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

/// The record event of part `part` (of `parts`) of a job, covering `covers`.
fn record_event(
    account: &Account,
    job: &Erasure,
    (part, parts): (usize, usize),
    covers: &[SeqRange],
    counts: Counts,
) -> Result<NewEvent, StoreError> {
    let plan = &job.plan;
    let mut body = json!({
        "id": record_id(job, part),
        "time": plan.requested_at.to_rfc3339(),
        "event_type": ERASURE,
        "action": "Erase",
        "actor": {"id": plan.requested_by},
        "target": {"id": plan.pseudonym, "name": "data subject"},
        "details": {
            "erasure_id": job.id,
            "subject": plan.pseudonym,
            "covers": covers_json(covers),
            "events": counts.events,
            "erased": counts.events - counts.held,
            "held": counts.held,
        },
    });
    if parts > 1 {
        // Which part of the erasure this record is (its counts are the
        // part's).
        body["details"]["part"] = json!(part + 1);
        body["details"]["parts"] = json!(parts);
    }
    NewEvent::parse(&body, &account.taxonomy.with_own_types(), Timestamp::now()).map_err(|errors| {
        let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
        StoreError::internal(format!(
            "the Auditlog Erasure record of account {} is invalid: {}",
            account.name,
            reasons.join("; ")
        ))
    })
}

/// The next batch of `covers` (sorted, disjoint) from `from` on: the first
/// covered seq at or after `from`, and the seq through which at most
/// `batch` covered seqs lie; none once no covered seq is left. Batches
/// count covered seqs, not seqs, so that a subject's scattered events in a
/// large store take a few transactions, not one per stretch of the log.
fn next_batch(covers: &[SeqRange], from: u64, batch: u64) -> Option<(u64, u64)> {
    let start = covers.partition_point(|r| r.last < from);
    let first = covers.get(start)?.first.max(from);
    let mut left = batch.max(1);
    let mut through = first;
    for range in &covers[start..] {
        let lo = range.first.max(from);
        let seqs = range.last - lo + 1;
        if seqs >= left {
            return Some((first, lo + left - 1));
        }
        left -= seqs;
        through = range.last;
    }
    Some((first, through))
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
    let start = covers.partition_point(|r| r.last <= after);
    for range in &covers[start..] {
        if range.first > through {
            break;
        }
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

/// What a record says: the events of `covers` and those a hold keeps now.
async fn count(
    store: &dyn Store,
    account: &Account,
    covers: &[SeqRange],
    holds: &ActiveHolds,
    batch: usize,
) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    let mut from = 1;
    while let Some((first, through)) = next_batch(covers, from, batch as u64) {
        for event in covered_events(store, account, covers, first - 1, through).await? {
            counts.events += 1;
            if !holds.holding(&event.stored()).is_empty() {
                counts.held += 1;
            }
        }
        from = through + 1;
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
    let parts = record_parts(&job);
    let mut progress = ErasureProgress {
        status: job.status,
        record_seqs: job.record_seqs.clone(),
        next_seq: job.next_seq,
        erased: job.erased,
        held: job.held,
    };
    if job.status == ErasureStatus::Planned || job.record_seqs.is_empty() {
        // Every record in one batch: appended again after a crash, each is
        // an idempotent repeat answered with its seq.
        let mut events = Vec::with_capacity(parts.len());
        for (part, covers) in parts.iter().enumerate() {
            let counts = count(store, account, covers, holds, batch).await?;
            events.push(record_event(
                account,
                &job,
                (part, parts.len()),
                covers,
                counts,
            )?);
        }
        let source = Source::from_json(&job.plan.source).unwrap_or(Source::System);
        let receipts = store.append_from(account, &source, events).await?;
        if receipts.len() != parts.len() {
            return Err(StoreError::internal(format!(
                "appending {} erasure records returned {} receipts",
                parts.len(),
                receipts.len()
            )));
        }
        progress.record_seqs = receipts.iter().map(|r| r.seq).collect();
        job.record_seqs = progress.record_seqs.clone();
    }
    let record_seqs = progress.record_seqs.clone();
    if record_seqs.len() != parts.len() {
        return Err(StoreError::internal(format!(
            "erasure job {} has {} records for {} parts of its coverage",
            job.id,
            record_seqs.len(),
            parts.len()
        )));
    }
    let last_record = *record_seqs
        .last()
        .ok_or_else(|| StoreError::internal("an erasure job without its record"))?;
    for (covers, record_seq) in parts.iter().zip(&record_seqs) {
        if !covers.is_empty() {
            store.add_coverage(account.id, *record_seq, covers).await?;
        }
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
    while let Some((from, through)) = next_batch(&job.plan.covers, progress.next_seq, batch as u64)
    {
        let events = covered_events(store, account, &job.plan.covers, from - 1, through).await?;
        // Per record (index into `parts`): what it erases in this batch.
        let mut v2: Vec<Vec<ErasedEvent>> = vec![Vec::new(); parts.len()];
        let mut v1: Vec<Vec<RemovedBody>> = vec![Vec::new(); parts.len()];
        for event in &events {
            let part = part_of(&parts, event.seq);
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
                    v2[part].push(ErasedEvent {
                        seq: event.seq,
                        words: index_words(erased.event()),
                        erased_form: form,
                    });
                }
                Some(_) => continue,
                None => v1[part].push(RemovedBody {
                    seq: event.seq,
                    event_id: view.id().to_string(),
                }),
            }
        }
        let mut erased = 0;
        for ((v2, v1), record_seq) in v2.iter().zip(&v1).zip(&record_seqs) {
            if !v2.is_empty() {
                erased += store.erase_personal(account.id, *record_seq, v2).await?;
            }
            if !v1.is_empty() {
                erased += store
                    .remove_bodies(account.id, *record_seq, RemovalKind::Erased, v1)
                    .await?;
            }
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
            last_record,
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
        records = ?record_seqs,
        erased = progress.erased,
        "erasure finished"
    );
    Ok(erased_now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::coverage::ranges_of_seqs;

    #[test]
    fn batches_count_covered_seqs_and_skip_the_gaps() {
        let covers = ranges_of_seqs([3, 4, 5, 100, 1_000, 1_001, 50_000]);
        assert_eq!(next_batch(&covers, 1, 2), Some((3, 4)));
        assert_eq!(next_batch(&covers, 5, 2), Some((5, 100)));
        assert_eq!(next_batch(&covers, 101, 10), Some((1_000, 50_000)));
        assert_eq!(next_batch(&covers, 1_001, 1), Some((1_001, 1_001)));
        assert_eq!(next_batch(&covers, 50_001, 10), None);
        assert_eq!(next_batch(&[], 1, 10), None);
        // Every covered seq is in exactly one batch, in order.
        let mut seen = Vec::new();
        let mut from = 1;
        while let Some((first, through)) = next_batch(&covers, from, 3) {
            assert!(first >= from && first <= through);
            seen.extend(
                covers
                    .iter()
                    .flat_map(|r| r.first..=r.last)
                    .filter(|s| (first..=through).contains(s)),
            );
            from = through + 1;
        }
        let all: Vec<u64> = covers.iter().flat_map(|r| r.first..=r.last).collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn each_seq_goes_to_the_record_that_covers_it() {
        let covers = ranges_of_seqs((1..=3_000u64).map(|i| i * 2));
        let parts = split_for_records(&covers, 1_024);
        assert!(parts.len() > 2);
        for (index, part) in parts.iter().enumerate() {
            for range in part {
                assert_eq!(part_of(&parts, range.first), index);
                assert_eq!(part_of(&parts, range.last), index);
            }
        }
    }
}
