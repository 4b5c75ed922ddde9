//! Histograms and confirmations from the log's indexes (never the
//! rollups): what `PgStore::histogram` reads when the rollups do not apply,
//! what the rollups read for a range's partial first and last days
//! (`rollups`), and the leaf checks every reader applies to the rows its
//! SQL only narrowed.

use crate::query;
use crate::sql::{load_dictionaries, pg_error, to_record, RECORD_DICTIONARY};
use auditlog_core::leaf_view::LeafView;
use auditlog_core::{EventFilter, Interval, Timestamp};
use auditlog_store::leaf_codec::DictionaryCache;
use auditlog_store::{AccountId, Bucket, EventRecord, Result, StoreError};

/// The histogram of `filter` counted from the log's indexes (never the
/// rollups), in the caller's read transaction.
pub(crate) async fn index_histogram(
    tx: &deadpool_postgres::Transaction<'_>,
    dictionaries: &DictionaryCache,
    account: AccountId,
    filter: &EventFilter,
    interval: Interval,
) -> Result<Vec<Bucket>> {
    let ids = query::resolve(&**tx, account, filter).await?;
    query::plan_each_query(&**tx, filter).await?;
    index_counts(tx, dictionaries, account, filter, &ids, interval).await
}

/// [`index_histogram`] with `filter`'s ids already resolved
/// (`query::resolve`; a filter's `from` and `to` do not change them,
/// so the rollup path resolves once for all its edges).
pub(crate) async fn index_counts(
    tx: &deadpool_postgres::Transaction<'_>,
    dictionaries: &DictionaryCache,
    account: AccountId,
    filter: &EventFilter,
    ids: &query::Resolved,
    interval: Interval,
) -> Result<Vec<Bucket>> {
    let clause = query::where_clause(account, filter, ids);
    if ids.query.is_some() {
        // Some terms are confirmed on each candidate: read them in key
        // order, a batch at a time, and count the confirmed ones.
        const BATCH: i64 = 2_000;
        let sql = query::key_batch_sql(&clause);
        let statement = tx.prepare_cached(&sql).await.map_err(pg_error)?;
        let mut counts: std::collections::BTreeMap<i64, u64> = Default::default();
        let mut after_key = i64::MIN;
        loop {
            let mut params = clause.refs();
            params.push(&after_key);
            params.push(&BATCH);
            let rows = tx.query(&statement, &params).await.map_err(pg_error)?;
            load_dictionaries(&**tx, dictionaries, &rows, RECORD_DICTIONARY).await?;
            let Some(last) = rows.last() else { break };
            let last_key: i64 = last.get(0);
            let done = (rows.len() as i64) < BATCH;
            let mut read = rows
                .iter()
                .map(|row| to_record(row, dictionaries))
                .collect::<Result<Vec<_>>>()?;
            confirm(&mut read, filter, ids)?;
            for record in read {
                *counts
                    .entry(interval.bucket_start(record.time).micros())
                    .or_default() += 1;
            }
            if done {
                break;
            }
            after_key = last_key;
        }
        return Ok(counts
            .into_iter()
            .map(|(start, count)| Bucket {
                start: Timestamp::from_micros(start),
                count,
            })
            .collect());
    }
    let sql = query::histogram_sql(&clause, interval);
    let statement = tx.prepare_cached(&sql).await.map_err(pg_error)?;
    let rows = tx
        .query(&statement, &clause.refs())
        .await
        .map_err(pg_error)?;
    Ok(rows
        .iter()
        .map(|r| Bucket {
            start: Timestamp::from_micros(
                r.get::<_, i64>(0) * interval.micros() + interval.offset_micros(),
            ),
            count: r.get::<_, i64>(1) as u64,
        })
        .collect())
}

/// The log keeps a target id's hash: the leaves confirm it (a hash shared
/// by two target ids would otherwise add the other's events); and the terms
/// of `q` that the SQL only narrowed are checked with the reference matcher.
pub(crate) fn confirm(
    events: &mut Vec<EventRecord>,
    filter: &EventFilter,
    ids: &query::Resolved,
) -> Result<()> {
    if !ids.confirms(filter) {
        return Ok(());
    }
    let unreadable = |seq: u64, e| {
        StoreError::internal_caused_by(format!("event seq {seq} has unreadable leaf bytes"), e)
    };
    let mut kept = Vec::with_capacity(events.len());
    for record in events.drain(..) {
        if let Some(target) = &filter.target_id {
            // The leaf's target id, read in place (the target id is never a
            // personal value): building the stored event with its personal
            // values for each candidate cost an entity history's count
            // about 50 ms at 1M events (BENCHMARKS.md), as on SQLite
            // (`query::LogFilter::confirmed_leaf`).
            let view = LeafView::parse(&record.leaf_bytes).map_err(|e| {
                StoreError::internal_caused_by(
                    format!("event seq {} has unreadable leaf bytes", record.seq),
                    e,
                )
            })?;
            if view.target_id() != Some(target.as_str()) {
                continue;
            }
        }
        if let Some(query) = &ids.query {
            if !query
                .matches_record(&record.stored())
                .map_err(|e| unreadable(record.seq, e))?
            {
                continue;
            }
        }
        kept.push(record);
    }
    *events = kept;
    Ok(())
}
