//! Text to [`Query`]: `winnow` parsers read each term as written (`raw_term`:
//! key and values, quotes and escapes, `*`, `-`), then the rules of its key
//! are checked (`Reader`), term by term, so that the first error in the
//! query is the one reported, at the position (in code points) where the
//! query goes wrong.
//!
//! ```text
//! query   = ws* (term (ws+ term)*)? ws*
//! term    = "-"? (field | phrase | bare)
//! field   = key ":" value ("," value)*
//! key     = one of KEYS, or "details." name ("." name)*
//! value   = quoted "*"? | plain
//! quoted  = '"' (char except '"' and '\' | '\"' | '\\')* '"'
//! plain   = (char except white space, ',' and '"')+      a final '*' is a prefix
//! phrase  = quoted "*"?
//! bare    = (char except white space, '"' and ':')+       a final '*' is a prefix
//! ```

use super::time::{Civil, FIRST_MICROS, LAST_MICROS};
use super::words::words;
use super::{
    IpNet, Phrase, Query, QueryError, Range, SourceValue, Term, Test, TextKey, TextValue, Zone,
    MAX_QUERY_CHARS, MAX_TERMS, MAX_VALUES,
};
use crate::Timestamp;
use std::borrow::Cow;
use std::net::IpAddr;
use winnow::combinator::{alt, cut_err, eof, opt, peek, preceded, repeat, terminated};
use winnow::error::{ErrMode, ModalResult, ParserError};
use winnow::token::{any, none_of, one_of, take_while};
use winnow::Parser;

impl Query {
    /// Parses `text`; times without an offset are read in `zone`. (Here,
    /// beside the parser, so that `search` itself does not use this module.)
    pub fn parse(text: &str, zone: &Zone) -> Result<Self, QueryError> {
        query(text, zone)
    }
}

/// Every key, as an unknown key's error lists them.
pub const KEYS: &str = "type, action, user, actor.name, actor.email, project, app, version, \
target, target.name, ip, changed, details.<path>, source, time, seq, id";

/// Where the query goes wrong, as the length of what is left of it there
/// (`winnow` reads `&str` from the front), and what was expected.
#[derive(Debug)]
struct Fail {
    left: usize,
    expected: String,
}

impl ParserError<&str> for Fail {
    type Inner = Self;

    fn from_input(input: &&str) -> Self {
        Fail {
            left: input.len(),
            expected: String::new(),
        }
    }

    fn into_inner(self) -> Result<Self, Self> {
        Ok(self)
    }
}

type Lexed<T> = ModalResult<T, Fail>;
type Parsed<T> = Result<T, Fail>;

/// A committed error (no other reading is tried) `left` bytes before the end.
fn cut<T>(left: usize, expected: impl Into<String>) -> Lexed<T> {
    Err(ErrMode::Cut(Fail {
        left,
        expected: expected.into(),
    }))
}

/// A value as written: its text (unescaped), whether `*` followed, and
/// where it starts (bytes left of the query there).
struct Written<'q> {
    text: Cow<'q, str>,
    prefix: bool,
    left: usize,
}

/// A term as written, before its key's rules are checked.
enum Raw<'q> {
    Field {
        key: &'q str,
        left: usize,
        values: Vec<Written<'q>>,
    },
    /// Free text: quoted, or bare (then `quoted` is false).
    Text { value: Written<'q>, quoted: bool },
}

fn is_plain(c: char) -> bool {
    !c.is_whitespace() && c != ',' && c != '"'
}

fn is_key(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, ':' | '"' | ',' | '*')
}

/// `"…"` with `\"` and `\\` (any other backslash is itself).
fn quoted(input: &mut &str) -> Lexed<String> {
    '"'.parse_next(input)?;
    let text = repeat(
        0..,
        alt((preceded('\\', one_of(['"', '\\'])), none_of(['"']))),
    )
    .fold(String::new, |mut text, c| {
        text.push(c);
        text
    })
    .parse_next(input)?;
    if opt('"').parse_next(input)?.is_none() {
        return cut(input.len(), "a closing quote (\")");
    }
    Ok(text)
}

fn star(input: &mut &str) -> Lexed<bool> {
    Ok(opt('*').parse_next(input)?.is_some())
}

/// One value of a list: quoted (with a `*` after it, if any), or plain.
fn value<'q>(after: &str) -> impl FnMut(&mut &'q str) -> Lexed<Written<'q>> + '_ {
    move |input: &mut &'q str| {
        let left = input.len();
        if peek(opt('"')).parse_next(input)?.is_some() {
            let text = quoted(input)?;
            let prefix = star(input)?;
            if peek(opt(one_of(is_plain))).parse_next(input)?.is_some() {
                return cut(
                    input.len(),
                    "a comma, a space or the end of the query after the closing quote",
                );
            }
            return Ok(Written {
                text: Cow::Owned(text),
                prefix,
                left,
            });
        }
        let plain: &str = take_while(0.., is_plain).parse_next(input)?;
        if plain.is_empty() {
            return cut(left, format!("a value after {after}"));
        }
        let (text, prefix) = match plain.strip_suffix('*') {
            Some(text) => (text, true),
            None => (plain, false),
        };
        if let Some(at) = text.find('*') {
            return cut(
                left - at,
                "\"*\" only at the end of a value (quote a value that holds \"*\")",
            );
        }
        Ok(Written {
            text: Cow::Borrowed(text),
            prefix,
            left,
        })
    }
}

/// `key:value,value…`, free text in quotes, or a bare token; after it,
/// white space or the end.
fn raw_term<'q>(input: &mut &'q str) -> Lexed<(bool, Raw<'q>)> {
    let negated = opt(terminated('-', peek(none_of(char::is_whitespace))))
        .parse_next(input)?
        .is_some();
    let left = input.len();
    let raw = if peek(opt('"')).parse_next(input)?.is_some() {
        let text = quoted(input)?;
        let prefix = star(input)?;
        Raw::Text {
            value: Written {
                text: Cow::Owned(text),
                prefix,
                left,
            },
            quoted: true,
        }
    } else if let Some(key) = opt(terminated(take_while(1.., is_key), ':')).parse_next(input)? {
        let mut values = vec![value(&format!("\"{key}:\"")).parse_next(input)?];
        let more: Vec<Written<'q>> =
            repeat(0.., preceded(',', cut_err(value("\",\"")))).parse_next(input)?;
        values.extend(more);
        Raw::Field { key, left, values }
    } else {
        let bare: &str = take_while(0.., |c: char| !c.is_whitespace() && c != '"' && c != ':')
            .parse_next(input)?;
        if peek(opt(':')).parse_next(input)?.is_some() {
            return cut(
                input.len(),
                "a key such as user or project before \":\" (quote text that holds \":\")",
            );
        }
        let (text, prefix) = match bare.strip_suffix('*') {
            Some(text) => (text, true),
            None => (bare, false),
        };
        Raw::Text {
            value: Written {
                text: Cow::Borrowed(text),
                prefix,
                left,
            },
            quoted: false,
        }
    };
    if peek(opt(alt((
        eof.void(),
        any.verify(|c: &char| c.is_whitespace()).void(),
    ))))
    .parse_next(input)?
    .is_none()
    {
        return cut(input.len(), "a space between terms");
    }
    Ok((negated, raw))
}

struct Reader<'q> {
    full: &'q str,
    zone: &'q Zone,
}

pub(super) fn query(text: &str, zone: &Zone) -> Result<Query, QueryError> {
    let reader = Reader { full: text, zone };
    reader.query().map_err(|f| {
        let at = text.len().saturating_sub(f.left);
        QueryError {
            // Every position is at a character's start; counting the
            // characters before it never splits one.
            position: text.char_indices().take_while(|(i, _)| *i < at).count(),
            expected: f.expected,
        }
    })
}

fn fail<T>(left: usize, expected: impl Into<String>) -> Parsed<T> {
    Err(Fail {
        left,
        expected: expected.into(),
    })
}

impl<'q> Reader<'q> {
    fn query(&self) -> Parsed<Query> {
        let left = |at: usize| self.full.len() - at;
        if let Some(at) = self.full.find('\0') {
            return fail(left(at), "a character other than U+0000");
        }
        if let Some((at, _)) = self.full.char_indices().nth(MAX_QUERY_CHARS) {
            return fail(
                left(at),
                format!("the end of the query (at most {MAX_QUERY_CHARS} characters)"),
            );
        }
        let mut input = self.full;
        let mut query = Query::default();
        let (mut written, mut values) = (0, 0);
        loop {
            let _: Lexed<&str> = take_while(0.., char::is_whitespace).parse_next(&mut input);
            if input.is_empty() {
                break;
            }
            let start = input.len();
            written += 1;
            if written > MAX_TERMS {
                return fail(
                    start,
                    format!("the end of the query (at most {MAX_TERMS} terms)"),
                );
            }
            let (negated, raw) = match raw_term(&mut input) {
                Ok(raw) => raw,
                Err(e) => {
                    return Err(match e.into_inner() {
                        Ok(fail) => fail,
                        // `raw_term` reads complete input only.
                        Err(_) => Fail {
                            left: input.len(),
                            expected: "a term".into(),
                        },
                    });
                }
            };
            let test = match raw {
                Raw::Text { value, quoted } => self.phrase(&value, quoted)?,
                Raw::Field { key, left, values } => self.field(key, left, values)?,
            };
            let term = Term { negated, test };
            values += match &term.test {
                Test::Text { values, .. } => values.len(),
                Test::Ip(v) => v.len(),
                Test::Source(v) => v.len(),
                Test::Time(v) => v.len(),
                Test::Seq(v) => v.len(),
                Test::Words(_) => 1,
            };
            if values > MAX_VALUES {
                return fail(
                    start,
                    format!("the end of the query (at most {MAX_VALUES} values)"),
                );
            }
            add(&mut query, term);
        }
        Ok(query)
    }

    fn phrase(&self, value: &Written<'_>, quoted: bool) -> Parsed<Test> {
        let words: Vec<String> = words(&value.text).collect();
        if words.is_empty() {
            return fail(
                value.left,
                if quoted {
                    "a word of letters or digits inside the quotes"
                } else {
                    "a word of letters or digits"
                },
            );
        }
        Ok(Test::Words(Phrase {
            words,
            prefix: value.prefix,
        }))
    }

    fn field(&self, key: &str, key_left: usize, values: Vec<Written<'_>>) -> Parsed<Test> {
        let text_key = match key {
            "type" => Some(TextKey::Type),
            "action" => Some(TextKey::Action),
            "user" => Some(TextKey::User),
            "actor.name" => Some(TextKey::ActorName),
            "actor.email" => Some(TextKey::ActorEmail),
            "project" => Some(TextKey::Project),
            "app" => Some(TextKey::App),
            "version" => Some(TextKey::Version),
            "target" => Some(TextKey::Target),
            "target.name" => Some(TextKey::TargetName),
            "changed" => Some(TextKey::Changed),
            "id" => Some(TextKey::Id),
            "ip" | "source" | "time" | "seq" => None,
            _ => match key.strip_prefix("details.") {
                Some(path) => {
                    if let Some(empty) = empty_member(path) {
                        return fail(
                            key_left - "details.".len() - empty,
                            "a member name in the details path (details.<name>.<name>…)",
                        );
                    }
                    Some(TextKey::Details(
                        path.split('.').map(str::to_string).collect(),
                    ))
                }
                None if key == "details" => {
                    return fail(
                        key_left - key.len(),
                        "a path after \"details\", such as details.status",
                    )
                }
                None => {
                    return fail(
                        key_left,
                        format!("a known key ({KEYS}); {key:?} is not one"),
                    )
                }
            },
        };
        if let Some(key) = text_key {
            let values = values
                .into_iter()
                .map(|v| TextValue {
                    text: v.text.into_owned(),
                    prefix: v.prefix,
                })
                .collect();
            return Ok(Test::Text { key, values });
        }
        if let Some(v) = values.iter().find(|v| v.prefix) {
            return fail(
                v.left,
                format!("a value without \"*\": {key} has no prefixes"),
            );
        }
        match key {
            "ip" => values.iter().map(ip).collect::<Parsed<_>>().map(Test::Ip),
            "source" => Ok(Test::Source(values.iter().map(source).collect())),
            "time" => values
                .iter()
                .map(|v| self.time_range(v))
                .collect::<Parsed<_>>()
                .map(Test::Time),
            _ => values
                .iter()
                .map(seq_range)
                .collect::<Parsed<_>>()
                .map(Test::Seq),
        }
    }

    fn time_range(&self, v: &Written<'_>) -> Parsed<Range<Timestamp>> {
        let expected = "a date such as 2026-11-30 or a time such as 2026-11-30T14:00, \
2026-11-30T14:00:00Z or 2026-11-30T14:00:00+01:00";
        let bound = |text: &str, left: usize| -> Parsed<Bound> {
            let civil = Civil::parse(text).map_or_else(|| fail(left, expected), Ok)?;
            let (Some(lower), Some(upper)) = (civil.lower(self.zone), civil.upper(self.zone))
            else {
                return fail(left, expected);
            };
            Ok(Bound { lower, upper })
        };
        let range = range_of(v, bound, FIRST_MICROS, LAST_MICROS)?;
        let ts = |m: i128| Timestamp::from_micros(m as i64);
        Ok(Range {
            from: range.0.map(ts),
            to: range.1.map(ts),
        })
    }
}

/// Where a path has an empty member name (byte offset in `path`).
fn empty_member(path: &str) -> Option<usize> {
    let mut offset = 0;
    for member in path.split('.') {
        if member.is_empty() {
            return Some(offset);
        }
        offset += member.len() + 1;
    }
    None
}

/// The first and last value a range's endpoint stands for (a date: its day).
struct Bound {
    lower: i128,
    upper: i128,
}

/// `>=A`, `>A`, `<=A`, `<A`, `A..B` (either end open) or `A`, as inclusive
/// bounds within `min..=max` (`None` when open), refused when empty.
fn range_of(
    v: &Written<'_>,
    bound: impl Fn(&str, usize) -> Parsed<Bound>,
    min: i128,
    max: i128,
) -> Parsed<(Option<i128>, Option<i128>)> {
    let text: &str = &v.text;
    let at = v.left;
    // Offsets inside a quoted value are shown at its opening quote.
    let inner = |skip: usize| match v.text {
        Cow::Borrowed(_) => at - skip,
        Cow::Owned(_) => at,
    };
    let (from, to) = if let Some(rest) = text.strip_prefix(">=") {
        (Some(bound(rest, inner(2))?.lower), None)
    } else if let Some(rest) = text.strip_prefix('>') {
        (Some(bound(rest, inner(1))?.upper + 1), None)
    } else if let Some(rest) = text.strip_prefix("<=") {
        (None, Some(bound(rest, inner(2))?.upper))
    } else if let Some(rest) = text.strip_prefix('<') {
        (None, Some(bound(rest, inner(1))?.lower - 1))
    } else if let Some((a, b)) = text.split_once("..") {
        if a.is_empty() && b.is_empty() {
            return fail(at, "a start or an end around \"..\"");
        }
        let from = if a.is_empty() {
            None
        } else {
            Some(bound(a, at)?.lower)
        };
        let to = if b.is_empty() {
            None
        } else {
            Some(bound(b, inner(a.len() + 2))?.upper)
        };
        (from, to)
    } else {
        let b = bound(text, at)?;
        (Some(b.lower), Some(b.upper))
    };
    let (lo, hi) = (from.unwrap_or(min).max(min), to.unwrap_or(max).min(max));
    if lo > hi {
        return fail(
            at,
            "a range that is not empty (its start after its end, or outside every time or seq)",
        );
    }
    Ok((from.map(|_| lo), to.map(|_| hi)))
}

fn seq_range(v: &Written<'_>) -> Parsed<Range<u64>> {
    let bound = |text: &str, at: usize| -> Parsed<Bound> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return fail(at, "a seq: a whole number such as 1000");
        }
        match text.parse::<u64>() {
            Ok(n) => Ok(Bound {
                lower: i128::from(n),
                upper: i128::from(n),
            }),
            Err(_) => fail(at, format!("a seq of at most {}", u64::MAX)),
        }
    };
    let (from, to) = range_of(v, bound, 0, i128::from(u64::MAX))?;
    Ok(Range {
        from: from.map(|n| n as u64),
        to: to.map(|n| n as u64),
    })
}

fn ip(v: &Written<'_>) -> Parsed<IpNet> {
    let expected = "an IP address or a network such as 10.0.0.0/8 or 2001:db8::/32";
    let (addr, len) = match v.text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (&*v.text, None),
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return fail(v.left, expected);
    };
    let full = if addr.is_ipv4() { 32 } else { 128 };
    let prefix_len = match len {
        None => full,
        Some(l) if !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()) => {
            match l.parse::<u8>() {
                Ok(n) if n <= full => n,
                _ => return fail(v.left, format!("a prefix length of at most {full}")),
            }
        }
        Some(_) => return fail(v.left, expected),
    };
    let mut net = IpNet { addr, prefix_len };
    // Host bits cleared, so that one network has one spelling.
    net.addr = match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    };
    Ok(net)
}

fn source(v: &Written<'_>) -> SourceValue {
    match &*v.text {
        "api_key" => SourceValue::ApiKey,
        "console" => SourceValue::Console,
        "system" => SourceValue::System,
        key => SourceValue::Key(key.to_string()),
    }
}

/// Adds a term: a list key written again with the same sign adds its values
/// to the first term (`user:a user:b` is `user:a,b`; `-user:a -user:b` is
/// `-user:a,b`); `time`, `seq` and free text stay terms of their own.
fn add(query: &mut Query, mut term: Term) {
    dedup(&mut term.test);
    let same = query.terms.iter_mut().find(|t| {
        t.negated == term.negated
            && match (&t.test, &term.test) {
                (Test::Text { key: a, .. }, Test::Text { key: b, .. }) => a == b,
                (Test::Ip(_), Test::Ip(_)) | (Test::Source(_), Test::Source(_)) => true,
                _ => false,
            }
    });
    let Some(held) = same else {
        query.terms.push(term);
        return;
    };
    match (&mut held.test, term.test) {
        (Test::Text { values: a, .. }, Test::Text { values: b, .. }) => a.extend(b),
        (Test::Ip(a), Test::Ip(b)) => a.extend(b),
        (Test::Source(a), Test::Source(b)) => a.extend(b),
        _ => {}
    }
    dedup(&mut held.test);
}

fn dedup(test: &mut Test) {
    fn once<T: PartialEq>(list: &mut Vec<T>) {
        let mut seen: Vec<T> = Vec::with_capacity(list.len());
        for item in list.drain(..) {
            if !seen.contains(&item) {
                seen.push(item);
            }
        }
        *list = seen;
    }
    match test {
        Test::Text { values, .. } => once(values),
        Test::Ip(v) => once(v),
        Test::Source(v) => once(v),
        Test::Time(v) => once(v),
        Test::Seq(v) => once(v),
        Test::Words(_) => {}
    }
}
