//! Translation of [`EventFilter`] into SQL over the event log (migration
//! 0010). A filter's texts are first resolved into the log's ids
//! ([`resolve`]): event types and actions into `log_values` ids of kind 1,
//! projects, apps and versions into ids of kind 2, users into `actors` ids,
//! a target id into its hash. Every index of the log is `(id, time)`, so a
//! query is an index search on one of them, never a scan of the log:
//!
//! - a target id drives by `event_log_by_target`; its hash is confirmed
//!   against the leaf of every row before it is answered ([`confirms`]);
//!   so do `q`'s exact `target:` values (and `id:` values, by
//!   `event_log_by_id`), whose rows `q` confirms;
//! - otherwise the filtered column with the fewest ids drives, by its
//!   index. A newest-first page needs the rows in time order: with several
//!   ids, each id's range of the index is one arm of a `UNION ALL` that
//!   SQLite merges in order (`MERGE (UNION ALL)`), so that a page reads
//!   about a page per id, not every match; past [`MAX_ARMS`] ids, one
//!   `IN` search and a sort;
//! - with no id filter, `event_log_by_time` (the account's events by time).
//!
//! Each statement names its index (`INDEXED BY`), so plans do not depend
//! on statistics; `EXPLAIN QUERY PLAN` tests hold every combination to it.

use crate::decode_aside;
use crate::event_log::{self, account_keys, KIND_EVENT, KIND_PLACE};
use crate::personal_rows::{self, BARE_COLUMNS};
use crate::sql::{event_record, sql_error, to_record, LeafDecoder, RECORD_COLUMNS};
use auditlog_core::leaf_view::LeafView;
use auditlog_core::search::{Query, TextKey};
use auditlog_core::{Cursor, EventFilter, Interval, Timestamp};
use auditlog_store::rollup_filters;
use auditlog_store::search_plan::{self, IdChoice, SearchPlan};
use auditlog_store::{key_hash64, Bucket, EventRecord, Result, StoreError};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};
use std::collections::{BTreeMap, HashSet};

/// The most ids a newest-first page merges one index range each of.
pub const MAX_ARMS: usize = 64;

/// The most ids of `q`'s terms that lead an index search (each is a bound
/// parameter); more are one JSON parameter read by `json_each`.
const MAX_LEADING_IDS: usize = 1_000;

/// A column of the log that a filter's ids select on, and its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdColumn {
    Kind,
    Place,
    Actor,
    /// The hash of the target id (`q`'s `target:` terms; the leaf confirms).
    Target,
    /// The hash of the event id (`q`'s `id:` terms; the leaf confirms).
    Id,
}

impl IdColumn {
    fn name(self) -> &'static str {
        match self {
            IdColumn::Kind => "kind",
            IdColumn::Place => "place",
            IdColumn::Actor => "actor",
            IdColumn::Target => "target_hash",
            IdColumn::Id => "id_hash",
        }
    }

    fn index(self) -> &'static str {
        match self {
            IdColumn::Kind => "event_log_by_kind",
            IdColumn::Place => "event_log_by_place",
            IdColumn::Actor => "event_log_by_actor",
            IdColumn::Target => "event_log_by_target",
            IdColumn::Id => "event_log_by_id",
        }
    }

    /// Whether its index holds each id's rows in time order (`(id, time)`),
    /// so that one arm per id can be merged into a newest-first page.
    fn time_ordered(self) -> bool {
        self != IdColumn::Id
    }
}

/// A filter resolved into the log's ids, for one account.
#[derive(Debug, Clone)]
pub struct LogFilter {
    account: i64,
    /// `Some` when the filter selects on the column: the ids it accepts
    /// (never empty: a filter that accepts no id matches nothing).
    ids: Vec<(IdColumn, Vec<i64>)>,
    target: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    /// The conditions `q`'s plan adds (`search_plan`), all parameterised,
    /// except its free text.
    extra: Conditions,
    /// `q`'s free text as a full-text query (`search_plan::fts5_match`):
    /// each candidate's key must be among the index's matches.
    words: Option<String>,
    /// When the full-text index drives (its matches are few).
    words_drive: WordsDrive,
    /// The earliest and latest times `q` allows (its `time` terms'
    /// bounds), if any.
    q_time_from: Option<i64>,
    q_time_to: Option<i64>,
    /// Whether `q` holds nothing but free text and `time` bounds (no term
    /// on a column, no `seq`, no target or id), so that its free text with
    /// the times is all the SQL tests: what the block summary counts.
    q_words_and_times: bool,
    /// When the filter holds free text, event types or actions (the
    /// parameters, `q`'s terms) and times only: those event types and
    /// actions (a filter of them alone), so that a count reads the kinds
    /// they accept (`accepted_kinds`) and the block summary counts it with
    /// them. Only a count reads the dictionary: a page does not need it.
    words_kinds: Option<EventFilter>,
    /// `q`, when some of its terms are confirmed on each candidate's leaf.
    query: Option<Query>,
    /// `q`'s exact `target:` lists (each must hold), when they are all of
    /// `q` that needs confirming: the leaf's target id is checked against
    /// them, as the `target` parameter's is, and `query` is `None`.
    target_lists: Vec<Vec<String>>,
}

/// `filter` in `account`'s ids; `None` when a filtered value is in none of
/// the account's events, so that nothing matches.
pub fn resolve(conn: &Connection, account: i64, filter: &EventFilter) -> Result<Option<LogFilter>> {
    let mut ids = Vec::new();
    if !filter.event_types.is_empty() || !filter.actions.is_empty() {
        let mut q = Lookup::values(account, KIND_EVENT);
        q.part_in(0, &filter.event_types);
        q.part_in(1, &filter.actions);
        ids.push((IdColumn::Kind, q.run(conn)?));
    }
    if !filter.projects.is_empty() || filter.app.is_some() || filter.version.is_some() {
        let mut q = Lookup::values(account, KIND_PLACE);
        q.part_in(0, &filter.projects);
        q.part_in(1, filter.app.as_slice());
        q.part_in(2, filter.version.as_slice());
        ids.push((IdColumn::Place, q.run(conn)?));
    }
    if !filter.users.is_empty() {
        let mut q = Lookup {
            sql: "SELECT id FROM actors WHERE account_id = ?".into(),
            params: vec![Value::Integer(account)],
        };
        q.any_of("actor_id", &filter.users);
        ids.push((IdColumn::Actor, q.run(conn)?));
    }
    if ids.iter().any(|(_, accepted)| accepted.is_empty()) {
        return Ok(None);
    }
    let plan = SearchPlan::of(filter);
    if plan.is_empty_range() {
        return Ok(None);
    }
    let mut extra = Conditions::default();
    for (column, terms) in [
        (IdColumn::Kind, &plan.kind_terms),
        (IdColumn::Place, &plan.place_terms),
        (IdColumn::Actor, &plan.actor_terms),
    ] {
        if terms.is_empty() {
            continue;
        }
        if column == IdColumn::Actor {
            if let Some(accepted) = named_actors(conn, account, terms)? {
                if accepted.is_empty() {
                    return Ok(None);
                }
                ids.push((column, accepted));
                continue;
            }
        }
        let choice = dictionary_choice(conn, account, column, terms)?;
        if choice.accepted.is_empty() && !choice.null {
            return Ok(None);
        }
        if !choice.null
            && choice.accepted.len() <= choice.rejected.len()
            && choice.accepted.len() <= MAX_LEADING_IDS
        {
            // The accepted ids can lead an index search.
            ids.push((column, choice.accepted));
        } else {
            extra.choice(column, &choice);
        }
    }
    if let Some(from) = plan.seq_from {
        extra.push(
            "key >= ?",
            [Value::Integer(event_log::bound_key(account, from))],
        );
    }
    if let Some(to) = plan.seq_to {
        extra.push(
            "key <= ?",
            [Value::Integer(event_log::bound_key(account, to))],
        );
    }
    if let Some(from) = plan.time_from {
        extra.push("time >= ?", [Value::Integer(from)]);
    }
    if let Some(to) = plan.time_to {
        extra.push("time <= ?", [Value::Integer(to)]);
    }
    // Exact `target:` and `id:` values are hashes of an index of the log:
    // the shortest list of each can lead an index search (a walk of the
    // account's events by time, testing each row's hash, reads every event
    // of the account for a count); the others narrow.
    for (column, lists) in [(IdColumn::Target, &plan.targets), (IdColumn::Id, &plan.ids)] {
        let mut lists: Vec<Vec<i64>> = lists
            .iter()
            .map(|list| {
                let mut hashes: Vec<i64> = list.iter().map(|t| key_hash64(t)).collect();
                hashes.sort_unstable();
                hashes.dedup();
                hashes
            })
            .collect();
        lists.sort_by_key(Vec::len);
        for (n, hashes) in lists.into_iter().enumerate() {
            if n == 0 && !hashes.is_empty() && hashes.len() <= MAX_LEADING_IDS {
                ids.push((column, hashes));
            } else {
                extra.push(
                    &format!("{} IN (SELECT value FROM json_each(?))", column.name()),
                    [Value::Text(json_ids(&hashes))],
                );
            }
        }
    }
    let words = search_plan::fts5_match(&plan.words);
    let words_kinds = if words.is_some()
        && (!plan.kind_terms.is_empty()
            || !filter.event_types.is_empty()
            || !filter.actions.is_empty())
        && plan.place_terms.is_empty()
        && plan.actor_terms.is_empty()
        && plan.seq_from.is_none()
        && plan.seq_to.is_none()
        && plan.targets.is_empty()
        && plan.ids.is_empty()
        && !plan.confirm
        && filter.users.is_empty()
        && filter.projects.is_empty()
        && filter.app.is_none()
        && filter.version.is_none()
        && filter.target_id.is_none()
    {
        Some(EventFilter {
            event_types: filter.event_types.clone(),
            actions: filter.actions.clone(),
            query: filter.query.without(|term| !rollup_filters::on_kind(term)),
            ..EventFilter::default()
        })
    } else {
        None
    };
    // When only exact `target:` terms make `q` confirm (their hashes
    // narrow), the leaf's target id confirms them: no record is built and
    // no personal value read for each candidate.
    let only_targets = plan.confirm && only_targets_confirm(&filter.query);
    Ok(Some(LogFilter {
        account,
        ids,
        target: filter.target_id.clone(),
        from: filter.from.map(Timestamp::micros),
        to: filter.to.map(Timestamp::micros),
        extra,
        words,
        words_drive: WordsDrive::default(),
        q_time_from: plan.time_from,
        q_time_to: plan.time_to,
        q_words_and_times: plan.kind_terms.is_empty()
            && plan.place_terms.is_empty()
            && plan.actor_terms.is_empty()
            && plan.seq_from.is_none()
            && plan.seq_to.is_none()
            && plan.targets.is_empty()
            && plan.ids.is_empty(),
        words_kinds,
        query: (plan.confirm && !only_targets).then(|| filter.query.clone()),
        target_lists: if only_targets {
            plan.targets.clone()
        } else {
            Vec::new()
        },
    }))
}

/// Whether `query`'s exact `target:` terms are all that its plan needs
/// confirmed on each candidate (every other term is answered exactly by
/// the indexes).
fn only_targets_confirm(query: &Query) -> bool {
    !SearchPlan::of_query(&query.without(exact_target)).confirm
}

/// A positive `target:` term of exact values (the plan's `targets`).
fn exact_target(term: &auditlog_core::search::Term) -> bool {
    !term.negated
        && matches!(&term.test, auditlog_core::search::Test::Text { key: TextKey::Target, values }
            if values.iter().all(|v| !v.prefix))
}

/// The actors `terms` accept when one of them names its users exactly
/// (`user:u-1,u-2`, not negated, no prefix): only those can match, so only
/// their rows are read, by `actors`' unique index, and every term is then
/// evaluated on them. Reading and parsing every actor of the account instead
/// cost a first page 0.65 ms at 2,000 actors (BENCHMARKS.md, "First
/// pages"). `None` when no term names its users so (the whole dictionary is
/// read).
pub(crate) fn named_actors(
    conn: &Connection,
    account: i64,
    terms: &[&auditlog_core::search::Term],
) -> Result<Option<Vec<i64>>> {
    use auditlog_core::search::{Test, TextKey};
    let named = terms.iter().find_map(|term| match &term.test {
        Test::Text {
            key: TextKey::User,
            values,
        } if !term.negated && values.iter().all(|v| !v.prefix) => Some(values),
        _ => None,
    });
    let Some(named) = named else {
        return Ok(None);
    };
    let texts: Vec<String> = named.iter().map(|v| v.text.clone()).collect();
    actors_named(conn, account, &texts, terms).map(Some)
}

/// The actors of `account` whose id is one of `texts` and that every one
/// of `terms` accepts, read by `actors`' unique index.
pub(crate) fn actors_named(
    conn: &Connection,
    account: i64,
    texts: &[String],
    terms: &[&auditlog_core::search::Term],
) -> Result<Vec<i64>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, actor_id FROM actors WHERE account_id = ?1 \
             AND actor_id IN (SELECT value FROM json_each(?2))",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(
            rusqlite::params![account, serde_json::Value::from(texts.to_vec()).to_string()],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .map_err(sql_error)?;
    let mut accepted = Vec::new();
    for row in rows {
        let (id, actor_id) = row.map_err(sql_error)?;
        let holds = terms
            .iter()
            .all(|term| term.holds_on_text(actor_id.as_deref()).unwrap_or(false));
        if holds {
            accepted.push(id);
        }
    }
    Ok(accepted)
}

/// The account's kinds (`log_values` ids of `[type, action]`) that
/// `filter`'s event type and action parameters and `q`'s `type` and
/// `action` terms accept, evaluated on its dictionary as the index path
/// evaluates them (`resolve`).
pub(crate) fn accepted_kinds(
    conn: &Connection,
    account: i64,
    filter: &EventFilter,
) -> Result<Vec<i64>> {
    let terms: Vec<&auditlog_core::search::Term> = filter
        .query
        .terms()
        .iter()
        .filter(|t| rollup_filters::on_kind(t))
        .collect();
    let values = dictionary(conn, account, KIND_EVENT)?;
    let by_parameter = |fields: &[Option<String>], index: usize, texts: &[String]| {
        texts.is_empty()
            || fields
                .get(index)
                .cloned()
                .flatten()
                .is_some_and(|text| texts.contains(&text))
    };
    let accepted = values
        .iter()
        .filter(|(_, fields)| {
            by_parameter(fields, 0, &filter.event_types) && by_parameter(fields, 1, &filter.actions)
        })
        .map(|(id, fields)| (*id, fields.as_slice()));
    Ok(search_plan::choose_ids(&terms, accepted, search_plan::kind_field).accepted)
}

/// The ids of `column` that `terms` accept, evaluated on every value of
/// the account's dictionary of that column (`search_plan::choose_ids`).
fn dictionary_choice(
    conn: &Connection,
    account: i64,
    column: IdColumn,
    terms: &[&auditlog_core::search::Term],
) -> Result<IdChoice> {
    let (values, field): (Dictionary, FieldOf) = match column {
        IdColumn::Kind => (
            dictionary(conn, account, KIND_EVENT)?,
            search_plan::kind_field,
        ),
        IdColumn::Place => (
            dictionary(conn, account, KIND_PLACE)?,
            search_plan::place_field,
        ),
        IdColumn::Actor => (actor_dictionary(conn, account)?, search_plan::actor_field),
        IdColumn::Target | IdColumn::Id => {
            return Err(StoreError::internal(
                "target and event ids are hashed, not in a dictionary",
            ))
        }
    };
    Ok(search_plan::choose_ids(
        terms,
        values.iter().map(|(id, f)| (*id, f.as_slice())),
        field,
    ))
}

/// A dictionary's values, each with its id: the fields of its JSON array.
pub(crate) type Dictionary = Vec<(i64, Vec<Option<String>>)>;

/// The text of a key in a dictionary value's fields.
type FieldOf = fn(&TextKey, &[Option<String>]) -> Option<String>;

/// The account's values of one kind of `log_values` (1: `[type, action]`,
/// 2: `[project, app, version]`), each with its id.
pub(crate) fn dictionary(conn: &Connection, account: i64, kind: i64) -> Result<Dictionary> {
    dictionary_rows(
        conn,
        "SELECT id, value FROM log_values WHERE account_id = ?1 AND kind = ?2",
        rusqlite::params![account, kind],
    )
}

/// The account's actors as `[actor id]` values, each with its id.
pub(crate) fn actor_dictionary(conn: &Connection, account: i64) -> Result<Dictionary> {
    dictionary_rows(
        conn,
        "SELECT id, json_array(actor_id) FROM actors WHERE account_id = ?1",
        rusqlite::params![account],
    )
}

fn dictionary_rows(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Dictionary> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(params, |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(sql_error)?;
    let mut values = Vec::new();
    for row in rows {
        let (id, json) = row.map_err(sql_error)?;
        let fields: Vec<Option<String>> = serde_json::from_str(&json).map_err(|e| {
            StoreError::internal_caused_by(format!("dictionary value {id} is not a JSON array"), e)
        })?;
        values.push((id, fields));
    }
    Ok(values)
}

/// Ids as the JSON array `json_each` reads: one bound parameter whatever
/// their number.
fn json_ids(ids: &[i64]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

/// A query of the ids a filter accepts.
struct Lookup {
    sql: String,
    params: Vec<Value>,
}

impl Lookup {
    fn values(account: i64, kind: i64) -> Self {
        Lookup {
            sql: "SELECT id FROM log_values WHERE account_id = ? AND kind = ?".into(),
            params: vec![Value::Integer(account), Value::Integer(kind)],
        }
    }

    /// The value's text at `index` of its JSON array is one of `texts`
    /// (a value that is not such an array, in an edited store, is none).
    fn part_in(&mut self, index: usize, texts: &[String]) {
        let part =
            format!("(CASE WHEN json_valid(value) THEN json_extract(value, '$[{index}]') END)");
        self.any_of(&part, texts);
    }

    fn any_of(&mut self, expr: &str, texts: &[String]) {
        if texts.is_empty() {
            return;
        }
        let marks = vec!["?"; texts.len()].join(", ");
        self.sql.push_str(&format!(" AND {expr} IN ({marks})"));
        self.params.extend(texts.iter().cloned().map(Value::Text));
    }

    fn run(self, conn: &Connection) -> Result<Vec<i64>> {
        let mut stmt = conn.prepare_cached(&self.sql).map_err(sql_error)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(self.params), |r| r.get(0))
            .map_err(sql_error)?;
        rows.collect::<rusqlite::Result<Vec<i64>>>()
            .map_err(sql_error)
    }
}

/// How a statement finds its rows.
enum Driver {
    /// `event_log_by_target`, the target's hash.
    Target,
    /// One arm per id of `ids[n]`, by its column's index.
    Arms(usize),
    /// One `IN` search of `ids[n]`'s column's index.
    In(usize),
    /// `event_log_by_time`.
    Time,
    /// The full-text index's matches in the account's key range, each row
    /// looked up by its key (the table's rowid): when the words are in few
    /// events, fewer rows than any index range of the other terms.
    Words,
}

/// The most events of the account holding `q`'s free text for which a
/// newest-first page is read from the full-text index (every match looked
/// up by key, then the newest taken), rather than by walking an index in
/// time order and testing each row against the index's matches: a walk
/// reads about `limit × events ÷ matches` rows, so it wins only for words
/// in many events.
pub const WORDS_DRIVE_PAGE: usize = 5_000;

/// The most matches for which a newest-first page of free text (whose SQL
/// is exact) is read by the block time summary ([`block_page`]: every
/// match's key read from the index, rows looked up block by block from the
/// newest). Above [`WORDS_DRIVE_PAGE`] the walk and sweep ([`walk_page`])
/// was the other way, and its sweep reads about `limit × events ÷ matches`
/// index entries: a word in 10,000 of 8M events with `type:` and `time:`
/// terms swept about 150,000 (15 ms at 10M, BENCHMARKS.md), where the
/// summary skips the blocks outside the time range and looks up a few
/// hundred rows. Reading the keys costs about a microsecond per 20 matches,
/// so the walk stays the way for words in more events.
pub const WORDS_BLOCK_PAGE: usize = 20_000;

/// The same for counts and histograms, which otherwise read the whole
/// index range of the other terms (for free text alone, every event of
/// the account): one lookup per match is cheaper up to here.
pub const WORDS_DRIVE_COUNT: usize = 400_000;

/// The numbers of matches below which the full-text index drives pages
/// and counts ([`WORDS_DRIVE_PAGE`], [`WORDS_DRIVE_COUNT`] unless a test
/// sets others, so that both ways of reading are checked on small stores).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordsDrive {
    pub page: usize,
    pub count: usize,
    /// Whether a page of free text in more events than `page` is read by
    /// [`walk_page`] (else by walking another index in time order).
    pub walk: bool,
    /// Whether the block time summary (`word_blocks`) serves free text's
    /// counts and its pages below `block_page` (tests turn it off to
    /// compare with the index path).
    pub blocks: bool,
    /// The matches below which the summary reads pages
    /// ([`WORDS_BLOCK_PAGE`]).
    pub block_page: usize,
}

impl Default for WordsDrive {
    fn default() -> Self {
        WordsDrive {
            page: WORDS_DRIVE_PAGE,
            count: WORDS_DRIVE_COUNT,
            walk: true,
            blocks: true,
            block_page: WORDS_BLOCK_PAGE,
        }
    }
}

/// Whether the full-text index holds fewer than `cap` matches of `words`
/// in `account` (reads at most `cap` of them).
fn fewer_matches(conn: &Connection, account: i64, words: &str, cap: usize) -> Result<bool> {
    Ok(matches_up_to(conn, account, words, cap)? < cap)
}

/// The full-text index's matches of `words` in `account`, counted up to
/// `cap` (reads at most `cap` of them).
fn matches_up_to(conn: &Connection, account: i64, words: &str, cap: usize) -> Result<usize> {
    let (first, last) = account_keys(account);
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT rowid FROM event_words \
             WHERE event_words MATCH ?1 AND rowid BETWEEN ?2 AND ?3 LIMIT ?4)",
        )
        .map_err(sql_error)?
        .query_row(rusqlite::params![words, first, last, cap as i64], |r| {
            r.get(0)
        })
        .map_err(sql_error)?;
    Ok(n as usize)
}

/// SQL conditions and their parameters.
#[derive(Debug, Default, Clone)]
struct Conditions {
    sql: Vec<String>,
    params: Vec<Value>,
}

impl Conditions {
    fn push(&mut self, condition: &str, params: impl IntoIterator<Item = Value>) {
        self.sql.push(condition.to_string());
        self.params.extend(params);
    }

    /// A dictionary column's choice that does not lead the search: the
    /// accepted ids (or the rejected ones, when fewer), NULL as it says.
    fn choice(&mut self, column: IdColumn, choice: &IdChoice) {
        let name = column.name();
        let (list, negate) = if choice.accepted.len() <= choice.rejected.len() {
            (&choice.accepted, false)
        } else {
            (&choice.rejected, true)
        };
        let test = match (negate, list.is_empty()) {
            (false, true) => "0".to_string(),
            (true, true) => format!("{name} IS NOT NULL"),
            (false, false) => format!("{name} IN (SELECT value FROM json_each(?))"),
            (true, false) => format!("{name} NOT IN (SELECT value FROM json_each(?))"),
        };
        let test = if choice.null {
            format!("({name} IS NULL OR {test})")
        } else {
            format!("({name} IS NOT NULL AND {test})")
        };
        let params = (!list.is_empty()).then(|| Value::Text(json_ids(list)));
        self.push(&test, params);
    }

    fn ids(&mut self, column: IdColumn, ids: &[i64]) {
        match ids {
            [one] => self.push(&format!("{} = ?", column.name()), [Value::Integer(*one)]),

            many => {
                let marks = vec!["?"; many.len()].join(", ");
                self.push(
                    &format!("{} IN ({marks})", column.name()),
                    many.iter().map(|id| Value::Integer(*id)),
                );
            }
        }
    }

    fn text(&self) -> String {
        self.sql.join(" AND ")
    }

    /// The key is among the full-text index's matches of `words` (the
    /// index's rowid is the log's key, migration 0014), read within the
    /// account's key range only.
    fn push_words(&mut self, account: i64, words: &str) {
        let (first, last) = account_keys(account);
        self.push(
            "key IN (SELECT rowid FROM event_words WHERE event_words MATCH ? AND rowid BETWEEN ? AND ?)",
            [
                Value::Text(words.to_string()),
                Value::Integer(first),
                Value::Integer(last),
            ],
        );
    }
}

/// Bounds of the rows a statement may read beyond the filter: a page's
/// cursor and snapshot, or a seq window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds {
    /// Only rows before this `(time, seq)` in newest-first order.
    pub before: Option<(i64, u64)>,
    /// Only seqs above this.
    pub after_seq: Option<u64>,
    /// Only seqs up to this.
    pub through_seq: Option<u64>,
}

impl Bounds {
    /// The rows of a walk after `cursor` (or its first page), no newer than
    /// the walk's snapshot.
    pub fn page(cursor: Option<&Cursor>, snapshot_seq: u64) -> Self {
        Bounds {
            before: cursor.map(|c| (c.time.micros(), c.seq)),
            after_seq: None,
            through_seq: Some(snapshot_seq),
        }
    }
}

impl LogFilter {
    /// The same filter, the full-text index driving below `drive`.
    pub fn with_words_drive(mut self, drive: WordsDrive) -> Self {
        self.words_drive = drive;
        self
    }

    /// The free text, inclusive time range (`i64::MIN`/`MAX` when open)
    /// and accepted kinds (`None`: any) when they are all the filter
    /// tests, so that a count or a histogram is read from the index's
    /// rowids and the block summary (`word_blocks::histogram`); `None`
    /// otherwise: any other condition needs each match's row.
    pub(crate) fn block_count(&self) -> Option<BlockCount<'_>> {
        let words = self.words.as_deref()?;
        let plain = self.target.is_none() && self.query.is_none() && self.target_lists.is_empty();
        let kinds = match &self.words_kinds {
            Some(kinds) => Some(kinds),
            None if self.q_words_and_times && self.ids.is_empty() => None,
            None => return None,
        };
        if !(self.words_drive.blocks && plain) {
            return None;
        }
        let from = [self.from, self.q_time_from]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(i64::MIN);
        let to = [self.to, self.q_time_to]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(i64::MAX);
        Some(BlockCount {
            words,
            range: (from, to),
            kinds,
        })
    }

    /// Whether the full-text index has fewer than `cap` matches of the
    /// free text (none: no free text).
    fn words_below(&self, conn: &Connection, cap: usize) -> Result<bool> {
        match &self.words {
            Some(words) => fewer_matches(conn, self.account, words, cap),
            None => Ok(false),
        }
    }

    /// How the rows are found: target, then the full-text index when
    /// `by_words` (its matches are few), then the column with the fewest ids.
    fn driver(&self, ordered: bool, by_words: bool) -> Driver {
        if self.target.is_some() {
            return Driver::Target;
        }
        if by_words && self.words.is_some() {
            return Driver::Words;
        }
        // Fewest ids first; on a tie, event ids before targets before users
        // before places before kinds (usually the more selective).
        let preference = |column: IdColumn| match column {
            IdColumn::Id => 0,
            IdColumn::Target => 1,
            IdColumn::Actor => 2,
            IdColumn::Place => 3,
            IdColumn::Kind => 4,
        };
        let smallest = self
            .ids
            .iter()
            .enumerate()
            .min_by_key(|(_, (column, ids))| (ids.len(), preference(*column)));
        match smallest {
            None => Driver::Time,
            Some((n, (column, ids)))
                if ordered && column.time_ordered() && ids.len() > 1 && ids.len() <= MAX_ARMS =>
            {
                Driver::Arms(n)
            }
            Some((n, _)) => Driver::In(n),
        }
    }

    /// Every condition of the filter and `bounds` except the driving ids'
    /// (`skip`, an index of `ids`; a column may have several lists, from
    /// the parameters and from `q`, and each must hold) and the free
    /// text's when the full-text index drives.
    fn conditions(&self, skip: Option<usize>, bounds: Bounds) -> Conditions {
        self.conditions_but(skip, false, bounds)
    }

    fn conditions_but(&self, skip: Option<usize>, skip_words: bool, bounds: Bounds) -> Conditions {
        let mut c = Conditions::default();
        let (first, last) = account_keys(self.account);
        let first = bounds.after_seq.map_or(first, |seq| {
            event_log::bound_key(self.account, seq.saturating_add(1))
        });
        let last = bounds
            .through_seq
            .map_or(last, |seq| event_log::bound_key(self.account, seq));
        c.push(
            "key BETWEEN ? AND ?",
            [Value::Integer(first), Value::Integer(last)],
        );
        for (n, (column, ids)) in self.ids.iter().enumerate() {
            if Some(n) != skip {
                c.ids(*column, ids);
            }
        }
        if let Some(target) = &self.target {
            c.push("target_hash = ?", [Value::Integer(key_hash64(target))]);
        }
        if let Some(from) = self.from {
            c.push("time >= ?", [Value::Integer(from)]);
        }
        if let Some(to) = self.to {
            c.push("time <= ?", [Value::Integer(to)]);
        }
        c.sql.extend(self.extra.sql.iter().cloned());
        c.params.extend(self.extra.params.iter().cloned());
        if let (Some(words), false) = (&self.words, skip_words) {
            c.push_words(self.account, words);
        }
        if let Some((time, seq)) = bounds.before {
            c.push(
                "(time, key) < (?, ?)",
                [
                    Value::Integer(time),
                    Value::Integer(event_log::bound_key(self.account, seq)),
                ],
            );
        }
        c
    }

    /// The statements' arms: `FROM` clause and conditions of each.
    fn arms(&self, driver: &Driver, bounds: Bounds) -> Vec<(String, Conditions)> {
        match driver {
            Driver::Target => vec![(
                "event_log INDEXED BY event_log_by_target".into(),
                self.conditions(None, bounds),
            )],
            Driver::Time => {
                let mut c = self.conditions(None, bounds);
                c.sql.insert(0, "key >> 40 = ?".into());
                c.params.insert(0, Value::Integer(self.account));
                vec![("event_log INDEXED BY event_log_by_time".into(), c)]
            }
            Driver::Words => {
                let mut c = Conditions::default();
                if let Some(words) = &self.words {
                    c.push_words(self.account, words);
                }
                let rest = self.conditions_but(None, true, bounds);
                c.sql.extend(rest.sql);
                c.params.extend(rest.params);
                // The rowid lookups of the matches: no index of the log.
                vec![("event_log NOT INDEXED".into(), c)]
            }
            Driver::In(n) => {
                let (column, ids) = &self.ids[*n];
                let mut c = self.conditions(Some(*n), bounds);
                let mut driving = Conditions::default();
                driving.ids(*column, ids);
                c.sql.insert(0, driving.text());
                c.params.splice(0..0, driving.params);
                vec![(format!("event_log INDEXED BY {}", column.index()), c)]
            }
            Driver::Arms(n) => {
                let (column, ids) = &self.ids[*n];
                let rest = self.conditions(Some(*n), bounds);
                ids.iter()
                    .map(|id| {
                        let mut c = rest.clone();
                        c.sql.insert(0, format!("{} = ?", column.name()));
                        c.params.insert(0, Value::Integer(*id));
                        (format!("event_log INDEXED BY {}", column.index()), c)
                    })
                    .collect()
            }
        }
    }

    /// Whether rows need their leaf read to confirm a hashed key.
    pub fn confirms(&self) -> bool {
        self.target.is_some() || self.query.is_some() || !self.target_lists.is_empty()
    }

    /// Whether `record` (a row this filter's SQL selected) holds the
    /// filtered target id itself, not only a hash of it, and passes the
    /// terms of `q` that the SQL only narrowed.
    pub fn confirmed(&self, record: &EventRecord) -> Result<bool> {
        if !self.confirmed_leaf(&record.leaf_bytes) {
            return Ok(false);
        }
        match &self.query {
            None => Ok(true),
            Some(query) => query.matches_record(&record.stored()).map_err(|e| {
                StoreError::internal_caused_by(
                    format!("event seq {} has unreadable leaf bytes", record.seq),
                    e,
                )
            }),
        }
    }

    /// Whether every row the filter's statement gives is answered as it is
    /// ([`confirmed`](Self::confirmed) accepts them all without reading them).
    pub fn needs_no_confirmation(&self) -> bool {
        !self.confirms_target() && self.query.is_none()
    }

    /// Whether rows are confirmed against the leaf's target id.
    fn confirms_target(&self) -> bool {
        self.target.is_some() || !self.target_lists.is_empty()
    }

    fn confirmed_leaf(&self, leaf_bytes: &[u8]) -> bool {
        if !self.confirms_target() {
            return true;
        }
        let Ok(view) = LeafView::parse(leaf_bytes) else {
            return false;
        };
        let id = view.target_id();
        self.target
            .as_deref()
            .is_none_or(|target| id == Some(target))
            && self
                .target_lists
                .iter()
                .all(|list| id.is_some_and(|id| list.iter().any(|t| t == id)))
    }
}

/// What the block summary counts ([`LogFilter::block_count`]).
pub(crate) struct BlockCount<'a> {
    pub words: &'a str,
    pub range: (i64, i64),
    /// The event types and actions to hold (`None`: any).
    pub kinds: Option<&'a EventFilter>,
}

/// A statement with its parameters.
pub struct Statement {
    pub sql: String,
    pub params: Vec<Value>,
}

/// Newest-first rows of `filter` within `bounds`; `limit` rows at most
/// when `Some` (a filter that confirms its rows reads lazily instead and
/// stops when it has enough confirmed).
pub fn page_statement(
    filter: &LogFilter,
    bounds: Bounds,
    limit: Option<usize>,
    by_words: bool,
) -> Statement {
    let driver = filter.driver(true, by_words);
    let arms = filter.arms(&driver, bounds);
    let mut params = Vec::new();
    let mut selects = Vec::with_capacity(arms.len());
    for (from, conditions) in arms {
        selects.push(format!(
            "SELECT {BARE_COLUMNS} FROM {from} WHERE {}",
            conditions.text()
        ));
        params.extend(conditions.params);
    }
    let order = if selects.len() > 1 {
        "ORDER BY 2 DESC, 1 DESC"
    } else {
        "ORDER BY time DESC, key DESC"
    };
    let mut sql = format!("{} {order}", selects.join(" UNION ALL "));
    if let (Some(limit), false) = (limit, filter.confirms()) {
        sql.push_str(" LIMIT ?");
        params.push(Value::Integer(limit as i64));
    }
    Statement { sql, params }
}

/// Reads up to `limit` newest-first records of `filter` within `bounds`,
/// each confirmed.
pub fn page(
    conn: &Connection,
    filter: &LogFilter,
    bounds: Bounds,
    limit: usize,
    leaves: &LeafDecoder<'_>,
) -> Result<Vec<EventRecord>> {
    let drive = filter.words_drive;
    // One count of the matches serves both thresholds.
    let matches = match &filter.words {
        Some(words) => Some(matches_up_to(
            conn,
            filter.account,
            words,
            drive.page.max(drive.block_page),
        )?),
        None => None,
    };
    let below = |cap: usize| matches.is_some_and(|n| n < cap);
    if drive.blocks && !filter.confirms() && below(drive.block_page) {
        return block_page(conn, filter, bounds, limit, leaves);
    }
    let by_words = below(drive.page);
    if !by_words && drive.walk {
        if let Some(records) = walk_page(conn, filter, bounds, limit, leaves)? {
            return Ok(records);
        }
    }
    let statement = page_statement(filter, bounds, Some(limit), by_words);
    read_records(conn, filter, statement, Some(limit), leaves)
}

/// The records of `filter` with `after_seq < seq <= through_seq`, by seq:
/// a range of the log's key (the window bounds the work; the filter is
/// checked on each row).
pub fn seq_window(
    conn: &Connection,
    filter: &LogFilter,
    after_seq: u64,
    through_seq: u64,
    leaves: &LeafDecoder<'_>,
) -> Result<Vec<EventRecord>> {
    let statement = seq_window_statement(filter, after_seq, through_seq);
    read_records(conn, filter, statement, None, leaves)
}

/// [`seq_window`] read by the statement that looks each row's personal
/// values up, whatever the filter: what the range scans are checked against.
#[cfg(test)]
pub(crate) fn seq_window_by_rows(
    conn: &Connection,
    filter: &LogFilter,
    after_seq: u64,
    through_seq: u64,
    leaves: &LeafDecoder<'_>,
) -> Result<Vec<EventRecord>> {
    let statement = seq_window_statement(filter, after_seq, through_seq);
    let sql = statement.sql.replacen(BARE_COLUMNS, RECORD_COLUMNS, 1);
    let mut stmt = conn.prepare(&sql).map_err(sql_error)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(statement.params))
        .map_err(sql_error)?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        let record = to_record(event_record(row).map_err(sql_error)?, leaves)?;
        if filter.confirmed(&record)? {
            records.push(record);
        }
    }
    Ok(records)
}

/// [`seq_window`]'s statement: `NOT INDEXED` leaves SQLite the key range
/// only (never a filter column's index, which could hold the whole log's
/// matches before the window).
fn seq_window_statement(filter: &LogFilter, after_seq: u64, through_seq: u64) -> Statement {
    let conditions = filter.conditions(
        None,
        Bounds {
            before: None,
            after_seq: Some(after_seq),
            through_seq: Some(through_seq),
        },
    );
    Statement {
        sql: format!(
            "SELECT {BARE_COLUMNS} FROM event_log NOT INDEXED WHERE {} ORDER BY key",
            conditions.text()
        ),
        params: conditions.params,
    }
}

fn read_records(
    conn: &Connection,
    filter: &LogFilter,
    statement: Statement,
    limit: Option<usize>,
    leaves: &LeafDecoder<'_>,
) -> Result<Vec<EventRecord>> {
    let mut stmt = conn.prepare_cached(&statement.sql).map_err(sql_error)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(statement.params))
        .map_err(sql_error)?;
    if filter.needs_no_confirmation() && limit.is_none_or(|limit| limit > personal_rows::BATCH_ROWS)
    {
        // A long run whose every row is answered: decode beside the read.
        return decode_aside::read(conn, &mut rows, limit, leaves);
    }
    let mut records = Vec::new();
    // Personal values a batch at a time (`personal_rows`); a page reads
    // one batch of its own size.
    let batch_rows = limit.map_or(personal_rows::BATCH_ROWS, |l| {
        l.clamp(1, personal_rows::BATCH_ROWS)
    });
    let mut batch = Vec::with_capacity(batch_rows);
    loop {
        while batch.len() < batch_rows {
            match rows.next().map_err(sql_error)? {
                Some(row) => batch.push(personal_rows::bare_row(row).map_err(sql_error)?),
                None => break,
            }
        }
        let last_batch = batch.len() < batch_rows;
        for row in personal_rows::attach(conn, std::mem::take(&mut batch), leaves.objects)? {
            let record = to_record(row, leaves)?;
            if filter.confirmed(&record)? {
                records.push(record);
                if limit.is_some_and(|limit| records.len() >= limit) {
                    return Ok(records);
                }
            }
        }
        if last_batch {
            return Ok(records);
        }
    }
}

/// The histogram of `filter` counted from the log's indexes (one index
/// entry per matching event; the rows too when a target is confirmed).
pub fn histogram(
    conn: &Connection,
    filter: &LogFilter,
    interval: Interval,
    leaves: &LeafDecoder<'_>,
) -> Result<Vec<Bucket>> {
    if let Some(block) = filter.block_count() {
        let kinds = match block.kinds {
            Some(kinds) => Some(accepted_kinds(conn, filter.account, kinds)?),
            None => None,
        };
        let mut looked_up = 0;
        return crate::word_blocks::histogram(
            conn,
            filter.account,
            block.words,
            block.range,
            kinds.as_deref(),
            interval,
            &mut looked_up,
        );
    }
    let width = interval.micros();
    let offset = interval.offset_micros();
    let bucket_of = |time: i64| (time - offset).div_euclid(width);
    let by_words = filter.words_below(conn, filter.words_drive.count)?;
    let driver = filter.driver(false, by_words);
    let mut arms = filter.arms(&driver, Bounds::default());
    let Some((from, conditions)) = arms.pop() else {
        return Ok(Vec::new());
    };
    let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
    if filter.query.is_some() {
        // Terms of `q` read the whole record (personal values included).
        let statement = Statement {
            sql: format!(
                "SELECT {BARE_COLUMNS} FROM {from} WHERE {}",
                conditions.text()
            ),
            params: conditions.params,
        };
        for record in read_records(conn, filter, statement, None, leaves)? {
            *counts.entry(bucket_of(record.time.micros())).or_default() += 1;
        }
    } else if filter.confirms() {
        let sql = format!(
            "SELECT time, leaf_dict, leaf FROM {from} WHERE {}",
            conditions.text()
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(conditions.params))
            .map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            let time: i64 = row.get(0).map_err(sql_error)?;
            let dictionary: Option<i64> = row.get(1).map_err(sql_error)?;
            let stored: Vec<u8> = row.get(2).map_err(sql_error)?;
            let leaf = leaves.decode(dictionary, stored)?;
            if filter.confirmed_leaf(&leaf) {
                *counts.entry(bucket_of(time)).or_default() += 1;
            }
        }
    } else {
        let sql = format!(
            "SELECT ((time - {offset}) - ((((time - {offset}) % {width}) + {width}) % {width})) / {width} AS bucket, \
             COUNT(*) FROM {from} WHERE {} GROUP BY bucket",
            conditions.text()
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(conditions.params), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(sql_error)?;
        for row in rows {
            let (bucket, count) = row.map_err(sql_error)?;
            *counts.entry(bucket).or_default() += count as u64;
        }
    }
    Ok(counts
        .into_iter()
        .map(|(bucket, count)| Bucket {
            start: Timestamp::from_micros(bucket * width + offset),
            count,
        })
        .collect())
}

/// The histogram of `filter` (texts, resolved here) in `account`.
pub fn histogram_of(
    conn: &Connection,
    account: i64,
    filter: &EventFilter,
    interval: Interval,
    leaves: &LeafDecoder<'_>,
) -> Result<Vec<Bucket>> {
    match resolve(conn, account, filter)? {
        Some(filter) => histogram(conn, &filter, interval, leaves),
        None => Ok(Vec::new()),
    }
}

/// The statements a query of `filter` runs, for `EXPLAIN QUERY PLAN`: the
/// first page, a later page, the histogram's count, and a seq window.
pub fn explained_statements(filter: &LogFilter) -> Vec<Statement> {
    let first = page_statement(filter, Bounds::page(None, u64::MAX >> 24), Some(51), false);
    let later = page_statement(
        filter,
        Bounds::page(
            Some(&Cursor {
                time: Timestamp::from_micros(0),
                seq: 9,
                snapshot_seq: 99,
            }),
            99,
        ),
        Some(51),
        false,
    );
    let driver = filter.driver(false, false);
    let mut counts = Vec::new();
    if let Some((from, conditions)) = filter.arms(&driver, Bounds::default()).pop() {
        counts.push(Statement {
            sql: format!("SELECT COUNT(*) FROM {from} WHERE {}", conditions.text()),
            params: conditions.params,
        });
    }
    // The personal values of every page's and window's rows.
    for (sql, params) in personal_rows::explained_statements(filter.account) {
        counts.push(Statement {
            sql: sql.into(),
            params,
        });
    }
    counts.push(seq_window_statement(filter, 10, 20));
    [first, later].into_iter().chain(counts).collect()
}

/// The event with id `id` in `account`: the rows whose id hash is the id's,
/// confirmed against the id in each one's leaf.
pub fn find_by_id(
    conn: &Connection,
    account: i64,
    id: &str,
    leaves: &LeafDecoder<'_>,
) -> Result<Option<EventRecord>> {
    let (first, last) = account_keys(account);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM event_log INDEXED BY event_log_by_id \
             WHERE id_hash = ?1 AND key BETWEEN ?2 AND ?3"
        ))
        .map_err(sql_error)?;
    let mut rows = stmt
        .query(rusqlite::params![key_hash64(id), first, last])
        .map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let record = to_record(event_record(row).map_err(sql_error)?, leaves)?;
        let same = LeafView::parse(&record.leaf_bytes)
            .map(|view| view.id() == id)
            .unwrap_or(false);
        if same {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

// ---- A first page of free text in many events: walk and sweep (`walk_page`) ----
//
// A newest-first page of free text in many events, read from the
// full-text index without testing a whole index range against its
// matches (which builds the set of every match first: a word in millions
// of events costs seconds) nor looking up every match.
//
// Keys (the log's seq order) and times (the client's) mostly agree, but
// not always, so the walk only *estimates* and a sweep makes it exact:
//
// 1. **Walk**: from the key of the newest event at or before the page's
//    time bound, the index's matches are read in descending key order and
//    each row looked up with every other condition of the filter, until
//    `limit` rows pass. The oldest of them has time `T`; so at least
//    `limit` eligible events are at `T` or newer, and every event of the
//    true page is at `T` or newer.
// 2. **Sweep**: every event of the account whose time is in `[T, bound]`
//    (one range of `event_log_by_time`, about `limit × events ÷ matches`
//    entries) is a candidate; those among the index's matches (read over
//    the candidates' key range) are looked up with the conditions, and
//    the newest `limit` of them are the page, whatever order they were
//    appended in.
//
// When the walk cannot fill a page within [`WALK_BUDGET`] lookups (the
// other terms reject most matches), the caller reads the usual way.

/// The most rows the walk looks up before it gives the page up to the
/// usual reading.
pub const WALK_BUDGET: usize = 2_000;

/// Index matches read per step of the walk.
const WALK_STEP: i64 = 128;

/// The widest gap between two candidates' keys read as one range of the
/// index's matches.
const RUN_GAP: i64 = 4_096;

/// The page (`limit` records at most, newest first), or `None` when the
/// walk gave up (the caller reads the usual way). Only for filters whose
/// SQL is exact (no record to confirm).
fn walk_page(
    conn: &Connection,
    filter: &LogFilter,
    bounds: Bounds,
    limit: usize,
    leaves: &LeafDecoder<'_>,
) -> Result<Option<Vec<EventRecord>>> {
    let Some(words) = filter.words.as_deref() else {
        return Ok(None);
    };
    if limit == 0 || filter.confirms() {
        return Ok(None);
    }
    let account = filter.account;
    let (first, last) = account_keys(account);
    let last = bounds
        .through_seq
        .map_or(last, |seq| event_log::bound_key(account, seq));
    // The newest time a row of the page may have.
    let mut high = bounds.before.map(|(time, _)| time);
    for to in [filter.to, filter.q_time_to].into_iter().flatten() {
        high = Some(high.map_or(to, |h| h.min(to)));
    }
    let rest = filter.conditions_but(None, true, bounds);
    let lookup_sql = format!(
        "SELECT time FROM event_log WHERE key = ? AND {}",
        rest.text()
    );
    let lookup = |key: i64| -> Result<Option<i64>> {
        let mut params = Vec::with_capacity(rest.params.len() + 1);
        params.push(Value::Integer(key));
        params.extend(rest.params.iter().cloned());
        conn.prepare_cached(&lookup_sql)
            .map_err(sql_error)?
            .query_row(rusqlite::params_from_iter(params), |r| r.get(0))
            .optional()
            .map_err(sql_error)
    };
    // 1. The walk, from the newest event at or before `high`.
    let start = match high {
        None => last,
        Some(high) => conn
            .prepare_cached(
                "SELECT key FROM event_log INDEXED BY event_log_by_time \
                 WHERE key >> 40 = ?1 AND time <= ?2 ORDER BY time DESC LIMIT 1",
            )
            .map_err(sql_error)?
            .query_row(rusqlite::params![account, high], |r| r.get::<_, i64>(0))
            .optional()
            .map_err(sql_error)?
            .map_or(first - 1, |key| key.min(last)),
    };
    let mut found: Vec<(i64, i64)> = Vec::new();
    let mut looked_up = 0;
    let mut upper = start;
    'walk: while upper >= first && found.len() < limit {
        let keys = matches_between(conn, words, first, upper, Some(WALK_STEP))?;
        if keys.is_empty() {
            break;
        }
        for key in keys {
            upper = key - 1;
            looked_up += 1;
            if let Some(time) = lookup(key)? {
                found.push((time, key));
                if found.len() >= limit {
                    break 'walk;
                }
            }
            if looked_up >= WALK_BUDGET {
                return Ok(None);
            }
        }
    }
    // 2. The sweep: every event in [T, high]. (Fewer than `limit` passed:
    // the walk reached the account's first match; the usual reading is
    // as cheap.)
    let Some(floor) = found
        .iter()
        .map(|(time, _)| *time)
        .min()
        .filter(|_| found.len() >= limit)
    else {
        return Ok(None);
    };
    let mut sweep_sql = String::from(
        "SELECT key FROM event_log INDEXED BY event_log_by_time \
         WHERE key >> 40 = ? AND key BETWEEN ? AND ? AND time >= ?",
    );
    let mut params = vec![
        Value::Integer(account),
        Value::Integer(first),
        Value::Integer(last),
        Value::Integer(floor),
    ];
    if let Some(high) = high {
        sweep_sql.push_str(" AND time <= ?");
        params.push(Value::Integer(high));
    }
    let mut candidates: Vec<i64> = conn
        .prepare_cached(&sweep_sql)
        .map_err(sql_error)?
        .query_map(rusqlite::params_from_iter(params), |r| r.get(0))
        .map_err(sql_error)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql_error)?;
    candidates.sort_unstable();
    // The index's matches among them, read over each run of nearby keys
    // (an event appended long after its time would otherwise stretch one
    // range over most of the index).
    let mut matching: HashSet<i64> = HashSet::new();
    let mut run: Option<(i64, i64)> = None;
    for &key in &candidates {
        run = match run {
            Some((low, high)) if key - high <= RUN_GAP => Some((low, key)),
            Some((low, high)) => {
                matching.extend(matches_between(conn, words, low, high, None)?);
                Some((key, key))
            }
            None => Some((key, key)),
        };
    }
    if let Some((low, high)) = run {
        matching.extend(matches_between(conn, words, low, high, None)?);
    }
    let mut page: Vec<(i64, i64)> = Vec::new();
    for key in candidates {
        if matching.contains(&key) {
            if let Some(time) = lookup(key)? {
                page.push((time, key));
            }
        }
    }
    page.sort_unstable_by(|a, b| b.cmp(a));
    page.truncate(limit);
    let keys: Vec<i64> = page.iter().map(|(_, key)| *key).collect();
    records_of(conn, keys, leaves).map(Some)
}

/// The records of `keys`, newest first.
fn records_of(
    conn: &Connection,
    keys: Vec<i64>,
    leaves: &LeafDecoder<'_>,
) -> Result<Vec<EventRecord>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {BARE_COLUMNS} FROM event_log WHERE key IN (SELECT value FROM json_each(?)) \
             ORDER BY time DESC, key DESC"
        ))
        .map_err(sql_error)?;
    let rows = stmt
        .query_map([serde_json::Value::from(keys).to_string()], |row| {
            personal_rows::bare_row(row)
        })
        .map_err(sql_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_error)?;
    personal_rows::attach(conn, rows, leaves.objects)?
        .into_iter()
        .map(|row| to_record(row, leaves))
        .collect()
}

/// A newest-first page of free text with few matches (below
/// `WordsDrive::page`), for a filter whose SQL is exact: the matches'
/// keys are read from the index (rowids only), and rows are looked up
/// block by block from the newest, only while a block's summary says it
/// could still hold a row of the page (`word_blocks::newest`), instead of
/// looking up every match and sorting them all. Every other condition
/// (cursor, snapshot, other terms) is tested on each row looked up.
fn block_page(
    conn: &Connection,
    filter: &LogFilter,
    bounds: Bounds,
    limit: usize,
    leaves: &LeafDecoder<'_>,
) -> Result<Vec<EventRecord>> {
    let Some(words) = filter.words.as_deref() else {
        return Ok(Vec::new());
    };
    let account = filter.account;
    let (first, last) = account_keys(account);
    let last = bounds
        .through_seq
        .map_or(last, |seq| event_log::bound_key(account, seq));
    let matches = matches_between(conn, words, first, last, None)?;
    let high = [
        bounds.before.map(|(time, _)| time),
        filter.to,
        filter.q_time_to,
    ]
    .into_iter()
    .flatten()
    .min();
    let low = [filter.from, filter.q_time_from]
        .into_iter()
        .flatten()
        .max();
    let rest = filter.conditions_but(None, true, bounds);
    // Rowid lookups only (`NOT INDEXED`), never another index's range.
    let sql = format!(
        "SELECT time, key FROM event_log NOT INDEXED \
         WHERE key IN (SELECT value FROM json_each(?)) AND {}",
        rest.text()
    );
    let rows = crate::word_blocks::newest(conn, account, &matches, limit, (low, high), |keys| {
        let mut params = Vec::with_capacity(rest.params.len() + 1);
        params.push(Value::Text(
            serde_json::Value::from(keys.to_vec()).to_string(),
        ));
        params.extend(rest.params.iter().cloned());
        let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(sql_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_error)
    })?;
    records_of(conn, rows.into_iter().map(|(_, key)| key).collect(), leaves)
}

/// The full-text index's matches of `words` with keys in `[low, high]`,
/// highest first, `limit` of them at most.
fn matches_between(
    conn: &Connection,
    words: &str,
    low: i64,
    high: i64,
    limit: Option<i64>,
) -> Result<Vec<i64>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT rowid FROM event_words WHERE event_words MATCH ?1 \
             AND rowid BETWEEN ?2 AND ?3 ORDER BY rowid DESC LIMIT ?4",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(
            rusqlite::params![words, low, high, limit.unwrap_or(-1)],
            |r| r.get(0),
        )
        .map_err(sql_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact `target:` lists with terms the indexes answer exactly are
    /// confirmed on the leaf's target id alone; any term the indexes only
    /// narrow (a prefix, a negation, a phrase, `actor.name`) keeps the
    /// whole `q` confirmed on each record.
    #[test]
    fn exact_targets_alone_are_confirmed_on_the_leaf() {
        let zone = auditlog_core::search::Zone::utc();
        let only = |q: &str| {
            let query = Query::parse(q, &zone).unwrap();
            SearchPlan::of_query(&query).confirm && only_targets_confirm(&query)
        };
        for q in [
            "target:TC-1",
            "target:TC-1,TC-2 target:TC-2",
            "target:TC-1 type:\"Test Case\" -action:Update user:u-1 project:P*",
            "target:TC-1 time:2026-01-01..2026-02-01 seq:>5 word",
        ] {
            assert!(only(q), "{q}");
        }
        for q in [
            "target:TC-*",
            "target:TC-1 -target:TC-2",
            "target:TC-1 actor.name:Ada",
            "target:TC-1 \"two words\"",
            "target:TC-1 time:2026-01-01,2026-02-01",
            "type:Login",
            "id:e1",
        ] {
            assert!(!only(q), "{q}");
        }
    }
}
