//! Authentication of API requests: the `ApiCaller` extractor hashes the
//! bearer key (`tokens`), looks it up (through the `key_cache`, else the
//! store), and counts the request against the key's rate limit
//! (`limits::api_rate`).

use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::hash_api_key;
use auditlog_core::leaf_v2::Source;
use auditlog_core::{ErrorChain, Timestamp};
use auditlog_store::{Account, Scope};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

/// A caller authenticated by an API key: the account it may see and what it may do.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub key_id: i64,
    /// The key's public id and name: `source` of what it stores.
    pub public_id: String,
    pub key_name: String,
    pub account: Account,
    pub scopes: Vec<Scope>,
}

impl ApiCaller {
    /// 403 unless the key has `scope`, or one that grants it (`admin`
    /// grants `read`).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| s.grants(scope)) {
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

    /// `source` of the events this key stores (SPEC "Event").
    pub fn source(&self) -> Source {
        Source::ApiKey {
            key: self.public_id.clone(),
            name: self.key_name.clone(),
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
        let now = Timestamp::now();
        let grant = match state.api_keys.get(&key_hash, now) {
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
                            "the API key is not valid (unknown, revoked or expired)",
                        )
                    })?;
                state.api_keys.put(key_hash, grant.clone());
                grant
            }
        };
        // Counted once the key is known, so a client cannot use up another
        // key's allowance (nor an account's) by sending bad keys.
        state.api_rate_limiter.check(grant.key_id)?;
        if let Some(minute) = state.api_keys.first_use_in_minute(grant.key_id, now) {
            // Off the request's path: a late note of the last use costs
            // nothing, a slow one must not slow the request.
            let store = state.store.clone();
            let key_id = grant.key_id;
            tokio::spawn(async move {
                if let Err(e) = store.touch_api_key(key_id, minute).await {
                    tracing::warn!(key_id, error = %ErrorChain(&e), "cannot note an API key's last use");
                }
            });
        }
        Ok(ApiCaller {
            key_id: grant.key_id,
            public_id: grant.public_id,
            key_name: grant.name,
            account: grant.account,
            scopes: grant.scopes,
        })
    }
}
