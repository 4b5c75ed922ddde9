//! Managing an account's console users (issue 18), shared by
//! `/api/v1/users`, the console's Settings > Users and Profile pages and
//! the CLI: inviting a user with a role and a one-time sign-in link (valid
//! 24 h, which sets the password; only its SHA-256 is stored), changing
//! the role, disabling (every session ends at once, on every server, since
//! each request reads its session from the store) and re-enabling, a new
//! link as a password reset, and a user's own password change. The last
//! active admin can be neither disabled nor demoted (the store checks it in
//! the changing transaction). Every change is audited (`audit`) as an
//! `Auditlog User` event; failed sign-ins (`login_failure`) as
//! `Authentication` `Login Failed`.

pub mod audit;
pub mod login_failure;

use crate::exports::audit::AuditActor;
use crate::tokens;
use auditlog_core::email::Email;
use auditlog_core::{FieldError, Timestamp};
use auditlog_store::{
    Account, ChangeOutcome, NewSignInLink, Role, Store, StoreError, UserChange, UserInfo,
};

/// How long a sign-in link works.
pub const SIGN_IN_LINK_HOURS: i64 = 24;
/// Where a sign-in link points; the token follows.
pub const SIGN_IN_LINK_PATH: &str = "/welcome/";
/// The shortest password accepted (as the CLI has always required).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted: argon2 hashes anything, but a megabyte
/// of "password" is only a way to spend the server's time.
pub const MAX_PASSWORD_CHARS: usize = 1_000;

/// Why a user change was not made.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{}", .0.message)]
    Invalid(FieldError),
    #[error("the account has no such user")]
    NotFound,
    #[error("a user with this email already exists in the account")]
    AlreadyExists,
    #[error("the account must keep an active admin: this change would leave it with none")]
    LastAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A one-time sign-in link: its token (shown once, never stored) and expiry.
pub struct SignInLink {
    pub token: String,
    pub expires_at: Timestamp,
}

impl SignInLink {
    /// The path the link opens (`/welcome/<token>`).
    pub fn path(&self) -> String {
        format!("{SIGN_IN_LINK_PATH}{}", self.token)
    }
}

impl std::fmt::Debug for SignInLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInLink")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A fresh link at `now`: what the store keeps and what the admin is shown.
fn new_link(now: Timestamp) -> (NewSignInLink, SignInLink) {
    let token = tokens::random_token(32);
    let expires_at = Timestamp::from_micros(now.micros() + SIGN_IN_LINK_HOURS * 3_600_000_000);
    (
        NewSignInLink {
            token_hash: tokens::hash_api_key(&token),
            created_at: now,
            expires_at,
        },
        SignInLink { token, expires_at },
    )
}

/// `role` as given, or a field error naming the roles.
pub fn parse_role(text: &str) -> Result<Role, FieldError> {
    Role::parse(text.trim()).ok_or_else(|| {
        FieldError::new(
            "role",
            "unknown_role",
            format!("unknown role {text:?}; use admin, auditor or member"),
        )
    })
}

/// Checks a new password: 12 to 1,000 characters.
pub fn check_password(field: &str, password: &str) -> Result<(), FieldError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(FieldError::new(
            field,
            "too_short",
            format!("{field} must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("{field} must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// An argon2 hash of `password`, off the async workers (it is slow on purpose).
pub async fn hash_password(password: String) -> Result<String, StoreError> {
    tokio::task::spawn_blocking(move || tokens::hash_password(&password))
        .await
        .map_err(|e| StoreError::internal_caused_by("password hashing stopped", e))?
        .map_err(|e| StoreError::internal_caused_by("cannot hash a password", e))
}

/// Whether `password` is the one `phc` hashes, off the async workers.
pub async fn verify_password(password: String, phc: String) -> Result<bool, StoreError> {
    tokio::task::spawn_blocking(move || tokens::verify_password(&password, &phc))
        .await
        .map_err(|e| StoreError::internal_caused_by("password verification stopped", e))
}

/// Invites `email` with `role`; returns the user and the link that sets
/// the password, shown once.
pub async fn invite(
    store: &dyn Store,
    account: &Account,
    actor: &AuditActor,
    email: &str,
    role: Role,
) -> Result<(UserInfo, SignInLink), UserError> {
    let email = Email::parse(email).map_err(UserError::Invalid)?;
    let (stored, link) = new_link(Timestamp::now());
    let user = match store
        .invite_user(account.id, email.as_ref(), role, stored)
        .await
    {
        Ok(user) => user,
        Err(StoreError::AlreadyExists(_)) => return Err(UserError::AlreadyExists),
        Err(e) => return Err(e.into()),
    };
    audit::record(
        store,
        account,
        actor,
        audit::UserAction::Create,
        None,
        &user,
    )
    .await?;
    Ok((user, link))
}

/// Changes a user's role, or disables or enables the user, and audits it
/// (a change that changes nothing is not an event).
pub async fn change(
    store: &dyn Store,
    account: &Account,
    actor: &AuditActor,
    user_id: i64,
    change: UserChange,
) -> Result<UserInfo, UserError> {
    match store.change_user(account.id, user_id, change).await? {
        ChangeOutcome::NotFound => Err(UserError::NotFound),
        ChangeOutcome::LastAdmin => Err(UserError::LastAdmin),
        ChangeOutcome::Changed { before, after } => {
            let action = match change {
                UserChange::Role(_) => audit::UserAction::Update,
                UserChange::Disable(_) => audit::UserAction::Disable,
                UserChange::Enable => audit::UserAction::Enable,
            };
            if before != after {
                audit::record(store, account, actor, action, Some(&before), &after).await?;
            }
            Ok(*after)
        }
    }
}

/// A new sign-in link for the user (a password reset by an admin): the
/// previous link stops working; the current password keeps working until
/// the link sets a new one.
pub async fn reset_password(
    store: &dyn Store,
    account: &Account,
    actor: &AuditActor,
    user_id: i64,
) -> Result<(UserInfo, SignInLink), UserError> {
    let (stored, link) = new_link(Timestamp::now());
    let (before, after) = store
        .set_sign_in_link(account.id, user_id, stored)
        .await?
        .ok_or(UserError::NotFound)?;
    audit::record(
        store,
        account,
        actor,
        audit::UserAction::PasswordReset,
        Some(&before),
        &after,
    )
    .await?;
    Ok((after, link))
}

/// Sets the password through a sign-in link; `None` if the link is not
/// (or no longer) valid. Every session of the user ends. Audited as the
/// user's own `Password Change`.
pub async fn redeem(
    store: &dyn Store,
    token: &str,
    password: &str,
) -> Result<Option<(Account, UserInfo)>, UserError> {
    check_password("password", password).map_err(UserError::Invalid)?;
    let hash = hash_password(password.to_string()).await?;
    let Some((account, before, after)) = store
        .redeem_sign_in_link(tokens::hash_api_key(token), &hash, Timestamp::now())
        .await?
    else {
        return Ok(None);
    };
    let actor = audit::user_actor(&after);
    audit::record(
        store,
        &account,
        &actor,
        audit::UserAction::PasswordChange,
        Some(&before),
        &after,
    )
    .await?;
    Ok(Some((account, after)))
}

/// A signed-in user's own password change: the current password must be
/// right; every other session of the user ends.
pub async fn change_own_password(
    store: &dyn Store,
    account: &Account,
    user: &auditlog_store::User,
    session: [u8; 32],
    current: &str,
    new: &str,
) -> Result<UserInfo, UserError> {
    if !verify_password(current.to_string(), user.password_hash.clone()).await? {
        return Err(UserError::Invalid(FieldError::new(
            "current_password",
            "wrong_password",
            "the current password is not right",
        )));
    }
    check_password("new_password", new).map_err(UserError::Invalid)?;
    let hash = hash_password(new.to_string()).await?;
    let (before, after) = store
        .change_password(user.id, &hash, Timestamp::now(), session)
        .await?
        .ok_or(UserError::NotFound)?;
    let actor = audit::user_actor(&after);
    audit::record(
        store,
        account,
        &actor,
        audit::UserAction::PasswordChange,
        Some(&before),
        &after,
    )
    .await?;
    Ok(after)
}

/// `active`, `disabled` or `invited` (no password set yet).
pub fn status(user: &UserInfo) -> &'static str {
    if user.disabled_at.is_some() {
        "disabled"
    } else if user.password_changed_at.is_none() && user.sign_in_link_expires_at.is_some() {
        "invited"
    } else {
        "active"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_12_to_1000_characters() {
        assert_eq!(
            check_password("password", "short").unwrap_err().rule,
            "too_short"
        );
        assert!(check_password("password", &"é".repeat(12)).is_ok());
        assert_eq!(
            check_password("password", &"x".repeat(1_001))
                .unwrap_err()
                .rule,
            "too_long"
        );
    }

    #[test]
    fn a_link_is_valid_for_24_hours_and_its_debug_hides_the_token() {
        let now = Timestamp::from_micros(0);
        let (stored, link) = new_link(now);
        assert_eq!(link.expires_at.micros(), 24 * 3_600_000_000);
        assert_eq!(stored.token_hash, tokens::hash_api_key(&link.token));
        assert!(link.path().starts_with("/welcome/"));
        assert!(!format!("{link:?}").contains(&link.token));
    }

    #[test]
    fn roles_parse_or_name_the_choices() {
        assert_eq!(parse_role("auditor").unwrap(), Role::Auditor);
        let error = parse_role("root").unwrap_err();
        assert_eq!((error.field.as_str(), error.rule), ("role", "unknown_role"));
    }
}
