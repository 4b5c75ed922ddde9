//! Settings > API Keys (admins): the account's keys with name, scopes,
//! prefix, creator, creation, last use (to the minute), expiry and state;
//! a form to create one, whose secret is shown on the answer page once and
//! never again; and Revoke. Creating and revoking go through `crate::keys`
//! as the API's do, so they are checked the same way, audited as `Auditlog
//! API Key` events with the console user as actor, and a revoked key is
//! refused at once by this server. Every form carries the session's CSRF
//! token; every value is escaped by the template.

use super::exports::actor;
use super::form::ConsoleForm;
use super::page::{render, ConsoleError, Frame};
use super::session::{Admin, SignedIn};
use crate::keys;
use crate::state::AppState;
use askama::Template;
use auditlog_core::Timestamp;
use auditlog_store::ApiKeyInfo;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub const PATH: &str = "/settings/api-keys";
pub const REVOKE_PATH: &str = "/settings/api-keys/revoke";

struct KeyRow {
    id: String,
    name: String,
    scopes: String,
    prefix: String,
    created_by: String,
    created_at: String,
    last_used_at: String,
    expires_at: String,
    status: &'static str,
}

/// A key just created: its secret, shown on this one page.
struct Created {
    name: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct ApiKeysPage {
    frame: Option<Frame>,
    csrf: String,
    keys: Vec<KeyRow>,
    notice: Option<&'static str>,
    error: Option<String>,
    created: Option<Created>,
    /// The form's values after a refusal.
    name: String,
}

/// `2026-01-02 03:04 UTC`: minutes are what last use is kept to.
fn minute_text(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    match (text.get(..10), text.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => text,
    }
}

fn row(key: &ApiKeyInfo, now: Timestamp) -> KeyRow {
    KeyRow {
        id: key.public_id.clone(),
        name: key.name.clone(),
        scopes: key
            .scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        prefix: key.prefix.clone(),
        created_by: key.created_by.clone(),
        created_at: minute_text(key.created_at),
        last_used_at: key
            .last_used_at
            .map(minute_text)
            .unwrap_or_else(|| "never".into()),
        expires_at: key
            .expires_at
            .map(minute_text)
            .unwrap_or_else(|| "never".into()),
        status: keys::status(key, now),
    }
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "revoked" => "The key was revoked: it is refused from now on.",
        _ => return None,
    })
}

async fn page(
    state: &AppState,
    user: &SignedIn,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    created: Option<Created>,
    name: &str,
) -> Result<Response, ConsoleError> {
    let now = Timestamp::now();
    let keys = state.store.list_api_keys(user.grant.account.id).await?;
    Ok(render(
        status,
        &ApiKeysPage {
            frame: Some(user.frame("api-keys")),
            csrf: user.grant.csrf_token.clone(),
            keys: keys.iter().map(|k| row(k, now)).collect(),
            notice,
            error,
            created,
            name: name.into(),
        },
    ))
}

pub async fn list(
    State(state): State<AppState>,
    Admin(user): Admin,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    page(
        &state,
        &user,
        StatusCode::OK,
        notice(query.done.as_deref()),
        None,
        None,
        "",
    )
    .await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope_ingest: Option<String>,
    #[serde(default)]
    scope_read: Option<String>,
    #[serde(default)]
    scope_admin: Option<String>,
    /// `YYYY-MM-DD` (the key stops working at the start of that day, UTC), or empty.
    #[serde(default)]
    expires: String,
}

pub async fn create(
    State(state): State<AppState>,
    Admin(user): Admin,
    ConsoleForm(form): ConsoleForm<CreateForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let now = Timestamp::now();
    let scopes: Vec<String> = [
        ("ingest", &form.scope_ingest),
        ("read", &form.scope_read),
        ("admin", &form.scope_admin),
    ]
    .into_iter()
    .filter(|(_, on)| on.is_some())
    .map(|(name, _)| name.to_string())
    .collect();
    let expires = form.expires.trim();
    let request = if expires.is_empty() {
        Ok(None)
    } else {
        Timestamp::parse("expires_at", &format!("{expires}T00:00:00Z")).map(Some)
    }
    .and_then(|expires_at| keys::check(&form.name, &scopes, expires_at, now));
    let request = match request {
        Ok(request) => request,
        Err(error) => {
            let message = match error.field.as_str() {
                "expires_at" => format!("Expires: {}", error.message),
                "scopes" => "Choose at least one scope.".to_string(),
                _ => format!("Name: {}", error.message),
            };
            return page(
                &state,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(message),
                None,
                &form.name,
            )
            .await;
        }
    };
    let account = &user.grant.account;
    let (key, secret) = keys::create(state.store.as_ref(), account, &actor(&user), request).await?;
    page(
        &state,
        &user,
        StatusCode::CREATED,
        None,
        None,
        Some(Created {
            name: key.name,
            secret,
        }),
        "",
    )
    .await
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

pub async fn revoke(
    State(state): State<AppState>,
    Admin(user): Admin,
    ConsoleForm(form): ConsoleForm<RevokeForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let account = &user.grant.account;
    let revoked = keys::revoke(
        state.store.as_ref(),
        &state.api_keys,
        account,
        &actor(&user),
        &form.id,
    )
    .await?;
    if revoked.is_none() {
        return page(
            &state,
            &user,
            StatusCode::NOT_FOUND,
            None,
            Some(format!(
                "There is no API key {:?} in this account.",
                form.id
            )),
            None,
            "",
        )
        .await;
    }
    Ok(Redirect::to(&format!("{PATH}?done=revoked")).into_response())
}
