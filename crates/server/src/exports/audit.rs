//! The `Audit Log` events Auditlog writes about its own exports: every
//! export created (`Export`) and every download (`Download`), with the
//! acting API key or console user as actor. Shared by the API and the
//! console, which pass their own actor.

use auditlog_core::leaf_v2::Source;
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::{Account, EventAppender, ExportJob, StoreError};
use serde_json::{json, Value};

/// Who acted, as the event's `actor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActor {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// `source` of the event: the key, the console user or the operator.
    pub source: Source,
}

impl AuditActor {
    /// An API key, as the actor (`ApiCaller::actor_id`, e.g. `api-key:7`)
    /// and the source of the event (`ApiCaller::source`).
    pub fn api_key(actor_id: String, source: Source) -> Self {
        Self {
            id: actor_id,
            name: None,
            email: None,
            source,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportAction {
    Export,
    Download,
}

impl ExportAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Export => "Export",
            Self::Download => "Download",
        }
    }
}

/// The `details` of an export's audit events: export id, format and filters.
pub fn details(job: &ExportJob) -> Value {
    json!({
        "export_id": job.id,
        "format": job.format.as_str(),
        "compression": job.compression.as_str(),
        "filters": job.filters,
    })
}

/// Appends the audit event of an export job; returns once it is durable.
pub async fn record(
    store: &dyn EventAppender,
    account: &Account,
    actor: &AuditActor,
    action: ExportAction,
    job: &ExportJob,
) -> Result<(), StoreError> {
    let target = json!({"id": format!("export-{}", job.id), "name": format!("{} export {}", job.format.as_str(), job.id)});
    record_with(store, account, actor, action, target, details(job)).await
}

/// Appends an export audit event with the given target and details (the
/// operator's `auditlog export` has no job to point at).
pub async fn record_with(
    store: &dyn EventAppender,
    account: &Account,
    actor: &AuditActor,
    action: ExportAction,
    target: Value,
    details: Value,
) -> Result<(), StoreError> {
    let mut actor_json = json!({ "id": actor.id });
    if let Some(name) = &actor.name {
        actor_json["name"] = json!(name);
    }
    if let Some(email) = &actor.email {
        actor_json["email"] = json!(email);
    }
    let event = json!({
        "event_type": "Audit Log",
        "action": action.as_str(),
        "actor": actor_json,
        "target": target,
        "details": details,
    });
    let event = NewEvent::parse(&event, &account.taxonomy, Timestamp::now()).map_err(|errors| {
        let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
        StoreError::internal(format!(
            "the audit event of an export is invalid for account {}: {}",
            account.name,
            reasons.join("; ")
        ))
    })?;
    store
        .append_from(account, &actor.source, vec![event])
        .await?;
    Ok(())
}
