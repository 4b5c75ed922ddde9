//! Which filters the per-day rollups that both backends keep can answer
//! (SQLite's and PostgreSQL's `rollups.rs`): only the columns a rollup is
//! keyed by, in the parameters and in `q`, times that make at most
//! `day_ranges::MAX_RANGES` ranges, and buckets made of whole days. Pure,
//! so that the two backends cannot disagree on when they read the rollups.

use crate::day_ranges;
use auditlog_core::search::{Term, Test, TextKey};
use auditlog_core::{EventFilter, Interval};

/// Whether the rollups can answer `filter` at `interval`: by type, action
/// and project ([`by_texts`]), by actor ([`by_actor`]), or by actor and
/// kind ([`by_actor_and_kind`]).
pub fn applies(filter: &EventFilter, interval: Interval) -> bool {
    rollup_shaped(filter, interval)
        && (by_texts(filter) || by_actor(filter) || by_actor_and_kind(filter))
}

/// Whole-day buckets, no parameter a rollup is not keyed by, and times
/// that make few ranges.
fn rollup_shaped(filter: &EventFilter, interval: Interval) -> bool {
    matches!(interval, Interval::Day | Interval::Week)
        && filter.app.is_none()
        && filter.version.is_none()
        && filter.target_id.is_none()
        && day_ranges::time_ranges(filter).is_some()
}

/// Whether the rollup by event type, action and project holds `filter`'s
/// columns: no user selected.
pub fn by_texts(filter: &EventFilter) -> bool {
    filter.users.is_empty() && filter.query.terms().iter().all(served)
}

/// Whether the rollup by actor serves `filter`: it selects users
/// (parameters or `user` terms) and, besides them, only times. A user
/// combined with an event type, action or project needs the events (the
/// rollup is keyed by actor and day only).
pub fn by_actor(filter: &EventFilter) -> bool {
    let terms = filter.query.terms();
    (!filter.users.is_empty() || terms.iter().any(on_user))
        && filter.event_types.is_empty()
        && filter.actions.is_empty()
        && filter.projects.is_empty()
        && terms
            .iter()
            .all(|t| on_user(t) || matches!(t.test, Test::Time(_)))
}

/// Whether the rollup by actor, day and kind serves `filter`: it selects
/// users and, besides them, only event types, actions and times (no
/// project: the kind is `[type, action]`).
pub fn by_actor_and_kind(filter: &EventFilter) -> bool {
    let terms = filter.query.terms();
    (!filter.users.is_empty() || terms.iter().any(on_user))
        && filter.projects.is_empty()
        && terms
            .iter()
            .all(|t| on_user(t) || on_kind(t) || matches!(t.test, Test::Time(_)))
}

/// Whether `term` is a `type` or `action` term.
pub fn on_kind(term: &Term) -> bool {
    matches!(
        &term.test,
        Test::Text {
            key: TextKey::Type | TextKey::Action,
            ..
        }
    )
}

/// Whether `term` is a `user` term (negated or not, lists, prefixes).
pub fn on_user(term: &Term) -> bool {
    matches!(
        &term.test,
        Test::Text {
            key: TextKey::User,
            ..
        }
    )
}

/// Whether the rollups serve a term of `q` exactly: a text term on a
/// column they are keyed by, or a time term.
fn served(term: &Term) -> bool {
    match &term.test {
        Test::Text { key, .. } => {
            matches!(key, TextKey::Type | TextKey::Action | TextKey::Project)
        }
        Test::Time(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::search::{Query, Zone};

    fn filter(q: &str) -> EventFilter {
        EventFilter {
            query: Query::parse(q, &Zone::utc()).unwrap(),
            ..EventFilter::default()
        }
    }

    #[test]
    fn rollup_columns_and_times_are_served_and_other_terms_are_not() {
        for served in [
            "type:a* -action:b project:P0,P1 time:2026-01-01..2026-01-05",
            "-project:P*",
            "user:u-1,u-2 -time:2026-01-03",
            "-user:u-1",
            "time:>2026-01-01",
        ] {
            assert!(applies(&filter(served), Interval::Day), "{served}");
            assert!(applies(&filter(served), Interval::Week), "{served}");
            assert!(!applies(&filter(served), Interval::Hour), "{served}");
        }
        for not in [
            "type:a user:u-1 project:P",
            "-app:Web",
            "version:2*",
            "target:T-1",
            "id:e1",
            "pay*",
            "seq:>5",
            "actor.name:Ada",
        ] {
            assert!(!applies(&filter(not), Interval::Day), "{not}");
        }
        let mut users_and_project = filter("");
        users_and_project.users = vec!["u-1".into()];
        assert!(applies(&users_and_project, Interval::Day));
        users_and_project.projects = vec!["P0".into()];
        assert!(!applies(&users_and_project, Interval::Day));
        // More disjoint time ranges than the rollups read (17 days apart).
        let mut days: Vec<String> = (0..16)
            .map(|d| format!("2026-01-{:02}", 1 + 2 * d))
            .collect();
        days.push("2026-02-02".into());
        assert!(!applies(
            &filter(&format!("time:{}", days.join(","))),
            Interval::Day
        ));
        let mut app = filter("type:a");
        app.app = Some("Web".into());
        assert!(!applies(&app, Interval::Day));
    }

    #[test]
    fn users_with_types_and_actions_are_served_by_the_actor_kind_rollup_only() {
        for served in [
            "type:a user:u-1",
            "type:\"Test Case\" -action:Update -user:u-1",
            "action:Login,Logout -user:u-1,u-2 time:2026-01-01..2026-01-07",
            "user:u-* -type:a*",
        ] {
            let f = filter(served);
            assert!(!by_texts(&f) && !by_actor(&f), "{served}");
            assert!(by_actor_and_kind(&f), "{served}");
            assert!(applies(&f, Interval::Day), "{served}");
            assert!(applies(&f, Interval::Week), "{served}");
            assert!(!applies(&f, Interval::Hour), "{served}");
        }
        // What the other rollups serve is not the actor and kind one's.
        for other in ["type:a", "project:P time:2026-01-01"] {
            assert!(applies(&filter(other), Interval::Day), "{other}");
            assert!(!by_actor_and_kind(&filter(other)), "{other}");
        }
        for not in [
            "user:u-1 project:P",
            "user:u-1 type:a -app:Web",
            "user:u-1 type:a pay*",
            "user:u-1 action:Create target:T-1",
        ] {
            assert!(!applies(&filter(not), Interval::Day), "{not}");
        }
        let mut parameters = filter("action:Create");
        parameters.users = vec!["u-1".into()];
        parameters.event_types = vec!["a".into()];
        assert!(applies(&parameters, Interval::Day));
        parameters.projects = vec!["P0".into()];
        assert!(!applies(&parameters, Interval::Day));
    }
}
