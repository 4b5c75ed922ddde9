//! The eraser's background loop: when woken (an erasure requested, a hold
//! released) and every `interval`, for each account, run its unfinished
//! erasures (taken with a lease, so that on PostgreSQL one server works on
//! each while the others skip it).

use super::job;
use super::ErasureSettings;
use crate::holds::ActiveHolds;
use auditlog_core::{ErrorChain, Timestamp};
use auditlog_store::{Account, ErasureProgress, Store, StoreError};
use std::sync::Arc;
use tokio::sync::watch;

/// Starts the loop; it stops when `stopped` turns true (at a batch's end).
pub fn spawn(
    store: Arc<dyn Store>,
    settings: ErasureSettings,
    mut stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *stopped.borrow() {
                break;
            }
            if let Err(e) = run_once(store.as_ref(), &settings).await {
                tracing::warn!(error = %ErrorChain(&e), "erasure failed; retrying at the next run");
            }
            tokio::select! {
                _ = tokio::time::sleep(settings.interval) => {}
                _ = settings.wakeup.notified() => {}
                _ = stopped.changed() => {}
            }
        }
    })
}

/// One pass over every account; the events erased.
pub async fn run_once(store: &dyn Store, settings: &ErasureSettings) -> Result<u64, StoreError> {
    let mut erased = 0;
    let mut failed = None;
    for account in store.accounts().await? {
        // One account's failure (an export still running, say) does not
        // hold back the others.
        match erase_account(store, &account, settings).await {
            Ok(n) => erased += n,
            Err(e) => failed = Some(e),
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(erased),
    }
}

/// Runs the account's unfinished erasures, oldest first.
pub async fn erase_account(
    store: &dyn Store,
    account: &Account,
    settings: &ErasureSettings,
) -> Result<u64, StoreError> {
    let lease =
        |now: Timestamp| Timestamp::from_micros(now.micros() + settings.lease.as_micros() as i64);
    let mut erased = 0;
    let mut seen = std::collections::HashSet::new();
    loop {
        let now = Timestamp::now();
        let Some(job) = store.claim_erasure(account.id, now, lease(now)).await? else {
            return Ok(erased);
        };
        // A job that ends waiting is released and would be claimed again:
        // once per pass is enough (its lease is given back at once).
        if !seen.insert(job.id) {
            let progress = ErasureProgress {
                status: job.status,
                record_seqs: job.record_seqs.clone(),
                next_seq: job.next_seq,
                erased: job.erased,
                held: job.held,
            };
            store.update_erasure(job.id, &progress, now).await?;
            return Ok(erased);
        }
        let active = store.holds(account.id, false).await?;
        let (holds, unreadable) = ActiveHolds::new(&active, &account.taxonomy);
        for hold in unreadable {
            tracing::warn!(account = %account.name, %hold, "a legal hold no longer reads: it keeps every event");
        }
        erased += job::run(store, account, job, &holds, settings).await?;
    }
}
