//! Operations endpoints: liveness, readiness, metrics and the OpenAPI description.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready when the storage answers and the signer has not refused to sign
/// (a rolled-back store must not look healthy).
pub async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(reason) = state.signer.as_ref().and_then(|s| s.refusal()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "signing_refused", "reason": reason})),
        )
            .into_response();
    }
    match state.store.ping().await {
        Ok(()) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "unavailable", "reason": e.to_string()})),
            )
                .into_response()
        }
    }
}

/// Prometheus text format; see `crate::metrics` for what is exposed.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(&state).await,
    )
        .into_response()
}

pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../openapi.json"),
    )
        .into_response()
}
