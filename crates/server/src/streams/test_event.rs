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
//!
//! A `syslog` stream's test event is one RFC 5424 message on a connection
//! of its own: delivered once the receiver's TCP acknowledged every byte
//! and the receiver kept the connection open (syslog has no other answer);
//! not delivered when the connection, the TLS handshake or the write fails.

use super::hec;
use super::secrets::hmac_key;
use super::syslog::{self, Connection};
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

/// How long a syslog test event waits for the receiver's TCP to
/// acknowledge it (at most the request timeout).
const SYSLOG_CONFIRM: std::time::Duration = std::time::Duration::from_secs(5);

/// Sends the test event now; `Err` for a stream whose secret cannot be
/// opened or whose kind is unknown.
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
    let tls = super::client_cert::tls(settings, stream)?;
    let answer = match stream.kind.as_str() {
        "syslog" => {
            let mut message = Vec::new();
            syslog::frame(&event, &encode(&formatted(stream, &event))?, &mut message);
            send_syslog(settings, stream, tls, &message).await
        }
        "webhook" => {
            let secret = settings.secret_key.open(&stream.sealed_secret)?;
            let secret =
                String::from_utf8(secret).map_err(|_| "the stream's secret is not text")?;
            let key = hmac_key(&secret)?;
            let body = encode(&json!([formatted(stream, &event)]))?;
            webhook::send(
                &stream.url,
                &settings.allow,
                tls.as_ref(),
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
            let (index, sourcetype) = hec::envelope_fields(stream);
            let mut body = Vec::new();
            hec::write_envelope(
                Timestamp::now().micros(),
                index.as_deref(),
                &sourcetype,
                &encode(&formatted(stream, &event))?,
                &mut body,
            );
            match hec::send(
                &stream.url,
                &settings.allow,
                tls.as_ref(),
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
                "a test event cannot be sent to a stream of kind {other:?}: not a kind of stream"
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

/// One syslog message on a connection of its own: accepted once the
/// receiver's TCP acknowledged every byte with the connection still open.
async fn send_syslog(
    settings: &StreamSettings,
    stream: &LogStream,
    tls: Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
    message: &[u8],
) -> Answer {
    let url = match syslog::parse_url(&stream.url) {
        Ok(url) => url,
        Err(reason) => return Answer::connection(reason),
    };
    let Some(tls) = tls else {
        return Answer::connection("TLS is not set up on this server".into());
    };
    let timeout = settings.request_timeout;
    let mut connection = match Connection::open(&url, &settings.allow, &tls, timeout).await {
        Ok(connection) => connection,
        Err(reason) => return Answer::connection(reason),
    };
    if let Err(reason) = connection.send(message, timeout).await {
        return Answer::connection(reason);
    }
    let deadline = tokio::time::Instant::now() + SYSLOG_CONFIRM.min(timeout);
    loop {
        // A receiver that refuses the client (mutual TLS) closes the
        // connection after the handshake.
        if let Some(reason) = connection.broken().await {
            return Answer::connection(reason);
        }
        let acknowledged = connection.all_acknowledged();
        if acknowledged == Some(true) {
            // Still open a moment later: the receiver took it.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if let Some(reason) = connection.broken().await {
                return Answer::connection(reason);
            }
            return Answer::Accepted(format!(
                "1 message ({} bytes) written; the receiver's TCP acknowledged every byte",
                message.len()
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            return Answer::connection(match acknowledged {
                None => "sent; this system cannot tell whether the receiver took it".into(),
                Some(_) => format!(
                    "the receiver did not acknowledge the message within {:?}",
                    SYSLOG_CONFIRM.min(timeout)
                ),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
