//! The web console, served by the same binary: sign-in (`login`), sessions
//! and roles (`session`), the Audit Logs page (`audit_logs`, with `view` for
//! the rows, `histogram` for the chart, `live` for the Live switch's
//! stream of new rows and `query_check` for the search box's check), Export and the Exports page
//! (`exports`, with `export_form` for the confirmation), Settings > Log
//! Streams (`log_streams`), Settings > Retention and Personal data
//! (`retention`), Settings > Event Types (`event_types`), Settings > API
//! Keys (`api_keys`), two-factor sign-in's enrolment (`two_factor`), and the
//! page chrome and error
//! (`retention`), Settings > Users (`users`), every user's Profile
//! (`profile`: password, sessions), the one-time sign-in links
//! (`welcome`), and the page chrome and error
//! pages (`page`). Templates are askama files compiled into the binary, so
//! every value is HTML-escaped; CSS and script are embedded files served from
//! `/console/assets/`, so the console needs no network and the
//! Content-Security-Policy can forbid inline script and style.

pub mod api_keys;
pub mod audit_logs;
pub mod event_types;
pub mod export_form;
pub mod exports;
pub mod form;
pub mod histogram;
pub mod live;
pub mod log_streams;
pub mod login;
pub mod page;
pub mod profile;
pub mod query_check;
pub mod retention;
pub mod session;
pub mod two_factor;
pub mod url;
pub mod users;
pub mod view;
pub mod welcome;

use crate::state::AppState;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

/// The console's policy: only this origin's files, no inline script or
/// style, no framing, forms only to this site.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to(audit_logs::PATH) }))
        .route(
            "/settings",
            get(|| async { Redirect::to(audit_logs::PATH) }),
        )
        .route("/login", get(login::show).post(login::submit))
        .route(
            "/login/two-factor",
            get(login::show_code).post(login::submit_code),
        )
        .route("/logout", post(login::logout))
        .route(audit_logs::PATH, get(audit_logs::page))
        .route(audit_logs::LIVE_PATH, get(live::stream))
        .route(query_check::PATH, get(query_check::check))
        .route(exports::PATH, get(exports::list).post(exports::create))
        .route(export_form::CONFIRM_PATH, get(exports::confirm))
        .route(
            "/settings/exports/{id}/download",
            get(exports::download_file),
        )
        .route(
            log_streams::PATH,
            get(log_streams::list).post(log_streams::create),
        )
        .route(log_streams::NEW_PATH, get(log_streams::new_form))
        .route("/settings/log-streams/{id}", get(log_streams::show))
        .route("/settings/log-streams/{id}/test", post(log_streams::test))
        .route(
            "/settings/log-streams/{id}/status",
            post(log_streams::status),
        )
        .route(
            "/settings/log-streams/{id}/replay",
            post(log_streams::replay),
        )
        .route(
            "/settings/log-streams/{id}/edit",
            get(log_streams::edit_form).post(log_streams::edit),
        )
        .route(
            "/settings/log-streams/{id}/delete",
            post(log_streams::delete),
        )
        .route(api_keys::PATH, get(api_keys::list).post(api_keys::create))
        .route(api_keys::REVOKE_PATH, post(api_keys::revoke))
        .route(
            event_types::PATH,
            get(event_types::list).post(event_types::add_type),
        )
        .route(event_types::ADD_ACTION_PATH, post(event_types::add_action))
        .route(event_types::RETIRE_PATH, post(event_types::retire))
        .route(event_types::RETIRE_ACTION_PATH, post(event_types::retire))
        .route(login::ENROL_PATH, get(two_factor::show))
        .route(
            "/settings/profile/two-factor/start",
            post(two_factor::start),
        )
        .route(
            "/settings/profile/two-factor/confirm",
            post(two_factor::confirm),
        )
        .route(
            "/settings/profile/two-factor/disable",
            post(two_factor::disable),
        )
        .route(
            "/settings/profile/two-factor/require",
            post(two_factor::require),
        )
        .route(users::PATH, get(users::list).post(users::create))
        .route("/settings/users/{id}/role", post(users::set_role))
        .route("/settings/users/{id}/disable", post(users::disable))
        .route("/settings/users/{id}/enable", post(users::enable))
        .route(
            "/settings/users/{id}/reset-password",
            post(users::reset_password),
        )
        .route(profile::PATH, get(profile::show))
        .route("/settings/profile/password", post(profile::change_password))
        .route(
            "/settings/profile/sessions/{id}/end",
            post(profile::end_session),
        )
        .route("/welcome/{token}", get(welcome::show).post(welcome::submit))
        .route(retention::PATH, get(retention::show).post(retention::save))
        .route(
            retention::PERSONAL_DATA_PATH,
            get(retention::personal_data).post(retention::save_personal_data),
        )
        .route(
            "/settings/personal-data/erasures",
            post(retention::start_erasure),
        )
        .route("/settings/retention/holds", post(retention::create_hold))
        .route(
            "/settings/retention/holds/release",
            post(retention::release_hold),
        )
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .layer(axum::middleware::map_response(console_headers))
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Headers of every console answer, on top of the ones every answer carries.
async fn console_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
