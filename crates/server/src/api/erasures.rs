//! `/api/v1/erasures` (scope `admin`): erasure requests for a data subject
//! (an actor id) and their state. A request finds the subject's events,
//! stores the job with the subject's pseudonym only, and wakes the eraser
//! (`crate::erasure`), which records it as one `Auditlog Erasure` / `Erase`
//! event and erases in the background.

use crate::api::body::{read_json_within, MAX_SMALL_BODY_BYTES};
use crate::api::path::{PathId, BAD_PATH_ID};
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use auditlog_core::coverage::{covers_json, ranges_of_seqs};
use auditlog_core::event::MAX_NAME_CHARS;
use auditlog_core::Timestamp;
use auditlog_store::{Erasure, ErasurePlan, Scope, Store, StoreError};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// How many erasures the list shows.
pub const LISTED: usize = 100;

fn invalid(field: &str, rule: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
        .with_details(json!({"field": field, "rule": rule}))
}

/// The body of `POST /api/v1/erasures`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NewErasureBody {
    /// The data subject: the `actor.id` whose events are erased (1 to 200
    /// characters, as an actor id).
    subject: String,
}

/// One erasure request and its state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureView {
    pub id: i64,
    /// `planned` (its record not yet appended), `erasing`, `waiting` (legal
    /// holds keep some of its events; it finishes them by itself once
    /// released) or `done`.
    pub status: String,
    /// The subject's pseudonym (`erased:` + a keyed hash of its actor id),
    /// which erased events show as `actor.id`; the id itself is not kept.
    pub subject: String,
    /// RFC 3339 UTC.
    pub requested_at: String,
    /// The API key that asked (`api-key:<id>`).
    pub requested_by: String,
    /// The seq of its (first) `Auditlog Erasure` / `Erase` record (none
    /// while `planned`).
    pub record_seq: Option<u64>,
    /// The seqs of all its records, in order (empty while `planned`): one,
    /// unless the subject's events are so scattered that their ranges need
    /// several records (each lists a part of `covers` and says which
    /// `part` of how many `parts` it is).
    pub record_seqs: Vec<u64>,
    /// The subject's events when it was requested (what the record covers).
    pub events: u64,
    /// Events erased so far: a version 2 event's personal values, a
    /// version 1 event's whole body.
    pub erased: u64,
    /// Events a legal hold kept in the latest pass.
    pub held: u64,
    /// The seqs covered, as `[[first, last], …]`.
    #[schema(value_type = Vec<Vec<u64>>)]
    pub covers: Value,
    pub finished_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureEnvelope {
    pub erasure: ErasureView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureList {
    /// Newest first, at most 100.
    pub erasures: Vec<ErasureView>,
}

pub fn erasure_view(erasure: &Erasure) -> ErasureView {
    ErasureView {
        id: erasure.id,
        status: erasure.status.as_str().to_string(),
        subject: erasure.plan.pseudonym.clone(),
        requested_at: erasure.plan.requested_at.to_rfc3339(),
        requested_by: erasure.plan.requested_by.clone(),
        record_seq: erasure.record_seqs.first().copied(),
        record_seqs: erasure.record_seqs.clone(),
        events: erasure.plan.covers.iter().map(|r| r.len()).sum(),
        erased: erasure.erased,
        held: erasure.held,
        covers: covers_json(&erasure.plan.covers),
        finished_at: erasure.finished_at.map(|t| t.to_rfc3339()),
    }
}

/// Finds the subject's events and stores the erasure job (the eraser runs
/// it): what the API and `auditlog erase` both do.
pub async fn plan(
    store: &dyn Store,
    account: &auditlog_store::Account,
    pseudonym: String,
    subject: &str,
    requested_by: String,
    source: Value,
    lease: Option<std::time::Duration>,
) -> Result<Erasure, StoreError> {
    let found = store.subject_events(account.id, subject).await?;
    let now = Timestamp::now();
    let plan = ErasurePlan {
        account_id: account.id,
        pseudonym,
        requested_at: now,
        requested_by,
        source,
        covers: ranges_of_seqs(found.seqs),
        actor_rows: found.actor_rows,
    };
    // Claimed by the caller that runs it (`auditlog erase`), or free for
    // the eraser to take at once (the API).
    let lease_until =
        Timestamp::from_micros(now.micros() + lease.map_or(-1, |lease| lease.as_micros() as i64));
    store.plan_erasure(&plan, lease_until).await
}

/// The data subject of a request: an actor id (text of 1 to 200
/// characters), else 422 naming `subject` and the rule.
pub fn subject_of(value: Option<&Value>) -> Result<String, ApiError> {
    match value {
        Some(Value::String(text)) if !text.is_empty() && text.chars().count() <= MAX_NAME_CHARS => {
            Ok(text.clone())
        }
        None | Some(Value::Null) => Err(invalid(
            "subject",
            "required",
            "subject (the actor id whose events are erased) is required",
        )),
        _ => Err(invalid(
            "subject",
            "not_an_actor_id",
            format!("subject must be text of 1 to {MAX_NAME_CHARS} characters, as an actor id"),
        )),
    }
}

/// Plans the erasure of `subject` and wakes the eraser: what the API and
/// the console (Settings > Personal data) do.
pub async fn start(
    state: &AppState,
    account: &auditlog_store::Account,
    subject: &str,
    requested_by: String,
    source: Value,
) -> Result<Erasure, ApiError> {
    let settings = &state.erasure;
    let pseudonym = settings.key.pseudonym(&account.name, subject);
    let erasure = plan(
        state.store.as_ref(),
        account,
        pseudonym,
        subject,
        requested_by,
        source,
        None,
    )
    .await?;
    settings.wakeup.notify_one();
    Ok(erasure)
}

/// Requests the erasure of a data subject's personal values.
#[utoipa::path(
    post,
    path = "/api/v1/erasures",
    operation_id = "create_erasure",
    tag = "personal data",
    security(("bearer" = [])),
    request_body(content = NewErasureBody, description = "At most 64 KiB"),
    responses(
        (status = 202, description = "The erasure, stored and started in the background: it appends one `Auditlog Erasure` / `Erase` record, then erases each of the subject's events that no legal hold keeps (a version 2 event's personal values become `\"[erased]\"` with `actor.id` the pseudonym; a version 1 event loses its body, 410 `erased`); held events are erased once their hold is released", body = ErasureEnvelope),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "`subject` is missing, not text of 1 to 200 characters, or an unknown field was sent (`details` names the field and the rule)", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let body = read_json_within(&headers, body, MAX_SMALL_BODY_BYTES).await?;
    let fields = body
        .as_object()
        .ok_or_else(|| invalid("body", "not_an_object", "the body must be a JSON object"))?;
    if let Some(other) = fields.keys().find(|k| k.as_str() != "subject") {
        return Err(invalid(
            other,
            "unknown_field",
            format!("{other} is not a field here; allowed: subject"),
        ));
    }
    let subject = subject_of(fields.get("subject"))?;
    let erasure = start(
        &state,
        &caller.account,
        &subject,
        caller.actor_id(),
        caller.source().to_json(),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ErasureEnvelope {
            erasure: erasure_view(&erasure),
        }),
    )
        .into_response())
}

/// The account's erasures, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/erasures",
    operation_id = "list_erasures",
    tag = "personal data",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account's erasure requests and their state, newest first (at most 100)", body = ErasureList),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let erasures = state.store.erasures(caller.account.id, LISTED).await?;
    Ok(axum::Json(ErasureList {
        erasures: erasures.iter().map(erasure_view).collect(),
    })
    .into_response())
}

/// One erasure.
#[utoipa::path(
    get,
    path = "/api/v1/erasures/{id}",
    operation_id = "get_erasure",
    tag = "personal data",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The erasure's id")),
    responses(
        (status = 200, description = "The erasure and its state", body = ErasureEnvelope),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No erasure with this id in the key's account", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let id = id.parse::<i64>().map_err(|_| {
        ApiError::bad_request(
            "bad_path",
            format!("the erasure id must be a whole number; {id:?} is not"),
        )
        .with_details(json!({"field": "id", "rule": "not_a_number"}))
    })?;
    let erasure = state
        .store
        .erasure(caller.account.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no erasure {id} in this account")))?;
    Ok(axum::Json(ErasureEnvelope {
        erasure: erasure_view(&erasure),
    })
    .into_response())
}
