//! `/api/v1/users` (scope `admin`): the account's console users — list,
//! invite with a role (the answer carries a one-time sign-in link, valid
//! 24 h, that sets the password), change the role, disable and enable,
//! and a new sign-in link (a password reset). Each change is audited as an
//! `Auditlog User` event (`crate::users`); the last active admin can be
//! neither disabled nor demoted (409 `last_admin`).

use crate::api::body::{read_json_within, MAX_SMALL_BODY_BYTES};
use crate::api::path::{PathId, BAD_PATH_ID};
use crate::api::schema::{
    NewUserBody, SignInLinkView, UserChangeBody, UserEnvelope, UserList, UserView, UserWithLink,
};
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::exports::audit::AuditActor;
use crate::state::AppState;
use crate::users::{self, SignInLink, UserError};
use auditlog_core::{FieldError, Timestamp};
use auditlog_store::{Scope, UserChange, UserInfo};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// How the API shows a user.
pub fn view(user: &UserInfo) -> UserView {
    UserView {
        id: user.id,
        email: user.email.clone(),
        role: user.role.as_str().into(),
        status: users::status(user).into(),
        created_at: user.created_at.to_rfc3339(),
        disabled_at: user.disabled_at.map(Timestamp::to_rfc3339),
        password_changed_at: user.password_changed_at.map(Timestamp::to_rfc3339),
        sign_in_link_expires_at: user.sign_in_link_expires_at.map(Timestamp::to_rfc3339),
    }
}

fn with_link(user: &UserInfo, link: &SignInLink) -> UserWithLink {
    UserWithLink {
        user: view(user),
        sign_in_link: SignInLinkView {
            path: link.path(),
            expires_at: link.expires_at.to_rfc3339(),
        },
    }
}

fn invalid(error: FieldError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_user",
        error.message.clone(),
    )
    .with_details(json!({"field": error.field, "rule": error.rule}))
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Invalid(field) => invalid(field),
            UserError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "user_not_found",
                "no user with this id in the account",
            ),
            UserError::AlreadyExists => ApiError::new(
                StatusCode::CONFLICT,
                "user_exists",
                "a user with this email already exists in the account",
            ),
            UserError::LastAdmin => ApiError::new(
                StatusCode::CONFLICT,
                "last_admin",
                "the account must keep an active admin: make another user admin first",
            ),
            UserError::Store(e) => e.into(),
        }
    }
}

/// The numeric user id of the path (an id that is not a number is no user).
fn user_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| UserError::NotFound.into())
}

/// An object body whose fields are all in `allowed`; others are refused by name.
fn object_with<'a>(
    body: &'a Value,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, FieldError> {
    let object = body.as_object().ok_or_else(|| {
        FieldError::new("body", "not_an_object", "the body must be a JSON object")
    })?;
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(FieldError::new(
            unknown.clone(),
            "unknown_field",
            format!(
                "{unknown} is not a field here; allowed: {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(object)
}

fn string_field<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a str, FieldError> {
    match object.get(field) {
        Some(Value::String(text)) => Ok(text),
        _ => Err(FieldError::new(
            field,
            "required",
            format!("{field} is required: a string"),
        )),
    }
}

/// The account's users, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    operation_id = "list_users",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The users (never a password)", body = UserList),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let users = state.store.list_users(caller.account.id).await?;
    Ok(axum::Json(UserList {
        users: users.iter().map(view).collect(),
    })
    .into_response())
}

/// One user.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    operation_id = "get_user",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = UserEnvelope),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No user with this id in the caller's account", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let user = state
        .store
        .user_info(caller.account.id, user_id(&id)?)
        .await?
        .ok_or(UserError::NotFound)?;
    Ok(axum::Json(UserEnvelope { user: view(&user) }).into_response())
}

/// Invites a user with a role; the answer holds the one-time sign-in link
/// that sets the password, shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    operation_id = "create_user",
    tag = "users",
    security(("bearer" = [])),
    request_body(content = NewUserBody, description = "At most 64 KiB"),
    responses(
        (status = 201, description = "Created; `sign_in_link` is shown only in this answer and works once, for 24 hours", body = UserWithLink),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 409, description = "`user_exists`: the email is taken in the account", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "A field breaks a rule; `details` names it", body = ErrorBody),
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
    let (email, role) = (|| {
        let object = object_with(&body, &["email", "role"])?;
        let email = string_field(object, "email")?;
        let role = users::parse_role(string_field(object, "role")?)?;
        Ok((email.to_string(), role))
    })()
    .map_err(invalid)?;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    let (user, link) =
        users::invite(state.store.as_ref(), &caller.account, &actor, &email, role).await?;
    Ok((StatusCode::CREATED, axum::Json(with_link(&user, &link))).into_response())
}

/// Changes a user's role, or disables or enables the user. A disabled
/// user's sessions end at once, on every server.
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    operation_id = "change_user",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The user's id")),
    request_body(content = UserChangeBody, description = "At most 64 KiB"),
    responses(
        (status = 200, description = "The user as changed", body = UserEnvelope),
        (status = 400, description = "The body is not valid JSON, or the id is not UTF-8", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No user with this id in the caller's account", body = ErrorBody),
        (status = 409, description = "`last_admin`: the change would leave the account without an active admin", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "A field breaks a rule; `details` names it", body = ErrorBody),
    )
)]
pub async fn change(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let user_id = user_id(&id)?;
    let body = read_json_within(&headers, body, MAX_SMALL_BODY_BYTES).await?;
    let changes = (|| {
        let object = object_with(&body, &["role", "disabled"])?;
        let mut changes = Vec::new();
        if object.contains_key("role") {
            changes.push(UserChange::Role(users::parse_role(string_field(
                object, "role",
            )?)?));
        }
        match object.get("disabled") {
            None => {}
            Some(Value::Bool(true)) => changes.push(UserChange::Disable(Timestamp::now())),
            Some(Value::Bool(false)) => changes.push(UserChange::Enable),
            Some(_) => {
                return Err(FieldError::new(
                    "disabled",
                    "not_a_boolean",
                    "disabled must be true or false",
                ))
            }
        }
        if changes.is_empty() {
            return Err(FieldError::new(
                "body",
                "required",
                "send role and/or disabled",
            ));
        }
        Ok(changes)
    })()
    .map_err(invalid)?;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    let mut user = None;
    for change in changes {
        user = Some(
            users::change(
                state.store.as_ref(),
                &caller.account,
                &actor,
                user_id,
                change,
            )
            .await?,
        );
    }
    let user = user.ok_or(UserError::NotFound)?;
    Ok(axum::Json(UserEnvelope { user: view(&user) }).into_response())
}

/// A new one-time sign-in link for the user (a password reset): the
/// previous link stops working; the current password works until the link
/// sets a new one.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/reset-password",
    operation_id = "reset_user_password",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user and the new link, shown only in this answer", body = UserWithLink),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No user with this id in the caller's account", body = ErrorBody),
    )
)]
pub async fn reset_password(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    let (user, link) =
        users::reset_password(state.store.as_ref(), &caller.account, &actor, user_id(&id)?).await?;
    Ok(axum::Json(with_link(&user, &link)).into_response())
}
