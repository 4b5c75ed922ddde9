//! A borrowed, typed read of leaf bytes: every member as a slice
//! of the leaf (copied only when a string holds escapes), `details` as its
//! raw JSON text, nothing else built. What `verify` compares with the
//! indexed columns and what exports format, without the `serde_json::Value`
//! tree and the `String` per field that `StoredEvent::from_leaf_bytes`
//! makes (that tree bounded both: BENCHMARKS.md).

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A JSON string, borrowed from the leaf bytes when it has no escapes.
/// (serde borrows a bare `Cow<str>` field, but not one inside an `Option`.)
#[derive(Debug)]
pub struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_string()))
            }
        }
        deserializer.deserialize_str(TextVisitor).map(Text)
    }
}

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn opt<'t>(text: &'t Option<Text<'_>>) -> Option<&'t str> {
    text.as_ref().map(Text::as_str)
}

#[derive(Debug, Deserialize)]
struct ActorView<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    email: Option<Text<'a>>,
}

#[derive(Debug, Deserialize)]
struct TargetView<'a> {
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
}

#[derive(Debug, Deserialize)]
struct ContextView<'a> {
    #[serde(borrow, default)]
    ip: Option<Text<'a>>,
    #[serde(borrow, default)]
    user_agent: Option<Text<'a>>,
}

/// The personal values stored beside a version 2 leaf
/// (`leaf_v2::personal`), as far as a row needs them.
#[derive(Debug, Deserialize)]
struct PersonalView<'a> {
    /// The object the leaf's `personal` commitment is of, exactly as stored
    /// (canonical JSON, so its bytes are what the commitment hashed).
    #[serde(borrow)]
    personal: &'a RawValue,
    #[serde(skip)]
    members: PersonalMembers<'a>,
    #[serde(borrow, default)]
    openings: Option<&'a RawValue>,
    /// Committed `details` values: when there are any, the leaf's `details`
    /// holds commitments, and only the opened event is right.
    #[serde(borrow, default)]
    details: Option<&'a RawValue>,
}

/// Openings that hold the `personal` salt and nothing else (the common
/// case: no declared `details` path).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlyPersonalOpening<'a> {
    #[serde(borrow)]
    personal: Text<'a>,
}

#[derive(Debug, Deserialize)]
struct CommitmentView<'a> {
    #[serde(borrow)]
    c: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
struct PersonalMembers<'a> {
    #[serde(borrow, default, rename = "actor.id")]
    actor_id: Option<Text<'a>>,
    #[serde(borrow, default, rename = "actor.name")]
    actor_name: Option<Text<'a>>,
    #[serde(borrow, default, rename = "actor.email")]
    actor_email: Option<Text<'a>>,
    #[serde(borrow, default, rename = "context.ip")]
    ip: Option<Text<'a>>,
    #[serde(borrow, default, rename = "context.user_agent")]
    user_agent: Option<Text<'a>>,
}

/// The members of a leaf (unknown members are skipped): a version 1 leaf
/// alone, or a version 2 leaf with its personal values ([`LeafView::with_personal`]). Times
/// stay text: callers that need the instant parse it (and the canonical
/// text of a time is what `Timestamp::is_canonical_text` recognises).
#[derive(Debug, Deserialize)]
pub struct LeafView<'a> {
    #[serde(borrow)]
    account: Text<'a>,
    seq: u64,
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    time: Text<'a>,
    #[serde(borrow)]
    event_type: Text<'a>,
    #[serde(borrow)]
    action: Text<'a>,
    /// `2` for a version 2 leaf, absent from version 1.
    #[serde(default)]
    v: Option<u64>,
    /// Absent from a version 2 leaf (its personal values hold the actor).
    #[serde(borrow, default)]
    actor: Option<ActorView<'a>>,
    /// A version 2 leaf's commitment to the actor and context values.
    #[serde(borrow, default, rename = "personal")]
    personal_commitment: Option<CommitmentView<'a>>,
    #[serde(borrow, default)]
    project: Option<Text<'a>>,
    #[serde(borrow, default)]
    app: Option<Text<'a>>,
    #[serde(borrow, default)]
    version: Option<Text<'a>>,
    #[serde(borrow, default)]
    target: Option<TargetView<'a>>,
    #[serde(borrow, default)]
    details: Option<&'a RawValue>,
    #[serde(borrow, default)]
    context: Option<ContextView<'a>>,
    #[serde(borrow)]
    received_at: Text<'a>,
    /// The personal values stored beside a version 2 leaf.
    #[serde(skip)]
    beside: Option<PersonalView<'a>>,
}

/// `bytes` as text, checked once as a whole: `serde_json::from_slice`
/// checks every string on its own, which was a fifth of reading a leaf in
/// an export's profile (BENCHMARKS.md, "Export: personal values a batch at
/// a time").
fn utf8(bytes: &[u8]) -> Result<&str, serde_json::Error> {
    std::str::from_utf8(bytes).map_err(|e| {
        <serde_json::Error as serde::de::Error>::custom(format!("the bytes are not UTF-8: {e}"))
    })
}

impl<'a> LeafView<'a> {
    /// Reads the leaf; the error says why it is not the JSON of a stored event.
    pub fn parse(leaf_bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        let view: Self = serde_json::from_str(utf8(leaf_bytes)?)?;
        if view.actor.is_none() && view.v.is_none() {
            // A version 1 leaf is the whole event: it always names its actor.
            return Err(serde::de::Error::missing_field("actor"));
        }
        Ok(view)
    }

    /// Whether this is a version 2 leaf (its personal values are kept beside it).
    pub fn is_version_2(&self) -> bool {
        self.v == Some(crate::leaf_v2::VERSION)
    }

    /// Adds the personal values stored beside a version 2 leaf: the actor,
    /// IP and user agent are read from them.
    pub fn with_personal(mut self, personal_bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        let mut beside: PersonalView<'a> = serde_json::from_str(utf8(personal_bytes)?)?;
        beside.members = serde_json::from_str(beside.personal.get())?;
        self.beside = Some(beside);
        Ok(self)
    }

    /// Whether `details` in the leaf holds commitments for values kept in the
    /// personal values: then [`details_json`](Self::details_json) is not the
    /// served `details`, and a reader must open the event
    /// (`StoredRecord::served_map`) instead.
    pub fn details_committed(&self) -> bool {
        self.beside
            .as_ref()
            .and_then(|p| p.details)
            .is_some_and(|raw| raw.get() != "{}")
    }

    fn personal_members(&self) -> Option<&PersonalMembers<'a>> {
        self.beside.as_ref().map(|p| &p.members)
    }

    /// The leaf's `personal` commitment (`c`, base64), if it has one.
    pub fn personal_commitment(&self) -> Option<&str> {
        self.personal_commitment.as_ref().map(|c| c.c.as_str())
    }

    /// Beside a version 2 leaf whose only commitment is `personal`: the
    /// stored JSON text of the object it is of, and the salt (base64) that
    /// opens it. `None` when there are other openings (or none).
    pub fn only_personal_opening(&self) -> Option<(&'a str, Text<'a>)> {
        let beside = self.beside.as_ref()?;
        let openings: OnlyPersonalOpening<'a> =
            serde_json::from_str(beside.openings?.get()).ok()?;
        Some((beside.personal.get(), openings.personal))
    }

    /// Whether personal values were given (`with_personal`).
    pub fn has_personal_values(&self) -> bool {
        self.beside.is_some()
    }

    pub fn account(&self) -> &str {
        self.account.as_str()
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn id(&self) -> &str {
        self.id.as_str()
    }

    /// The `time` member as stored (RFC 3339 text).
    pub fn time(&self) -> &str {
        self.time.as_str()
    }

    pub fn event_type(&self) -> &str {
        self.event_type.as_str()
    }

    pub fn action(&self) -> &str {
        self.action.as_str()
    }

    /// Empty when neither the leaf nor its personal values name an actor
    /// (never so for an event this code stored).
    pub fn actor_id(&self) -> &str {
        match (self.personal_members(), &self.actor) {
            (Some(p), _) => opt(&p.actor_id).unwrap_or_default(),
            (None, Some(actor)) => actor.id.as_str(),
            (None, None) => "",
        }
    }

    pub fn actor_name(&self) -> Option<&str> {
        match self.personal_members() {
            Some(p) => opt(&p.actor_name),
            None => self.actor.as_ref().and_then(|a| opt(&a.name)),
        }
    }

    pub fn actor_email(&self) -> Option<&str> {
        match self.personal_members() {
            Some(p) => opt(&p.actor_email),
            None => self.actor.as_ref().and_then(|a| opt(&a.email)),
        }
    }

    pub fn project(&self) -> Option<&str> {
        opt(&self.project)
    }

    pub fn app(&self) -> Option<&str> {
        opt(&self.app)
    }

    pub fn version(&self) -> Option<&str> {
        opt(&self.version)
    }

    pub fn target_id(&self) -> Option<&str> {
        self.target.as_ref().and_then(|t| opt(&t.id))
    }

    pub fn target_name(&self) -> Option<&str> {
        self.target.as_ref().and_then(|t| opt(&t.name))
    }

    /// `details` as the raw JSON text in the leaf (any JSON value; a stored
    /// event's is an object), `None` when absent or `null`.
    pub fn details_json(&self) -> Option<&'a str> {
        self.details.map(RawValue::get)
    }

    pub fn ip(&self) -> Option<&str> {
        match self.personal_members() {
            Some(p) => opt(&p.ip),
            None => self.context.as_ref().and_then(|c| opt(&c.ip)),
        }
    }

    pub fn user_agent(&self) -> Option<&str> {
        match self.personal_members() {
            Some(p) => opt(&p.user_agent),
            None => self.context.as_ref().and_then(|c| opt(&c.user_agent)),
        }
    }

    /// The `received_at` member as stored (RFC 3339 text).
    pub fn received_at(&self) -> &str {
        self.received_at.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewEvent, StoredEvent, Taxonomy, Timestamp};
    use serde_json::{json, Value};

    fn stored(body: Value) -> StoredEvent {
        let now = Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap();
        StoredEvent::new(
            "acme",
            3,
            now,
            NewEvent::parse(&body, &Taxonomy::default(), now).unwrap(),
        )
    }

    /// Every member reads as the full parse (`StoredEvent::from_leaf_bytes`)
    /// reads it, escapes and absent members included.
    #[test]
    fn agrees_with_the_full_parse() {
        let events = [
            stored(json!({
                "id": "e-\"1\"\\", "time": "2026-11-25T14:03:07.123456Z", "event_type": "Test Case", "action": "Update",
                "actor": {"id": "u-\u{e9}\n", "name": "Ada", "email": "ada@example.com"}, "project": "Check\tout",
                "app": "Web", "version": "2.3", "target": {"id": "TC-1", "name": "日本 ✓"},
                "details": {"nested": {"actor": {"id": "not this"}}, "n": 1e21},
                "context": {"ip": "::1", "user_agent": "curl/8", "request_id": "r-1"}
            })),
            stored(
                json!({"event_type": "Element", "action": "Create", "actor": {"id": "u"}, "target": {"name": "no id"}}),
            ),
            stored(
                json!({"event_type": "Element", "action": "Create", "actor": {"id": "u"}, "context": {"request_id": "r"}}),
            ),
        ];
        for event in events {
            let bytes = event.leaf_bytes();
            let view = LeafView::parse(&bytes).unwrap();
            let full = StoredEvent::from_leaf_bytes(&bytes).unwrap();
            let e = full.event();
            assert_eq!((view.account(), view.seq()), (full.account(), full.seq()));
            assert_eq!(view.id(), e.id());
            assert_eq!(view.time(), e.time().to_rfc3339());
            assert_eq!(view.received_at(), full.received_at().to_rfc3339());
            assert_eq!(
                (view.event_type(), view.action()),
                (e.event_type(), e.action())
            );
            let actor = e.actor();
            assert_eq!(view.actor_id(), actor.id);
            assert_eq!(view.actor_name(), actor.name.as_deref());
            assert_eq!(view.actor_email(), actor.email.as_deref());
            assert_eq!(
                (view.project(), view.app(), view.version()),
                (e.project(), e.app(), e.version())
            );
            let target = e.target();
            assert_eq!(view.target_id(), target.and_then(|t| t.id.as_deref()));
            assert_eq!(view.target_name(), target.and_then(|t| t.name.as_deref()));
            let context = e.context();
            assert_eq!(view.ip(), context.and_then(|c| c.ip.as_deref()));
            assert_eq!(
                view.user_agent(),
                context.and_then(|c| c.user_agent.as_deref())
            );
            let details: Option<Value> = view
                .details_json()
                .map(|raw| serde_json::from_str(raw).unwrap());
            assert_eq!(details, e.details().cloned().map(Value::Object));
        }
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let event = stored(
            json!({"event_type": "Element", "action": "Create", "actor": {"id": "plain", "name": "a\"b"}}),
        );
        let bytes = event.leaf_bytes();
        let view = LeafView::parse(&bytes).unwrap();
        let actor = view.actor.as_ref().unwrap();
        assert!(matches!(actor.id.0, Cow::Borrowed("plain")));
        assert!(matches!(actor.name, Some(Text(Cow::Owned(_)))));
        assert_eq!(view.actor_name(), Some("a\"b"));
    }

    #[test]
    fn an_unreadable_leaf_says_why() {
        assert!(LeafView::parse(b"{\"seq\":1").is_err());
        let event =
            stored(json!({"event_type": "Element", "action": "Create", "actor": {"id": "u"}}));
        let text = String::from_utf8(event.leaf_bytes()).unwrap();
        let no_actor = text.replacen("\"actor\"", "\"actress\"", 1);
        assert!(LeafView::parse(no_actor.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("actor"));
    }

    /// A version 2 leaf with its personal values reads as the opened event.
    #[test]
    fn a_v2_leaf_reads_its_personal_values_beside_it() {
        use crate::leaf_v2::{seal, DetailsPath, OsSalts, Source};
        let event = stored(json!({
            "event_type": "Test Case", "action": "Update",
            "actor": {"id": "u-\u{e9}", "name": "Ada", "email": "ada@example.com"},
            "details": {"assignee": "Grace", "n": 1},
            "context": {"ip": "::1", "user_agent": "curl/8", "request_id": "r-1"}
        }));
        for declared in [
            vec![],
            vec![DetailsPath::parse("details.assignee").unwrap()],
        ] {
            let sealed = seal(&event, &Source::System, &declared, &mut OsSalts).unwrap();
            let view = LeafView::parse(&sealed.leaf_bytes)
                .unwrap()
                .with_personal(&sealed.personal)
                .unwrap();
            let e = event.event();
            assert_eq!(view.id(), e.id());
            assert_eq!(view.actor_id(), "u-\u{e9}");
            assert_eq!(view.actor_name(), Some("Ada"));
            assert_eq!(view.actor_email(), Some("ada@example.com"));
            assert_eq!(view.ip(), Some("::1"));
            assert_eq!(view.user_agent(), Some("curl/8"));
            assert_eq!(view.details_committed(), !declared.is_empty());
            // Without its personal values a v2 leaf names no actor.
            let bare = LeafView::parse(&sealed.leaf_bytes).unwrap();
            assert_eq!((bare.actor_id(), bare.ip()), ("", None));
        }
    }
}
