//! Operations endpoints: liveness, readiness, metrics and the OpenAPI description.

use crate::state::AppState;
use auditlog_store::WriteHealth;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready when the storage answers and the signer has not refused to sign
/// (a rolled-back store must not look healthy). `storage_writes` tells
/// whether the last append transaction failed (a full or failing disk);
/// that alone keeps the server ready, because it still serves reads, and a
/// balancer that took it out would stop the retries that show recovery.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(reason) = state.signer.as_ref().and_then(|s| s.refusal()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "signing_refused", "reason": reason})),
        )
            .into_response();
    }
    match state.store.ping().await {
        Ok(()) => axum::Json(json!({
            "status": "ready",
            "storage_writes": write_health_json(&state.store.write_health()),
        }))
        .into_response(),
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

fn write_health_json(health: &WriteHealth) -> serde_json::Value {
    match health {
        WriteHealth::Ok => json!({"status": "ok"}),
        WriteHealth::Full { reason, since } => {
            json!({"status": "full", "reason": reason, "since": since.to_rfc3339()})
        }
        WriteHealth::Failing { reason, since } => {
            json!({"status": "failing", "reason": reason, "since": since.to_rfc3339()})
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
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
