//! An example of an application that audits its own changes: a small HTTP
//! service keeping test cases in memory, which records every create, update
//! and delete in Auditlog through `auditlog-client`'s [`Batcher`], with the
//! old and new value of each changed field.
//!
//! The pattern to copy is in [`Service::commit`]: the audit event is handed
//! to the batcher *before* the change is applied, so that no change exists
//! without its audit record (with a spool, the event is on disk by then), and
//! the request never waits for the audit log's network round trip.
//!
//! # Layout
//!
//! - This root: the routes ([`router`]), the model and the audit call.
//! - `main.rs`: settings from the environment, the batcher, graceful shutdown.

use auditlog_client::{changes_between, Actor, AddError, Batcher, Context, Event, Target};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The `project` of this service's audit events.
pub const PROJECT: &str = "Test Case Service";
/// The `app` of this service's audit events.
pub const APP: &str = "testcase-service";

/// One test case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    pub id: u64,
    pub title: String,
    #[serde(default)]
    pub steps: Vec<String>,
    #[serde(default)]
    pub priority: u8,
}

/// The body of `POST /test-cases`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTestCase {
    pub title: String,
    #[serde(default)]
    pub steps: Vec<String>,
    #[serde(default)]
    pub priority: u8,
}

/// The body of `PATCH /test-cases/{id}`: the fields to change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCasePatch {
    pub title: Option<String>,
    pub steps: Option<Vec<String>>,
    pub priority: Option<u8>,
}

/// The service's state: the test cases and the audit log's batcher.
#[derive(Clone)]
pub struct Service {
    cases: Arc<Mutex<Cases>>,
    audit: Arc<Batcher>,
}

#[derive(Default)]
struct Cases {
    by_id: BTreeMap<u64, TestCase>,
    next_id: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no test case {0}")]
    NotFound(u64),
    #[error("title must not be empty")]
    EmptyTitle,
    /// The audit record could not be taken, so the change was not made.
    #[error("the change was not made because it could not be audited: {0}")]
    Audit(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = match self {
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::EmptyTitle => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            AppError::Audit(_) => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
        };
        let body = serde_json::json!({"error": {"code": code, "message": self.to_string()}});
        (status, Json(body)).into_response()
    }
}

/// All routes: `GET/POST /test-cases`, `GET/PATCH/DELETE /test-cases/{id}`.
/// The acting user is the `X-User` header (an example's stand-in for a
/// real session).
pub fn router(service: Service) -> Router {
    Router::new()
        .route("/test-cases", get(list).post(create))
        .route("/test-cases/{id}", get(show).patch(update).delete(remove))
        .with_state(service)
}

impl Service {
    pub fn new(audit: Arc<Batcher>) -> Self {
        Self {
            cases: Arc::default(),
            audit,
        }
    }

    /// Audits a change of test case `id` from `old` to `new` (`None`: absent)
    /// by the request's user: the event is accepted by the batcher before the
    /// caller applies the change.
    async fn commit(
        &self,
        headers: &HeaderMap,
        action: &str,
        old: Option<&TestCase>,
        new: Option<&TestCase>,
    ) -> Result<(), AppError> {
        let Some(case) = new.or(old) else {
            return Ok(());
        };
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let user = header("x-user").unwrap_or_else(|| "anonymous".into());
        let changes = changes_between(old, new).map_err(|e| AppError::Audit(e.to_string()))?;
        let event = Event::builder("Test Case", action, Actor::new(user))
            .project(PROJECT)
            .app(APP)
            .version(env!("CARGO_PKG_VERSION"))
            .target(Target::new(format!("TC-{}", case.id)).name(case.title.clone()))
            .changes(changes)
            .context(Context {
                ip: None,
                user_agent: header("user-agent"),
                request_id: header("x-request-id"),
            })
            .build()
            .map_err(|e| AppError::Audit(e.to_string()))?;
        // The Pending is dropped: the batcher delivers the event (and reports
        // a refusal through its `on_rejected` callback) without this request.
        self.audit
            .add(event)
            .await
            .map(drop)
            .map_err(|e: AddError| AppError::Audit(e.to_string()))
    }
}

async fn list(State(service): State<Service>) -> Json<Vec<TestCase>> {
    Json(service.cases.lock().await.by_id.values().cloned().collect())
}

async fn show(
    State(service): State<Service>,
    Path(id): Path<u64>,
) -> Result<Json<TestCase>, AppError> {
    let cases = service.cases.lock().await;
    cases
        .by_id
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or(AppError::NotFound(id))
}

async fn create(
    State(service): State<Service>,
    headers: HeaderMap,
    Json(body): Json<NewTestCase>,
) -> Result<(StatusCode, Json<TestCase>), AppError> {
    if body.title.trim().is_empty() {
        return Err(AppError::EmptyTitle);
    }
    let mut cases = service.cases.lock().await;
    cases.next_id += 1;
    let case = TestCase {
        id: cases.next_id,
        title: body.title,
        steps: body.steps,
        priority: body.priority,
    };
    service
        .commit(&headers, "Create", None, Some(&case))
        .await?;
    cases.by_id.insert(case.id, case.clone());
    Ok((StatusCode::CREATED, Json(case)))
}

async fn update(
    State(service): State<Service>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Json(patch): Json<TestCasePatch>,
) -> Result<Json<TestCase>, AppError> {
    let mut cases = service.cases.lock().await;
    let old = cases
        .by_id
        .get(&id)
        .cloned()
        .ok_or(AppError::NotFound(id))?;
    let mut new = old.clone();
    if let Some(title) = patch.title {
        if title.trim().is_empty() {
            return Err(AppError::EmptyTitle);
        }
        new.title = title;
    }
    if let Some(steps) = patch.steps {
        new.steps = steps;
    }
    if let Some(priority) = patch.priority {
        new.priority = priority;
    }
    if new != old {
        service
            .commit(&headers, "Update", Some(&old), Some(&new))
            .await?;
        cases.by_id.insert(id, new.clone());
    }
    Ok(Json(new))
}

async fn remove(
    State(service): State<Service>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Result<StatusCode, AppError> {
    let mut cases = service.cases.lock().await;
    let old = cases
        .by_id
        .get(&id)
        .cloned()
        .ok_or(AppError::NotFound(id))?;
    service.commit(&headers, "Delete", Some(&old), None).await?;
    cases.by_id.remove(&id);
    Ok(StatusCode::NO_CONTENT)
}
