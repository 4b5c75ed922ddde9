//! A request id on every answer and on every log line written while serving
//! the request, so that an operator can find one request's story in the logs
//! from the id a client reports.
//!
//! The id is the client's `x-request-id` when that is a sane token (a proxy
//! or the caller may have assigned one already), else a new random one. It is
//! put in the request's extensions ([`RequestId`]), recorded on a `request`
//! span around the whole request, and echoed in the answer's `x-request-id`.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::Instrument;

/// The header that carries the id, in both directions.
pub const HEADER: &str = "x-request-id";

/// Longest id taken from a client; longer ones are replaced, so that a
/// client cannot fill the logs through this header.
pub const MAX_LENGTH: usize = 64;

/// The id of the request being served, for handlers that want to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Middleware: tags the request with its id, serves it inside a span that
/// carries the id, logs its completion and answers with the id.
pub async fn tag_request(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_sane(value))
        .map_or_else(generate, str::to_owned);
    let method = request.method().clone();
    // The route template (`/api/v1/events/{id}`), not the path: bounded, and
    // free of the values a path may carry.
    let route = request.extensions().get::<MatchedPath>().cloned();
    request.extensions_mut().insert(RequestId(id.clone()));
    // At error level so that the span, and with it the id, is recorded
    // whatever the log filter: a warning needs its request id most.
    let span = tracing::error_span!("request", request_id = %id);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            %method,
            route = route.as_ref().map_or("unmatched", MatchedPath::as_str),
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request completed"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
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
