//! Console users as an account's admins manage them (issue 18): listing,
//! inviting with a role and a one-time sign-in link, changing the role,
//! disabling and re-enabling (never leaving the account without an active
//! admin), new sign-in links, password changes, and each user's own
//! sessions. A link's token and a session's secret are never stored, only
//! their SHA-256; a password only as its PHC hash.

use crate::{Account, AccountId, Result, Role};
use async_trait::async_trait;
use auditlog_core::Timestamp;

/// A console user as listings and the audit trail show them: never the
/// password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub id: i64,
    pub account_id: AccountId,
    pub email: String,
    pub role: Role,
    pub created_at: Timestamp,
    /// When an admin disabled the user; `None` while the user may sign in.
    pub disabled_at: Option<Timestamp>,
    /// When the password was last set; `None` until the first sign-in link
    /// is used (or for users created before issue 18).
    pub password_changed_at: Option<Timestamp>,
    /// When the user's unused sign-in link stops working, if there is one.
    pub sign_in_link_expires_at: Option<Timestamp>,
}

impl UserInfo {
    /// Whether the user counts as an active admin (the account must keep one).
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && self.disabled_at.is_none()
    }
}

/// A one-time sign-in link: the SHA-256 of its token (the token itself is
/// shown once and never stored) and its expiry.
#[derive(Clone)]
pub struct NewSignInLink {
    pub token_hash: [u8; 32],
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for NewSignInLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSignInLink")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What an admin changes about a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    Role(Role),
    /// Disables the user at this time: every session and sign-in link of
    /// the user is removed in the same transaction.
    Disable(Timestamp),
    Enable,
}

/// How a [`UserChange`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Applied (or nothing to apply: `before == after`).
    Changed {
        before: Box<UserInfo>,
        after: Box<UserInfo>,
    },
    /// The account has no user with that id.
    NotFound,
    /// Refused: it would leave the account without an active admin.
    LastAdmin,
}

/// One of a user's live sessions, as the Profile page lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Hex of the first 8 bytes of the session's token hash: names the
    /// session without revealing anything that signs in.
    pub id: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The number of hex digits of a [`SessionInfo::id`].
pub const SESSION_ID_HEX: usize = 16;

/// The session id of a token hash.
pub fn session_id(token_hash: &[u8; 32]) -> String {
    token_hash[..SESSION_ID_HEX / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bytes a session id names, if it is well-formed.
pub fn parse_session_id(id: &str) -> Option<Vec<u8>> {
    if id.len() != SESSION_ID_HEX || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..SESSION_ID_HEX)
        .step_by(2)
        .map(|i| u8::from_str_radix(&id[i..i + 2], 16).ok())
        .collect()
}

/// Console users. The last-admin rule is checked inside the transaction
/// that changes the user, under a lock every server sharing the database
/// respects (SQLite's write lock; PostgreSQL's lock on the account's row).
#[async_trait]
pub trait Users: Send + Sync {
    /// The account's users, oldest first, disabled ones included.
    async fn list_users(&self, account: AccountId) -> Result<Vec<UserInfo>>;
    async fn user_info(&self, account: AccountId, user_id: i64) -> Result<Option<UserInfo>>;
    /// Creates a user without a password, who signs in once `link` has set
    /// one. `AlreadyExists` if the email is taken in the account.
    async fn invite_user(
        &self,
        account: AccountId,
        email: &str,
        role: Role,
        link: NewSignInLink,
    ) -> Result<UserInfo>;
    /// Applies `change` unless it leaves no active admin.
    async fn change_user(
        &self,
        account: AccountId,
        user_id: i64,
        change: UserChange,
    ) -> Result<ChangeOutcome>;
    /// Replaces the user's sign-in link (a password reset); `None` if the
    /// account has no such user. Returns the user before and after.
    async fn set_sign_in_link(
        &self,
        account: AccountId,
        user_id: i64,
        link: NewSignInLink,
    ) -> Result<Option<(UserInfo, UserInfo)>>;
    /// The account and user of an unused, unexpired link of an enabled user.
    async fn sign_in_link(
        &self,
        token_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Option<(Account, UserInfo)>>;
    /// Uses the link: sets the password, removes the link and ends every
    /// session of the user, in one transaction. `None` if the link is
    /// unknown, used, expired or its user disabled. Returns the user before
    /// and after.
    async fn redeem_sign_in_link(
        &self,
        token_hash: [u8; 32],
        password_hash: &str,
        now: Timestamp,
    ) -> Result<Option<(Account, UserInfo, UserInfo)>>;
    /// Sets the user's password and ends every other session of the user
    /// (the one with `keep` stays). Returns the user before and after.
    async fn change_password(
        &self,
        user_id: i64,
        password_hash: &str,
        now: Timestamp,
        keep: [u8; 32],
    ) -> Result<Option<(UserInfo, UserInfo)>>;
    /// The user's sessions live at `now`, newest first.
    async fn user_sessions(&self, user_id: i64, now: Timestamp) -> Result<Vec<SessionInfo>>;
    /// Ends the user's session with this id; false if there is none.
    async fn end_user_session(&self, user_id: i64, session_id: &str) -> Result<bool>;
    /// The account's key for the keyed hash of attempted emails: the one
    /// stored, or `candidate` stored now if there is none yet (so that every
    /// server sharing the database uses the same key).
    async fn login_hash_key(&self, account: AccountId, candidate: [u8; 32]) -> Result<[u8; 32]>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_and_refuse_other_text() {
        let hash = [0xabu8; 32];
        let id = session_id(&hash);
        assert_eq!(id, "abababababababab");
        assert_eq!(parse_session_id(&id), Some(vec![0xab; 8]));
        assert_eq!(parse_session_id("abab"), None);
        assert_eq!(parse_session_id("zzzzzzzzzzzzzzzz"), None);
    }
}
