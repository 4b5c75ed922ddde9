//! The `Auditlog API Key` events Auditlog writes about an account's keys:
//! `Create` (name, scopes, expiry from nothing) and `Revoke` (the
//! revocation time from nothing), with the acting key, console user or
//! operator as actor and `source`. Never the secret nor its hash: a key is
//! named by its public id and its listing prefix.

use crate::exports::audit::AuditActor;
use auditlog_core::taxonomy::API_KEY;
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::{Account, ApiKeyInfo, EventAppender, StoreError};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    Create,
    Revoke,
}

impl KeyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::Revoke => "Revoke",
        }
    }
}

fn time(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, |t| json!(t.to_rfc3339()))
}

/// The old → new values of `action` on `key`.
pub fn changes(action: KeyAction, key: &ApiKeyInfo) -> Vec<Value> {
    let change =
        |field: &str, old: Value, new: Value| json!({"field": field, "old": old, "new": new});
    match action {
        KeyAction::Create => vec![
            change("name", Value::Null, json!(key.name)),
            change(
                "scopes",
                Value::Null,
                json!(key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            ),
            change("expires_at", Value::Null, time(key.expires_at)),
        ],
        KeyAction::Revoke => vec![change("revoked_at", Value::Null, time(key.revoked_at))],
    }
}

/// Appends the event; returns once it is durable.
pub async fn record(
    store: &dyn EventAppender,
    account: &Account,
    actor: &AuditActor,
    action: KeyAction,
    key: &ApiKeyInfo,
) -> Result<(), StoreError> {
    let mut actor_json = json!({ "id": actor.id });
    if let Some(name) = &actor.name {
        actor_json["name"] = json!(name);
    }
    if let Some(email) = &actor.email {
        actor_json["email"] = json!(email);
    }
    let event = json!({
        "event_type": API_KEY,
        "action": action.as_str(),
        "actor": actor_json,
        "target": {"id": key.public_id, "name": key.name},
        "details": {
            "key_id": key.public_id,
            "prefix": key.prefix,
            "changes": changes(action, key),
        },
    });
    let event = NewEvent::parse(&event, &account.taxonomy.with_own_types(), Timestamp::now())
        .map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
            StoreError::internal(format!(
                "the audit event of an API key is invalid for account {}: {}",
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
    use auditlog_store::Scope;

    #[test]
    fn changes_name_every_set_field_and_never_a_secret() {
        let key = ApiKeyInfo {
            id: 3,
            public_id: "key_0123456789abcdef".into(),
            prefix: "alk_abcd".into(),
            name: "ci".into(),
            scopes: vec![Scope::Ingest, Scope::Read],
            expires_at: Some(Timestamp::from_micros(0)),
            created_by: "user:1".into(),
            created_at: Timestamp::from_micros(0),
            last_used_at: None,
            revoked_at: Some(Timestamp::from_micros(1_000_000)),
        };
        assert_eq!(
            changes(KeyAction::Create, &key),
            vec![
                json!({"field": "name", "old": null, "new": "ci"}),
                json!({"field": "scopes", "old": null, "new": ["ingest", "read"]}),
                json!({"field": "expires_at", "old": null, "new": "1970-01-01T00:00:00.000000Z"}),
            ]
        );
        assert_eq!(
            changes(KeyAction::Revoke, &key),
            vec![json!({"field": "revoked_at", "old": null, "new": "1970-01-01T00:00:01.000000Z"})]
        );
    }
}
