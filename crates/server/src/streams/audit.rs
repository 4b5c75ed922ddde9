//! The `Auditlog Log Stream` events Auditlog writes about its own log
//! streams (SPEC "Default taxonomy"): `Create`, `Update` (a new URL,
//! filters or secret; pause and resume), `Replay` (the cursor set back or
//! forward) and `Delete`, with the acting API key or console user as actor
//! and the old → new values in `details.changes`. A secret (a webhook's
//! `secret`, a Splunk HEC `token`) is never in them: its change shows as
//! `"[not recorded]"` on both sides, as does a TLS client key
//! (`client_key`); a client certificate shows as its SHA-256 fingerprint.

use crate::exports::audit::AuditActor;
use auditlog_core::taxonomy::LOG_STREAM;
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::{Account, EventAppender, LogStream, StoreError};
use serde_json::{json, Value};

/// What stands for a secret in `details.changes`.
pub const NOT_RECORDED: &str = "[not recorded]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamAction {
    Create,
    Update,
    Replay,
    Delete,
}

impl StreamAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::Update => "Update",
            Self::Replay => "Replay",
            Self::Delete => "Delete",
        }
    }
}

/// One changed field, as `details.changes` lists them.
pub fn change(field: &str, old: Value, new: Value) -> Value {
    json!({"field": field, "old": old, "new": new})
}

/// The fields an admin sets, as they are shown (never the secret); the
/// optional ones `null` when not set.
fn shown(stream: &LogStream) -> [(&'static str, Value); 9] {
    let option = |name: &str| stream.options.get(name).cloned().unwrap_or(Value::Null);
    [
        ("kind", json!(stream.kind)),
        ("format", json!(stream.format)),
        ("url", json!(stream.url)),
        ("filters", stream.filters.clone()),
        ("status", json!(stream.status.as_str())),
        ("cursor", json!(stream.cursor)),
        ("index", option(super::hec::INDEX)),
        ("sourcetype", option(super::hec::SOURCETYPE)),
        (
            "client_certificate",
            super::client_cert::certificate(stream)
                .map_or(Value::Null, |pem| json!(fingerprint(pem))),
        ),
    ]
}

/// `sha256:` and the hex SHA-256 of the chain's first certificate (DER).
fn fingerprint(pem: &str) -> String {
    use sha2::{Digest, Sha256};
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    let der = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let hex: String = Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The write-only field of a kind: a webhook's `secret`, a Splunk HEC
/// `token`; `None` for a kind without one.
fn secret_field(kind: &str) -> Option<&'static str> {
    match kind {
        "webhook" => Some("secret"),
        "splunk_hec" => Some("token"),
        _ => None,
    }
}

/// The changes of a new stream: every field from nothing, the secret (or
/// token) only as set.
pub fn created(stream: &LogStream) -> Vec<Value> {
    let mut changes: Vec<Value> = shown(stream)
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(field, value)| change(field, Value::Null, value))
        .collect();
    if let Some(field) = secret_field(&stream.kind) {
        changes.push(change(field, Value::Null, json!(NOT_RECORDED)));
    }
    if stream.sealed_client_key.is_some() {
        changes.push(change("client_key", Value::Null, json!(NOT_RECORDED)));
    }
    changes
}

/// The changes of a deleted stream: every field to nothing.
pub fn deleted(stream: &LogStream) -> Vec<Value> {
    shown(stream)
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(field, value)| change(field, value, Value::Null))
        .collect()
}

/// The fields that differ between `old` and `new` (the cursor left out:
/// it moves by delivery, and a replay is its own event), with a replaced
/// secret as `[not recorded]`.
pub fn updated(old: &LogStream, new: &LogStream) -> Vec<Value> {
    let mut changes: Vec<Value> = shown(old)
        .into_iter()
        .zip(shown(new))
        .filter(|((field, a), (_, b))| *field != "cursor" && a != b)
        .map(|((field, a), (_, b))| change(field, a, b))
        .collect();
    if old.sealed_secret != new.sealed_secret {
        let field = secret_field(&new.kind).unwrap_or("secret");
        changes.push(change(field, json!(NOT_RECORDED), json!(NOT_RECORDED)));
    }
    if old.sealed_client_key != new.sealed_client_key {
        let side =
            |key: &Option<Vec<u8>>| key.as_ref().map_or(Value::Null, |_| json!(NOT_RECORDED));
        changes.push(change(
            "client_key",
            side(&old.sealed_client_key),
            side(&new.sealed_client_key),
        ));
    }
    changes
}

/// Appends the event; returns once it is durable. `extra` adds fields to
/// `details` (such as the replay's `from_seq`).
pub async fn record(
    store: &dyn EventAppender,
    account: &Account,
    actor: &AuditActor,
    action: StreamAction,
    stream: &LogStream,
    changes: Vec<Value>,
    extra: Option<Value>,
) -> Result<(), StoreError> {
    let mut actor_json = json!({ "id": actor.id });
    if let Some(name) = &actor.name {
        actor_json["name"] = json!(name);
    }
    if let Some(email) = &actor.email {
        actor_json["email"] = json!(email);
    }
    let mut details = json!({
        "stream_id": stream.id,
        "kind": stream.kind,
        "changes": changes,
    });
    if let (Some(Value::Object(extra)), Some(object)) = (extra, details.as_object_mut()) {
        object.extend(extra);
    }
    let event = json!({
        "event_type": LOG_STREAM,
        "action": action.as_str(),
        "actor": actor_json,
        "target": {"id": format!("stream-{}", stream.id), "name": format!("{} stream {}", stream.kind, stream.id)},
        "details": details,
    });
    let event = NewEvent::parse(&event, &account.taxonomy.with_own_types(), Timestamp::now())
        .map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
            StoreError::internal(format!(
                "the audit event of a log stream is invalid for account {}: {}",
                account.name,
                reasons.join("; ")
            ))
        })?;
    store
        .append_from(account, &actor.source, vec![event])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_store::StreamStatus;

    fn stream() -> LogStream {
        LogStream {
            id: 7,
            account_id: 1,
            kind: "webhook".into(),
            format: "native".into(),
            url: "http://siem.example.net/hook".into(),
            filters: json!({}),
            sealed_secret: vec![1, 2, 3],
            options: json!({}),
            sealed_client_key: None,
            status: StreamStatus::Active,
            cursor: 10,
            pending: None,
            attempts: 0,
            last_error: None,
            failing_since: None,
            claimed_by: None,
            claimed_until: None,
            created_at: Timestamp::from_micros(0),
            updated_at: Timestamp::from_micros(0),
        }
    }

    #[test]
    fn an_update_lists_exactly_the_changed_fields_and_hides_the_secret() {
        let old = stream();
        let mut new = old.clone();
        new.status = StreamStatus::Paused;
        new.sealed_secret = vec![9, 9];
        new.cursor = 99;
        assert_eq!(
            updated(&old, &new),
            vec![
                change("status", json!("active"), json!("paused")),
                change("secret", json!(NOT_RECORDED), json!(NOT_RECORDED)),
            ]
        );
        assert!(updated(&old, &old).is_empty());
        let mut keyed = old.clone();
        keyed.options = json!({"index": "main"});
        keyed.sealed_client_key = Some(vec![4]);
        assert_eq!(
            updated(&old, &keyed),
            vec![
                change("index", Value::Null, json!("main")),
                change("client_key", Value::Null, json!(NOT_RECORDED)),
            ]
        );
    }

    #[test]
    fn create_and_delete_list_every_shown_field() {
        let s = stream();
        let created = created(&s);
        assert_eq!(created.len(), 7);
        assert_eq!(
            created[2],
            change("url", Value::Null, json!("http://siem.example.net/hook"))
        );
        assert_eq!(
            created[6],
            change("secret", Value::Null, json!(NOT_RECORDED))
        );
        let deleted = deleted(&s);
        assert_eq!(deleted[4], change("status", json!("active"), Value::Null));
        assert!(!deleted.iter().any(|c| c["field"] == "secret"));
        let mut hec = s.clone();
        hec.kind = "splunk_hec".into();
        assert_eq!(
            super::created(&hec)[6],
            change("token", Value::Null, json!(NOT_RECORDED))
        );
        hec.kind = "syslog".into();
        assert_eq!(super::created(&hec).len(), 6, "syslog has no secret");
    }
}
