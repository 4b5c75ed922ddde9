//! An erased version 2 event (issue 16, docs/ERASURE.md): its personal
//! values and the salts that opened its commitments are gone; what a store
//! keeps beside its leaf instead says only **which** values the event had
//! (never what they were) and the subject's pseudonym, so that the event is
//! served with `"[erased]"` for those values, `actor.id` = the pseudonym and
//! `"erased": true`. Its leaf (commitments only) and leaf hash are
//! unchanged, so its inclusion proof and every checkpoint still verify; the
//! commitments can no longer be opened, nor confirmed by hashing guesses
//! (each was salted with 16 random bytes that were erased too).
//!
//! Stored as the RFC 8785 JSON of
//! `{"erased": {"actor.email": "[erased]", "actor.id": "erased:…",
//!   "actor.name": "[erased]", "context.ip": "[erased]", "details.x": "[erased]"}}`,
//! which a reader tells from stored personal values (`{"details": …`) by
//! its first member.

use super::commitment::{ACTOR_PERSONAL, CONTEXT_PERSONAL};
use super::details_path::DetailsPath;
use super::openings::{Openings, PERSONAL};
use super::{LeafV2Error, VERSION};
use crate::canonical;
use serde_json::{Map, Value};

/// What an erased value is served as.
pub const ERASED_VALUE: &str = "[erased]";
/// How an erased subject's pseudonym starts (`erased:` + a keyed hash).
pub const PSEUDONYM_PREFIX: &str = "erased:";
/// The member of the stored form (and of the served event) that marks an
/// erased event.
pub const ERASED: &str = "erased";

/// Whether stored bytes beside a v2 leaf are the erased form (not personal
/// values).
pub fn is_erased_form(stored: &[u8]) -> bool {
    stored.starts_with(b"{\"erased\":")
}

/// The erased form of an event whose stored personal values were
/// `personal_bytes` (`personal.rs`'s form): each value it held named, with
/// `"[erased]"` (`actor.id`: `pseudonym`) in its place.
pub fn erased_form(personal_bytes: &[u8], pseudonym: &str) -> Result<Vec<u8>, LeafV2Error> {
    let bad = |reason: &str| LeafV2Error::BadOpening {
        key: PERSONAL.into(),
        reason: format!("the stored personal values {reason}"),
    };
    let stored: Map<String, Value> = match serde_json::from_slice(personal_bytes) {
        Ok(Value::Object(map)) => map,
        _ => return Err(bad("are not a JSON object")),
    };
    let personal = stored
        .get(PERSONAL)
        .and_then(Value::as_object)
        .ok_or_else(|| bad("lack the personal object"))?;
    let mut erased = Map::new();
    // The pseudonym stands for the actor's id even where none was sent
    // (every event has one; the form must not depend on it).
    erased.insert("actor.id".into(), Value::String(pseudonym.to_string()));
    for name in personal.keys() {
        if name != "actor.id" {
            erased.insert(name.clone(), Value::String(ERASED_VALUE.into()));
        }
    }
    let openings = stored.get("openings").ok_or_else(|| bad("lack openings"))?;
    for (path, _) in Openings::from_json(openings)?.details() {
        erased.insert(
            path.as_str().to_string(),
            Value::String(ERASED_VALUE.into()),
        );
    }
    let mut form = Map::new();
    form.insert(ERASED.into(), Value::Object(erased));
    Ok(canonical::to_vec(&Value::Object(form)))
}

/// The pseudonym an erased form names.
pub fn pseudonym_of(erased_bytes: &[u8]) -> Option<String> {
    let form: Value = serde_json::from_slice(erased_bytes).ok()?;
    form.get(ERASED)?
        .get("actor.id")?
        .as_str()
        .map(str::to_string)
}

/// The served event (without `hash`) of a v2 leaf whose personal values
/// were erased: the leaf's members, its commitments replaced by
/// `"[erased]"` (`actor.id` by the pseudonym), `"erased": true`, and no
/// `openings` (there is nothing left to open them with).
pub fn open_erased(
    leaf_bytes: &[u8],
    erased_bytes: &[u8],
) -> Result<Map<String, Value>, LeafV2Error> {
    let not_v2 = |why: &str| LeafV2Error::NotAnEvent(format!("the leaf {why}"));
    let mut served: Map<String, Value> = match serde_json::from_slice(leaf_bytes) {
        Ok(Value::Object(map)) => map,
        _ => return Err(not_v2("is not a JSON object")),
    };
    if served.get("v").and_then(Value::as_u64) != Some(VERSION) {
        return Err(not_v2("is not a version 2 leaf"));
    }
    if served.remove(PERSONAL).is_none() {
        return Err(not_v2("lacks its personal commitment"));
    }
    let bad = |reason: &str| LeafV2Error::BadOpening {
        key: ERASED.into(),
        reason: format!("the stored erased form {reason}"),
    };
    let form: Map<String, Value> = match serde_json::from_slice(erased_bytes) {
        Ok(Value::Object(map)) => map,
        _ => return Err(bad("is not a JSON object")),
    };
    let names = form
        .get(ERASED)
        .and_then(Value::as_object)
        .ok_or_else(|| bad("lacks its names"))?;
    let mut actor = Map::new();
    for (member, name) in ACTOR_PERSONAL {
        if let Some(value) = names.get(name) {
            actor.insert(member.into(), value.clone());
        }
    }
    served.insert("actor".into(), Value::Object(actor));
    for (member, name) in CONTEXT_PERSONAL {
        if let Some(value) = names.get(name) {
            let context = served
                .entry("context")
                .or_insert_with(|| Value::Object(Map::new()));
            let context = context
                .as_object_mut()
                .ok_or_else(|| not_v2("holds a context that is not an object"))?;
            context.insert(member.into(), value.clone());
        }
    }
    for (name, value) in names {
        if !name.starts_with("details.") {
            continue;
        }
        let path = DetailsPath::parse(name).map_err(|e| bad(&format!("names {name:?}: {e}")))?;
        let slot = path
            .value_in_mut(&mut served)
            .ok_or_else(|| LeafV2Error::BadOpening {
                key: name.clone(),
                reason: "the leaf holds no commitment at this path".into(),
            })?;
        *slot = value.clone();
    }
    served.insert(ERASED.into(), Value::Bool(true));
    Ok(served)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_v2::{seal, DetailsPath, OsSalts, Source};
    use crate::{NewEvent, StoredEvent, Taxonomy, Timestamp};
    use serde_json::json;

    #[test]
    fn an_erased_event_names_its_values_but_holds_none() {
        let now = Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap();
        let body = json!({"id": "e-1", "event_type": "Test Case", "action": "Update",
            "actor": {"id": "u-17", "name": "Ada Lovelace", "email": "ada@example.com"},
            "details": {"assignee": "Grace Hopper", "state": "open"},
            "context": {"ip": "203.0.113.7", "request_id": "r-1"}});
        let event = StoredEvent::new(
            "acme",
            3,
            now,
            NewEvent::parse(&body, &Taxonomy::default(), now).unwrap(),
        );
        let paths = [DetailsPath::parse("details.assignee").unwrap()];
        let sealed = seal(&event, &Source::System, &paths, &mut OsSalts).unwrap();
        let form = erased_form(&sealed.personal, "erased:abc").unwrap();
        assert!(is_erased_form(&form));
        assert!(!is_erased_form(&sealed.personal));
        let text = String::from_utf8(form.clone()).unwrap();
        for secret in ["u-17", "Ada", "ada@example.com", "203.0.113.7", "Grace"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(pseudonym_of(&form).as_deref(), Some("erased:abc"));
        let served = Value::Object(open_erased(&sealed.leaf_bytes, &form).unwrap());
        assert_eq!(
            served["actor"],
            json!({"id": "erased:abc", "name": "[erased]", "email": "[erased]"})
        );
        assert_eq!(
            served["context"],
            json!({"ip": "[erased]", "request_id": "r-1"})
        );
        assert_eq!(
            served["details"],
            json!({"assignee": "[erased]", "state": "open"})
        );
        assert_eq!(served["erased"], json!(true));
        assert!(served.get("openings").is_none() && served.get("personal").is_none());
        // It reads as an event (filters, the console).
        let read = StoredEvent::from_json_map(served.as_object().unwrap()).unwrap();
        assert_eq!(read.event().actor().id, "erased:abc");
    }
}
