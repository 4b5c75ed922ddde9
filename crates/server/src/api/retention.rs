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
use crate::holds::{ActiveHolds, HoldMatcher};
use crate::retention::plan;
use crate::state::AppState;
use auditlog_core::taxonomy::{ACCOUNT, LEGAL_HOLD};
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::holds::MAX_ACTIVE_HOLDS;
use auditlog_store::{Account, Hold, NewHold, Scope, StoreError};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};

fn invalid(field: &str, rule: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
        .with_details(json!({"field": field, "rule": rule}))
}

fn object<'a>(body: &'a Value, allowed: &[&str]) -> Result<&'a Map<String, Value>, ApiError> {
    let object = body
        .as_object()
        .ok_or_else(|| invalid("body", "not_an_object", "the body must be a JSON object"))?;
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(invalid(
                key,
                "unknown_field",
                format!("{key} is not a field here; allowed: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(object)
}

/// Appends one of Auditlog's own events with the API key as actor.
async fn audit(
    state: &AppState,
    account: &Account,
    actor: &AuditActor,
    event: Value,
) -> Result<(), ApiError> {
    let mut event = event;
    event["actor"] = json!({"id": actor.id});
    let event = NewEvent::parse(&event, &account.taxonomy.with_own_types(), Timestamp::now())
        .map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
            ApiError::internal("audit event", reasons.join("; "))
        })?;
    state
        .store
        .append_from(account, &actor.source, vec![event])
        .await?;
    Ok(())
}

/// The account's retention policy and the next pruning.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionView {
    /// Days after receipt that events are kept; `null`: forever (the default).
    pub retention_days: Option<u32>,
    /// The smallest and largest `retention_days` this server allows.
    pub min_days: u32,
    pub max_days: u32,
    /// What the next pruning would remove and what holds it back.
    #[schema(value_type = Object)]
    pub next: Value,
    /// The latest prunings, newest first.
    #[schema(value_type = Vec<Object>)]
    pub prunings: Vec<Value>,
}

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

async fn retention_view(state: &AppState, account: &Account) -> Result<RetentionView, ApiError> {
    let settings = state.retention.clone();
    let active = state.store.holds(account.id, false).await?;
    let (holds, _) = ActiveHolds::new(&active, &account.taxonomy);
    let preview = plan::preview(state.store.as_ref(), account, &holds, Timestamp::now()).await?;
    let prunings = state
        .store
        .prune_jobs(account.id, 10)
        .await?
        .iter()
        .map(|job| {
            json!({
                "id": job.id,
                "status": job.status.as_str(),
                "planned_at": job.plan.planned_at.to_rfc3339(),
                "first_seq": job.plan.first_seq,
                "last_seq": job.plan.last_seq,
                "record_seq": job.record_seq,
                "removed": job.removed,
                "next_seq": job.next_seq,
                "held": job.plan.details["held"],
                "finished_at": job.finished_at.map(|t| t.to_rfc3339()),
            })
        })
        .collect();
    Ok(RetentionView {
        retention_days: preview.retention_days,
        min_days: settings.min_days,
        max_days: settings.max_days,
        next: serde_json::to_value(&preview)
            .map_err(|e| ApiError::internal("retention preview", e))?,
        prunings,
    })
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
    let retention = retention_view(&state, &caller.account).await?;
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
            if days < settings.min_days || days > settings.max_days {
                return Err(invalid(
                    "retention_days",
                    "out_of_range",
                    format!("retention_days must be from {range} on this server; {days} is not"),
                ));
            }
            Some(days)
        }
    };
    let account = &caller.account;
    let old = state.store.retention_days(account.id).await?;
    state.store.set_retention_days(account.id, days).await?;
    if old != days {
        let actor = AuditActor::api_key(caller.actor_id(), caller.source());
        audit(
            &state,
            account,
            &actor,
            json!({
                "event_type": ACCOUNT, "action": "Update",
                "target": {"id": format!("account-{}", account.name), "name": account.name},
                "details": {"changes": [{"field": "retention_days", "old": old, "new": days}]},
            }),
        )
        .await?;
    }
    let retention = retention_view(&state, account).await?;
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

fn hold_view(hold: &Hold) -> HoldView {
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

fn text_field(
    fields: &Map<String, Value>,
    name: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(text)) if !text.trim().is_empty() && text.chars().count() <= max => {
            Ok(Some(text.clone()))
        }
        _ => Err(invalid(
            name,
            if required { "required" } else { "not_text" },
            format!("{name} must be text of 1 to {max} characters"),
        )),
    }
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
    let fields = object(&body, &["name", "reason", "filters", "q", "tz"])?;
    let name = text_field(fields, "name", 200, true)?.unwrap_or_default();
    let reason = text_field(fields, "reason", 2_000, true)?.unwrap_or_default();
    let filters = match fields.get("filters") {
        None | Some(Value::Null) => json!({}),
        Some(filters @ Value::Object(_)) => filters.clone(),
        Some(_) => {
            return Err(invalid(
                "filters",
                "not_an_object",
                "filters must be an object of query filters",
            ))
        }
    };
    let q = text_field(fields, "q", auditlog_core::search::MAX_QUERY_CHARS, false)?;
    let tz = text_field(fields, "tz", 64, false)?.unwrap_or_else(|| "UTC".into());
    let account = &caller.account;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    let new = NewHold {
        name,
        reason,
        filters,
        q,
        tz,
        created_by: actor.id.clone(),
    };
    // Checked as the pruner will read it, so that a hold never silently
    // matches something else than asked.
    let probe = Hold {
        id: 0,
        account_id: account.id,
        name: new.name.clone(),
        reason: new.reason.clone(),
        filters: new.filters.clone(),
        q: new.q.clone(),
        tz: new.tz.clone(),
        created_by: new.created_by.clone(),
        created_at: Timestamp::now(),
        released_by: None,
        released_at: None,
    };
    HoldMatcher::new(&probe, &account.taxonomy).map_err(|e| {
        let field = if e.field.starts_with("q") || e.field == "tz" {
            e.field.clone()
        } else {
            format!("filters.{}", e.field)
        };
        invalid(&field, e.rule, e.message)
    })?;
    if state.store.holds(account.id, false).await?.len() >= MAX_ACTIVE_HOLDS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_holds",
            format!("the account has {MAX_ACTIVE_HOLDS} active holds; release one first"),
        ));
    }
    let hold = match state.store.create_hold(account.id, &new).await {
        Ok(hold) => hold,
        Err(StoreError::AlreadyExists(what)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "hold_exists",
                format!("{what} already exists; choose another name or release it"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    audit(
        &state,
        account,
        &actor,
        json!({
            "event_type": LEGAL_HOLD, "action": "Create",
            "target": {"id": format!("hold-{}", hold.id), "name": hold.name},
            "details": {"hold_id": hold.id, "reason": hold.reason, "filters": hold.filters,
                        "q": hold.q, "tz": hold.tz},
        }),
    )
    .await?;
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
    let account = &caller.account;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    let hold = match state.store.release_hold(account.id, id, &actor.id).await {
        Ok(hold) => hold,
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::not_found(format!(
                "no active legal hold {id} in this account"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    audit(
        &state,
        account,
        &actor,
        json!({
            "event_type": LEGAL_HOLD, "action": "Release",
            "target": {"id": format!("hold-{}", hold.id), "name": hold.name},
            "details": {"hold_id": hold.id, "changes": [{"field": "status", "old": "active", "new": "released"}]},
        }),
    )
    .await?;
    // An erasure this hold kept waiting finishes now.
    state.erasure.wakeup.notify_one();
    Ok(axum::Json(HoldEnvelope {
        hold: hold_view(&hold),
    })
    .into_response())
}
