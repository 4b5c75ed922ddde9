//! Settings > Users (admins): the account's console users with their role
//! and status; inviting a user with a role (the page then shows the
//! one-time sign-in link, this once); changing a role; disabling and
//! enabling; a new sign-in link as a password reset. Every change goes
//! through `crate::users`, as the API's do, so the console checks and
//! audits exactly what the API does, with the console user as actor. Every
//! form carries the session's CSRF token; the templates escape every value.

use super::exports::actor;
use super::form::ConsoleForm;
use super::page::{render, ConsoleError, Frame};
use super::session::Admin;
use crate::state::AppState;
use crate::users::{self, SignInLink, UserError};
use askama::Template;
use auditlog_core::Timestamp;
use auditlog_store::{Role, UserChange, UserInfo};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub const PATH: &str = "/settings/users";

/// One row of the table.
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub role: &'static str,
    pub status: &'static str,
    pub disabled: bool,
    pub is_you: bool,
    pub created_at: String,
}

/// A link just made, shown once.
pub struct ShownLink {
    pub email: String,
    pub url: String,
    pub expires_at: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    frame: Option<Frame>,
    csrf: String,
    users: Vec<UserRow>,
    roles: [&'static str; 3],
    notice: Option<&'static str>,
    error: Option<String>,
    link: Option<ShownLink>,
    email: String,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
}

/// The notice after a change: fixed sentences only, never the query's text.
fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "role" => Some("The role was changed."),
        "disabled" => Some("The user was disabled and every session of the user has ended."),
        "enabled" => Some("The user was enabled; they can sign in again."),
        _ => None,
    }
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The link as an absolute URL on the host the admin used: `http` for a
/// loopback host (local use), `https` elsewhere (the console must be served
/// over HTTPS there; its cookies are Secure).
pub fn absolute(headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        });
    match host {
        Some(host) => {
            let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
            let local = matches!(name, "localhost" | "127.0.0.1" | "[::1]");
            let scheme = if local { "http" } else { "https" };
            format!("{scheme}://{host}{path}")
        }
        None => path.to_string(),
    }
}

async fn page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    link: Option<ShownLink>,
    email: String,
) -> Result<Response, ConsoleError> {
    let me = &admin.0.grant.user;
    let users = state.store.list_users(me.account_id).await?;
    let rows = users
        .iter()
        .map(|u| UserRow {
            id: u.id,
            email: u.email.clone(),
            role: u.role.as_str(),
            status: users::status(u),
            disabled: u.disabled_at.is_some(),
            is_you: u.id == me.id,
            created_at: u.created_at.to_rfc3339(),
        })
        .collect();
    Ok(render(
        status,
        &UsersPage {
            frame: Some(admin.0.frame("users")),
            csrf: admin.0.grant.csrf_token.clone(),
            users: rows,
            roles: [
                Role::Admin.as_str(),
                Role::Auditor.as_str(),
                Role::Member.as_str(),
            ],
            notice,
            error,
            link,
            email,
        },
    ))
}

/// What a refused change says, and its status.
fn refusal(error: UserError) -> Result<(StatusCode, String), ConsoleError> {
    match error {
        UserError::Invalid(field) => Ok((StatusCode::UNPROCESSABLE_ENTITY, field.message)),
        UserError::NotFound => Ok((
            StatusCode::NOT_FOUND,
            "There is no such user in this account.".into(),
        )),
        UserError::AlreadyExists => Ok((
            StatusCode::CONFLICT,
            "A user with this email already exists in this account.".into(),
        )),
        UserError::LastAdmin => Ok((
            StatusCode::CONFLICT,
            "Not changed: this account must keep an active administrator. Make another user \
             an administrator first."
                .into(),
        )),
        UserError::Store(e) => Err(e.into()),
    }
}

fn shown(headers: &HeaderMap, user: &UserInfo, link: &SignInLink) -> ShownLink {
    ShownLink {
        email: user.email.clone(),
        url: absolute(headers, &link.path()),
        expires_at: link.expires_at.to_rfc3339(),
    }
}

pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    page(
        &state,
        &admin,
        StatusCode::OK,
        notice(query.done.as_deref()),
        None,
        None,
        String::new(),
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    ConsoleForm(form): ConsoleForm<CreateForm>,
) -> Result<Response, ConsoleError> {
    admin.0.check_csrf(&form.csrf)?;
    let outcome = match users::parse_role(&form.role) {
        Ok(role) => {
            users::invite(
                state.store.as_ref(),
                &admin.0.grant.account,
                &actor(&admin.0),
                &form.email,
                role,
            )
            .await
        }
        Err(field) => Err(UserError::Invalid(field)),
    };
    match outcome {
        Ok((user, link)) => {
            let link = shown(&headers, &user, &link);
            page(
                &state,
                &admin,
                StatusCode::CREATED,
                None,
                None,
                Some(link),
                String::new(),
            )
            .await
        }
        Err(error) => {
            let (status, message) = refusal(error)?;
            page(
                &state,
                &admin,
                status,
                None,
                Some(message),
                None,
                form.email,
            )
            .await
        }
    }
}

/// Applies `change` and goes back to the list with a notice, or shows why not.
async fn apply(
    state: &AppState,
    admin: &Admin,
    id: i64,
    change: UserChange,
    done: &str,
) -> Result<Response, ConsoleError> {
    match users::change(
        state.store.as_ref(),
        &admin.0.grant.account,
        &actor(&admin.0),
        id,
        change,
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("{PATH}?done={done}")).into_response()),
        Err(error) => {
            let (status, message) = refusal(error)?;
            page(
                state,
                admin,
                status,
                None,
                Some(message),
                None,
                String::new(),
            )
            .await
        }
    }
}

pub async fn set_role(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
    ConsoleForm(form): ConsoleForm<RoleForm>,
) -> Result<Response, ConsoleError> {
    admin.0.check_csrf(&form.csrf)?;
    match users::parse_role(&form.role) {
        Ok(role) => apply(&state, &admin, id, UserChange::Role(role), "role").await,
        Err(field) => {
            let (status, message) = refusal(UserError::Invalid(field))?;
            page(
                &state,
                &admin,
                status,
                None,
                Some(message),
                None,
                String::new(),
            )
            .await
        }
    }
}

pub async fn disable(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Result<Response, ConsoleError> {
    admin.0.check_csrf(&form.csrf)?;
    let change = UserChange::Disable(Timestamp::now());
    apply(&state, &admin, id, change, "disabled").await
}

pub async fn enable(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Result<Response, ConsoleError> {
    admin.0.check_csrf(&form.csrf)?;
    apply(&state, &admin, id, UserChange::Enable, "enabled").await
}

pub async fn reset_password(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
    headers: HeaderMap,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Result<Response, ConsoleError> {
    admin.0.check_csrf(&form.csrf)?;
    match users::reset_password(
        state.store.as_ref(),
        &admin.0.grant.account,
        &actor(&admin.0),
        id,
    )
    .await
    {
        Ok((user, link)) => {
            let link = shown(&headers, &user, &link);
            page(
                &state,
                &admin,
                StatusCode::OK,
                None,
                None,
                Some(link),
                String::new(),
            )
            .await
        }
        Err(error) => {
            let (status, message) = refusal(error)?;
            page(
                &state,
                &admin,
                status,
                None,
                Some(message),
                None,
                String::new(),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn links_are_absolute_on_the_host_used_and_https_off_loopback() {
        let mut headers = HeaderMap::new();
        assert_eq!(absolute(&headers, "/welcome/t"), "/welcome/t");
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(
            absolute(&headers, "/welcome/t"),
            "http://127.0.0.1:8080/welcome/t"
        );
        headers.insert(header::HOST, HeaderValue::from_static("audit.example.com"));
        assert_eq!(
            absolute(&headers, "/welcome/t"),
            "https://audit.example.com/welcome/t"
        );
        headers.insert(header::HOST, HeaderValue::from_static("evil.com/<x>"));
        assert_eq!(absolute(&headers, "/welcome/t"), "/welcome/t");
    }

    #[test]
    fn notices_are_fixed_sentences() {
        assert_eq!(notice(Some("<script>")), None);
        assert!(notice(Some("disabled")).is_some());
    }
}
