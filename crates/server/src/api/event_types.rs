//! `/api/v1/event-types`: the account's taxonomy (scope `read`), and the
//! admin's changes to it (scope `admin`): add a type with its actions, add
//! an action, retire a type or an action. Each change is an `Auditlog
//! Account` event (`crate::event_types`).

use crate::api::body::{read_json_within, MAX_SMALL_BODY_BYTES};
use crate::api::schema::{
    EventActionView, EventTypeEnvelope, EventTypeList, EventTypeView, NewEventActionBody,
    NewEventTypeBody,
};
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::event_types::{self, refusal_status, status, EditError};
use crate::exports::audit::AuditActor;
use crate::state::AppState;
use auditlog_core::taxonomy::{EventTypeRule, TaxonomyEdit};
use auditlog_core::{FieldError, Taxonomy};
use auditlog_store::Scope;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// How the API shows one type.
pub fn view(rule: &EventTypeRule) -> EventTypeView {
    EventTypeView {
        name: rule.name.clone(),
        status: status(rule.retired).into(),
        actions: rule
            .actions
            .iter()
            .map(|a| EventActionView {
                name: a.clone(),
                status: status(rule.is_retired_action(a)).into(),
            })
            .collect(),
    }
}

/// A refused edit as the API answers it: 404, 409 or 422 naming the field
/// and the rule.
pub fn refused(error: FieldError) -> ApiError {
    let (status, code) = match refusal_status(&error) {
        404 => (StatusCode::NOT_FOUND, "not_found"),
        409 => (StatusCode::CONFLICT, "already_exists"),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event_type"),
    };
    ApiError::new(status, code, error.message.clone())
        .with_details(json!({"field": error.field, "rule": error.rule}))
}

impl From<EditError> for ApiError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::Refused(error) => refused(error),
            EditError::Store(e) => e.into(),
        }
    }
}

/// The type `name` of `taxonomy` as an answer.
fn answer(taxonomy: &Taxonomy, name: &str, status: StatusCode) -> Result<Response, ApiError> {
    let rule = taxonomy.event_type(name).ok_or_else(|| {
        ApiError::internal(
            "the edited taxonomy",
            format!("event type {name:?} is missing after its edit"),
        )
    })?;
    Ok((
        status,
        axum::Json(EventTypeEnvelope {
            event_type: view(rule),
        }),
    )
        .into_response())
}

/// The object's string field `name`, or a 422 naming it.
fn string_field(object: &serde_json::Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match object.get(name) {
        Some(Value::String(text)) => Ok(text.clone()),
        _ => Err(refused(FieldError::new(
            name,
            "required",
            format!("{name} is required: a string of 1 to 100 characters"),
        ))),
    }
}

/// The body as an object with only the `allowed` fields.
fn object_with(body: &Value, allowed: &[&str]) -> Result<serde_json::Map<String, Value>, ApiError> {
    let object = body.as_object().ok_or_else(|| {
        refused(FieldError::new(
            "body",
            "not_an_object",
            "the body must be a JSON object",
        ))
    })?;
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(refused(FieldError::new(
            unknown.clone(),
            "unknown_field",
            format!(
                "{unknown} is not a field here; allowed: {}",
                allowed.join(", ")
            ),
        )));
    }
    Ok(object.clone())
}

/// The path's names, percent-decoded, or our 400.
fn path_names<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(names)| names).map_err(|rejection| {
        ApiError::bad_request(
            "invalid_path",
            format!(
                "the names in the path must be UTF-8 text once percent-decoded ({})",
                rejection.body_text()
            ),
        )
    })
}

async fn apply(
    state: &AppState,
    caller: &ApiCaller,
    edit: &TaxonomyEdit,
) -> Result<Taxonomy, ApiError> {
    caller.require(Scope::Admin)?;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    Ok(event_types::edit(
        state.store.as_ref(),
        &state.api_keys,
        &caller.account,
        &actor,
        edit,
    )
    .await?)
}

/// The account's event types and their actions, retired ones included.
#[utoipa::path(
    get,
    path = "/api/v1/event-types",
    operation_id = "list_event_types",
    tag = "event types",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account's taxonomy", body = EventTypeList),
        (status = 403, description = "The key lacks the `read` scope", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    // Read afresh: the caller's account may be the key cache's.
    let account = state
        .store
        .account_by_id(caller.account.id)
        .await?
        .unwrap_or(caller.account);
    Ok(axum::Json(EventTypeList {
        event_types: account.taxonomy.types.iter().map(view).collect(),
    })
    .into_response())
}

/// Adds an event type with its actions.
#[utoipa::path(
    post,
    path = "/api/v1/event-types",
    operation_id = "create_event_type",
    tag = "event types",
    security(("bearer" = [])),
    request_body(content = NewEventTypeBody, description = "At most 64 KiB"),
    responses(
        (status = 201, description = "Added; events of this type are accepted at once on this server and within 5 s on every other", body = EventTypeEnvelope),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 409, description = "The type exists (`details.rule` `already_exists`), retired or not", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or the name is reserved (`reserved_event_type`); `details` names it", body = ErrorBody),
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
    let object = object_with(&body, &["name", "actions"])?;
    let name = string_field(&object, "name")?;
    let actions = match object.get("actions") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    refused(FieldError::new(
                        "actions",
                        "not_a_string",
                        "actions must be an array of strings",
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(refused(FieldError::new(
                "actions",
                "required",
                "actions is required: an array of 1 to 50 action names",
            )))
        }
    };
    let edit = TaxonomyEdit::AddType {
        name: name.clone(),
        actions,
    };
    let taxonomy = apply(&state, &caller, &edit).await?;
    answer(&taxonomy, &name, StatusCode::CREATED)
}

/// Adds an action to an active event type.
#[utoipa::path(
    post,
    path = "/api/v1/event-types/{event_type}/actions",
    operation_id = "create_event_action",
    tag = "event types",
    security(("bearer" = [])),
    params(("event_type" = String, Path, description = "The type's name, any capitalisation, percent-encoded")),
    request_body(content = NewEventActionBody, description = "At most 64 KiB"),
    responses(
        (status = 201, description = "Added", body = EventTypeEnvelope),
        (status = 400, description = "The body is not valid JSON, or the path is not UTF-8", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No such event type", body = ErrorBody),
        (status = 409, description = "The type has this action already", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "The name breaks a rule, or the type is retired or reserved; `details` names it", body = ErrorBody),
    )
)]
pub async fn add_action(
    State(state): State<AppState>,
    caller: ApiCaller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let event_type = path_names(path)?;
    caller.require(Scope::Admin)?;
    let body = read_json_within(&headers, body, MAX_SMALL_BODY_BYTES).await?;
    let object = object_with(&body, &["name"])?;
    let edit = TaxonomyEdit::AddAction {
        event_type: event_type.clone(),
        action: string_field(&object, "name")?,
    };
    let taxonomy = apply(&state, &caller, &edit).await?;
    answer(&taxonomy, &event_type, StatusCode::CREATED)
}

/// Retires an event type: new events of it are refused (422 naming it) at
/// once on this server and within 5 s on every other; stored ones stay
/// valid and filterable. Retiring a retired type changes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/event-types/{event_type}/retire",
    operation_id = "retire_event_type",
    tag = "event types",
    security(("bearer" = [])),
    params(("event_type" = String, Path, description = "The type's name, any capitalisation, percent-encoded")),
    responses(
        (status = 200, description = "The type as retired", body = EventTypeEnvelope),
        (status = 400, description = "The path is not UTF-8", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No such event type", body = ErrorBody),
        (status = 422, description = "The type is reserved (`Audit Log`)", body = ErrorBody),
    )
)]
pub async fn retire_type(
    State(state): State<AppState>,
    caller: ApiCaller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let event_type = path_names(path)?;
    let edit = TaxonomyEdit::RetireType {
        event_type: event_type.clone(),
    };
    let taxonomy = apply(&state, &caller, &edit).await?;
    answer(&taxonomy, &event_type, StatusCode::OK)
}

/// Retires one action of an event type, as [`retire_type`] does a type.
#[utoipa::path(
    post,
    path = "/api/v1/event-types/{event_type}/actions/{action}/retire",
    operation_id = "retire_event_action",
    tag = "event types",
    security(("bearer" = [])),
    params(
        ("event_type" = String, Path, description = "The type's name, any capitalisation, percent-encoded"),
        ("action" = String, Path, description = "The action's name, any capitalisation, percent-encoded"),
    ),
    responses(
        (status = 200, description = "The type with the action retired", body = EventTypeEnvelope),
        (status = 400, description = "The path is not UTF-8", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No such event type or action", body = ErrorBody),
        (status = 422, description = "The type is reserved (`Audit Log`)", body = ErrorBody),
    )
)]
pub async fn retire_action(
    State(state): State<AppState>,
    caller: ApiCaller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (event_type, action) = path_names(path)?;
    let edit = TaxonomyEdit::RetireAction {
        event_type: event_type.clone(),
        action,
    };
    let taxonomy = apply(&state, &caller, &edit).await?;
    answer(&taxonomy, &event_type, StatusCode::OK)
}
