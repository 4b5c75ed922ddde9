//! A borrowed, typed read of version 1 leaf bytes: every member as a slice
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

/// The members of a version 1 leaf (unknown members are skipped). Times
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
    #[serde(borrow)]
    actor: ActorView<'a>,
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
}

impl<'a> LeafView<'a> {
    /// Reads the leaf; the error says why it is not the JSON of a stored event.
    pub fn parse(leaf_bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(leaf_bytes)
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

    pub fn actor_id(&self) -> &str {
        self.actor.id.as_str()
    }

    pub fn actor_name(&self) -> Option<&str> {
        opt(&self.actor.name)
    }

    pub fn actor_email(&self) -> Option<&str> {
        opt(&self.actor.email)
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
        self.context.as_ref().and_then(|c| opt(&c.ip))
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.context.as_ref().and_then(|c| opt(&c.user_agent))
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
        assert!(matches!(view.actor.id.0, Cow::Borrowed("plain")));
        assert!(matches!(view.actor.name, Some(Text(Cow::Owned(_)))));
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
}
