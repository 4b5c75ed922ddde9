//! The storage boundary: what a backend must do, as traits split by role so
//! that each caller depends on only what it uses, and so that the embedded
//! (SQLite) and the PostgreSQL backends implement the same contract. No
//! driver type crosses this boundary: backends map their errors into
//! [`StoreError`].
//!
//! # Layout
//!
//! - This root: the shared types (`Account`, `User`, `Scope`, `Role`,
//!   `EventRecord`, `Receipt`, `StoreError`, `WriteHealth`) and the role
//!   traits `EventAppender` (append only: no update or delete exists),
//!   `EventReader` and `Directory`.
//! - `backend`: `Store`, every role combined, as a server needs it.
//! - `sessions`, `facets`, `exports`, `tree`, `root_log`, `transfer`: the
//!   other roles (console sessions; an account's actors and projects; the
//!   export queue with leases; tree hashes and checkpoints; the root log of
//!   account checkpoints, its cosignatures and its submitter's lease; `copy`
//!   between backends).
//! - `removal`: removing event bodies under a covering record (pruning,
//!   erasure), with the tombstones that keep ids; `holds`: legal holds;
//!   `users`: console users as admins manage them (roles, disabling,
//!   sign-in links, passwords, each user's sessions);
//!   `retention`: the policy and the resumable prune jobs.
//! - `group_commit`, `append_plan`: what both backends' appenders share:
//!   gathering concurrent requests into one transaction, and the
//!   idempotency planner.
//! - `taxonomies`: editing an account's taxonomy in one transaction;
//!   `two_factor`: console users' TOTP enrolments and recovery codes.
//! - `personal_paths`: the `details` paths an account declares personal,
//!   which the appenders read when they seal each request.
//! - `day_ranges`: the time ranges and UTC days of the per-day rollups
//!   both backends keep (pure: which days a histogram reads whole).
//! - `entries`: the bodies of a run of entries for C2SP entry bundles, and
//!   the one decision whether a body is still present (pruned: absent).
//! - `entry_check`: the checks of one stored event against its leaf (what
//!   `auditlog verify` runs on every event, and the embedded store's
//!   migration to its event log before it moves one).
//! - `conformance` (with `exports_conformance`): the cases every backend
//!   must pass, with the `conformance_tests!` macro that makes one test per
//!   case; `samples`: the deterministic events they append. These three only
//!   with the `test-support` feature (the backends' dev-dependencies).

use async_trait::async_trait;
use auditlog_core::leaf_v2::Source;
use auditlog_core::ErrorChain;
use auditlog_core::{Cursor, EventFilter, Interval, NewEvent, StoredRecord, Taxonomy, Timestamp};
use std::sync::Arc;

#[cfg(feature = "test-support")]
pub mod admin_conformance;
pub mod append_plan;
mod backend;
#[cfg(feature = "test-support")]
pub mod conformance;
pub mod day_ranges;
pub mod entries;
pub mod entry_check;
pub mod erasure;
pub mod facets;
pub mod group_commit;
pub mod holds;
pub mod leaf_codec;
pub mod log_key;
pub mod personal_paths;
pub mod removal;
pub mod retention;
pub mod rollup_filters;
pub mod root_log;
#[cfg(feature = "test-support")]
pub mod samples;
pub mod sealing;
pub mod search_plan;
pub mod sessions;
pub mod streams;
pub mod taxonomies;
pub mod tree;
pub mod two_factor;
pub mod users;

pub use backend::Store;
pub use erasure::{
    ErasedEvent, Erasure, ErasureId, ErasurePlan, ErasureProgress, ErasureStatus, Erasures,
    SubjectEvents,
};
pub use facets::{ActorSummary, Facets};
pub use holds::{Hold, HoldId, Holds, NewHold};
pub use personal_paths::PersonalPaths;
pub use removal::{RemovalKind, Removals, RemovedBody, SpaceReport, Tombstone};
pub use retention::{PruneJob, PruneJobId, PrunePlan, PruneProgress, PruneStatus, Retention};
pub use root_log::{RootLeaf, RootLogStore, StoredCosignature};
pub use sessions::{NewSession, SessionGrant, Sessions};
pub use streams::{
    BatchRecord, Delivery, LogStream, LogStreams, NewStream, StreamChange, StreamId, StreamStatus,
};
pub use taxonomies::{EditOutcome, Taxonomies};
pub use tree::{key_hash64, IndexedColumns, KeyColumn, ScannedEvent, StoredCheckpoint, TreeStore};
pub use two_factor::{TwoFactor, TwoFactorRecord};
pub use users::{ChangeOutcome, NewSignInLink, SessionInfo, UserChange, UserInfo, Users};
pub mod exports;
#[cfg(feature = "test-support")]
pub mod exports_conformance;
#[cfg(feature = "test-support")]
pub mod removal_conformance;
#[cfg(feature = "test-support")]
pub mod root_log_conformance;
#[cfg(feature = "test-support")]
pub mod search_conformance;
#[cfg(feature = "test-support")]
pub mod streams_conformance;
pub mod transfer;

pub use exports::{
    Compression, ExportFormat, ExportId, ExportJob, ExportJobs, ExportOutcome, ExportStatus,
    NewExportJob,
};

pub type AccountId = i64;

/// One tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub taxonomy: Taxonomy,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Ingest,
    Read,
    /// Administration (log streams, and later users, keys, retention):
    /// an admin key can send the account's events anywhere, so it implies
    /// `read` (see [`Scope::grants`]).
    Admin,
}

impl Scope {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ingest" => Some(Scope::Ingest),
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    /// Whether a key with this scope may do what `needed` allows: itself,
    /// and `read` for `admin`.
    pub fn grants(self, needed: Scope) -> bool {
        self == needed || (self == Scope::Admin && needed == Scope::Read)
    }
}

/// An API key found by its hash: the account it belongs to and its scopes.
#[derive(Debug, Clone)]
pub struct ApiKeyGrant {
    pub key_id: i64,
    /// The key's public id (`source.key` of what it stores), stable across
    /// `auditlog copy`; never the secret.
    pub public_id: String,
    /// The key's name; empty until keys are named.
    pub name: String,
    pub account: Account,
    pub scopes: Vec<Scope>,
    /// When the key stops working, if ever (the store refuses it after).
    pub expires_at: Option<Timestamp>,
}

/// What is stored for a new API key; never its secret.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub account_id: AccountId,
    /// SHA-256 of the secret.
    pub key_hash: [u8; 32],
    /// The secret's first characters, shown in listings so that people can
    /// tell their keys apart (too short to guess the rest from).
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<Timestamp>,
    /// Who created it: `user:<id>`, `api-key:<public id>` or `cli`.
    pub created_by: String,
    pub created_at: Timestamp,
}

/// An API key as listings show it: never the secret nor its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub public_id: String,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<Timestamp>,
    pub created_by: String,
    pub created_at: Timestamp,
    /// To the minute; `None` if never used.
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A console user's role (SPEC "Concepts").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sees audit data and administers the account.
    Admin,
    /// Sees audit data, creates and downloads exports, reads proofs;
    /// changes nothing and sees no settings pages.
    Auditor,
    /// Signs in but sees no audit data.
    Member,
}

impl Role {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Member => "member",
        }
    }

    /// Whether the role sees audit logs and exports.
    pub fn sees_audit_data(self) -> bool {
        matches!(self, Role::Admin | Role::Auditor)
    }
}

/// A console user. `password_hash` is a PHC string (argon2id), never the password.
#[derive(Clone)]
pub struct User {
    pub id: i64,
    pub account_id: AccountId,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
}

impl std::fmt::Debug for User {
    /// Leaves the password hash out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A stored event as the store hands it out: the exact leaf bytes and hash,
/// and for a version 2 leaf the personal values kept beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub seq: u64,
    pub time: Timestamp,
    pub leaf_bytes: Vec<u8>,
    pub leaf_hash: [u8; 32],
    /// `auditlog_core::leaf_v2::open` reads them; `None` for a version 1 leaf.
    pub personal: Option<Vec<u8>>,
}

impl EventRecord {
    /// The borrowed record that serves and reads the event (v1 or v2).
    pub fn stored(&self) -> StoredRecord<'_> {
        StoredRecord::new(&self.leaf_bytes, self.personal.as_deref())
    }
}

/// The answer for one appended event, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: String,
    pub seq: u64,
    pub hash: [u8; 32],
    /// False when the event was already stored with the same content (an idempotent retry).
    pub created: bool,
}

/// One page of a newest-first walk.
#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<EventRecord>,
    pub next_cursor: Option<Cursor>,
}

/// One non-empty histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub start: Timestamp,
    pub count: u64,
}

/// What a backend's driver, the file system or another layer reported, kept
/// as the cause of a [`StoreError`]. Shared, so that one failed group commit
/// can answer each of its requests with the same cause.
///
/// Not an `Error` itself but a `Deref` to the error it holds, so that
/// `StoreError::source` is the driver's error (which callers may downcast),
/// not a wrapper around it.
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(error))
    }
}

impl std::ops::Deref for Cause {
    type Target = dyn std::error::Error + Send + Sync;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a store operation failed. `Display` says it in the store's words;
/// the driver's error, if any, is the [`source`](std::error::Error::source),
/// so print [`ErrorChain`] to show both.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// An event id already exists in the account with different content.
    #[error("event {index} (id {id:?}) conflicts with a stored event that has the same id and different content")]
    Conflict { index: usize, id: String },
    /// An event's leaf would exceed the largest log entry.
    #[error("event {index} (id {id:?}) would be a leaf of {bytes} bytes; a log entry holds at most {limit}")]
    TooLarge {
        index: usize,
        id: String,
        bytes: usize,
        limit: usize,
    },
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} was not found")]
    NotFound(String),
    /// The store cannot take writes right now (busy, an I/O error, shutting
    /// down); nothing was stored. Clients may retry.
    #[error("storage is unavailable: {what}")]
    Unavailable {
        what: String,
        #[source]
        cause: Option<Cause>,
    },
    /// The disk (or the database server's disk) has no room: the write was
    /// rolled back and nothing was stored. Clients may retry once an
    /// operator has freed space; no restart is needed.
    #[error("storage is full: {what}")]
    Full {
        what: String,
        #[source]
        cause: Option<Cause>,
    },
    /// A fault: stored data that cannot be read, a broken invariant.
    #[error("storage error: {what}")]
    Internal {
        what: String,
        #[source]
        cause: Option<Cause>,
    },
}

impl StoreError {
    /// The store cannot serve now, for a reason of its own.
    pub fn unavailable(what: impl Into<String>) -> Self {
        StoreError::Unavailable {
            what: what.into(),
            cause: None,
        }
    }

    /// The store cannot serve now because of `cause`.
    pub fn unavailable_caused_by(
        what: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Unavailable {
            what: what.into(),
            cause: Some(Cause::new(cause)),
        }
    }

    /// The disk is full, as `cause` says.
    pub fn full_caused_by(
        what: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Full {
            what: what.into(),
            cause: Some(Cause::new(cause)),
        }
    }

    /// A fault found by the store itself, such as a stored value it cannot read.
    pub fn internal(what: impl Into<String>) -> Self {
        StoreError::Internal {
            what: what.into(),
            cause: None,
        }
    }

    /// A fault that `cause` reported.
    pub fn internal_caused_by(
        what: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Internal {
            what: what.into(),
            cause: Some(Cause::new(cause)),
        }
    }

    /// What each request of a group whose transaction failed is told: the
    /// group was rolled back as a whole, so whatever the cause, nothing of
    /// any request was stored and a retry may succeed. A full disk stays
    /// `Full`, so that clients and operators learn why.
    pub fn for_rolled_back_request(&self) -> StoreError {
        match self {
            StoreError::Full { .. } | StoreError::Unavailable { .. } => self.clone(),
            other => {
                StoreError::unavailable_caused_by("the transaction was rolled back", other.clone())
            }
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How the last append transaction went, for `/readyz`: a full or failing
/// disk shows there before anyone reads the logs. It changes with the next
/// transaction, so it clears by itself once a retry succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteHealth {
    /// The last transaction committed (or none has run yet).
    Ok,
    /// The last transaction failed because the disk is full.
    Full { reason: String, since: Timestamp },
    /// The last transaction failed for another reason (an I/O error, ...).
    Failing { reason: String, since: Timestamp },
}

impl WriteHealth {
    /// What `cell` holds now; a poisoned cell (a writer panicked while
    /// recording) reads as failing.
    pub fn current(cell: &std::sync::Mutex<WriteHealth>) -> WriteHealth {
        cell.lock()
            .map(|health| health.clone())
            .unwrap_or_else(|_| WriteHealth::Failing {
                reason: "the writer's health record is poisoned".into(),
                since: Timestamp::now(),
            })
    }

    /// Records how a writer's transaction ended in `cell`, logging only the
    /// changes (failing, recovered), so that a full disk under steady traffic
    /// does not also flood the logs with one line per transaction.
    pub fn record<T>(cell: &std::sync::Mutex<WriteHealth>, outcome: &Result<T>) {
        let Ok(mut health) = cell.lock() else { return };
        let next = WriteHealth::after(&health, outcome);
        match (&*health, &next) {
            (
                WriteHealth::Ok,
                WriteHealth::Full { reason, .. } | WriteHealth::Failing { reason, .. },
            ) => {
                tracing::error!(%reason, "appends are failing: requests are answered 503 and nothing of them is stored, until a transaction succeeds again");
            }
            (
                WriteHealth::Full { since, .. } | WriteHealth::Failing { since, .. },
                WriteHealth::Ok,
            ) => {
                tracing::warn!(failing_since = %since.to_rfc3339(), "appends succeed again");
            }
            _ => {}
        }
        *health = next;
    }

    /// The health after a transaction that ended with `outcome`; `previous`
    /// keeps the time a run of failures began.
    pub fn after<T>(previous: &WriteHealth, outcome: &Result<T>) -> WriteHealth {
        let since = match previous {
            WriteHealth::Ok => Timestamp::now(),
            WriteHealth::Full { since, .. } | WriteHealth::Failing { since, .. } => *since,
        };
        match outcome {
            Ok(_) => WriteHealth::Ok,
            Err(e @ StoreError::Full { .. }) => WriteHealth::Full {
                reason: ErrorChain(e).to_string(),
                since,
            },
            Err(e) => WriteHealth::Failing {
                reason: ErrorChain(e).to_string(),
                since,
            },
        }
    }
}

/// The only write path for events: append. There is deliberately no update
/// or delete here or anywhere else.
#[async_trait]
pub trait EventAppender: Send + Sync {
    /// Stores `events` atomically (all or none) with the next gapless `seq`s
    /// of the account, as version 2 leaves naming `source`, and returns once
    /// they are durable. An event whose id is already stored with the same
    /// content is not stored again (`source` is not part of the content).
    async fn append_from(
        &self,
        account: &Account,
        source: &Source,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Receipt>>;

    /// [`append_from`](Self::append_from) with `source` system: Auditlog's
    /// own events (demo data, samples, tests).
    async fn append(&self, account: &Account, events: Vec<NewEvent>) -> Result<Vec<Receipt>> {
        self.append_from(account, &Source::System, events).await
    }
}

#[async_trait]
pub trait EventReader: Send + Sync {
    /// Newest first by (time, seq); `limit` events at most.
    async fn query(
        &self,
        account: AccountId,
        filter: &EventFilter,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<Page>;

    /// One event by its id.
    async fn get(&self, account: AccountId, id: &str) -> Result<Option<EventRecord>>;

    /// Counts per bucket, oldest first, non-empty buckets only.
    async fn histogram(
        &self,
        account: AccountId,
        filter: &EventFilter,
        interval: Interval,
    ) -> Result<Vec<Bucket>>;

    /// The account's highest `seq` (its tree size), 0 when empty.
    async fn last_seq(&self, account: AccountId) -> Result<u64>;

    /// The events with `after_seq < seq <= through_seq` that match
    /// `filter`, in seq order: how the live tail reads the log, one bounded
    /// window of seqs at a time, never the whole log. The caller takes
    /// `through_seq` from [`last_seq`](Self::last_seq), so every seq in the
    /// window is committed and the window's answer is final.
    async fn events_in_seq_range(
        &self,
        account: AccountId,
        filter: &EventFilter,
        after_seq: u64,
        through_seq: u64,
    ) -> Result<Vec<EventRecord>>;
}

/// Accounts, API keys and console users.
#[async_trait]
pub trait Directory: Send + Sync {
    /// Creates an account with the default taxonomy.
    async fn create_account(&self, name: &str) -> Result<Account>;
    async fn account_by_name(&self, name: &str) -> Result<Option<Account>>;
    async fn account_by_id(&self, id: AccountId) -> Result<Option<Account>>;
    async fn accounts(&self) -> Result<Vec<Account>>;
    /// Stores a key by the SHA-256 of its secret; the secret itself is never stored.
    async fn create_named_api_key(&self, key: NewApiKey) -> Result<ApiKeyInfo>;
    /// [`Self::create_named_api_key`] without a name, expiry or creator.
    async fn create_api_key(
        &self,
        account: AccountId,
        key_hash: [u8; 32],
        scopes: &[Scope],
    ) -> Result<i64> {
        let key = NewApiKey {
            account_id: account,
            key_hash,
            prefix: String::new(),
            name: String::new(),
            scopes: scopes.to_vec(),
            expires_at: None,
            created_by: String::new(),
            created_at: Timestamp::now(),
        };
        Ok(self.create_named_api_key(key).await?.id)
    }
    /// The key with this hash if it is neither revoked nor expired now:
    /// the check is in the query that authenticates.
    async fn api_key_by_hash(&self, key_hash: [u8; 32]) -> Result<Option<ApiKeyGrant>>;
    /// The account's keys, revoked and expired ones included, oldest first.
    async fn list_api_keys(&self, account: AccountId) -> Result<Vec<ApiKeyInfo>>;
    /// Revokes the account's key with this public id at `now`; `None` if
    /// there is none. A key revoked before keeps its first revocation time.
    async fn revoke_api_key(
        &self,
        account: AccountId,
        public_id: &str,
        now: Timestamp,
    ) -> Result<Option<ApiKeyInfo>>;
    /// Records a use of the key at `minute` (a whole minute) unless one at
    /// that minute or later is recorded: at most one write per key and minute.
    async fn touch_api_key(&self, key_id: i64, minute: Timestamp) -> Result<()>;
    async fn create_user(
        &self,
        account: AccountId,
        email: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User>;
    async fn user_by_email(&self, account: AccountId, email: &str) -> Result<Option<User>>;
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn admin_implies_read_and_nothing_else_implies_more() {
        for scope in [Scope::Ingest, Scope::Read, Scope::Admin] {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            assert!(scope.grants(scope));
        }
        assert!(Scope::Admin.grants(Scope::Read));
        assert!(!Scope::Admin.grants(Scope::Ingest));
        assert!(!Scope::Read.grants(Scope::Admin));
        assert!(!Scope::Ingest.grants(Scope::Read));
        assert_eq!(Scope::parse("Admin"), None);
    }

    #[test]
    fn a_rolled_back_request_keeps_the_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no room");
        let full = StoreError::full_caused_by("cannot append", io);
        let told = full.for_rolled_back_request();
        assert!(matches!(told, StoreError::Full { .. }));
        let cause = told.source().expect("the cause is kept");
        assert_eq!(
            cause.downcast_ref::<std::io::Error>().map(|e| e.kind()),
            Some(std::io::ErrorKind::StorageFull)
        );
        assert_eq!(
            ErrorChain(&told).to_string(),
            "storage is full: cannot append: no room"
        );

        // Any other failure becomes Unavailable, with the original as its cause.
        let fault = StoreError::internal("a stored hash is malformed");
        let told = fault.for_rolled_back_request();
        assert!(matches!(told, StoreError::Unavailable { .. }));
        assert_eq!(
            ErrorChain(&told).to_string(),
            "storage is unavailable: the transaction was rolled back: \
             storage error: a stored hash is malformed"
        );
    }
}
