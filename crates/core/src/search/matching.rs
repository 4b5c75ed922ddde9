//! The reference semantics of a [`Query`]: what the backends' SQL must
//! agree with (the table in `cases` and the property tests compare them).

use super::words::holds_phrase;
use super::{Phrase, Query, SourceValue, Term, Test, TextKey, TextValue};
use crate::leaf_v2::Source;
use crate::record::{RecordError, StoredRecord};
use crate::StoredEvent;
use serde_json::{Map, Value};
use std::net::IpAddr;

impl Query {
    /// Whether `event`, stored on behalf of `source` (`None` for events
    /// whose leaf records no source), passes every term.
    pub fn matches(&self, event: &StoredEvent, source: Option<&Source>) -> bool {
        self.terms.iter().all(|t| t.matches(event, source))
    }

    /// [`matches`](Self::matches) of a stored record: its event with the
    /// plain personal values, and the `source` its leaf records (a version
    /// 1 leaf records none). What the backends confirm candidates with.
    pub fn matches_record(&self, record: &StoredRecord<'_>) -> Result<bool, RecordError> {
        if self.is_empty() {
            return Ok(true);
        }
        let served = record.served_map()?;
        let source = served.get("source").and_then(Source::from_json);
        let event = StoredEvent::from_json_map(&served)?;
        Ok(self.matches(&event, source.as_ref()))
    }
}

impl Term {
    /// The test holds, or, negated, does not (so a negated term holds when
    /// the field is absent or different).
    pub fn matches(&self, event: &StoredEvent, source: Option<&Source>) -> bool {
        self.test.holds(event, source) != self.negated
    }
}

impl Term {
    /// Whether the term holds for an event whose field of this text key
    /// is `field` (`None`: absent); `None` for a term that is not on a text
    /// key. What a backend evaluates over its dictionary of values (event
    /// types and actions, projects, apps and versions, actor ids) to turn a
    /// term into the ids it accepts.
    pub fn holds_on_text(&self, field: Option<&str>) -> Option<bool> {
        let Test::Text { key, values } = &self.test else {
            return None;
        };
        let holds = field.is_some_and(|field| {
            values
                .iter()
                .any(|v| text_matches(v, field, key.case_insensitive()))
        });
        Some(holds != self.negated)
    }
}

impl Test {
    /// Whether the field is present and one of the values matches it.
    pub fn holds(&self, stored: &StoredEvent, source: Option<&Source>) -> bool {
        let event = stored.event();
        match self {
            Test::Text { key, values } => {
                let fields = text_fields(key, stored);
                fields.iter().any(|field| {
                    values
                        .iter()
                        .any(|v| text_matches(v, field, key.case_insensitive()))
                })
            }
            Test::Ip(nets) => event
                .context()
                .and_then(|c| c.ip.as_deref())
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .is_some_and(|ip| nets.iter().any(|n| n.contains(ip))),
            Test::Source(values) => source.is_some_and(|s| {
                values.iter().any(|v| match (v, s) {
                    (SourceValue::ApiKey, Source::ApiKey { .. }) => true,
                    (SourceValue::Console, Source::Console { .. }) => true,
                    (SourceValue::System, Source::System) => true,
                    (SourceValue::Key(want), Source::ApiKey { key, .. }) => want == key,
                    _ => false,
                })
            }),
            Test::Time(ranges) => ranges.iter().any(|r| {
                r.from.is_none_or(|f| event.time() >= f) && r.to.is_none_or(|t| event.time() <= t)
            }),
            Test::Seq(ranges) => ranges.iter().any(|r| {
                r.from.is_none_or(|f| stored.seq() >= f) && r.to.is_none_or(|t| stored.seq() <= t)
            }),
            Test::Words(phrase) => free_text_values(stored)
                .iter()
                .any(|value| phrase_in(phrase, value)),
        }
    }
}

fn phrase_in(phrase: &Phrase, value: &str) -> bool {
    holds_phrase(value, &phrase.words, phrase.prefix)
}

fn text_matches(v: &TextValue, field: &str, case_insensitive: bool) -> bool {
    if case_insensitive {
        let (want, have) = (v.text.to_ascii_lowercase(), field.to_ascii_lowercase());
        if v.prefix {
            have.starts_with(&want)
        } else {
            have == want
        }
    } else if v.prefix {
        field.starts_with(v.text.as_str())
    } else {
        field == v.text
    }
}

/// The values a text key compares with (none when the field is absent).
pub fn text_fields(key: &TextKey, stored: &StoredEvent) -> Vec<String> {
    let event = stored.event();
    let one = |v: Option<&str>| v.map(str::to_string).into_iter().collect::<Vec<_>>();
    let target = event.target();
    match key {
        TextKey::Type => one(Some(event.event_type())),
        TextKey::Action => one(Some(event.action())),
        TextKey::User => one(Some(&event.actor().id)),
        TextKey::ActorName => one(event.actor().name.as_deref()),
        TextKey::ActorEmail => one(event.actor().email.as_deref()),
        TextKey::Project => one(event.project()),
        TextKey::App => one(event.app()),
        TextKey::Version => one(event.version()),
        TextKey::Target => one(target.and_then(|t| t.id.as_deref())),
        TextKey::TargetName => one(target.and_then(|t| t.name.as_deref())),
        TextKey::Id => one(Some(event.id())),
        TextKey::Changed => event
            .details()
            .and_then(|d| d.get("changes"))
            .and_then(Value::as_array)
            .map(|changes| {
                changes
                    .iter()
                    .filter_map(|c| c.get("field").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        TextKey::Details(path) => details_at(event.details(), path)
            .and_then(value_text)
            .into_iter()
            .collect(),
    }
}

/// The value at a path of member names inside `details`.
fn details_at<'e>(details: Option<&'e Map<String, Value>>, path: &[String]) -> Option<&'e Value> {
    let (first, rest) = path.split_first()?;
    let mut value = details?.get(first)?;
    for member in rest {
        value = value.as_object()?.get(member)?;
    }
    Some(value)
}

/// A string as itself, a number as its canonical JSON text (as the leaf
/// holds it); anything else has no text.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) => String::from_utf8(crate::canonical::to_vec(value)).ok(),
        _ => None,
    }
}

/// The values free text searches, each on its own (a phrase never spans
/// two): the actor's name and email, the target's id and name, project,
/// app, version, and every string inside `details` (at any depth, old and
/// new values of changes included; member names are not searched).
pub fn free_text_values(stored: &StoredEvent) -> Vec<&str> {
    free_text_values_of(stored.event())
}

/// [`free_text_values`] of an event before it is stored (what the writers
/// index in the appending transaction).
pub fn free_text_values_of(event: &crate::NewEvent) -> Vec<&str> {
    let mut values: Vec<&str> = [
        event.actor().name.as_deref(),
        event.actor().email.as_deref(),
        event.target().and_then(|t| t.id.as_deref()),
        event.target().and_then(|t| t.name.as_deref()),
        event.project(),
        event.app(),
        event.version(),
    ]
    .into_iter()
    .flatten()
    .collect();
    fn strings<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
        match value {
            Value::String(s) => out.push(s),
            Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
            Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    if let Some(details) = event.details() {
        details.values().for_each(|v| strings(v, &mut values));
    }
    values
}
