//! [`Query`] to text: the canonical form, which parses back to the same
//! query in any zone (times print as UTC instants, days as their first and
//! last microsecond).

use super::{IpNet, Phrase, Query, Range, SourceValue, Term, Test, TextValue};
use crate::Timestamp;
use std::fmt::{self, Display, Formatter, Write};

impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            write!(f, "{term}")?;
        }
        Ok(())
    }
}

impl Display for Term {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.negated {
            f.write_char('-')?;
        }
        match &self.test {
            Test::Text { key, values } => {
                write!(f, "{}:", key.name())?;
                list(f, values, text_value)
            }
            Test::Ip(nets) => {
                f.write_str("ip:")?;
                list(f, nets, ip)
            }
            Test::Source(values) => {
                f.write_str("source:")?;
                list(f, values, source)
            }
            Test::Time(ranges) => {
                f.write_str("time:")?;
                let first = Timestamp::from_micros(super::time::FIRST_MICROS as i64);
                list(f, ranges, |f, r| range(f, r, first, |t| t.to_rfc3339()))
            }
            Test::Seq(ranges) => {
                f.write_str("seq:")?;
                list(f, ranges, |f, r| range(f, r, 0, |n: u64| n.to_string()))
            }
            Test::Words(phrase) => words(f, phrase),
        }
    }
}

fn list<T>(
    f: &mut Formatter<'_>,
    items: &[T],
    one: impl Fn(&mut Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        one(f, item)?;
    }
    Ok(())
}

/// Plain when it reads back as itself, quoted otherwise.
fn text(f: &mut Formatter<'_>, text: &str) -> fmt::Result {
    let plain = !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, ',' | '"' | '*'));
    if plain {
        return f.write_str(text);
    }
    f.write_char('"')?;
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

fn text_value(f: &mut Formatter<'_>, v: &TextValue) -> fmt::Result {
    text(f, &v.text)?;
    if v.prefix {
        f.write_char('*')?;
    }
    Ok(())
}

fn ip(f: &mut Formatter<'_>, net: &IpNet) -> fmt::Result {
    let full = if net.addr.is_ipv4() { 32 } else { 128 };
    if net.prefix_len == full {
        write!(f, "{}", net.addr)
    } else {
        write!(f, "{}/{}", net.addr, net.prefix_len)
    }
}

fn source(f: &mut Formatter<'_>, v: &SourceValue) -> fmt::Result {
    match v {
        SourceValue::ApiKey => f.write_str("api_key"),
        SourceValue::Console => f.write_str("console"),
        SourceValue::System => f.write_str("system"),
        SourceValue::Key(key) => text(f, key),
    }
}

fn range<T: Copy + PartialEq>(
    f: &mut Formatter<'_>,
    r: &Range<T>,
    min: T,
    show: impl Fn(T) -> String,
) -> fmt::Result {
    match (r.from, r.to) {
        (Some(a), Some(b)) if a == b => f.write_str(&show(a)),
        (Some(a), Some(b)) => write!(f, "{}..{}", show(a), show(b)),
        (Some(a), None) => write!(f, ">={}", show(a)),
        (None, Some(b)) => write!(f, "<={}", show(b)),
        // Never built by the parser: the range of everything.
        (None, None) => write!(f, ">={}", show(min)),
    }
}

fn words(f: &mut Formatter<'_>, phrase: &Phrase) -> fmt::Result {
    if let [word] = phrase.words.as_slice() {
        f.write_str(word)?;
    } else {
        write!(f, "\"{}\"", phrase.words.join(" "))?;
    }
    if phrase.prefix {
        f.write_char('*')?;
    }
    Ok(())
}
