//! Console sign-in sessions. The session secret lives only in the visitor's
//! cookie; the store keeps its SHA-256, so that a copy of the database does
//! not let anyone sign in. Each session carries its own CSRF token and an
//! absolute expiry.

use crate::{Account, Result, User};
use async_trait::async_trait;
use auditlog_core::Timestamp;

/// What is stored for a new session.
#[derive(Clone)]
pub struct NewSession {
    /// SHA-256 of the cookie's secret.
    pub token_hash: [u8; 32],
    pub user_id: i64,
    /// Sent in every state-changing form and compared on the server.
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A live session found by its token hash: who is signed in, to which account.
#[derive(Clone)]
pub struct SessionGrant {
    pub user: User,
    pub account: Account,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for SessionGrant {
    /// Leaves the CSRF token out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionGrant")
            .field("user", &self.user)
            .field("account", &self.account.name)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait Sessions: Send + Sync {
    async fn create_session(&self, session: NewSession) -> Result<()>;
    /// The session with this token hash if it has not expired at `now`.
    async fn session_by_token_hash(
        &self,
        token_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Option<SessionGrant>>;
    /// Ends a session (sign-out). Deleting an unknown session is not an error.
    async fn delete_session(&self, token_hash: [u8; 32]) -> Result<()>;
    /// Forgets sessions that expired before `now`; returns how many.
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64>;
}
