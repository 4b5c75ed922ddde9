//! Deterministic sample events for tests: the conformance cases, the group
//! commit's tests and the backends' own. A leaf module, so that a test
//! inside the crate can use them without using `conformance`.

use auditlog_core::event::{Actor, Target};
use auditlog_core::{NewEvent, Taxonomy, Timestamp};

/// The time of the first sample event (2025-11-24); the cases place their own around it.
pub const BASE: i64 = 1_764_000_000_000_000;

/// A deterministic spread of events over types, actions, users, projects and time.
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
            NewEvent {
                id: format!("{id_prefix}{i}"),
                // Several events share a time, so that ties are broken by seq.
                time: Timestamp::from_micros(BASE + (i as i64 / 3) * 3_600_000_000),
                time_given: true,
                event_type: rule.name.clone(),
                action: action.clone(),
                actor: Actor {
                    id: format!("u-{}", i % 7),
                    name: Some(format!("User {}", i % 7)),
                    email: None,
                },
                project: (i % 5 != 0).then(|| format!("P{}", i % 4)),
                app: Some(format!("A{}", i % 2)),
                version: Some(format!("{}.0", i % 3)),
                target: Some(Target {
                    id: Some(format!("T-{}", i % 11)),
                    name: None,
                }),
                details: None,
                context: None,
            }
        })
        .collect()
}
