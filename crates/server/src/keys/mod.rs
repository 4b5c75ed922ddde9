//! Managing an account's API keys (issue 18): creating one with a name,
//! scopes and an optional expiry (the secret is returned once), revoking
//! one, and how a key is shown (a short prefix, never the secret). Shared
//! by `/api/v1/keys` and the CLI; each change is audited (`audit`) and a
//! revoked key is forgotten by this server's key cache at once.

pub mod audit;

use crate::exports::audit::AuditActor;
use crate::key_cache::KeyCache;
use crate::tokens;
use auditlog_core::{FieldError, Timestamp};
use auditlog_store::{Account, ApiKeyInfo, NewApiKey, Scope, Store, StoreError};

/// Longest key name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// How many characters of the secret a listing shows: `alk_` and four of
/// its 43 random characters, enough to tell keys apart, far too few to guess.
pub const PREFIX_CHARS: usize = 8;

/// What an admin asks for.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<Timestamp>,
}

/// Checks a request's fields: a name of 1 to 100 characters, at least one
/// scope, each once, and an expiry in the future.
pub fn check(
    name: &str,
    scope_names: &[String],
    expires_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<KeyRequest, FieldError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(FieldError::new(
            "name",
            "invalid_length",
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "name",
            "control_character",
            "name must not contain control characters",
        ));
    }
    if scope_names.is_empty() {
        return Err(FieldError::new(
            "scopes",
            "required",
            "scopes must list at least one of ingest, read, admin",
        ));
    }
    let mut scopes = Vec::new();
    for text in scope_names {
        let scope = Scope::parse(text).ok_or_else(|| {
            FieldError::new(
                "scopes",
                "unknown_scope",
                format!("unknown scope {text:?}; use ingest, read or admin"),
            )
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if let Some(at) = expires_at {
        if at <= now {
            return Err(FieldError::new(
                "expires_at",
                "in_the_past",
                "expires_at must be in the future",
            ));
        }
    }
    Ok(KeyRequest {
        name: name.to_string(),
        scopes,
        expires_at,
    })
}

/// A new key for `request`: what to store, and the secret, which is shown
/// once and never stored.
pub fn new_key(account: &Account, request: KeyRequest, created_by: &str) -> (NewApiKey, String) {
    let secret = tokens::new_api_key();
    let key = NewApiKey {
        account_id: account.id,
        key_hash: tokens::hash_api_key(&secret),
        prefix: secret.chars().take(PREFIX_CHARS).collect(),
        name: request.name,
        scopes: request.scopes,
        expires_at: request.expires_at,
        created_by: created_by.to_string(),
        created_at: Timestamp::now(),
    };
    (key, secret)
}

/// Creates the key and audits it; returns it with its secret, which is
/// shown once and never stored.
pub async fn create(
    store: &dyn Store,
    account: &Account,
    actor: &AuditActor,
    request: KeyRequest,
) -> Result<(ApiKeyInfo, String), StoreError> {
    let (new, secret) = new_key(account, request, &actor.id);
    let key = store.create_named_api_key(new).await?;
    audit::record(store, account, actor, audit::KeyAction::Create, &key).await?;
    Ok((key, secret))
}

/// Revokes the key with `public_id` and audits it (only the first time);
/// `None` if the account has no such key.
pub async fn revoke(
    store: &dyn Store,
    cache: &KeyCache,
    account: &Account,
    actor: &AuditActor,
    public_id: &str,
) -> Result<Option<ApiKeyInfo>, StoreError> {
    let before = store
        .list_api_keys(account.id)
        .await?
        .into_iter()
        .find(|k| k.public_id == public_id);
    let Some(before) = before else {
        return Ok(None);
    };
    let Some(key) = store
        .revoke_api_key(account.id, public_id, Timestamp::now())
        .await?
    else {
        return Ok(None);
    };
    // This server stops accepting it at once; others within the cache's TTL.
    cache.forget(key.id);
    if before.revoked_at.is_none() {
        audit::record(store, account, actor, audit::KeyAction::Revoke, &key).await?;
    }
    Ok(Some(key))
}

/// `active`, `expired` or `revoked` at `now`.
pub fn status(key: &ApiKeyInfo, now: Timestamp) -> &'static str {
    if key.revoked_at.is_some() {
        "revoked"
    } else if key.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_request_needs_a_name_known_scopes_and_a_future_expiry() {
        let now = Timestamp::from_micros(1_000_000);
        let ok = check(" ci ", &names(&["ingest", "read", "ingest"]), None, now).unwrap();
        assert_eq!(ok.name, "ci");
        assert_eq!(ok.scopes, vec![Scope::Ingest, Scope::Read]);
        let rule = |r: Result<KeyRequest, FieldError>| r.unwrap_err().rule;
        assert_eq!(
            rule(check("", &names(&["read"]), None, now)),
            "invalid_length"
        );
        assert_eq!(
            rule(check(&"x".repeat(101), &names(&["read"]), None, now)),
            "invalid_length"
        );
        assert_eq!(
            rule(check("a\nb", &names(&["read"]), None, now)),
            "control_character"
        );
        assert_eq!(rule(check("ci", &[], None, now)), "required");
        assert_eq!(
            rule(check("ci", &names(&["write"]), None, now)),
            "unknown_scope"
        );
        assert_eq!(
            rule(check("ci", &names(&["read"]), Some(now), now)),
            "in_the_past"
        );
    }

    #[test]
    fn status_follows_revocation_then_expiry() {
        let now = Timestamp::from_micros(10);
        let mut key = ApiKeyInfo {
            id: 1,
            public_id: "key_1".into(),
            prefix: "alk_abcd".into(),
            name: "ci".into(),
            scopes: vec![Scope::Read],
            expires_at: None,
            created_by: "cli".into(),
            created_at: Timestamp::from_micros(0),
            last_used_at: None,
            revoked_at: None,
        };
        assert_eq!(status(&key, now), "active");
        key.expires_at = Some(now);
        assert_eq!(status(&key, now), "expired");
        key.revoked_at = Some(now);
        assert_eq!(status(&key, now), "revoked");
    }
}
