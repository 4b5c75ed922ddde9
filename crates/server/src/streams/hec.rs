//! Splunk HTTP Event Collector (`splunk_hec`): one `POST` per batch of
//! event envelopes, concatenated (not a JSON array), to the stream's URL
//! (`…/services/collector/event` or `…/services/collector`), with the token
//! in `Authorization: Splunk <token>` and a channel per stream
//! (`X-Splunk-Request-Channel`, a UUID derived from the stream's id).
//!
//! Indexer acknowledgement: when the collector answers with an `ackId`, the
//! batch counts as delivered only once `…/services/collector/ack` says that
//! id is acknowledged (`{"acks": {"<id>": true}}`); until then the cursor
//! stays, and a batch not acknowledged in time is sent again.

use super::address::AllowList;
use super::http::{self, Answer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The envelope's `source`.
pub const SOURCE: &str = "auditlog";

/// Whether `url`'s path is a collector endpoint events can be sent to.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
    match parsed.path().trim_end_matches('/') {
        "/services/collector" | "/services/collector/event" | "/services/collector/event/1.0" => {
            Ok(())
        }
        other => Err(format!(
            "url: a Splunk HEC URL ends in /services/collector/event (or /services/collector), \
             not {other:?}"
        )),
    }
}

/// The acknowledgement endpoint next to the event endpoint `url`.
pub fn ack_url(url: &str) -> Result<String, String> {
    let mut parsed =
        reqwest::Url::parse(url).map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
    parsed.set_path("/services/collector/ack");
    parsed.set_query(None);
    Ok(parsed.to_string())
}

/// The stream's channel: a UUID derived from its id (stable across retries and servers).
pub fn channel(stream: i64) -> String {
    let digest = Sha256::digest(format!("auditlog-hec-channel:{stream}"));
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Whether `token` can be a HEC token: 1 to 256 visible ASCII characters.
pub fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() || token.len() > 256 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "token must be the HEC token: 1 to 256 visible ASCII characters, no spaces".into(),
        );
    }
    Ok(())
}

/// Bytes an envelope adds to its event at most (for the batch's size):
/// the members before the event (the sourcetype at most 16 bytes) and
/// `}\n`; a stream's own index and sourcetype add [`option_bytes`].
pub const ENVELOPE_BYTES: usize = 96;

/// The stream option naming the Splunk index.
pub const INDEX: &str = "index";
/// The stream option naming the sourcetype.
pub const SOURCETYPE: &str = "sourcetype";

/// Whether `index` can be a Splunk index name: 1 to 80 lowercase ASCII
/// letters, digits, `_` and `-`, not starting with `_` or `-` (Splunk's rule).
pub fn check_index(index: &str) -> Result<(), String> {
    let ok = (1..=80).contains(&index.len())
        && index
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !index.starts_with(['_', '-']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "index {index:?} is not a Splunk index name: 1 to 80 lowercase letters, digits, _ and -, \
             not starting with _ or -"
        ))
    }
}

/// Whether `sourcetype` can be a sourcetype: 1 to 100 ASCII letters,
/// digits and `_ - . : /`.
pub fn check_sourcetype(sourcetype: &str) -> Result<(), String> {
    let ok = (1..=100).contains(&sourcetype.len())
        && sourcetype
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "sourcetype {sourcetype:?} must be 1 to 100 ASCII letters, digits and _ - . : /"
        ))
    }
}

/// The envelope fields of a stream: its index (if set) and sourcetype
/// (its own, else `auditlog`, or `ocsf` for the `ocsf` format).
pub fn envelope_fields(stream: &auditlog_store::LogStream) -> (Option<String>, String) {
    let option = |name: &str| {
        stream
            .options
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let sourcetype = option(SOURCETYPE).unwrap_or_else(|| {
        if stream.format == "ocsf" {
            "ocsf".into()
        } else {
            "auditlog".into()
        }
    });
    (option(INDEX), sourcetype)
}

/// Bytes a stream's own index and sourcetype add to each envelope at most.
pub fn option_bytes(stream: &auditlog_store::LogStream) -> usize {
    let (index, sourcetype) = envelope_fields(stream);
    index.map_or(0, |i| i.len() + 12) + sourcetype.len()
}

/// Appends one envelope: `{"time": <seconds.micros>, "index": …,
/// "source": "auditlog", "sourcetype": …, "event": <the event>}` and a
/// newline (`index` only when given). `index` and `sourcetype` are of the
/// characters [`check_index`] and [`check_sourcetype`] allow (no escaping needed).
pub fn write_envelope(
    time_micros: i64,
    index: Option<&str>,
    sourcetype: &str,
    event: &[u8],
    out: &mut Vec<u8>,
) {
    let seconds = time_micros.div_euclid(1_000_000);
    let micros = time_micros.rem_euclid(1_000_000);
    out.extend_from_slice(format!("{{\"time\":{seconds}.{micros:06},").as_bytes());
    if let Some(index) = index {
        out.extend_from_slice(format!("\"index\":\"{index}\",").as_bytes());
    }
    out.extend_from_slice(
        format!("\"source\":\"{SOURCE}\",\"sourcetype\":\"{sourcetype}\",\"event\":").as_bytes(),
    );
    out.extend_from_slice(event);
    out.extend_from_slice(b"}\n");
}

/// How the collector answered a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Taken; when `ack` is set, delivered only once that id is acknowledged.
    Taken { summary: String, ack: Option<u64> },
    /// Refused or no answer.
    Not(Answer),
}

fn headers(token: &str, channel: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_string()),
        ("authorization", format!("Splunk {token}")),
        ("x-splunk-request-channel", channel.to_string()),
    ]
}

/// Sends one batch (`body`: concatenated envelopes).
pub async fn send(
    url: &str,
    allow: &AllowList,
    tls: http::Tls<'_>,
    token: &str,
    channel: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Sent {
    let posted = match http::post(url, allow, tls, headers(token, channel), body, timeout).await {
        Ok(p) => p,
        Err(answer) => return Sent::Not(answer),
    };
    match posted.answer() {
        Answer::Accepted(summary) => {
            let ack = serde_json::from_str::<Value>(&posted.body)
                .ok()
                .and_then(|v| v.get("ackId").and_then(Value::as_u64));
            Sent::Taken { summary, ack }
        }
        other => Sent::Not(other),
    }
}

/// Asks whether `ack` is acknowledged: `Ok(true)` once it is.
pub async fn acknowledged(
    url: &str,
    allow: &AllowList,
    tls: http::Tls<'_>,
    token: &str,
    channel: &str,
    ack: u64,
    timeout: Duration,
) -> Result<bool, Answer> {
    let ack_url = ack_url(url).map_err(Answer::connection)?;
    let body = format!("{{\"acks\":[{ack}]}}").into_bytes();
    let posted = http::post(&ack_url, allow, tls, headers(token, channel), body, timeout).await?;
    match posted.answer() {
        Answer::Accepted(summary) => {
            let answer: Value = serde_json::from_str(&posted.body).map_err(|_| Answer::Retry {
                reason: format!("the acknowledgement endpoint answered {summary}, not JSON"),
                cause: "status",
                after: None,
            })?;
            Ok(answer
                .pointer(&format!("/acks/{ack}"))
                .and_then(Value::as_bool)
                .unwrap_or(false))
        }
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_concatenated_objects() {
        let mut body = Vec::new();
        write_envelope(
            1_700_000_000_000_123,
            None,
            "auditlog",
            br#"{"seq":1}"#,
            &mut body,
        );
        write_envelope(
            1_700_000_001_500_000,
            Some("audit-1"),
            "ocsf",
            br#"{"seq":2}"#,
            &mut body,
        );
        let text = String::from_utf8(body).unwrap();
        let parsed: Vec<Value> = serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(parsed.len(), 2);
        assert!(!text.starts_with('['), "not an array");
        assert_eq!(parsed[0]["time"].as_f64().unwrap(), 1_700_000_000.000123);
        assert_eq!(parsed[0]["event"]["seq"], 1);
        assert_eq!(parsed[1]["sourcetype"], "ocsf");
        assert_eq!(parsed[1]["source"], "auditlog");
        assert!(parsed[0].get("index").is_none());
        assert_eq!(parsed[1]["index"], "audit-1");
    }

    #[test]
    fn indexes_and_sourcetypes_follow_splunk_rules() {
        assert!(check_index("main").is_ok());
        assert!(check_index("audit_2-x").is_ok());
        for bad in [
            "",
            "Main",
            "_internal",
            "-x",
            "a b",
            "a\"b",
            &"a".repeat(81),
        ] {
            assert!(check_index(bad).is_err(), "{bad:?}");
        }
        assert!(check_sourcetype("auditlog:event").is_ok());
        assert!(check_sourcetype("aws/cloudtrail.v2").is_ok());
        for bad in ["", "a b", "a\"b", "é", &"a".repeat(101)] {
            assert!(check_sourcetype(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_channels_and_tokens() {
        assert!(check_url("http://splunk:8088/services/collector/event").is_ok());
        assert!(check_url("http://splunk:8088/services/collector").is_ok());
        assert!(check_url("http://splunk:8088/hook")
            .unwrap_err()
            .contains("collector"));
        assert_eq!(
            ack_url("http://splunk:8088/services/collector/event?x=1").unwrap(),
            "http://splunk:8088/services/collector/ack"
        );
        let c = channel(5);
        assert_eq!(c, channel(5));
        assert_ne!(c, channel(6));
        assert_eq!(c.len(), 36);
        assert_eq!(c.matches('-').count(), 4);
        assert!(check_token("B5A79AAD-D822-46CC-80D1-819F80D7BFB0").is_ok());
        assert!(check_token("").is_err());
        assert!(check_token("a b").is_err());
    }
}
