//! Changing and showing an account's retention policy and legal holds: the
//! functions that the API (`api::retention`), the console (Settings >
//! Retention) and the CLI (`auditlog retention`, `auditlog hold`) share, so
//! that each checks exactly the same rules and audits each change the same
//! way (`Auditlog Account` / Update for the policy, `Auditlog Legal Hold` /
//! Create and Release), with its own actor.

use super::plan;
use super::RetentionSettings;
use crate::error::ApiError;
use crate::exports::audit::AuditActor;
use crate::holds::{ActiveHolds, HoldMatcher};
use auditlog_core::taxonomy::{ACCOUNT, LEGAL_HOLD};
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::holds::MAX_ACTIVE_HOLDS;
use auditlog_store::{Account, Hold, HoldId, NewHold, Store, StoreError};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

/// A 422 naming the field and the rule it breaks.
pub fn invalid(field: &str, rule: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
        .with_details(json!({"field": field, "rule": rule}))
}

/// The body as an object of only the `allowed` fields.
pub fn object<'a>(body: &'a Value, allowed: &[&str]) -> Result<&'a Map<String, Value>, ApiError> {
    let object = body
        .as_object()
        .ok_or_else(|| invalid("body", "not_an_object", "the body must be a JSON object"))?;
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(invalid(
                key,
                "unknown_field",
                format!("{key} is not a field here; allowed: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(object)
}

/// Appends one of Auditlog's own events with `actor` as its actor.
async fn audit(
    store: &dyn Store,
    account: &Account,
    actor: &AuditActor,
    mut event: Value,
) -> Result<(), ApiError> {
    let mut actor_json = json!({ "id": actor.id });
    if let Some(name) = &actor.name {
        actor_json["name"] = json!(name);
    }
    if let Some(email) = &actor.email {
        actor_json["email"] = json!(email);
    }
    event["actor"] = actor_json;
    let event = NewEvent::parse(&event, &account.taxonomy.with_own_types(), Timestamp::now())
        .map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
            ApiError::internal("audit event", reasons.join("; "))
        })?;
    store
        .append_from(account, &actor.source, vec![event])
        .await?;
    Ok(())
}

/// How long the view walks the next pruning's candidates before it answers
/// with what it counted (`next.partial`), well within the request limit.
const VIEW_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// The account's retention policy and the next pruning.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionView {
    /// Days after receipt that events are kept; `null`: forever (the default).
    pub retention_days: Option<u32>,
    /// The smallest and largest `retention_days` this server allows.
    pub min_days: u32,
    pub max_days: u32,
    /// What the next pruning would remove and what holds it back. On a
    /// large first pruning the walk stops after about 2 s with
    /// `partial: true`: the range and counts are then the part walked, and
    /// the pruning itself goes further.
    #[schema(value_type = Object)]
    pub next: Value,
    /// The latest prunings, newest first.
    #[schema(value_type = Vec<Object>)]
    pub prunings: Vec<Value>,
}

/// The policy, what the next pruning removes and holds back, and the
/// latest prunings with their progress.
pub async fn view(
    store: &dyn Store,
    settings: &RetentionSettings,
    account: &Account,
) -> Result<RetentionView, ApiError> {
    let active = store.holds(account.id, false).await?;
    let (holds, _) = ActiveHolds::new(&active, &account.taxonomy);
    let preview =
        plan::preview_within(store, account, &holds, Timestamp::now(), VIEW_BUDGET).await?;
    let prunings = store
        .prune_jobs(account.id, 10)
        .await?
        .iter()
        .map(|job| {
            json!({
                "id": job.id,
                "status": job.status.as_str(),
                "planned_at": job.plan.planned_at.to_rfc3339(),
                "first_seq": job.plan.first_seq,
                "last_seq": job.plan.last_seq,
                "record_seq": job.record_seq,
                "planned": job.plan.details["removed"],
                "removed": job.removed,
                "next_seq": job.next_seq,
                "held": job.plan.details["held"],
                "finished_at": job.finished_at.map(|t| t.to_rfc3339()),
            })
        })
        .collect();
    Ok(RetentionView {
        retention_days: preview.retention_days,
        min_days: settings.min_days,
        max_days: settings.max_days,
        next: serde_json::to_value(&preview)
            .map_err(|e| ApiError::internal("retention preview", e))?,
        prunings,
    })
}

/// Sets `retention_days` (`None`: keep events forever) within the server's
/// bounds (422 naming `retention_days` outside them), a change audited as
/// `Auditlog Account` / Update with the old and new value before it is
/// stored.
pub async fn set_days(
    store: &dyn Store,
    settings: &RetentionSettings,
    account: &Account,
    actor: &AuditActor,
    days: Option<u32>,
) -> Result<(), ApiError> {
    if let Some(days) = days {
        if days < settings.min_days || days > settings.max_days {
            return Err(invalid(
                "retention_days",
                "out_of_range",
                format!(
                    "retention_days must be from {} to {} on this server; {days} is not",
                    settings.min_days, settings.max_days
                ),
            ));
        }
    }
    let old = store.retention_days(account.id).await?;
    if old == days {
        return Ok(());
    }
    // Recorded before it takes effect, so that every pruning comes after
    // the record of the policy that allowed it.
    audit(
        store,
        account,
        actor,
        json!({
            "event_type": ACCOUNT, "action": "Update",
            "target": {"id": format!("account-{}", account.name), "name": account.name},
            "details": {"changes": [{"field": "retention_days", "old": old, "new": days}]},
        }),
    )
    .await?;
    store.set_retention_days(account.id, days).await?;
    Ok(())
}

fn text_field(
    fields: &Map<String, Value>,
    name: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(text)) if !text.trim().is_empty() && text.chars().count() <= max => {
            Ok(Some(text.clone()))
        }
        _ => Err(invalid(
            name,
            if required { "required" } else { "not_text" },
            format!("{name} must be text of 1 to {max} characters"),
        )),
    }
}

/// The fields a hold is created from (the body of `POST /api/v1/holds`).
pub const HOLD_FIELDS: &[&str] = &["name", "reason", "filters", "q", "tz"];

/// Creates a legal hold from the fields of `POST /api/v1/holds` (checked
/// as the pruner will read them, so that a hold never silently matches
/// something else than asked) and audits it as `Auditlog Legal Hold` /
/// Create.
pub async fn create_hold(
    store: &dyn Store,
    account: &Account,
    actor: &AuditActor,
    body: &Value,
) -> Result<Hold, ApiError> {
    let fields = object(body, HOLD_FIELDS)?;
    let name = text_field(fields, "name", 200, true)?.unwrap_or_default();
    let reason = text_field(fields, "reason", 2_000, true)?.unwrap_or_default();
    let filters = match fields.get("filters") {
        None | Some(Value::Null) => json!({}),
        Some(filters @ Value::Object(_)) => filters.clone(),
        Some(_) => {
            return Err(invalid(
                "filters",
                "not_an_object",
                "filters must be an object of query filters",
            ))
        }
    };
    let q = text_field(fields, "q", auditlog_core::search::MAX_QUERY_CHARS, false)?;
    let tz = text_field(fields, "tz", 64, false)?.unwrap_or_else(|| "UTC".into());
    let new = NewHold {
        name,
        reason,
        filters,
        q,
        tz,
        created_by: actor.id.clone(),
    };
    let probe = Hold {
        id: 0,
        account_id: account.id,
        name: new.name.clone(),
        reason: new.reason.clone(),
        filters: new.filters.clone(),
        q: new.q.clone(),
        tz: new.tz.clone(),
        created_by: new.created_by.clone(),
        created_at: Timestamp::now(),
        released_by: None,
        released_at: None,
    };
    HoldMatcher::new(&probe, &account.taxonomy).map_err(|e| {
        // The filter's own errors already name `filters.…`.
        let field =
            if e.field.starts_with("filters.") || e.field.starts_with('q') || e.field == "tz" {
                e.field.clone()
            } else {
                format!("filters.{}", e.field)
            };
        invalid(&field, e.rule, e.message)
    })?;
    if store.holds(account.id, false).await?.len() >= MAX_ACTIVE_HOLDS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_holds",
            format!("the account has {MAX_ACTIVE_HOLDS} active holds; release one first"),
        ));
    }
    let hold = match store.create_hold(account.id, &new).await {
        Ok(hold) => hold,
        Err(StoreError::AlreadyExists(what)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "hold_exists",
                format!("{what} already exists; choose another name or release it"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    audit(
        store,
        account,
        actor,
        json!({
            "event_type": LEGAL_HOLD, "action": "Create",
            "target": {"id": format!("hold-{}", hold.id), "name": hold.name},
            "details": {"hold_id": hold.id, "reason": hold.reason, "filters": hold.filters,
                        "q": hold.q, "tz": hold.tz},
        }),
    )
    .await?;
    Ok(hold)
}

/// Releases an active hold (404 when the account has no active hold with
/// this id) and audits it as `Auditlog Legal Hold` / Release: the next
/// pruning may remove what it kept.
pub async fn release_hold(
    store: &dyn Store,
    account: &Account,
    actor: &AuditActor,
    id: HoldId,
) -> Result<Hold, ApiError> {
    let hold = match store.release_hold(account.id, id, &actor.id).await {
        Ok(hold) => hold,
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::not_found(format!(
                "no active legal hold {id} in this account"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    audit(
        store,
        account,
        actor,
        json!({
            "event_type": LEGAL_HOLD, "action": "Release",
            "target": {"id": format!("hold-{}", hold.id), "name": hold.name},
            "details": {"hold_id": hold.id, "changes": [{"field": "status", "old": "active", "new": "released"}]},
        }),
    )
    .await?;
    Ok(hold)
}
