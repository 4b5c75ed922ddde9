//! One error type for every handler. It renders SPEC.md's shape,
//! `{"error": {"code", "message", "details"?}}`, with the right status;
//! unexpected failures are logged once, with a reference the client can quote.

use auditlog_core::FieldError;
use auditlog_store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A failure the client cannot fix: logged here with a reference that the
    /// answer repeats, so an operator can find it.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        let reference = crate::auth::random_token(6);
        tracing::error!(%reference, context, %error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("an internal error occurred; quote reference {reference} to the operator"),
        )
    }
}

/// A query parameter or filter value that breaks a rule: 400 naming it.
impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::bad_request("invalid_parameter", e.message.clone())
            .with_details(json!({"field": e.field, "rule": e.rule}))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { index, ref id } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
                    .with_details(json!({"index": index, "id": id}))
            }
            StoreError::AlreadyExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", e.to_string())
            }
            StoreError::NotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is temporarily unable to store events; nothing was stored, retry later",
                )
            }
            StoreError::Internal(reason) => ApiError::internal("storage", reason),
        }
    }
}

/// The body of every error answer (the OpenAPI description's `Error`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Error, example = json!({"error": {
    "code": "invalid_parameter",
    "message": "limit must be a whole number from 1 to 1000; got \"0\"",
    "details": {"field": "limit", "rule": "out_of_range"}
}}))]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorObject {
    /// A stable snake_case code that programs may branch on.
    #[schema(pattern = "^[a-z][a-z0-9_]*$")]
    pub code: String,
    /// What is wrong and how to fix it, for people.
    pub message: String,
    /// More about the error where there is more to say: the bad field and
    /// its rule (`{"field", "rule"}`), or per invalid event of a batch
    /// `[{"index", "errors": [{"field", "rule", "message"}]}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value, nullable = false)]
    pub details: Option<Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorObject {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}
