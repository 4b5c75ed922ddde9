//! One error type for every handler. It renders SPEC.md's shape,
//! `{"error": {"code", "message", "details"?}}`, with the right status.
//! What the operator must see of a failure the client is told little about
//! (an internal error with the reference the client can quote, a storage
//! failure with its cause) travels on the response as an [`ErrorLog`] and is
//! logged once, by the [`log_errors`] middleware, inside the request's span
//! (so with its `request_id`): converting an error into an answer has no
//! side effect (as in axum's error-handling example).

use auditlog_core::{ErrorChain, FieldError};
use auditlog_store::StoreError;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
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
    /// What the operator is told, once the answer is on its way (boxed:
    /// most errors have none, and `Result<_, ApiError>` stays small).
    pub log: Option<Box<ErrorLog>>,
}

/// A failure to log, carried on the response's extensions from where the
/// error was made to [`log_errors`].
#[derive(Debug, Clone)]
pub struct ErrorLog {
    /// `ERROR` for faults (an operator must look), `WARN` for conditions
    /// that pass (storage busy or full).
    pub level: tracing::Level,
    /// The log line's message: "internal error", "storage unavailable", …
    pub message: &'static str,
    /// What was being done ("storage", "building a proof").
    pub context: String,
    /// The failure with its causes.
    pub reason: String,
    /// The reference the client was given, for internal errors.
    pub reference: Option<String>,
}

impl ErrorLog {
    fn emit(&self) {
        let reference = self.reference.as_deref().unwrap_or("");
        let (message, context, reason) = (self.message, &self.context, &self.reason);
        if self.level == tracing::Level::ERROR {
            tracing::error!(reference, context, reason, "{message}");
        } else {
            tracing::warn!(context, reason, "{message}");
        }
    }
}

/// Middleware: logs the [`ErrorLog`] an answer carries, once. Placed inside
/// the request span and inside the request timeout, so that a handler that
/// finishes after its request timed out still has its failure logged.
pub async fn log_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(log) = response.extensions().get::<ErrorLog>() {
        log.emit();
    }
    response
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
            log: None,
        }
    }

    fn with_log(mut self, log: ErrorLog) -> Self {
        self.log = Some(Box::new(log));
        self
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

    /// 410 for an event whose body was removed (`pruned` by retention or
    /// `erased`): its id, seq and leaf hash stay, its content does not.
    pub fn body_removed(id: &str, tombstone: &auditlog_store::Tombstone) -> Self {
        let (code, why) = match tombstone.kind {
            auditlog_store::RemovalKind::Pruned => {
                ("pruned", "was pruned by the account's retention policy")
            }
            auditlog_store::RemovalKind::Erased => ("erased", "was erased"),
        };
        Self::new(
            StatusCode::GONE,
            code,
            format!(
                "event {id:?} (seq {}) {why} (see the Auditlog record of seq {}); its inclusion proof is still served",
                tombstone.seq, tombstone.record_seq
            ),
        )
        .with_details(serde_json::json!({"seq": tombstone.seq, "record_seq": tombstone.record_seq}))
    }

    /// A failure the client cannot fix: logged (by [`log_errors`]) with a
    /// reference that the answer repeats, so an operator can find it.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        let reference = crate::tokens::random_token(6);
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("an internal error occurred; quote reference {reference} to the operator"),
        )
        .with_log(ErrorLog {
            level: tracing::Level::ERROR,
            message: "internal error",
            context: context.to_string(),
            reason: error.to_string(),
            reference: Some(reference),
        })
    }
}

/// A query parameter or filter value that breaks a rule: 400 naming it.
impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::bad_request("invalid_parameter", e.message.clone())
            .with_details(json!({"field": e.field, "rule": e.rule}))
    }
}

/// A malformed `q`: 400 `bad_query`, `details` saying where (code points)
/// and what was expected there.
impl From<auditlog_core::search::QueryError> for ApiError {
    fn from(e: auditlog_core::search::QueryError) -> Self {
        // `field` and `rule` as every other 400 has them, beside the two
        // SPEC names.
        let mut details = e.details();
        if let Some(object) = details.as_object_mut() {
            object.insert("field".into(), json!("q"));
            object.insert("rule".into(), json!("bad_query"));
        }
        ApiError::bad_request("bad_query", e.to_string()).with_details(details)
    }
}

impl From<auditlog_core::filter::FilterError> for ApiError {
    fn from(e: auditlog_core::filter::FilterError) -> Self {
        match e {
            auditlog_core::filter::FilterError::Field(f) => f.into(),
            auditlog_core::filter::FilterError::Query(q) => q.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { index, ref id } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
                    .with_details(json!({"index": index, "id": id}))
            }
            StoreError::TooLarge {
                index,
                ref id,
                bytes,
                limit,
            } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_events",
                format!("{e}; nothing was stored: send smaller details"),
            )
            .with_details(json!([{
                "index": index,
                "errors": [{
                    "field": "details",
                    "rule": "leaf_too_large",
                    "message": format!("event {id:?} would be a log entry of {bytes} bytes; an entry holds at most {limit} (SPEC \"Event\")"),
                }]
            }])),
            StoreError::AlreadyExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", e.to_string())
            }
            StoreError::NotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::Unavailable { .. } => {
                let log = storage_log("storage unavailable", &e);
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is failing or busy and cannot take this request now; nothing was stored; retry later",
                )
                .with_retry_after(RETRY_AFTER_UNAVAILABLE_SECONDS)
                .with_log(log)
            }
            StoreError::Full { .. } => {
                let log = storage_log("storage full", &e);
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is full: nothing was stored; retry once the operator has freed disk space",
                )
                .with_retry_after(RETRY_AFTER_FULL_SECONDS)
                .with_log(log)
            }
            StoreError::Internal { .. } => ApiError::internal("storage", ErrorChain(&e)),
        }
    }
}

/// A storage condition that passes (busy, full): a warning, no reference.
fn storage_log(message: &'static str, e: &StoreError) -> ErrorLog {
    ErrorLog {
        level: tracing::Level::WARN,
        message,
        context: "storage".into(),
        reason: ErrorChain(e).to_string(),
        reference: None,
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
        if let Some(log) = self.log {
            response.extensions_mut().insert(*log);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use std::sync::{Arc, Mutex};
    use tower::ServiceExt;

    /// Log lines written while `f` runs, as text.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn logged_while(app: Router, path: &str) -> (Response, String) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        (response, text)
    }

    fn app() -> Router {
        Router::new()
            .route(
                "/internal",
                get(|| async { ApiError::internal("building a proof", "hash 7 is missing") }),
            )
            .route(
                "/full",
                get(|| async {
                    let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no room");
                    ApiError::from(StoreError::full_caused_by("cannot append", io))
                }),
            )
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_internal_error_is_logged_once_by_the_middleware_with_its_reference() {
        let app = app().layer(axum::middleware::from_fn(log_errors));
        let (response, logs) = logged_while(app, "/internal").await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        let reference = message.split("reference ").nth(1).unwrap();
        let reference = reference.split(' ').next().unwrap();
        assert_eq!(logs.matches("internal error").count(), 1, "{logs}");
        assert!(logs.contains(reference), "{logs}");
        assert!(logs.contains("hash 7 is missing"), "{logs}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn making_the_answer_logs_nothing_the_middleware_does() {
        // Without the middleware the error is answered and nothing is
        // logged: building the answer has no side effect.
        let (response, logs) = logged_while(app(), "/full").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.extensions().get::<ErrorLog>().is_some());
        assert_eq!(logs, "");
        let app = app().layer(axum::middleware::from_fn(log_errors));
        let (_, logs) = logged_while(app, "/full").await;
        assert_eq!(logs.matches("storage full").count(), 1, "{logs}");
        assert!(logs.contains("no room"), "{logs}");
    }
}
