//! The commitments of a v2 leaf: each hides values behind
//! `{"c": base64(SHA-256(salt ‖ RFC 8785 JSON of the value))}`, so that the
//! leaf, its hash and everything derived from it hold no personal value in
//! clear, while whoever has the plain value and the salt can recompute it.
//! Once the salt is erased the commitment can be neither opened nor guessed.

use super::details_path::DetailsPath;
use super::salt::Salt;
use super::LeafV2Error;
use crate::canonical;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The actor's and the context's personal values, by the dotted names that
/// key them in the `personal` commitment.
pub(super) const ACTOR_PERSONAL: [(&str, &str); 3] = [
    ("id", "actor.id"),
    ("name", "actor.name"),
    ("email", "actor.email"),
];
pub(super) const CONTEXT_PERSONAL: [(&str, &str); 2] =
    [("ip", "context.ip"), ("user_agent", "context.user_agent")];

/// `{"c": base64(SHA-256(salt ‖ JCS(value)))}`.
pub fn commitment(salt: &Salt, value: &Value) -> Value {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(canonical::to_vec(value));
    let mut object = Map::new();
    object.insert("c".into(), Value::String(BASE64.encode(hasher.finalize())));
    Value::Object(object)
}

/// Takes `actor` (all of it) and `context.ip` / `context.user_agent` out of
/// the event (dropping `context` when nothing else remains) and puts in their
/// place `"personal"`: one commitment to an object holding those present.
pub fn hide_personal(event: &mut Map<String, Value>, salt: &Salt) -> Result<(), LeafV2Error> {
    let mut personal = Map::new();
    if let Some(actor) = event.remove("actor") {
        let mut actor = into_object(actor, "actor")?;
        for (member, name) in ACTOR_PERSONAL {
            take_text(&mut actor, member, name, &mut personal)?;
        }
        // Anything else in `actor` would vanish from the leaf unnoticed.
        if let Some(other) = actor.keys().next() {
            return Err(LeafV2Error::NotAnEvent(format!(
                "actor.{other} is not a field of an event"
            )));
        }
    }
    if let Some(context) = event.remove("context") {
        let mut context = into_object(context, "context")?;
        for (member, name) in CONTEXT_PERSONAL {
            take_text(&mut context, member, name, &mut personal)?;
        }
        if !context.is_empty() {
            event.insert("context".into(), Value::Object(context));
        }
    }
    event.insert(
        "personal".into(),
        commitment(salt, &Value::Object(personal)),
    );
    Ok(())
}

/// Replaces the value at `path` by its commitment.
pub fn hide_details_value(
    event: &mut Map<String, Value>,
    path: &DetailsPath,
    salt: &Salt,
) -> Result<(), LeafV2Error> {
    let value = path
        .value_in_mut(event)
        .ok_or_else(|| LeafV2Error::BadOpening {
            key: path.as_str().into(),
            reason: "the event holds no value at this path".into(),
        })?;
    *value = commitment(salt, value);
    Ok(())
}

fn into_object(value: Value, name: &str) -> Result<Map<String, Value>, LeafV2Error> {
    match value {
        Value::Object(object) => Ok(object),
        _ => Err(LeafV2Error::NotAnEvent(format!("{name} is not an object"))),
    }
}

fn take_text(
    from: &mut Map<String, Value>,
    member: &str,
    name: &str,
    into: &mut Map<String, Value>,
) -> Result<(), LeafV2Error> {
    match from.remove(member) {
        None => Ok(()),
        Some(value @ Value::String(_)) => {
            into.insert(name.into(), value);
            Ok(())
        }
        Some(_) => Err(LeafV2Error::NotAnEvent(format!("{name} is not a string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The commitment computed by hand, with the JSON text written out, so
    /// that the test does not lean on the code it checks.
    fn by_hand(salt: &Salt, canonical_json: &str) -> Value {
        let mut hasher = Sha256::new();
        hasher.update(salt);
        hasher.update(canonical_json.as_bytes());
        json!({"c": BASE64.encode(hasher.finalize())})
    }

    #[test]
    fn personal_values_leave_the_event_for_one_commitment() {
        let mut event = json!({
            "actor": {"id": "u-17", "name": "Ada", "email": "ada@example.com"},
            "context": {"ip": "203.0.113.7", "user_agent": "curl/8", "request_id": "r-88"},
            "project": "Checkout"
        });
        let event = event.as_object_mut().unwrap();
        hide_personal(event, &[7; 16]).unwrap();
        let want = by_hand(
            &[7; 16],
            r#"{"actor.email":"ada@example.com","actor.id":"u-17","actor.name":"Ada","context.ip":"203.0.113.7","context.user_agent":"curl/8"}"#,
        );
        assert_eq!(
            Value::Object(event.clone()),
            json!({"context": {"request_id": "r-88"}, "project": "Checkout", "personal": want})
        );
    }

    #[test]
    fn absent_values_are_left_out_and_an_empty_context_goes() {
        let mut event = json!({"actor": {"id": "u"}, "context": {"ip": "::1"}});
        let event = event.as_object_mut().unwrap();
        hide_personal(event, &[1; 16]).unwrap();
        let want = by_hand(&[1; 16], r#"{"actor.id":"u","context.ip":"::1"}"#);
        assert_eq!(Value::Object(event.clone()), json!({"personal": want}));
    }

    #[test]
    fn refuses_what_would_vanish_unnoticed() {
        for bad in [
            json!({"actor": {"id": "u", "role": "admin"}}),
            json!({"actor": {"id": 7}}),
            json!({"actor": "u"}),
            json!({"context": [1]}),
        ] {
            let mut event = bad.as_object().unwrap().clone();
            assert!(hide_personal(&mut event, &[0; 16]).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_details_value_is_replaced_in_place() {
        let mut event = json!({"details": {"ticket": {"owner": {"name": "Bob"}, "state": "open"}}});
        let event = event.as_object_mut().unwrap();
        let path = DetailsPath::parse("details.ticket.owner").unwrap();
        hide_details_value(event, &path, &[3; 16]).unwrap();
        let want = by_hand(&[3; 16], r#"{"name":"Bob"}"#);
        assert_eq!(
            Value::Object(event.clone()),
            json!({"details": {"ticket": {"owner": want, "state": "open"}}})
        );
        let missing = DetailsPath::parse("details.ticket.reviewer").unwrap();
        assert!(hide_details_value(event, &missing, &[3; 16]).is_err());
    }
}
