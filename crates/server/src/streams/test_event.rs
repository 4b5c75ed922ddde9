//! **Send test event** (`POST /api/v1/streams/{id}/test`, the console's
//! button): one made-up event sent to the stream's destination at once, as
//! a batch of one in the stream's format, signed like every batch (a
//! webhook) or with its token (Splunk HEC: taken by the collector counts as
//! delivered; its acknowledgement is not awaited), so that an admin sees whether
//! the destination accepts what the stream will send. It is not stored, has
//! `seq` 0 (no stored event has it: receivers de-duplicating on `account`
//! and `seq` never confuse it with one) and `"test": true`, and a fresh
//! `webhook-id` each time. It moves no cursor and is not retried; the
//! answer says how the destination answered. Paused or disabled streams may
//! be tested too.

use super::hec;
use super::secrets::hmac_key;
use super::webhook::{self, Answer};
use super::StreamSettings;
use auditlog_core::taxonomy::LOG_STREAM;
use auditlog_core::Timestamp;
use auditlog_store::LogStream;
use serde_json::{json, Value};

/// How the destination answered the test event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    /// 2xx.
    pub delivered: bool,
    /// The destination's status and the start of its body, or why there was no answer.
    pub response: String,
    /// The `webhook-id` it was sent with.
    pub webhook_id: String,
    /// The made-up event (as sent).
    pub event: Value,
}

/// The made-up event: the shape of the API's events, with `seq` 0.
pub fn event(account: &str, stream: &LogStream, actor_id: &str, id: &str) -> Value {
    let now = Timestamp::now().to_rfc3339();
    json!({
        "id": id,
        "seq": 0,
        "account": account,
        "time": now,
        "received_at": now,
        "event_type": LOG_STREAM,
        "action": "Test",
        "actor": {"id": actor_id},
        "target": {"id": format!("stream-{}", stream.id), "name": format!("{} stream {}", stream.kind, stream.id)},
        "details": {"message": "A test event sent from Auditlog; it is not stored and has no proof."},
        "source": {"kind": "system"},
        "hash": "0".repeat(64),
        "test": true,
    })
}

/// The test event in the stream's format (`native`, or `ocsf`).
fn formatted(stream: &LogStream, event: &Value) -> Value {
    if stream.format == "ocsf" {
        super::ocsf::event(event)
    } else {
        event.clone()
    }
}

/// Sends the test event now; `Err` for a stream whose secret cannot be
/// opened or whose kind cannot be tested (`syslog`: TCP gives no answer to
/// report).
pub async fn send(
    settings: &StreamSettings,
    account: &str,
    stream: &LogStream,
    actor_id: &str,
) -> Result<TestOutcome, String> {
    let mut random = [0u8; 16];
    crate::tokens::fill_random(&mut random);
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let webhook_id = format!("msg_{hex}");
    let event = event(account, stream, actor_id, &format!("test_{hex}"));
    let encode = |value: &Value| {
        serde_json::to_vec(value).map_err(|e| format!("cannot encode the test event: {e}"))
    };
    let answer = match stream.kind.as_str() {
        "webhook" => {
            let secret = settings.secret_key.open(&stream.sealed_secret)?;
            let secret =
                String::from_utf8(secret).map_err(|_| "the stream's secret is not text")?;
            let key = hmac_key(&secret)?;
            let body = encode(&json!([formatted(stream, &event)]))?;
            webhook::send(
                &stream.url,
                &settings.allow,
                settings.tls.as_ref(),
                &webhook_id,
                &key,
                body,
                settings.request_timeout,
            )
            .await
        }
        "splunk_hec" => {
            // Taken by the collector counts: the acknowledgement is not awaited.
            let token = settings.secret_key.open(&stream.sealed_secret)?;
            let token = String::from_utf8(token).map_err(|_| "the stream's token is not text")?;
            let sourcetype = if stream.format == "ocsf" {
                "ocsf"
            } else {
                "auditlog"
            };
            let mut body = Vec::new();
            hec::write_envelope(
                Timestamp::now().micros(),
                sourcetype,
                &encode(&formatted(stream, &event))?,
                &mut body,
            );
            match hec::send(
                &stream.url,
                &settings.allow,
                settings.tls.as_ref(),
                &token,
                &hec::channel(stream.id),
                body,
                settings.request_timeout,
            )
            .await
            {
                hec::Sent::Taken { summary, .. } => Answer::Accepted(summary),
                hec::Sent::Not(answer) => answer,
            }
        }
        other => {
            return Err(format!(
            "a test event cannot be sent to a stream of kind {other:?}: it gives no answer to show"
        ))
        }
    };
    let (delivered, response) = match answer {
        Answer::Accepted(response) => (true, response),
        Answer::Gone(response) => (false, response),
        Answer::Retry { reason, .. } => (false, reason),
    };
    Ok(TestOutcome {
        delivered,
        response,
        webhook_id,
        event,
    })
}
