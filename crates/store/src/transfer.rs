//! Moving a whole store to another backend (`auditlog copy`): a source hands
//! out everything it holds with its identity (key hashes, password hashes,
//! events as exact leaf bytes in seq order), and a target takes events in
//! unchanged, with the same seqs, leaf bytes and hashes, so that every proof
//! made by the source still holds on the target.
//!
//! A store that pruned or erased carries that too: an event whose body was
//! removed comes as its tombstone ([`RemovedRecord`], with the tree's leaf
//! hash), an erased event with its erased form. The target's database
//! accepts a tombstone or an erased form only under a stored covering
//! record, which has a higher seq; so the copy imports the log first (the
//! removed events' leaf hashes only, erased events without their personal
//! values), then the records' coverage, then the tombstones and erased
//! forms ([`TransferTarget::import_removals`]).

use crate::{Account, AccountId, EventRecord, RemovalKind, Result, Role, Scope, Store};
use async_trait::async_trait;
use auditlog_core::{Taxonomy, Timestamp};

/// An API key as stored: its hash and scopes (the secret is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub key_hash: [u8; 32],
    pub scopes: Vec<Scope>,
    /// `source.key` of the events it stored: kept by the copy.
    pub public_id: String,
    pub name: String,
    /// The listing prefix, expiry, creator, creation and revocation travel with the
    /// key, so that a copy never brings a revoked or expired key back.
    pub prefix: String,
    pub expires_at: Option<Timestamp>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A console user as stored: the password hash (never a password), the
/// role, and whether (since when) the user is disabled. Sessions, sign-in
/// links and two-factor enrolments do not travel (docs/POSTGRES.md).
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user's id in the store it was read from (the target numbers its
    /// own users; events name users by this id, as `user:<id>`).
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
    pub password_changed_at: Option<Timestamp>,
}

impl std::fmt::Debug for UserRecord {
    /// Leaves the password hash out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .field("disabled_at", &self.disabled_at)
            .field("password_changed_at", &self.password_changed_at)
            .finish_non_exhaustive()
    }
}

/// An event whose body was removed, as a copy carries it: its tombstone
/// and its leaf hash (the tree's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedRecord {
    pub seq: u64,
    pub event_id: String,
    /// The `Auditlog Retention` or `Auditlog Erasure` record that covers it.
    pub record_seq: u64,
    pub kind: RemovalKind,
    pub leaf_hash: [u8; 32],
}

/// A store that can be copied from.
#[async_trait]
pub trait TransferSource: Store {
    async fn api_keys(&self, account: AccountId) -> Result<Vec<ApiKeyRecord>>;
    /// The account's users, oldest first, disabled ones included.
    async fn users(&self, account: AccountId) -> Result<Vec<UserRecord>>;
    /// Up to `limit` events with seq greater than `after_seq`, in seq order.
    async fn events_after(
        &self,
        account: AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>>;

    /// Up to `limit` tombstones with seq greater than `after_seq`, in seq
    /// order, with their leaf hashes.
    async fn removed_after(
        &self,
        account: AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<RemovedRecord>>;

    /// Up to `limit` erased events with seq greater than `after_seq`, in
    /// seq order: their seqs and erased forms (`leaf_v2::erased`).
    async fn erased_after(
        &self,
        account: AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>>;
}

/// A store that can be copied into (and read back, to check the copy).
#[async_trait]
pub trait TransferTarget: TransferSource {
    /// Stores `events` exactly as given, atomically. They must be the
    /// account's next seqs without a gap, and each hash must be its leaf's
    /// hash; anything else is refused and nothing is stored.
    async fn import_events(&self, account: &Account, events: Vec<EventRecord>) -> Result<()> {
        self.import_log(account, events, Vec::new()).await
    }

    /// Stores the account's next seqs: `events` exactly as given and, for
    /// each of `removed`, only its leaf hash in the tree (its tombstone
    /// follows with [`import_removals`](Self::import_removals)). Together
    /// they must be the account's next seqs without a gap; each event's
    /// hash must be its leaf's hash. An erased event is stored without its
    /// erased form, which also follows with `import_removals`. Atomic:
    /// anything else is refused and nothing is stored.
    async fn import_log(
        &self,
        account: &Account,
        events: Vec<EventRecord>,
        removed: Vec<RemovedRecord>,
    ) -> Result<()>;

    /// Stores tombstones and erased forms of events already imported with
    /// [`import_log`](Self::import_log), once their covering records'
    /// coverage is stored (`Removals::add_coverage`): the database refuses
    /// them otherwise. Ones already stored are skipped, so a copy resumes.
    async fn import_removals(
        &self,
        account: &Account,
        removed: &[RemovedRecord],
        erased: &[(u64, Vec<u8>)],
    ) -> Result<()>;

    /// Stores a key as the source held it: its hash, scopes, public id, name,
    /// prefix, expiry, creator and revocation. A key already there (a copy
    /// run again) takes the source's revocation if it has none of its own:
    /// a copy revokes, it never brings a revoked key back.
    async fn import_api_key(&self, account: AccountId, key: &ApiKeyRecord) -> Result<()>;

    /// Stores a user as the source held it, by email: password hash, role,
    /// times and disabled state. A user already there takes the source's
    /// password hash and role, and stays disabled if it is: a copy never
    /// enables a user. A user disabled by the copy loses every session and
    /// sign-in link, as when an admin disables one.
    async fn import_user(&self, account: AccountId, user: &UserRecord) -> Result<()>;

    /// Replaces the account's taxonomy (its custom event types and actions,
    /// retired ones included) with the source's.
    async fn import_taxonomy(&self, account: AccountId, taxonomy: &Taxonomy) -> Result<()>;
}
