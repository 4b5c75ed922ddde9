//! `/welcome/{token}`: a one-time sign-in link. The page shows the
//! account and email the link is for and asks for a password; setting it
//! uses the link up (it works once, within 24 hours), ends any other
//! session of the user, and signs the user in. There is no session yet, so
//! the form's CSRF token is a double-submit cookie, as on `/login`.
//! A link that is unknown, used, expired or whose user is disabled gets one
//! and the same answer.

use super::form::ConsoleForm;
use super::login::record_authentication;
use super::page::{render, ConsoleError, Frame, MessagePage};
use super::session::{
    cookie, same_secret, set_cookie, start_session, SESSION_COOKIE, SESSION_SECONDS,
};
use crate::state::AppState;
use crate::tokens::{hash_api_key, random_token};
use crate::users::{self, UserError, SIGN_IN_LINK_PATH};
use askama::Template;
use auditlog_core::Timestamp;
use auditlog_store::User;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// The welcome form's CSRF cookie (double submit).
const WELCOME_COOKIE: &str = "auditlog_welcome";
/// How long the form stays valid.
const WELCOME_FORM_SECONDS: i64 = 60 * 60;

#[derive(Template)]
#[template(path = "welcome.html")]
struct WelcomePage {
    frame: Option<Frame>,
    csrf: String,
    action: String,
    account: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct WelcomeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm_password: String,
}

fn invalid_link() -> Response {
    render(
        StatusCode::NOT_FOUND,
        &MessagePage::new(
            None,
            "This sign-in link does not work",
            "The link is unknown, was already used, has expired (links work for 24 hours) or \
             its user is disabled. Ask an administrator of your account for a new one.",
        )
        .with_link("/login", "Sign in"),
    )
}

fn form_page(
    status: StatusCode,
    token: &str,
    account: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    let csrf = random_token(24);
    let mut response = render(
        status,
        &WelcomePage {
            frame: None,
            csrf: csrf.clone(),
            action: format!("{SIGN_IN_LINK_PATH}{token}"),
            account: account.to_string(),
            email: email.to_string(),
            error: error.map(str::to_string),
        },
    );
    let cookie = set_cookie(
        WELCOME_COOKIE,
        &csrf,
        "/welcome",
        "Strict",
        WELCOME_FORM_SECONDS,
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ConsoleError> {
    match state
        .store
        .sign_in_link(hash_api_key(&token), Timestamp::now())
        .await?
    {
        Some((account, user)) => Ok(form_page(
            StatusCode::OK,
            &token,
            &account.name,
            &user.email,
            None,
        )),
        None => Ok(invalid_link()),
    }
}

pub async fn submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    ConsoleForm(form): ConsoleForm<WelcomeForm>,
) -> Result<Response, ConsoleError> {
    let Some((account, user)) = state
        .store
        .sign_in_link(hash_api_key(&token), Timestamp::now())
        .await?
    else {
        return Ok(invalid_link());
    };
    let sent_ok = cookie(&headers, WELCOME_COOKIE)
        .is_some_and(|c| !form.csrf.is_empty() && same_secret(c, &form.csrf));
    let refuse = |status, message: &str| {
        Ok(form_page(
            status,
            &token,
            &account.name,
            &user.email,
            Some(message),
        ))
    };
    if !sent_ok {
        return refuse(
            StatusCode::FORBIDDEN,
            "The form expired or did not come from this site; please try again.",
        );
    }
    if form.password != form.confirm_password {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The password and its confirmation differ.",
        );
    }
    let (account, user) = match users::redeem(state.store.as_ref(), &token, &form.password).await {
        Ok(Some(pair)) => pair,
        Ok(None) => return Ok(invalid_link()),
        Err(UserError::Invalid(field)) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("{}.", field.message),
            )
        }
        Err(UserError::Store(e)) => return Err(e.into()),
        Err(other) => return Err(ConsoleError::internal("sign-in link", other)),
    };
    let session = start_session(&state, user.id).await?;
    let signed_in = User {
        id: user.id,
        account_id: account.id,
        email: user.email.clone(),
        password_hash: String::new(),
        role: user.role,
    };
    record_authentication(&state, &account, &signed_in, "Login", None, None).await?;
    // Members see no audit data: their Profile page is their home.
    let home = if user.role.sees_audit_data() {
        "/"
    } else {
        super::profile::PATH
    };
    let mut response = Redirect::to(home).into_response();
    let headers = response.headers_mut();
    for value in [
        set_cookie(SESSION_COOKIE, &session, "/", "Lax", SESSION_SECONDS),
        set_cookie(WELCOME_COOKIE, "", "/welcome", "Strict", 0),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}
