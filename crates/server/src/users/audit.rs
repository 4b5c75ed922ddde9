//! The `Auditlog User` events Auditlog writes about an account's console
//! users: `Create`, `Update` (the role), `Disable`, `Enable`, `Password
//! Reset` (a new sign-in link) and `Password Change` (the user's own, or
//! through a link), with the acting key, console user or operator as actor
//! and `source`, and the exact old → new values of what changed in
//! `details.changes`. Never a password, its hash or a link's token: a
//! password change shows the time of the change, a link its expiry.

use crate::exports::audit::AuditActor;
use auditlog_core::leaf_v2::Source;
use auditlog_core::taxonomy::USER;
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::{Account, EventAppender, StoreError, UserInfo};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    Create,
    Update,
    Disable,
    Enable,
    PasswordReset,
    PasswordChange,
}

impl UserAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::Update => "Update",
            Self::Disable => "Disable",
            Self::Enable => "Enable",
            Self::PasswordReset => "Password Reset",
            Self::PasswordChange => "Password Change",
        }
    }
}

/// The user acting on their own account (a password change), in the console.
pub fn user_actor(user: &UserInfo) -> AuditActor {
    AuditActor {
        id: format!("user:{}", user.id),
        name: None,
        email: Some(user.email.clone()),
        source: Source::Console {
            user: user.id.to_string(),
        },
    }
}

fn time(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, |t| json!(t.to_rfc3339()))
}

/// The fields the audit trail shows, in order.
fn fields(user: &UserInfo) -> [(&'static str, Value); 5] {
    [
        ("email", json!(user.email)),
        ("role", json!(user.role.as_str())),
        ("disabled_at", time(user.disabled_at)),
        ("password_changed_at", time(user.password_changed_at)),
        (
            "sign_in_link_expires_at",
            time(user.sign_in_link_expires_at),
        ),
    ]
}

/// Every field whose value differs between `before` (nothing, for a new
/// user) and `after`, as `{"field", "old", "new"}`.
pub fn changes(before: Option<&UserInfo>, after: &UserInfo) -> Vec<Value> {
    let old = before.map(fields);
    fields(after)
        .into_iter()
        .enumerate()
        .filter_map(|(i, (field, new))| {
            let old = old.as_ref().map_or(Value::Null, |o| o[i].1.clone());
            (old != new).then(|| json!({"field": field, "old": old, "new": new}))
        })
        .collect()
}

/// Appends the event; returns once it is durable.
pub async fn record(
    store: &dyn EventAppender,
    account: &Account,
    actor: &AuditActor,
    action: UserAction,
    before: Option<&UserInfo>,
    after: &UserInfo,
) -> Result<(), StoreError> {
    let mut actor_json = json!({ "id": actor.id });
    if let Some(name) = &actor.name {
        actor_json["name"] = json!(name);
    }
    if let Some(email) = &actor.email {
        actor_json["email"] = json!(email);
    }
    let event = json!({
        "event_type": USER,
        "action": action.as_str(),
        "actor": actor_json,
        "target": {"id": format!("user:{}", after.id), "name": after.email},
        "details": {
            "user_id": after.id,
            "changes": changes(before, after),
        },
    });
    let event = NewEvent::parse(&event, &account.taxonomy.with_own_types(), Timestamp::now())
        .map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
            StoreError::internal(format!(
                "the audit event of a user change is invalid for account {}: {}",
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
    use auditlog_store::Role;

    fn user() -> UserInfo {
        UserInfo {
            id: 4,
            account_id: 1,
            email: "aud@acme.test".into(),
            role: Role::Auditor,
            created_at: Timestamp::from_micros(0),
            disabled_at: None,
            password_changed_at: None,
            sign_in_link_expires_at: Some(Timestamp::from_micros(1_000_000)),
        }
    }

    #[test]
    fn changes_list_exactly_what_differs() {
        let created = user();
        assert_eq!(
            changes(None, &created),
            vec![
                json!({"field": "email", "old": null, "new": "aud@acme.test"}),
                json!({"field": "role", "old": null, "new": "auditor"}),
                json!({"field": "sign_in_link_expires_at", "old": null, "new": "1970-01-01T00:00:01.000000Z"}),
            ]
        );
        let mut promoted = created.clone();
        promoted.role = Role::Admin;
        assert_eq!(
            changes(Some(&created), &promoted),
            vec![json!({"field": "role", "old": "auditor", "new": "admin"})]
        );
        let mut redeemed = created.clone();
        redeemed.sign_in_link_expires_at = None;
        redeemed.password_changed_at = Some(Timestamp::from_micros(2_000_000));
        assert_eq!(
            changes(Some(&created), &redeemed),
            vec![
                json!({"field": "password_changed_at", "old": null, "new": "1970-01-01T00:00:02.000000Z"}),
                json!({"field": "sign_in_link_expires_at", "old": "1970-01-01T00:00:01.000000Z", "new": null}),
            ]
        );
    }
}
