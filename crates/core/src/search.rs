//! Search (SPEC "Search", issue 14): the query language of `q`, parsed into a
//! [`Query`] that the backends translate, printed back in a canonical form,
//! and matched against events by the reference [`Query::matches`].
//!
//! A query is terms separated by white space, all of which must hold. A term
//! is `key:value` (or `key:a,b`, any of the values), `-key:value` (none of
//! them: the field is absent or different), or free text: a word, a prefix
//! `pay*` or a quoted phrase, possibly negated. The grammar, every key and
//! the errors are in docs/SEARCH.md.
//!
//! - `words`: the free-text tokenizer, the one both backends index with.
//! - `time`: time zones (`tz`) and the times and ranges of `time:`.
//! - `parse`, `print`: text to [`Query`] and back.
//! - `matching`: the reference semantics.
//! - `cases`: the table of queries and the events each returns over a fixed
//!   set of events, for this crate's tests and the backends' (tests and the
//!   `test-support` feature only).

use crate::Timestamp;
use std::net::IpAddr;

#[cfg(any(test, feature = "test-support"))]
pub mod cases;
mod matching;
mod parse;
mod print;
pub mod time;
pub mod words;

pub use matching::{free_text_values, free_text_values_of, text_fields};
pub use parse::KEYS;
pub use time::Zone;

/// The longest query, in characters, and the most terms and values it may
/// hold (each value is a bound parameter in the backends' SQL).
pub const MAX_QUERY_CHARS: usize = 4096;
pub const MAX_TERMS: usize = 100;
pub const MAX_VALUES: usize = 1000;

/// A parsed query: every term must hold. Two queries that print the same
/// are equal, and a printed query parses back to itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    terms: Vec<Term>,
}

/// One condition. A term that is not negated holds when the event's field is
/// present and one of `test`'s values matches it; a negated term holds
/// exactly when the same term without `-` does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub negated: bool,
    pub test: Test,
}

/// What a term looks for. The values of a list are alternatives (OR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// A text key: exact values or prefixes.
    Text {
        key: TextKey,
        values: Vec<TextValue>,
    },
    /// `ip:`: addresses and networks.
    Ip(Vec<IpNet>),
    /// `source:`: a kind, or an API key's public id.
    Source(Vec<SourceValue>),
    /// `time:`: instants, inclusive at both ends.
    Time(Vec<Range<Timestamp>>),
    /// `seq:`, inclusive at both ends.
    Seq(Vec<Range<u64>>),
    /// Free text: consecutive words within one value.
    Words(Phrase),
}

/// The keys whose values are text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextKey {
    /// `type`, ASCII case-insensitive.
    Type,
    /// `action`, ASCII case-insensitive.
    Action,
    /// `user`: the actor's id.
    User,
    ActorName,
    ActorEmail,
    Project,
    App,
    Version,
    /// `target`: the entity's id.
    Target,
    TargetName,
    /// `changed`: a `field` named in `details.changes`.
    Changed,
    /// `id`: the event's id.
    Id,
    /// `details.<path>`: the string or number at that path (member names,
    /// at least one), compared as text.
    Details(Vec<String>),
}

/// A text value: the whole value, or (`*` after it) a prefix of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextValue {
    pub text: String,
    pub prefix: bool,
}

/// An address (`prefix_len` its full length) or a network, its host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// A value of `source:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceValue {
    /// `api_key`: every event stored with an API key.
    ApiKey,
    /// `console`: actions of console users.
    Console,
    /// `system`: Auditlog's own background work.
    System,
    /// An API key's public id: events stored with that key.
    Key(String),
}

/// Inclusive bounds; `None` is open. Never empty (`from <= to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range<T> {
    pub from: Option<T>,
    pub to: Option<T>,
}

/// Free text: the words of a bare token or a quoted phrase (at least one,
/// as `words::words` gives them), the last possibly a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    pub words: Vec<String>,
    pub prefix: bool,
}

/// Why a query does not parse: where (0-based, in Unicode code points) and
/// what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("q: at position {position}, expected {expected}")]
pub struct QueryError {
    pub position: usize,
    pub expected: String,
}

impl QueryError {
    /// The `details` of the API's 400 `bad_query`: `{"position", "expected"}`.
    pub fn details(&self) -> serde_json::Value {
        serde_json::json!({"position": self.position, "expected": self.expected})
    }
}

impl Query {
    /// The terms, in the order they were first written; a key written again
    /// (with the same sign) added its values to the first term of that key,
    /// except `time` and `seq`, whose terms are bounds that each must hold.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// Whether the query has no terms (it matches every event).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The query without the terms `leave_out` selects: what is left to
    /// check once a backend has served those terms another way (the
    /// rollups serve `time` terms by the ranges they read).
    pub fn without(&self, leave_out: impl Fn(&Term) -> bool) -> Query {
        Query {
            terms: self
                .terms
                .iter()
                .filter(|term| !leave_out(term))
                .cloned()
                .collect(),
        }
    }
}

impl TextKey {
    /// The key as written in a query.
    pub fn name(&self) -> String {
        match self {
            TextKey::Details(path) => format!("details.{}", path.join(".")),
            other => other.fixed_name().to_string(),
        }
    }

    fn fixed_name(&self) -> &'static str {
        match self {
            TextKey::Type => "type",
            TextKey::Action => "action",
            TextKey::User => "user",
            TextKey::ActorName => "actor.name",
            TextKey::ActorEmail => "actor.email",
            TextKey::Project => "project",
            TextKey::App => "app",
            TextKey::Version => "version",
            TextKey::Target => "target",
            TextKey::TargetName => "target.name",
            TextKey::Changed => "changed",
            TextKey::Id => "id",
            TextKey::Details(_) => "details",
        }
    }

    /// Whether values compare ASCII case-insensitively (as the taxonomy
    /// matches names).
    pub fn case_insensitive(&self) -> bool {
        matches!(self, TextKey::Type | TextKey::Action)
    }
}

impl IpNet {
    /// Whether `addr` lies in this network (an IPv4 network holds IPv4
    /// addresses only, an IPv6 network IPv6 ones).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str, tz: &str) -> String {
        Query::parse(text, &Zone::parse(tz).unwrap())
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .to_string()
    }

    #[test]
    fn queries_print_in_one_canonical_form() {
        for (text, tz, printed) in [
            ("", "UTC", ""),
            (
                "user:a  user:b -user:c -user:d user:a",
                "UTC",
                "user:a,b -user:c,d",
            ),
            (
                "project:\"Payments API\"*",
                "UTC",
                "project:\"Payments API\"*",
            ),
            ("project:\"plain\"", "UTC", "project:plain"),
            (
                "target:\"say \\\"hi\\\"\",\"a\\\\b\",\"a\\b\"",
                "UTC",
                "target:\"say \\\"hi\\\"\",a\\b",
            ),
            ("actor.email:\"\"*", "UTC", "actor.email:\"\"*"),
            ("actor.email:*", "UTC", "actor.email:\"\"*"),
            (
                "ip:10.1.2.3/8,::1,2001:db8::1/32",
                "UTC",
                "ip:10.0.0.0/8,::1,2001:db8::/32",
            ),
            (
                "source:api_key,k-1 source:console",
                "UTC",
                "source:api_key,k-1,console",
            ),
            (
                "time:2026-11-30",
                "Europe/Paris",
                "time:2026-11-29T23:00:00.000000Z..2026-11-30T22:59:59.999999Z",
            ),
            (
                "time:>2026-11-30",
                "UTC",
                "time:>=2026-12-01T00:00:00.000000Z",
            ),
            (
                "time:<2026-11-30T12:00Z",
                "UTC",
                "time:<=2026-11-30T11:59:59.999999Z",
            ),
            (
                "time:2026-11-30T12:00:00.5+01:00",
                "UTC",
                "time:2026-11-30T11:00:00.500000Z",
            ),
            ("seq:>5,<3 seq:7", "UTC", "seq:>=6,<=2 seq:7"),
            (
                "seq:0..18446744073709551615",
                "UTC",
                "seq:0..18446744073709551615",
            ),
            (
                "\"Login  With\" Pay* -ünï-cödé",
                "UTC",
                "\"login with\" pay* -\"ünï cödé\"",
            ),
            ("details.a.b:1", "UTC", "details.a.b:1"),
        ] {
            assert_eq!(canonical(text, tz), printed, "{text:?}");
            assert_eq!(
                canonical(printed, "Pacific/Chatham"),
                printed,
                "{printed:?}"
            );
        }
    }

    #[test]
    fn a_bare_hyphen_is_text_not_negation_and_negation_needs_a_term() {
        let q = Query::parse("-user:a", &Zone::utc()).unwrap();
        assert!(q.terms()[0].negated);
        // A lone "-" has no word in it.
        let e = Query::parse("ada -", &Zone::utc()).unwrap_err();
        assert_eq!(
            (e.position, e.expected.as_str()),
            (4, "a word of letters or digits")
        );
    }

    #[test]
    fn the_limits_are_positions_too() {
        let long = "a ".repeat(MAX_QUERY_CHARS);
        let e = Query::parse(&long, &Zone::utc()).unwrap_err();
        assert_eq!(e.position, MAX_QUERY_CHARS);
        let many = "ada ".repeat(MAX_TERMS + 1);
        let e = Query::parse(&many, &Zone::utc()).unwrap_err();
        assert_eq!(e.position, 4 * MAX_TERMS);
        assert!(e.expected.contains("terms"), "{}", e.expected);
    }

    #[test]
    fn the_error_says_where_and_what() {
        let e = Query::parse("action:Delete user:", &Zone::utc()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "q: at position 19, expected a value after \"user:\""
        );
        assert_eq!(
            e.details(),
            serde_json::json!({"position": 19, "expected": "a value after \"user:\""})
        );
    }
}
