//! Webhook delivery, Standard Webhooks: `POST` of a JSON array of events
//! with `webhook-id` (derived from the stream and the batch's bounds, so
//! that a retry, even after a crash and by another server, carries the same
//! id and receivers can de-duplicate on it), `webhook-timestamp` and
//! `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`
//! keyed with the base64-decoded bytes after `whsec_`).
//!
//! The connection goes to the addresses checked just before (see
//! `address`), and redirects are not followed.

use super::address::{self, AllowList};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The id of the batch of `stream` examining seqs `first..=last`.
pub fn webhook_id(stream: i64, first: u64, last: u64) -> String {
    let digest = Sha256::digest(format!("auditlog-stream:{stream}:{first}:{last}"));
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// How the destination answered one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: delivered. The status and the start of the body.
    Accepted(String),
    /// Anything else but 410, or no answer: try again, after `after` when
    /// the destination said (429 or 503 with `Retry-After`).
    Retry {
        reason: String,
        /// The metrics' label: `connection`, `status` or `rate_limited`.
        cause: &'static str,
        after: Option<Duration>,
    },
    /// 410 Gone: the destination wants no more; the stream is disabled.
    Gone(String),
}

/// The most of a response body kept in the batch history.
const EXCERPT: usize = 200;

/// Sends one batch.
pub async fn send(
    url: &str,
    allow: &AllowList,
    id: &str,
    key: &[u8],
    body: Vec<u8>,
    timeout: Duration,
) -> Answer {
    let retry = |reason: String| Answer::Retry {
        reason,
        cause: "connection",
        after: None,
    };
    let destination = match address::parse_url(url) {
        Ok(d) => d,
        Err(e) => return retry(e),
    };
    // Checked now, and the connection pinned to what was checked.
    let addresses = match address::resolve(&destination, allow).await {
        Ok(a) => a,
        Err(e) => return retry(e),
    };
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .resolve_to_addrs(&destination.host, &addresses)
        .build()
    {
        Ok(c) => c,
        Err(e) => return retry(format!("cannot set up the HTTP client: {e}")),
    };
    let timestamp = auditlog_core::Timestamp::now().micros() / 1_000_000;
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature(key, id, timestamp, &body))
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => return retry(format!("no answer: {e}")),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(3_600)));
    let text = response.text().await.unwrap_or_default();
    let excerpt: String = text.chars().take(EXCERPT).collect();
    let summary = format!("{} {}", status.as_u16(), excerpt.trim());
    if status.is_success() {
        Answer::Accepted(summary)
    } else if status.as_u16() == 410 {
        Answer::Gone(summary)
    } else {
        Answer::Retry {
            reason: summary,
            cause: if status.as_u16() == 429 {
                "rate_limited"
            } else {
                "status"
            },
            after: retry_after.filter(|_| matches!(status.as_u16(), 429 | 503)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_depends_on_the_stream_and_the_bounds_only() {
        let id = webhook_id(3, 10, 20);
        assert_eq!(id, webhook_id(3, 10, 20), "the same batch, the same id");
        assert!(id.starts_with("msg_") && id.len() == 36);
        assert_ne!(id, webhook_id(4, 10, 20));
        assert_ne!(id, webhook_id(3, 11, 20));
        assert_ne!(id, webhook_id(3, 10, 21));
    }

    #[test]
    fn the_signature_is_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
