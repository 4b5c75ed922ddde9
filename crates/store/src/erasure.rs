//! The erasure role (issue 16, docs/ERASURE.md): a data subject's personal
//! values removed from the live database under one `Auditlog Erasure` /
//! `Erase` record, as a job that is planned (the subject's seqs, found by
//! its actor id, which is then forgotten: only the pseudonym is kept), then
//! has its record (or, for a subject with thousands of scattered events,
//! its records) appended, then erases batch by batch from `next_seq` on,
//! so that a server that dies mid-erasure leaves a job another run (or
//! server) finishes. Held events are skipped; the job then waits and
//! finishes them once no hold keeps them.
//!
//! For a version 2 event, [`Erasures::erase_personal`] replaces its
//! personal values and openings by the erased form
//! (`auditlog_core::leaf_v2::erased`) and re-indexes its words; the leaf
//! and the tree stay. A version 1 event loses its whole body
//! (`Removals::remove_bodies` with `RemovalKind::Erased`). Both need the
//! record's coverage (`Removals::add_coverage`): the database refuses
//! either without it.

use crate::{AccountId, ExportJob, Result};
use async_trait::async_trait;
use auditlog_core::coverage::SeqRange;
use auditlog_core::Timestamp;

pub type ErasureId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureStatus {
    /// The subject's seqs found; the record not yet appended.
    Planned,
    /// Record appended and its coverage stored: events are being erased.
    Erasing,
    /// Everything not held is erased; held events wait for their holds'
    /// release (the job looks again at each run).
    Waiting,
    Done,
}

impl ErasureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureStatus::Planned => "planned",
            ErasureStatus::Erasing => "erasing",
            ErasureStatus::Waiting => "waiting",
            ErasureStatus::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "planned" => Some(ErasureStatus::Planned),
            "erasing" => Some(ErasureStatus::Erasing),
            "waiting" => Some(ErasureStatus::Waiting),
            "done" => Some(ErasureStatus::Done),
            _ => None,
        }
    }
}

/// An erasure as requested.
#[derive(Debug, Clone, PartialEq)]
pub struct ErasurePlan {
    pub account_id: AccountId,
    /// `erased:` + the keyed hash of the subject's actor id.
    pub pseudonym: String,
    /// The record's `time` (so that appending it again is idempotent).
    pub requested_at: Timestamp,
    /// Who asked: the record's actor id and `source` (JSON).
    pub requested_by: String,
    pub source: serde_json::Value,
    /// Every seq whose actor was the subject when it was requested (what the
    /// record covers; held ones are erased when released).
    pub covers: Vec<SeqRange>,
    /// The store's ids of the subject's actor rows ([`SubjectEvents`]),
    /// renamed to the pseudonym once none of their events keeps personal
    /// values.
    pub actor_rows: Vec<i64>,
}

/// The subject's events in a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectEvents {
    /// Seqs of the stored events whose actor id is the subject's, ascending.
    pub seqs: Vec<u64>,
    /// The store's ids of the subject's actor rows (an opaque number; none
    /// when the subject never acted).
    pub actor_rows: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Erasure {
    pub id: ErasureId,
    pub status: ErasureStatus,
    pub plan: ErasurePlan,
    /// The seqs of its `Auditlog Erasure` records, in seq order (none
    /// while planned): one unless its coverage is too long for one record
    /// (`auditlog_core::coverage::split_for_records`).
    pub record_seqs: Vec<u64>,
    /// The lowest seq not yet looked at in this pass.
    pub next_seq: u64,
    /// Events erased so far (version 2 values, version 1 bodies).
    pub erased: u64,
    /// Events a hold kept in the latest pass.
    pub held: u64,
    pub claimed_until: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// How a job moved on (written with its lease renewed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureProgress {
    pub status: ErasureStatus,
    pub record_seqs: Vec<u64>,
    pub next_seq: u64,
    pub erased: u64,
    pub held: u64,
}

/// One version 2 event to erase: its seq and the erased form that replaces
/// its personal values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasedEvent {
    pub seq: u64,
    /// `auditlog_core::leaf_v2::erased::erased_form`.
    pub erased_form: Vec<u8>,
    /// The words the event is searchable by once erased
    /// (`search_plan::index_words` of the erased event).
    pub words: Vec<String>,
}

#[async_trait]
pub trait Erasures: Send + Sync {
    /// The account's stored events whose actor id is `actor_id` (removed
    /// bodies have none).
    async fn subject_events(&self, account: AccountId, actor_id: &str) -> Result<SubjectEvents>;

    /// Stores a new job, claimed until `lease_until`.
    async fn plan_erasure(&self, plan: &ErasurePlan, lease_until: Timestamp) -> Result<Erasure>;

    /// The account's oldest unfinished job (waiting ones too), claimed until
    /// `lease_until`, if no one holds its lease at `now`.
    async fn claim_erasure(
        &self,
        account: AccountId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Erasure>>;

    /// Records a job's progress and renews its lease (none once done or
    /// waiting).
    async fn update_erasure(
        &self,
        id: ErasureId,
        progress: &ErasureProgress,
        lease_until: Timestamp,
    ) -> Result<()>;

    /// The account's jobs, newest first, at most `limit`.
    async fn erasures(&self, account: AccountId, limit: usize) -> Result<Vec<Erasure>>;

    /// One job of the account.
    async fn erasure(&self, account: AccountId, id: ErasureId) -> Result<Option<Erasure>>;

    /// Erases version 2 events in one transaction under the record at
    /// `record_seq` (which must cover each seq, else the database refuses
    /// and nothing changes): their personal values and openings removed,
    /// the erased form stored instead, their full-text entries replaced by
    /// `words`. Events already erased or removed are skipped. Returns how
    /// many were erased.
    async fn erase_personal(
        &self,
        account: AccountId,
        record_seq: u64,
        events: &[ErasedEvent],
    ) -> Result<u64>;

    /// Renames each of `actor_rows` none of whose events keeps personal
    /// values (all erased or removed) to `pseudonym`, without name or email,
    /// so that the actor list and the `user` filter hold no trace of the
    /// subject; a row that still has such events (held, or sent after the
    /// request) keeps its id. Writers forget their cached actor ids.
    /// Returns how many rows were renamed.
    async fn retire_actors(
        &self,
        account: AccountId,
        record_seq: u64,
        pseudonym: &str,
        actor_rows: &[i64],
    ) -> Result<u64>;

    /// Returns the space the erased values took to the database where it
    /// can: SQLite checkpoints the WAL and truncates it (its deletions
    /// overwrite with `secure_delete`); PostgreSQL vacuums the tables the
    /// values were in.
    async fn reclaim_erased(&self) -> Result<()>;

    /// Marks the account's completed exports whose bound reaches `first_seq`
    /// as `expired` and returns them (the caller deletes their files).
    async fn expire_exports_from(
        &self,
        account: AccountId,
        first_seq: u64,
    ) -> Result<Vec<ExportJob>>;

    /// Whether an export of the account is queued or running (an erasure
    /// finishes after it, so that no file written from the values before
    /// they were erased outlives it).
    async fn export_in_progress(&self, account: AccountId) -> Result<bool>;
}
