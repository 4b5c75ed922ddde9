//! The pruner's background loop: every `interval`, for each account with a
//! policy, finish its unfinished pruning (taken with a lease, so that on
//! PostgreSQL one server works on it while the others skip it) or plan and
//! run the next one.

use super::job;
use super::plan;
use super::RetentionSettings;
use crate::holds::ActiveHolds;
use auditlog_core::{ErrorChain, Timestamp};
use auditlog_store::{Account, Store, StoreError};
use std::sync::Arc;
use tokio::sync::watch;

/// Starts the loop; it stops when `stopped` turns true (at a batch's end).
pub fn spawn(
    store: Arc<dyn Store>,
    settings: RetentionSettings,
    mut stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *stopped.borrow() {
                break;
            }
            if let Err(e) = run_once(store.as_ref(), &settings).await {
                tracing::warn!(error = %ErrorChain(&e), "pruning failed; retrying at the next run");
            }
            tokio::select! {
                _ = tokio::time::sleep(settings.interval) => {}
                _ = stopped.changed() => {}
            }
        }
    })
}

/// One pass over every account.
pub async fn run_once(store: &dyn Store, settings: &RetentionSettings) -> Result<u64, StoreError> {
    let mut removed = 0;
    for account in store.accounts().await? {
        removed += prune_account(store, &account, settings).await?;
    }
    Ok(removed)
}

/// Finishes or starts the account's pruning; the bodies removed.
pub async fn prune_account(
    store: &dyn Store,
    account: &Account,
    settings: &RetentionSettings,
) -> Result<u64, StoreError> {
    let lease =
        |now: Timestamp| Timestamp::from_micros(now.micros() + settings.lease.as_micros() as i64);
    let holds = active_holds(store, account).await?;
    let now = Timestamp::now();
    let mut removed = 0;
    // An unfinished job first (a crash, or another server that died).
    if let Some(job) = store.claim_prune(account.id, now, lease(now)).await? {
        removed += job::run(store, account, job, &holds, settings).await?;
    }
    if store.retention_days(account.id).await?.is_none() {
        return Ok(removed);
    }
    // Read again, after the policy: a hold created just before the policy
    // that starts this pruning must shape its plan.
    let holds = active_holds(store, account).await?;
    let now = Timestamp::now();
    let preview = plan::preview(store, account, &holds, now).await?;
    let Some(plan) = plan::plan_of(account, &preview, now) else {
        return Ok(removed);
    };
    // None: another server planned one meanwhile; it runs it.
    if let Some(job) = store.plan_prune(&plan, lease(now)).await? {
        removed += job::run(store, account, job, &holds, settings).await?;
    }
    Ok(removed)
}

/// The account's active legal holds; one that no longer reads keeps every
/// event (and is logged).
async fn active_holds(store: &dyn Store, account: &Account) -> Result<ActiveHolds, StoreError> {
    let active = store.holds(account.id, false).await?;
    let (holds, unreadable) = ActiveHolds::new(&active, &account.taxonomy);
    for hold in unreadable {
        tracing::warn!(account = %account.name, %hold, "a legal hold no longer reads: it keeps every event");
    }
    Ok(holds)
}
