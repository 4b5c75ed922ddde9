//! Export jobs: the queue that background workers take exports from, and the
//! record of each export that the Exports list shows.
//!
//! Unlike events, a job row changes (queued → running → completed → expired),
//! so it lives in its own table and its own trait. Claiming is one atomic
//! step with a lease (`claimed_until`): a worker that dies simply stops
//! renewing, and any worker (in this process after a restart, or another
//! server sharing the database) claims the job again once the lease has run
//! out. A PostgreSQL backend claims with
//! `UPDATE … WHERE id = (SELECT id … FOR UPDATE SKIP LOCKED) RETURNING …`.

use crate::{AccountId, Result};
use async_trait::async_trait;
use auditlog_core::Timestamp;

pub type ExportId = i64;

/// How many times a job is started before it is given up as failed, so that
/// an export that crashes its server cannot crash every restart forever.
pub const MAX_EXPORT_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
    /// A verifiable bundle (tar): leaf bytes, inclusion proofs, a signed
    /// checkpoint and a signed manifest (`auditlog_core::bundle`).
    Bundle,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "csv" => Some(Self::Csv),
            "jsonl" => Some(Self::Jsonl),
            "bundle" => Some(Self::Bundle),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Bundle => "bundle",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

impl Compression {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Self::None),
            "gzip" => Some(Self::Gzip),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Expired,
}

impl ExportStatus {
    pub const ALL: [ExportStatus; 5] = [
        Self::Queued,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Expired,
    ];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(Self::Queued),
            "running" => Some(Self::Running),
            "completed" => Some(Self::Completed),
            "failed" => Some(Self::Failed),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }
}

/// What an export request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExportJob {
    pub account_id: AccountId,
    /// The actor who asked: `api-key:7` or a console user's id.
    pub requested_by: String,
    pub format: ExportFormat,
    pub compression: Compression,
    /// `EventFilter::to_json` of the filters; kept as JSON so that the
    /// record shows exactly what was asked.
    pub filters: serde_json::Value,
    /// The account's highest `seq` when the export was created: the export
    /// holds only events up to it, however many arrive meanwhile.
    pub seq_bound: u64,
    pub created_at: Timestamp,
}

/// The outcome of a finished export file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOutcome {
    pub row_count: u64,
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the file as downloaded.
    pub sha256: String,
    /// The file's name inside the export directory.
    pub file_name: String,
    pub completed_at: Timestamp,
    pub expires_at: Timestamp,
}

/// One export job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportJob {
    pub id: ExportId,
    pub account_id: AccountId,
    pub requested_by: String,
    pub format: ExportFormat,
    pub compression: Compression,
    pub filters: serde_json::Value,
    pub seq_bound: u64,
    pub status: ExportStatus,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub row_count: Option<u64>,
    pub size_bytes: Option<u64>,
    pub sha256: Option<String>,
    pub file_name: Option<String>,
    pub error: Option<String>,
    /// How many times a worker has claimed it.
    pub attempts: u32,
    /// The worker holding the lease while `running`.
    pub claimed_by: Option<String>,
    pub claimed_until: Option<Timestamp>,
}

#[async_trait]
pub trait ExportJobs: Send + Sync {
    /// Stores a new job in status `queued`.
    async fn create_export(&self, job: NewExportJob) -> Result<ExportJob>;

    /// One job of `account`; `None` for another account's job.
    async fn export_by_id(&self, account: AccountId, id: ExportId) -> Result<Option<ExportJob>>;

    /// The account's jobs, newest first.
    async fn exports(&self, account: AccountId) -> Result<Vec<ExportJob>>;

    /// Atomically takes the oldest job that is `queued`, or `running` with a
    /// lease that ran out before `now` (its worker died), for `worker` until
    /// `lease_until`. At most one caller gets any one job. A reclaimed job
    /// that has already been started [`MAX_EXPORT_ATTEMPTS`] times is marked
    /// `failed` with a reason instead of being handed out again.
    async fn claim_export(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<ExportJob>>;

    /// Extends `worker`'s lease; false if the worker no longer holds the job
    /// (its lease ran out and another worker took it), so it must stop.
    async fn renew_export_lease(
        &self,
        id: ExportId,
        worker: &str,
        lease_until: Timestamp,
    ) -> Result<bool>;

    /// Records a finished file; false if `worker` no longer held the job.
    async fn complete_export(
        &self,
        id: ExportId,
        worker: &str,
        outcome: ExportOutcome,
    ) -> Result<bool>;

    /// Records a failure that a person can act on; false if `worker` no
    /// longer held the job.
    async fn fail_export(&self, id: ExportId, worker: &str, error: &str) -> Result<bool>;

    /// Puts a job back in the queue (the worker is shutting down at a safe
    /// point), without counting the attempt against it.
    async fn release_export(&self, id: ExportId, worker: &str) -> Result<bool>;

    /// Marks every completed job whose `expires_at` is at or before `now` as
    /// `expired` and returns them, so that the caller deletes their files.
    async fn expire_exports(&self, now: Timestamp) -> Result<Vec<ExportJob>>;

    /// How many jobs of every account are in each status (statuses with
    /// none may be left out), for `/metrics`.
    async fn count_exports_by_status(&self) -> Result<Vec<(ExportStatus, u64)>>;
}
