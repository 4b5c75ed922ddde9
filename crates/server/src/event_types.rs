//! Custom event types and actions (issue 18): an admin adds types and
//! actions to the account's taxonomy and retires them, through
//! `/api/v1/event-types` or Settings > Event Types. Each change is applied
//! by the store in one transaction ([`Taxonomies::edit_taxonomy`]), audited
//! as an `Auditlog Account` `Update` event with the exact old → new value,
//! and takes effect at once on this server (its cached keys of the account
//! are forgotten) and within the key cache's TTL (4 s) on every other
//! server sharing the database. Retired types and actions stay in the
//! taxonomy: stored events keep them and filters find them, but the events
//! API refuses new ones ([`Taxonomy::retired_use`]).

use crate::exports::audit::AuditActor;
use crate::key_cache::KeyCache;
use auditlog_core::taxonomy::{TaxonomyChange, TaxonomyEdit, ACCOUNT};
use auditlog_core::{FieldError, NewEvent, Taxonomy, Timestamp};
use auditlog_store::{Account, Store, StoreError};
use serde_json::json;

/// Why an edit did not happen.
#[derive(Debug)]
pub enum EditError {
    /// The edit breaks a rule; `rule` `not_found` and `already_exists` are
    /// 404 and 409, the others 422.
    Refused(FieldError),
    Store(StoreError),
}

impl From<StoreError> for EditError {
    fn from(e: StoreError) -> Self {
        EditError::Store(e)
    }
}

/// The status a refusal is answered with.
pub fn refusal_status(error: &FieldError) -> u16 {
    match error.rule {
        "not_found" => 404,
        "already_exists" => 409,
        _ => 422,
    }
}

/// Applies `edit` to the account's taxonomy and audits it. Returns the
/// taxonomy after it (unchanged when the edit changed nothing, such as
/// retiring what is retired: then nothing is audited).
pub async fn edit(
    store: &dyn Store,
    cache: &KeyCache,
    account: &Account,
    actor: &AuditActor,
    edit: &TaxonomyEdit,
) -> Result<Taxonomy, EditError> {
    let outcome = store
        .edit_taxonomy(account.id, edit)
        .await?
        .map_err(EditError::Refused)?;
    let Some((taxonomy, change)) = outcome else {
        let fresh = store
            .account_by_id(account.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {}", account.name)))?;
        return Ok(fresh.taxonomy);
    };
    // This server's requests see the change at once; the others' within
    // the cache's TTL.
    cache.forget_account(account.id);
    let changed = Account {
        taxonomy: taxonomy.clone(),
        ..account.clone()
    };
    record(store, &changed, actor, &change).await?;
    Ok(taxonomy)
}

/// Appends the `Auditlog Account` `Update` event of `change`.
async fn record(
    store: &dyn Store,
    account: &Account,
    actor: &AuditActor,
    change: &TaxonomyChange,
) -> Result<(), StoreError> {
    let mut actor_json = json!({ "id": actor.id });
    if let Some(name) = &actor.name {
        actor_json["name"] = json!(name);
    }
    if let Some(email) = &actor.email {
        actor_json["email"] = json!(email);
    }
    let event = json!({
        "event_type": ACCOUNT,
        "action": "Update",
        "actor": actor_json,
        "target": {"id": format!("account-{}", account.name), "name": account.name},
        "details": {"changes": [change.to_json()]},
    });
    let event = NewEvent::parse(&event, &account.taxonomy.with_own_types(), Timestamp::now())
        .map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
            StoreError::internal(format!(
                "the audit event of a taxonomy change is invalid for account {}: {}",
                account.name,
                reasons.join("; ")
            ))
        })?;
    store
        .append_from(account, &actor.source, vec![event])
        .await?;
    Ok(())
}

/// `active` or `retired`.
pub fn status(retired: bool) -> &'static str {
    if retired {
        "retired"
    } else {
        "active"
    }
}
