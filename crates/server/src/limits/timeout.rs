//! The request timeout: every request gets its answer's head within
//! [`Limits::request_timeout`](super::Limits::request_timeout), or a 503
//! `timeout` with `Retry-After`.
//!
//! Why 503 and not 408: 408 tells a client that *it* was too slow sending its
//! request (browsers and some clients then silently resend or drop the
//! connection); here the server was too slow — storage stalled or overloaded —
//! which is what 503 with `Retry-After` says, and what clients already retry.
//!
//! Only the time to the response head is bounded: a response body (an export
//! download of any size) streams for as long as it takes. A handler still
//! running at the timeout is moved to a task of its own and left to finish,
//! because cancelling it half-way could cut a multi-step operation in two (an export
//! job created but its `Audit Log` event not written; a session started but
//! its `Login` event not recorded). So a timed-out request may still take
//! effect: the message says so, and resending events with the same `id` is
//! idempotent.

use super::api_rate::retry_after_seconds;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use tracing::Instrument;

/// What a timed-out client is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The limit, and how a page (not the API) says that it was reached.
#[derive(Clone, Copy)]
pub struct RequestTimeout {
    pub limit: Duration,
    /// The answer to a browser, given the limit as words ("30 s"). The
    /// router passes the console's error page in: the limits are a layer
    /// below the console and do not use it.
    pub page: fn(&str) -> Response,
}

/// Middleware: the inner service's answer, or 503 once the limit has passed.
/// Used as `axum::middleware::from_fn_with_state(timeout, answer_within)`.
pub async fn answer_within(
    State(RequestTimeout { limit, page }): State<RequestTimeout>,
    request: Request,
    next: Next,
) -> Response {
    let for_api = is_api_path(request.uri().path());
    // Polled here, in the connection's task, so that the common case costs
    // no task of its own; boxed so that it can move to one on a timeout.
    let mut handler = Box::pin(next.run(request));
    match tokio::time::timeout(limit, &mut handler).await {
        Ok(response) => response,
        Err(_elapsed) => {
            // Finish it in the background rather than drop it half-way; the
            // task carries the request's span, so its log lines keep the
            // request's fields (such as its id).
            tokio::spawn(handler.in_current_span());
            timed_out(limit, for_api, page)
        }
    }
}

/// JSON for the API and the operational endpoints, a page for the console.
fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/") || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

fn timed_out(limit: Duration, for_api: bool, page: fn(&str) -> Response) -> Response {
    let retry_after = retry_after_seconds(RETRY_AFTER);
    let limit = format_duration(limit);
    tracing::warn!(limit, "request timed out");
    let mut response = if for_api {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the server did not answer within {limit} (storage stalled or overloaded); retry \
                 after {retry_after} s. The request may still take effect: events resent with \
                 the same id are stored once"
            ),
        )
        .into_response()
    } else {
        page(&limit)
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// "30 s", or "250 ms" below a second.
fn format_duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) && d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use futures_util::StreamExt;
    use tower_service::Service;

    fn timeout(limit: Duration) -> RequestTimeout {
        RequestTimeout {
            limit,
            page: |limit| {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    format!("<p>no answer within {limit}</p>"),
                )
                    .into_response()
            },
        }
    }

    fn app(limit: Duration) -> Router {
        Router::new()
            .route(
                "/api/v1/stall",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "never"
                }),
            )
            .route("/settings/stall", get(std::future::pending::<String>))
            .route(
                "/api/v1/slow-body",
                get(|| async {
                    // The head at once, then a body that takes 4 × the limit.
                    let chunks = futures_util::stream::iter(0..4).then(|i| async move {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, std::io::Error>(format!("chunk {i};"))
                    });
                    Body::from_stream(chunks)
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                timeout(limit),
                answer_within,
            ))
    }

    async fn call(app: &mut Router, path: &str) -> Response {
        let request = Request::get(path).body(Body::empty()).unwrap();
        app.call(request).await.unwrap()
    }

    #[tokio::test]
    async fn a_stalled_api_request_is_answered_503_timeout_with_retry_after() {
        let mut app = app(Duration::from_millis(100));
        let started = std::time::Instant::now();
        let response = call(&mut app, "/api/v1/stall").await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "timeout");
        assert!(json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("within 100 ms"));
    }

    #[tokio::test]
    async fn a_stalled_console_page_is_answered_with_a_page() {
        let mut app = app(Duration::from_millis(100));
        let response = call(&mut app, "/settings/stall").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        assert!(response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(&body[..], b"<p>no answer within 100 ms</p>");
    }

    #[tokio::test]
    async fn the_timeout_bounds_the_head_not_a_streamed_body() {
        let mut app = app(Duration::from_millis(150));
        let response = call(&mut app, "/api/v1/slow-body").await;
        assert_eq!(response.status(), StatusCode::OK);
        let started = std::time::Instant::now();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(&body[..], b"chunk 0;chunk 1;chunk 2;chunk 3;");
    }

    #[tokio::test]
    async fn a_timed_out_handler_is_left_to_finish_not_cut_half_way() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        let mut app = Router::new()
            .route(
                "/api/v1/two-steps",
                get(move || async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    flag.store(true, Ordering::SeqCst);
                    "done"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                timeout(Duration::from_millis(50)),
                answer_within,
            ));
        let response = call(&mut app, "/api/v1/two-steps").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!finished.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(finished.load(Ordering::SeqCst), "the handler was dropped");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_secs(30)), "30 s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1500 ms");
    }
}
