//! The members of a leaf that the store also keeps in indexed columns, read
//! with the borrowed parse of `auditlog_core::leaf_view` (strings point into
//! the leaf bytes, nothing else is built). Reading a whole JSON tree per leaf
//! was what bounded `verify` (BENCHMARKS.md: malloc and `Value` ~45 % of the
//! profile).

use crate::tree::IndexedColumns;
use auditlog_core::leaf_view::LeafView;
use auditlog_core::{FieldError, Timestamp};

/// Why leaf bytes are not a readable event: not the JSON of one, or a time
/// in it that is not RFC 3339.
#[derive(Debug, thiserror::Error)]
pub enum UnreadableLeaf {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Time(#[from] FieldError),
}

/// A version 1 leaf's indexed members (unknown members are skipped).
#[derive(Debug)]
pub struct LeafColumns<'a>(LeafView<'a>);

impl<'a> LeafColumns<'a> {
    /// Reads the leaf, and for a version 2 leaf the personal values stored
    /// beside it (which hold the actor); the error says why it is not a
    /// readable event.
    pub fn parse(leaf_bytes: &'a [u8], personal: Option<&'a [u8]>) -> Result<Self, UnreadableLeaf> {
        let mut view = LeafView::parse(leaf_bytes)?;
        // An erased event's form names no value to read the columns from.
        let personal = personal.filter(|p| !auditlog_core::leaf_v2::erased::is_erased_form(p));
        if let Some(personal) = personal {
            view = view.with_personal(personal)?;
        }
        // Times that do not parse make the leaf unreadable, as they always did.
        Timestamp::parse("time", view.time())?;
        Timestamp::parse("received_at", view.received_at())?;
        Ok(Self(view))
    }

    /// The borrowed read itself.
    pub fn view(&self) -> &LeafView<'a> {
        &self.0
    }

    pub fn account(&self) -> &str {
        self.0.account()
    }

    pub fn seq(&self) -> u64 {
        self.0.seq()
    }

    /// The first column (in `IndexedColumns::first_difference`'s order) that
    /// does not hold what the leaf says.
    pub fn first_difference(&self, columns: &IndexedColumns) -> Option<&'static str> {
        let leaf = &self.0;
        let micros = |text: &str| Timestamp::parse("", text).map(Timestamp::micros).ok();
        let checks: [(&'static str, bool); 11] = [
            ("seq", columns.seq == leaf.seq()),
            ("event_id", columns.event_id.holds(leaf.id())),
            ("time", Some(columns.time) == micros(leaf.time())),
            ("event_type", columns.event_type == leaf.event_type()),
            ("action", columns.action == leaf.action()),
            ("actor_id", columns.actor_id == leaf.actor_id()),
            ("project", columns.project.as_deref() == leaf.project()),
            ("app", columns.app.as_deref() == leaf.app()),
            ("version", columns.version.as_deref() == leaf.version()),
            (
                "target_id",
                match (&columns.target_id, leaf.target_id()) {
                    (None, None) => true,
                    (Some(column), Some(id)) => column.holds(id),
                    _ => false,
                },
            ),
            (
                "received_at",
                Some(columns.received_at) == micros(leaf.received_at()),
            ),
        ];
        checks.iter().find(|(_, same)| !same).map(|(name, _)| *name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::KeyColumn;
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
            let leaf = LeafColumns::parse(&bytes, None).unwrap();
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
        let leaf = LeafColumns::parse(&bytes, None).unwrap();
        type Edit = fn(&mut IndexedColumns);
        let edits: [(&str, Edit); 6] = [
            ("event_id", |c| c.event_id = KeyColumn::Text("x".into())),
            ("time", |c| c.time += 1),
            ("actor_id", |c| c.actor_id = "mallory".into()),
            ("project", |c| c.project = None),
            ("target_id", |c| c.target_id = Some(KeyColumn::Hash(7))),
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
        assert!(LeafColumns::parse(b"{\"seq\":1", None).is_err());
        let event =
            stored(json!({"event_type": "Element", "action": "Create", "actor": {"id": "u"}}));
        let text = String::from_utf8(event.leaf_bytes()).unwrap();
        let bad_time = text.replacen("\"time\":\"", "\"time\":\"x", 1);
        assert!(LeafColumns::parse(bad_time.as_bytes(), None).is_err());
        let no_actor = text.replacen("\"actor\"", "\"actress\"", 1);
        assert!(LeafColumns::parse(no_actor.as_bytes(), None)
            .unwrap_err()
            .to_string()
            .contains("actor"));
    }
}
