//! Turning stored events into what the Audit Logs table shows: one row per
//! event, with each changed field's old and new value made short enough for
//! a table cell and the whole value kept for an expandable `<details>`.
//! Nothing here escapes HTML: the templates do, for every value.

use auditlog_core::search::{IpNet, Term, Test, TextKey, TextValue};
use auditlog_core::RecordError;
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
    /// A version 2 event whose personal values were erased: the User cell
    /// shows the pseudonym and an "erased" badge.
    pub erased: bool,
    /// Search terms for the cells a click adds to the query (`user:…`,
    /// `target:…`, `project:…`, `ip:…`), in the language's canonical form;
    /// empty when the event has no such value.
    pub user_term: String,
    pub target_term: String,
    pub project_term: String,
    pub ip_term: String,
}

/// `key:value` as the search language prints it (quoted when needed).
pub fn text_term(key: TextKey, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    Term {
        negated: false,
        test: Test::Text {
            key,
            values: vec![TextValue {
                text: value.to_string(),
                prefix: false,
            }],
        },
    }
    .to_string()
}

/// `ip:address`, or empty when the stored text is not an address.
pub fn ip_term(value: &str) -> String {
    match value.parse::<std::net::IpAddr>() {
        Ok(addr) => Term {
            negated: false,
            test: Test::Ip(vec![IpNet {
                addr,
                prefix_len: if addr.is_ipv4() { 32 } else { 128 },
            }]),
        }
        .to_string(),
        Err(_) => String::new(),
    }
}

impl Row {
    pub fn from_record(record: &EventRecord) -> Result<Self, RecordError> {
        let erased = record.stored().is_erased();
        let stored = record.stored().stored_event()?;
        let e = stored.event();
        let mut changes = Vec::new();
        let mut other = e.details().cloned().unwrap_or_default();
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
        let text = |v: Option<&str>| v.unwrap_or_default().to_string();
        let actor = e.actor();
        let target = e.target();
        let target_id = text(target.and_then(|t| t.id.as_deref()));
        let project = text(e.project());
        let ip = text(e.context().and_then(|c| c.ip.as_deref()));
        Ok(Row {
            user_term: text_term(TextKey::User, &actor.id),
            target_term: text_term(TextKey::Target, &target_id),
            project_term: text_term(TextKey::Project, &project),
            ip_term: ip_term(&ip),
            id: e.id().to_string(),
            seq: stored.seq(),
            time: e.time().to_rfc3339(),
            event_type: e.event_type().to_string(),
            action: e.action().to_string(),
            project,
            app: text(e.app()),
            version: text(e.version()),
            // An erased event's name and email are "[erased]": the
            // pseudonym is what tells its events apart.
            actor_label: if erased {
                actor.id.clone()
            } else {
                actor
                    .name
                    .as_deref()
                    .or(actor.email.as_deref())
                    .unwrap_or(&actor.id)
                    .to_string()
            },
            actor_id: actor.id.clone(),
            actor_name: text(actor.name.as_deref()),
            actor_email: text(actor.email.as_deref()),
            target_id,
            target_name: text(target.and_then(|t| t.name.as_deref())),
            changes,
            other_details: (!other.is_empty()).then(|| ValueView::of(Some(&Value::Object(other)))),
            ip,
            erased,
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
    fn terms_read_back_as_the_value_they_name() {
        assert_eq!(text_term(TextKey::User, "u-1"), "user:u-1");
        assert_eq!(
            text_term(TextKey::Project, "Payments API"),
            "project:\"Payments API\""
        );
        assert_eq!(text_term(TextKey::Target, ""), "");
        assert_eq!(ip_term("10.1.2.3"), "ip:10.1.2.3");
        assert_eq!(ip_term("not an address"), "");
        let zone = auditlog_core::search::Zone::utc();
        for term in [
            text_term(TextKey::Project, "a \"quoted\", odd* name"),
            ip_term("2001:db8::1"),
        ] {
            let parsed = auditlog_core::search::Query::parse(&term, &zone).expect("parses");
            assert_eq!(parsed.to_string(), term);
        }
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
