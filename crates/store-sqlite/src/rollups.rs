//! The per-day rollups of migrations 0005 and 0023: counted by the writer in each
//! group commit ([`DayCounts`]), recounted at open when they miss events
//! ([`recount_stale`]), and read by day and week histograms ([`histogram`]).
//!
//! A histogram whose filter uses only the rollup's columns (event type,
//! action, project) and a time range is answered from one rollup row per day
//! and combination for the days the range covers whole; the partial first and
//! last days are counted from the events index, exactly as before. The cost
//! is then bounded by the number of days and combinations instead of the
//! number of matching events. Other filters and hour buckets keep the index
//! path (`query::histogram`).
//!
//! `q` is served the same way when all its terms are on those columns:
//! `type`, `action` and `project` terms (negated, OR lists, prefixes) are
//! evaluated on every text of the account's dictionary, as the index path
//! evaluates them on its ids, and become the texts the rollup rows may
//! hold ([`QueryTexts`]); `time` terms (OR lists and negations too) become
//! a few disjoint time ranges ([`time_ranges`]), each read as whole days
//! from the rollups and edges from the index. Any other term (`app`,
//! `target`, free text, ..., and `user` with `project`) needs the events:
//! the index path.
//!
//! Filters that select users (the `users` parameter, `q`'s `user` terms:
//! negated, OR lists, prefixes) and otherwise only times are answered the
//! same way from `actor_rollups` (migration 0023: per account, actor and
//! day, the actor being its `actors` row id, so that no personal value is
//! stored): the terms are evaluated on every actor of the account
//! ([`ActorChoice`]), and the whole days read the accepted actors' rows, or
//! the day totals less the rejected actors' rows when those are fewer.
//! Users with event types and actions read `actor_kind_rollups` (migration
//! 0025: per actor, day and kind, the kind its `log_values` id) the same
//! way: the accepted actors' rows of the accepted kinds
//! ([`query::accepted_kinds`]), or the kinds' day totals less the rejected
//! actors' rows ([`ActorChoice::kind_clause`]).

use crate::event_log;
use crate::query;
use crate::sql::{sql_error, LeafDecoder};
use auditlog_core::search::{Query, Term, Test, TextKey};
use auditlog_core::NewEvent;
use auditlog_core::{EventFilter, Interval, Timestamp};
use auditlog_store::leaf_codec::DictionaryCache;
use auditlog_store::{Bucket, Result};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeMap, BTreeSet, HashMap};

// Time ranges and whole days: shared with the PostgreSQL backend.
use auditlog_store::day_ranges::DAY;
pub use auditlog_store::day_ranges::{split, time_ranges};
pub use auditlog_store::rollup_filters::applies;
use auditlog_store::rollup_filters::{by_actor, by_texts, on_user};

/// The events one group commit adds, counted per rollup row (of
/// `event_rollups` and of `actor_rollups`), so that the writer updates each
/// row once per commit instead of once per event.
#[derive(Default)]
pub struct DayCounts<'a> {
    counts: HashMap<(i64, i64, &'a str, &'a str, Option<&'a str>), i64>,
    /// `(account, actor, day)`: the actor is its `actors` row id.
    actors: HashMap<(i64, i64, i64), i64>,
    /// `(account, actor, day, kind)`: the kind is its `log_values` row id.
    actor_kinds: HashMap<(i64, i64, i64, i64), i64>,
}

impl<'a> DayCounts<'a> {
    /// Counts `event` of `account`, whose actor is `actors` row `actor`
    /// and whose type and action are `log_values` row `kind`.
    pub fn add(&mut self, account: i64, event: &'a NewEvent, actor: i64, kind: i64) {
        let day = event.time().micros().div_euclid(DAY);
        let key = (
            account,
            day,
            event.event_type(),
            event.action(),
            event.project(),
        );
        *self.counts.entry(key).or_default() += 1;
        *self.actors.entry((account, actor, day)).or_default() += 1;
        *self
            .actor_kinds
            .entry((account, actor, day, kind))
            .or_default() += 1;
    }

    /// Adds the counts in the appending transaction `conn`.
    pub fn write(self, conn: &Connection) -> Result<()> {
        let mut upsert = conn
            .prepare_cached(
                "INSERT INTO event_rollups (account_id, day, event_type, action, has_project, project, count) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (account_id, day, event_type, action, has_project, project) \
                 DO UPDATE SET count = count + excluded.count",
            )
            .map_err(sql_error)?;
        for ((account, day, event_type, action, project), count) in self.counts {
            upsert
                .execute(params![
                    account,
                    day,
                    event_type,
                    action,
                    project.is_some(),
                    project.unwrap_or(""),
                    count
                ])
                .map_err(sql_error)?;
        }
        let mut upsert = conn
            .prepare_cached(
                "INSERT INTO actor_rollups (account_id, actor, day, count) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (account_id, actor, day) DO UPDATE SET count = count + excluded.count",
            )
            .map_err(sql_error)?;
        for ((account, actor, day), count) in self.actors {
            upsert
                .execute(params![account, actor, day, count])
                .map_err(sql_error)?;
        }
        let mut upsert = conn
            .prepare_cached(
                "INSERT INTO actor_kind_rollups (account_id, actor, day, kind, count) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account_id, actor, day, kind) \
                 DO UPDATE SET count = count + excluded.count",
            )
            .map_err(sql_error)?;
        for ((account, actor, day, kind), count) in self.actor_kinds {
            upsert
                .execute(params![account, actor, day, kind, count])
                .map_err(sql_error)?;
        }
        Ok(())
    }
}

/// Subtracts the removed event `key` (still in the log) from the day
/// rollups: its `event_rollups` row and its `actor_rollups` and
/// `actor_kind_rollups` rows, each deleted when no event is left in it. Runs in the removing transaction.
pub(crate) fn subtract_removed(conn: &Connection, account: i64, key: i64) -> Result<()> {
    conn.prepare_cached(&format!(
        "UPDATE event_rollups SET count = count - 1 \
         WHERE (account_id, day, event_type, action, has_project, project) = ( \
           SELECT ?1, (e.time - (((e.time % {DAY}) + {DAY}) % {DAY})) / {DAY}, \
                  json_extract(k.value, '$[0]'), json_extract(k.value, '$[1]'), \
                  COALESCE(json_type(p.value, '$[0]') = 'text', 0), \
                  COALESCE(json_extract(p.value, '$[0]'), '') \
           FROM event_log e JOIN log_values k ON k.id = e.kind \
           LEFT JOIN log_values p ON p.id = e.place WHERE e.key = ?2)"
    ))
    .map_err(sql_error)?
    .execute(params![account, key])
    .map_err(sql_error)?;
    let row: Option<(i64, i64, i64)> = conn
        .prepare_cached("SELECT actor, time, kind FROM event_log WHERE key = ?1")
        .map_err(sql_error)?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .map_err(sql_error)?;
    if let Some((actor, time, kind)) = row {
        let day = time.div_euclid(DAY);
        conn.prepare_cached(
            "UPDATE actor_rollups SET count = count - 1 \
             WHERE account_id = ?1 AND actor = ?2 AND day = ?3",
        )
        .map_err(sql_error)?
        .execute(params![account, actor, day])
        .map_err(sql_error)?;
        conn.prepare_cached(
            "DELETE FROM actor_rollups WHERE account_id = ?1 AND actor = ?2 AND day = ?3 AND count <= 0",
        )
        .map_err(sql_error)?
        .execute(params![account, actor, day])
        .map_err(sql_error)?;
        conn.prepare_cached(
            "UPDATE actor_kind_rollups SET count = count - 1 \
             WHERE account_id = ?1 AND actor = ?2 AND day = ?3 AND kind = ?4",
        )
        .map_err(sql_error)?
        .execute(params![account, actor, day, kind])
        .map_err(sql_error)?;
        conn.prepare_cached(
            "DELETE FROM actor_kind_rollups \
             WHERE account_id = ?1 AND actor = ?2 AND day = ?3 AND kind = ?4 AND count <= 0",
        )
        .map_err(sql_error)?
        .execute(params![account, actor, day, kind])
        .map_err(sql_error)?;
    }
    Ok(())
}

/// Recounts the rollups of every account whose rollup total differs from its
/// number of events (`seq` is gapless, so that is its highest `seq`, less
/// its removed bodies): events appended by a build older than migration
/// 0005 (`event_rollups`), 0023 (`actor_rollups`) or 0025
/// (`actor_kind_rollups`) after it ran (a downgrade,
/// then an upgrade), or edited by hand. The rollups are derived data, so
/// rebuilding them from the events is always right. Runs at open; a check
/// reads one index entry and the account's rollup rows.
///
/// The check runs in a read transaction, and the write lock is taken only
/// when something is stale (then checked again under it). Every command
/// opens the store, also while a server runs on it; summing every rollup
/// row under the write lock made that server's writer wait for the sum
/// (1.1M rollup rows at 1M events, and more as the store grows).
pub fn recount_stale(conn: &mut Connection) -> Result<()> {
    let stale = {
        let tx = conn.transaction().map_err(sql_error)?;
        let stale = !stale_rollups(&tx)?.is_empty();
        tx.finish().map_err(sql_error)?;
        stale
    };
    if !stale {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    for stale in stale_rollups(&tx)? {
        let (table, insert) = ROLLUPS[stale.rollup];
        tracing::warn!(
            account_id = stale.account_id,
            events = stale.events,
            rolled_up = stale.rolled_up,
            table,
            "a rollup does not count every event: recounting it from the events"
        );
        recount(&tx, stale.account_id, table, &insert())?;
    }
    tx.commit().map_err(sql_error)
}

/// The rollup tables kept beside the log, each counting every event, and
/// the statement that rebuilds one account's rows from its events (see
/// [`recount`]).
type RecountStatement = fn() -> String;
const ROLLUPS: [(&str, RecountStatement); 3] = [
    ("event_rollups", days_insert),
    ("actor_rollups", actors_insert),
    ("actor_kind_rollups", actor_kinds_insert),
];

/// A rollup table whose rows for an account do not count its events.
struct StaleRollup {
    account_id: i64,
    /// Index in [`ROLLUPS`].
    rollup: usize,
    events: i64,
    rolled_up: i64,
}

fn stale_rollups(tx: &Connection) -> Result<Vec<StaleRollup>> {
    let accounts: Vec<i64> = {
        let mut stmt = tx
            .prepare("SELECT id FROM accounts ORDER BY id")
            .map_err(sql_error)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(sql_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_error)?
    };
    let mut stale = Vec::new();
    for account_id in accounts {
        // Removed bodies (pruned, erased) are no longer counted.
        let events = event_log::last_seq(tx, account_id)? as i64
            - crate::tombstones::removed_count(tx, account_id)? as i64;
        for (rollup, (table, _)) in ROLLUPS.iter().enumerate() {
            let rolled_up: i64 = tx
                .query_row(
                    &format!("SELECT COALESCE(SUM(count), 0) FROM {table} WHERE account_id = ?1"),
                    [account_id],
                    |r| r.get(0),
                )
                .map_err(sql_error)?;
            if rolled_up != events {
                stale.push(StaleRollup {
                    account_id,
                    rollup,
                    events,
                    rolled_up,
                });
            }
        }
    }
    Ok(stale)
}

/// The statement that rebuilds `event_rollups` for one account.
fn days_insert() -> String {
    // The log holds ids: the texts come from the account's values (a
    // value that is not the JSON array it must be counts under "").
    format!(
            "INSERT INTO event_rollups (account_id, day, event_type, action, has_project, project, count) \
             SELECT ?1, day, event_type, action, project IS NOT NULL, COALESCE(project, ''), SUM(n) FROM ( \
               SELECT (e.time - (((e.time % {DAY}) + {DAY}) % {DAY})) / {DAY} AS day, \
               COALESCE(CASE WHEN json_valid(k.value) THEN json_extract(k.value, '$[0]') END, '') AS event_type, \
               COALESCE(CASE WHEN json_valid(k.value) THEN json_extract(k.value, '$[1]') END, '') AS action, \
               CASE WHEN json_valid(p.value) THEN json_extract(p.value, '$[0]') END AS project, \
               COUNT(*) AS n \
               FROM event_log e LEFT JOIN log_values k ON k.id = e.kind LEFT JOIN log_values p ON p.id = e.place \
               WHERE e.key BETWEEN ?2 AND ?3 GROUP BY 1, e.kind, e.place) \
             GROUP BY 2, 3, 4, 5, 6"
    )
}

/// The statement that rebuilds `actor_rollups` for one account.
fn actors_insert() -> String {
    format!(
        "INSERT INTO actor_rollups (account_id, actor, day, count) \
             SELECT ?1, actor, (time - (((time % {DAY}) + {DAY}) % {DAY})) / {DAY}, COUNT(*) \
             FROM event_log WHERE key BETWEEN ?2 AND ?3 GROUP BY 2, 3"
    )
}

/// The statement that rebuilds `actor_kind_rollups` for one account.
fn actor_kinds_insert() -> String {
    format!(
        "INSERT INTO actor_kind_rollups (account_id, actor, day, kind, count) \
             SELECT ?1, actor, (time - (((time % {DAY}) + {DAY}) % {DAY})) / {DAY}, kind, COUNT(*) \
             FROM event_log WHERE key BETWEEN ?2 AND ?3 GROUP BY 2, 3, 4"
    )
}

/// Recounts `table`'s rows of an account from its events (`insert`, whose
/// parameters are the account and its first and last keys).
fn recount(tx: &Connection, account_id: i64, table: &str, insert: &str) -> Result<()> {
    tx.execute(
        &format!("DELETE FROM {table} WHERE account_id = ?1"),
        [account_id],
    )
    .map_err(sql_error)?;
    let (first, last) = event_log::account_keys(account_id);
    tx.execute(insert, params![account_id, first, last])
        .map_err(sql_error)?;
    Ok(())
}

/// The texts of one rollup column that `q`'s terms on it accept, from
/// the account's dictionary: the accepted and the rejected ones partition
/// every text the column holds, so either list selects the same rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TextChoice {
    pub accepted: Vec<String>,
    pub rejected: Vec<String>,
    /// Whether an event without the field (no project) is accepted.
    pub none: bool,
}

impl TextChoice {
    /// Evaluates the terms on `key` among `terms` on each of `texts`;
    /// `None` when no term is on `key`.
    fn of(terms: &[Term], key: TextKey, texts: &BTreeSet<String>) -> Option<TextChoice> {
        let on_key: Vec<&Term> = terms
            .iter()
            .filter(|t| matches!(&t.test, Test::Text { key: k, .. } if *k == key))
            .collect();
        if on_key.is_empty() {
            return None;
        }
        let holds = |text: Option<&str>| {
            on_key
                .iter()
                .all(|t| t.holds_on_text(text).unwrap_or(false))
        };
        let mut choice = TextChoice {
            none: holds(None),
            ..TextChoice::default()
        };
        for text in texts {
            if holds(Some(text)) {
                choice.accepted.push(text.clone());
            } else {
                choice.rejected.push(text.clone());
            }
        }
        Some(choice)
    }

    /// Whether no row can pass (no text accepted, nor the absence of one).
    fn rejects_all(&self, column_may_be_absent: bool) -> bool {
        self.accepted.is_empty() && !(column_may_be_absent && self.none)
    }
}

/// `q`'s `type`, `action` and `project` terms as the texts the rollup rows
/// may hold (`None` for a column without terms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueryTexts {
    pub event_types: Option<TextChoice>,
    pub actions: Option<TextChoice>,
    pub projects: Option<TextChoice>,
}

impl QueryTexts {
    /// `query`'s terms evaluated on the account's dictionary (read in the
    /// caller's transaction, so that it holds every text of the rollups it
    /// reads next); `None` when they accept no event.
    pub(crate) fn resolve(
        conn: &Connection,
        account: i64,
        query: &Query,
    ) -> Result<Option<QueryTexts>> {
        let terms = query.terms();
        let on = |key: TextKey| {
            terms
                .iter()
                .any(|t| matches!(&t.test, Test::Text { key: k, .. } if *k == key))
        };
        let mut texts = QueryTexts::default();
        if on(TextKey::Type) || on(TextKey::Action) {
            let (mut types, mut actions) = (BTreeSet::new(), BTreeSet::new());
            for (_, fields) in query::dictionary(conn, account, event_log::KIND_EVENT)? {
                if let Some(Some(t)) = fields.first() {
                    types.insert(t.clone());
                }
                if let Some(Some(a)) = fields.get(1) {
                    actions.insert(a.clone());
                }
            }
            texts.event_types = TextChoice::of(terms, TextKey::Type, &types);
            texts.actions = TextChoice::of(terms, TextKey::Action, &actions);
        }
        if on(TextKey::Project) {
            let mut projects = BTreeSet::new();
            for (_, fields) in query::dictionary(conn, account, event_log::KIND_PLACE)? {
                if let Some(Some(p)) = fields.first() {
                    projects.insert(p.clone());
                }
            }
            texts.projects = TextChoice::of(terms, TextKey::Project, &projects);
        }
        let none_pass = [&texts.event_types, &texts.actions]
            .into_iter()
            .flatten()
            .any(|c| c.rejects_all(false))
            || texts.projects.as_ref().is_some_and(|c| c.rejects_all(true));
        Ok((!none_pass).then_some(texts))
    }
}

/// The histogram of `filter` at `interval` (which [`applies`] accepts),
/// read in one transaction so that the dictionary, the rollups and the
/// edges agree.
pub fn histogram(
    conn: &mut Connection,
    dictionaries: &DictionaryCache,
    account: i64,
    filter: &EventFilter,
    interval: Interval,
) -> Result<Vec<Bucket>> {
    let tx = conn.transaction().map_err(sql_error)?;
    let leaves = LeafDecoder {
        cache: dictionaries,
        conn: &tx,
        objects: None,
    };
    let Some(ranges) = time_ranges(filter) else {
        let buckets = query::histogram_of(&tx, account, filter, interval, &leaves)?;
        tx.commit().map_err(sql_error)?;
        return Ok(buckets);
    };
    let source = if by_texts(filter) {
        match QueryTexts::resolve(&tx, account, &filter.query)? {
            Some(texts) => WholeDays::Texts(texts),
            None => {
                tx.commit().map_err(sql_error)?;
                return Ok(Vec::new());
            }
        }
    } else {
        let actors = ActorChoice::resolve(&tx, account, filter)?;
        if actors.accepted.is_empty() {
            tx.commit().map_err(sql_error)?;
            return Ok(Vec::new());
        }
        if by_actor(filter) {
            WholeDays::Actors(actors)
        } else {
            // Users with event types and actions (`by_actor_and_kind`).
            let kinds = query::accepted_kinds(&tx, account, filter)?;
            let texts = QueryTexts::resolve(&tx, account, &filter.query)?;
            match texts {
                Some(texts) if !kinds.is_empty() => WholeDays::ActorKinds {
                    actors,
                    kinds,
                    texts,
                },
                _ => {
                    tx.commit().map_err(sql_error)?;
                    return Ok(Vec::new());
                }
            }
        }
    };
    // Every range lies within `q`'s time terms: the edges read from the
    // index need only its other terms.
    let mut rest = filter.clone();
    rest.query = filter
        .query
        .without(|term| matches!(term.test, Test::Time(_)));
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for (from, to) in ranges {
        let from = (from != i64::MIN).then_some(from);
        let to = (to != i64::MAX).then_some(to);
        let edges = match split(from, to) {
            None => vec![(from, to)],
            Some(split) => {
                for (day, count) in source.day_counts(&tx, account, filter, split.whole_days)? {
                    let start =
                        interval.bucket_start(Timestamp::from_micros(day.saturating_mul(DAY)));
                    *counts.entry(start.micros()).or_default() += count;
                }
                split.edges
            }
        };
        for (edge_from, edge_to) in edges {
            let mut edge = rest.clone();
            edge.from = edge_from.map(Timestamp::from_micros);
            edge.to = edge_to.map(Timestamp::from_micros);
            for bucket in query::histogram_of(&tx, account, &edge, interval, &leaves)? {
                *counts.entry(bucket.start.micros()).or_default() += bucket.count as i64;
            }
        }
    }
    tx.commit().map_err(sql_error)?;
    // A rollup row whose events were all removed counts 0; the index path
    // has no bucket for it either.
    Ok(counts
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(start, count)| Bucket {
            start: Timestamp::from_micros(start),
            count: count as u64,
        })
        .collect())
}

/// Where a histogram's whole days are counted.
enum WholeDays {
    /// `event_rollups`, for `q`'s texts and the filter's parameters.
    Texts(QueryTexts),
    /// `actor_rollups`, for the actors the filter accepts.
    Actors(ActorChoice),
    /// `actor_kind_rollups`, for the actors and the kinds the filter
    /// accepts (with the texts of those kinds, for day totals).
    ActorKinds {
        actors: ActorChoice,
        kinds: Vec<i64>,
        texts: QueryTexts,
    },
}

impl WholeDays {
    /// `(day, count)` rows over the whole days `days` (a day may come in
    /// several rows; their sum is its count).
    fn day_counts(
        &self,
        tx: &Connection,
        account: i64,
        filter: &EventFilter,
        days: (Option<i64>, Option<i64>),
    ) -> Result<Vec<(i64, i64)>> {
        let (sql, params) = match self {
            WholeDays::Texts(texts) => {
                let clause = rollup_clause(account, filter, texts, days);
                (rollup_sql(&clause), clause.params)
            }
            WholeDays::Actors(actors) => {
                let clause = actors.clause(account, days);
                (clause.sql, clause.params)
            }
            WholeDays::ActorKinds {
                actors,
                kinds,
                texts,
            } => {
                let clause = actors.kind_clause(account, filter, kinds, texts, days);
                (clause.sql, clause.params)
            }
        };
        let mut stmt = tx.prepare_cached(&sql).map_err(sql_error)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(sql_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_error)
    }
}

/// The account's actors (`actors` row ids) that a filter's `users`
/// parameter and `user` terms accept, and those they reject: the two
/// partition the account's actors, as of the reading transaction (an
/// erased subject's row holds the pseudonym, so its id accepts nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ActorChoice {
    pub accepted: Vec<i64>,
    pub rejected: Vec<i64>,
    /// The users were named (the parameter, or a positive exact `user:`
    /// list): only they were read, `rejected` is left empty, and the
    /// accepted actors' rows are read.
    pub named: bool,
}

impl ActorChoice {
    /// Evaluates `filter`'s users (exact ids) and `q`'s `user` terms on
    /// every actor of the account, as the index path does.
    pub(crate) fn resolve(conn: &Connection, account: i64, filter: &EventFilter) -> Result<Self> {
        let terms: Vec<&Term> = filter.query.terms().iter().filter(|t| on_user(t)).collect();
        // Named users: only their `actors` rows are read (by the unique
        // index), not every actor of the account.
        let named = if filter.users.is_empty() {
            query::named_actors(conn, account, &terms)?
        } else {
            Some(query::actors_named(conn, account, &filter.users, &terms)?)
        };
        if let Some(accepted) = named {
            return Ok(ActorChoice {
                accepted,
                rejected: Vec::new(),
                named: true,
            });
        }
        let mut choice = ActorChoice::default();
        for (id, fields) in query::actor_dictionary(conn, account)? {
            let actor_id = fields.first().cloned().flatten();
            let by_parameter = filter.users.is_empty()
                || actor_id
                    .as_ref()
                    .is_some_and(|a| filter.users.iter().any(|u| u == a));
            let holds = by_parameter
                && terms
                    .iter()
                    .all(|t| t.holds_on_text(actor_id.as_deref()).unwrap_or(false));
            if holds {
                choice.accepted.push(id);
            } else {
                choice.rejected.push(id);
            }
        }
        Ok(choice)
    }

    /// The statement of `(day, count)` rows over `days`: the accepted
    /// actors' rows of `actor_rollups`, or, when the rejected ones are
    /// fewer, each day's total from `event_rollups` less the rejected
    /// actors' rows (negated rows), so that `-user:u-1` reads one actor.
    pub(crate) fn clause(
        &self,
        account: i64,
        (first, last): (Option<i64>, Option<i64>),
    ) -> WhereClause {
        let (days, day_params) = day_bounds(first, last);
        let actors = format!(
            "FROM actor_rollups WHERE account_id = ? \
             AND actor IN (SELECT value FROM json_each(?)){days}"
        );
        let mut params = Vec::new();
        let sql = if self.named || self.accepted.len() <= self.rejected.len() {
            params.push(Value::Integer(account));
            params.push(Value::Text(json_ids(&self.accepted)));
            params.extend(day_params);
            format!("SELECT day, count {actors}")
        } else {
            params.push(Value::Integer(account));
            params.extend(day_params.iter().cloned());
            let mut sql = format!(
                "SELECT day, SUM(count) FROM event_rollups WHERE account_id = ?{days} GROUP BY day"
            );
            if !self.rejected.is_empty() {
                params.push(Value::Integer(account));
                params.push(Value::Text(json_ids(&self.rejected)));
                params.extend(day_params);
                sql.push_str(&format!(" UNION ALL SELECT day, -count {actors}"));
            }
            sql
        };
        WhereClause { sql, params }
    }
}

impl ActorChoice {
    /// The statement of `(day, count)` rows over `days` of these actors'
    /// events of `kinds`: the accepted actors' rows of
    /// `actor_kind_rollups`, or, when the rejected ones are fewer, the
    /// kinds' day totals from `event_rollups` (by `filter`'s parameters
    /// and `q`'s `texts`, which select the same events as `kinds`) less
    /// the rejected actors' rows, so that `-user:u-1` reads one actor.
    pub(crate) fn kind_clause(
        &self,
        account: i64,
        filter: &EventFilter,
        kinds: &[i64],
        texts: &QueryTexts,
        (first, last): (Option<i64>, Option<i64>),
    ) -> WhereClause {
        let (days, day_params) = day_bounds(first, last);
        let rows = |actors: &[i64], sign: &str| {
            let mut params = vec![
                Value::Integer(account),
                Value::Text(json_ids(actors)),
                Value::Text(json_ids(kinds)),
            ];
            params.extend(day_params.iter().cloned());
            let sql = format!(
                "SELECT day, {sign}count FROM actor_kind_rollups WHERE account_id = ? \
                 AND actor IN (SELECT value FROM json_each(?)) \
                 AND kind IN (SELECT value FROM json_each(?)){days}"
            );
            (sql, params)
        };
        if self.named || self.accepted.len() <= self.rejected.len() {
            let (sql, params) = rows(&self.accepted, "");
            return WhereClause { sql, params };
        }
        let totals = rollup_clause(account, filter, texts, (first, last));
        let mut sql = rollup_sql(&totals);
        let mut params = totals.params;
        if !self.rejected.is_empty() {
            let (less, less_params) = rows(&self.rejected, "-");
            sql.push_str(" UNION ALL ");
            sql.push_str(&less);
            params.extend(less_params);
        }
        WhereClause { sql, params }
    }
}

/// The `day` bounds of a rollup statement (` AND day >= ? AND day <= ?`
/// as far as given) and their parameters.
fn day_bounds(first: Option<i64>, last: Option<i64>) -> (String, Vec<Value>) {
    let mut days = String::new();
    let mut params = Vec::new();
    if let Some(first) = first {
        days.push_str(" AND day >= ?");
        params.push(Value::Integer(first));
    }
    if let Some(last) = last {
        days.push_str(" AND day <= ?");
        params.push(Value::Integer(last));
    }
    (days, params)
}

/// Ids as one JSON array parameter (read by `json_each`), whatever their
/// number.
fn json_ids(ids: &[i64]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

/// A WHERE clause over `event_rollups` (without the keyword) and its
/// parameters.
pub(crate) struct WhereClause {
    pub sql: String,
    pub params: Vec<Value>,
}

impl WhereClause {
    /// The rows of one account.
    fn new(account_id: i64) -> Self {
        WhereClause {
            sql: "account_id = ?".into(),
            params: vec![Value::Integer(account_id)],
        }
    }

    fn push(&mut self, condition: &str, value: Value) {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
        self.params.push(value);
    }

    fn any_of(&mut self, column: &str, values: &[String]) {
        match values {
            [] => {}
            [one] => self.push(&format!("{column} = ?"), Value::Text(one.clone())),
            many => {
                let marks = vec!["?"; many.len()].join(", ");
                self.sql.push_str(&format!(" AND {column} IN ({marks})"));
                self.params.extend(many.iter().cloned().map(Value::Text));
            }
        }
    }
}

impl WhereClause {
    /// The column holds one of the accepted texts: as the accepted list,
    /// or as not the rejected one when that is shorter (they partition
    /// the column's texts).
    fn choice(&mut self, column: &str, choice: &TextChoice) {
        let (list, negated) = if choice.accepted.len() <= choice.rejected.len() {
            (&choice.accepted, false)
        } else {
            (&choice.rejected, true)
        };
        if list.is_empty() {
            self.sql.push_str(if negated { " AND 1" } else { " AND 0" });
            return;
        }
        let marks = vec!["?"; list.len()].join(", ");
        let not = if negated { "NOT " } else { "" };
        self.sql
            .push_str(&format!(" AND {column} {not}IN ({marks})"));
        self.params.extend(list.iter().cloned().map(Value::Text));
    }
}

/// Counts per day of the rollup rows `clause` selects.
pub(crate) fn rollup_sql(clause: &WhereClause) -> String {
    format!(
        "SELECT day, SUM(count) FROM event_rollups WHERE {} GROUP BY day",
        clause.sql
    )
}

/// The rollup rows of `filter`'s event types, actions and projects (its
/// parameters', and `q`'s as `texts`) over the whole days. A project
/// parameter never matches events without a project.
pub(crate) fn rollup_clause(
    account: i64,
    filter: &EventFilter,
    texts: &QueryTexts,
    (first, last): (Option<i64>, Option<i64>),
) -> WhereClause {
    let mut clause = WhereClause::new(account);
    if let Some(first) = first {
        clause.push("day >= ?", Value::Integer(first));
    }
    if let Some(last) = last {
        clause.push("day <= ?", Value::Integer(last));
    }
    clause.any_of("event_type", &filter.event_types);
    clause.any_of("action", &filter.actions);
    if !filter.projects.is_empty() {
        clause.sql.push_str(" AND has_project = 1");
        clause.any_of("project", &filter.projects);
    }
    if let Some(choice) = &texts.event_types {
        clause.choice("event_type", choice);
    }
    if let Some(choice) = &texts.actions {
        clause.choice("action", choice);
    }
    if let Some(choice) = &texts.projects {
        let mut texts = WhereClause {
            sql: "has_project = 1".into(),
            params: Vec::new(),
        };
        texts.choice("project", choice);
        let test = if choice.none {
            format!("(has_project = 0 OR ({}))", texts.sql)
        } else {
            format!("({})", texts.sql)
        };
        clause.sql.push_str(" AND ");
        clause.sql.push_str(&test);
        clause.params.extend(texts.params);
    }
    clause
}
