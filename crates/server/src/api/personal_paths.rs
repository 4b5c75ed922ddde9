//! `/api/v1/account/personal-paths` (scope `admin`): the `details` paths
//! the account declares personal (SPEC "Leaf version 2"). Each event that
//! arrives after a declaration commits to the values at those paths with
//! salts of their own, so that an erasure can remove them; values that
//! arrived before, or at undeclared paths, stay in the leaf and cannot be
//! erased (docs/ERASURE.md). Replacing the list is audited as
//! `Auditlog Account` / `Update` with the old and new lists. The console's
//! Settings > Personal data page calls [`replace`] too.

use crate::api::body::{read_json_within, MAX_SMALL_BODY_BYTES};
use crate::api::schema::PersonalPathList;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::exports::audit::AuditActor;
use crate::state::AppState;
use auditlog_core::leaf_v2::DetailsPath;
use auditlog_core::taxonomy::ACCOUNT;
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::personal_paths::MAX_PERSONAL_PATHS;
use auditlog_store::{Account, Scope, StoreError};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

fn invalid(field: &str, rule: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_personal_paths",
        message,
    )
    .with_details(json!({"field": field, "rule": rule}))
}

fn listed(paths: &[DetailsPath]) -> Vec<String> {
    paths.iter().map(|p| p.as_str().to_string()).collect()
}

/// The account's declared personal `details` paths.
#[utoipa::path(
    get,
    path = "/api/v1/account/personal-paths",
    operation_id = "get_personal_paths",
    tag = "personal data",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The declared paths, in the order they were declared", body = PersonalPathList),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
    )
)]
pub async fn get(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let paths = state.store.personal_paths(caller.account.id).await?;
    Ok(axum::Json(PersonalPathList {
        paths: listed(&paths),
    })
    .into_response())
}

/// Replaces the account's declared personal `details` paths; events that
/// arrive from now on commit to the values at these paths.
#[utoipa::path(
    put,
    path = "/api/v1/account/personal-paths",
    operation_id = "set_personal_paths",
    tag = "personal data",
    security(("bearer" = [])),
    request_body = PersonalPathList,
    responses(
        (status = 200, description = "Stored (and audited as `Auditlog Account` / `Update`); applies to every event that arrives from now on", body = PersonalPathList),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 422, description = "`paths` is missing, not a list of strings, longer than 100, repeats a path, or holds a path that does not start with `details.` or has an empty member", body = ErrorBody),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let body = read_json_within(&headers, body, MAX_SMALL_BODY_BYTES).await?;
    let paths = parse(&body)?;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    let stored = replace(&state, &caller.account, &actor, paths).await?;
    Ok(axum::Json(PersonalPathList {
        paths: listed(&stored),
    })
    .into_response())
}

/// The paths of a `{"paths": [...]}` body, each checked, naming the first
/// broken rule.
pub fn parse(body: &Value) -> Result<Vec<DetailsPath>, ApiError> {
    let object = body
        .as_object()
        .ok_or_else(|| invalid("body", "not_an_object", "the body must be a JSON object"))?;
    if let Some(key) = object.keys().find(|k| k.as_str() != "paths") {
        return Err(invalid(
            key,
            "unknown_field",
            format!("{key} is not a field here; the body is {{\"paths\": [\"details.…\", …]}}"),
        ));
    }
    let list = object
        .get("paths")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            invalid(
                "paths",
                "not_a_list",
                "paths must be a list of details paths such as [\"details.assignee\"] ([] declares none)",
            )
        })?;
    if list.len() > MAX_PERSONAL_PATHS {
        return Err(invalid(
            "paths",
            "too_many",
            format!(
                "paths holds {} paths; at most {MAX_PERSONAL_PATHS} may be declared",
                list.len()
            ),
        ));
    }
    let mut paths: Vec<DetailsPath> = Vec::with_capacity(list.len());
    for (index, item) in list.iter().enumerate() {
        let field = format!("paths[{index}]");
        let text = item
            .as_str()
            .ok_or_else(|| invalid(&field, "not_a_string", format!("{field} must be a string")))?;
        let path = DetailsPath::parse(text)
            .map_err(|e| invalid(&field, "invalid_path", format!("{field}: {e}")))?;
        if paths.contains(&path) {
            return Err(invalid(
                &field,
                "repeated",
                format!("{field}: {text:?} is listed twice"),
            ));
        }
        paths.push(path);
    }
    Ok(paths)
}

/// Stores `paths` as the account's declaration and audits the change
/// (nothing is audited when the list is unchanged).
pub async fn replace(
    state: &AppState,
    account: &Account,
    actor: &AuditActor,
    paths: Vec<DetailsPath>,
) -> Result<Vec<DetailsPath>, ApiError> {
    let old = state.store.set_personal_paths(account.id, &paths).await?;
    if old != paths {
        record(state, account, actor, &old, &paths).await?;
    }
    Ok(paths)
}

async fn record(
    state: &AppState,
    account: &Account,
    actor: &AuditActor,
    old: &[DetailsPath],
    new: &[DetailsPath],
) -> Result<(), StoreError> {
    let mut actor_json = json!({ "id": actor.id });
    if let Some(name) = &actor.name {
        actor_json["name"] = json!(name);
    }
    if let Some(email) = &actor.email {
        actor_json["email"] = json!(email);
    }
    let event = json!({
        "event_type": ACCOUNT,
        "action": "Update",
        "actor": actor_json,
        "target": {"id": format!("account-{}", account.name), "name": account.name},
        "details": {"changes": [{"field": "personal_paths", "old": listed(old), "new": listed(new)}]},
    });
    let event = NewEvent::parse(&event, &account.taxonomy.with_own_types(), Timestamp::now())
        .map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
            StoreError::internal(format!(
                "the audit event of a personal paths change is invalid for account {}: {}",
                account.name,
                reasons.join("; ")
            ))
        })?;
    state
        .store
        .append_from(account, &actor.source, vec![event])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of(body: Value) -> String {
        let error = parse(&body).unwrap_err();
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        error.details.unwrap()["rule"].as_str().unwrap().to_string()
    }

    #[test]
    fn each_bad_body_names_its_rule() {
        assert_eq!(rule_of(json!([])), "not_an_object");
        assert_eq!(rule_of(json!({"path": []})), "unknown_field");
        assert_eq!(rule_of(json!({"paths": "details.a"})), "not_a_list");
        assert_eq!(rule_of(json!({"paths": [1]})), "not_a_string");
        assert_eq!(rule_of(json!({"paths": ["actor.email"]})), "invalid_path");
        assert_eq!(rule_of(json!({"paths": ["details..a"]})), "invalid_path");
        assert_eq!(
            rule_of(json!({"paths": ["details.a", "details.a"]})),
            "repeated"
        );
        let many: Vec<String> = (0..=MAX_PERSONAL_PATHS)
            .map(|i| format!("details.f{i}"))
            .collect();
        assert_eq!(rule_of(json!({ "paths": many })), "too_many");
        let ok = parse(&json!({"paths": ["details.assignee", "details.ticket.owner"]})).unwrap();
        assert_eq!(listed(&ok), ["details.assignee", "details.ticket.owner"]);
    }
}
