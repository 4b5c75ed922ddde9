//! The retention role: an account's policy (`retention_days`) and its
//! prunings, each a job that is planned (the range of seqs and what the
//! holds keep in it), then has its `Auditlog Retention` record appended,
//! then removes bodies from `next_seq` on (`removal`), so that a server
//! that dies mid-pruning leaves a job another run (or server) finishes. A
//! job is taken with a lease, like export jobs, so that one server at a
//! time works on an account's pruning.

use crate::{AccountId, Result};
use async_trait::async_trait;
use auditlog_core::Timestamp;

pub type PruneJobId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneStatus {
    /// Range chosen; its record not yet appended.
    Planned,
    /// Record appended and its coverage stored: bodies are being removed.
    Removing,
    Done,
}

impl PruneStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PruneStatus::Planned => "planned",
            PruneStatus::Removing => "removing",
            PruneStatus::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "planned" => Some(PruneStatus::Planned),
            "removing" => Some(PruneStatus::Removing),
            "done" => Some(PruneStatus::Done),
            _ => None,
        }
    }
}

/// A pruning as planned.
#[derive(Debug, Clone, PartialEq)]
pub struct PrunePlan {
    pub account_id: AccountId,
    /// The record's `time` (so that appending it again is idempotent).
    pub planned_at: Timestamp,
    /// Events received before this are past the policy.
    pub cutoff: Timestamp,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The record's `details` (range, holds and their counts).
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PruneJob {
    pub id: PruneJobId,
    pub status: PruneStatus,
    pub plan: PrunePlan,
    pub record_seq: Option<u64>,
    /// The lowest seq not yet handled by the removal.
    pub next_seq: u64,
    pub removed: u64,
    pub claimed_until: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// How a job moved on (written with its lease renewed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneProgress {
    pub status: PruneStatus,
    pub record_seq: Option<u64>,
    pub next_seq: u64,
    pub removed: u64,
}

#[async_trait]
pub trait Retention: Send + Sync {
    /// The account's policy: `None`, events are kept forever.
    async fn retention_days(&self, account: AccountId) -> Result<Option<u32>>;
    async fn set_retention_days(&self, account: AccountId, days: Option<u32>) -> Result<()>;

    /// Stores a new job, claimed until `lease_until`, unless the account
    /// has an unfinished one (then `None`: finish that first).
    async fn plan_prune(
        &self,
        plan: &PrunePlan,
        lease_until: Timestamp,
    ) -> Result<Option<PruneJob>>;

    /// The account's unfinished job, claimed until `lease_until`, if no one
    /// holds its lease at `now`.
    async fn claim_prune(
        &self,
        account: AccountId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<PruneJob>>;

    /// Records a job's progress and renews its lease.
    async fn update_prune(
        &self,
        job: PruneJobId,
        progress: &PruneProgress,
        lease_until: Timestamp,
    ) -> Result<()>;

    /// The account's jobs, newest first, at most `limit`.
    async fn prune_jobs(&self, account: AccountId, limit: usize) -> Result<Vec<PruneJob>>;
}
