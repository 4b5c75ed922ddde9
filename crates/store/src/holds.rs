//! Legal holds: while a hold matches an event, neither pruning nor erasure
//! removes it. A hold is account-wide, or limited by the query filters
//! (`filters`, the JSON of an export's filters: times mean the event's
//! `time`) and a search query `q` (read in `tz`); the server matches them
//! (`auditlog_server::holds`), the store only keeps them. Released holds
//! are kept, with who released them and when.

use crate::{AccountId, Result};
use async_trait::async_trait;
use auditlog_core::Timestamp;

pub type HoldId = i64;

/// A hold as an admin asked for it, checked by the API.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHold {
    pub name: String,
    pub reason: String,
    /// The query filters as the API's JSON (`{}`: every event).
    pub filters: serde_json::Value,
    /// A search query, if any.
    pub q: Option<String>,
    /// The time zone `q` is read in.
    pub tz: String,
    /// Who created it, as the audit event's actor id shows it.
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub id: HoldId,
    pub account_id: AccountId,
    pub name: String,
    pub reason: String,
    pub filters: serde_json::Value,
    pub q: Option<String>,
    pub tz: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub released_by: Option<String>,
    pub released_at: Option<Timestamp>,
}

impl Hold {
    pub fn is_active(&self) -> bool {
        self.released_at.is_none()
    }
}

/// At most this many active holds per account: each is matched against
/// every event pruning or erasure considers.
pub const MAX_ACTIVE_HOLDS: usize = 100;

#[async_trait]
pub trait Holds: Send + Sync {
    /// Stores a new active hold. `AlreadyExists` if an active hold of the
    /// account has the same name; `Conflict`-free: the API counts holds.
    async fn create_hold(&self, account: AccountId, hold: &NewHold) -> Result<Hold>;

    /// The account's holds, newest first; released ones only if asked.
    async fn holds(&self, account: AccountId, include_released: bool) -> Result<Vec<Hold>>;

    async fn hold(&self, account: AccountId, id: HoldId) -> Result<Option<Hold>>;

    /// Releases an active hold; `NotFound` if the account has no active
    /// hold with this id.
    async fn release_hold(&self, account: AccountId, id: HoldId, by: &str) -> Result<Hold>;
}
