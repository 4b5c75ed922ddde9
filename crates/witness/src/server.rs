//! The witness's HTTP service: `POST /add-checkpoint` (C2SP tlog-witness).
//! Each request is checked by `auditlog_core::witness` against the state
//! held under one lock, stored durably, and only then cosigned; one lock for
//! every origin keeps this simple, and a witness's load (one request per
//! log checkpoint) is far below what serial fsyncs allow.

use crate::logs::Logs;
use crate::state::{StateDir, StateError};
use auditlog_core::cosignature::{CosignatureSigner, CosignatureVerifier};
use auditlog_core::witness::{AddCheckpoint, Refusal, WitnessedHead, SIZE_CONTENT_TYPE};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A request body larger than this is refused (413): 63 proof lines and a
/// checkpoint with a few dozen signatures fit many times over.
const MAX_BODY_BYTES: usize = 64 * 1024;
const TEXT: &str = "text/plain; charset=utf-8";

/// A running witness: the logs it knows, its key and its state.
#[derive(Debug)]
pub struct Witness {
    logs: Logs,
    signer: CosignatureSigner,
    state: Arc<StateDir>,
    /// The latest cosigned head per origin, as stored. Held from the check
    /// until the new head is stored (the spec's atomicity requirement).
    heads: tokio::sync::Mutex<HashMap<String, WitnessedHead>>,
}

/// What became of one `add-checkpoint` request.
#[derive(Debug)]
pub enum Outcome {
    /// 200: the cosignature line.
    Cosigned(String),
    /// 400, 403, 404, 409 or 422.
    Refused(Refusal),
    /// 500: the state could not be stored (nothing was cosigned).
    Failed(String),
}

impl Witness {
    /// Opens (and locks) the state directory and reads what was cosigned.
    pub fn open(
        logs: Logs,
        signer: CosignatureSigner,
        state_dir: &Path,
    ) -> Result<Self, StateError> {
        let (state, heads) = StateDir::open(state_dir)?;
        Ok(Self {
            logs,
            signer,
            state: Arc::new(state),
            heads: tokio::sync::Mutex::new(heads),
        })
    }

    /// The verifier key clients pin for this witness.
    pub fn verifier(&self) -> CosignatureVerifier {
        self.signer.verifier()
    }

    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// Handles one request body.
    pub async fn add_checkpoint(&self, body: &[u8]) -> Outcome {
        let request = match AddCheckpoint::parse(body) {
            Ok(request) => request,
            Err(refusal) => return Outcome::Refused(refusal),
        };
        let origin = request.origin().to_string();
        let mut heads = self.heads.lock().await;
        let accepted = match request.evaluate(self.logs.keys(&origin), heads.get(&origin)) {
            Ok(accepted) => accepted,
            Err(refusal) => {
                if refusal.is_evidence() {
                    // Validly signed by the log and inconsistent with what
                    // this witness cosigned: possibly proof of misbehaviour.
                    tracing::warn!(
                        origin,
                        old_size = request.old_size(),
                        checkpoint = request.note(),
                        %refusal,
                        "refused an inconsistent checkpoint signed by the log"
                    );
                } else {
                    tracing::info!(origin, %refusal, "refused a checkpoint");
                }
                return Outcome::Refused(refusal);
            }
        };
        if !accepted.is_unchanged() {
            let state = self.state.clone();
            let (save_origin, note) = (origin.clone(), request.note().to_string());
            let saved = tokio::task::spawn_blocking(move || state.save(&save_origin, &note)).await;
            match saved {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let error = auditlog_core::ErrorChain(&e).to_string();
                    tracing::error!(
                        origin,
                        error,
                        "cannot store the witness state; not cosigning"
                    );
                    return Outcome::Failed(error);
                }
                Err(e) => return Outcome::Failed(format!("the state writer failed: {e}")),
            }
            heads.insert(origin.clone(), accepted.head());
        }
        drop(heads);
        match accepted.cosign(&self.signer, unix_now()) {
            Ok(line) => {
                tracing::info!(origin, size = accepted.head().size, "cosigned");
                Outcome::Cosigned(line)
            }
            Err(e) => Outcome::Failed(format!("cannot cosign: {e}")),
        }
    }
}

/// Seconds since the epoch (0 on a clock before 1970, which no signature needs).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        match self {
            Outcome::Cosigned(line) => {
                (StatusCode::OK, [(header::CONTENT_TYPE, TEXT)], line).into_response()
            }
            Outcome::Refused(refusal) => {
                let status = StatusCode::from_u16(refusal.status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                match refusal.latest_size() {
                    // The protocol's 409 body: the witness's size, nothing else.
                    Some(size) => (
                        status,
                        [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)],
                        format!("{size}\n"),
                    )
                        .into_response(),
                    None => (
                        status,
                        [(header::CONTENT_TYPE, TEXT)],
                        format!("{refusal}\n"),
                    )
                        .into_response(),
                }
            }
            Outcome::Failed(why) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, TEXT)],
                format!("{why}\n"),
            )
                .into_response(),
        }
    }
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Outcome {
    witness.add_checkpoint(&body).await
}

/// The witness's routes.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(witness)
}

/// Serves `witness` on `listener` until `shutdown` completes; requests in
/// flight finish first (their state is stored before they answer anyway).
pub async fn serve(
    listener: TcpListener,
    witness: Arc<Witness>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(witness))
        .with_graceful_shutdown(shutdown)
        .await
}
