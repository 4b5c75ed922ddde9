//! The log's rows given their personal values a batch at a time.
//!
//! A version 2 leaf holds no personal value; a reader gets them from
//! `event_openings` and the `personal_objects` row it names (or, for
//! events stored before migration 0009 and erased ones, `event_personal`).
//! [`sql::RECORD_COLUMNS`](crate::sql::RECORD_COLUMNS) looks them up row by
//! row in a correlated subquery that joins both tables and concatenates
//! the JSON text in SQL: two thirds of the time of reading a whole
//! account's rows in `sqlite3` (1M benchmark store: 3.3 s against 1.3 s
//! without it; BENCHMARKS.md, "Export: personal values a batch at a
//! time"). Pages and exports read rows with [`BARE_COLUMNS`] instead, and
//! [`attach`] reads a batch's openings with one statement and builds the
//! same bytes in Rust ([`personal_bytes`]), each row's object taken from
//! the objects kept across pages (`object_cache`) or read by id. (In the benchmark's log consecutive
//! events name different objects, about 250 distinct ones in a batch of
//! 256 rows: a batch alone saves no lookup, the pages of an export do.)

use crate::object_cache::{self, ObjectCache, ObjectReads};
use crate::sql::{any_slice, sql_error, RecordRow};
use auditlog_store::{log_key, Result};
use rusqlite::types::Value;
use rusqlite::{Connection, Row};
use std::collections::{BTreeMap, HashMap};

/// The columns of a row read without its personal values: key, time,
/// dictionary, stored leaf (from `event_log`, unaliased).
pub(crate) const BARE_COLUMNS: &str = "key, time, leaf_dict, leaf";

/// A row read with [`BARE_COLUMNS`].
pub(crate) type BareRow = (i64, i64, Option<i64>, Vec<u8>);

pub(crate) fn bare_row(row: &Row<'_>) -> rusqlite::Result<BareRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

/// Rows given their personal values per [`attach`]: large enough that the
/// statements per batch cost little per row, small enough that a filter
/// confirming rows one by one reads few it does not need.
pub(crate) const BATCH_ROWS: usize = 256;

/// The openings of the batch's seqs as one range of the primary key when
/// they fill at least this share of it (an export of a whole account),
/// else one lookup per seq (a project's events, sparse in the log).
const RANGE_WHEN_DENSER_THAN: (usize, usize) = (1, 2);

/// A batch's openings, each with the id of the object it names, as a
/// range of the primary key: `?1` account, `?2 ..= ?3` seqs. (An opening
/// whose object is gone is skipped in [`read_account`], as the subquery's
/// join gives nothing for it.)
const OPENINGS_BY_RANGE: &str = "SELECT seq, details, openings, object_id \
     FROM event_openings WHERE account_id = ?1 AND seq BETWEEN ?2 AND ?3";
/// The same seq by seq: `?1` account, `?2` the seqs (JSON).
const OPENINGS_BY_LIST: &str = "SELECT seq, details, openings, object_id \
     FROM event_openings \
     WHERE account_id = ?1 AND seq IN (SELECT value FROM json_each(?2))";
/// Personal values of events stored before migration 0009, and erased
/// ones: `?1` account, `?2` the seqs (JSON).
const LEGACY_BY_LIST: &str = "SELECT seq, personal FROM event_personal \
     WHERE account_id = ?1 AND seq IN (SELECT value FROM json_each(?2))";

/// Every statement [`attach`] runs, with parameters for `account`, for
/// `EXPLAIN QUERY PLAN` (`query::explained_statements`): each must search
/// its table's primary key, never scan it.
pub(crate) fn explained_statements(account: i64) -> Vec<(&'static str, Vec<Value>)> {
    let list = || Value::Text("[1,2,3]".into());
    vec![
        (
            OPENINGS_BY_RANGE,
            vec![
                Value::Integer(account),
                Value::Integer(1),
                Value::Integer(9),
            ],
        ),
        (OPENINGS_BY_LIST, vec![Value::Integer(account), list()]),
        (LEGACY_BY_LIST, vec![Value::Integer(account), list()]),
        object_cache::explained_statement(),
    ]
}

/// `rows` (of any accounts, in any order) with their personal values, in
/// the same order: the bytes `sql::personal_of_log_row` gives each row.
/// Objects come from `objects` when the caller shares the store's (see
/// `object_cache`), else each is read by id.
pub(crate) fn attach(
    conn: &Connection,
    rows: Vec<BareRow>,
    objects: Option<&ObjectCache>,
) -> Result<Vec<RecordRow>> {
    let own = ObjectCache::default();
    let objects = objects.unwrap_or(&own).begin(conn).map_err(sql_error)?;
    let mut seqs: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (key, ..) in &rows {
        seqs.entry(key >> log_key::SEQ_BITS)
            .or_default()
            .push(key & log_key::SEQ_MASK);
    }
    let mut personal: HashMap<i64, Vec<u8>> = HashMap::with_capacity(rows.len());
    for (account, mut seqs) in seqs {
        seqs.sort_unstable();
        seqs.dedup();
        read_account(conn, &objects, account, &seqs, &mut personal)?;
    }
    Ok(rows
        .into_iter()
        .map(|(key, time, dictionary, leaf)| (key, time, dictionary, leaf, personal.remove(&key)))
        .collect())
}

/// Reads the personal values of `account`'s `seqs` (sorted, distinct)
/// into `personal`, keyed by log key.
fn read_account(
    conn: &Connection,
    objects: &ObjectReads<'_>,
    account: i64,
    seqs: &[i64],
    personal: &mut HashMap<i64, Vec<u8>>,
) -> Result<()> {
    let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
        return Ok(());
    };
    let wanted = |seq: i64| seqs.binary_search(&seq).is_ok();
    let span = usize::try_from(last - first + 1).unwrap_or(usize::MAX);
    let (num, den) = RANGE_WHEN_DENSER_THAN;
    let by_range = seqs.len().saturating_mul(den) >= span.saturating_mul(num);
    let key = |seq: i64| (account << log_key::SEQ_BITS) | seq;
    {
        let sql = if by_range {
            OPENINGS_BY_RANGE
        } else {
            OPENINGS_BY_LIST
        };
        let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
        let mut rows = if by_range {
            stmt.query(rusqlite::params![account, first, last])
        } else {
            let list = serde_json::Value::from(seqs.to_vec()).to_string();
            stmt.query(rusqlite::params![account, list])
        }
        .map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            let seq: i64 = row.get(0).map_err(sql_error)?;
            if !wanted(seq) {
                continue;
            }
            let object_id: Option<i64> = row.get(3).map_err(sql_error)?;
            let object = object_id.map(|id| objects.get(id)).transpose();
            let Some(object) = object.map_err(sql_error)?.flatten() else {
                continue;
            };
            let part = |i: usize| row.get_ref(i).map(any_slice).map_err(sql_error);
            let (details, openings) = (part(1)?, part(2)?);
            let bytes = personal_bytes(
                details.as_deref(),
                openings.as_deref().unwrap_or_default(),
                &object,
            );
            personal.insert(key(seq), bytes);
        }
    }

    let missing: Vec<i64> = seqs
        .iter()
        .copied()
        .filter(|seq| !personal.contains_key(&key(*seq)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(LEGACY_BY_LIST).map_err(sql_error)?;
    let mut rows = stmt
        .query(rusqlite::params![
            account,
            serde_json::Value::from(missing).to_string()
        ])
        .map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        if let Some(bytes) = row.get::<_, Option<Vec<u8>>>(1).map_err(sql_error)? {
            personal.insert(key(row.get(0).map_err(sql_error)?), bytes);
        }
    }
    Ok(())
}

/// The stored personal values of a row of `event_openings` and the object
/// it names, byte for byte as `sql::personal_of_log_row` concatenates them.
pub(crate) fn personal_bytes(details: Option<&[u8]>, openings: &[u8], object: &[u8]) -> Vec<u8> {
    let details = details.unwrap_or(b"{}");
    let mut bytes = Vec::with_capacity(details.len() + openings.len() + object.len() + 40);
    bytes.extend_from_slice(b"{\"details\":");
    bytes.extend_from_slice(details);
    bytes.extend_from_slice(b",\"openings\":");
    bytes.extend_from_slice(openings);
    bytes.extend_from_slice(b",\"personal\":");
    bytes.extend_from_slice(object);
    bytes.push(b'}');
    bytes
}
