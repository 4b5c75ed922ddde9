//! Translation of [`EventFilter`] into SQL over the events table. Every
//! filter column leads an index `(account_id, column, time, seq)`, so that
//! each combination is an index search, never a scan of the table.

use crate::sql::{sql_error, RECORD_COLUMNS};
use auditlog_core::{Cursor, EventFilter, Interval, Timestamp};
use auditlog_store::{Bucket, Result};
use rusqlite::types::Value;
use rusqlite::Connection;

/// The WHERE clause (without the keyword) and its parameters.
pub struct WhereClause {
    pub sql: String,
    pub params: Vec<Value>,
}

pub fn where_clause(account_id: i64, filter: &EventFilter) -> WhereClause {
    let mut clause = WhereClause::new(account_id);
    clause.any_of("event_type", &filter.event_types);
    clause.any_of("action", &filter.actions);
    clause.any_of("actor_id", &filter.users);
    clause.any_of("project", &filter.projects);
    for (column, value) in [
        ("app", &filter.app),
        ("version", &filter.version),
        ("target_id", &filter.target_id),
    ] {
        if let Some(v) = value {
            clause.push(&format!("{column} = ?"), Value::Text(v.clone()));
        }
    }
    if let Some(from) = filter.from {
        clause.push("time >= ?", Value::Integer(from.micros()));
    }
    if let Some(to) = filter.to {
        clause.push("time <= ?", Value::Integer(to.micros()));
    }
    clause
}

impl WhereClause {
    /// The rows of one account; every table queried leads with it.
    pub fn new(account_id: i64) -> Self {
        WhereClause {
            sql: "account_id = ?".into(),
            params: vec![Value::Integer(account_id)],
        }
    }

    pub fn push(&mut self, condition: &str, value: Value) {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
        self.params.push(value);
    }

    pub fn any_of(&mut self, column: &str, values: &[String]) {
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

    /// Restricts to events after the cursor in newest-first order and no
    /// newer than the walk's snapshot.
    pub fn after_cursor(&mut self, cursor: &Cursor) {
        self.sql.push_str(" AND (time, seq) < (?, ?) AND seq <= ?");
        self.params.push(Value::Integer(cursor.time.micros()));
        self.params.push(Value::Integer(cursor.seq as i64));
        self.params.push(Value::Integer(cursor.snapshot_seq as i64));
    }
}

/// A page query: one more row than asked, to know whether another page follows.
pub fn page_sql(clause: &WhereClause) -> String {
    format!(
        "SELECT {RECORD_COLUMNS} FROM events WHERE {} ORDER BY time DESC, seq DESC LIMIT ?",
        clause.sql
    )
}

/// Counts per bucket: `floor((time - offset) / width)`, written so that it is
/// exact for negative times too.
pub fn histogram_sql(clause: &WhereClause, interval: Interval) -> String {
    let width = interval.micros();
    let offset = interval.offset_micros();
    format!(
        "SELECT ((time - {offset}) - ((((time - {offset}) % {width}) + {width}) % {width})) / {width} AS bucket, \
         COUNT(*) FROM events WHERE {} GROUP BY bucket ORDER BY bucket",
        clause.sql
    )
}

/// The histogram of `filter` counted from the events index (one index entry
/// per matching event).
pub fn histogram(
    conn: &Connection,
    account: i64,
    filter: &EventFilter,
    interval: Interval,
) -> Result<Vec<Bucket>> {
    let clause = where_clause(account, filter);
    let sql = histogram_sql(&clause, interval);
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(clause.params), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(sql_error)?;
    let mut buckets = Vec::new();
    for row in rows {
        let (bucket, count) = row.map_err(sql_error)?;
        buckets.push(Bucket {
            start: Timestamp::from_micros(bucket * interval.micros() + interval.offset_micros()),
            count: count as u64,
        });
    }
    Ok(buckets)
}
