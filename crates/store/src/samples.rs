//! Deterministic sample events for tests: the conformance cases, the group
//! commit's tests and the backends' own. A leaf module, so that a test
//! inside the crate can use them without using `conformance`.

use auditlog_core::{NewEvent, Taxonomy, Timestamp};
use serde_json::{json, Map, Value};

/// The time of the first sample event (2025-11-24); the cases place their own around it.
pub const BASE: i64 = 1_764_000_000_000_000;
/// The receipt time the sample events are checked against: fixed, long after
/// every sample's `time`, so that the samples are the same on every run.
const RECEIPT: i64 = BASE + 10 * 365 * 86_400_000_000;

/// A deterministic spread of events over types, actions, users, projects and
/// time. Each goes through `NewEvent::parse`, so the suite stores only events
/// a client could have sent.
pub fn sample_events(n: usize, id_prefix: &str) -> Vec<NewEvent> {
    let taxonomy = Taxonomy::default();
    let types: Vec<_> = taxonomy
        .types
        .iter()
        .filter(|t| t.name != "Audit Log")
        .collect();
    (0..n)
        .map(|i| {
            let rule = types[i % types.len()];
            let action = &rule.actions[(i / types.len()) % rule.actions.len()];
            // Several events share a time, so that ties are broken by seq.
            let time = Timestamp::from_micros(BASE + (i as i64 / 3) * 3_600_000_000);
            let mut event = json!({
                "id": format!("{id_prefix}{i}"),
                "time": time.to_rfc3339(),
                "event_type": rule.name,
                "action": action,
                "actor": {"id": format!("u-{}", i % 7), "name": format!("User {}", i % 7)},
                "app": format!("A{}", i % 2),
                "version": format!("{}.0", i % 3),
                "target": {"id": format!("T-{}", i % 11)},
            });
            if i % 5 != 0 {
                event["project"] = json!(format!("P{}", i % 4));
            }
            checked(&event)
        })
        .collect()
}

/// `event` with its JSON changed by `edit`, checked again by the parser.
pub fn edited(event: &NewEvent, edit: impl FnOnce(&mut Map<String, Value>)) -> NewEvent {
    let mut json = event.to_json_map();
    edit(&mut json);
    checked(&Value::Object(json))
}

fn checked(event: &Value) -> NewEvent {
    NewEvent::parse(event, &Taxonomy::default(), Timestamp::from_micros(RECEIPT))
        .unwrap_or_else(|errors| panic!("a sample event is invalid: {errors:?}\n{event}"))
}

/// A deterministic random source for the backends' randomised tests
/// (xorshift64*): a failure replays from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
