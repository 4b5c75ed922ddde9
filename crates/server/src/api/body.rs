//! Reading request bodies ourselves, so that every failure — wrong content
//! type, too large, malformed — answers in our error shape, and every body
//! read has a stated bound.

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use futures_util::StreamExt;
use serde_json::Value;

/// Largest body of `POST /api/v1/events` (a batch of up to 1,000 events).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Largest body of a small request (an export's format and filters, a
/// console form): ample for any filter, and little to hold per connection.
pub const MAX_SMALL_BODY_BYTES: usize = 64 * 1024;

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the bound (which it names).
    TooLarge { limit: usize },
    /// The connection failed while the body was arriving.
    Unreadable(String),
}

impl BodyError {
    /// "10 MiB", "64 KiB".
    pub fn limit_text(limit: usize) -> String {
        if limit >= 1 << 20 {
            format!("{} MiB", limit >> 20)
        } else {
            format!("{} KiB", limit >> 10)
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { limit } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the request body must be at most {}; split it into several requests",
                    BodyError::limit_text(limit)
                ),
            ),
            BodyError::Unreadable(e) => ApiError::bad_request(
                "unreadable_body",
                format!("the body could not be read: {e}"),
            ),
        }
    }
}

/// The whole body if it is at most `limit` bytes. An oversized body is still
/// read and discarded (up to a bound), so the client, still sending,
/// receives the 413 instead of a broken pipe.
pub async fn read_bounded(body: Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    let drain_limit = limit.saturating_mul(4).max(1 << 20);
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut received = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        received += chunk.len();
        if received > limit {
            if received > drain_limit {
                break;
            }
            continue;
        }
        bytes.extend_from_slice(&chunk);
    }
    if received > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(bytes)
}

/// A JSON body of at most [`MAX_BODY_BYTES`].
pub async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    read_json_within(headers, body, MAX_BODY_BYTES).await
}

/// A JSON body of at most `limit` bytes.
pub async fn read_json_within(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Value, ApiError> {
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
    let bytes = read_bounded(body, limit).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })
}
