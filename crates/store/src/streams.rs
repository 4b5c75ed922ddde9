//! Log streams: destinations that an account's events are pushed to (a
//! webhook first), each with its cursor — the highest seq examined,
//! delivered or filtered out — and the bounds of the batch in flight.
//!
//! Delivery is at least once: a runner persists a batch's bounds before
//! sending it ([`LogStreams::begin_batch`]), and moves the cursor only once
//! the destination accepted it ([`LogStreams::record_delivery`]), so a
//! runner that dies mid-batch leaves the same bounds for whoever takes the
//! stream over, who sends the same batch again (the same `webhook-id`).
//!
//! Like export jobs, a stream is taken with a lease (`claimed_until`): one
//! runner of one server at a time delivers it, renewing the lease while it
//! runs; when its server dies the lease runs out and another server's
//! worker claims it. A PostgreSQL backend claims with `FOR UPDATE SKIP
//! LOCKED`.

use crate::{AccountId, Result};
use async_trait::async_trait;
use auditlog_core::Timestamp;

pub type StreamId = i64;

/// At most this many streams per account (SPEC).
pub const MAX_STREAMS_PER_ACCOUNT: usize = 20;
/// The batches of a stream's history that are kept (newest).
pub const BATCH_HISTORY: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    /// Delivering.
    Active,
    /// Stopped by an admin; keeps its place.
    Paused,
    /// Failing for longer than the configured time; still retried, keeps its place.
    Failing,
    /// Stopped by the destination (410 Gone); an admin may resume it.
    Disabled,
}

impl StreamStatus {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(Self::Active),
            "paused" => Some(Self::Paused),
            "failing" => Some(Self::Failing),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Failing => "failing",
            Self::Disabled => "disabled",
        }
    }

    /// Whether a runner delivers it.
    pub fn delivers(self) -> bool {
        matches!(self, Self::Active | Self::Failing)
    }
}

/// A new stream as the API checked it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStream {
    pub account_id: AccountId,
    /// `webhook`.
    pub kind: String,
    /// `native`.
    pub format: String,
    pub url: String,
    /// The query filters as the API's JSON (like an export's `filters`).
    pub filters: serde_json::Value,
    /// The secret, sealed (encrypted) by the server: the store never sees it in clear.
    pub sealed_secret: Vec<u8>,
    /// Per-kind settings, a JSON object: a Splunk HEC stream's `index` and
    /// `sourcetype`; a TLS client certificate chain (`client_certificate`, PEM).
    pub options: serde_json::Value,
    /// The TLS client certificate's private key, sealed by the server; `None`: no client certificate.
    pub sealed_client_key: Option<Vec<u8>>,
    /// Where delivery starts: the highest seq already examined.
    pub cursor: u64,
    pub created_at: Timestamp,
}

/// A stream as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LogStream {
    pub id: StreamId,
    pub account_id: AccountId,
    pub kind: String,
    pub format: String,
    pub url: String,
    pub filters: serde_json::Value,
    pub sealed_secret: Vec<u8>,
    /// Per-kind settings (see [`NewStream::options`]).
    pub options: serde_json::Value,
    /// The TLS client key, sealed; `None`: no client certificate.
    pub sealed_client_key: Option<Vec<u8>>,
    pub status: StreamStatus,
    /// The highest seq examined (delivered or filtered out).
    pub cursor: u64,
    /// The batch in flight: (first seq, last seq) examined, persisted
    /// before it is sent and cleared once it was accepted.
    pub pending: Option<(u64, u64)>,
    /// Failed attempts of the pending batch.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Since when deliveries fail (none while they succeed).
    pub failing_since: Option<Timestamp>,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What an admin changes; `None` keeps the value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamChange {
    pub url: Option<String>,
    pub filters: Option<serde_json::Value>,
    pub sealed_secret: Option<Vec<u8>>,
    /// New per-kind settings (the whole object).
    pub options: Option<serde_json::Value>,
    /// A new TLS client key (`Some(None)`: none any more).
    pub sealed_client_key: Option<Option<Vec<u8>>>,
    /// A new status (pause, resume); resuming clears the failure record.
    pub status: Option<StreamStatus>,
    /// Replay: the new cursor; the pending batch and its attempts are dropped.
    pub cursor: Option<u64>,
}

/// One batch in a stream's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    pub first_seq: u64,
    pub last_seq: u64,
    /// Events sent in it (those the filter kept).
    pub events: u64,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// `delivered` or `failed`.
    pub status: String,
    /// The destination's answer (status and the start of the body) or the error.
    pub response: String,
    pub at: Timestamp,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Accepted (or nothing to send): the cursor moves from `from` to
    /// `through`, the pending batch and the failure record are cleared.
    /// Only if the cursor is still `from`: a replay meanwhile wins.
    Accepted {
        from: u64,
        through: u64,
        batch: Option<BatchRecord>,
        /// The bounds of the next batch, persisted in the same commit (what
        /// [`LogStreams::begin_batch`] would do in a second one): a runner
        /// that read the next window while this batch was in flight begins
        /// it with this batch's acceptance. Set only if the stream still
        /// delivers.
        next: Option<(u64, u64)>,
    },
    /// Refused or unreachable: the attempt is counted, the cursor stays.
    Failed {
        batch: BatchRecord,
        /// `Active`, `Failing` (failing too long) or `Disabled` (410).
        status: StreamStatus,
        error: String,
    },
}

#[async_trait]
pub trait LogStreams: Send + Sync {
    async fn create_stream(&self, stream: NewStream) -> Result<LogStream>;

    /// The account's streams, oldest first.
    async fn streams(&self, account: AccountId) -> Result<Vec<LogStream>>;

    /// One stream of `account`; `None` for another account's.
    async fn stream_by_id(&self, account: AccountId, id: StreamId) -> Result<Option<LogStream>>;

    /// Applies `change`; `None` if the account has no such stream.
    async fn change_stream(
        &self,
        account: AccountId,
        id: StreamId,
        change: StreamChange,
        now: Timestamp,
    ) -> Result<Option<LogStream>>;

    /// Deletes the stream and its history; false if there was none.
    async fn delete_stream(&self, account: AccountId, id: StreamId) -> Result<bool>;

    /// Atomically takes a stream that delivers (`active` or `failing`) and
    /// that nobody holds (no lease, or one that ran out before `now`), for
    /// `worker` until `lease_until`. At most one caller gets any one stream.
    async fn claim_stream(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<LogStream>>;

    /// Extends `worker`'s lease and returns the stream as it is now (an
    /// admin may have changed it); `None` when `worker` no longer holds it.
    async fn renew_stream(
        &self,
        id: StreamId,
        worker: &str,
        lease_until: Timestamp,
    ) -> Result<Option<LogStream>>;

    /// Gives the stream up (shutdown, paused); false if not held.
    async fn release_stream(&self, id: StreamId, worker: &str) -> Result<bool>;

    /// Persists the bounds of the batch about to be sent; false if not
    /// held, or if the stream no longer delivers (paused or disabled
    /// meanwhile: the runner stops before sending another batch).
    async fn begin_batch(&self, id: StreamId, worker: &str, first: u64, last: u64) -> Result<bool>;

    /// Records how an attempt ended (and the batch in the history); false
    /// if `worker` no longer holds the stream or (for `Accepted`) its cursor
    /// moved meanwhile (a replay): nothing is changed then, and the runner
    /// reads the stream again. Also false when an `Accepted` with `next`
    /// was recorded but the next batch could not begin because the stream
    /// no longer delivers (paused or disabled meanwhile): the runner reads
    /// the stream again, and stops.
    async fn record_delivery(
        &self,
        id: StreamId,
        worker: &str,
        delivery: Delivery,
        now: Timestamp,
    ) -> Result<bool>;

    /// The lowest seq of `account` received at or after `since` (a replay
    /// from a time); `None` when every event was received before it.
    async fn first_seq_received_since(
        &self,
        account: AccountId,
        since: Timestamp,
    ) -> Result<Option<u64>>;

    /// The most recent batches, newest first.
    async fn stream_batches(
        &self,
        account: AccountId,
        id: StreamId,
        limit: usize,
    ) -> Result<Vec<BatchRecord>>;
}
