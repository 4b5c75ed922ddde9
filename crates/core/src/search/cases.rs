//! The table of search queries over a fixed set of events, with exactly the
//! events each returns, and of malformed queries with the position and what
//! was expected: the reference `matches` is checked against it here, and
//! the backends, the API, exports and the CLI reuse it (feature
//! `test-support`) so that they all answer the same.
//!
//! The events are stored with `seq` = their number (`e1` has seq 1) in
//! account `acme`; `source` is `None` for `e5` (a version-1 leaf records none).

use crate::leaf_v2::Source;
use crate::{NewEvent, StoredEvent, Taxonomy, Timestamp};
use serde_json::{json, Value};

/// One query, the zone its times are read in, and the ids of the events it
/// returns, in ascending seq order.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub query: &'static str,
    pub tz: &'static str,
    pub expect: &'static [&'static str],
}

/// A malformed query: the position (code points) and a part of `expected`.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCase {
    pub query: &'static str,
    pub position: usize,
    pub expected: &'static str,
}

/// Every event id, for the cases that return all.
pub const ALL: &[&str] = &["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8"];

const fn case(query: &'static str, expect: &'static [&'static str]) -> Case {
    Case {
        query,
        tz: "UTC",
        expect,
    }
}

const fn in_zone(query: &'static str, tz: &'static str, expect: &'static [&'static str]) -> Case {
    Case { query, tz, expect }
}

pub const CASES: &[Case] = &[
    // Nothing to check: every event.
    case("", ALL),
    case("   ", ALL),
    // type and action: case-insensitive, OR lists, prefixes, negation.
    case("type:\"test case\"", &["e1", "e5"]),
    case("type:Element,authentication", &["e2", "e3"]),
    case("type:test*", &["e1", "e4", "e5", "e6", "e8"]),
    case("action:update", &["e1", "e6", "e8"]),
    case("-action:Update", &["e2", "e3", "e4", "e5", "e7"]),
    // user: the key repeated is OR; negated repeats exclude each.
    case("user:u-17", &["e1", "e4"]),
    case("  user:u-17   ", &["e1", "e4"]),
    case("user:u-17 user:u-2", &["e1", "e2", "e4", "e6"]),
    case("-user:u-17 -user:u-2", &["e3", "e5", "e7", "e8"]),
    // actor.name, actor.email: quoting, prefixes, absent fields.
    case("actor.name:\"Alan Turing\"", &["e2", "e6"]),
    case("actor.name:Ada*", &["e1", "e4"]),
    case("actor.name:\"José Álvarez\"", &["e8"]),
    case("actor.email:ada@example.com", &["e1", "e4"]),
    case("-actor.email:*", &["e3", "e7"]),
    // project, app, version: exact unless `*`; negation includes absence.
    case("project:Checkout", &["e1", "e4", "e5"]),
    case("project:\"Payments API\"", &["e2", "e8"]),
    case("project:Pay*", &["e2", "e6", "e8"]),
    case("-project:Checkout", &["e2", "e3", "e6", "e7", "e8"]),
    case("app:Web", &["e1", "e2", "e8"]),
    case("-app:Web", &["e3", "e4", "e5", "e6", "e7"]),
    case("version:2.3", &["e1"]),
    case("version:2.3*", &["e1", "e7"]),
    // target, target.name.
    case("target:TC-10", &["e5"]),
    case("target:TC-10*", &["e1", "e5", "e6"]),
    case("-target:*", &["e3"]),
    case("target.name:\"Login with SSO\"", &["e1"]),
    case("target.name:\"Pay button\",\"Smoke suite\"", &["e2", "e4"]),
    // ip: addresses and networks, IPv4 and IPv6.
    case("ip:10.0.0.0/8", &["e2", "e3", "e6", "e7"]),
    case("ip:10.0.0.9", &["e6"]),
    case("ip:10.0.0.0/24,192.168.0.0/16", &["e6", "e7", "e8"]),
    case("ip:2001:db8::/32", &["e4"]),
    case("-ip:10.0.0.0/8", &["e1", "e4", "e5", "e8"]),
    // changed: a field named in details.changes.
    case("changed:title", &["e1", "e8"]),
    case("changed:loc*", &["e2"]),
    case("-changed:title", &["e2", "e3", "e4", "e5", "e6", "e7"]),
    // details.<path>: strings and numbers as text, nested paths.
    case("details.status:Closed", &["e2"]),
    case("details.status:Open,Closed", &["e2", "e6"]),
    case(
        "-details.status:Open",
        &["e1", "e2", "e3", "e4", "e5", "e7", "e8"],
    ),
    case("details.owner.team:\"Zürich QA\"", &["e4"]),
    case("details.priority:1.5", &["e4"]),
    case("details.attempts:3", &["e3"]),
    case("details.url:https://staging.example.com", &["e7"]),
    case("details.url:\"https://staging.example.com\"", &["e7"]),
    // source: kinds and a key's public id; events without one are absent.
    case("source:api_key", &["e1", "e3", "e6", "e8"]),
    case("source:console,system", &["e2", "e4", "e7"]),
    case("source:k-ci", &["e1", "e6", "e8"]),
    case("-source:api_key", &["e2", "e4", "e5", "e7"]),
    // id.
    case("id:e1,e3", &["e1", "e3"]),
    case("id:e*", ALL),
    // seq ranges.
    case("seq:>6", &["e7", "e8"]),
    case("seq:2..4", &["e2", "e3", "e4"]),
    case("seq:..2", &["e1", "e2"]),
    case("seq:<=2,>=8", &["e1", "e2", "e8"]),
    case("-seq:2..7", &["e1", "e8"]),
    // time: a date is its whole day, in tz; offsets and instants exact.
    case("time:2026-11-30", &["e3", "e8"]),
    in_zone("time:2026-11-30", "Europe/Paris", &["e8"]),
    case(
        "time:..2026-11-30",
        &["e1", "e2", "e3", "e5", "e6", "e7", "e8"],
    ),
    in_zone("time:<=2026-11-30", "America/New_York", ALL),
    case("time:>2026-11-30", &["e4"]),
    in_zone("time:>2026-11-30", "Europe/Paris", &["e3", "e4"]),
    case("time:<2026-11-25", &["e2", "e5", "e6", "e7"]),
    case(
        "time:>=2026-11-25T14:03:07.123456Z",
        &["e1", "e3", "e4", "e8"],
    ),
    case("time:>2026-11-25T14:03:07.123456Z", &["e3", "e4", "e8"]),
    case("time:2026-11-24T10:00+01:00", &["e2"]),
    in_zone("time:2026-11-24T10:00", "Europe/Paris", &["e2"]),
    case("time:<2026-11-05T12:00", &["e5", "e6", "e7"]),
    case("time:2026-11-01..2026-11-24", &["e2", "e5", "e7"]),
    case(
        "time:>=2026-11-24T00:00:00Z time:<2026-11-26",
        &["e1", "e2"],
    ),
    // 01:30 happens twice in New York on 2026-11-01: the earlier is meant.
    in_zone("time:2026-11-01T01:30", "America/New_York", &["e5"]),
    // 02:30 does not exist in Paris on 2026-03-29: the first instant after the gap.
    in_zone("time:2026-03-29T02:30", "Europe/Paris", &["e6"]),
    in_zone("time:2026-03-29", "Europe/Paris", &["e6"]),
    // Free text: words and prefixes in names, emails, targets, project,
    // app, version and details strings; phrases within one value.
    case("ada", &["e1", "e4"]),
    case("ADA", &["e1", "e4"]),
    case("pay*", &["e2", "e5", "e6", "e8"]),
    case("payment", &["e2", "e5", "e8"]),
    case("payment-gateway", &["e2", "e8"]),
    case("\"login with\"", &["e1"]),
    case("\"with login\"", &[]),
    case("\"login w\"*", &["e1"]),
    case("ada@example.com", &["e1", "e4"]),
    case("zürich", &["e4"]),
    case("ZÜRICH", &["e4"]),
    case("álvarez", &["e8"]),
    case("alvarez", &[]),
    case("emile", &["e5"]),
    case("staging", &["e7"]),
    case("1042", &["e1"]),
    case("u-5", &["e8"]),
    case("-pay*", &["e1", "e3", "e4", "e7"]),
    case(
        "-\"login with\"",
        &["e2", "e3", "e4", "e5", "e6", "e7", "e8"],
    ),
    // Combinations.
    case("type:\"Test Case\" -action:Delete ada", &["e1"]),
    case("project:Checkout -app:Web", &["e4", "e5"]),
    case("pay* source:api_key -target:TD*", &["e6"]),
    case(
        "user:u-2,u-5 time:2026-11-01..2026-11-30 -details.status:Closed",
        &["e8"],
    ),
    in_zone(
        "-type:authentication time:>=2026-11-30 pay*",
        "America/New_York",
        &["e8"],
    ),
];

pub const ERRORS: &[ErrorCase] = &[
    ErrorCase {
        query: "user:",
        position: 5,
        expected: "a value after \"user:\"",
    },
    ErrorCase {
        query: "action:Delete user:",
        position: 19,
        expected: "a value after \"user:\"",
    },
    ErrorCase {
        query: "user:a,",
        position: 7,
        expected: "a value after \",\"",
    },
    ErrorCase {
        query: "ünïcödé user:",
        position: 13,
        expected: "a value after \"user:\"",
    },
    ErrorCase {
        query: "colour:red",
        position: 0,
        expected: "a known key (type, action, user, actor.name",
    },
    ErrorCase {
        query: "project:\"Payments",
        position: 17,
        expected: "a closing quote",
    },
    ErrorCase {
        query: "project:\"Payments\"API",
        position: 18,
        expected: "a comma, a space or the end",
    },
    ErrorCase {
        query: "time:2026-11-31",
        position: 5,
        expected: "a date such as 2026-11-30",
    },
    ErrorCase {
        query: "time:>=2026-11-31",
        position: 7,
        expected: "a date such as 2026-11-30",
    },
    ErrorCase {
        query: "time:2026-11-01..yesterday",
        position: 17,
        expected: "a date such as 2026-11-30",
    },
    ErrorCase {
        query: "time:2026-12-01..2026-11-01",
        position: 5,
        expected: "a range that is not empty",
    },
    ErrorCase {
        query: "time:..",
        position: 5,
        expected: "a start or an end",
    },
    ErrorCase {
        query: "seq:abc",
        position: 4,
        expected: "a seq",
    },
    ErrorCase {
        query: "seq:>18446744073709551615",
        position: 4,
        expected: "a range that is not empty",
    },
    ErrorCase {
        query: "ip:10.0.0.0/33",
        position: 3,
        expected: "a prefix length of at most 32",
    },
    ErrorCase {
        query: "ip:10.0.0.*",
        position: 3,
        expected: "ip has no prefixes",
    },
    ErrorCase {
        query: "ip:example.com",
        position: 3,
        expected: "an IP address",
    },
    ErrorCase {
        query: "target:TC*1",
        position: 9,
        expected: "\"*\" only at the end of a value",
    },
    ErrorCase {
        query: "@@@",
        position: 0,
        expected: "a word of letters or digits",
    },
    ErrorCase {
        query: "ada \"\"",
        position: 4,
        expected: "a word of letters or digits inside the quotes",
    },
    ErrorCase {
        query: "details.:x",
        position: 8,
        expected: "a member name in the details path",
    },
    ErrorCase {
        query: "details:x",
        position: 7,
        expected: "a path after \"details\"",
    },
    ErrorCase {
        query: "ada\"love\"",
        position: 3,
        expected: "a space between terms",
    },
    ErrorCase {
        query: ":ada",
        position: 0,
        expected: "a key such as user or project",
    },
    ErrorCase {
        query: "project:a\u{0}",
        position: 9,
        expected: "a character other than U+0000",
    },
];

/// The fixed events, each with the source it was stored on behalf of.
pub fn events() -> Vec<(StoredEvent, Option<Source>)> {
    let taxonomy = Taxonomy::default();
    let now = Timestamp::from_micros(1_796_515_200_000_000); // 2026-12-06T00:00:00Z
    event_values()
        .into_iter()
        .enumerate()
        .map(|(i, (value, source))| {
            let event = NewEvent::parse(&value, &taxonomy, now)
                .unwrap_or_else(|e| panic!("case event {} is refused: {e:?}", i + 1));
            (StoredEvent::new("acme", i as u64 + 1, now, event), source)
        })
        .collect()
}

/// The fixed events as a client sends them (for tests that send them to a
/// server), each with the source the table assumes.
pub fn event_values() -> Vec<(Value, Option<Source>)> {
    let api_key = |key: &str| {
        Some(Source::ApiKey {
            key: key.into(),
            name: String::new(),
        })
    };
    let console = |user: &str| Some(Source::Console { user: user.into() });
    let rows: Vec<(Value, Option<Source>)> = vec![
        (
            json!({"id": "e1", "time": "2026-11-25T14:03:07.123456Z", "event_type": "Test Case", "action": "Update",
                "actor": {"id": "u-17", "name": "Ada Lovelace", "email": "ada@example.com"},
                "project": "Checkout", "app": "Web", "version": "2.3",
                "target": {"id": "TC-1042", "name": "Login with SSO"},
                "details": {"changes": [{"field": "title", "old": "Login", "new": "Login with SSO"}]},
                "context": {"ip": "203.0.113.7"}}),
            api_key("k-ci"),
        ),
        (
            json!({"id": "e2", "time": "2026-11-24T09:00:00Z", "event_type": "Element", "action": "Delete",
                "actor": {"id": "u-2", "name": "Alan Turing", "email": "alan@example.org"},
                "project": "Payments API", "app": "Web", "version": "3.0",
                "target": {"id": "EL-7", "name": "Pay button"},
                "details": {"changes": [{"field": "locator", "old": "#pay", "new": "button.payment-gateway"}], "status": "Closed"},
                "context": {"ip": "10.1.2.3"}}),
            console("7"),
        ),
        (
            json!({"id": "e3", "time": "2026-11-30T23:30:00Z", "event_type": "Authentication", "action": "Login",
                "actor": {"id": "ci-bot"}, "details": {"attempts": 3}, "context": {"ip": "10.200.0.1"}}),
            api_key("k-bot"),
        ),
        (
            json!({"id": "e4", "time": "2026-12-01T00:30:00Z", "event_type": "Test Suite", "action": "Create",
                "actor": {"id": "u-17", "name": "Ada Lovelace", "email": "ada@example.com"},
                "project": "Checkout", "app": "Mobile", "version": "2.4",
                "target": {"id": "TS-1", "name": "Smoke suite"},
                "details": {"priority": 1.5, "owner": {"team": "Zürich QA"}},
                "context": {"ip": "2001:db8::1"}}),
            Some(Source::System),
        ),
        (
            json!({"id": "e5", "time": "2026-11-01T05:30:00Z", "event_type": "Test Case", "action": "Delete",
                "actor": {"id": "u-3", "name": "Émile Zola", "email": "emile@exemple.fr"},
                "project": "Checkout", "target": {"id": "TC-10", "name": "Payment flow"},
                "details": {"changes": [{"field": "status", "old": "Open", "new": "Closed"}], "note": "payments and refunds"}}),
            None,
        ),
        (
            json!({"id": "e6", "time": "2026-03-29T01:00:00Z", "event_type": "Test Plan", "action": "Update",
                "actor": {"id": "u-2", "name": "Alan Turing", "email": "alan@example.org"},
                "project": "Payments", "target": {"id": "TC-1000", "name": "Refund plan"},
                "details": {"status": "Open"}, "context": {"ip": "10.0.0.9"}}),
            api_key("k-ci"),
        ),
        (
            json!({"id": "e7", "time": "2026-11-01T06:30:00Z", "event_type": "Environment", "action": "Create",
                "actor": {"id": "u-4", "name": "Grace Hopper"},
                "project": "Checkout Web", "version": "2.3.1", "target": {"id": "ENV-1", "name": "staging"},
                "details": {"url": "https://staging.example.com", "count": 12}, "context": {"ip": "10.0.0.10"}}),
            console("8"),
        ),
        (
            json!({"id": "e8", "time": "2026-11-30T12:00:00Z", "event_type": "Test Data", "action": "Update",
                "actor": {"id": "u-5", "name": "José Álvarez", "email": "jose@example.com"},
                "project": "Payments API", "app": "Web", "target": {"id": "TD-5", "name": "payment-gateway fixtures"},
                "details": {"changes": [{"field": "title", "old": "Gateway data", "new": "payment-gateway fixtures"},
                                        {"field": "owner", "old": "u-2", "new": "u-5"}]},
                "context": {"ip": "192.168.1.20"}}),
            api_key("k-ci"),
        ),
    ];
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{Query, Zone};

    #[test]
    fn the_reference_matches_returns_exactly_each_cases_events() {
        let events = events();
        assert!(CASES.len() >= 40);
        let mut failures = Vec::new();
        for case in CASES {
            let zone = Zone::parse(case.tz).unwrap();
            let query = Query::parse(case.query, &zone)
                .unwrap_or_else(|e| panic!("{:?} does not parse: {e}", case.query));
            let got: Vec<&str> = events
                .iter()
                .filter(|(e, s)| query.matches(e, s.as_ref()))
                .map(|(e, _)| e.event().id())
                .collect();
            if got != case.expect {
                failures.push(format!(
                    "{:?} (tz {}): got {got:?}, expected {:?}",
                    case.query, case.tz, case.expect
                ));
            }
            // The canonical form means the same in any zone.
            let printed = query.to_string();
            let again = Query::parse(&printed, &Zone::parse("Asia/Kolkata").unwrap())
                .unwrap_or_else(|e| {
                    panic!("{printed:?} (of {:?}) does not parse: {e}", case.query)
                });
            assert_eq!(again, query, "{printed:?} of {:?}", case.query);
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn each_malformed_query_names_the_position_and_what_was_expected() {
        let mut failures = Vec::new();
        for case in ERRORS {
            match Query::parse(case.query, &Zone::utc()) {
                Ok(q) => failures.push(format!("{:?} parsed as {q}", case.query)),
                Err(e) => {
                    if e.position != case.position || !e.expected.contains(case.expected) {
                        failures.push(format!(
                            "{:?}: got {} {:?}, expected {} {:?}",
                            case.query, e.position, e.expected, case.position, case.expected
                        ));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
