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

use crate::{Account, AccountId, EventRecord, RemovalKind, Result, Scope, Store, User};
use async_trait::async_trait;
use auditlog_core::Timestamp;

/// An API key as stored: its hash and scopes (the secret is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub key_hash: [u8; 32],
    pub scopes: Vec<Scope>,
    /// `source.key` of the events it stored: kept by the copy.
    pub public_id: String,
    pub name: String,
    /// The listing prefix, expiry, creator and revocation travel with the
    /// key, so that a copy never brings a revoked or expired key back.
    pub prefix: String,
    pub expires_at: Option<Timestamp>,
    pub created_by: String,
    pub revoked_at: Option<Timestamp>,
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
    async fn users(&self, account: AccountId) -> Result<Vec<User>>;
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
    /// prefix, expiry, creator and revocation.
    async fn import_api_key(&self, account: AccountId, key: &ApiKeyRecord) -> Result<()>;
}
