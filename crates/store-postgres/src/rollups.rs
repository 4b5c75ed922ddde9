//! Day and week histograms read from the per-day rollups of migration 0022
//! (`event_rollups`: per account, UTC day, `kind` id and project text;
//! `actor_rollups`: per account, actor row id and day), which the event
//! log's triggers keep in the transactions that add and remove its rows.
//!
//! The same filters as on the embedded backend (its `rollups.rs`) are
//! served: a filter of event types, actions and projects (parameters, and
//! `q`'s `type`, `action` and `project` terms: negated, OR lists, prefixes)
//! and times reads `event_rollups`; one of users (the `users` parameter,
//! `user` terms) and times reads `actor_rollups`; users with event types
//! and actions read `actor_kind_rollups` (migration 0024: per account,
//! actor, day and kind). `type`, `action` and
//! `user` terms are evaluated on the account's dictionary exactly as the
//! index path does (`query::resolve`: the ids each accepts), `project`
//! terms on the account's project texts with the same evaluation
//! (`search_plan::choose_ids`), in the same snapshot as the rollup rows, so
//! both paths agree bucket by bucket. `time` terms and `from`/`to` become a
//! few disjoint ranges (`auditlog_store::day_ranges`): their whole UTC days
//! come from the rollups, their partial first and last days from the index
//! (`index_counts::index_counts`). Hour buckets (and so zoned histograms, which
//! the server builds from hours), apps, versions, target ids and other
//! terms keep the index path.

use crate::index_counts::{index_counts, index_histogram};
use crate::query::{self, Param, Resolved};
use crate::sql::pg_error;
use auditlog_core::search::{Term, Test, TextKey};
use auditlog_core::{EventFilter, Interval, Timestamp};
use auditlog_store::day_ranges::{self, DAY};
use auditlog_store::leaf_codec::DictionaryCache;
pub use auditlog_store::rollup_filters::applies;
use auditlog_store::rollup_filters::{by_actor, by_texts};
use auditlog_store::search_plan::{self, IdChoice};
use auditlog_store::{AccountId, Bucket, Result};
use std::collections::BTreeMap;

/// The histogram of `filter` at `interval` (which [`applies`] accepts)
/// in the caller's read transaction: whole days from the rollups,
/// partial days from the index.
pub(crate) async fn histogram(
    tx: &deadpool_postgres::Transaction<'_>,
    dictionaries: &DictionaryCache,
    account: AccountId,
    filter: &EventFilter,
    interval: Interval,
) -> Result<Vec<Bucket>> {
    let Some(ranges) = day_ranges::time_ranges(filter) else {
        return index_histogram(tx, dictionaries, account, filter, interval).await;
    };
    // Every range lies within the filter's times: the rest of the
    // filter is what the rollup rows and the edges must match.
    let mut rest = filter.clone();
    rest.query = filter
        .query
        .without(|term| matches!(term.test, Test::Time(_)));
    rest.from = None;
    rest.to = None;
    let ids = query::resolve(&**tx, account, &rest).await?;
    if ids.confirms(&rest) {
        // Not expected (every term left is exact on the ids), but the
        // index path is right whatever the plan.
        return index_histogram(tx, dictionaries, account, filter, interval).await;
    }
    let source = if by_actor(filter) {
        WholeDays::of_actors(&ids, None)
    } else if by_texts(filter) {
        WholeDays::Dictionary {
            ids: &ids,
            projects: &rest.projects,
            project_choice: project_choice(tx, account, &rest).await?,
        }
    } else {
        // Users with event types and actions (`by_actor_and_kind`).
        WholeDays::of_actors(&ids, Some(&ids))
    };
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for (from, to) in ranges {
        let from = (from != i64::MIN).then_some(from);
        let to = (to != i64::MAX).then_some(to);
        let edges = match day_ranges::split(from, to) {
            None => vec![(from, to)],
            Some(split) => {
                let (sql, params) = source.statement(account, split.whole_days);
                let statement = tx.prepare_cached(&sql).await.map_err(pg_error)?;
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                for row in tx.query(&statement, &refs).await.map_err(pg_error)? {
                    let (day, count): (i64, i64) = (row.get(0), row.get(1));
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
            for bucket in index_counts(tx, dictionaries, account, &edge, &ids, interval).await? {
                *counts.entry(bucket.start.micros()).or_default() += bucket.count as i64;
            }
        }
    }
    // A rollup row whose events were all removed counts 0; the index
    // path has no bucket for it either.
    Ok(counts
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(start, count)| Bucket {
            start: Timestamp::from_micros(start),
            count: count as u64,
        })
        .collect())
}

/// Where a histogram's whole days are counted, from the filter's ids.
enum WholeDays<'a> {
    /// `event_rollups` rows of the accepted kinds (`ids`) and projects
    /// (the parameter's, and those `q`'s terms accept).
    Dictionary {
        ids: &'a Resolved,
        projects: &'a [String],
        project_choice: Option<TextChoice>,
    },
    /// `actor_rollups` rows of these actors, or, with `kinds`, the
    /// `actor_kind_rollups` rows of these actors and the kinds `kinds`
    /// accepts.
    Actors {
        actors: Vec<i64>,
        kinds: Option<&'a Resolved>,
    },
    /// Each day's total (`event_rollups`, of the accepted kinds with
    /// `kinds`) less these actors' rows (of `actor_kind_rollups` with
    /// `kinds`): when the terms reject fewer actors than they accept
    /// (`-user:u-1`).
    AllActorsBut {
        rejected: Vec<i64>,
        kinds: Option<&'a Resolved>,
    },
}

impl<'a> WholeDays<'a> {
    /// The actors `ids` accepts, counted by actor (`kinds` `None`) or by
    /// actor and the kinds that `kinds` accepts.
    fn of_actors(ids: &Resolved, kinds: Option<&'a Resolved>) -> Self {
        let actors = |actors: Vec<i64>| WholeDays::Actors { actors, kinds };
        let choice = ids
            .choices
            .iter()
            .find(|(column, _)| *column == "l.actor")
            .map(|(_, choice)| choice);
        match (&ids.actors, choice) {
            // The named users the terms accept too.
            (Some(named), Some(choice)) => actors(
                named
                    .iter()
                    .copied()
                    .filter(|id| choice.accepted.contains(id))
                    .collect(),
            ),
            (Some(named), None) => actors(named.clone()),
            (None, Some(choice)) if choice.rejected.len() < choice.accepted.len() => {
                WholeDays::AllActorsBut {
                    rejected: choice.rejected.clone(),
                    kinds,
                }
            }
            (None, Some(choice)) => actors(choice.accepted.clone()),
            // Some user is selected (`by_actor`, `by_actor_and_kind`);
            // nothing names one.
            (None, None) => actors(Vec::new()),
        }
    }

    /// The statement of `(day, count)` rows over the whole days `(first,
    /// last)` (inclusive, `None` = unbounded) and its parameters. A day may
    /// come in several rows; their sum is its count.
    fn statement(
        &self,
        account: AccountId,
        (first, last): (Option<i64>, Option<i64>),
    ) -> (String, Vec<Param>) {
        let mut params: Vec<Param> = vec![Box::new(account)];
        let mut days = String::new();
        if let Some(first) = first {
            params.push(Box::new(first));
            days.push_str(&format!(" AND day >= ${}", params.len()));
        }
        if let Some(last) = last {
            params.push(Box::new(last));
            days.push_str(&format!(" AND day <= ${}", params.len()));
        }
        let sql = match self {
            WholeDays::Dictionary {
                ids,
                projects,
                project_choice,
            } => {
                let mut sql = format!(
                    "SELECT day, SUM(count)::bigint FROM event_rollups WHERE account_id = $1{days}"
                );
                sql.push_str(&kind_tests(ids, &mut params));
                // A project parameter never matches events without one.
                if !projects.is_empty() {
                    params.push(Box::new(projects.to_vec()));
                    sql.push_str(&format!(
                        " AND has_project AND project = ANY(${}::text[])",
                        params.len()
                    ));
                }
                if let Some(choice) = project_choice {
                    sql.push_str(" AND ");
                    sql.push_str(&project_test(choice, &mut params));
                }
                sql.push_str(" GROUP BY day");
                sql
            }
            WholeDays::Actors { actors, kinds } => {
                params.push(Box::new(actors.clone()));
                let actors = params.len();
                let (table, kinds) = by_kinds(*kinds, &mut params);
                format!(
                    "SELECT day, count FROM {table} WHERE account_id = $1 \
                     AND actor = ANY(${actors}::bigint[]){kinds}{days}"
                )
            }
            WholeDays::AllActorsBut { rejected, kinds } => {
                let (table, kinds) = by_kinds(*kinds, &mut params);
                let mut sql = format!(
                    "SELECT day, SUM(count)::bigint FROM event_rollups WHERE account_id = $1{days}{kinds} \
                     GROUP BY day"
                );
                if !rejected.is_empty() {
                    params.push(Box::new(rejected.clone()));
                    sql.push_str(&format!(
                        " UNION ALL SELECT day, -count FROM {table} WHERE account_id = $1 \
                         AND actor = ANY(${}::bigint[]){kinds}{days}",
                        params.len()
                    ));
                }
                sql
            }
        };
        (sql, params)
    }
}

/// The table of actors' rows and the conditions on its kinds: by actor
/// alone without `kinds`, else by actor and kind, of the kinds `kinds`
/// accepts (the conditions' parameters go to `params`, and the same
/// numbers serve every part of a statement that repeats them).
fn by_kinds(kinds: Option<&Resolved>, params: &mut Vec<Param>) -> (&'static str, String) {
    match kinds {
        None => ("actor_rollups", String::new()),
        Some(ids) => ("actor_kind_rollups", kind_tests(ids, params)),
    }
}

/// The conditions (each after ` AND `) that a row's `kind` is one the
/// filter's event types and actions accept: the parameters' ids, and
/// `q`'s terms' choice.
fn kind_tests(ids: &Resolved, params: &mut Vec<Param>) -> String {
    let mut sql = String::new();
    if let Some(kinds) = &ids.kinds {
        params.push(Box::new(kinds.clone()));
        sql.push_str(&format!(" AND kind = ANY(${}::bigint[])", params.len()));
    }
    if let Some((_, choice)) = ids.choices.iter().find(|(c, _)| *c == "l.kind") {
        sql.push_str(" AND ");
        sql.push_str(&kind_test(choice, params));
    }
    sql
}

/// The test that `kind` is an id `choice` accepts: the accepted list, or
/// not the rejected one when that is shorter (they partition the account's
/// kinds), as the index path tests the log's column.
fn kind_test(choice: &IdChoice, params: &mut Vec<Param>) -> String {
    if choice.rejected.len() < choice.accepted.len() {
        params.push(Box::new(choice.rejected.clone()));
        format!("NOT (kind = ANY(${}::bigint[]))", params.len())
    } else {
        params.push(Box::new(choice.accepted.clone()));
        format!("kind = ANY(${}::bigint[])", params.len())
    }
}

/// The project texts `q`'s `project` terms accept among the account's
/// (`accepted` and `rejected` partition them), and whether they accept an
/// event without a project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TextChoice {
    accepted: Vec<String>,
    rejected: Vec<String>,
    none: bool,
}

/// The test that a rollup row's project is one `choice` accepts (the
/// shorter list, as [`kind_test`]).
fn project_test(choice: &TextChoice, params: &mut Vec<Param>) -> String {
    let test = if choice.rejected.len() < choice.accepted.len() {
        params.push(Box::new(choice.rejected.clone()));
        format!(
            "has_project AND NOT (project = ANY(${}::text[]))",
            params.len()
        )
    } else {
        params.push(Box::new(choice.accepted.clone()));
        format!("has_project AND project = ANY(${}::text[])", params.len())
    };
    if choice.none {
        format!("(NOT has_project OR ({test}))")
    } else {
        format!("({test})")
    }
}

/// `filter`'s `project` terms evaluated on every project text of the
/// account (read in the caller's transaction, so that it holds every text
/// of the rollups it reads next), as the index path evaluates them on
/// each place (`search_plan::choose_ids`); `None` without such terms.
async fn project_choice(
    tx: &deadpool_postgres::Transaction<'_>,
    account: AccountId,
    filter: &EventFilter,
) -> Result<Option<TextChoice>> {
    let terms: Vec<&Term> = filter
        .query
        .terms()
        .iter()
        .filter(|t| {
            matches!(
                &t.test,
                Test::Text {
                    key: TextKey::Project,
                    ..
                }
            )
        })
        .collect();
    if terms.is_empty() {
        return Ok(None);
    }
    let rows = tx
        .query(
            "SELECT DISTINCT value ->> 0 FROM log_values \
             WHERE account_id = $1 AND kind = 2 AND value ->> 0 IS NOT NULL",
            &[&account],
        )
        .await
        .map_err(pg_error)?;
    let texts: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    // A place row of the project alone: the terms are on `project` only.
    let places: Vec<[Option<String>; 3]> = texts
        .iter()
        .map(|t| [Some(t.clone()), None, None])
        .collect();
    let ids = search_plan::choose_ids(
        &terms,
        places.iter().enumerate().map(|(i, p)| (i as i64, &p[..])),
        search_plan::place_field,
    );
    let text = |i: &i64| texts[*i as usize].clone();
    Ok(Some(TextChoice {
        accepted: ids.accepted.iter().map(text).collect(),
        rejected: ids.rejected.iter().map(text).collect(),
        none: ids.null,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_tests_the_shorter_list() {
        let mut params = Vec::new();
        let ids = |accepted: Vec<i64>, rejected: Vec<i64>| IdChoice {
            accepted,
            rejected,
            null: false,
        };
        assert_eq!(
            kind_test(&ids(vec![1], vec![2, 3]), &mut params),
            "kind = ANY($1::bigint[])"
        );
        assert_eq!(
            kind_test(&ids(vec![1, 2], vec![3]), &mut params),
            "NOT (kind = ANY($2::bigint[]))"
        );
        let texts = |accepted: &[&str], rejected: &[&str], none| TextChoice {
            accepted: accepted.iter().map(|t| t.to_string()).collect(),
            rejected: rejected.iter().map(|t| t.to_string()).collect(),
            none,
        };
        assert_eq!(
            project_test(&texts(&["P0"], &["P1", "P2"], false), &mut params),
            "(has_project AND project = ANY($3::text[]))"
        );
        assert_eq!(
            project_test(&texts(&["P0", "P1"], &["P2"], true), &mut params),
            "(NOT has_project OR (has_project AND NOT (project = ANY($4::text[]))))"
        );
    }
}
