//! Moving a whole store to another backend (`auditlog copy`): a source hands
//! out everything it holds with its identity (key hashes, password hashes,
//! events as exact leaf bytes in seq order), and a target takes events in
//! unchanged, with the same seqs, leaf bytes and hashes, so that every proof
//! made by the source still holds on the target.

use crate::{Account, AccountId, EventRecord, Result, Role, Scope, Store};
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
}

/// A store that can be copied into (and read back, to check the copy).
#[async_trait]
pub trait TransferTarget: TransferSource {
    /// Stores `events` exactly as given, atomically. They must be the
    /// account's next seqs without a gap, and each hash must be its leaf's
    /// hash; anything else is refused and nothing is stored.
    async fn import_events(&self, account: &Account, events: Vec<EventRecord>) -> Result<()>;

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
