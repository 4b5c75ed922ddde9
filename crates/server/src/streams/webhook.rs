//! Webhook delivery, Standard Webhooks: `POST` of a JSON array of events
//! with `webhook-id` (derived from the stream and the batch's bounds, so
//! that a retry, even after a crash and by another server, carries the same
//! id and receivers can de-duplicate on it), `webhook-timestamp` and
//! `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`
//! keyed with the base64-decoded bytes after `whsec_`).
//!
//! The connection goes to the addresses checked just before (see
//! `address`), and redirects are not followed.

use super::address::AllowList;
use super::http;
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

pub use super::http::Answer;

/// Sends one batch.
pub async fn send(
    url: &str,
    allow: &AllowList,
    tls: http::Tls<'_>,
    id: &str,
    key: &[u8],
    body: Vec<u8>,
    timeout: Duration,
) -> Answer {
    let timestamp = auditlog_core::Timestamp::now().micros() / 1_000_000;
    let headers = vec![
        ("content-type", "application/json".to_string()),
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature(key, id, timestamp, &body)),
    ];
    match http::post(url, allow, tls, headers, body, timeout).await {
        Ok(posted) => posted.answer(),
        Err(answer) => answer,
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
