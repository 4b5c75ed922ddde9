//! The event: what a client sends (`NewEvent`, checked once by `parse`) and
//! what the ledger keeps (`StoredEvent`, whose canonical JSON is the leaf).

use crate::{canonical, leaf, FieldError, Taxonomy, Timestamp};
use serde_json::{Map, Value};

#[cfg(any(test, feature = "test-support"))]
mod builder;
#[cfg(any(test, feature = "test-support"))]
pub use builder::NewEventBuilder;

/// Longest `project`, `app`, `version`, `actor.*` and `target.*` value, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest `context.user_agent`, in characters; real user agents stay far below.
pub const MAX_USER_AGENT_CHARS: usize = 1024;
/// Largest `details` object, serialized.
pub const MAX_DETAILS_BYTES: usize = 64 * 1024;
/// Longest client-chosen `id`.
pub const MAX_ID_CHARS: usize = 64;
/// How far in the future a client-supplied `time` may lie (clock skew).
pub const MAX_FUTURE_MICROS: i64 = 5 * 60 * 1_000_000;

const TOP_LEVEL_FIELDS: &[&str] = &[
    "id",
    "time",
    "event_type",
    "action",
    "actor",
    "project",
    "app",
    "version",
    "target",
    "details",
    "context",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    /// Normalised text form of an IPv4 or IPv6 address.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// A valid event as a client sent it, with `id` and `time` filled in when the
/// client left them out.
///
/// The fields are private so that a `NewEvent` can only come from
/// [`NewEvent::parse`] (or, read back from the ledger, from
/// [`StoredEvent::from_leaf_bytes`]): whoever holds one can rely on every rule
/// of SPEC "Event" having been checked. Tests that need events the parser
/// would not make use `NewEventBuilder` (feature `test-support`).
///
/// Neither a literal nor an assignment gets past the checks:
///
/// ```compile_fail,E0451
/// # use auditlog_core::{event::Actor, NewEvent, Timestamp};
/// let actor = Actor { id: String::new(), name: None, email: None };
/// let event = NewEvent { id: String::new(), time: Timestamp::now(), time_given: true,
///     event_type: "Spaceship".into(), action: String::new(), actor, project: None, app: None,
///     version: None, target: None, details: None, context: None };
/// ```
///
/// ```compile_fail,E0616
/// fn rename(event: &mut auditlog_core::NewEvent) {
///     event.event_type = "Spaceship".into();
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    id: String,
    time: Timestamp,
    /// Whether the client chose `time`; a retry without it must not conflict
    /// with the receipt time the first attempt was given.
    time_given: bool,
    event_type: String,
    action: String,
    actor: Actor,
    project: Option<String>,
    app: Option<String>,
    version: Option<String>,
    target: Option<Target>,
    details: Option<Map<String, Value>>,
    context: Option<Context>,
}

/// An event as the ledger holds it: the client's event plus the account,
/// the gapless sequence number and the time it was stored.
///
/// Private fields for the same reason as `NewEvent`'s: the event inside was
/// checked, and the rest is what the store assigned (`StoredEvent::new`).
///
/// ```compile_fail,E0616
/// fn renumber(event: &mut auditlog_core::StoredEvent) {
///     event.seq = 0;
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    account: String,
    seq: u64,
    received_at: Timestamp,
    event: NewEvent,
}

impl NewEvent {
    /// Unique per account; the client's or a UUIDv7.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When it happened: the client's `time`, or the time of receipt.
    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// Whether the client chose `time` (see `same_content_as`).
    pub fn time_given(&self) -> bool {
        self.time_given
    }

    /// In the account's taxonomy's canonical spelling.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// In the account's taxonomy's canonical spelling.
    pub fn action(&self) -> &str {
        &self.action
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    pub fn target(&self) -> Option<&Target> {
        self.target.as_ref()
    }

    /// Normalised through the canonical encoding; at most `MAX_DETAILS_BYTES`.
    pub fn details(&self) -> Option<&Map<String, Value>> {
        self.details.as_ref()
    }

    pub fn context(&self) -> Option<&Context> {
        self.context.as_ref()
    }
}

impl StoredEvent {
    /// The event as the store keeps it: `event` was checked by `parse`; the
    /// store assigns the account's name, the gapless `seq` and `received_at`.
    pub fn new(
        account: impl Into<String>,
        seq: u64,
        received_at: Timestamp,
        event: NewEvent,
    ) -> Self {
        Self {
            account: account.into(),
            seq,
            received_at,
            event,
        }
    }

    /// The name of the account whose ledger holds it.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Its gapless position in the account's ledger, from 1; leaf `seq - 1`.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// When the store accepted it.
    pub fn received_at(&self) -> Timestamp {
        self.received_at
    }

    /// The client's event.
    pub fn event(&self) -> &NewEvent {
        &self.event
    }

    /// The client's event, giving up the rest.
    pub fn into_event(self) -> NewEvent {
        self.event
    }
}

/// Collects every broken rule of one event instead of stopping at the first,
/// so that a client fixes them all in one round.
struct Checker<'o, 'e> {
    object: &'o Map<String, Value>,
    prefix: &'static str,
    errors: &'e mut Vec<FieldError>,
}

impl<'o> Checker<'o, '_> {
    fn path(&self, field: &str) -> String {
        format!("{}{}", self.prefix, field)
    }

    fn reject_unknown(&mut self, allowed: &[&str]) {
        for key in self.object.keys() {
            if !allowed.contains(&key.as_str()) {
                let path = self.path(key);
                self.errors.push(FieldError::new(
                    &path,
                    "unknown_field",
                    format!(
                        // Quoted: a name may be empty or blank.
                        "{path:?} is not a field of an event; allowed here: {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
    }

    /// A string field of at most `max` characters; `null` counts as absent.
    fn string(&mut self, field: &str, max: usize, required: bool) -> Option<String> {
        let path = self.path(field);
        match self.object.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.errors.push(FieldError::new(
                        &path,
                        "required",
                        format!("{path} is required"),
                    ));
                }
                None
            }
            Some(Value::String(s)) => {
                if s.contains('\0') {
                    self.errors.push(nul_error(&path));
                    None
                } else if s.chars().count() > max {
                    self.errors.push(FieldError::new(
                        &path,
                        "too_long",
                        format!("{path} must be at most {max} characters"),
                    ));
                    None
                } else if required && s.trim().is_empty() {
                    self.errors.push(FieldError::new(
                        &path,
                        "required",
                        format!("{path} must not be empty"),
                    ));
                    None
                } else {
                    Some(s.clone())
                }
            }
            Some(_) => {
                self.errors.push(FieldError::new(
                    &path,
                    "not_a_string",
                    format!("{path} must be a string"),
                ));
                None
            }
        }
    }

    /// A nested object; `null` counts as absent.
    fn object(&mut self, field: &str) -> Option<&'o Map<String, Value>> {
        let path = self.path(field);
        let object: &'o Map<String, Value> = self.object;
        match object.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                self.errors.push(FieldError::new(
                    &path,
                    "not_an_object",
                    format!("{path} must be a JSON object"),
                ));
                None
            }
        }
    }
}

impl NewEvent {
    /// Checks one event against every rule of SPEC.md "Event" and the
    /// account's taxonomy. `now` is the time of receipt.
    pub fn parse(
        value: &Value,
        taxonomy: &Taxonomy,
        now: Timestamp,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Some(object) = value.as_object() else {
            return Err(vec![FieldError::new(
                "event",
                "not_an_object",
                "each event must be a JSON object",
            )]);
        };
        let mut top = Checker {
            object,
            prefix: "",
            errors: &mut errors,
        };
        top.reject_unknown(TOP_LEVEL_FIELDS);

        let id = top.string("id", MAX_ID_CHARS, false);
        if let Some(id) = &id {
            if id.is_empty() || !id.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
                top.errors.push(FieldError::new(
                    "id",
                    "invalid_id",
                    "id must be 1 to 64 printable ASCII characters",
                ));
            }
        }
        let time = match top.string("time", 64, false) {
            Some(text) => match Timestamp::parse("time", &text) {
                Ok(t) if t.micros() > now.micros() + MAX_FUTURE_MICROS => {
                    top.errors.push(FieldError::new(
                        "time",
                        "in_future",
                        "time is more than 5 minutes in the future; check the sender's clock",
                    ));
                    None
                }
                Ok(t) => Some(t),
                Err(e) => {
                    top.errors.push(e);
                    None
                }
            },
            None => None,
        };

        let event_type_text = top.string("event_type", MAX_NAME_CHARS, true);
        let action_text = top.string("action", MAX_NAME_CHARS, true);
        let mut event_type = None;
        let mut action = None;
        if let Some(text) = &event_type_text {
            match taxonomy.event_type(text) {
                Some(rule) => {
                    event_type = Some(rule.name.clone());
                    if let Some(action_text) = &action_text {
                        match rule.action(action_text) {
                            Some(canonical) => action = Some(canonical.to_string()),
                            None => top.errors.push(FieldError::new(
                                "action",
                                "action_not_allowed",
                                format!(
                                    "action {action_text:?} is not allowed for event type {:?}; allowed: {}",
                                    rule.name,
                                    rule.actions.join(", ")
                                ),
                            )),
                        }
                    }
                }
                None => top.errors.push(FieldError::new(
                    "event_type",
                    "unknown_event_type",
                    format!(
                        "event_type {text:?} is not in this account's taxonomy; known: {}",
                        taxonomy.type_names().collect::<Vec<_>>().join(", ")
                    ),
                )),
            }
        }

        let project = top.string("project", MAX_NAME_CHARS, false);
        let app = top.string("app", MAX_NAME_CHARS, false);
        let version = top.string("version", MAX_NAME_CHARS, false);

        let actor = match top.object("actor") {
            Some(map) => {
                let mut c = Checker {
                    object: map,
                    prefix: "actor.",
                    errors: &mut errors,
                };
                c.reject_unknown(&["id", "name", "email"]);
                let id = c.string("id", MAX_NAME_CHARS, true);
                let name = c.string("name", MAX_NAME_CHARS, false);
                let email = c.string("email", MAX_NAME_CHARS, false);
                id.map(|id| Actor { id, name, email })
            }
            None => {
                if !errors.iter().any(|e| e.field == "actor") {
                    errors.push(FieldError::new(
                        "actor.id",
                        "required",
                        "actor.id is required",
                    ));
                }
                None
            }
        };

        let mut top = Checker {
            object,
            prefix: "",
            errors: &mut errors,
        };
        let target = match top.object("target") {
            Some(map) => {
                let mut c = Checker {
                    object: map,
                    prefix: "target.",
                    errors: &mut errors,
                };
                c.reject_unknown(&["id", "name"]);
                let id = c.string("id", MAX_NAME_CHARS, false);
                let name = c.string("name", MAX_NAME_CHARS, false);
                Some(Target { id, name })
            }
            None => None,
        };

        let mut top = Checker {
            object,
            prefix: "",
            errors: &mut errors,
        };
        let details = match top.object("details") {
            Some(map) => {
                // Normalise through the canonical encoding so that the stored
                // value is exactly what the leaf bytes hold (JCS turns every
                // number into a double).
                let bytes = canonical::to_vec(&Value::Object(map.clone()));
                if let Some(path) = nul_path("details", &Value::Object(map.clone())) {
                    errors.push(nul_error(&path));
                    None
                } else if bytes.len() > MAX_DETAILS_BYTES {
                    errors.push(FieldError::new(
                        "details",
                        "too_large",
                        format!(
                            "details must be at most 64 KiB serialized; it is {} bytes",
                            bytes.len()
                        ),
                    ));
                    None
                } else {
                    serde_json::from_slice::<Map<String, Value>>(&bytes).ok()
                }
            }
            None => None,
        };

        let mut top = Checker {
            object,
            prefix: "",
            errors: &mut errors,
        };
        let context = match top.object("context") {
            Some(map) => {
                let mut c = Checker {
                    object: map,
                    prefix: "context.",
                    errors: &mut errors,
                };
                c.reject_unknown(&["ip", "user_agent", "request_id"]);
                let ip = c.string("ip", 64, false).and_then(|text| {
                    match text.parse::<std::net::IpAddr>() {
                        Ok(ip) => Some(ip.to_string()),
                        Err(_) => {
                            c.errors.push(FieldError::new(
                                "context.ip",
                                "invalid_ip",
                                format!("context.ip {text:?} is not an IPv4 or IPv6 address"),
                            ));
                            None
                        }
                    }
                });
                let user_agent = c.string("user_agent", MAX_USER_AGENT_CHARS, false);
                let request_id = c.string("request_id", MAX_NAME_CHARS, false);
                Some(Context {
                    ip,
                    user_agent,
                    request_id,
                })
            }
            None => None,
        };

        if !errors.is_empty() {
            return Err(errors);
        }
        match (event_type, action, actor) {
            (Some(event_type), Some(action), Some(actor)) => Ok(NewEvent {
                id: id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
                time_given: time.is_some(),
                time: time.unwrap_or(now),
                event_type,
                action,
                actor,
                project,
                app,
                version,
                target,
                details,
                context,
            }),
            // Every missing piece above pushed an error, so this is unreachable;
            // answer with a clear error rather than panic.
            _ => Err(vec![FieldError::new(
                "event",
                "invalid",
                "event is incomplete",
            )]),
        }
    }

    /// The event's fields as a JSON object, leaving out absent ones.
    pub fn to_json_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert("time".into(), Value::String(self.time.to_rfc3339()));
        m.insert("event_type".into(), Value::String(self.event_type.clone()));
        m.insert("action".into(), Value::String(self.action.clone()));
        let mut actor = Map::new();
        actor.insert("id".into(), Value::String(self.actor.id.clone()));
        insert_opt(&mut actor, "name", &self.actor.name);
        insert_opt(&mut actor, "email", &self.actor.email);
        m.insert("actor".into(), Value::Object(actor));
        insert_opt(&mut m, "project", &self.project);
        insert_opt(&mut m, "app", &self.app);
        insert_opt(&mut m, "version", &self.version);
        if let Some(target) = &self.target {
            let mut t = Map::new();
            insert_opt(&mut t, "id", &target.id);
            insert_opt(&mut t, "name", &target.name);
            m.insert("target".into(), Value::Object(t));
        }
        if let Some(details) = &self.details {
            m.insert("details".into(), Value::Object(details.clone()));
        }
        if let Some(context) = &self.context {
            let mut c = Map::new();
            insert_opt(&mut c, "ip", &context.ip);
            insert_opt(&mut c, "user_agent", &context.user_agent);
            insert_opt(&mut c, "request_id", &context.request_id);
            m.insert("context".into(), Value::Object(c));
        }
        m
    }

    /// Whether a retry carries the same content as the stored event with the
    /// same id. A retry that left `time` out takes the stored time, because
    /// its receipt time differs from the first attempt's by nature.
    pub fn same_content_as(&self, stored: &NewEvent) -> bool {
        let mut mine = self.clone();
        if !mine.time_given {
            mine.time = stored.time;
        }
        canonical::to_vec(&Value::Object(mine.to_json_map()))
            == canonical::to_vec(&Value::Object(stored.to_json_map()))
    }
}

/// A value may hold any character but U+0000 (NUL): PostgreSQL's text and
/// JSON types cannot store it, so an event that one backend would take and
/// the other refuse is refused by both, at parse, naming where it is.
fn nul_error(path: &str) -> FieldError {
    FieldError::new(
        path,
        "contains_nul",
        format!("{path} must not contain the character U+0000 (NUL)"),
    )
}

/// The dotted path of the first member name or string in `value` that holds
/// U+0000, if any.
pub(crate) fn nul_path(path: &str, value: &Value) -> Option<String> {
    match value {
        Value::String(s) => s.contains('\0').then(|| path.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(&format!("{path}[{i}]"), item)),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let inner = format!("{path}.{key}");
            if key.contains('\0') {
                Some(inner)
            } else {
                nul_path(&inner, item)
            }
        }),
        _ => None,
    }
}

fn insert_opt(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        map.insert(key.into(), Value::String(v.clone()));
    }
}

impl StoredEvent {
    /// The stored event as JSON, without `hash` (the hash is of these bytes).
    pub fn to_json_map(&self) -> Map<String, Value> {
        let mut m = self.event.to_json_map();
        m.insert("account".into(), Value::String(self.account.clone()));
        m.insert("seq".into(), Value::from(self.seq));
        m.insert(
            "received_at".into(),
            Value::String(self.received_at.to_rfc3339()),
        );
        m
    }

    /// The leaf bytes: RFC 8785 canonical JSON of the stored event. Computed
    /// once at ingest, stored, and never re-serialised afterwards.
    pub fn leaf_bytes(&self) -> Vec<u8> {
        canonical::to_vec(&Value::Object(self.to_json_map()))
    }

    pub fn leaf_hash(&self) -> [u8; 32] {
        leaf::leaf_hash(&self.leaf_bytes())
    }

    /// Reads an event back from its leaf bytes, without taxonomy checks (it
    /// was checked when it was accepted). Used by exports and `verify`.
    pub fn from_leaf_bytes(bytes: &[u8]) -> Result<Self, LeafError> {
        let value: Value = serde_json::from_slice(bytes).map_err(LeafError::NotJson)?;
        Self::from_json_map(value.as_object().ok_or(LeafError::NotAnObject)?)
    }

    /// Reads an event from the JSON object of a stored event: a version 1
    /// leaf, or a served event (members it does not know, such as `v`,
    /// `source`, `openings` and `hash`, are ignored).
    pub fn from_json_map(m: &Map<String, Value>) -> Result<Self, LeafError> {
        let text = |map: &Map<String, Value>, key: &str| {
            map.get(key).and_then(Value::as_str).map(str::to_string)
        };
        let required = |map: &Map<String, Value>, key: &'static str| {
            text(map, key).ok_or(LeafError::Lacks(key))
        };
        let time = |key: &'static str| -> Result<Timestamp, LeafError> {
            Timestamp::parse(key, &required(m, key)?)
                .map_err(|cause| LeafError::InvalidTime { field: key, cause })
        };
        let actor = m
            .get("actor")
            .and_then(Value::as_object)
            .ok_or(LeafError::Lacks("actor"))?;
        let target = m.get("target").and_then(Value::as_object);
        let context = m.get("context").and_then(Value::as_object);
        Ok(StoredEvent {
            account: required(m, "account")?,
            seq: m
                .get("seq")
                .and_then(Value::as_u64)
                .ok_or(LeafError::Lacks("seq"))?,
            received_at: time("received_at")?,
            event: NewEvent {
                id: required(m, "id")?,
                time: time("time")?,
                time_given: true,
                event_type: required(m, "event_type")?,
                action: required(m, "action")?,
                actor: Actor {
                    id: required(actor, "id")?,
                    name: text(actor, "name"),
                    email: text(actor, "email"),
                },
                project: text(m, "project"),
                app: text(m, "app"),
                version: text(m, "version"),
                target: target.map(|t| Target {
                    id: text(t, "id"),
                    name: text(t, "name"),
                }),
                details: m.get("details").and_then(Value::as_object).cloned(),
                context: context.map(|c| Context {
                    ip: text(c, "ip"),
                    user_agent: text(c, "user_agent"),
                    request_id: text(c, "request_id"),
                }),
            },
        })
    }
}

/// Why leaf bytes do not read back as a `StoredEvent`: they were altered, or
/// were never written by this code.
#[derive(Debug, thiserror::Error)]
pub enum LeafError {
    #[error("leaf bytes are not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("leaf bytes are not a JSON object")]
    NotAnObject,
    #[error("leaf lacks {0}")]
    Lacks(&'static str),
    #[error("leaf holds an invalid {field}")]
    InvalidTime {
        field: &'static str,
        #[source]
        cause: FieldError,
    },
}

/// The API's JSON for a stored event: its leaf bytes with `hash` appended.
/// Splicing instead of re-serialising serves the bytes exactly as hashed.
pub fn api_json(leaf_bytes: &[u8], leaf_hash: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(leaf_bytes.len() + 80);
    write_api_json(leaf_bytes, leaf_hash, &mut out);
    out
}

/// [`api_json`] appended to `out`: what JSON Lines exports write per event,
/// with no buffer of its own.
pub fn write_api_json(leaf_bytes: &[u8], leaf_hash: &[u8], out: &mut Vec<u8>) {
    let body = leaf_bytes.strip_suffix(b"}").unwrap_or(leaf_bytes);
    out.extend_from_slice(body);
    out.extend_from_slice(b",\"hash\":\"");
    leaf::write_hex(leaf_hash, out);
    out.extend_from_slice(b"\"}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap()
    }

    fn parse(v: Value) -> Result<NewEvent, Vec<FieldError>> {
        NewEvent::parse(&v, &Taxonomy::default(), now())
    }

    #[test]
    fn nul_is_refused_in_every_string_and_anywhere_in_details() {
        let cases = [
            ("/actor/id", json!("u\u{0}1"), "actor.id"),
            ("/project", json!("P\u{0}"), "project"),
            ("/context/user_agent", json!("\u{0}"), "context.user_agent"),
            ("/target/name", json!("a\u{0}"), "target.name"),
            (
                "/details",
                json!({"a": {"b": ["ok", "x\u{0}y"]}}),
                "details.a.b[1]",
            ),
            ("/details", json!({"k\u{0}": 1}), "details.k\u{0}"),
        ];
        for (pointer, value, field) in cases {
            let mut v = valid();
            if let Some(slot) = v.pointer_mut(pointer) {
                *slot = value;
            } else {
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                v.pointer_mut(parent).unwrap()[key] = value;
            }
            let errors = parse(v).unwrap_err();
            assert_eq!(errors.len(), 1, "{pointer}: {errors:?}");
            assert_eq!(errors[0].field, field);
            assert_eq!(errors[0].rule, "contains_nul");
            assert!(
                errors[0].message.contains("U+0000"),
                "{}",
                errors[0].message
            );
        }
        // Other control characters stay valid (escaped in the leaf).
        let mut v = valid();
        v["project"] = json!("tab\there\u{1}");
        assert!(parse(v).is_ok());
    }

    fn rules(v: Value) -> Vec<(String, &'static str)> {
        parse(v)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.rule))
            .collect()
    }

    fn valid() -> Value {
        json!({
            "id": "e-1", "time": "2026-11-25T14:03:07.123456Z", "event_type": "test case", "action": "UPDATE",
            "actor": {"id": "u-17", "name": "Ada", "email": "ada@example.com"},
            "project": "Checkout", "app": "Web", "version": "2.3",
            "target": {"id": "TC-1042", "name": "Login with SSO"},
            "details": {"changes": [{"field": "title", "old": "Login", "new": "Login with SSO"}]},
            "context": {"ip": "2001:DB8::1", "user_agent": "curl", "request_id": "r-88"}
        })
    }

    #[test]
    fn accepts_a_full_event_in_canonical_spelling() {
        let e = parse(valid()).unwrap();
        assert_eq!(e.event_type, "Test Case");
        assert_eq!(e.action, "Update");
        assert_eq!(e.context.unwrap().ip.unwrap(), "2001:db8::1");
    }

    #[test]
    fn fills_id_and_time_when_absent() {
        let e = parse(json!({"event_type": "Element", "action": "Create", "actor": {"id": "u"}}))
            .unwrap();
        assert_eq!(e.id.len(), 36);
        assert_eq!(e.time, now());
        assert!(!e.time_given);
    }

    #[test]
    fn names_each_broken_rule() {
        let mut v = valid();
        v["event_type"] = json!("Spaceship");
        assert_eq!(rules(v), [("event_type".to_string(), "unknown_event_type")]);
        let mut v = valid();
        v["action"] = json!("Login");
        assert_eq!(rules(v), [("action".to_string(), "action_not_allowed")]);
        let mut v = valid();
        v["actor"] = json!({"name": "x"});
        assert_eq!(rules(v), [("actor.id".to_string(), "required")]);
        let mut v = valid();
        v.as_object_mut().unwrap().remove("actor");
        assert_eq!(rules(v), [("actor.id".to_string(), "required")]);
        let mut v = valid();
        v["time"] = json!("2026-11-25T15:06:00Z");
        assert_eq!(rules(v), [("time".to_string(), "in_future")]);
        let mut v = valid();
        v["time"] = json!("not a time");
        assert_eq!(rules(v), [("time".to_string(), "invalid_time")]);
        let mut v = valid();
        v["colour"] = json!("red");
        assert_eq!(rules(v), [("colour".to_string(), "unknown_field")]);
        // Found by the property tests: an empty name made a message that
        // began " is not a field"; the name is quoted now.
        let mut v = valid();
        v[""] = json!(1);
        let errors = parse(v).unwrap_err();
        assert_eq!(
            (errors[0].field.as_str(), errors[0].rule),
            ("", "unknown_field")
        );
        assert!(errors[0].message.starts_with("\"\" is not a field"));
        let mut v = valid();
        v["project"] = json!("p".repeat(201));
        assert_eq!(rules(v), [("project".to_string(), "too_long")]);
        let mut v = valid();
        v["details"] = json!([1]);
        assert_eq!(rules(v), [("details".to_string(), "not_an_object")]);
        let mut v = valid();
        v["details"] = json!({"blob": "x".repeat(70_000)});
        assert_eq!(rules(v), [("details".to_string(), "too_large")]);
        let mut v = valid();
        v["context"]["ip"] = json!("300.1.1.1");
        assert_eq!(rules(v), [("context.ip".to_string(), "invalid_ip")]);
        let mut v = valid();
        v["id"] = json!("tab\there");
        assert_eq!(rules(v), [("id".to_string(), "invalid_id")]);
        assert_eq!(rules(json!([1])), [("event".to_string(), "not_an_object")]);
    }

    #[test]
    fn five_minutes_of_clock_skew_is_allowed() {
        let mut v = valid();
        v["time"] = json!("2026-11-25T15:04:59Z");
        assert!(parse(v).is_ok());
    }

    #[test]
    fn leaf_bytes_round_trip_and_api_json_appends_hash() {
        let stored = StoredEvent {
            account: "acme".into(),
            seq: 7,
            received_at: now(),
            event: parse(valid()).unwrap(),
        };
        let bytes = stored.leaf_bytes();
        let back = StoredEvent::from_leaf_bytes(&bytes).unwrap();
        assert_eq!(back.leaf_bytes(), bytes);
        let api: Value = serde_json::from_slice(&api_json(&bytes, &stored.leaf_hash())).unwrap();
        assert_eq!(api["seq"], 7);
        assert_eq!(api["hash"].as_str().unwrap().len(), 64);
        assert!(bytes.starts_with(b"{\"account\":\"acme\",\"action\":\"Update\""));
    }

    #[test]
    fn a_double_in_details_is_stored_exactly_and_its_leaf_is_stable() {
        // Found by the property tests: serde_json's default parser read
        // doubles one ulp off, at each of the client's body, the details'
        // normalisation and the leaf's reading, so the stored number was not
        // the client's, an identical retry looked like a conflict and the
        // leaf bytes did not re-encode to themselves.
        let body = r#"{"id": "e-1", "event_type": "Element", "action": "Create", "actor": {"id": "u"},
                       "details": {"x": 1.8726782586994e+262}}"#;
        let v: Value = serde_json::from_str(body).unwrap();
        let event = parse(v.clone()).unwrap();
        let details = event.details.as_ref().unwrap();
        assert_eq!(details["x"].as_f64(), Some(1.8726782586994e262));
        let stored = StoredEvent {
            account: "acme".into(),
            seq: 1,
            received_at: now(),
            event,
        };
        let bytes = stored.leaf_bytes();
        let back = StoredEvent::from_leaf_bytes(&bytes).unwrap();
        // An identical retry is the same content (not a 409 conflict) ...
        assert!(parse(v).unwrap().same_content_as(&back.event));
        // ... and the leaf re-encodes to itself (what `copy` checks).
        assert_eq!(
            String::from_utf8(back.leaf_bytes()).unwrap(),
            String::from_utf8(bytes).unwrap()
        );
    }

    #[test]
    fn retry_without_time_matches_stored_content() {
        let mut v = valid();
        v.as_object_mut().unwrap().remove("time");
        let first = NewEvent::parse(&v, &Taxonomy::default(), now()).unwrap();
        let later = Timestamp::from_micros(now().micros() + 1_000_000);
        let retry = NewEvent::parse(&v, &Taxonomy::default(), later).unwrap();
        assert!(retry.same_content_as(&first));
        v["project"] = json!("Other");
        let changed = NewEvent::parse(&v, &Taxonomy::default(), later).unwrap();
        assert!(!changed.same_content_as(&first));
    }
}
