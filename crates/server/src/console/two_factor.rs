//! Settings > Profile > Two-factor sign-in (`/settings/profile/two-factor`,
//! every signed-in user, for themselves): set up TOTP (a QR code and the
//! secret, shown while the enrolment waits for its first code, never after),
//! confirm it with a code, get ten recovery codes (shown once), or turn it
//! off with a code. Admins also set whether the account requires it. Every
//! change is audited: `Auditlog User` `Enable Two-Factor` / `Disable
//! Two-Factor`, `Auditlog Account` `Update` of `require_two_factor`, never
//! a secret or a code. Wrong codes here count as failed sign-ins for the
//! rate limiter, so this page cannot be used to guess codes either.

use super::exports::actor;
use super::form::ConsoleForm;
use super::login::ENROL_PATH;
use super::page::{render, ConsoleError, Frame};
use super::session::SignedIn;
use crate::state::AppState;
use crate::streams::secrets::SecretKey;
use crate::two_factor::{self, totp, CodeCheck};
use askama::Template;
use auditlog_core::{ErrorChain, Timestamp};
use auditlog_store::{Role, StoreError};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;
use std::net::SocketAddr;

/// The secret while enrolment waits for its first code.
struct Setup {
    qr: String,
    secret: String,
    uri: String,
}

#[derive(Template)]
#[template(path = "two_factor.html")]
struct TwoFactorPage {
    frame: Option<Frame>,
    csrf: String,
    enabled: bool,
    codes_left: u32,
    /// The account requires two-factor sign-in.
    required: bool,
    /// Led here at sign-in because the account requires it.
    led_here: bool,
    is_admin: bool,
    setup: Option<Setup>,
    /// Recovery codes just made: shown this once.
    recovery: Vec<String>,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    required: Option<String>,
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "disabled" => "Two-factor sign-in is off. You sign in with your password alone.",
        "required" => "Two-factor sign-in is now required for everyone in this account.",
        "optional" => "Two-factor sign-in is now optional in this account.",
        _ => return None,
    })
}

fn key(state: &AppState) -> Result<&SecretKey, ConsoleError> {
    two_factor::sealing_key(state).ok_or_else(|| {
        ConsoleError::internal("two-factor sign-in", "this server has no secret key")
    })
}

/// What the caller has to show beyond the user's state.
#[derive(Default)]
struct Shown {
    led_here: bool,
    setup: Option<Setup>,
    recovery: Vec<String>,
    notice: Option<&'static str>,
    error: Option<String>,
}

impl Shown {
    fn error(message: &str) -> Self {
        Self {
            error: Some(message.into()),
            ..Self::default()
        }
    }
}

/// The page for `user` with what the caller has to show.
async fn page(
    state: &AppState,
    user: &SignedIn,
    status: StatusCode,
    shown: Shown,
) -> Result<Response, ConsoleError> {
    let Shown {
        led_here,
        setup,
        recovery,
        notice,
        error,
    } = shown;
    let id = user.grant.user.id;
    let enabled = state
        .store
        .two_factor(id)
        .await?
        .is_some_and(|r| r.confirmed_at.is_some());
    let codes_left = if enabled {
        state.store.recovery_codes_left(id).await?
    } else {
        0
    };
    let required = state
        .store
        .two_factor_required(user.grant.account.id)
        .await?;
    Ok(render(
        status,
        &TwoFactorPage {
            frame: Some(user.frame("two-factor")),
            csrf: user.grant.csrf_token.clone(),
            enabled,
            codes_left,
            required,
            led_here: led_here && !enabled,
            is_admin: user.grant.user.role == Role::Admin,
            setup,
            recovery,
            notice,
            error,
        },
    ))
}

pub async fn show(
    State(state): State<AppState>,
    user: SignedIn,
    Query(query): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let shown = Shown {
        led_here: query.required.is_some(),
        notice: notice(query.done.as_deref()),
        ..Shown::default()
    };
    page(&state, &user, StatusCode::OK, shown).await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// The setup parts of `secret`.
fn setup(user: &SignedIn, secret: &[u8]) -> Result<Setup, ConsoleError> {
    let uri = totp::otpauth_uri(secret, &user.grant.account.name, &user.grant.user.email);
    let qr = two_factor::qr_data_uri(&uri).map_err(|e| ConsoleError::internal("QR code", e))?;
    Ok(Setup {
        qr,
        secret: totp::base32(secret),
        uri,
    })
}

/// Starts (or restarts) enrolment: a new secret, shown with its QR code.
pub async fn start(
    State(state): State<AppState>,
    user: SignedIn,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let key = key(&state)?;
    let id = user.grant.user.id;
    let secret = two_factor::new_secret();
    let sealed = two_factor::seal_secret(key, id, &secret)
        .map_err(|e| ConsoleError::internal("two-factor secret", e))?;
    match state
        .store
        .begin_two_factor(id, &sealed, Timestamp::now())
        .await
    {
        Ok(()) => {}
        Err(StoreError::AlreadyExists(_)) => {
            let shown = Shown::error(
                "Two-factor sign-in is already on; turn it off first to set it up again.",
            );
            return page(&state, &user, StatusCode::CONFLICT, shown).await;
        }
        Err(e) => return Err(e.into()),
    }
    let setup = setup(&user, &secret)?;
    let shown = Shown {
        setup: Some(setup),
        ..Shown::default()
    };
    page(&state, &user, StatusCode::OK, shown).await
}

/// Confirms enrolment with a code of the new secret; answers with the
/// recovery codes, shown this once.
pub async fn confirm(
    State(state): State<AppState>,
    user: SignedIn,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    ConsoleForm(form): ConsoleForm<CodeForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let key = key(&state)?;
    let id = user.grant.user.id;
    let record = state.store.two_factor(id).await?;
    let Some(record) = record.filter(|r| r.confirmed_at.is_none()) else {
        return Ok(Redirect::to(ENROL_PATH).into_response());
    };
    let secret = two_factor::open_secret(key, id, &record.sealed_secret)
        .map_err(|e| ConsoleError::internal("two-factor secret", e))?;
    let now = Timestamp::now();
    let seconds = u64::try_from(now.micros() / 1_000_000).unwrap_or(0);
    let step = totp::matching_step(&secret, &form.code, seconds, None);
    let account = &user.grant.account;
    let Some(step) = step else {
        let ip = connect.as_ref().map(|c| c.0 .0.ip());
        state.login_limiter.record_failure(&account.name, ip);
        let setup = setup(&user, &secret)?;
        let shown = Shown {
            setup: Some(setup),
            ..Shown::error("That code is not right. Enter the 6-digit code your app shows now.")
        };
        return page(&state, &user, StatusCode::UNPROCESSABLE_ENTITY, shown).await;
    };
    let codes = two_factor::recovery_codes();
    let hashes: Vec<[u8; 32]> = codes.iter().map(|c| two_factor::recovery_hash(c)).collect();
    if !state
        .store
        .confirm_two_factor(id, step, &hashes, now)
        .await?
    {
        return Ok(Redirect::to(ENROL_PATH).into_response());
    }
    two_factor::record_user_change(
        state.store.as_ref(),
        account,
        &actor(&user),
        id,
        &user.grant.user.email,
        true,
    )
    .await?;
    let shown = Shown {
        recovery: codes,
        ..Shown::default()
    };
    page(&state, &user, StatusCode::OK, shown).await
}

/// Turns two-factor sign-in off, with a current code or a recovery code.
pub async fn disable(
    State(state): State<AppState>,
    user: SignedIn,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    ConsoleForm(form): ConsoleForm<CodeForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let key = key(&state)?;
    let id = user.grant.user.id;
    let account = &user.grant.account;
    let checked =
        two_factor::check_code(state.store.as_ref(), key, id, &form.code, Timestamp::now())
            .await
            .map_err(|e| ConsoleError::internal("two-factor sign-in", ErrorChain(&e)))?;
    if checked == CodeCheck::Refused {
        let ip = connect.as_ref().map(|c| c.0 .0.ip());
        state.login_limiter.record_failure(&account.name, ip);
        let shown = Shown::error(
            "That code is not right, or was used already; two-factor sign-in stays on.",
        );
        return page(&state, &user, StatusCode::UNPROCESSABLE_ENTITY, shown).await;
    }
    if state.store.disable_two_factor(id).await? {
        two_factor::record_user_change(
            state.store.as_ref(),
            account,
            &actor(&user),
            id,
            &user.grant.user.email,
            false,
        )
        .await?;
    }
    Ok(Redirect::to(&format!("{ENROL_PATH}?done=disabled")).into_response())
}

#[derive(Deserialize)]
pub struct RequireForm {
    #[serde(default)]
    csrf: String,
    /// `on` to require, anything else (or absent) to make it optional.
    #[serde(default)]
    required: Option<String>,
}

/// Admins: whether everyone in the account must use two-factor sign-in.
pub async fn require(
    State(state): State<AppState>,
    user: SignedIn,
    ConsoleForm(form): ConsoleForm<RequireForm>,
) -> Result<Response, ConsoleError> {
    if user.grant.user.role != Role::Admin {
        return Err(ConsoleError::AdminNeeded(Box::new(user.frame(""))));
    }
    user.check_csrf(&form.csrf)?;
    let account = &user.grant.account;
    let required = form.required.as_deref() == Some("on");
    let old = state
        .store
        .set_two_factor_required(account.id, required)
        .await?;
    if old != required {
        two_factor::record_requirement(state.store.as_ref(), account, &actor(&user), old, required)
            .await?;
    }
    let done = if required { "required" } else { "optional" };
    Ok(Redirect::to(&format!("{ENROL_PATH}?done={done}")).into_response())
}
