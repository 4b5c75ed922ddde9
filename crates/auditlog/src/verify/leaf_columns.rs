//! The members of a leaf that the store also keeps in indexed columns, read
//! with a borrowed parse: strings point into the leaf bytes (copied only when
//! they hold escapes), and `details`, `context` and the rest are skipped
//! without building anything. Reading a whole JSON tree per leaf was what
//! bounded `verify` (BENCHMARKS.md: malloc and `Value` ~45 % of the profile).

use auditlog_core::{FieldError, Timestamp};
use auditlog_store::IndexedColumns;
use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use std::borrow::Cow;

/// A JSON string, borrowed from the leaf bytes when it has no escapes.
/// (serde borrows a bare `Cow<str>` field, but not one inside an `Option`.)
#[derive(Debug)]
struct Text<'a>(Cow<'a, str>);

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
    fn as_str(&self) -> &str {
        &self.0
    }
}

fn opt<'t>(text: &'t Option<Text<'_>>) -> Option<&'t str> {
    text.as_ref().map(Text::as_str)
}

#[derive(Debug, Deserialize)]
struct ActorColumns<'a> {
    #[serde(borrow)]
    id: Text<'a>,
}

#[derive(Debug, Deserialize)]
struct TargetColumns<'a> {
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
}

/// A version 1 leaf's indexed members (unknown members are skipped).
/// Why leaf bytes are not a readable event: not the JSON of one, or a time
/// in it that is not RFC 3339.
#[derive(Debug, thiserror::Error)]
pub(super) enum UnreadableLeaf {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Time(#[from] FieldError),
}

#[derive(Debug, Deserialize)]
pub(super) struct LeafColumns<'a> {
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
    actor: ActorColumns<'a>,
    #[serde(borrow, default)]
    project: Option<Text<'a>>,
    #[serde(borrow, default)]
    app: Option<Text<'a>>,
    #[serde(borrow, default)]
    version: Option<Text<'a>>,
    #[serde(borrow, default)]
    target: Option<TargetColumns<'a>>,
    #[serde(borrow)]
    received_at: Text<'a>,
}

impl<'a> LeafColumns<'a> {
    /// Reads the leaf; the error says why it is not a readable event.
    pub(super) fn parse(leaf_bytes: &'a [u8]) -> Result<Self, UnreadableLeaf> {
        let columns: Self = serde_json::from_slice(leaf_bytes)?;
        // Times that do not parse make the leaf unreadable, as they always did.
        Timestamp::parse("time", columns.time.as_str())?;
        Timestamp::parse("received_at", columns.received_at.as_str())?;
        Ok(columns)
    }

    pub(super) fn account(&self) -> &str {
        self.account.as_str()
    }

    pub(super) fn seq(&self) -> u64 {
        self.seq
    }

    /// The first column (in `IndexedColumns::first_difference`'s order) that
    /// does not hold what the leaf says.
    pub(super) fn first_difference(&self, columns: &IndexedColumns) -> Option<&'static str> {
        let micros = |text: &Text<'_>| {
            Timestamp::parse("", text.as_str())
                .map(Timestamp::micros)
                .ok()
        };
        let target_id = self.target.as_ref().and_then(|t| opt(&t.id));
        let checks: [(&'static str, bool); 11] = [
            ("seq", columns.seq == self.seq),
            ("event_id", columns.event_id == self.id.as_str()),
            ("time", Some(columns.time) == micros(&self.time)),
            ("event_type", columns.event_type == self.event_type.as_str()),
            ("action", columns.action == self.action.as_str()),
            ("actor_id", columns.actor_id == self.actor.id.as_str()),
            ("project", columns.project.as_deref() == opt(&self.project)),
            ("app", columns.app.as_deref() == opt(&self.app)),
            ("version", columns.version.as_deref() == opt(&self.version)),
            ("target_id", columns.target_id.as_deref() == target_id),
            (
                "received_at",
                Some(columns.received_at) == micros(&self.received_at),
            ),
        ];
        checks.iter().find(|(_, same)| !same).map(|(name, _)| *name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::{NewEvent, StoredEvent, Taxonomy};
    use serde_json::json;

    fn stored(body: serde_json::Value) -> StoredEvent {
        let now = Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap();
        StoredEvent::new(
            "acme",
            3,
            now,
            NewEvent::parse(&body, &Taxonomy::default(), now).unwrap(),
        )
    }

    #[test]
    fn agrees_with_the_columns_of_the_full_parse() {
        let events = [
            stored(json!({
                "id": "e-\"1\"\\", "time": "2026-11-25T14:03:07.123456Z", "event_type": "Test Case", "action": "Update",
                "actor": {"id": "u-\u{e9}\n", "name": "Ada"}, "project": "Check\tout", "app": "Web", "version": "2.3",
                "target": {"id": "TC-1"}, "details": {"nested": {"actor": {"id": "not this"}}, "n": 1e21},
                "context": {"ip": "::1"}
            })),
            stored(
                json!({"event_type": "Element", "action": "Create", "actor": {"id": "u"}, "target": {"name": "no id"}}),
            ),
        ];
        for event in events {
            let bytes = event.leaf_bytes();
            let leaf = LeafColumns::parse(&bytes).unwrap();
            let columns = IndexedColumns::of(&event);
            assert_eq!(leaf.first_difference(&columns), None);
            assert_eq!((leaf.account(), leaf.seq()), ("acme", 3));
        }
    }

    #[test]
    fn names_the_first_column_that_differs() {
        let event = stored(
            json!({"event_type": "Element", "action": "Create", "actor": {"id": "u"}, "project": "P"}),
        );
        let bytes = event.leaf_bytes();
        let leaf = LeafColumns::parse(&bytes).unwrap();
        type Edit = fn(&mut IndexedColumns);
        let edits: [(&str, Edit); 6] = [
            ("event_id", |c| c.event_id.push('x')),
            ("time", |c| c.time += 1),
            ("actor_id", |c| c.actor_id = "mallory".into()),
            ("project", |c| c.project = None),
            ("target_id", |c| c.target_id = Some("T".into())),
            ("received_at", |c| c.received_at -= 1),
        ];
        for (name, edit) in edits {
            let mut columns = IndexedColumns::of(&event);
            edit(&mut columns);
            assert_eq!(leaf.first_difference(&columns), Some(name));
        }
    }

    #[test]
    fn an_unreadable_leaf_says_why() {
        assert!(LeafColumns::parse(b"{\"seq\":1").is_err());
        let event =
            stored(json!({"event_type": "Element", "action": "Create", "actor": {"id": "u"}}));
        let text = String::from_utf8(event.leaf_bytes()).unwrap();
        let bad_time = text.replacen("\"time\":\"", "\"time\":\"x", 1);
        assert!(LeafColumns::parse(bad_time.as_bytes()).is_err());
        let no_actor = text.replacen("\"actor\"", "\"actress\"", 1);
        assert!(LeafColumns::parse(no_actor.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("actor"));
    }
}
