//! What the next pruning of an account removes, and what holds it back.

use crate::holds::ActiveHolds;
use auditlog_core::coverage::{covers_json, is_removal_record, SeqRange};
use auditlog_core::leaf_view::LeafView;
use auditlog_core::Timestamp;
use auditlog_store::{
    Account, ExportStatus, PrunePlan, PruneStatus, Store, StoreError, StreamStatus,
};
use serde_json::{json, Value};

/// Seqs read per window while walking the candidates.
const WINDOW: u64 = 1_000;

/// What bounds a pruning besides the cutoff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bounds {
    /// The account's size when planned.
    pub last_seq: u64,
    /// The lowest cursor of a stream that is not disabled, and its id.
    pub stream: Option<(i64, u64)>,
    /// Exports queued or running (pruning waits for them).
    pub running_exports: Vec<i64>,
}

impl Bounds {
    /// The highest seq the pruning may reach.
    pub fn highest(&self) -> u64 {
        if !self.running_exports.is_empty() {
            return 0;
        }
        match self.stream {
            Some((_, cursor)) => cursor.min(self.last_seq),
            None => self.last_seq,
        }
    }
}

/// One hold's share of a pruning.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldCount {
    pub id: i64,
    pub name: String,
    pub count: u64,
}

/// The next pruning of an account.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Preview {
    pub retention_days: Option<u32>,
    pub cutoff: Option<String>,
    /// The range it covers (`None`: nothing to prune now).
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Bodies it removes.
    pub removes: u64,
    /// Events in the range kept by holds, per hold.
    pub held: Vec<HeldCount>,
    /// Auditlog records in the range (never pruned).
    pub records: u64,
    /// The first seq the prefix stops at because it was received after the cutoff.
    pub stopped_at_received: Option<u64>,
    pub bounds: Bounds,
    /// Where a stream or an export stopped the prefix before the cutoff did.
    pub held_back_by: Vec<String>,
    /// The lowest seq a hold kept (where the next pruning starts again).
    #[serde(skip)]
    pub lowest_kept: Option<u64>,
    /// The walk stopped at its time budget ([`preview_within`]): the range
    /// and the counts are the part walked, and the pruning goes on past
    /// `last_seq` (up to the cutoff and the bounds).
    pub partial: bool,
}

/// Where the next pruning starts: after the last one, or at the lowest
/// seq an earlier one left to a hold (released since, perhaps).
async fn start_seq(store: &dyn Store, account: &Account) -> Result<u64, StoreError> {
    let jobs = store.prune_jobs(account.id, 1).await?;
    Ok(match jobs.first() {
        None => 1,
        Some(last) => {
            let kept = last.plan.details["lowest_kept"].as_u64();
            let after = last.plan.last_seq + 1;
            kept.map_or(after, |k| k.min(after))
        }
    })
}

pub async fn bounds(store: &dyn Store, account: &Account) -> Result<Bounds, StoreError> {
    let last_seq = store.last_seq(account.id).await?;
    let stream = store
        .streams(account.id)
        .await?
        .into_iter()
        .filter(|s| s.status != StreamStatus::Disabled)
        .map(|s| (s.id, s.cursor))
        .min_by_key(|(_, cursor)| *cursor);
    let running_exports = store
        .exports(account.id)
        .await?
        .into_iter()
        .filter(|e| matches!(e.status, ExportStatus::Queued | ExportStatus::Running))
        .map(|e| e.id)
        .collect();
    Ok(Bounds {
        last_seq,
        stream,
        running_exports,
    })
}

/// The log stream that keeps pruning back now, with its cursor: the stream
/// (not disabled) with the lowest cursor, when the account has a policy
/// and the first event the stream has not examined was received before
/// the cutoff (so the pruning would go further without it). For the Log
/// Streams page; reads one event.
pub async fn stream_holding_back(
    store: &dyn Store,
    account: &Account,
    now: Timestamp,
) -> Result<Option<(i64, u64)>, StoreError> {
    let Some(days) = store.retention_days(account.id).await? else {
        return Ok(None);
    };
    let bounds = bounds(store, account).await?;
    let Some((stream, cursor)) = bounds.stream else {
        return Ok(None);
    };
    if cursor >= bounds.last_seq {
        return Ok(None);
    }
    let cutoff = Timestamp::from_micros(now.micros() - i64::from(days) * 86_400_000_000);
    let next = store
        .events_in_seq_range(account.id, &Default::default(), cursor, cursor + WINDOW)
        .await?;
    let held_back = next.first().is_some_and(|event| {
        LeafView::parse(&event.leaf_bytes)
            .ok()
            .and_then(|view| Timestamp::parse("received_at", view.received_at()).ok())
            .is_some_and(|received| received < cutoff)
    });
    Ok(held_back.then_some((stream, cursor)))
}

/// Walks the account's candidates from where the last pruning stopped and
/// says what a pruning at `now` would remove. Reads every candidate event
/// once (its `received_at`, and its body when holds must be asked): the
/// pruner plans its job with this.
pub async fn preview(
    store: &dyn Store,
    account: &Account,
    holds: &ActiveHolds,
    now: Timestamp,
) -> Result<Preview, StoreError> {
    walk(store, account, holds, now, None).await
}

/// [`preview`] for a person waiting on it (the API and the console): the
/// walk stops after the window in which `budget` runs out, with
/// `partial` set. Walking a first pruning of a 10M-event store reads
/// millions of events, more than a request may take (the 30 s limit
/// answered 503 when the benchmark set a policy on one).
pub async fn preview_within(
    store: &dyn Store,
    account: &Account,
    holds: &ActiveHolds,
    now: Timestamp,
    budget: std::time::Duration,
) -> Result<Preview, StoreError> {
    walk(
        store,
        account,
        holds,
        now,
        Some(std::time::Instant::now() + budget),
    )
    .await
}

async fn walk(
    store: &dyn Store,
    account: &Account,
    holds: &ActiveHolds,
    now: Timestamp,
    deadline: Option<std::time::Instant>,
) -> Result<Preview, StoreError> {
    let retention_days = store.retention_days(account.id).await?;
    let bounds = bounds(store, account).await?;
    let mut preview = Preview {
        retention_days,
        cutoff: None,
        first_seq: None,
        last_seq: None,
        removes: 0,
        held: Vec::new(),
        records: 0,
        stopped_at_received: None,
        bounds: bounds.clone(),
        held_back_by: Vec::new(),
        lowest_kept: None,
        partial: false,
    };
    let Some(days) = retention_days else {
        return Ok(preview);
    };
    let cutoff = Timestamp::from_micros(now.micros() - i64::from(days) * 86_400_000_000);
    preview.cutoff = Some(cutoff.to_rfc3339());
    let first = start_seq(store, account).await?;
    let highest = bounds.highest();
    let mut held: Vec<HeldCount> = holds
        .holds
        .iter()
        .map(|h| HeldCount {
            id: h.id,
            name: h.name.clone(),
            count: 0,
        })
        .collect();
    let mut last = None;
    let mut after = first - 1;
    'walk: while after < highest {
        let through = (after + WINDOW).min(highest);
        let events = store
            .events_in_seq_range(account.id, &Default::default(), after, through)
            .await?;
        for event in &events {
            let view = LeafView::parse(&event.leaf_bytes).map_err(|e| {
                StoreError::internal_caused_by(format!("event seq {} does not read", event.seq), e)
            })?;
            let received = Timestamp::parse("received_at", view.received_at()).map_err(|e| {
                StoreError::internal_caused_by(
                    format!("event seq {} has no received_at", event.seq),
                    e,
                )
            })?;
            if received >= cutoff {
                preview.stopped_at_received = Some(event.seq);
                break 'walk;
            }
            last = Some(event.seq);
            if is_removal_record(view.event_type()) {
                preview.records += 1;
                continue;
            }
            let holding = holds.holding(&event.stored());
            if holding.is_empty() {
                preview.removes += 1;
            } else {
                preview.lowest_kept.get_or_insert(event.seq);
                for hold in holding {
                    if let Some(count) = held.iter_mut().find(|c| c.id == hold.id) {
                        count.count += 1;
                    }
                }
            }
        }
        // A window whose events were all removed already still counts as
        // received before the cutoff (they were pruned).
        last = Some(through.max(last.unwrap_or(0)));
        after = through;
        if after < highest && deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            preview.partial = true;
            break;
        }
    }
    if !preview.partial && preview.stopped_at_received.is_none() && highest < bounds.last_seq {
        if !bounds.running_exports.is_empty() {
            preview.held_back_by.push(format!(
                "exports {:?} are queued or running: pruning waits until they finish",
                bounds.running_exports
            ));
        } else if let Some((stream, cursor)) = bounds.stream {
            preview.held_back_by.push(format!(
                "log stream {stream} has examined events up to seq {cursor} only"
            ));
        }
    }
    held.retain(|h| h.count > 0);
    preview.held = held;
    if let Some(last) = last.filter(|l| *l >= first) {
        preview.first_seq = Some(first);
        preview.last_seq = Some(last);
    }
    Ok(preview)
}

/// The job a preview becomes, `None` when it would remove nothing.
pub fn plan_of(account: &Account, preview: &Preview, now: Timestamp) -> Option<PrunePlan> {
    let (first, last) = (preview.first_seq?, preview.last_seq?);
    if preview.removes == 0 {
        return None;
    }
    let range = SeqRange::new(first, last)?;
    let holds: Vec<Value> = preview
        .held
        .iter()
        .map(|h| json!({"id": h.id, "name": h.name, "count": h.count}))
        .collect();
    let details = json!({
        "covers": covers_json(&[range]),
        "range": {"first_seq": first, "last_seq": last},
        "retention_days": preview.retention_days,
        "cutoff": preview.cutoff,
        "removed": preview.removes,
        "held": holds,
        "records_kept": preview.records,
        "lowest_kept": preview.lowest_kept,
    });
    let cutoff = preview
        .cutoff
        .as_deref()
        .and_then(|c| Timestamp::parse("cutoff", c).ok())
        .unwrap_or(now);
    Some(PrunePlan {
        account_id: account.id,
        planned_at: now,
        cutoff,
        first_seq: first,
        last_seq: last,
        details,
    })
}

/// Whether a job status still has work.
pub fn unfinished(status: PruneStatus) -> bool {
    status != PruneStatus::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_store::conformance::sample_events;
    use auditlog_store_sqlite::SqliteStore;

    /// The view's walk stops after the window in which its budget ran out
    /// and says so; the pruner's walk counts every candidate.
    #[tokio::test]
    async fn a_preview_out_of_time_says_it_is_partial_while_the_pruners_counts_everything() {
        let dir = tempfile::tempdir().unwrap();
        let store: Box<dyn Store> = Box::new(SqliteStore::open(dir.path()).unwrap());
        let store = store.as_ref();
        let account = store.create_account("acme").await.unwrap();
        store
            .append(&account, sample_events(2_500, "p"))
            .await
            .unwrap();
        store.set_retention_days(account.id, Some(0)).await.unwrap();
        let (holds, _) = ActiveHolds::new(&[], &account.taxonomy);
        let later = Timestamp::from_micros(Timestamp::now().micros() + 60_000_000);

        let full = preview(store, &account, &holds, later).await.unwrap();
        assert!(!full.partial);
        assert_eq!(
            (full.first_seq, full.last_seq, full.removes),
            (Some(1), Some(2_500), 2_500)
        );

        let quick = preview_within(store, &account, &holds, later, std::time::Duration::ZERO)
            .await
            .unwrap();
        assert!(quick.partial);
        assert_eq!(
            (quick.first_seq, quick.last_seq, quick.removes),
            (Some(1), Some(1_000), 1_000)
        );
        assert!(quick.held_back_by.is_empty(), "{:?}", quick.held_back_by);
        let shown = serde_json::to_value(&quick).unwrap();
        assert_eq!(shown["partial"], true);

        let ample = preview_within(
            store,
            &account,
            &holds,
            later,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(ample, full);
    }
}
