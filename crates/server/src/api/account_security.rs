//! `/api/v1/account/security` (scope `admin`): the account's sign-in
//! policy, today whether it requires two-factor sign-in (SPEC "Web
//! console"). Requiring it locks no one out: users without two-factor
//! sign-in are led through enrolment at their next sign-in. Read from the
//! store at every sign-in, so a change applies at once on every server. A
//! change is audited as `Auditlog Account` / `Update` with the old and new
//! value, exactly as the console's Profile > Two-factor page records it
//! (both call `two_factor::record_requirement`).

use crate::api::body::{read_json_within, MAX_SMALL_BODY_BYTES};
use crate::api::schema::AccountSecurity;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::exports::audit::AuditActor;
use crate::state::AppState;
use crate::two_factor;
use auditlog_store::Scope;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

fn invalid(field: &str, rule: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_account_security",
        message,
    )
    .with_details(json!({"field": field, "rule": rule}))
}

/// The account's sign-in policy.
#[utoipa::path(
    get,
    path = "/api/v1/account/security",
    operation_id = "get_account_security",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account's sign-in policy", body = AccountSecurity),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
    )
)]
pub async fn get(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let required = state.store.two_factor_required(caller.account.id).await?;
    Ok(axum::Json(AccountSecurity {
        require_two_factor: required,
    })
    .into_response())
}

/// Sets the account's sign-in policy. With `require_two_factor` true,
/// every console user must use two-factor sign-in: those without it are
/// signed in and led to enrolment at their next sign-in.
#[utoipa::path(
    put,
    path = "/api/v1/account/security",
    operation_id = "set_account_security",
    tag = "account",
    security(("bearer" = [])),
    request_body = AccountSecurity,
    responses(
        (status = 200, description = "Stored; a change is audited as `Auditlog Account` / `Update` (field `require_two_factor`, old and new value) and applies to the next sign-in on every server", body = AccountSecurity),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 422, description = "The body is not an object, has a field other than `require_two_factor`, or `require_two_factor` is missing or not a boolean (`details.field` and `details.rule` say which)", body = ErrorBody),
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
    let wanted = parse(&body)?;
    let account = &caller.account;
    let old = state
        .store
        .set_two_factor_required(account.id, wanted.require_two_factor)
        .await?;
    if old != wanted.require_two_factor {
        let actor = AuditActor::api_key(caller.actor_id(), caller.source());
        two_factor::record_requirement(
            state.store.as_ref(),
            account,
            &actor,
            old,
            wanted.require_two_factor,
        )
        .await?;
    }
    Ok(axum::Json(wanted).into_response())
}

/// The policy of a `{"require_two_factor": bool}` body, naming the first
/// broken rule.
pub fn parse(body: &Value) -> Result<AccountSecurity, ApiError> {
    let object = body
        .as_object()
        .ok_or_else(|| invalid("body", "not_an_object", "the body must be a JSON object"))?;
    if let Some(key) = object.keys().find(|k| k.as_str() != "require_two_factor") {
        return Err(invalid(
            key,
            "unknown_field",
            format!(
                "{key} is not a field here; the body is {{\"require_two_factor\": true|false}}"
            ),
        ));
    }
    let required = match object.get("require_two_factor") {
        None => {
            return Err(invalid(
                "require_two_factor",
                "missing",
                "require_two_factor is required: true to require two-factor sign-in of every user, false to make it optional",
            ))
        }
        Some(value) => value.as_bool().ok_or_else(|| {
            invalid(
                "require_two_factor",
                "not_a_boolean",
                format!("require_two_factor must be true or false, not {value}"),
            )
        })?,
    };
    Ok(AccountSecurity {
        require_two_factor: required,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of(body: Value) -> (String, String) {
        let error = parse(&body).unwrap_err();
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        let details = error.details.unwrap();
        (
            details["field"].as_str().unwrap().to_string(),
            details["rule"].as_str().unwrap().to_string(),
        )
    }

    #[test]
    fn each_bad_body_names_its_field_and_rule() {
        let pair = |f: &str, r: &str| (f.to_string(), r.to_string());
        assert_eq!(rule_of(json!([])), pair("body", "not_an_object"));
        assert_eq!(rule_of(json!({})), pair("require_two_factor", "missing"));
        assert_eq!(
            rule_of(json!({"require_two_factor": "yes"})),
            pair("require_two_factor", "not_a_boolean")
        );
        assert_eq!(
            rule_of(json!({"require_two_factor": true, "mfa": true})),
            pair("mfa", "unknown_field")
        );
        assert!(
            parse(&json!({"require_two_factor": true}))
                .unwrap()
                .require_two_factor
        );
        assert!(
            !parse(&json!({"require_two_factor": false}))
                .unwrap()
                .require_two_factor
        );
    }
}
