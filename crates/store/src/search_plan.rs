//! How a backend serves `q` (SPEC "Search"): which of a query's terms its
//! indexes answer and which the reference [`Query::matches`] must confirm on
//! the candidates the indexes found. Both backends translate the same plan,
//! so they serve the same terms from the same columns:
//!
//! - `time` and `seq` with one range: bounds on the log's `time` and `key`
//!   (exact); an OR list of ranges narrows to their hull, and a negated one
//!   is confirmed;
//! - `type`, `action` (the log's `kind`), `project`, `app`, `version` (its
//!   `place`) and `user` (its `actor`), negated or not, prefixes or not:
//!   each term is evaluated on every value of the account's dictionary, so
//!   it becomes the set of ids it accepts (exact; a column of several terms
//!   accepts the ids every one of them does);
//! - `target` and `id` with exact values: the hashes the log keeps
//!   (narrowing; a hash may be shared, so the leaf confirms);
//! - free text, not negated: the full-text index (each word must be in the
//!   event's words; a single word or prefix is exact, a phrase is
//!   confirmed, since the index does not keep which value a word is in);
//! - everything else (`actor.name`, `actor.email`, `target.name`, `ip`,
//!   `changed`, `details.<path>`, `source`, negated free text, prefixes of
//!   `target` and `id`): confirmed by decoding the candidates' leaves.
//!
//! A filter whose plan is exact is answered by the indexes alone (counts
//! read no leaf); otherwise every candidate row is decoded and the whole
//! query checked, so that answers are exact either way.

use auditlog_core::search::{Phrase, Query, Term, Test, TextKey};
use auditlog_core::EventFilter;

/// A dictionary column of the log and the terms that select on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DictColumn {
    /// Event type and action (`log_values` kind 1).
    Kind,
    /// Project, app and version (`log_values` kind 2; NULL without any).
    Place,
    /// The actor's id (`actors`).
    Actor,
}

/// The plan of one filter's query.
#[derive(Debug, Clone, Default)]
pub struct SearchPlan<'q> {
    /// Inclusive bounds of `time` (µs) that every match lies within.
    pub time_from: Option<i64>,
    pub time_to: Option<i64>,
    /// Inclusive bounds of `seq`.
    pub seq_from: Option<u64>,
    pub seq_to: Option<u64>,
    /// Terms on `type`/`action`, on `project`/`app`/`version`, on `user`.
    pub kind_terms: Vec<&'q Term>,
    pub place_terms: Vec<&'q Term>,
    pub actor_terms: Vec<&'q Term>,
    /// Exact target ids (any of them), from each positive `target:` term
    /// without prefixes: every list must hold.
    pub targets: Vec<Vec<String>>,
    /// Exact event ids, likewise.
    pub ids: Vec<Vec<String>>,
    /// Free text that must be in the event's words.
    pub words: Vec<&'q Phrase>,
    /// Whether some term is only narrowed (or not served at all), so that
    /// each candidate must be confirmed with the reference matcher.
    pub confirm: bool,
}

impl<'q> SearchPlan<'q> {
    /// The plan of `filter.query`.
    pub fn of(filter: &'q EventFilter) -> Self {
        Self::of_query(&filter.query)
    }

    pub fn of_query(query: &'q Query) -> Self {
        let mut plan = SearchPlan::default();
        for term in query.terms() {
            plan.add(term);
        }
        plan
    }

    fn add(&mut self, term: &'q Term) {
        match &term.test {
            Test::Text { key, values } => match key {
                TextKey::Type | TextKey::Action => self.kind_terms.push(term),
                TextKey::Project | TextKey::App | TextKey::Version => self.place_terms.push(term),
                TextKey::User => self.actor_terms.push(term),
                TextKey::Target | TextKey::Id if !term.negated => {
                    // Hashes narrow; the leaf confirms (and a prefix is
                    // confirmed only).
                    self.confirm = true;
                    if values.iter().all(|v| !v.prefix) {
                        let exact = values.iter().map(|v| v.text.clone()).collect();
                        if matches!(key, TextKey::Target) {
                            self.targets.push(exact);
                        } else {
                            self.ids.push(exact);
                        }
                    }
                }
                _ => self.confirm = true,
            },
            Test::Time(ranges) if !term.negated => {
                let (from, to) = hull(
                    ranges
                        .iter()
                        .map(|r| (r.from.map(|t| t.micros()), r.to.map(|t| t.micros()))),
                );
                self.time_from = max_bound(self.time_from, from);
                self.time_to = min_bound(self.time_to, to);
                self.confirm |= ranges.len() > 1;
            }
            Test::Seq(ranges) if !term.negated => {
                let (from, to) = hull(ranges.iter().map(|r| (r.from, r.to)));
                self.seq_from = max_bound(self.seq_from, from);
                self.seq_to = min_bound(self.seq_to, to);
                self.confirm |= ranges.len() > 1;
            }
            Test::Words(phrase) if !term.negated => {
                self.words.push(phrase);
                self.confirm |= phrase.words.len() > 1;
            }
            _ => self.confirm = true,
        }
    }

    /// Whether the seq and time bounds leave nothing (`time:>X time:<Y`
    /// with Y before X).
    pub fn is_empty_range(&self) -> bool {
        matches!((self.time_from, self.time_to), (Some(f), Some(t)) if f > t)
            || matches!((self.seq_from, self.seq_to), (Some(f), Some(t)) if f > t)
    }
}

/// The smallest range holding all of `ranges` (`None` ends are open).
fn hull<T: Ord + Copy>(
    mut ranges: impl Iterator<Item = (Option<T>, Option<T>)>,
) -> (Option<T>, Option<T>) {
    let Some(first) = ranges.next() else {
        return (None, None);
    };
    ranges.fold(first, |(f, t), (f2, t2)| {
        (
            f.zip(f2).map(|(a, b)| a.min(b)),
            t.zip(t2).map(|(a, b)| a.max(b)),
        )
    })
}

fn max_bound<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

fn min_bound<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Which ids of a dictionary column the terms accept, from the column's
/// values: `accepted` and `rejected` partition the ids, `null` is whether a
/// row without a value (a NULL `place`) is accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdChoice {
    pub accepted: Vec<i64>,
    pub rejected: Vec<i64>,
    pub null: bool,
}

/// Evaluates `terms` on each dictionary row `(id, fields)`, where `field`
/// gives the text of a term's key in that row (`None`: absent).
pub fn choose_ids<'r>(
    terms: &[&Term],
    rows: impl IntoIterator<Item = (i64, &'r [Option<String>])>,
    field: impl Fn(&TextKey, &[Option<String>]) -> Option<String>,
) -> IdChoice {
    let holds = |fields: &[Option<String>]| {
        terms.iter().all(|term| match &term.test {
            Test::Text { key, .. } => term
                .holds_on_text(field(key, fields).as_deref())
                .unwrap_or(false),
            _ => false,
        })
    };
    let mut choice = IdChoice::default();
    for (id, fields) in rows {
        if holds(fields) {
            choice.accepted.push(id);
        } else {
            choice.rejected.push(id);
        }
    }
    choice.null = holds(&[None, None, None]);
    choice
}

/// The text of `key` in a kind row `[type, action]`.
pub fn kind_field(key: &TextKey, fields: &[Option<String>]) -> Option<String> {
    let index = match key {
        TextKey::Type => 0,
        TextKey::Action => 1,
        _ => return None,
    };
    fields.get(index).cloned().flatten()
}

/// The text of `key` in a place row `[project, app, version]`.
pub fn place_field(key: &TextKey, fields: &[Option<String>]) -> Option<String> {
    let index = match key {
        TextKey::Project => 0,
        TextKey::App => 1,
        TextKey::Version => 2,
        _ => return None,
    };
    fields.get(index).cloned().flatten()
}

/// The text of `user` in an actor row `[actor id]`.
pub fn actor_field(key: &TextKey, fields: &[Option<String>]) -> Option<String> {
    match key {
        TextKey::User => fields.first().cloned().flatten(),
        _ => None,
    }
}

/// The full-text index's query for the plan's words (SQLite FTS5 syntax:
/// each word a quoted string, a prefix with `*`; all must hold). The words
/// are letters and digits only (`search::words`), so quoting cannot be
/// escaped from; the text is still bound as a parameter.
/// (PostgreSQL's `tsquery` of the same words is `word_index::tsquery` in
/// `auditlog-store-postgres`, which also knows the longest word it stores
/// whole.)
pub fn fts5_match(words: &[&Phrase]) -> Option<String> {
    let mut parts = Vec::new();
    for phrase in words {
        let last = phrase.words.len().saturating_sub(1);
        for (i, word) in phrase.words.iter().enumerate() {
            let star = if i == last && phrase.prefix { "*" } else { "" };
            parts.push(format!("\"{}\"{star}", word.replace('"', "\"\"")));
        }
    }
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

/// The words an event is indexed under: every word of every searched
/// value (`search::words` of `free_text_values`), each once, sorted. The
/// backends store exactly these, so that they cannot disagree.
pub fn index_words(event: &auditlog_core::NewEvent) -> Vec<String> {
    let mut words: Vec<String> = auditlog_core::search::free_text_values_of(event)
        .into_iter()
        .flat_map(auditlog_core::search::words::words)
        .collect();
    words.sort_unstable();
    words.dedup();
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::search::Zone;

    fn plan_of(text: &str) -> (Query, bool) {
        let q = Query::parse(text, &Zone::utc()).unwrap();
        let confirm = SearchPlan::of_query(&q).confirm;
        (q, confirm)
    }

    #[test]
    fn indexed_terms_are_exact_and_the_others_are_confirmed() {
        for exact in [
            "type:test* -action:Update user:u-1,u-2 project:Checkout",
            "time:2026-11-01..2026-11-30 seq:>5 pay*",
            "-user:a -app:Web version:2*",
        ] {
            assert!(!plan_of(exact).1, "{exact}");
        }
        for confirmed in [
            "target:TC-1",
            "id:e1",
            "actor.name:Ada",
            "ip:10.0.0.0/8",
            "\"login with\"",
            "-pay*",
            "seq:<2,>8",
            "-time:2026-11-01",
            "changed:title",
            "details.a:b",
            "source:console",
        ] {
            assert!(plan_of(confirmed).1, "{confirmed}");
        }
    }

    #[test]
    fn ranges_intersect_and_lists_take_their_hull() {
        let (q, _) = plan_of("seq:>=3 seq:<=9 seq:2..4,7..8");
        let plan = SearchPlan::of_query(&q);
        assert_eq!((plan.seq_from, plan.seq_to), (Some(3), Some(8)));
        let (q, _) = plan_of("seq:>=9 seq:<=3");
        assert!(SearchPlan::of_query(&q).is_empty_range());
    }

    #[test]
    fn full_text_queries_quote_every_word() {
        let (q, _) = plan_of("pay* \"login with\"");
        let plan = SearchPlan::of_query(&q);
        assert_eq!(
            fts5_match(&plan.words).unwrap(),
            "\"pay\"* AND \"login\" AND \"with\""
        );
    }
}
