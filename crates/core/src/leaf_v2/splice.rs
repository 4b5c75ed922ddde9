//! The served JSON of a version 2 event spliced from its stored bytes:
//! what [`open`](super::open) and serialising its `Map` give, without
//! building a `Value` tree per event. The leaf's members (and the stored
//! personal values) are copied as the raw JSON text they are stored as,
//! only the members that opening changes (`personal` out; `actor`,
//! `context`, `openings` and `hash` in) are written, in the same order
//! (`serde_json::Map` sorts members by their bytes). What log streams send
//! for each event, where the `Value` round trip was most of the cost.
//!
//! It applies to the common case: the leaf commits to the actor's and the
//! context's personal values only (no `details` path). Anything else (a
//! `details` commitment, bytes it does not expect) answers `None`, and the
//! caller takes the `Map` path, which also reports what is wrong.
//!
//! The one difference from the `Map` path: numbers are written as the leaf
//! stores them (RFC 8785, ECMAScript's form, such as `1e+21`), not as
//! `serde_json` prints the parsed double (`1e21`): the same JSON values.
//! Members of nested objects keep the leaf's RFC 8785 order (by UTF-16 code
//! units), which differs from byte order only for names with characters
//! above U+FFFF. Strings are escaped alike (see `canonical::write_string`).

use super::openings::PERSONAL;
use super::salt::SALT_BYTES;
use super::VERSION;
use super::{ACTOR_PERSONAL, CONTEXT_PERSONAL};
use crate::leaf;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::de::{Deserialize, Deserializer, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A member name, borrowed from the input unless it holds escapes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Name<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for NameVisitor<'a> {
            type Value = Name<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(NameVisitor(std::marker::PhantomData))
    }
}

/// An object's members, raw.
type Members<'a> = BTreeMap<Name<'a>, &'a RawValue>;

/// The stored personal values (`personal.rs` gives the form).
#[derive(serde::Deserialize)]
struct Stored<'a> {
    #[serde(borrow)]
    personal: Members<'a>,
    #[serde(borrow)]
    openings: Members<'a>,
    #[serde(borrow, default)]
    details: Option<Members<'a>>,
}

/// One member of the served event.
enum Member<'a> {
    Raw(&'a RawValue),
    /// An object written from these members (in order).
    Object(Vec<(&'a str, &'a RawValue)>),
    /// `context`: the leaf's members and the opened ones, by name.
    Context(BTreeMap<Cow<'a, str>, &'a RawValue>),
    Hash,
}

/// Appends the served JSON of the version 2 leaf `leaf_bytes` opened with
/// `personal_bytes` (and `hash`) to `out`; `None`, with `out` as it was,
/// when this event needs the `Map` path.
pub fn write_opened(
    leaf_bytes: &[u8],
    personal_bytes: &[u8],
    leaf_hash: &[u8],
    out: &mut Vec<u8>,
) -> Option<()> {
    let start = out.len();
    let written = write(leaf_bytes, personal_bytes, leaf_hash, out);
    if written.is_none() {
        out.truncate(start);
    }
    written
}

fn write(
    leaf_bytes: &[u8],
    personal_bytes: &[u8],
    leaf_hash: &[u8],
    out: &mut Vec<u8>,
) -> Option<()> {
    let leaf: Members<'_> = serde_json::from_slice(leaf_bytes).ok()?;
    let stored: Stored<'_> = serde_json::from_slice(personal_bytes).ok()?;
    if stored.details.as_ref().is_some_and(|d| !d.is_empty()) {
        return None;
    }
    // Only the `personal` commitment, with a salt `Openings` would take.
    let mut openings = stored.openings.iter();
    let (name, salt) = openings.next()?;
    if openings.next().is_some() || name.0 != PERSONAL {
        return None;
    }
    let salt: &str = serde_json::from_str(salt.get()).ok()?;
    let mut decoded = [0u8; 3 * SALT_BYTES];
    if BASE64.decode_slice(salt, &mut decoded).ok()? != SALT_BYTES {
        return None;
    }
    if leaf.get(&Name(Cow::Borrowed("v")))?.get() != VERSION.to_string() {
        return None;
    }
    let mut members: BTreeMap<Cow<'_, str>, Member<'_>> = BTreeMap::new();
    let mut committed = false;
    for (name, value) in &leaf {
        if name.0 == PERSONAL {
            committed = true;
        } else {
            members.insert(Cow::Borrowed(name.0.as_ref()), Member::Raw(value));
        }
    }
    if !committed {
        return None;
    }
    let plain = |name: &str| stored.personal.get(&Name(Cow::Borrowed(name))).copied();
    let mut actor: Vec<(&str, &RawValue)> = ACTOR_PERSONAL
        .iter()
        .filter_map(|(member, name)| plain(name).map(|value| (*member, value)))
        .collect();
    if !actor.is_empty() {
        actor.sort_by_key(|(member, _)| *member);
        members.insert(Cow::Borrowed("actor"), Member::Object(actor));
    }
    let opened: Vec<(&str, &RawValue)> = CONTEXT_PERSONAL
        .iter()
        .filter_map(|(member, name)| plain(name).map(|value| (*member, value)))
        .collect();
    if !opened.is_empty() {
        let mut context = BTreeMap::new();
        if let Some(Member::Raw(raw)) = members.get(&Cow::Borrowed("context")) {
            let existing: Members<'_> = serde_json::from_str(raw.get()).ok()?;
            for (name, value) in existing {
                context.insert(name.0, value);
            }
        }
        for (member, value) in opened {
            context.insert(Cow::Borrowed(member), value);
        }
        members.insert(Cow::Borrowed("context"), Member::Context(context));
    }
    let openings_raw = *stored.openings.values().next()?;
    members.insert(
        Cow::Borrowed("openings"),
        Member::Object(vec![(PERSONAL, openings_raw)]),
    );
    members.insert(Cow::Borrowed("hash"), Member::Hash);
    out.reserve(leaf_bytes.len() + personal_bytes.len() + 80);
    out.push(b'{');
    for (i, (name, member)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_name(name, out);
        match member {
            Member::Raw(raw) => out.extend_from_slice(raw.get().as_bytes()),
            Member::Object(items) => write_object(items.iter().map(|(n, v)| (*n, *v)), out),
            Member::Context(items) => {
                write_object(items.iter().map(|(n, v)| (n.as_ref(), *v)), out)
            }
            Member::Hash => {
                out.push(b'"');
                leaf::write_hex(leaf_hash, out);
                out.push(b'"');
            }
        }
    }
    out.push(b'}');
    Some(())
}

/// `"name":`, escaped as `serde_json` escapes it.
fn write_name(name: &str, out: &mut Vec<u8>) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, name);
    out.push(b':');
}

fn write_object<'a>(items: impl Iterator<Item = (&'a str, &'a RawValue)>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (name, value)) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_name(name, out);
        out.extend_from_slice(value.get().as_bytes());
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_v2::{seal, DetailsPath, OsSalts, Source};
    use crate::{NewEvent, StoredEvent, Taxonomy, Timestamp};
    use serde_json::{json, Value};

    fn sealed(body: Value, paths: &[&str]) -> crate::leaf_v2::SealedLeaf {
        let now = Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap();
        let event = StoredEvent::new(
            "acme",
            7,
            now,
            NewEvent::parse(&body, &Taxonomy::default(), now).unwrap(),
        );
        let paths: Vec<DetailsPath> = paths
            .iter()
            .map(|p| DetailsPath::parse(p).unwrap())
            .collect();
        let source = Source::ApiKey {
            key: "key_1".into(),
            name: "ci \"key\"".into(),
        };
        seal(&event, &source, &paths, &mut OsSalts).unwrap()
    }

    /// What `StoredRecord::write_api_json` writes for a version 2 leaf.
    fn map_path(leaf: &crate::leaf_v2::SealedLeaf, hash: &[u8]) -> Vec<u8> {
        let mut served = crate::leaf_v2::open(&leaf.leaf_bytes, &leaf.personal).unwrap();
        served.insert("hash".into(), Value::String(leaf::to_hex(hash)));
        serde_json::to_vec(&served).unwrap()
    }

    fn spliced(leaf: &crate::leaf_v2::SealedLeaf, hash: &[u8]) -> Option<Vec<u8>> {
        let mut out = b"prefix".to_vec();
        let done = write_opened(&leaf.leaf_bytes, &leaf.personal, hash, &mut out);
        assert!(out.starts_with(b"prefix"));
        done.map(|()| out[6..].to_vec())
    }

    fn base() -> Value {
        json!({
            "id": "e-1", "time": "2026-11-25T14:03:07.123456Z", "event_type": "Test Case",
            "action": "Update",
            "actor": {"id": "u-17", "name": "Ada \"the\" Lovelace\t\u{1}é😀", "email": "ada@example.com"},
            "project": "Checkout", "target": {"id": "TC-1042", "name": "ünïcode\n"},
            "details": {"assignee": "Grace", "n": 42, "neg": -7, "changes": [{"field": "title", "old": "a", "new": "b"}], "ключ": true, "z": null},
            "context": {"ip": "203.0.113.7", "request_id": "r-88", "user_agent": "curl/8 \\ x"}
        })
    }

    #[test]
    fn the_spliced_json_is_the_map_paths_byte_for_byte() {
        let mut cases = vec![base()];
        // No context at all; context with only personal members; only
        // other members; an actor with its id only.
        let mut v = base();
        v.as_object_mut().unwrap().remove("context");
        cases.push(v);
        let mut v = base();
        v["context"] = json!({"ip": "::1"});
        cases.push(v);
        let mut v = base();
        v["context"] = json!({"request_id": "r"});
        cases.push(v);
        let mut v = base();
        v["actor"] = json!({"id": "u"});
        cases.push(v);
        for body in cases {
            let leaf = sealed(body.clone(), &[]);
            let hash = leaf::leaf_hash(&leaf.leaf_bytes);
            let fast = spliced(&leaf, &hash).expect("the common case is spliced");
            let slow = map_path(&leaf, &hash);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap(),
                "for {body}"
            );
        }
    }

    #[test]
    fn numbers_keep_their_stored_form_and_the_same_values() {
        let mut v = base();
        v["details"] = json!({"big": 1e21, "small": 1.5e-7, "f": 0.1, "i": 12345678901234567u64});
        let leaf = sealed(v, &[]);
        let hash = leaf::leaf_hash(&leaf.leaf_bytes);
        let fast: Value = serde_json::from_slice(&spliced(&leaf, &hash).unwrap()).unwrap();
        let slow: Value = serde_json::from_slice(&map_path(&leaf, &hash)).unwrap();
        assert_eq!(fast, slow);
        // And the served event still rebuilds its leaf.
        assert_eq!(
            crate::leaf_v2::rebuild_leaf(&fast).unwrap(),
            leaf.leaf_bytes
        );
    }

    #[test]
    fn details_commitments_and_unexpected_bytes_take_the_map_path() {
        let leaf = sealed(base(), &["details.assignee"]);
        let hash = leaf::leaf_hash(&leaf.leaf_bytes);
        assert!(spliced(&leaf, &hash).is_none(), "a details commitment");
        let plain = sealed(base(), &[]);
        let mut out = b"x".to_vec();
        assert!(write_opened(b"{\"a\":1}", &plain.personal, &hash, &mut out).is_none());
        assert!(write_opened(&plain.leaf_bytes, b"[]", &hash, &mut out).is_none());
        let bad_salt = String::from_utf8(plain.personal.clone()).unwrap();
        let salt = bad_salt
            .split("\"openings\":{\"personal\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let bad_salt = bad_salt.replace(salt, "c2hvcnQ=");
        assert!(write_opened(&plain.leaf_bytes, bad_salt.as_bytes(), &hash, &mut out).is_none());
        assert_eq!(out, b"x", "nothing left behind");
    }
}
