//! API keys and passwords. Keys are 256-bit random secrets shown once and
//! stored only as SHA-256 (a fast hash suits high-entropy secrets and keeps
//! lookups O(1)); passwords are stored as argon2id PHC strings. Each request
//! of a verified key is counted against the key's rate limit
//! (`limits::api_rate`).

use crate::error::ApiError;
use crate::state::AppState;
use auditlog_store::{Account, ApiKeyGrant, Scope};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Prefix of every API key, so that secret scanners and people recognise one.
pub const KEY_PREFIX: &str = "alk_";

/// `bytes` random bytes as URL-safe base64.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS random source failing is not recoverable; there is no safe fallback for secrets.
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(buf)
}

/// A new API key secret.
pub fn new_api_key() -> String {
    format!("{KEY_PREFIX}{}", random_token(32))
}

pub fn hash_api_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordHashError {
    #[error("the OS random source failed")]
    Random(#[source] getrandom::Error),
    /// argon2's error is not a `std::error::Error` in this build, so its
    /// words are kept in the message.
    #[error("cannot hash the password: {0}")]
    Hash(argon2::password_hash::Error),
}

/// An argon2id hash of `password` in PHC form.
pub fn hash_password(password: &str) -> Result<String, PasswordHashError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(PasswordHashError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(PasswordHashError::Hash)?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(PasswordHashError::Hash)
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc)
        .map(|hash| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// How long a verified key is trusted without asking the store again. Keys
/// cannot be revoked yet; when they can, this bounds how long a revoked key
/// still works on one server.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(10);
/// Most keys remembered; beyond that the cache starts afresh (keys are few).
const KEY_CACHE_MAX: usize = 10_000;

/// Recently verified API keys by hash. Only keys the store knows are kept,
/// so a key created a moment ago by the CLI is looked up (and usable) at once.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<[u8; 32], (Instant, ApiKeyGrant)>>,
}

impl KeyCache {
    fn get(&self, key_hash: &[u8; 32]) -> Option<ApiKeyGrant> {
        let entries = self.entries.lock().ok()?;
        match entries.get(key_hash) {
            Some((at, grant)) if at.elapsed() < KEY_CACHE_TTL => Some(grant.clone()),
            _ => None,
        }
    }

    fn put(&self, key_hash: [u8; 32], grant: ApiKeyGrant) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= KEY_CACHE_MAX {
                entries.clear();
            }
            entries.insert(key_hash, (Instant::now(), grant));
        }
    }
}

/// A caller authenticated by an API key: the account it may see and what it may do.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub key_id: i64,
    pub account: Account,
    pub scopes: Vec<Scope>,
}

impl ApiCaller {
    /// 403 unless the key has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!(
                    "this API key lacks the {:?} scope; create a key with --scope {}",
                    scope.as_str(),
                    scope.as_str()
                ),
            ))
        }
    }

    /// How the caller appears as the actor of events Auditlog writes itself.
    pub fn actor_id(&self) -> String {
        format!("api-key:{}", self.key_id)
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_api_key",
                    "send an API key in the Authorization header: Authorization: Bearer <key>",
                )
            })?;
        let key = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_authorization",
                    "the Authorization header must be \"Bearer <key>\"",
                )
            })?;
        let key_hash = hash_api_key(key);
        let grant = match state.api_keys.get(&key_hash) {
            Some(grant) => grant,
            None => {
                let grant = state
                    .store
                    .api_key_by_hash(key_hash)
                    .await?
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "invalid_api_key",
                            "the API key is not valid",
                        )
                    })?;
                state.api_keys.put(key_hash, grant.clone());
                grant
            }
        };
        // Counted once the key is known, so a client cannot use up another
        // key's allowance (nor an account's) by sending bad keys.
        state.api_rate_limiter.check(grant.key_id)?;
        Ok(ApiCaller {
            key_id: grant.key_id,
            account: grant.account,
            scopes: grant.scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_stably() {
        let (a, b) = (new_api_key(), new_api_key());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() > 40);
        assert_eq!(hash_api_key(&a), hash_api_key(&a));
    }

    fn grant(key_id: i64) -> ApiKeyGrant {
        ApiKeyGrant {
            key_id,
            account: Account {
                id: 1,
                name: "acme".into(),
                taxonomy: Default::default(),
            },
            scopes: vec![Scope::Read],
        }
    }

    #[test]
    fn the_key_cache_answers_only_for_keys_it_was_given() {
        let cache = KeyCache::default();
        let (a, b) = (hash_api_key("alk_a"), hash_api_key("alk_b"));
        assert!(cache.get(&a).is_none());
        cache.put(a, grant(7));
        assert_eq!(cache.get(&a).map(|g| g.key_id), Some(7));
        assert!(cache.get(&b).is_none());
    }

    #[test]
    fn cached_keys_expire_after_the_ttl() {
        let cache = KeyCache::default();
        let a = hash_api_key("alk_a");
        cache.put(a, grant(7));
        // Age the entry instead of sleeping.
        if let Some(entry) = cache.entries.lock().unwrap().get_mut(&a) {
            entry.0 = entry.0.checked_sub(KEY_CACHE_TTL).unwrap();
        }
        assert!(cache.get(&a).is_none());
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong", &phc));
        assert!(!verify_password("x", "not a hash"));
    }
}
