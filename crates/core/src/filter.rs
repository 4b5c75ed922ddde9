//! Query filters as plain data that every backend translates to its own
//! query language, the opaque keyset cursor, and histogram intervals.

use crate::search::{Query, QueryError, Zone};
use crate::{FieldError, Taxonomy, Timestamp};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1_000;

/// The filters of SPEC.md "Query events", combined with AND; several values
/// of one list mean OR. `event_types` and `actions` hold canonical spellings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub event_types: Vec<String>,
    pub actions: Vec<String>,
    pub users: Vec<String>,
    pub projects: Vec<String>,
    pub app: Option<String>,
    pub version: Option<String>,
    pub target_id: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// `q` (SPEC "Search"), ANDed with the fields above; empty when absent.
    /// Its times are instants already (`tz` was applied when it was parsed).
    pub query: Query,
}

/// Why a filter was refused: a parameter ([`FieldError`]), or `q`, which
/// says where in the query it goes wrong ([`QueryError`]: the API's 400
/// `bad_query`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// Reads `q` in the zone `tz` names (UTC when absent): what every interface
/// that takes `q` and `tz` does with them.
pub fn parse_query(q: Option<&str>, tz: Option<&str>) -> Result<Query, FilterError> {
    let zone = match tz {
        Some(name) => Zone::parse(name)?,
        None => Zone::utc(),
    };
    match q {
        Some(text) => Ok(Query::parse(text, &zone)?),
        None => Ok(Query::default()),
    }
}

/// The filter parameter names, shared by queries, histograms and exports.
pub const FILTER_PARAMS: &[&str] = &[
    "event_type",
    "action",
    "user",
    "project",
    "app",
    "version",
    "target_id",
    "from",
    "to",
    "q",
    "tz",
];

impl EventFilter {
    /// Adds one query parameter. Returns `Ok(false)` if the name is not a
    /// filter parameter, so that callers can accept their own extra ones.
    /// `q` and `tz` are not read here (a query is read whole, in its zone:
    /// [`parse_query`]).
    pub fn add_param(
        &mut self,
        name: &str,
        value: &str,
        taxonomy: &Taxonomy,
    ) -> Result<bool, FieldError> {
        // No stored value holds U+0000 (events refuse it at parse), and a
        // filter is written into the export's audit event, which must parse.
        if value.contains('\0') && FILTER_PARAMS.contains(&name) {
            return Err(FieldError::new(
                name,
                "contains_nul",
                format!("{name} must not contain the character U+0000 (NUL)"),
            ));
        }
        match name {
            "event_type" => match taxonomy.event_type_or_own(value) {
                Some(rule) => push_unique(&mut self.event_types, &rule.name),
                None => {
                    return Err(FieldError::new(
                        "event_type",
                        "unknown_event_type",
                        format!(
                            "event_type {value:?} is not in this account's taxonomy; known: {}",
                            taxonomy.type_names().collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
            },
            "action" => match taxonomy.any_action_or_own(value) {
                Some(action) => push_unique(&mut self.actions, action),
                None => {
                    return Err(FieldError::new(
                        "action",
                        "unknown_action",
                        format!(
                            "action {value:?} is not in this account's taxonomy; known: {}",
                            taxonomy.action_names().join(", ")
                        ),
                    ))
                }
            },
            "user" => push_unique(&mut self.users, value),
            "project" => push_unique(&mut self.projects, value),
            "app" => set_once(&mut self.app, name, value)?,
            "version" => set_once(&mut self.version, name, value)?,
            "target_id" => set_once(&mut self.target_id, name, value)?,
            "from" => set_instant_once(&mut self.from, name, value)?,
            "to" => set_instant_once(&mut self.to, name, value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks rules that span parameters.
    pub fn check(&self) -> Result<(), FieldError> {
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from > to {
                return Err(FieldError::new(
                    "from",
                    "from_after_to",
                    "from must not be later than to",
                ));
            }
        }
        Ok(())
    }

    /// Reads the `filters` object of an export request: the same names as
    /// the query parameters, arrays for repeatable ones.
    pub fn from_json(value: &Value, taxonomy: &Taxonomy) -> Result<Self, FilterError> {
        let mut filter = EventFilter::default();
        let empty = Map::new();
        let object = match value {
            Value::Null => &empty,
            Value::Object(m) => m,
            _ => {
                return Err(FieldError::new(
                    "filters",
                    "not_an_object",
                    "filters must be a JSON object",
                )
                .into())
            }
        };
        let text = |name: &str| -> Result<Option<&str>, FieldError> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(FieldError::new(
                    format!("filters.{name}"),
                    "not_a_string",
                    format!("filters.{name} must be a string"),
                )),
            }
        };
        filter.query = parse_query(text("q")?, text("tz")?).map_err(|e| match e {
            FilterError::Field(mut f) => {
                f.field = format!("filters.{}", f.field);
                FilterError::Field(f)
            }
            other => other,
        })?;
        for (name, v) in object {
            if name == "q" || name == "tz" {
                continue;
            }
            let path = format!("filters.{name}");
            let values: Vec<&str> = match v {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str().ok_or_else(|| {
                            FieldError::new(
                                &path,
                                "not_a_string",
                                format!("{path} must hold strings"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Value::Null => vec![],
                _ => {
                    return Err(FieldError::new(
                        &path,
                        "not_a_string",
                        format!("{path} must be a string or an array of strings"),
                    )
                    .into())
                }
            };
            for one in values {
                let known = filter.add_param(name, one, taxonomy).map_err(|mut e| {
                    e.field = format!("filters.{}", e.field);
                    e
                })?;
                if !known {
                    return Err(FieldError::new(
                        &path,
                        "unknown_parameter",
                        format!(
                            "{path} is not a filter; allowed: {}",
                            FILTER_PARAMS.join(", ")
                        ),
                    )
                    .into());
                }
            }
        }
        filter.check()?;
        Ok(filter)
    }

    /// The filter as the JSON object that `from_json` reads; stored with
    /// export jobs and written into audit events.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let list = |v: &Vec<String>| Value::Array(v.iter().cloned().map(Value::String).collect());
        if !self.event_types.is_empty() {
            m.insert("event_type".into(), list(&self.event_types));
        }
        if !self.actions.is_empty() {
            m.insert("action".into(), list(&self.actions));
        }
        if !self.users.is_empty() {
            m.insert("user".into(), list(&self.users));
        }
        if !self.projects.is_empty() {
            m.insert("project".into(), list(&self.projects));
        }
        for (key, value) in [
            ("app", &self.app),
            ("version", &self.version),
            ("target_id", &self.target_id),
        ] {
            if let Some(v) = value {
                m.insert(key.into(), Value::String(v.clone()));
            }
        }
        for (key, value) in [("from", self.from), ("to", self.to)] {
            if let Some(t) = value {
                m.insert(key.into(), Value::String(t.to_rfc3339()));
            }
        }
        // The canonical form: its times are instants, so it needs no `tz`.
        if !self.query.is_empty() {
            m.insert("q".into(), Value::String(self.query.to_string()));
        }
        Value::Object(m)
    }

    /// Whether `event` passes this filter's parameters other than `query`;
    /// the reference semantics that the backends' SQL must agree with (used
    /// by tests and the conformance suite). `query` needs the stored event
    /// and its source: [`Query::matches`].
    pub fn matches(&self, event: &crate::NewEvent) -> bool {
        let in_list = |list: &Vec<String>, v: &str| list.is_empty() || list.iter().any(|x| x == v);
        let opt_eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        in_list(&self.event_types, event.event_type())
            && in_list(&self.actions, event.action())
            && in_list(&self.users, &event.actor().id)
            && (self.projects.is_empty()
                || event
                    .project()
                    .is_some_and(|p| self.projects.iter().any(|want| want == p)))
            && opt_eq(&self.app, event.app())
            && opt_eq(&self.version, event.version())
            && opt_eq(
                &self.target_id,
                event.target().and_then(|t| t.id.as_deref()),
            )
            && self.from.is_none_or(|f| event.time() >= f)
            && self.to.is_none_or(|t| event.time() <= t)
    }
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|v| v == value) {
        list.push(value.to_string());
    }
}

fn set_once(slot: &mut Option<String>, name: &str, value: &str) -> Result<(), FieldError> {
    if slot.as_deref().is_some_and(|v| v != value) {
        return Err(FieldError::new(
            name,
            "not_repeatable",
            format!("{name} may be given only once"),
        ));
    }
    *slot = Some(value.to_string());
    Ok(())
}

/// Like `set_once`, for instants: the same instant again (in any spelling)
/// is harmless; another one would silently replace the first bound.
fn set_instant_once(
    slot: &mut Option<Timestamp>,
    name: &str,
    value: &str,
) -> Result<(), FieldError> {
    let instant = Timestamp::parse(name, value)?;
    if slot.is_some_and(|held| held != instant) {
        return Err(FieldError::new(
            name,
            "not_repeatable",
            format!("{name} may be given only once"),
        ));
    }
    *slot = Some(instant);
    Ok(())
}

/// A position in the newest-first order, plus the account's highest `seq`
/// when paging began: events stored later never appear in later pages, so a
/// walk visits each event that existed at its start exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Time of the last event on the previous page.
    pub time: Timestamp,
    /// `seq` of the last event on the previous page.
    pub seq: u64,
    /// Highest `seq` visible to this walk.
    pub snapshot_seq: u64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "v1:{}:{}:{}",
            self.time.micros(),
            self.seq,
            self.snapshot_seq
        ))
    }

    pub fn decode(text: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                "cursor",
                "invalid_cursor",
                "cursor is not a next_cursor this server issued",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = text.split(':');
        if parts.next() != Some("v1") {
            return Err(bad());
        }
        let mut next = || parts.next().ok_or_else(bad);
        let time = next()?.parse::<i64>().map_err(|_| bad())?;
        let seq = next()?.parse::<u64>().map_err(|_| bad())?;
        let snapshot_seq = next()?.parse::<u64>().map_err(|_| bad())?;
        if parts.next().is_some() || seq > snapshot_seq {
            return Err(bad());
        }
        Ok(Cursor {
            time: Timestamp::from_micros(time),
            seq,
            snapshot_seq,
        })
    }
}

/// Histogram bucket widths, aligned in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
    Week,
}

impl Interval {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        match text {
            "hour" => Ok(Interval::Hour),
            "day" => Ok(Interval::Day),
            "week" => Ok(Interval::Week),
            _ => Err(FieldError::new(
                "interval",
                "invalid_interval",
                "interval must be hour, day or week",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
        }
    }

    pub fn micros(self) -> i64 {
        const HOUR: i64 = 3_600_000_000;
        match self {
            Interval::Hour => HOUR,
            Interval::Day => 24 * HOUR,
            Interval::Week => 7 * 24 * HOUR,
        }
    }

    /// Where buckets start relative to the epoch: weeks begin on Monday
    /// (1970-01-01 was a Thursday, so Mondays are 4 days past a multiple).
    pub fn offset_micros(self) -> i64 {
        match self {
            Interval::Week => 4 * Interval::Day.micros(),
            _ => 0,
        }
    }

    /// The start of the bucket that holds `t`.
    pub fn bucket_start(self, t: Timestamp) -> Timestamp {
        let width = self.micros();
        let offset = self.offset_micros();
        Timestamp::from_micros((t.micros() - offset).div_euclid(width) * width + offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_error(e: FilterError) -> FieldError {
        match e {
            FilterError::Field(f) => f,
            FilterError::Query(q) => panic!("a query error: {q}"),
        }
    }

    #[test]
    fn q_and_tz_are_read_whole_and_stored_canonical() {
        let t = Taxonomy::default();
        let f = EventFilter::from_json(
            &serde_json::json!({"q": "time:2026-11-30 -user:a", "tz": "Europe/Paris", "app": "Web"}),
            &t,
        )
        .unwrap();
        let stored = f.to_json();
        assert_eq!(
            stored["q"],
            "time:2026-11-29T23:00:00.000000Z..2026-11-30T22:59:59.999999Z -user:a"
        );
        assert_eq!(EventFilter::from_json(&stored, &t).unwrap(), f);
        match EventFilter::from_json(&serde_json::json!({"q": "user:"}), &t) {
            Err(FilterError::Query(e)) => assert_eq!(e.position, 5),
            other => panic!("{other:?}"),
        }
        let e = field_error(
            EventFilter::from_json(&serde_json::json!({"q": "a", "tz": "Mars/Base"}), &t)
                .unwrap_err(),
        );
        assert_eq!(
            (e.field.as_str(), e.rule),
            ("filters.tz", "unknown_time_zone")
        );
    }

    #[test]
    fn cursor_round_trips_and_rejects_forgeries() {
        let c = Cursor {
            time: Timestamp::from_micros(1_700_000_000_000_000),
            seq: 12,
            snapshot_seq: 40,
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("garbage!").is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("v1:1:50:40")).is_err());
    }

    #[test]
    fn filter_params_are_canonicalised_and_checked() {
        let t = Taxonomy::default();
        let mut f = EventFilter::default();
        assert!(f.add_param("event_type", "test case", &t).unwrap());
        assert!(f.add_param("action", "login", &t).unwrap());
        assert!(!f.add_param("colour", "red", &t).unwrap());
        assert_eq!(f.event_types, ["Test Case"]);
        assert_eq!(f.actions, ["Login"]);
        assert_eq!(
            f.add_param("event_type", "Rocket", &t).unwrap_err().field,
            "event_type"
        );
        f.add_param("from", "2026-02-01T00:00:00Z", &t).unwrap();
        f.add_param("to", "2026-01-01T00:00:00Z", &t).unwrap();
        assert_eq!(f.check().unwrap_err().rule, "from_after_to");
    }

    #[test]
    fn a_second_different_bound_is_refused_not_taken() {
        // Found by the query_params property test: `from=A&from=B` kept B
        // and dropped A without a word.
        let t = Taxonomy::default();
        let mut f = EventFilter::default();
        f.add_param("from", "2026-01-01T00:00:00Z", &t).unwrap();
        f.add_param("from", "2026-01-01T01:00:00+01:00", &t)
            .unwrap();
        let e = f.add_param("from", "2026-02-01T00:00:00Z", &t).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("from", "not_repeatable"));
        let e = EventFilter::from_json(
            &serde_json::json!({"to": ["2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"]}),
            &t,
        )
        .unwrap_err();
        let e = field_error(e);
        assert_eq!((e.field.as_str(), e.rule), ("filters.to", "not_repeatable"));
    }

    #[test]
    fn filter_json_round_trips() {
        let t = Taxonomy::default();
        let v = serde_json::json!({"event_type": ["Test Case", "element"], "project": "Checkout", "from": "2026-01-01T00:00:00Z"});
        let f = EventFilter::from_json(&v, &t).unwrap();
        assert_eq!(EventFilter::from_json(&f.to_json(), &t).unwrap(), f);
        assert_eq!(
            field_error(
                EventFilter::from_json(&serde_json::json!({"limit": "5"}), &t).unwrap_err()
            )
            .field,
            "filters.limit"
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-11-26 is a Thursday; its week starts Monday 2026-11-23.
        let t = Timestamp::parse("t", "2026-11-26T10:00:00Z").unwrap();
        assert_eq!(
            Interval::Week.bucket_start(t).to_rfc3339(),
            "2026-11-23T00:00:00.000000Z"
        );
        assert_eq!(
            Interval::Day.bucket_start(t).to_rfc3339(),
            "2026-11-26T00:00:00.000000Z"
        );
    }

    /// U+0000 in a filter value is refused naming the parameter, in query
    /// parameters and in an export's `filters` alike (an export's filters go
    /// into its audit event, which would otherwise fail to store: a 500).
    #[test]
    fn a_nul_in_a_filter_value_is_refused_naming_it() {
        let taxonomy = Taxonomy::default();
        let mut filter = EventFilter::default();
        let e = filter.add_param("app", "W\0eb", &taxonomy).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("app", "contains_nul"));
        let e = EventFilter::from_json(
            &serde_json::json!({"project": ["ok", "b\u{0}d"]}),
            &taxonomy,
        )
        .unwrap_err();
        let e = field_error(e);
        assert_eq!(
            (e.field.as_str(), e.rule),
            ("filters.project", "contains_nul")
        );
    }
}
