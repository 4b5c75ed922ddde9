//! One error type for every handler. It renders SPEC.md's shape,
//! `{"error": {"code", "message", "details"?}}`, with the right status;
//! unexpected failures are logged once, with a reference the client can quote.

use auditlog_core::{ErrorChain, FieldError};
use auditlog_store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
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
    /// Seconds after which a retry may succeed (`Retry-After`), for 503s.
    pub retry_after: Option<u32>,
}

/// `Retry-After` of a full disk: freeing space takes an operator, so
/// retrying every second would only add load.
const RETRY_AFTER_FULL_SECONDS: u32 = 30;
/// `Retry-After` of other storage failures, which are often brief.
const RETRY_AFTER_UNAVAILABLE_SECONDS: u32 = 5;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
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
        let reference = crate::tokens::random_token(6);
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
            StoreError::Unavailable { .. } => {
                tracing::warn!(reason = %ErrorChain(&e), "storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is failing or busy and cannot take this request now; nothing was stored; retry later",
                )
                .with_retry_after(RETRY_AFTER_UNAVAILABLE_SECONDS)
            }
            StoreError::Full { .. } => {
                tracing::warn!(reason = %ErrorChain(&e), "storage full");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is full: nothing was stored; retry once the operator has freed disk space",
                )
                .with_retry_after(RETRY_AFTER_FULL_SECONDS)
            }
            StoreError::Internal { .. } => ApiError::internal("storage", ErrorChain(&e)),
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
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
