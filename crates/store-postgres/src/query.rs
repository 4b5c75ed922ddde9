//! Translation of [`EventFilter`] into SQL over the events table, with the
//! same meaning as the embedded backend's. Every filter column leads an
//! index `(account_id, column, time, seq)`; lists become `= ANY($n)`, which
//! PostgreSQL answers from the same index.

use crate::sql::RECORD_COLUMNS;
use auditlog_core::{Cursor, EventFilter, Interval};
use tokio_postgres::types::ToSql;

pub type Param = Box<dyn ToSql + Sync + Send>;

/// The WHERE clause (without the keyword) and its parameters, numbered `$1…`.
pub struct WhereClause {
    pub sql: String,
    pub params: Vec<Param>,
}

pub fn where_clause(account_id: i64, filter: &EventFilter) -> WhereClause {
    let mut clause = WhereClause {
        sql: "account_id = $1".into(),
        params: vec![Box::new(account_id)],
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
            clause.push(column, "=", Box::new(v.clone()));
        }
    }
    if let Some(from) = filter.from {
        clause.push("time", ">=", Box::new(from.micros()));
    }
    if let Some(to) = filter.to {
        clause.push("time", "<=", Box::new(to.micros()));
    }
    clause
}

impl WhereClause {
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

    fn any_of(&mut self, column: &str, values: &[String]) {
        match values {
            [] => {}
            [one] => self.push(column, "=", Box::new(one.clone())),
            many => {
                let placeholder = self.next_placeholder();
                self.sql
                    .push_str(&format!(" AND {column} = ANY({placeholder}::text[])"));
                self.params.push(Box::new(many.to_vec()));
            }
        }
    }

    /// Restricts to events after the cursor in newest-first order and no
    /// newer than the walk's snapshot.
    pub fn after_cursor(&mut self, cursor: &Cursor) {
        let n = self.params.len();
        self.sql.push_str(&format!(
            " AND (time, seq) < (${}, ${}) AND seq <= ${}",
            n + 1,
            n + 2,
            n + 3
        ));
        self.params.push(Box::new(cursor.time.micros()));
        self.params.push(Box::new(cursor.seq as i64));
        self.params.push(Box::new(cursor.snapshot_seq as i64));
    }

    /// The parameters as the driver takes them.
    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// A page query: one more row than asked (the last parameter), to know
/// whether another page follows.
pub fn page_sql(clause: &WhereClause) -> String {
    format!(
        "SELECT {RECORD_COLUMNS} FROM events WHERE {} ORDER BY time DESC, seq DESC LIMIT {}",
        clause.sql,
        clause.next_placeholder()
    )
}

/// Counts per bucket: `floor((time - offset) / width)`, written so that it is
/// exact for negative times too (PostgreSQL's `%` truncates like SQLite's).
pub fn histogram_sql(clause: &WhereClause, interval: Interval) -> String {
    let width = interval.micros();
    let offset = interval.offset_micros();
    format!(
        "SELECT ((time - {offset}) - ((((time - {offset}) % {width}) + {width}) % {width})) / {width} AS bucket, \
         COUNT(*) FROM events WHERE {} GROUP BY bucket ORDER BY bucket",
        clause.sql
    )
}
