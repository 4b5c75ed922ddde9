//! `/api/v1/retention` and `/api/v1/holds` (scope `admin`): the account's
//! retention policy with what the next pruning removes and what holds it
//! back, and legal holds (create, list, read, release), each change audited
//! (`Auditlog Account` / Update for the policy, `Auditlog Legal Hold` /
//! Create, Release). The pruner itself is `crate::retention`.

use crate::api::body::{read_json_within, MAX_SMALL_BODY_BYTES};
use crate::api::path::{PathId, BAD_PATH_ID};
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::exports::audit::AuditActor;
pub use crate::retention::policy::RetentionView;
use crate::retention::policy::{self, invalid, object};
use crate::state::AppState;
use auditlog_store::{Hold, Scope};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionEnvelope {
    pub retention: RetentionView,
}

/// `PUT /api/v1/retention`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RetentionChange {
    /// Whole days, within the server's minimum and maximum; `null` keeps
    /// events forever.
    pub retention_days: Option<u32>,
}

/// The retention policy, the next pruning and the latest ones.
#[utoipa::path(
    get,
    path = "/api/v1/retention",
    operation_id = "get_retention",
    tag = "retention",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy, what the next pruning removes (range, counts, holds that keep events) and what holds it back (a lagging log stream, running exports), and the latest prunings", body = RetentionEnvelope),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
    )
)]
pub async fn get_retention(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let retention = policy::view(state.store.as_ref(), &state.retention, &caller.account).await?;
    Ok(axum::Json(RetentionEnvelope { retention }).into_response())
}

/// Sets the retention policy (audited as `Auditlog Account` / Update).
#[utoipa::path(
    put,
    path = "/api/v1/retention",
    operation_id = "set_retention",
    tag = "retention",
    security(("bearer" = [])),
    request_body(content = RetentionChange, description = "At most 64 KiB"),
    responses(
        (status = 200, description = "The policy as set", body = RetentionEnvelope),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "`retention_days` is missing, not a whole number or `null`, or outside the server's minimum and maximum (`details` names the field and the rule)", body = ErrorBody),
    )
)]
pub async fn set_retention(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let body = read_json_within(&headers, body, MAX_SMALL_BODY_BYTES).await?;
    let fields = object(&body, &["retention_days"])?;
    let settings = &state.retention;
    let range = format!("{} to {}", settings.min_days, settings.max_days);
    let days = match fields.get("retention_days") {
        None => {
            return Err(invalid(
                "retention_days",
                "required",
                format!("retention_days is required: whole days from {range}, or null to keep events forever"),
            ))
        }
        Some(Value::Null) => None,
        Some(value) => {
            let days = value.as_u64().filter(|d| *d <= u64::from(u32::MAX)).ok_or_else(|| {
                invalid(
                    "retention_days",
                    "not_whole_days",
                    format!("retention_days must be whole days from {range}, or null"),
                )
            })? as u32;
            Some(days)
        }
    };
    let account = &caller.account;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    policy::set_days(state.store.as_ref(), settings, account, &actor, days).await?;
    let retention = policy::view(state.store.as_ref(), settings, account).await?;
    Ok(axum::Json(RetentionEnvelope { retention }).into_response())
}

/// A legal hold as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    pub id: i64,
    pub name: String,
    pub reason: String,
    /// The query filters (as an export's `filters`); `{}`: every event.
    #[schema(value_type = Object)]
    pub filters: Value,
    pub q: Option<String>,
    pub tz: String,
    pub created_by: String,
    pub created_at: String,
    /// `active` or `released`.
    pub status: String,
    pub released_by: Option<String>,
    pub released_at: Option<String>,
}

pub fn hold_view(hold: &Hold) -> HoldView {
    HoldView {
        id: hold.id,
        name: hold.name.clone(),
        reason: hold.reason.clone(),
        filters: hold.filters.clone(),
        q: hold.q.clone(),
        tz: hold.tz.clone(),
        created_by: hold.created_by.clone(),
        created_at: hold.created_at.to_rfc3339(),
        status: if hold.is_active() {
            "active"
        } else {
            "released"
        }
        .into(),
        released_by: hold.released_by.clone(),
        released_at: hold.released_at.map(|t| t.to_rfc3339()),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldEnvelope {
    pub hold: HoldView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldList {
    pub holds: Vec<HoldView>,
}

/// `POST /api/v1/holds`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewHoldBody {
    /// 1 to 200 characters, unique among the account's active holds.
    pub name: String,
    /// Why events are held (1 to 2,000 characters).
    pub reason: String,
    /// Query filters as an export's (`event_type`, `action`, `user`,
    /// `project` as arrays; `app`, `version`, `target_id`, `from`, `to`);
    /// times mean the event's `time`. Absent: every event.
    #[schema(value_type = Option<Object>)]
    pub filters: Option<Value>,
    /// A search query (docs/SEARCH.md), ANDed with the filters.
    pub q: Option<String>,
    /// The IANA time zone `q` is read in (default UTC).
    pub tz: Option<String>,
}

/// Creates a legal hold (audited as `Auditlog Legal Hold` / Create).
#[utoipa::path(
    post,
    path = "/api/v1/holds",
    operation_id = "create_hold",
    tag = "retention",
    security(("bearer" = [])),
    request_body(content = NewHoldBody, description = "At most 64 KiB"),
    responses(
        (status = 201, description = "The hold, active at once: neither pruning nor erasure removes an event it matches", body = HoldEnvelope),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 409, description = "An active hold has this name (`hold_exists`), or the account has 100 active holds (`too_many_holds`)", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "A field breaks a rule (`details` names the field and the rule): a missing name or reason, an unknown field, a bad filter, a `q` that does not parse, an unknown `tz`", body = ErrorBody),
    )
)]
pub async fn create_hold(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let body = read_json_within(&headers, body, MAX_SMALL_BODY_BYTES).await?;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    let hold = policy::create_hold(state.store.as_ref(), &caller.account, &actor, &body).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(HoldEnvelope {
            hold: hold_view(&hold),
        }),
    )
        .into_response())
}

/// The query parameters of `GET /api/v1/holds`.
pub const HOLD_LIST_PARAMS: &[&str] = &["include_released"];

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HoldListParams {
    /// `true`: released holds too.
    pub include_released: Option<bool>,
}

/// The account's holds, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/holds",
    operation_id = "list_holds",
    tag = "retention",
    security(("bearer" = [])),
    params(HoldListParams),
    responses(
        (status = 200, description = "The active holds (and released ones with `include_released=true`), newest first", body = HoldList),
        (status = 400, description = "An unknown parameter or a bad value", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
    )
)]
pub async fn list_holds(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let mut include_released = false;
    for (name, value) in &pairs {
        match (name.as_str(), value.as_str()) {
            ("include_released", "true") => include_released = true,
            ("include_released", "false") => include_released = false,
            ("include_released", _) => {
                return Err(ApiError::bad_request(
                    "bad_parameter",
                    "include_released must be true or false",
                )
                .with_details(json!({"field": "include_released", "rule": "boolean"})))
            }
            (other, _) => {
                return Err(crate::query_params::unknown_parameter(
                    other,
                    &["include_released"],
                ))
            }
        }
    }
    let holds = state
        .store
        .holds(caller.account.id, include_released)
        .await?;
    Ok(axum::Json(HoldList {
        holds: holds.iter().map(hold_view).collect(),
    })
    .into_response())
}

/// One hold.
#[utoipa::path(
    get,
    path = "/api/v1/holds/{id}",
    operation_id = "get_hold",
    tag = "retention",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The hold's id")),
    responses(
        (status = 200, description = "The hold", body = HoldEnvelope),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No hold with this id in the key's account", body = ErrorBody),
    )
)]
pub async fn get_hold(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let id = hold_id(&id)?;
    let hold = state
        .store
        .hold(caller.account.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no legal hold {id} in this account")))?;
    Ok(axum::Json(HoldEnvelope {
        hold: hold_view(&hold),
    })
    .into_response())
}

fn hold_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().map_err(|_| {
        ApiError::bad_request(
            "bad_path",
            format!("the hold id must be a whole number; {text:?} is not"),
        )
        .with_details(json!({"field": "id", "rule": "not_a_number"}))
    })
}

/// Releases a hold (audited as `Auditlog Legal Hold` / Release): the next
/// pruning may remove what it kept.
#[utoipa::path(
    delete,
    path = "/api/v1/holds/{id}",
    operation_id = "release_hold",
    tag = "retention",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The hold's id")),
    responses(
        (status = 200, description = "The hold, released (it stays listed with `include_released=true`)", body = HoldEnvelope),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No active hold with this id in the key's account", body = ErrorBody),
    )
)]
pub async fn release_hold(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let id = hold_id(&id)?;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    let hold = policy::release_hold(state.store.as_ref(), &caller.account, &actor, id).await?;
    // An erasure this hold kept waiting finishes now.
    state.erasure.wakeup.notify_one();
    Ok(axum::Json(HoldEnvelope {
        hold: hold_view(&hold),
    })
    .into_response())
}
