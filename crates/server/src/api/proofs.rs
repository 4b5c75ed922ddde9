//! Tamper evidence over HTTP (SPEC.md "Proofs"): the verifier key, signed
//! checkpoints, inclusion proofs for one event and consistency proofs
//! between two tree sizes. Hashes are standard base64, as in checkpoints.

use crate::api::path::{PathId, BAD_PATH_ID};
use crate::api::schema::{
    CheckpointParams, ConsistencyParams, ConsistencyProof, InclusionProof, RootCheckpointParams,
    RootInclusion, RootProofParams, WitnessedCheckpoint,
};
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::query_params::unknown_parameter;
use crate::root_log::{RootLog, Witnessed};
use crate::signer::{CheckpointSigner, SignError};
use crate::state::AppState;
use auditlog_store::{tree, Account, Scope, StoredCheckpoint};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::json;
use std::sync::Arc;

/// The query parameter of `GET /api/v1/checkpoint`.
pub const CHECKPOINT_PARAMS: &[&str] = &["size"];
/// The query parameters of `GET /api/v1/proofs/consistency`.
pub const CONSISTENCY_PARAMS: &[&str] = &["from", "to"];
/// The query parameter of `GET /api/v1/root-checkpoint` and `GET /api/v1/proofs/root`.
pub const ROOT_PARAMS: &[&str] = &["size"];
/// The header that says how many of the quorum cosigned: `<have>/<quorum>`.
pub const COSIGNATURES_HEADER: &str = "auditlog-cosignatures";

fn signer(state: &AppState) -> Result<&Arc<CheckpointSigner>, ApiError> {
    state.signer.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server has no signing key configured, so it serves no proofs",
        )
    })
}

fn root_log(state: &AppState) -> Result<&Arc<RootLog>, ApiError> {
    state.root_log.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server has no signing key configured, so it keeps no root log",
        )
    })
}

fn root_inclusion(witnessed: &Witnessed) -> RootInclusion {
    RootInclusion {
        leaf_index: witnessed.leaf_index,
        tree_size: witnessed.root.checkpoint.size,
        hashes: witnessed.hashes.iter().map(|h| BASE64.encode(h)).collect(),
        checkpoint: witnessed.root.note.clone(),
    }
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

impl From<SignError> for ApiError {
    fn from(e: SignError) -> Self {
        match e {
            SignError::Store(e) => e.into(),
            SignError::Rollback(reason) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "signing_refused",
                format!("no checkpoint can be signed: {reason}"),
            ),
        }
    }
}

/// `GET /api/v1/public-key`: public, so that anyone can pin it.
#[utoipa::path(
    get,
    path = "/api/v1/public-key",
    operation_id = "public_key",
    tag = "proofs",
    responses(
        (status = 200, description = "The checkpoint verifier key in C2SP signed-note form, `<name>+<hex key id>+<base64 key>`", body = String, content_type = "text/plain"),
        (status = 503, description = "This server has no signing key configured", body = ErrorBody),
    )
)]
pub async fn public_key(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(text(format!("{}\n", signer(&state)?.verifier().to_text())))
}

/// Only the named parameters, each at most once, as whole numbers.
fn numbers(
    pairs: &[(String, String)],
    allowed: &[&'static str],
) -> Result<Vec<Option<u64>>, ApiError> {
    let mut values = vec![None; allowed.len()];
    for (name, value) in pairs {
        let Some(at) = allowed.iter().position(|a| a == name) else {
            return Err(unknown_parameter(name, allowed));
        };
        if values[at].is_some() {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("{name} may be given only once"),
            )
            .with_details(json!({"field": name, "rule": "repeated"})));
        }
        let number = value.parse::<u64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_parameter",
                format!("{name} must be a whole number (a tree size); got {value:?}"),
            )
            .with_details(json!({"field": name, "rule": "not_a_number"}))
        })?;
        values[at] = Some(number);
    }
    Ok(values)
}

/// `GET /api/v1/checkpoint[?size=M]`.
#[utoipa::path(
    get,
    path = "/api/v1/checkpoint",
    operation_id = "checkpoint",
    tag = "proofs",
    security(("bearer" = [])),
    params(CheckpointParams),
    responses(
        (status = 200, description = "The signed checkpoint (C2SP tlog-checkpoint): origin, tree size, base64 root hash, a blank line, signature lines", body = String, content_type = "text/plain"),
        (status = 400, description = "An unknown parameter, or `size` is not a whole number", body = ErrorBody),
        (status = 404, description = "No checkpoint was signed at `size`, or the account has no events yet", body = ErrorBody),
        (status = 503, description = "No signing key is configured, or signing is refused because the store was rolled back", body = ErrorBody),
    )
)]
pub async fn checkpoint(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    signer(&state)?;
    let account = &caller.account;
    let checkpoint = match numbers(&pairs, CHECKPOINT_PARAMS)?[0] {
        Some(size) => state
            .store
            .checkpoint_at(account.id, size)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("no checkpoint was signed at size {size}"))
            })?,
        None => latest_checkpoint(&state, account).await?,
    };
    Ok(text(checkpoint.note))
}

/// The account's latest signed checkpoint (what `GET /api/v1/checkpoint`
/// and the tiles' `checkpoint` serve); 404 while the account has no events.
pub(crate) async fn latest_checkpoint(
    state: &AppState,
    account: &Account,
) -> Result<StoredCheckpoint, ApiError> {
    let signer = signer(state)?;
    match state.store.latest_checkpoint(account.id).await? {
        Some(latest) => Ok(latest),
        // Nothing signed yet: sign now rather than make the client wait.
        None => signer
            .sign_if_grown(account)
            .await?
            .ok_or_else(|| ApiError::not_found("the account has no events yet, so no checkpoint")),
    }
}

/// The latest checkpoint if it covers `seq`, else a new one signed now.
async fn covering(
    state: &AppState,
    caller: &ApiCaller,
    seq: u64,
) -> Result<StoredCheckpoint, ApiError> {
    if let Some(latest) = state.store.latest_checkpoint(caller.account.id).await? {
        if latest.size >= seq {
            return Ok(latest);
        }
    }
    signer(state)?
        .sign_if_grown(&caller.account)
        .await?
        .filter(|c| c.size >= seq)
        .ok_or_else(|| {
            ApiError::internal(
                "proof",
                format!("no checkpoint covers seq {seq} after signing"),
            )
        })
}

/// `GET /api/v1/events/{id}/proof`.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}/proof",
    operation_id = "event_proof",
    tag = "proofs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The leaf bytes (absent when the event's body was pruned or erased), its leaf hash, the inclusion proof and the signed checkpoint it verifies against", body = InclusionProof),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 404, description = "No event with this id in the key's account", body = ErrorBody),
        (status = 503, description = "No signing key is configured, or signing is refused because the store was rolled back", body = ErrorBody),
    )
)]
pub async fn event_proof(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    signer(&state)?;
    // A removed body (pruned, erased) keeps its leaf hash: its proof is
    // served without the leaf bytes.
    let (seq, leaf, leaf_hash) = match state.store.get(caller.account.id, &id).await? {
        Some(record) => (record.seq, Some(record.leaf_bytes), record.leaf_hash),
        None => match state.store.tombstone(caller.account.id, &id).await? {
            Some(tombstone) => (tombstone.seq, None, tombstone.leaf_hash),
            None => {
                return Err(ApiError::not_found(format!(
                    "no event with id {id:?} in this account"
                )))
            }
        },
    };
    // The checkpoint the witnesses covered, if one covers the event; else
    // the latest (signed now if need be), without a root inclusion.
    let witnessed = match &state.root_log {
        Some(root_log) => root_log.witnessed(caller.account.id, seq).await?,
        None => None,
    };
    let root = witnessed.as_ref().map(root_inclusion);
    let checkpoint = match witnessed {
        Some(witnessed) => witnessed.account_checkpoint,
        None => covering(&state, &caller, seq).await?,
    };
    let index = seq - 1;
    let hashes = tree::inclusion_proof(
        state.store.as_ref(),
        caller.account.id,
        checkpoint.size,
        index,
    )
    .await?;
    let hashes: Vec<String> = hashes.iter().map(|h| BASE64.encode(h)).collect();
    Ok(axum::Json(InclusionProof {
        leaf: leaf.map(|bytes| BASE64.encode(bytes)),
        leaf_hash: BASE64.encode(leaf_hash),
        leaf_index: index,
        tree_size: checkpoint.size,
        hashes,
        checkpoint: checkpoint.note,
        root,
    })
    .into_response())
}

/// `GET /api/v1/root-checkpoint[?size=N]`.
#[utoipa::path(
    get,
    path = "/api/v1/root-checkpoint",
    operation_id = "root_checkpoint",
    tag = "proofs",
    security(("bearer" = [])),
    params(RootCheckpointParams),
    responses(
        (status = 200, description = "The root checkpoint (C2SP tlog-checkpoint, origin `<log name>`; its leaves are the account checkpoints signed, in signing order) signed by the log, followed by every witness cosignature (C2SP tlog-cosignature) stored for it", body = String, content_type = "text/plain",
            headers(("Auditlog-Cosignatures" = String, description = "`<have>/<quorum>`: how many of the configured witnesses' cosignatures verify, and how many are required"))),
        (status = 400, description = "An unknown parameter, or `size` is not a whole number", body = ErrorBody),
        (status = 404, description = "No root checkpoint was signed at `size`, or none yet", body = ErrorBody),
        (status = 503, description = "No signing key is configured", body = ErrorBody),
    )
)]
pub async fn root_checkpoint(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let root_log = root_log(&state)?;
    let checkpoint = match numbers(&pairs, ROOT_PARAMS)?[0] {
        Some(size) => state.store.root_checkpoint_at(size).await?.ok_or_else(|| {
            ApiError::not_found(format!("no root checkpoint was signed at size {size}"))
        })?,
        None => state
            .store
            .latest_root_checkpoint()
            .await?
            .ok_or_else(|| ApiError::not_found("no root checkpoint was signed yet"))?,
    };
    let cosigned = root_log.cosigned(checkpoint).await?;
    let mut response = text(cosigned.note);
    let count = format!("{}/{}", cosigned.valid, root_log.settings().quorum);
    if let Ok(value) = header::HeaderValue::from_str(&count) {
        response.headers_mut().insert(COSIGNATURES_HEADER, value);
    }
    Ok(response)
}

/// `GET /api/v1/proofs/root[?size=M]`.
#[utoipa::path(
    get,
    path = "/api/v1/proofs/root",
    operation_id = "root_proof",
    tag = "proofs",
    security(("bearer" = [])),
    params(RootProofParams),
    responses(
        (status = 200, description = "The account checkpoint (of size `size`, else the latest one witnessed) and its inclusion proof in the latest root checkpoint that has its witnesses' quorum", body = WitnessedCheckpoint),
        (status = 400, description = "An unknown parameter, or `size` is not a whole number", body = ErrorBody),
        (status = 404, description = "No root checkpoint with its quorum covers a checkpoint of the account (of `size`) yet", body = ErrorBody),
        (status = 503, description = "No signing key is configured", body = ErrorBody),
    )
)]
pub async fn root_proof(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let root_log = root_log(&state)?;
    let account = caller.account.id;
    let witnessed = match numbers(&pairs, ROOT_PARAMS)?[0] {
        Some(size) => root_log.witnessed_at(account, size).await?,
        None => root_log.witnessed(account, 1).await?,
    };
    let witnessed = witnessed.ok_or_else(|| {
        ApiError::not_found(
            "no root checkpoint that has its witnesses' quorum covers this checkpoint yet; \
             root checkpoints are signed and submitted every second",
        )
    })?;
    Ok(axum::Json(WitnessedCheckpoint {
        root: root_inclusion(&witnessed),
        checkpoint: witnessed.account_checkpoint.note,
    })
    .into_response())
}

/// `GET /api/v1/proofs/consistency?from=A&to=B`.
#[utoipa::path(
    get,
    path = "/api/v1/proofs/consistency",
    operation_id = "consistency_proof",
    tag = "proofs",
    security(("bearer" = [])),
    params(ConsistencyParams),
    responses(
        (status = 200, description = "The consistency proof between the two tree sizes", body = ConsistencyProof),
        (status = 400, description = "A missing, unknown or repeated parameter, not a whole number, `from` 0 or after `to`, or `to` past the tree's size", body = ErrorBody),
    )
)]
pub async fn consistency(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let values = numbers(&pairs, CONSISTENCY_PARAMS)?;
    let required = |i: usize, name: &str| {
        values[i].ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                format!("{name} is required: a tree size"),
            )
            .with_details(json!({"field": name, "rule": "required"}))
        })
    };
    let (from, to) = (required(0, "from")?, required(1, "to")?);
    if from == 0 {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "from must be at least 1: the empty tree has no consistency proof",
        )
        .with_details(json!({"field": "from", "rule": "out_of_range"})));
    }
    if from > to {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("from ({from}) must not be larger than to ({to})"),
        )
        .with_details(json!({"field": "from", "rule": "after_to"})));
    }
    let size = state.store.last_seq(caller.account.id).await?;
    if to > size {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("to ({to}) is larger than the tree, which has {size} entries"),
        )
        .with_details(json!({"field": "to", "rule": "out_of_range"})));
    }
    let hashes = tree::consistency_proof(state.store.as_ref(), caller.account.id, from, to).await?;
    let hashes: Vec<String> = hashes.iter().map(|h| BASE64.encode(h)).collect();
    Ok(axum::Json(ConsistencyProof { from, to, hashes }).into_response())
}
