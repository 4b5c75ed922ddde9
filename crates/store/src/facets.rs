//! The distinct actors and projects of an account, for the console's User
//! type-ahead and Project select. Backends keep these as small side tables
//! updated on append, so that listing them never scans the events.

use crate::{AccountId, Result};
use async_trait::async_trait;

/// An actor as last seen in the account's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorSummary {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

#[async_trait]
pub trait Facets: Send + Sync {
    /// Up to `limit` actors of the account, ordered by id.
    async fn actors(&self, account: AccountId, limit: usize) -> Result<Vec<ActorSummary>>;
    /// Up to `limit` distinct non-empty projects of the account, ordered by name.
    async fn projects(&self, account: AccountId, limit: usize) -> Result<Vec<String>>;
}
