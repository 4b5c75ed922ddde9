//! Operations endpoints: liveness, readiness and metrics (the OpenAPI
//! description is served by `openapi`, which lists these handlers).

use crate::api::schema::{
    AliveStatus, Health, Readiness, ReadinessStatus, StorageWriteStatus, StorageWrites,
};
use crate::state::AppState;
use auditlog_core::ErrorChain;
use auditlog_store::WriteHealth;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn healthz() -> Response {
    axum::Json(Health {
        status: AliveStatus::Ok,
    })
    .into_response()
}

/// Ready when the storage answers, the signer has not refused to sign and
/// no witness refused the root log (a rolled-back store must not look
/// healthy). `storage_writes` tells
/// whether the last append transaction failed (a full or failing disk);
/// that alone keeps the server ready, because it still serves reads, and a
/// balancer that took it out would stop the retries that show recovery.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Storage reachable and signing possible", body = Readiness),
        (status = 503, description = "Not ready: storage unreachable (`unavailable`), signing refused after a rollback of an account's tree or of the root log (`signing_refused`), or a witness refused the root log (`witness_refused`: its history contradicts what the witness cosigned); `reason` says why", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(reason) = state.signer.as_ref().and_then(|s| s.refusal()) {
        return not_ready(ReadinessStatus::SigningRefused, reason);
    }
    if let Some(reason) = state.root_log.as_ref().and_then(|r| r.alarm()) {
        return not_ready(ReadinessStatus::WitnessRefused, reason);
    }
    if let Some(reason) = state.root_log.as_ref().and_then(|r| r.refusal()) {
        return not_ready(ReadinessStatus::SigningRefused, reason);
    }
    match state.store.ping().await {
        Ok(()) => axum::Json(Readiness {
            status: ReadinessStatus::Ready,
            reason: None,
            storage_writes: Some(storage_writes(state.store.write_health())),
        })
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "readiness check failed");
            not_ready(ReadinessStatus::Unavailable, e.to_string())
        }
    }
}

fn not_ready(status: ReadinessStatus, reason: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(Readiness {
            status,
            reason: Some(reason),
            storage_writes: None,
        }),
    )
        .into_response()
}

fn storage_writes(health: WriteHealth) -> StorageWrites {
    let (status, reason, since) = match health {
        WriteHealth::Ok => (StorageWriteStatus::Ok, None, None),
        WriteHealth::Full { reason, since } => {
            (StorageWriteStatus::Full, Some(reason), Some(since))
        }
        WriteHealth::Failing { reason, since } => {
            (StorageWriteStatus::Failing, Some(reason), Some(since))
        }
    };
    StorageWrites {
        status,
        reason,
        since: since.map(|t| t.to_rfc3339()),
    }
}

/// Prometheus metrics; see `crate::metrics` for what is exposed.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "Counters, gauges and histograms in the Prometheus text format (version 0.0.4)", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(
            &state.metrics,
            state.store.as_ref(),
            state.signer.as_deref(),
        )
        .await,
    )
        .into_response()
}
