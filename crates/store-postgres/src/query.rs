//! Translation of [`EventFilter`] into SQL over the event log (migration
//! 0010), with the same meaning as the embedded backend's. Filter values
//! are first resolved to the integer ids the log holds ([`resolve`]: event
//! type and action to `kind` ids, project, app and version to `place` ids,
//! users to `actors` ids, a target id to its hash); every filter then leads
//! an index `(id, time, key)`. A page over several ids of one filter reads
//! one index range per id, newest first, and merges them (`UNION ALL`), so
//! that a page never sorts every matching event.

use crate::sql::{pg_error, RECORD_COLUMNS};
use crate::word_index::{self, WORDS_VECTOR};
use auditlog_core::search::{Query, Term};
use auditlog_core::{Cursor, EventFilter, Interval};
use auditlog_store::key_hash64;
use auditlog_store::log_key::{bound_key, SEQ_BITS};
use auditlog_store::search_plan::{self, IdChoice, SearchPlan};
use auditlog_store::StoreError;
use auditlog_store::{AccountId, Result};
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

pub type Param = Box<dyn ToSql + Sync + Send>;

/// A page over at most this many ids of one filter is merged from one index
/// range per id; more ids are read with `= ANY` (and sorted).
const MAX_BRANCHES: usize = 32;

/// The integer ids a filter names, `None` where the filter does not restrict.
#[derive(Debug, Default, Clone)]
pub struct Resolved {
    pub(crate) kinds: Option<Vec<i64>>,
    pub(crate) places: Option<Vec<i64>>,
    pub(crate) actors: Option<Vec<i64>>,
    /// The ids `q`'s terms on each dictionary column accept, by the log's
    /// column (`l.kind`, `l.place`, `l.actor`).
    pub(crate) choices: Vec<(&'static str, IdChoice)>,
    /// `q`, when some of its terms are confirmed on each candidate.
    pub query: Option<Query>,
}

impl Resolved {
    /// Whether rows this filter's SQL selects must be confirmed on their
    /// leaf (a hashed target id, or terms of `q` the SQL only narrowed).
    pub fn confirms(&self, filter: &EventFilter) -> bool {
        filter.target_id.is_some() || self.query.is_some()
    }
}

/// The ids `terms` accept among the values of a dictionary column.
async fn dictionary_choice(
    client: &(impl GenericClient + Sync),
    account: AccountId,
    sql: &str,
    terms: &[&Term],
    field: fn(&auditlog_core::search::TextKey, &[Option<String>]) -> Option<String>,
) -> Result<IdChoice> {
    let rows = client.query(sql, &[&account]).await.map_err(pg_error)?;
    let mut values: Vec<(i64, Vec<Option<String>>)> = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.get(0);
        let json: String = row.get(1);
        let fields: Vec<Option<String>> = serde_json::from_str(&json).map_err(|e| {
            StoreError::internal_caused_by(format!("dictionary value {id} is not a JSON array"), e)
        })?;
        values.push((id, fields));
    }
    Ok(search_plan::choose_ids(
        terms,
        values.iter().map(|(id, f)| (*id, f.as_slice())),
        field,
    ))
}

/// `q`'s plan on this backend: free text is served by the full-text index
/// (`word_index`), which only narrows phrases and words too long to be
/// stored whole.
fn plan_of(filter: &EventFilter) -> SearchPlan<'_> {
    let mut plan = SearchPlan::of(filter);
    if word_index::tsquery(&plan.words).is_some_and(|(_, narrowed)| narrowed) {
        plan.confirm = true;
    }
    plan
}

/// Plans the statements of the caller's transaction for their parameters
/// when `filter` searches free text: how many events a word matches ranges
/// from none to all, and decides between reading the newest events in time
/// order until a page matches and reading the word's events from the index
/// (then sorting them). A cached generic plan would choose once, for a
/// guessed frequency, and keep that choice for every word.
pub async fn plan_each_query(tx: &(impl GenericClient + Sync), filter: &EventFilter) -> Result<()> {
    if plan_of(filter).words.is_empty() {
        return Ok(());
    }
    tx.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan")
        .await
        .map_err(pg_error)
}

/// Reads the ids of the filter's values (a value that no event of the
/// account has gives no id, so that filter matches nothing).
pub async fn resolve(
    client: &(impl GenericClient + Sync),
    account: AccountId,
    filter: &EventFilter,
) -> Result<Resolved> {
    let mut resolved = Resolved::default();
    if !filter.event_types.is_empty() || !filter.actions.is_empty() {
        let rows = client
            .query(
                "SELECT id FROM log_values WHERE account_id = $1 AND kind = 1 \
                 AND (cardinality($2::text[]) = 0 OR value ->> 0 = ANY($2)) \
                 AND (cardinality($3::text[]) = 0 OR value ->> 1 = ANY($3)) ORDER BY id",
                &[&account, &filter.event_types, &filter.actions],
            )
            .await
            .map_err(pg_error)?;
        resolved.kinds = Some(rows.iter().map(|r| r.get(0)).collect());
    }
    if !filter.projects.is_empty() || filter.app.is_some() || filter.version.is_some() {
        let rows = client
            .query(
                "SELECT id FROM log_values WHERE account_id = $1 AND kind = 2 \
                 AND (cardinality($2::text[]) = 0 OR value ->> 0 = ANY($2)) \
                 AND ($3::text IS NULL OR value ->> 1 = $3) \
                 AND ($4::text IS NULL OR value ->> 2 = $4) ORDER BY id",
                &[&account, &filter.projects, &filter.app, &filter.version],
            )
            .await
            .map_err(pg_error)?;
        resolved.places = Some(rows.iter().map(|r| r.get(0)).collect());
    }
    if !filter.users.is_empty() {
        let rows = client
            .query(
                "SELECT id FROM actors WHERE account_id = $1 AND actor_id = ANY($2) ORDER BY id",
                &[&account, &filter.users],
            )
            .await
            .map_err(pg_error)?;
        resolved.actors = Some(rows.iter().map(|r| r.get(0)).collect());
    }
    let plan = plan_of(filter);
    for (column, terms, sql, field) in [
        (
            "l.kind",
            &plan.kind_terms,
            "SELECT id, value::text FROM log_values WHERE account_id = $1 AND kind = 1",
            search_plan::kind_field as fn(&_, &_) -> _,
        ),
        (
            "l.place",
            &plan.place_terms,
            "SELECT id, value::text FROM log_values WHERE account_id = $1 AND kind = 2",
            search_plan::place_field,
        ),
        (
            "l.actor",
            &plan.actor_terms,
            "SELECT id, jsonb_build_array(actor_id)::text FROM actors WHERE account_id = $1",
            search_plan::actor_field,
        ),
    ] {
        if !terms.is_empty() {
            let choice = dictionary_choice(client, account, sql, terms, field).await?;
            resolved.choices.push((column, choice));
        }
    }
    resolved.query = plan.confirm.then(|| filter.query.clone());
    Ok(resolved)
}

/// The WHERE clause (without the keyword) and its parameters, numbered `$1…`,
/// over `event_log l`; `split` is the filter a page reads one range per id
/// of (its condition is added per branch).
pub struct WhereClause {
    pub sql: String,
    pub params: Vec<Param>,
    account: AccountId,
    split: Option<(&'static str, Vec<i64>)>,
}

pub fn where_clause(account: AccountId, filter: &EventFilter, ids: &Resolved) -> WhereClause {
    let mut clause = WhereClause {
        sql: format!("(l.key >> {SEQ_BITS}) = $1"),
        params: vec![Box::new(account)],
        account,
        split: None,
    };
    let dimensions = [
        ("l.kind", &ids.kinds),
        ("l.place", &ids.places),
        ("l.actor", &ids.actors),
    ];
    // One id of any filter (or a target) already names one ordered range.
    let single = filter.target_id.is_some()
        || dimensions
            .iter()
            .any(|(_, ids)| ids.as_ref().is_some_and(|ids| ids.len() == 1));
    if !single {
        clause.split = dimensions
            .iter()
            .filter_map(|(column, ids)| ids.as_ref().map(|ids| (*column, ids)))
            .filter(|(_, ids)| (2..=MAX_BRANCHES).contains(&ids.len()))
            .min_by_key(|(_, ids)| ids.len())
            .map(|(column, ids)| (column, ids.clone()));
    }
    for (column, ids) in dimensions {
        let Some(ids) = ids else { continue };
        if clause.split.as_ref().is_some_and(|(c, _)| *c == column) {
            continue;
        }
        match ids.as_slice() {
            [one] => clause.push(column, "=", Box::new(*one)),
            many => {
                let placeholder = clause.next_placeholder();
                clause
                    .sql
                    .push_str(&format!(" AND {column} = ANY({placeholder}::bigint[])"));
                clause.params.push(Box::new(many.to_vec()));
            }
        }
    }
    if let Some(target) = &filter.target_id {
        clause.push("l.target_hash", "=", Box::new(key_hash64(target)));
    }
    if let Some(from) = filter.from {
        clause.push("l.time", ">=", Box::new(from.micros()));
    }
    if let Some(to) = filter.to {
        clause.push("l.time", "<=", Box::new(to.micros()));
    }
    clause.search(account, filter, ids);
    clause
}

impl WhereClause {
    /// The conditions of `q`'s plan (`search_plan`), every value a parameter.
    fn search(&mut self, account: AccountId, filter: &EventFilter, ids: &Resolved) {
        let plan = plan_of(filter);
        if plan.is_empty_range() {
            self.sql.push_str(" AND false");
        }
        for (column, choice) in &ids.choices {
            let (list, negate) = if choice.accepted.len() <= choice.rejected.len() {
                (&choice.accepted, false)
            } else {
                (&choice.rejected, true)
            };
            let p = self.next_placeholder();
            let test = if negate {
                format!("NOT ({column} = ANY({p}::bigint[]))")
            } else {
                format!("{column} = ANY({p}::bigint[])")
            };
            self.params.push(Box::new(list.clone()));
            let test = if choice.null {
                format!("({column} IS NULL OR {test})")
            } else {
                format!("({column} IS NOT NULL AND {test})")
            };
            self.sql.push_str(&format!(" AND {test}"));
        }
        if let Some(from) = plan.seq_from {
            self.push("l.key", ">=", Box::new(bound_key(account, from)));
        }
        if let Some(to) = plan.seq_to {
            self.push("l.key", "<=", Box::new(bound_key(account, to)));
        }
        if let Some(from) = plan.time_from {
            self.push("l.time", ">=", Box::new(from));
        }
        if let Some(to) = plan.time_to {
            self.push("l.time", "<=", Box::new(to));
        }
        for (column, lists) in [("l.target_hash", &plan.targets), ("l.id_hash", &plan.ids)] {
            for list in lists {
                let hashes: Vec<i64> = list.iter().map(|t| key_hash64(t)).collect();
                let p = self.next_placeholder();
                self.sql
                    .push_str(&format!(" AND {column} = ANY({p}::bigint[])"));
                self.params.push(Box::new(hashes));
            }
        }
        if let Some((words, _)) = word_index::tsquery(&plan.words) {
            let p = self.next_placeholder();
            self.sql
                .push_str(&format!(" AND {WORDS_VECTOR} @@ {p}::text::tsquery"));
            self.params.push(Box::new(words));
        }
    }

    /// The placeholder the next parameter will take.
    pub fn next_placeholder(&self) -> String {
        format!("${}", self.params.len() + 1)
    }

    fn push(&mut self, column: &str, operator: &str, value: Param) {
        let placeholder = self.next_placeholder();
        self.sql
            .push_str(&format!(" AND {column} {operator} {placeholder}"));
        self.params.push(value);
    }

    /// Restricts to `after_seq < seq <= through_seq` (a range of the key).
    pub fn seq_window(&mut self, after_seq: u64, through_seq: u64) {
        let (after, through) = (
            bound_key(self.account, after_seq),
            bound_key(self.account, through_seq),
        );
        self.push("l.key", ">", Box::new(after));
        self.push("l.key", "<=", Box::new(through));
    }

    /// Restricts to events after the cursor in newest-first order and no
    /// newer than the walk's snapshot.
    pub fn after_cursor(&mut self, cursor: &Cursor) {
        let n = self.params.len();
        self.sql.push_str(&format!(
            " AND (l.time, l.key) < (${}, ${}) AND l.key <= ${}",
            n + 1,
            n + 2,
            n + 3
        ));
        self.params.push(Box::new(cursor.time.micros()));
        self.params
            .push(Box::new(bound_key(self.account, cursor.seq)));
        self.params
            .push(Box::new(bound_key(self.account, cursor.snapshot_seq)));
    }

    /// The split filter's condition as it applies to the whole clause (for
    /// queries that do not page: seq windows and counts).
    fn whole(&self) -> String {
        match &self.split {
            None => self.sql.clone(),
            Some((column, ids)) => format!(
                "{} AND {column} = ANY('{{{}}}'::bigint[])",
                self.sql,
                ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
            ),
        }
    }

    /// The parameters as the driver takes them.
    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The events of a seq window (added by [`WhereClause::seq_window`]) in seq
/// order, read along the primary key.
pub fn seq_range_sql(clause: &WhereClause) -> String {
    format!(
        "SELECT {RECORD_COLUMNS} FROM event_log l WHERE {} ORDER BY l.key",
        clause.whole()
    )
}

/// A page query: one more row than asked (the last parameter), to know
/// whether another page follows. Over several ids of one filter, one index
/// range per id, each newest first and limited, merged.
pub fn page_sql(clause: &WhereClause) -> String {
    let limit = clause.next_placeholder();
    match &clause.split {
        None => format!(
            "SELECT {RECORD_COLUMNS} FROM event_log l WHERE {} \
             ORDER BY l.time DESC, l.key DESC LIMIT {limit}",
            clause.sql
        ),
        Some((column, ids)) => {
            let branches = ids
                .iter()
                .map(|id| {
                    format!(
                        "(SELECT l.key, l.time, l.leaf, l.leaf_dict FROM event_log l \
                         WHERE {} AND {column} = {id} ORDER BY l.time DESC, l.key DESC LIMIT {limit})",
                        clause.sql
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            format!(
                "SELECT {RECORD_COLUMNS} FROM ({branches}) l \
                 ORDER BY l.time DESC, l.key DESC LIMIT {limit}"
            )
        }
    }
}

/// The next rows of the clause in key order after `after_key`, at most
/// `limit` (the last parameter): how counts that confirm each row read the
/// log, a bounded batch at a time.
pub fn key_batch_sql(clause: &WhereClause) -> String {
    let after = clause.next_placeholder();
    let limit = format!("${}", clause.params.len() + 2);
    format!(
        "SELECT {RECORD_COLUMNS} FROM event_log l WHERE {} AND l.key > {after} \
         ORDER BY l.key LIMIT {limit}",
        clause.whole()
    )
}

/// Counts per bucket: `floor((time - offset) / width)`, written so that it is
/// exact for negative times too (PostgreSQL's `%` truncates like SQLite's).
pub fn histogram_sql(clause: &WhereClause, interval: Interval) -> String {
    let width = interval.micros();
    let offset = interval.offset_micros();
    format!(
        "SELECT ((l.time - {offset}) - ((((l.time - {offset}) % {width}) + {width}) % {width})) / {width} AS bucket, \
         COUNT(*) FROM event_log l WHERE {} GROUP BY bucket ORDER BY bucket",
        clause.whole()
    )
}
