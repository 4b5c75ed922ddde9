//! The `Authentication` `Login Failed` event of a failed console sign-in to
//! a known account: the reason class, and a keyed hash (HMAC-SHA256 with
//! the account's own key, kept in the store and shared by every server) of
//! the attempted email, never the email itself, nor anything else the
//! visitor typed or sent (no user agent): whoever reads the log can tell
//! repeated attempts at one address apart from a spray of addresses, and
//! can check a suspected address with the key, but cannot read one.

use crate::tokens;
use auditlog_core::email::Email;
use auditlog_core::leaf_v2::Source;
use auditlog_core::taxonomy::{AUTHENTICATION, LOGIN_FAILED};
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::{Account, Store, StoreError, User};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use std::net::IpAddr;

/// Why a sign-in failed, as the event records it (the visitor is told
/// only that it failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// No user has that email in the account.
    UnknownEmail,
    /// The password does not match.
    WrongPassword,
    /// The user has not set a password yet (an unused sign-in link).
    PasswordNotSet,
    /// The user is disabled.
    Disabled,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownEmail => "unknown_email",
            Self::WrongPassword => "wrong_password",
            Self::PasswordNotSet => "password_not_set",
            Self::Disabled => "disabled",
        }
    }
}

/// `hmac-sha256:` and the hex HMAC of the email as stored users' are
/// compared (trimmed, lowercase), so that the hash of an attempt at an
/// existing user equals the hash of that user's address.
pub fn email_hash(key: &[u8; 32], email: &str) -> String {
    let normalised = Email::parse(email)
        .map(|e| e.as_ref().to_string())
        .unwrap_or_else(|_| email.trim().to_ascii_lowercase());
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes a key of any length; this arm is never taken.
        Err(_) => return String::from("hmac-sha256:"),
    };
    mac.update(normalised.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("hmac-sha256:{hex}")
}

/// Appends the `Login Failed` event of an attempt at `account`; `user` is
/// the user the email named, if any.
pub async fn record(
    store: &dyn Store,
    account: &Account,
    user: Option<&User>,
    attempted_email: &str,
    reason: FailureReason,
    ip: Option<IpAddr>,
) -> Result<(), StoreError> {
    let mut candidate = [0u8; 32];
    tokens::fill_random(&mut candidate);
    let key = store.login_hash_key(account.id, candidate).await?;
    let actor_id = user.map_or_else(|| "anonymous".to_string(), |u| format!("user:{}", u.id));
    let mut event = json!({
        "event_type": AUTHENTICATION,
        "action": LOGIN_FAILED,
        "actor": {"id": actor_id},
        "details": {
            "reason": reason.as_str(),
            "email_hash": email_hash(&key, attempted_email),
        },
    });
    if let Some(user) = user {
        event["target"] = json!({"id": format!("user:{}", user.id), "name": user.email});
    }
    if let Some(ip) = ip {
        event["context"] = json!({"ip": ip.to_string()});
    }
    let event = NewEvent::parse(&event, &account.taxonomy.with_own_types(), Timestamp::now())
        .map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
            StoreError::internal(format!(
                "the Login Failed event is invalid for account {}: {}",
                account.name,
                reasons.join("; ")
            ))
        })?;
    let source = Source::Console {
        user: user.map_or_else(String::new, |u| u.id.to_string()),
    };
    store.append_from(account, &source, vec![event]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_keyed_normalised_and_hides_the_email() {
        let key = [7u8; 32];
        let hash = email_hash(&key, " Ada@Example.com");
        assert_eq!(hash, email_hash(&key, "ada@example.com"));
        assert_ne!(hash, email_hash(&[8u8; 32], "ada@example.com"));
        assert!(hash.starts_with("hmac-sha256:") && hash.len() == 12 + 64);
        assert!(!hash.contains("ada"));
    }
}
