//! Moving a whole store to another backend (`auditlog copy`): a source hands
//! out everything it holds with its identity (key hashes, password hashes,
//! events as exact leaf bytes in seq order), and a target takes events in
//! unchanged, with the same seqs, leaf bytes and hashes, so that every proof
//! made by the source still holds on the target.

use crate::{Account, AccountId, EventRecord, Result, Scope, Store, User};
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
}

/// A store that can be copied into (and read back, to check the copy).
#[async_trait]
pub trait TransferTarget: TransferSource {
    /// Stores `events` exactly as given, atomically. They must be the
    /// account's next seqs without a gap, and each hash must be its leaf's
    /// hash; anything else is refused and nothing is stored.
    async fn import_events(&self, account: &Account, events: Vec<EventRecord>) -> Result<()>;

    /// Stores a key as the source held it: its hash, scopes, public id, name,
    /// prefix, expiry, creator and revocation.
    async fn import_api_key(&self, account: AccountId, key: &ApiKeyRecord) -> Result<()>;
}
