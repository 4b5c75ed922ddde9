//! Turning stored events into what the Audit Logs table shows: one row per
//! event, with each changed field's old and new value made short enough for
//! a table cell and the whole value kept for an expandable `<details>`.
//! Nothing here escapes HTML: the templates do, for every value.

use auditlog_core::event::StoredEvent;
use auditlog_store::EventRecord;
use serde_json::Value;

/// Values longer than this (in characters) are cut in the cell and shown whole on expansion.
const SHORT_CHARS: usize = 60;

/// A JSON value as a table cell shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueView {
    /// Strings without quotes, anything else as compact JSON, cut to [`SHORT_CHARS`].
    pub short: String,
    /// The whole value (pretty JSON for objects and arrays) when `short` is not all of it.
    pub full: Option<String>,
}

impl ValueView {
    pub fn of(value: Option<&Value>) -> Self {
        let (text, pretty) = match value {
            None => ("(none)".to_string(), None),
            Some(Value::String(s)) if s.is_empty() => ("(empty)".to_string(), None),
            Some(Value::String(s)) => (s.clone(), None),
            Some(v @ (Value::Object(_) | Value::Array(_))) => {
                (v.to_string(), serde_json::to_string_pretty(v).ok())
            }
            Some(v) => (v.to_string(), None),
        };
        let long = text.chars().count() > SHORT_CHARS;
        let short = if long {
            let mut cut: String = text.chars().take(SHORT_CHARS - 1).collect();
            cut.push('…');
            cut
        } else {
            text.clone()
        };
        let full = if long || (pretty.is_some() && text.len() > 30) {
            Some(pretty.unwrap_or(text))
        } else {
            None
        };
        Self { short, full }
    }
}

#[derive(Debug, Clone)]
pub struct Change {
    pub field: String,
    pub old: ValueView,
    pub new: ValueView,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub seq: u64,
    /// RFC 3339 in UTC; the page script shows it in the viewer's zone.
    pub time: String,
    pub event_type: String,
    pub action: String,
    pub project: String,
    pub app: String,
    pub version: String,
    pub actor_id: String,
    /// The name, else the email, else the id: what the User column leads with.
    pub actor_label: String,
    pub actor_name: String,
    pub actor_email: String,
    pub target_id: String,
    pub target_name: String,
    pub changes: Vec<Change>,
    /// Details other than `changes`, as one expandable value.
    pub other_details: Option<ValueView>,
    pub ip: String,
}

impl Row {
    pub fn from_record(record: &EventRecord) -> Result<Self, String> {
        let stored = StoredEvent::from_leaf_bytes(&record.leaf_bytes)?;
        let e = stored.event;
        let mut changes = Vec::new();
        let mut other = e.details.clone().unwrap_or_default();
        if let Some(Value::Array(items)) = other.get("changes") {
            for item in items {
                match item.as_object() {
                    Some(change) => changes.push(Change {
                        field: change
                            .get("field")
                            .map(|f| f.as_str().map(str::to_string).unwrap_or(f.to_string()))
                            .unwrap_or_default(),
                        old: ValueView::of(change.get("old")),
                        new: ValueView::of(change.get("new")),
                    }),
                    // A malformed entry is shown as it is rather than dropped.
                    None => changes.push(Change {
                        field: String::new(),
                        old: ValueView::of(None),
                        new: ValueView::of(Some(item)),
                    }),
                }
            }
            other.remove("changes");
        }
        let target = e.target.unwrap_or_default();
        let context = e.context.unwrap_or_default();
        Ok(Row {
            id: e.id,
            seq: stored.seq,
            time: e.time.to_rfc3339(),
            event_type: e.event_type,
            action: e.action,
            project: e.project.unwrap_or_default(),
            app: e.app.unwrap_or_default(),
            version: e.version.unwrap_or_default(),
            actor_label: e
                .actor
                .name
                .clone()
                .or_else(|| e.actor.email.clone())
                .unwrap_or_else(|| e.actor.id.clone()),
            actor_id: e.actor.id,
            actor_name: e.actor.name.unwrap_or_default(),
            actor_email: e.actor.email.unwrap_or_default(),
            target_id: target.id.unwrap_or_default(),
            target_name: target.name.unwrap_or_default(),
            changes,
            other_details: (!other.is_empty()).then(|| ValueView::of(Some(&Value::Object(other)))),
            ip: context.ip.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_values_are_shown_whole() {
        assert_eq!(
            ValueView::of(Some(&json!("Login"))),
            ValueView {
                short: "Login".into(),
                full: None
            }
        );
        assert_eq!(ValueView::of(Some(&json!(3))).short, "3");
        assert_eq!(ValueView::of(None).short, "(none)");
    }

    #[test]
    fn long_and_structured_values_are_cut_and_expandable() {
        let long = "x".repeat(200);
        let view = ValueView::of(Some(&json!(long)));
        assert_eq!(view.short.chars().count(), SHORT_CHARS);
        assert_eq!(view.full.as_deref(), Some(long.as_str()));
        let object = json!({"steps": ["open the page", "click sign in", "see the dashboard"]});
        let view = ValueView::of(Some(&object));
        assert!(
            view.full.as_deref().is_some_and(|f| f.contains('\n')),
            "pretty JSON on expansion"
        );
    }
}
