//! Two-factor sign-in (TOTP) state of console users (issue 18): the sealed
//! secret (sealed by the server under a key kept outside the database; the
//! store never sees it in clear), whether enrolment is confirmed, the last
//! time step accepted (so that no code is used twice, on any server), the
//! SHA-256 of each one-time recovery code, and the account's requirement.
//! Every check-and-update is one statement or one transaction, so two
//! servers accepting the same code at once cannot both succeed.

use crate::{AccountId, Result};
use async_trait::async_trait;
use auditlog_core::Timestamp;

/// A user's TOTP enrolment.
#[derive(Clone, PartialEq, Eq)]
pub struct TwoFactorRecord {
    pub user_id: i64,
    /// The secret, sealed by the server; never stored in clear.
    pub sealed_secret: Vec<u8>,
    /// `None` while enrolment waits for its first code.
    pub confirmed_at: Option<Timestamp>,
    /// The last time step a code was accepted in; `None` before the first.
    pub last_step: Option<u64>,
}

impl std::fmt::Debug for TwoFactorRecord {
    /// Leaves the sealed secret out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwoFactorRecord")
            .field("user_id", &self.user_id)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait TwoFactor: Send + Sync {
    /// The user's enrolment, confirmed or pending; `None` if none.
    async fn two_factor(&self, user_id: i64) -> Result<Option<TwoFactorRecord>>;
    /// Starts (or restarts) an enrolment with `sealed_secret`; refused
    /// (`AlreadyExists`) while a confirmed one exists.
    async fn begin_two_factor(
        &self,
        user_id: i64,
        sealed_secret: &[u8],
        now: Timestamp,
    ) -> Result<()>;
    /// Confirms the pending enrolment with a code of `step`, replacing the
    /// recovery codes with `recovery_hashes`; false if there is no pending
    /// enrolment (confirmed meanwhile, or never begun).
    async fn confirm_two_factor(
        &self,
        user_id: i64,
        step: u64,
        recovery_hashes: &[[u8; 32]],
        now: Timestamp,
    ) -> Result<bool>;
    /// Records that a code of `step` was accepted, if `step` is later than
    /// the last one: false when it is not (a code used twice).
    async fn accept_two_factor_step(&self, user_id: i64, step: u64) -> Result<bool>;
    /// Uses up the recovery code with this hash: false if it is not one of
    /// the user's unused codes.
    async fn use_recovery_code(
        &self,
        user_id: i64,
        code_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<bool>;
    /// How many of the user's recovery codes are unused.
    async fn recovery_codes_left(&self, user_id: i64) -> Result<u32>;
    /// Removes the enrolment and recovery codes; false if there was none.
    async fn disable_two_factor(&self, user_id: i64) -> Result<bool>;
    /// Whether the account requires two-factor sign-in.
    async fn two_factor_required(&self, account: AccountId) -> Result<bool>;
    /// Sets the requirement; returns the previous value.
    async fn set_two_factor_required(&self, account: AccountId, required: bool) -> Result<bool>;
}
