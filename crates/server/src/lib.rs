//! The HTTP side of Auditlog. Everything here is written against the storage
//! traits of `auditlog-store` and knows no SQL; the binary picks the backend
//! and hands it in.
//!
//! # Layout
//!
//! - This root: the router (every layer, in order) and `serve`.
//! - `api`: the JSON API (events, proofs, exports, operations), its wire
//!   types (`schema`) and its OpenAPI description (`openapi`).
//! - `console`: the web console (sign-in, the Audit Logs and Exports pages).
//! - `query_params`: the filter and page parameters, parsed for both;
//!   `event_counts`: histogram buckets for both.
//! - `two_factor`: TOTP sign-in (the algorithm, sealed secrets, recovery
//!   codes, the pending code step), shared by the console's pages.
//! - `auth`: the `ApiCaller` extractor; `tokens`: keys, passwords and random
//!   tokens; `key_cache`: recently verified keys.
//! - `error`: `ApiError`, the one error answer of the API.
//! - `state`: `AppState`, what every handler shares.
//! - `limits`: per-key rate, failed sign-ins, request time, connections.
//! - `request_id`: an id on every answer and a span around every request.
//! - `metrics`: Prometheus `/metrics` and the per-route latency layer.
//! - `exports`: the background export worker and its file formats.
//! - `streams`: log streams (secrets, allowed addresses, webhook delivery,
//!   the delivery worker); `api::streams` configures them.
//! - `event_types`: an admin's changes to the account's taxonomy, audited.
//! - `users`: console users as admins manage them (invitations with
//!   sign-in links, roles, disabling, passwords) and their audit trail.
//! - `holds`: legal holds matched against stored events (what pruning and
//!   erasure ask before removing anything).
//! - `retention`: the pruner (plans, resumable jobs, its worker).
//! - `live`: the live tail (Server-Sent Events of new events) for the API
//!   and the console.
//! - `signer`, `signing_key`: checkpoint signing and its key; `bundle`:
//!   export bundles with proofs; `root_log`: root checkpoints over every
//!   account's checkpoints, submitted to witnesses for cosignatures.
//! - `fuzzing`, `properties`: what the fuzz targets and property tests
//!   check (tests and the `fuzzing` feature only).

pub mod api;
pub mod auth;
pub mod bundle;
pub mod console;
pub mod erasure;
pub mod error;
pub mod event_counts;
pub mod event_types;
pub mod exports;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod holds;
pub mod key_cache;
pub mod keys;
pub mod limits;
pub mod live;
pub mod metrics;
#[cfg(test)]
mod properties;
pub mod query_params;
pub mod request_id;
pub mod retention;
pub mod root_log;
pub mod signer;
pub mod signing_key;
pub mod state;
pub mod streams;
pub mod tokens;
pub mod two_factor;
pub mod users;

pub use state::AppState;

use axum::http::{header, HeaderValue};
use axum::serve::ListenerExt;
use axum::Router;
use limits::connections::CappedListener;
use std::future::Future;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

/// The whole application's routes.
pub fn router(state: AppState) -> Router {
    let request_timeout = state.limits.request_timeout;
    api::routes()
        .merge(console::routes())
        .fallback(|| async {
            error::ApiError::not_found("no such route; see /api/v1/openapi.json")
        })
        // Inside the timeout, so that a handler finished after its request
        // timed out still has its failure logged; inside the request span.
        .layer(axum::middleware::from_fn(error::log_errors))
        .layer(axum::middleware::from_fn_with_state(
            limits::timeout::RequestTimeout {
                limit: request_timeout,
                page: console::page::timed_out,
            },
            limits::timeout::answer_within,
        ))
        .layer(axum::middleware::map_response(
            method_not_allowed_in_error_shape,
        ))
        // Headers every answer carries; a handler's own `Cache-Control`
        // (the console's assets) is kept.
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(axum::middleware::from_fn(metrics::track_requests))
        // Request ids, from the inside out: the span and completion log
        // read the id that `set_layer` put on the request; the answer gets
        // it back; an insane client id is dropped before `set_layer` sees it.
        .layer(axum::middleware::from_fn(request_id::request_span))
        .layer(request_id::propagate_layer())
        .layer(request_id::set_layer())
        .layer(axum::middleware::from_fn(request_id::drop_insane_id))
        .with_state(state)
}

/// axum answers a known path with an unknown method 405 and an empty body;
/// clients get the error shape like every other error, `Allow` kept.
async fn method_not_allowed_in_error_shape(
    response: axum::response::Response,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if response.status() != axum::http::StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let message = match allow.as_ref().and_then(|v| v.to_str().ok()) {
        Some(methods) => format!("this route takes only {methods}"),
        None => "this route does not take that method".to_string(),
    };
    let mut answer = error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        message,
    )
    .into_response();
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    answer
}

/// Serves until `shutdown` completes, then stops accepting and lets
/// in-flight requests finish. At most `state.limits.max_connections`
/// connections are served at once.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // `tap_io` changes nothing on the connection; axum provides the peer
    // address (`ConnectInfo<SocketAddr>`) for a tapped listener of any kind,
    // but for no other listener than a bare `TcpListener`.
    let listener = CappedListener::new(listener, &state.limits).tap_io(|_| {});
    // Live streams never end by themselves: they are ended when the drain
    // begins, so that they do not hold it up.
    let live = state.live.clone();
    // The peer address is the client IP of console sign-in events and rate limits.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            live.close();
        })
        .await
}
