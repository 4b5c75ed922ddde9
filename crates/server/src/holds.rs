//! Legal holds matched against stored events (SPEC "Retention, legal holds,
//! erasure"): what pruning and erasure ask before they remove anything. A
//! hold's filters are the query filters (an export's `filters` JSON; `from`
//! and `to` mean the event's `time`) matched by `EventFilter::matches`, and
//! its `q` a search query matched by the reference `Query::matches`, so a
//! hold keeps exactly the events the same filters list.

use auditlog_core::leaf_v2::Source;
use auditlog_core::search::{Query, Zone};
use auditlog_core::{EventFilter, FieldError, StoredRecord, Taxonomy};
use auditlog_store::{Hold, HoldId};

/// One active hold, ready to match.
#[derive(Debug, Clone)]
pub struct HoldMatcher {
    pub id: HoldId,
    pub name: String,
    filter: EventFilter,
    query: Option<Query>,
}

/// Why a hold's stored filters no longer read (a taxonomy changed under
/// them); such a hold matches every event, so that nothing it may have
/// meant is removed.
#[derive(Debug, thiserror::Error)]
#[error("legal hold {name:?}: {reason}")]
pub struct UnreadableHold {
    pub name: String,
    pub reason: String,
}

impl HoldMatcher {
    /// The filters of `hold`, read against the account's taxonomy (with
    /// Auditlog's own types, which filters may name).
    pub fn new(hold: &Hold, taxonomy: &Taxonomy) -> Result<Self, FieldError> {
        let filter = EventFilter::from_json(&hold.filters, &taxonomy.with_own_types()).map_err(
            |e| match e {
                auditlog_core::filter::FilterError::Field(f) => f,
                auditlog_core::filter::FilterError::Query(q) => {
                    FieldError::new("filters.q", "bad_query", format!("q does not parse: {q}"))
                }
            },
        )?;
        filter.check()?;
        let query = match &hold.q {
            Some(text) => {
                let zone = Zone::parse(&hold.tz)?;
                Some(Query::parse(text, &zone).map_err(|e| {
                    FieldError::new("q", "bad_query", format!("q does not parse: {e}"))
                })?)
            }
            None => None,
        };
        Ok(Self {
            id: hold.id,
            name: hold.name.clone(),
            filter,
            query,
        })
    }

    /// A hold whose filters no longer read: it matches everything.
    fn everything(hold: &Hold) -> Self {
        Self {
            id: hold.id,
            name: hold.name.clone(),
            filter: EventFilter::default(),
            query: None,
        }
    }

    /// Whether the hold keeps this event. An event whose body does not read
    /// is kept (verify will name it; removing it would hide that).
    pub fn matches(&self, record: &StoredRecord<'_>) -> bool {
        let Ok(event) = record.stored_event() else {
            return true;
        };
        if !self.filter.matches(event.event()) {
            return false;
        }
        match &self.query {
            None => true,
            Some(query) => {
                let source = record
                    .served_map()
                    .ok()
                    .and_then(|m| m.get("source").and_then(Source::from_json));
                query.matches(&event, source.as_ref())
            }
        }
    }
}

/// The active holds of an account, to ask of each event considered.
#[derive(Debug, Clone, Default)]
pub struct ActiveHolds {
    pub holds: Vec<HoldMatcher>,
}

impl ActiveHolds {
    /// Matchers for `holds` (the active ones); a hold that no longer reads
    /// matches everything, and is reported in the second list.
    pub fn new(holds: &[Hold], taxonomy: &Taxonomy) -> (Self, Vec<UnreadableHold>) {
        let mut unreadable = Vec::new();
        let holds = holds
            .iter()
            .filter(|h| h.is_active())
            .map(|hold| {
                HoldMatcher::new(hold, taxonomy).unwrap_or_else(|e| {
                    unreadable.push(UnreadableHold {
                        name: hold.name.clone(),
                        reason: e.message,
                    });
                    HoldMatcher::everything(hold)
                })
            })
            .collect();
        (Self { holds }, unreadable)
    }

    /// The holds that keep this event (empty: it may be removed).
    pub fn holding<'h>(&'h self, record: &StoredRecord<'_>) -> Vec<&'h HoldMatcher> {
        self.holds.iter().filter(|h| h.matches(record)).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.holds.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::{NewEvent, StoredEvent, Timestamp};
    use serde_json::json;

    fn hold(filters: serde_json::Value, q: Option<&str>) -> Hold {
        Hold {
            id: 1,
            account_id: 1,
            name: "case".into(),
            reason: "r".into(),
            filters,
            q: q.map(str::to_string),
            tz: "UTC".into(),
            created_by: "x".into(),
            created_at: Timestamp::now(),
            released_by: None,
            released_at: None,
        }
    }

    fn leaf(body: serde_json::Value) -> Vec<u8> {
        let now = Timestamp::parse("now", "2026-12-01T10:00:00Z").unwrap();
        let event = NewEvent::parse(&body, &Taxonomy::default(), now).unwrap();
        StoredEvent::new("acme", 3, now, event).leaf_bytes()
    }

    #[test]
    fn filters_and_q_decide_together_and_times_are_the_events() {
        let taxonomy = Taxonomy::default();
        let bytes = leaf(json!({"event_type": "Test Case", "action": "Update",
            "time": "2026-11-02T08:00:00Z", "actor": {"id": "u-7", "name": "Ada"},
            "project": "Checkout"}));
        let record = StoredRecord::new(&bytes, None);
        let cases = [
            (json!({}), None, true),
            (json!({"user": ["u-7"]}), None, true),
            (json!({"user": ["u-8"]}), None, false),
            (
                json!({"from": "2026-11-01T00:00:00Z", "to": "2026-11-03T00:00:00Z"}),
                None,
                true,
            ),
            (json!({"from": "2026-11-30T00:00:00Z"}), None, false),
            (json!({}), Some("project:Checkout ada"), true),
            (json!({}), Some("-type:\"Test Case\""), false),
            (
                json!({"project": ["Checkout"]}),
                Some("action:Delete"),
                false,
            ),
        ];
        for (filters, q, want) in cases {
            let matcher = HoldMatcher::new(&hold(filters.clone(), q), &taxonomy).unwrap();
            assert_eq!(matcher.matches(&record), want, "{filters} {q:?}");
        }
    }

    #[test]
    fn a_hold_that_no_longer_reads_keeps_everything() {
        let taxonomy = Taxonomy::default();
        let broken = hold(json!({"event_type": ["Gone Type"]}), None);
        let (active, unreadable) = ActiveHolds::new(&[broken], &taxonomy);
        assert_eq!(unreadable.len(), 1);
        let bytes =
            leaf(json!({"event_type": "Element", "action": "Create", "actor": {"id": "u"}}));
        assert_eq!(active.holding(&StoredRecord::new(&bytes, None)).len(), 1);
    }
}
