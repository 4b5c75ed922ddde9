//! The HTTP side of Auditlog: the JSON API (`api`), authentication (`auth`),
//! the one error type (`error`), the shared state (`state`) and the export
//! worker with its file formats (`exports`). Everything
//! here is written against the storage traits of `auditlog-store` and knows
//! no SQL; the binary picks the backend and hands it in.

pub mod api;
pub mod auth;
pub mod error;
pub mod exports;
pub mod state;

pub use state::AppState;

use axum::http::{header, HeaderValue};
use axum::Router;
use std::future::Future;
use tokio::net::TcpListener;

/// The whole application's routes.
pub fn router(state: AppState) -> Router {
    api::routes()
        .fallback(|| async {
            error::ApiError::not_found("no such route; see /api/v1/openapi.json")
        })
        .layer(axum::middleware::map_response(security_headers))
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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
