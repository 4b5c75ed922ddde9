//! The Profile page of the signed-in user, whatever the role: one section
//! per concern, each built by its own function, so that a section (such as
//! two-factor sign-in) is one more field and one more function:
//! - password: change it (the current one required; every other session
//!   of the user ends), audited as the user's own `Auditlog User`
//!   `Password Change`;
//! - sessions: the user's live sessions, each of which can be ended
//!   (recorded as an `Authentication` `Logout`).

use super::form::ConsoleForm;
use super::login::record_authentication;
use super::page::{render, ConsoleError, Frame};
use super::session::{set_cookie, SignedIn, SESSION_COOKIE};
use crate::state::AppState;
use crate::users::{self, UserError};
use askama::Template;
use auditlog_core::Timestamp;
use auditlog_store::users::session_id;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub const PATH: &str = "/settings/profile";

/// The password section: a message about the last attempt, if any.
pub struct PasswordSection {
    pub error: Option<String>,
    pub changed_at: Option<String>,
}

/// One live session of the user.
pub struct SessionRow {
    pub id: String,
    pub created_at: String,
    pub expires_at: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    frame: Option<Frame>,
    csrf: String,
    email: String,
    role: &'static str,
    notice: Option<&'static str>,
    password: PasswordSection,
    sessions: Vec<SessionRow>,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "password" => Some("Your password was changed; your other sessions have ended."),
        "session" => Some("The session has ended."),
        _ => None,
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn password_section(
    state: &AppState,
    user: &SignedIn,
    error: Option<String>,
) -> Result<PasswordSection, ConsoleError> {
    let info = state
        .store
        .user_info(user.grant.account.id, user.grant.user.id)
        .await?;
    Ok(PasswordSection {
        error,
        changed_at: info
            .and_then(|i| i.password_changed_at)
            .map(Timestamp::to_rfc3339),
    })
}

async fn sessions_section(
    state: &AppState,
    user: &SignedIn,
) -> Result<Vec<SessionRow>, ConsoleError> {
    let current = session_id(&user.token_hash);
    let sessions = state
        .store
        .user_sessions(user.grant.user.id, Timestamp::now())
        .await?;
    Ok(sessions
        .into_iter()
        .map(|s| SessionRow {
            current: s.id == current,
            id: s.id,
            created_at: s.created_at.to_rfc3339(),
            expires_at: s.expires_at.to_rfc3339(),
        })
        .collect())
}

async fn page(
    state: &AppState,
    user: &SignedIn,
    status: StatusCode,
    notice: Option<&'static str>,
    password_error: Option<String>,
) -> Result<Response, ConsoleError> {
    Ok(render(
        status,
        &ProfilePage {
            frame: Some(user.frame("profile")),
            csrf: user.grant.csrf_token.clone(),
            email: user.grant.user.email.clone(),
            role: user.grant.user.role.as_str(),
            notice,
            password: password_section(state, user, password_error).await?,
            sessions: sessions_section(state, user).await?,
        },
    ))
}

pub async fn show(
    State(state): State<AppState>,
    user: SignedIn,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    page(
        &state,
        &user,
        StatusCode::OK,
        notice(query.done.as_deref()),
        None,
    )
    .await
}

pub async fn change_password(
    State(state): State<AppState>,
    user: SignedIn,
    ConsoleForm(form): ConsoleForm<PasswordForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    if form.new_password != form.confirm_password {
        let message = "The new password and its confirmation differ; nothing was changed.";
        return page(
            &state,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(message.into()),
        )
        .await;
    }
    match users::change_own_password(
        state.store.as_ref(),
        &user.grant.account,
        &user.grant.user,
        user.token_hash,
        &form.current_password,
        &form.new_password,
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("{PATH}?done=password")).into_response()),
        Err(UserError::Invalid(field)) => {
            let message = format!("{}; nothing was changed.", field.message);
            page(
                &state,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(message),
            )
            .await
        }
        Err(UserError::Store(e)) => Err(e.into()),
        Err(other) => Err(ConsoleError::internal("password change", other)),
    }
}

pub async fn end_session(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    if !state
        .store
        .end_user_session(user.grant.user.id, &id)
        .await?
    {
        return page(&state, &user, StatusCode::NOT_FOUND, None, None).await;
    }
    record_authentication(
        &state,
        &user.grant.account,
        &user.grant.user,
        "Logout",
        None,
        None,
    )
    .await?;
    if id == session_id(&user.token_hash) {
        // This very session: it is over, so sign-in comes next.
        let mut response = Redirect::to("/login").into_response();
        if let Ok(v) = HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", "/", "Lax", 0)) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
        return Ok(response);
    }
    Ok(Redirect::to(&format!("{PATH}?done=session")).into_response())
}
