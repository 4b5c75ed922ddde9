//! The personal values of one version 2 event, kept beside its leaf and
//! never in it: the plain values its commitments hide and the salts
//! (openings) that open them. A store keeps these bytes in its personal
//! table, so that erasure can remove them without touching the log.
//!
//! Stored as the RFC 8785 JSON of
//! `{"personal": {"actor.id": …, "actor.name": …, "context.ip": …},
//!   "details": {"details.x": <value>, …}, "openings": {…}}`
//! (`personal` holds the object the `personal` commitment is of, exactly).

use super::commitment::{ACTOR_PERSONAL, CONTEXT_PERSONAL};
use super::openings::{Openings, PERSONAL};
use super::LeafV2Error;
use crate::canonical;
use serde_json::{Map, Value};

/// Builds the stored personal values of `fields` (the event's plain members)
/// for the commitments `openings` names.
pub(super) fn collect(
    fields: &Map<String, Value>,
    openings: &Openings,
) -> Result<Vec<u8>, LeafV2Error> {
    let mut personal = Map::new();
    if let Some(actor) = fields.get("actor").and_then(Value::as_object) {
        for (member, name) in ACTOR_PERSONAL {
            if let Some(value) = actor.get(member) {
                personal.insert(name.into(), value.clone());
            }
        }
    }
    if let Some(context) = fields.get("context").and_then(Value::as_object) {
        for (member, name) in CONTEXT_PERSONAL {
            if let Some(value) = context.get(member) {
                personal.insert(name.into(), value.clone());
            }
        }
    }
    let mut details = Map::new();
    for (path, _) in openings.details() {
        let value = path
            .value_in(fields)
            .ok_or_else(|| LeafV2Error::BadOpening {
                key: path.as_str().into(),
                reason: "the event holds no value at this path".into(),
            })?;
        details.insert(path.as_str().into(), value.clone());
    }
    let mut stored = Map::new();
    stored.insert(PERSONAL.into(), Value::Object(personal));
    stored.insert("details".into(), Value::Object(details));
    stored.insert("openings".into(), openings.to_json());
    Ok(canonical::to_vec(&Value::Object(stored)))
}

/// The actor id in stored personal values, without opening the leaf: what
/// a store's reader needs to check its indexed actor column.
pub fn actor_id(personal_bytes: &[u8]) -> Option<String> {
    let stored: Value = serde_json::from_slice(personal_bytes).ok()?;
    stored
        .get(PERSONAL)?
        .get("actor.id")?
        .as_str()
        .map(str::to_string)
}
