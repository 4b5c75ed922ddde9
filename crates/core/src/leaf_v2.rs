//! Leaf version 2 (SPEC "Proofs" → "Leaf version 2"): the leaf bytes of an
//! event hold no personal value in clear, so that erasure can remove those
//! values later without breaking the log.
//!
//! The leaf is the RFC 8785 JSON of the stored event with `"v": 2` and
//! `source`, where
//! - `actor` (all of it), `context.ip` and `context.user_agent` are replaced
//!   by one commitment `"personal"` (`context` stays with its other members,
//!   or goes when none remain), and
//! - each `details` value the account declared personal is replaced by its
//!   own commitment (`commitment.rs` says how a commitment is made).
//!
//! [`seal`] builds the leaf at ingest and returns the salts (the openings)
//! that the store keeps beside the personal values; [`served_event`] is the
//! event as the API serves it (plain values, `"v": 2`, `openings`, `hash`);
//! [`rebuild_leaf`] is what a verifier does with that: the leaf again, so
//! that its leaf hash can be compared with `hash`. Sealing and rebuilding
//! share [`commit`], so they cannot drift apart; that they match SPEC is
//! checked by the unit tests below and, with an independent SHA-256 and JSON
//! canonicalisation, by `tests/leaf_v2_independent.rs`.

mod commitment;
mod details_path;
pub mod erased;
mod error;
mod openings;
mod personal;
mod salt;
mod source;
mod splice;

pub use commitment::commitment;
pub use details_path::{DetailsPath, DetailsPathError};
pub use error::LeafV2Error;
pub use openings::{Openings, PERSONAL};
pub use personal::actor_id;
pub use salt::{OsSalts, Salt, SaltSource, SALT_BYTES};
pub use source::Source;
pub use splice::write_opened;

use crate::{canonical, leaf, StoredEvent};
use commitment::{ACTOR_PERSONAL, CONTEXT_PERSONAL};
use serde_json::{Map, Value};

/// The value of `"v"` in a version 2 leaf (version 1 leaves have no `v`).
pub const VERSION: u64 = 2;

/// The largest leaf (SPEC "Event"): every entry fits a C2SP tlog-tiles entry
/// bundle, whose entries carry a 16-bit length.
pub const MAX_LEAF_BYTES: usize = 65_535;

/// Members of a served event that are not in its leaf.
const SERVED_ONLY: [&str; 3] = ["hash", "openings", "erased"];

/// A freshly built leaf and the salts that open its commitments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedLeaf {
    pub leaf_bytes: Vec<u8>,
    pub openings: Openings,
    /// What the store keeps beside the leaf: the plain values its
    /// commitments hide, with the openings (`personal.rs` gives the form).
    pub personal: Vec<u8>,
}

/// Builds the v2 leaf of `event`, stored on behalf of `source`, committing to
/// the values at `personal_paths` (the account's declared personal `details`
/// paths when the event arrived; a path the event has no value at is
/// skipped, and a path inside another declared one is covered by the outer
/// commitment). Refuses a leaf over [`MAX_LEAF_BYTES`].
pub fn seal(
    event: &StoredEvent,
    source: &Source,
    personal_paths: &[DetailsPath],
    salts: &mut dyn SaltSource,
) -> Result<SealedLeaf, LeafV2Error> {
    let fields = plain_fields(event, source);
    let mut openings = Openings::default();
    openings.set_personal(salts.next_salt()?);
    for path in personal_paths {
        let covered = personal_paths.iter().any(|outer| path.is_inside(outer));
        if !covered && path.value_in(&fields).is_some() {
            openings.add_details(path.clone(), salts.next_salt()?);
        }
    }
    let personal = personal::collect(&fields, &openings)?;
    let leaf_bytes = commit(fields, &openings)?;
    Ok(SealedLeaf {
        leaf_bytes,
        openings,
        personal,
    })
}

/// The event as the API serves it: the plain values, `"v": 2`, `source`,
/// `openings` and `hash` (lowercase hex of the leaf hash).
pub fn served_event(
    event: &StoredEvent,
    source: &Source,
    openings: &Openings,
    leaf_hash: &[u8],
) -> Map<String, Value> {
    let mut served = plain_fields(event, source);
    served.insert("openings".into(), openings.to_json());
    served.insert("hash".into(), Value::String(leaf::to_hex(leaf_hash)));
    served
}

/// The served event (without `hash`) of a v2 leaf and its stored personal
/// values: the commitments replaced by the plain values, and `openings`.
/// What it returns rebuilds the leaf (`rebuild_leaf`) unless either was
/// altered; this function itself checks only that the two fit together.
pub fn open(leaf_bytes: &[u8], personal_bytes: &[u8]) -> Result<Map<String, Value>, LeafV2Error> {
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
    let mut actor = Map::new();
    for (member, name) in ACTOR_PERSONAL {
        if let Some(value) = personal.get(name) {
            actor.insert(member.into(), value.clone());
        }
    }
    if !actor.is_empty() {
        served.insert("actor".into(), Value::Object(actor));
    }
    for (member, name) in CONTEXT_PERSONAL {
        if let Some(value) = personal.get(name) {
            let context = served
                .entry("context")
                .or_insert_with(|| Value::Object(Map::new()));
            let context = context
                .as_object_mut()
                .ok_or_else(|| not_v2("holds a context that is not an object"))?;
            context.insert(member.into(), value.clone());
        }
    }
    let openings_json = stored.get("openings").ok_or_else(|| bad("lack openings"))?;
    let openings = Openings::from_json(openings_json)?;
    let details = stored.get("details").and_then(Value::as_object);
    for (path, _) in openings.details() {
        let plain =
            details
                .and_then(|d| d.get(path.as_str()))
                .ok_or_else(|| LeafV2Error::BadOpening {
                    key: path.as_str().into(),
                    reason: "the stored personal values lack its plain value".into(),
                })?;
        let slot = path
            .value_in_mut(&mut served)
            .ok_or_else(|| LeafV2Error::BadOpening {
                key: path.as_str().into(),
                reason: "the leaf holds no commitment at this path".into(),
            })?;
        *slot = plain.clone();
    }
    served.insert("openings".into(), openings_json.clone());
    Ok(served)
}

/// What a verifier does: the leaf bytes of a served v2 event, rebuilt from
/// its plain values and `openings` (`hash`, `openings` and `erased` are not
/// part of the leaf). Its leaf hash equals the served `hash` unless the
/// event, its openings or the log were altered.
pub fn rebuild_leaf(served: &Value) -> Result<Vec<u8>, LeafV2Error> {
    let mut fields = served
        .as_object()
        .ok_or_else(|| LeafV2Error::NotAnEvent("it is not a JSON object".into()))?
        .clone();
    if fields.get("v").and_then(Value::as_u64) != Some(VERSION) {
        return Err(LeafV2Error::NotAnEvent(
            "it lacks \"v\": 2 (a version 1 event is its own leaf)".into(),
        ));
    }
    let openings = fields.get("openings").ok_or_else(|| {
        LeafV2Error::NotAnEvent("it lacks openings, the salts of its commitments".into())
    })?;
    let openings = Openings::from_json(openings)?;
    for member in SERVED_ONLY {
        fields.remove(member);
    }
    commit(fields, &openings)
}

/// The stored event's members with `"v": 2` and `source`, personal values
/// still in clear.
fn plain_fields(event: &StoredEvent, source: &Source) -> Map<String, Value> {
    let mut fields = event.to_json_map();
    fields.insert("v".into(), Value::from(VERSION));
    fields.insert("source".into(), source.to_json());
    fields
}

/// Replaces every value `openings` names by its commitment and encodes the
/// result canonically: the one step both sealing and rebuilding take.
fn commit(mut fields: Map<String, Value>, openings: &Openings) -> Result<Vec<u8>, LeafV2Error> {
    commitment::hide_personal(&mut fields, openings.personal()?)?;
    for (path, salt) in openings.details() {
        commitment::hide_details_value(&mut fields, path, salt)?;
    }
    let leaf_bytes = canonical::to_vec(&Value::Object(fields));
    if leaf_bytes.len() > MAX_LEAF_BYTES {
        return Err(LeafV2Error::TooLarge {
            bytes: leaf_bytes.len(),
            limit: MAX_LEAF_BYTES,
        });
    }
    Ok(leaf_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewEvent, Taxonomy, Timestamp};
    use serde_json::json;

    /// Salts 1, 2, 3, … (each byte the same), so that leaves are reproducible.
    struct CountingSalts(u8);

    impl SaltSource for CountingSalts {
        fn next_salt(&mut self) -> Result<Salt, LeafV2Error> {
            self.0 += 1;
            Ok([self.0; SALT_BYTES])
        }
    }

    fn stored(body: Value) -> StoredEvent {
        let now = Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap();
        StoredEvent::new(
            "acme",
            42,
            now,
            NewEvent::parse(&body, &Taxonomy::default(), now).unwrap(),
        )
    }

    fn full_event() -> StoredEvent {
        stored(json!({
            "id": "e-1", "time": "2026-11-25T14:03:07.123456Z", "event_type": "Test Case", "action": "Update",
            "actor": {"id": "u-17", "name": "Ada Lovelace", "email": "ada@example.com"},
            "project": "Checkout", "target": {"id": "TC-1042", "name": "Login with SSO"},
            "details": {"assignee": "Grace", "ticket": {"owner": {"email": "bob@example.com"}, "state": "open"}},
            "context": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "request_id": "r-88"}
        }))
    }

    fn api_key() -> Source {
        Source::ApiKey {
            key: "k-9".into(),
            name: "ci".into(),
        }
    }

    fn paths(texts: &[&str]) -> Vec<DetailsPath> {
        texts
            .iter()
            .map(|t| DetailsPath::parse(t).unwrap())
            .collect()
    }

    fn seal_with(event: &StoredEvent, declared: &[&str]) -> SealedLeaf {
        seal(event, &api_key(), &paths(declared), &mut CountingSalts(0)).unwrap()
    }

    /// The served event as a client receives it: through JSON text.
    fn serve(event: &StoredEvent, sealed: &SealedLeaf) -> Value {
        let served = served_event(
            event,
            &api_key(),
            &sealed.openings,
            &leaf::leaf_hash(&sealed.leaf_bytes),
        );
        serde_json::from_str(&serde_json::to_string(&served).unwrap()).unwrap()
    }

    fn hash_of_rebuilt(served: &Value) -> String {
        leaf::to_hex(&leaf::leaf_hash(&rebuild_leaf(served).unwrap()))
    }

    #[test]
    fn a_served_event_rebuilds_to_its_hash() {
        let event = full_event();
        let sealed = seal_with(&event, &["details.assignee", "details.ticket.owner"]);
        let served = serve(&event, &sealed);
        assert_eq!(served["hash"].as_str().unwrap(), hash_of_rebuilt(&served));
        assert_eq!(rebuild_leaf(&served).unwrap(), sealed.leaf_bytes);
        // `erased` is not part of the leaf either.
        let mut with_erased = served.clone();
        with_erased["erased"] = json!(false);
        assert_eq!(rebuild_leaf(&with_erased).unwrap(), sealed.leaf_bytes);
    }

    #[test]
    fn the_leaf_holds_no_personal_value_in_clear() {
        let event = full_event();
        let sealed = seal_with(&event, &["details.assignee", "details.ticket.owner"]);
        let text = String::from_utf8(sealed.leaf_bytes.clone()).unwrap();
        for personal in [
            "u-17",
            "Ada Lovelace",
            "ada@example.com",
            "203.0.113.7",
            "Mozilla",
            "Grace",
            "bob@example.com",
        ] {
            assert!(!text.contains(personal), "{personal} in {text}");
        }
        let leaf: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(leaf["v"], 2);
        assert_eq!(
            leaf["source"],
            json!({"kind": "api_key", "key": "k-9", "name": "ci"})
        );
        assert_eq!(leaf["context"], json!({"request_id": "r-88"}));
        assert_eq!(leaf["details"]["ticket"]["state"], "open");
        assert!(leaf.get("actor").is_none());
        assert_eq!(leaf["account"], "acme");
        assert_eq!(leaf["seq"], 42);
        // The personal salt came first, then the paths in their given order.
        let want = json!({
            "personal": "AQEBAQEBAQEBAQEBAQEBAQ==",
            "details.assignee": "AgICAgICAgICAgICAgICAg==",
            "details.ticket.owner": "AwMDAwMDAwMDAwMDAwMDAw=="
        });
        assert_eq!(sealed.openings.to_json(), want);
    }

    #[test]
    fn absent_personal_values_and_paths_are_left_out() {
        let event = stored(json!({
            "id": "e-2", "time": "2026-11-25T14:03:07Z", "event_type": "Element", "action": "Create",
            "actor": {"id": "u"}, "context": {"ip": "::1"}, "details": {"note": "x"}
        }));
        let sealed = seal_with(&event, &["details.assignee", "details.note.deeper"]);
        let leaf: Value = serde_json::from_slice(&sealed.leaf_bytes).unwrap();
        assert!(leaf.get("context").is_none(), "{leaf}");
        assert_eq!(leaf["details"], json!({"note": "x"}));
        assert_eq!(
            sealed.openings.to_json(),
            json!({"personal": "AQEBAQEBAQEBAQEBAQEBAQ=="})
        );
        let served = serve(&event, &sealed);
        assert_eq!(served["hash"].as_str().unwrap(), hash_of_rebuilt(&served));
    }

    #[test]
    fn a_path_inside_another_declared_one_gets_no_opening_of_its_own() {
        let event = full_event();
        let sealed = seal_with(&event, &["details.ticket.owner.email", "details.ticket"]);
        let keys: Vec<String> = sealed
            .openings
            .details()
            .map(|(p, _)| p.as_str().into())
            .collect();
        assert_eq!(keys, ["details.ticket"]);
        let leaf: Value = serde_json::from_slice(&sealed.leaf_bytes).unwrap();
        assert!(leaf["details"]["ticket"]["c"].is_string(), "{leaf}");
        let served = serve(&event, &sealed);
        assert_eq!(served["hash"].as_str().unwrap(), hash_of_rebuilt(&served));
    }

    #[test]
    fn a_wrong_salt_or_a_changed_value_gives_another_hash() {
        let event = full_event();
        let sealed = seal_with(&event, &["details.assignee"]);
        let served = serve(&event, &sealed);
        let good = hash_of_rebuilt(&served);
        let changes: [(&str, Value); 6] = [
            ("/openings/personal", json!("BQUFBQUFBQUFBQUFBQUFBQ==")),
            (
                "/openings/details.assignee",
                json!("BQUFBQUFBQUFBQUFBQUFBQ=="),
            ),
            ("/actor/email", json!("eve@example.com")),
            ("/context/user_agent", json!("curl")),
            ("/details/assignee", json!("Eve")),
            ("/source/name", json!("other")),
        ];
        for (pointer, value) in changes {
            let mut changed = served.clone();
            *changed.pointer_mut(pointer).unwrap() = value;
            assert_ne!(hash_of_rebuilt(&changed), good, "{pointer}");
        }
        // Dropping an opening leaves the value in clear: another leaf too.
        let mut dropped = served.clone();
        dropped["openings"]
            .as_object_mut()
            .unwrap()
            .remove("details.assignee");
        assert_ne!(hash_of_rebuilt(&dropped), good);
    }

    #[test]
    fn rebuilding_refuses_what_is_not_a_served_v2_event() {
        let event = full_event();
        let sealed = seal_with(&event, &[]);
        let served = serve(&event, &sealed);
        let refused = |value: Value| rebuild_leaf(&value).unwrap_err().to_string();
        let mut v1 = served.clone();
        v1.as_object_mut().unwrap().remove("v");
        assert!(refused(v1).contains("\"v\": 2"));
        let mut no_openings = served.clone();
        no_openings.as_object_mut().unwrap().remove("openings");
        assert!(refused(no_openings).contains("lacks openings"));
        let mut no_personal = served.clone();
        no_personal["openings"] = json!({});
        assert!(refused(no_personal).contains("personal"));
        let mut stray = served.clone();
        stray["openings"]["details.nothing"] = json!("AQEBAQEBAQEBAQEBAQEBAQ==");
        assert!(refused(stray).contains("no value at this path"));
        assert!(refused(json!([1])).contains("not a JSON object"));
    }

    #[test]
    fn a_leaf_over_65535_bytes_is_refused() {
        // Details just under their own 64 KiB limit, plus the rest of the
        // event, make a leaf over the entry limit.
        let mut body = json!({
            "id": "e-3", "event_type": "Element", "action": "Create", "actor": {"id": "u"},
            "details": {"blob": "x".repeat(65_400)}
        });
        let event = stored(body.clone());
        let error = seal(&event, &Source::System, &[], &mut CountingSalts(0)).unwrap_err();
        match &error {
            LeafV2Error::TooLarge { bytes, limit } => {
                assert!(*bytes > MAX_LEAF_BYTES && *limit == MAX_LEAF_BYTES)
            }
            other => panic!("{other:?}"),
        }
        assert!(error.to_string().contains("at most 65535"), "{error}");
        // A little smaller fits.
        body["details"]["blob"] = json!("x".repeat(65_000));
        let sealed = seal(&stored(body), &Source::System, &[], &mut CountingSalts(0)).unwrap();
        assert!(sealed.leaf_bytes.len() <= MAX_LEAF_BYTES);
    }
}
