//! The event a client sends (SPEC "Event"), built with [`Event::builder`]
//! so that every event carries a client-side id (UUIDv7) from the start:
//! whatever is retried, spooled or resent is recognised by the server as the
//! same event and stored once.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Longest `project`, `app`, `version`, `target.id` and `target.name`.
pub const MAX_TEXT_CHARS: usize = 200;
/// Longest event id.
pub const MAX_ID_LEN: usize = 64;

/// One event, as sent to `POST /api/v1/events`. Build it with
/// [`Event::builder`]; the fields are public to read (and deserialize, for
/// the spool), and the server checks every rule again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Unique per account; generated as a UUIDv7 unless set.
    pub id: String,
    /// RFC 3339; the builder sets the time it ran. When absent the server
    /// uses its time of receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    pub event_type: String,
    pub action: String,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Actor {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: None,
            email: None,
        }
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
}

impl From<&str> for Actor {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

/// The entity acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Target {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: None,
        }
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Where the action came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// An IPv4 or IPv6 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One changed field, `details.changes[]` by convention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

impl Change {
    pub fn new(field: impl Into<String>, old: impl Into<Value>, new: impl Into<Value>) -> Self {
        Self {
            field: field.into(),
            old: old.into(),
            new: new.into(),
        }
    }
}

/// The fields that differ between two versions of a record, each with its
/// old and new value: both are serialized to JSON objects and compared key
/// by key (a key missing on one side counts as `null`). `old` = `None`
/// (a creation) or `new` = `None` (a deletion) lists every field.
pub fn changes_between<T: Serialize>(
    old: Option<&T>,
    new: Option<&T>,
) -> Result<Vec<Change>, serde_json::Error> {
    let as_object = |value: Option<&T>| -> Result<Map<String, Value>, serde_json::Error> {
        Ok(match value.map(serde_json::to_value).transpose()? {
            Some(Value::Object(map)) => map,
            Some(other) => Map::from_iter([("value".to_string(), other)]),
            None => Map::new(),
        })
    };
    let (old, new) = (as_object(old)?, as_object(new)?);
    let mut fields: Vec<&String> = old.keys().chain(new.keys()).collect();
    fields.sort();
    fields.dedup();
    Ok(fields
        .into_iter()
        .filter_map(|field| {
            let before = old.get(field).unwrap_or(&Value::Null);
            let after = new.get(field).unwrap_or(&Value::Null);
            (before != after).then(|| Change::new(field.clone(), before.clone(), after.clone()))
        })
        .collect())
}

/// A rule of SPEC "Event" that the builder checks before anything is sent,
/// so that a mistake shows where it was made rather than as a rejection later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("{field} is required and must not be empty")]
    Empty { field: &'static str },
    #[error("{field} must be at most {max} characters; it has {len}")]
    TooLong {
        field: &'static str,
        max: usize,
        len: usize,
    },
    #[error("id must be 1 to 64 printable ASCII characters; got {0:?}")]
    BadId(String),
    #[error("time cannot be written as RFC 3339: {0}")]
    BadTime(String),
}

/// Builds an [`Event`]; see [`Event::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct EventBuilder {
    event: Event,
    changes: Vec<Change>,
    time_error: Option<String>,
}

impl Event {
    /// An event of `event_type` / `action` by `actor`, with a fresh UUIDv7
    /// id and the current time: the moment of the action, which a batch
    /// sent later or a spool drained after a restart keeps (the server
    /// would otherwise stamp the time it received the event).
    pub fn builder(
        event_type: impl Into<String>,
        action: impl Into<String>,
        actor: impl Into<Actor>,
    ) -> EventBuilder {
        EventBuilder {
            event: Event {
                id: uuid::Uuid::now_v7().to_string(),
                time: OffsetDateTime::now_utc().format(&Rfc3339).ok(),
                event_type: event_type.into(),
                action: action.into(),
                actor: actor.into(),
                project: None,
                app: None,
                version: None,
                target: None,
                details: None,
                context: None,
            },
            changes: Vec::new(),
            time_error: None,
        }
    }

    /// The JSON sent for this event.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing these plain structs cannot fail (string keys only).
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl EventBuilder {
    /// Your own id instead of the generated UUIDv7 (for example one derived
    /// from the source record, so that a rerun of a job sends the same ids).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.event.id = id.into();
        self
    }

    /// When it happened, if not now.
    pub fn time(mut self, time: OffsetDateTime) -> Self {
        match time.format(&Rfc3339) {
            Ok(text) => self.event.time = Some(text),
            Err(e) => self.time_error = Some(e.to_string()),
        }
        self
    }

    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.event.project = Some(project.into());
        self
    }

    pub fn app(mut self, app: impl Into<String>) -> Self {
        self.event.app = Some(app.into());
        self
    }

    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.event.version = Some(version.into());
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.event.target = Some(target);
        self
    }

    pub fn context(mut self, context: Context) -> Self {
        self.event.context = Some(context);
        self
    }

    /// Adds one changed field with its old and new value to `details.changes`.
    pub fn change(
        mut self,
        field: impl Into<String>,
        old: impl Into<Value>,
        new: impl Into<Value>,
    ) -> Self {
        self.changes.push(Change::new(field, old, new));
        self
    }

    /// Adds changed fields, for example from [`changes_between`].
    pub fn changes(mut self, changes: impl IntoIterator<Item = Change>) -> Self {
        self.changes.extend(changes);
        self
    }

    /// Sets `details.<key>` (any JSON value).
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.event
            .details
            .get_or_insert_with(Map::new)
            .insert(key.into(), value.into());
        self
    }

    /// Checks the rules a client can check alone and returns the event.
    pub fn build(mut self) -> Result<Event, BuildError> {
        if let Some(e) = self.time_error {
            return Err(BuildError::BadTime(e));
        }
        let event = &self.event;
        let id_ok = !event.id.is_empty()
            && event.id.len() <= MAX_ID_LEN
            && event.id.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if !id_ok {
            return Err(BuildError::BadId(event.id.clone()));
        }
        for (field, value) in [
            ("event_type", &event.event_type),
            ("action", &event.action),
            ("actor.id", &event.actor.id),
        ] {
            if value.trim().is_empty() {
                return Err(BuildError::Empty { field });
            }
        }
        let target = event.target.as_ref();
        for (field, value) in [
            ("project", event.project.as_ref()),
            ("app", event.app.as_ref()),
            ("version", event.version.as_ref()),
            ("target.id", target.map(|t| &t.id)),
            ("target.name", target.and_then(|t| t.name.as_ref())),
        ] {
            let len = value.map_or(0, |v| v.chars().count());
            if len > MAX_TEXT_CHARS {
                return Err(BuildError::TooLong {
                    field,
                    max: MAX_TEXT_CHARS,
                    len,
                });
            }
        }
        if !self.changes.is_empty() {
            let changes = serde_json::to_value(&self.changes).unwrap_or(Value::Null);
            self.event
                .details
                .get_or_insert_with(Map::new)
                .insert("changes".into(), changes);
        }
        Ok(self.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_the_spec_example_with_changes_and_a_uuidv7() {
        let event = Event::builder(
            "Test Case",
            "Update",
            Actor::new("u-17")
                .name("Ada Lovelace")
                .email("ada@example.com"),
        )
        .time(time::macros::datetime!(2026-11-25 14:03:07.123456 UTC))
        .project("Checkout")
        .app("Web")
        .version("2.3")
        .target(Target::new("TC-1042").name("Login with SSO"))
        .change("title", "Login", "Login with SSO")
        .context(Context {
            ip: Some("203.0.113.7".into()),
            user_agent: None,
            request_id: Some("r-88".into()),
        })
        .build()
        .unwrap();
        let id = uuid::Uuid::parse_str(&event.id).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let mut value = serde_json::to_value(&event).unwrap();
        value.as_object_mut().unwrap().remove("id");
        assert_eq!(
            value,
            json!({
                "time": "2026-11-25T14:03:07.123456Z",
                "event_type": "Test Case", "action": "Update",
                "actor": {"id": "u-17", "name": "Ada Lovelace", "email": "ada@example.com"},
                "project": "Checkout", "app": "Web", "version": "2.3",
                "target": {"id": "TC-1042", "name": "Login with SSO"},
                "details": {"changes": [{"field": "title", "old": "Login", "new": "Login with SSO"}]},
                "context": {"ip": "203.0.113.7", "request_id": "r-88"}
            })
        );
        let back: Event = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn two_builders_give_two_ids_and_the_time_of_building() {
        let before = OffsetDateTime::now_utc();
        let a = Event::builder("T", "A", "u").build().unwrap();
        let b = Event::builder("T", "A", "u").build().unwrap();
        assert_ne!(a.id, b.id);
        let time = OffsetDateTime::parse(a.time.as_deref().unwrap(), &Rfc3339).unwrap();
        assert!(time >= before && time <= OffsetDateTime::now_utc());
    }

    #[test]
    fn refuses_what_the_server_would_refuse() {
        let long = "x".repeat(201);
        assert_eq!(
            Event::builder("T", "A", "u").project(&long).build(),
            Err(BuildError::TooLong {
                field: "project",
                max: 200,
                len: 201
            })
        );
        assert_eq!(
            Event::builder("T", " ", "u").build(),
            Err(BuildError::Empty { field: "action" })
        );
        assert!(matches!(
            Event::builder("T", "A", "u").id("").build(),
            Err(BuildError::BadId(_))
        ));
        assert!(matches!(
            Event::builder("T", "A", "u").id("x".repeat(65)).build(),
            Err(BuildError::BadId(_))
        ));
        assert!(matches!(
            Event::builder("T", "A", "u").id("tab\there").build(),
            Err(BuildError::BadId(_))
        ));
    }

    #[derive(Serialize)]
    struct Record {
        title: String,
        priority: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    }

    #[test]
    fn changes_between_lists_only_what_differs_with_old_and_new() {
        let old = Record {
            title: "Login".into(),
            priority: 2,
            owner: Some("ada".into()),
        };
        let new = Record {
            title: "Login".into(),
            priority: 1,
            owner: None,
        };
        assert_eq!(
            changes_between(Some(&old), Some(&new)).unwrap(),
            [
                Change::new("owner", "ada", Value::Null),
                Change::new("priority", 2, 1),
            ]
        );
        let created = changes_between(None, Some(&new)).unwrap();
        assert_eq!(
            created,
            [
                Change::new("priority", Value::Null, 1),
                Change::new("title", Value::Null, "Login"),
            ]
        );
        let deleted = changes_between(Some(&old), None).unwrap();
        assert_eq!(deleted.len(), 3);
        assert!(deleted.iter().all(|c| c.new.is_null()));
        let event = Event::builder("T", "Update", "u")
            .changes(changes_between(Some(&old), Some(&new)).unwrap())
            .detail("reason", "triage")
            .build()
            .unwrap();
        let details = event.details.unwrap();
        assert_eq!(details["reason"], "triage");
        assert_eq!(
            details["changes"][1],
            json!({"field": "priority", "old": 2, "new": 1})
        );
    }
}
