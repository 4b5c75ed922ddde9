//! `/login` and `/logout`. A sign-in names the account, the email and the
//! password; every failure gets the same answer and takes about as long
//! (a dummy argon2 verification when the user does not exist), so the page
//! never reveals whether an account or email exists. Failures are rate
//! limited per account and IP. Each sign-in and sign-out is appended to the
//! user's account as an `Authentication` `Login`/`Logout` event, and each
//! failure at a known account as `Login Failed` (`users::login_failure`).
//! A disabled user, or one whose sign-in link has not set a password yet,
//! cannot sign in.
//!
//! A user with two-factor sign-in gives a code (or a recovery code) after
//! the password, on `/login/two-factor`, before any session exists; a
//! wrong code counts as a failed sign-in. The code step reads the user
//! again, so a user disabled (or removed, or given a new password) after
//! the password step is refused there too. A user of an account that
//! requires two-factor sign-in but who has none is signed in and led to
//! its enrolment. Every method ends in `complete_sign_in`, so another
//! method (single sign-on) adds a way in, not another session path.

use super::form::ConsoleForm;
use super::page::{render, ConsoleError, Frame};
use super::session::{
    cookie, same_secret, set_cookie, start_session, SignedIn, LOGIN_COOKIE, SESSION_COOKIE,
    SESSION_SECONDS,
};
use super::url::safe_next;
use crate::state::AppState;
use crate::tokens::{hash_password, random_token, verify_password};
use crate::two_factor;
use crate::users::login_failure::{self, FailureReason};
use askama::Template;
use auditlog_core::event::MAX_USER_AGENT_CHARS;
use auditlog_core::leaf_v2::Source;
use auditlog_core::taxonomy::AUTHENTICATION;
use auditlog_core::ErrorChain;
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::{Account, User};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

/// Where a user is led to set up two-factor sign-in.
pub const ENROL_PATH: &str = "/settings/profile/two-factor";
/// How long the sign-in form stays valid.
const LOGIN_FORM_SECONDS: i64 = 60 * 60;
/// The one answer to every failed sign-in.
const FAILED: &str = "Sign-in failed: the account, email or password is not right.";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    frame: Option<Frame>,
    csrf: String,
    next: String,
    account: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    account: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The sign-in form with a fresh double-submit CSRF token in a cookie.
fn login_page(
    status: StatusCode,
    next: &str,
    account: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    let csrf = random_token(24);
    let mut response = render(
        status,
        &LoginPage {
            frame: None,
            csrf: csrf.clone(),
            next: next.to_string(),
            account: account.to_string(),
            email: email.to_string(),
            error: error.map(str::to_string),
        },
    );
    let cookie = set_cookie(LOGIN_COOKIE, &csrf, "/login", "Strict", LOGIN_FORM_SECONDS);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub async fn show(Query(params): Query<NextParam>) -> Response {
    login_page(
        StatusCode::OK,
        &safe_next(params.next.as_deref()),
        "",
        "",
        None,
    )
}

/// The client's address as the server saw it (no proxy headers are trusted).
fn client_ip(connect: Option<&ConnectInfo<SocketAddr>>) -> Option<IpAddr> {
    connect.map(|c| c.0.ip())
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect())
}

/// A PHC hash of nothing anyone knows, verified when the user does not
/// exist so that a failure takes as long either way.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    // If the random source failed there is no hash; the empty string fails fast, which
    // only costs the timing equalisation on a machine that cannot make secrets anyway.
    DUMMY.get_or_init(|| hash_password(&random_token(16)).unwrap_or_default())
}

pub async fn submit(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ConsoleForm(form): ConsoleForm<LoginForm>,
) -> Result<Response, ConsoleError> {
    let next = safe_next(form.next.as_deref());
    let sent_ok = cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|c| !form.csrf.is_empty() && same_secret(c, &form.csrf));
    if !sent_ok {
        return Ok(login_page(
            StatusCode::FORBIDDEN,
            &next,
            &form.account,
            &form.email,
            Some("The sign-in form expired or did not come from this site; please try again."),
        ));
    }
    let ip = client_ip(connect.as_ref().map(|e| &e.0));
    if let Some(wait) = state.login_limiter.blocked(&form.account, ip) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let mut response = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            &form.account,
            &form.email,
            Some(&format!(
                "Too many failed sign-ins for this account from your address. Try again in {minutes} minute(s)."
            )),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(response);
    }
    let (account, found) = find_user(&state, &form.account, &form.email).await?;
    let password = form.password.clone();
    let phc = found
        .as_ref()
        .map(|user| user.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_string());
    // argon2 is deliberately slow: keep it off the async workers.
    let verified = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .map_err(|e| ConsoleError::internal("password verification", e))?;
    let failure = match (&account, &found) {
        (_, None) => Some(FailureReason::UnknownEmail),
        (_, Some(user)) if user.password_hash.is_empty() => Some(FailureReason::PasswordNotSet),
        (_, Some(_)) if !verified => Some(FailureReason::WrongPassword),
        (Some(account), Some(user)) => match state.store.user_info(account.id, user.id).await? {
            Some(info) if info.disabled_at.is_none() => None,
            _ => Some(FailureReason::Disabled),
        },
        (None, Some(_)) => Some(FailureReason::UnknownEmail),
    };
    let (account, user) = match (account, found, failure) {
        (Some(account), Some(user), None) => (account, user),
        (account, user, reason) => {
            state.login_limiter.record_failure(&form.account, ip);
            if let Some(account) = account {
                // Off the request's path, so that an existing account does
                // not answer more slowly than a made-up one.
                let store = state.store.clone();
                let email = form.email.clone();
                let reason = reason.unwrap_or(FailureReason::UnknownEmail);
                tokio::spawn(async move {
                    if let Err(e) = login_failure::record(
                        store.as_ref(),
                        &account,
                        user.as_ref(),
                        &email,
                        reason,
                        ip,
                    )
                    .await
                    {
                        tracing::warn!(account = %account.name, error = %ErrorChain(&e), "cannot record a failed sign-in");
                    }
                });
            }
            return Ok(login_page(
                StatusCode::UNAUTHORIZED,
                &next,
                &form.account,
                &form.email,
                Some(FAILED),
            ));
        }
    };
    // The password is right: a second factor, if the user has one, comes
    // before any session exists.
    let next = match second_step(&state, &form.account, &account, &user, &next).await? {
        SecondStep::Ask(response) => return Ok(response),
        SecondStep::Enrol => format!("{ENROL_PATH}?required=1"),
        SecondStep::None => next,
    };
    complete_sign_in(&state, &form.account, &account, &user, ip, &headers, &next).await
}

/// The end of every successful sign-in, whatever its methods (password,
/// password and code; a single sign-on method would end here too): the
/// rate limiter forgets the failures, a session starts, the `Login` event
/// is appended, and the browser goes to `next` with its session cookie.
async fn complete_sign_in(
    state: &AppState,
    account_typed: &str,
    account: &Account,
    user: &User,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    next: &str,
) -> Result<Response, ConsoleError> {
    state.login_limiter.record_success(account_typed, ip);
    // Sign-ins are rare enough to carry the clean-up of expired sessions.
    if let Err(e) = state.store.delete_expired_sessions(Timestamp::now()).await {
        tracing::warn!(error = %ErrorChain(&e), "cannot delete expired sessions");
    }
    let token = start_session(state, user.id).await?;
    record_authentication(state, account, user, "Login", ip, user_agent(headers)).await?;
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    for value in [
        set_cookie(SESSION_COOKIE, &token, "/", "Lax", SESSION_SECONDS),
        set_cookie(LOGIN_COOKIE, "", "/login", "Strict", 0),
        set_cookie(two_factor::PENDING_COOKIE, "", "/login", "Strict", 0),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

/// What follows a right password.
enum SecondStep {
    /// Nothing: sign in.
    None,
    /// The user has two-factor sign-in: this page asks for the code.
    Ask(Response),
    /// The account requires two-factor sign-in and the user has none yet:
    /// sign in, then straight to enrolment (led through it, not locked out).
    Enrol,
}

async fn second_step(
    state: &AppState,
    account_typed: &str,
    account: &Account,
    user: &User,
    next: &str,
) -> Result<SecondStep, ConsoleError> {
    let enrolled = state
        .store
        .two_factor(user.id)
        .await?
        .is_some_and(|r| r.confirmed_at.is_some());
    if !enrolled {
        return Ok(if state.store.two_factor_required(account.id).await? {
            SecondStep::Enrol
        } else {
            SecondStep::None
        });
    }
    let key = two_factor::sealing_key(state).ok_or_else(|| {
        ConsoleError::internal("two-factor sign-in", "this server has no secret key")
    })?;
    let pending = two_factor::Pending {
        user_id: user.id,
        account_id: account.id,
        account_typed: account_typed.to_string(),
        email: user.email.clone(),
        password: two_factor::password_fingerprint(&user.password_hash),
        next: next.to_string(),
        expires_at: Timestamp::from_micros(
            Timestamp::now().micros() + two_factor::PENDING_SECONDS * 1_000_000,
        ),
    };
    let sealed = two_factor::seal_pending(key, &pending)
        .map_err(|e| ConsoleError::internal("two-factor sign-in", e))?;
    let mut response = code_page(StatusCode::OK, None);
    let cookie = set_cookie(
        two_factor::PENDING_COOKIE,
        &sealed,
        "/login",
        "Strict",
        two_factor::PENDING_SECONDS,
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(SecondStep::Ask(response))
}

#[derive(Template)]
#[template(path = "login_code.html")]
struct CodePage {
    frame: Option<Frame>,
    csrf: String,
    error: Option<String>,
}

/// The code step's form, with a fresh double-submit CSRF token.
fn code_page(status: StatusCode, error: Option<&str>) -> Response {
    let csrf = random_token(24);
    let mut response = render(
        status,
        &CodePage {
            frame: None,
            csrf: csrf.clone(),
            error: error.map(str::to_string),
        },
    );
    let cookie = set_cookie(LOGIN_COOKIE, &csrf, "/login", "Strict", LOGIN_FORM_SECONDS);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

/// The pending sign-in of the request's cookie, if it is still valid.
fn pending_of(state: &AppState, headers: &HeaderMap) -> Option<two_factor::Pending> {
    let key = two_factor::sealing_key(state)?;
    let value = cookie(headers, two_factor::PENDING_COOKIE).filter(|v| !v.is_empty())?;
    two_factor::open_pending(key, value, Timestamp::now())
}

/// `GET /login/two-factor`: the code step again (a reload), or back to the
/// password when no sign-in waits for a code.
pub async fn show_code(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match pending_of(&state, &headers) {
        Some(_) => code_page(StatusCode::OK, None),
        None => Redirect::to("/login").into_response(),
    }
}

/// `POST /login/two-factor`: the code (or a recovery code) of a sign-in
/// whose password was right. A wrong or reused code counts as a failed
/// sign-in for the rate limiter.
pub async fn submit_code(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ConsoleForm(form): ConsoleForm<CodeForm>,
) -> Result<Response, ConsoleError> {
    let sent_ok = cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|c| !form.csrf.is_empty() && same_secret(c, &form.csrf));
    if !sent_ok {
        return Ok(code_page(
            StatusCode::FORBIDDEN,
            Some("The form expired or did not come from this site; please try again."),
        ));
    }
    let Some(pending) = pending_of(&state, &headers) else {
        return Ok(login_page(
            StatusCode::UNAUTHORIZED,
            "/settings/audit-logs",
            "",
            "",
            Some("The sign-in waited too long for its code; please sign in again."),
        ));
    };
    let ip = client_ip(connect.as_ref().map(|e| &e.0));
    if let Some(wait) = state.login_limiter.blocked(&pending.account_typed, ip) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return Ok(code_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many failed sign-ins for this account from your address. Try again in {minutes} minute(s)."
            )),
        ));
    }
    // The user as they are now: disabled, removed or given a new password
    // since the password step, the sign-in ends here, before any code is
    // checked (or a recovery code used up).
    let (account, user) = match still_allowed(&state, &pending).await? {
        Ok(found) => found,
        Err((account, user, reason)) => {
            state
                .login_limiter
                .record_failure(&pending.account_typed, ip);
            if let Some(account) = account {
                if let Err(e) = login_failure::record(
                    state.store.as_ref(),
                    &account,
                    user.as_ref(),
                    &pending.email,
                    reason,
                    ip,
                )
                .await
                {
                    tracing::warn!(account = %account.name, error = %ErrorChain(&e), "cannot record a failed sign-in");
                }
            }
            let mut response = login_page(
                StatusCode::UNAUTHORIZED,
                &pending.next,
                "",
                "",
                Some(FAILED),
            );
            let gone = set_cookie(two_factor::PENDING_COOKIE, "", "/login", "Strict", 0);
            if let Ok(v) = HeaderValue::from_str(&gone) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            return Ok(response);
        }
    };
    let key = two_factor::sealing_key(&state).ok_or_else(|| {
        ConsoleError::internal("two-factor sign-in", "this server has no secret key")
    })?;
    let checked = two_factor::check_code(
        state.store.as_ref(),
        key,
        pending.user_id,
        &form.code,
        Timestamp::now(),
    )
    .await
    .map_err(|e| ConsoleError::internal("two-factor sign-in", ErrorChain(&e)))?;
    if checked == two_factor::CodeCheck::Refused {
        state
            .login_limiter
            .record_failure(&pending.account_typed, ip);
        return Ok(code_page(
            StatusCode::UNAUTHORIZED,
            Some("That code is not right, or was used already. Enter the current code from your app, or a recovery code."),
        ));
    }
    complete_sign_in(
        &state,
        &pending.account_typed,
        &account,
        &user,
        ip,
        &headers,
        &pending.next,
    )
    .await
}

/// Why a pending sign-in may not go on: the account and user, if they
/// still exist, and the reason recorded.
type Refusal = (Option<Account>, Option<User>, FailureReason);

/// The account and user of a pending sign-in, read again: refused if the
/// account or user is gone, the user is disabled, or their password was
/// set since the password step.
async fn still_allowed(
    state: &AppState,
    pending: &two_factor::Pending,
) -> Result<Result<(Account, User), Refusal>, ConsoleError> {
    let Some(account) = state.store.account_by_id(pending.account_id).await? else {
        return Ok(Err((None, None, FailureReason::UnknownEmail)));
    };
    let user = state
        .store
        .user_by_email(pending.account_id, &pending.email)
        .await?
        .filter(|u| u.id == pending.user_id);
    let Some(user) = user else {
        return Ok(Err((Some(account), None, FailureReason::UnknownEmail)));
    };
    let disabled = match state.store.user_info(account.id, user.id).await? {
        Some(info) => info.disabled_at.is_some(),
        None => true,
    };
    if disabled {
        return Ok(Err((Some(account), Some(user), FailureReason::Disabled)));
    }
    if user.password_hash.is_empty() {
        return Ok(Err((
            Some(account),
            Some(user),
            FailureReason::PasswordNotSet,
        )));
    }
    if !same_secret(
        &two_factor::password_fingerprint(&user.password_hash),
        &pending.password,
    ) {
        return Ok(Err((
            Some(account),
            Some(user),
            FailureReason::WrongPassword,
        )));
    }
    Ok(Ok((account, user)))
}

/// The account named, and its user with that email (each if it exists).
async fn find_user(
    state: &AppState,
    account: &str,
    email: &str,
) -> Result<(Option<Account>, Option<User>), ConsoleError> {
    let Some(account) = state.store.account_by_name(account.trim()).await? else {
        return Ok((None, None));
    };
    let email = email.trim().to_lowercase();
    let user = state.store.user_by_email(account.id, &email).await?;
    Ok((Some(account), user))
}

pub async fn logout(
    State(state): State<AppState>,
    user: SignedIn,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    state.store.delete_session(user.token_hash).await?;
    let ip = client_ip(connect.as_ref().map(|e| &e.0));
    record_authentication(
        &state,
        &user.grant.account,
        &user.grant.user,
        "Logout",
        ip,
        user_agent(&headers),
    )
    .await?;
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", "/", "Lax", 0)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Appends a `Login` or `Logout` event of `user` to its account.
pub(crate) async fn record_authentication(
    state: &AppState,
    account: &Account,
    user: &User,
    action: &str,
    ip: Option<IpAddr>,
    user_agent: Option<String>,
) -> Result<(), ConsoleError> {
    let mut context = serde_json::Map::new();
    if let Some(ip) = ip {
        context.insert("ip".into(), json!(ip.to_string()));
    }
    if let Some(ua) = user_agent {
        context.insert("user_agent".into(), json!(ua));
    }
    let mut value = json!({
        "event_type": AUTHENTICATION,
        "action": action,
        "actor": {"id": format!("user:{}", user.id), "email": user.email},
        "target": {"id": format!("user:{}", user.id), "name": user.email},
    });
    if !context.is_empty() {
        value["context"] = serde_json::Value::Object(context);
    }
    let event = NewEvent::parse(&value, &account.taxonomy, Timestamp::now())
        .map_err(|errors| ConsoleError::internal("authentication event", format!("{errors:?}")))?;
    let source = Source::Console {
        user: user.id.to_string(),
    };
    state
        .store
        .append_from(account, &source, vec![event])
        .await?;
    Ok(())
}
