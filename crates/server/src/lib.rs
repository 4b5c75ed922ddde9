//! The HTTP side of Auditlog: the JSON API (`api`), the web console
//! (`console`), authentication (`auth`), the one error type (`error`), the
//! shared state (`state`), Prometheus metrics (`metrics`), the export worker with its file formats
//! (`exports`), the checkpoint signer and its key (`signer`, `signing_key`)
//! and export bundles (`bundle`). Everything
//! here is written against the storage traits of `auditlog-store` and knows
//! no SQL; the binary picks the backend and hands it in.

pub mod api;
pub mod auth;
pub mod bundle;
pub mod console;
pub mod error;
pub mod exports;
pub mod limits;
pub mod metrics;
pub mod signer;
pub mod signing_key;
pub mod state;

pub use state::AppState;

use axum::http::{header, HeaderValue};
use axum::Router;
use std::future::Future;
use tokio::net::TcpListener;

/// The whole application's routes.
pub fn router(state: AppState) -> Router {
    api::routes()
        .merge(console::routes())
        .fallback(|| async {
            error::ApiError::not_found("no such route; see /api/v1/openapi.json")
        })
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track_requests,
        ))
        .with_state(state)
}

/// Headers every answer carries.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Serves until `shutdown` completes, then stops accepting and lets
/// in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address is the client IP of console sign-in events and rate limits.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
