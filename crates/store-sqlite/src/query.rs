//! Translation of [`EventFilter`] into SQL over the events table. Every
//! filter column leads an index `(account_id, column, time, seq)`, so that
//! each combination is an index search, never a scan of the table.

use auditlog_core::{Cursor, EventFilter, Interval};
use rusqlite::types::Value;

/// The WHERE clause (without the keyword) and its parameters.
pub struct WhereClause {
    pub sql: String,
    pub params: Vec<Value>,
}

pub fn where_clause(account_id: i64, filter: &EventFilter) -> WhereClause {
    let mut clause = WhereClause {
        sql: "account_id = ?".into(),
        params: vec![Value::Integer(account_id)],
    };
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
        "SELECT seq, time, leaf, leaf_hash FROM events WHERE {} ORDER BY time DESC, seq DESC LIMIT ?",
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
