//! Reading JSON request bodies ourselves, so that every failure — wrong
//! content type, too large, malformed — answers in our error shape.

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use futures_util::StreamExt;
use serde_json::Value;

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// How much of an oversized body is read and discarded before giving up on the client.
const DRAIN_LIMIT_BYTES: usize = 4 * MAX_BODY_BYTES;

pub async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the request body must be at most {} MiB; split it into several requests",
                MAX_BODY_BYTES >> 20
            ),
        )
    };
    // Read the whole body even when it is too large (up to a bound), so the
    // client, still sending, receives the 413 instead of a broken pipe.
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut received = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(
                "unreadable_body",
                format!("the body could not be read: {e}"),
            )
        })?;
        received += chunk.len();
        if received > MAX_BODY_BYTES {
            if received > DRAIN_LIMIT_BYTES {
                break;
            }
            continue;
        }
        bytes.extend_from_slice(&chunk);
    }
    if received > MAX_BODY_BYTES {
        return Err(too_large());
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })
}
