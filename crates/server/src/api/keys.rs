//! `/api/v1/keys` (scope `admin`): the account's API keys — list, create
//! (the secret is in the answer once) and revoke, each change audited as an
//! `Auditlog API Key` event (`crate::keys`).

use crate::api::body::{read_json_within, MAX_SMALL_BODY_BYTES};
use crate::api::path::{PathId, BAD_PATH_ID};
use crate::api::schema::{ApiKeyEnvelope, ApiKeyList, ApiKeyView, CreatedApiKey, NewApiKeyBody};
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::exports::audit::AuditActor;
use crate::keys;
use crate::state::AppState;
use auditlog_core::{FieldError, Timestamp};
use auditlog_store::{ApiKeyInfo, Scope};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

fn invalid(error: FieldError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_key",
        error.message.clone(),
    )
    .with_details(json!({"field": error.field, "rule": error.rule}))
}

/// How the API shows a key at `now`.
pub fn view(key: &ApiKeyInfo, now: Timestamp) -> ApiKeyView {
    ApiKeyView {
        id: key.public_id.clone(),
        name: key.name.clone(),
        prefix: key.prefix.clone(),
        scopes: key.scopes.iter().map(|s| s.as_str().to_string()).collect(),
        status: keys::status(key, now).into(),
        expires_at: key.expires_at.map(Timestamp::to_rfc3339),
        created_by: key.created_by.clone(),
        created_at: key.created_at.to_rfc3339(),
        last_used_at: key.last_used_at.map(Timestamp::to_rfc3339),
        revoked_at: key.revoked_at.map(Timestamp::to_rfc3339),
    }
}

/// The account's keys, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/keys",
    operation_id = "list_keys",
    tag = "keys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys (never a secret)", body = ApiKeyList),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let now = Timestamp::now();
    let keys = state.store.list_api_keys(caller.account.id).await?;
    Ok(axum::Json(ApiKeyList {
        keys: keys.iter().map(|k| view(k, now)).collect(),
    })
    .into_response())
}

/// The fields of a create request, unknown ones refused by name.
fn parse_request(body: &Value, now: Timestamp) -> Result<keys::KeyRequest, FieldError> {
    const ALLOWED: [&str; 3] = ["name", "scopes", "expires_at"];
    let object = body.as_object().ok_or_else(|| {
        FieldError::new("body", "not_an_object", "the body must be a JSON object")
    })?;
    if let Some(unknown) = object.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
        return Err(FieldError::new(
            unknown.clone(),
            "unknown_field",
            format!(
                "{unknown} is not a field here; allowed: {}",
                ALLOWED.join(", ")
            ),
        ));
    }
    let name = match object.get("name") {
        Some(Value::String(name)) => name.as_str(),
        _ => {
            return Err(FieldError::new(
                "name",
                "required",
                "name is required: a string of 1 to 100 characters",
            ))
        }
    };
    let scopes = match object.get("scopes") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    FieldError::new(
                        "scopes",
                        "not_a_string",
                        "scopes must be an array of strings",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(FieldError::new(
                "scopes",
                "required",
                "scopes is required: an array of ingest, read and/or admin",
            ))
        }
    };
    let expires_at = match object.get("expires_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(Timestamp::parse("expires_at", text)?),
        Some(_) => {
            return Err(FieldError::new(
                "expires_at",
                "invalid_time",
                "expires_at must be an RFC 3339 instant such as 2027-01-01T00:00:00Z",
            ))
        }
    };
    keys::check(name, &scopes, expires_at, now)
}

/// Creates a key; the answer holds its secret, shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/keys",
    operation_id = "create_key",
    tag = "keys",
    security(("bearer" = [])),
    request_body(content = NewApiKeyBody, description = "At most 64 KiB"),
    responses(
        (status = 201, description = "Created; `secret` is shown only in this answer", body = CreatedApiKey),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "A field breaks a rule; `details` names it", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let body = read_json_within(&headers, body, MAX_SMALL_BODY_BYTES).await?;
    let now = Timestamp::now();
    let request = parse_request(&body, now).map_err(invalid)?;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    let (key, secret) =
        keys::create(state.store.as_ref(), &caller.account, &actor, request).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedApiKey {
            key: view(&key, now),
            secret,
        }),
    )
        .into_response())
}

/// Revokes a key: it is refused at once on this server and within 5 s on
/// every other server sharing the database. Revoking a revoked key changes
/// nothing.
#[utoipa::path(
    delete,
    path = "/api/v1/keys/{id}",
    operation_id = "revoke_key",
    tag = "keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's public id (`key_…`)")),
    responses(
        (status = 200, description = "The key as revoked", body = ApiKeyEnvelope),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No key with this id in the caller's account", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    let key = keys::revoke(
        state.store.as_ref(),
        &state.api_keys,
        &caller.account,
        &actor,
        &id,
    )
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_found",
            format!("no API key {id:?} in this account"),
        )
    })?;
    Ok(axum::Json(ApiKeyEnvelope {
        key: view(&key, Timestamp::now()),
    })
    .into_response())
}
