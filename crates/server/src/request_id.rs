//! A request id on every answer and on every log line written while serving
//! the request, so that an operator can find one request's story in the logs
//! from the id a client reports.
//!
//! The id is the client's `x-request-id` when that is a sane token (a proxy
//! or the caller may have assigned one already), else a new random one.
//! tower-http's layers do the setting and echoing: an insane id is dropped
//! first ([`drop_insane_id`]), `SetRequestIdLayer` then sets one
//! where none is left (with [`RandomId`]) and puts it in the request's
//! extensions, and `PropagateRequestIdLayer` copies it onto the answer.
//! [`request_span`] serves the request inside a `request` span carrying the
//! id and logs its completion.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tracing::Instrument;

/// The header that carries the id, in both directions.
pub const HEADER: &str = "x-request-id";

/// Longest id taken from a client; longer ones are replaced, so that a
/// client cannot fill the logs through this header.
pub const MAX_LENGTH: usize = 64;

/// Middleware: removes a client's `x-request-id` that is not a sane token,
/// so that a new one is generated in its place.
pub async fn drop_insane_id(mut request: Request, next: Next) -> Response {
    let insane = request
        .headers()
        .get(HEADER)
        .is_some_and(|value| !value.to_str().is_ok_and(is_sane));
    if insane {
        request.headers_mut().remove(HEADER);
    }
    next.run(request).await
}

/// `SetRequestIdLayer` for the `x-request-id` header, generating [`RandomId`]s.
pub fn set_layer() -> SetRequestIdLayer<RandomId> {
    SetRequestIdLayer::new(HeaderName::from_static(HEADER), RandomId)
}

/// `PropagateRequestIdLayer` for the `x-request-id` header.
pub fn propagate_layer() -> PropagateRequestIdLayer {
    PropagateRequestIdLayer::new(HeaderName::from_static(HEADER))
}

/// Middleware: serves the request inside a span that carries its id (set
/// by `SetRequestIdLayer` outside it) and logs its completion.
pub async fn request_span(request: Request, next: Next) -> Response {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("none")
        .to_owned();
    let method = request.method().clone();
    // The route template (`/api/v1/events/{id}`), not the path: bounded, and
    // free of the values a path may carry.
    let route = request.extensions().get::<MatchedPath>().cloned();
    // At error level so that the span, and with it the id, is recorded
    // whatever the log filter: a warning needs its request id most.
    let span = tracing::error_span!("request", request_id = %id);
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            %method,
            route = route.as_ref().map_or("unmatched", MatchedPath::as_str),
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request completed"
        );
    });
    response
}

/// Whether a client's id may be used as it is: 1 to 64 characters of
/// `[A-Za-z0-9._-]`, so that it is safe in logs and headers.
pub fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LENGTH
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Makes ids of 128 random bits in hex.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomId;

impl MakeRequestId for RandomId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        generate().parse().ok().map(RequestId::new)
    }
}

/// A new id: 128 random bits in hex. Should the operating system's random
/// source fail, a process-wide counter still keeps ids distinct.
fn generate() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        static FALLBACK: AtomicU64 = AtomicU64::new(0);
        return format!("local-{}", FALLBACK.fetch_add(1, Ordering::Relaxed));
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_short_tokens() {
        assert!(is_sane("abc-123_X.y"));
        assert!(is_sane(&"a".repeat(MAX_LENGTH)));
        for bad in [
            "",
            "has space",
            "semi;colon",
            "new\nline",
            "ünïcode",
            &"a".repeat(MAX_LENGTH + 1),
        ] {
            assert!(!is_sane(bad), "{bad:?} was taken as sane");
        }
    }

    #[test]
    fn generated_ids_are_sane_and_distinct() {
        let first = generate();
        let second = generate();
        assert!(is_sane(&first) && is_sane(&second));
        assert_eq!(first.len(), 32);
        assert_ne!(first, second);
    }
}
