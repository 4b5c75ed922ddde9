//! A long run of the log's rows (an export's page) read on one thread while
//! another turns them into records. Stepping SQLite and attaching personal
//! values on one side, decompressing each leaf and hashing it on the other:
//! in a whole account's export, reading was the critical path (the pages'
//! formatting runs on two threads beside it) and decoding was 45 % of it
//! (BENCHMARKS.md, "Export: pages formatted two at a time, leaves decoded
//! beside the read"). The reading thread hands each batch over and goes on
//! to the next; the records come back in row order.
//!
//! Only for filters that accept every row the statement gives
//! ([`LogFilter::needs_no_confirmation`](crate::query::LogFilter)): a
//! filter that confirms rows against their leaves must decode each one
//! before it knows whether the page is full.

use crate::personal_rows::{self, BATCH_ROWS};
use crate::sql::{sql_error, to_record_preloaded, LeafDecoder, RecordRow};
use auditlog_store::{EventRecord, Result, StoreError};
use rusqlite::{Connection, Rows};
use std::sync::mpsc::{sync_channel, SyncSender};

/// Batches read ahead of the decoding thread.
const QUEUED_BATCHES: usize = 2;

/// Up to `limit` rows of `rows` (every row when `None`) as records, in order.
pub(crate) fn read(
    conn: &Connection,
    rows: &mut Rows<'_>,
    limit: Option<usize>,
    leaves: &LeafDecoder<'_>,
) -> Result<Vec<EventRecord>> {
    let cache = leaves.cache;
    std::thread::scope(|scope| {
        let (batches, to_decode) = sync_channel::<Vec<RecordRow>>(QUEUED_BATCHES);
        let decoder = scope.spawn(move || -> Result<Vec<EventRecord>> {
            let mut records = Vec::with_capacity(limit.unwrap_or(BATCH_ROWS));
            for batch in to_decode {
                for row in batch {
                    records.push(to_record_preloaded(row, cache)?);
                }
            }
            Ok(records)
        });
        let read = read_batches(conn, rows, limit, leaves, &batches);
        // The decoder ends once the batches stop coming.
        drop(batches);
        let decoded = decoder
            .join()
            .map_err(|_| StoreError::internal("the thread decoding stored leaves panicked"))?;
        read?;
        decoded
    })
}

/// Reads batches of rows with their personal values and dictionaries
/// loaded, and sends them to the decoder; stops early (quietly) when the
/// decoder has stopped on an error, which it reports itself.
fn read_batches(
    conn: &Connection,
    rows: &mut Rows<'_>,
    limit: Option<usize>,
    leaves: &LeafDecoder<'_>,
    batches: &SyncSender<Vec<RecordRow>>,
) -> Result<()> {
    let mut read = 0;
    loop {
        let wanted = limit.map_or(BATCH_ROWS, |limit| (limit - read).min(BATCH_ROWS));
        let mut batch = Vec::with_capacity(wanted);
        while batch.len() < wanted {
            match rows.next().map_err(sql_error)? {
                Some(row) => batch.push(personal_rows::bare_row(row).map_err(sql_error)?),
                None => break,
            }
        }
        read += batch.len();
        let last = batch.len() < wanted || limit.is_some_and(|limit| read >= limit);
        let batch = personal_rows::attach(conn, batch, leaves.objects)?;
        leaves.preload(batch.iter().filter_map(|row| row.2))?;
        if batches.send(batch).is_err() || last {
            return Ok(());
        }
    }
}
