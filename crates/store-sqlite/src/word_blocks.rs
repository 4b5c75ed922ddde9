//! The block time summary of the event log (migration 0024): for each block
//! of consecutive seqs of an account, the least and greatest time of its
//! events and the greatest time of it and every earlier block. Free text
//! reads the full-text index's rowids (the log's keys) and uses the summary
//! to settle most matches without looking their rows up:
//!
//! - **Counts and histograms** of free text with at most time bounds and
//!   event types and actions ([`histogram`]): a block whose times lie in
//!   one bucket, and wholly inside or outside the time range, adds its
//!   matches to that bucket as they are; a match's kind is read from its
//!   block's row of `word_block_kinds` (migration 0026, `block_kinds.rs`);
//!   only the matches of blocks that straddle a bucket edge or a time bound
//!   (or whose kind is not known) are looked up.
//! - **Newest-first pages** of a rare word ([`newest`]): the matches are
//!   walked by descending key, block by block, and a block is looked up only
//!   while it could still hold a row of the page; the walk stops when the
//!   greatest time of every block left is below the page's last row.
//!
//! Keys follow arrival and clients' times mostly follow it, so nearly every
//! block lies in one day; an event sent late with an old time only widens
//! its block's bounds (more lookups, never a wrong answer). Removing bodies
//! leaves the summary as it is, for the same reason.

use crate::block_kinds::BlockKinds;
use crate::event_log::{self, account_keys, seq_of};
use crate::sql::sql_error;
use auditlog_core::{Interval, Timestamp};
use auditlog_store::{Bucket, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

/// Seqs per block, as a shift: 256 in the store. Matches in a block that
/// straddles a bucket edge are looked up, so the block's span of time
/// decides the lookups: in the benchmark's 10M-event year (27,000 events a
/// day) 256 seqs span about 15 minutes, so a day histogram looks up about
/// one match in a hundred and an hour histogram (what a `tz` histogram is
/// made of) one in four; 4,096 seqs would span 3.6 hours, one in seven for
/// days and nearly every match for hours. The cost is the summary's size,
/// 40,000 rows (about 1.6 MB) for 10M events, of which a count reads those
/// of the blocks its matches are in. Unit tests use blocks of 16 seqs, so
/// that small stores have many blocks (the summary is derived data, and a
/// test store is never opened by the service).
pub(crate) const BLOCK_SHIFT: u32 = if cfg!(test) { 4 } else { 8 };

/// The block of the log's key `key` (within its account).
pub(crate) fn block_of(key: i64) -> i64 {
    (seq_of(key) >> BLOCK_SHIFT) as i64
}

/// The offset of `seq` in its block.
fn slot_of(seq: u64) -> usize {
    (seq & ((1 << BLOCK_SHIFT) - 1)) as usize
}

/// Keys looked up per statement (one JSON parameter read by `json_each`).
const LOOKUP_CHUNK: usize = 512;

/// One block's times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockTimes {
    pub min_time: i64,
    pub max_time: i64,
    /// The greatest `max_time` of this block and every earlier one.
    pub max_time_upto: i64,
}

/// What one group commit appends to a block: the least and greatest time,
/// and each event's `(slot, kind)`.
type Appended = ((i64, i64), Vec<(usize, i64)>);

/// The times and kinds one group commit adds, per block, so that the
/// writer writes each block's row once per commit instead of once per
/// event (as `rollups::DayCounts` does).
#[derive(Default)]
pub struct GroupBlocks {
    /// `(account, block)` → what the group appends to it.
    blocks: BTreeMap<(i64, i64), Appended>,
    /// The highest seq appended per account.
    through: HashMap<i64, u64>,
}

impl GroupBlocks {
    /// Notes the event `seq` of `account` at `time` (µs), of `kind` (the
    /// `log_values` id of its type and action).
    pub fn add(&mut self, account: i64, seq: u64, time: i64, kind: i64) {
        let block = (seq >> BLOCK_SHIFT) as i64;
        let (times, kinds) = self
            .blocks
            .entry((account, block))
            .or_insert(((time, time), Vec::new()));
        times.0 = times.0.min(time);
        times.1 = times.1.max(time);
        kinds.push((slot_of(seq), kind));
        let through = self.through.entry(account).or_default();
        *through = (*through).max(seq);
    }

    /// Merges the group's times into the summary, in the appending
    /// transaction. Blocks go in ascending order per account, so that each
    /// block's running maximum starts from its predecessor's, already
    /// updated.
    pub fn write(self, conn: &Connection) -> Result<()> {
        let mut current = conn
            .prepare_cached(
                "SELECT min_time, max_time FROM word_blocks WHERE account_id = ?1 AND block = ?2",
            )
            .map_err(sql_error)?;
        let mut current_kinds = conn
            .prepare_cached(
                "SELECT kinds FROM word_block_kinds WHERE account_id = ?1 AND block = ?2",
            )
            .map_err(sql_error)?;
        let mut upsert_kinds = conn
            .prepare_cached(
                "INSERT OR REPLACE INTO word_block_kinds (account_id, block, kinds) \
                 VALUES (?1, ?2, ?3)",
            )
            .map_err(sql_error)?;
        let mut previous = conn
            .prepare_cached(
                "SELECT max_time_upto FROM word_blocks WHERE account_id = ?1 AND block < ?2 \
                 ORDER BY block DESC LIMIT 1",
            )
            .map_err(sql_error)?;
        let mut upsert = conn
            .prepare_cached(
                "INSERT OR REPLACE INTO word_blocks (account_id, block, min_time, max_time, \
                 max_time_upto) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(sql_error)?;
        // Appends only ever reach an account's last block or a new one, so
        // no later block exists; were there one, its running maximum must
        // still cover this block.
        let mut later = conn
            .prepare_cached(
                "UPDATE word_blocks SET max_time_upto = ?3 \
                 WHERE account_id = ?1 AND block > ?2 AND max_time_upto < ?3",
            )
            .map_err(sql_error)?;
        for ((account, block), ((min_time, max_time), appended)) in self.blocks {
            let (min_time, max_time) = match current
                .query_row(params![account, block], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()
                .map_err(sql_error)?
            {
                Some((min, max)) => (min.min(min_time), max.max(max_time)),
                None => (min_time, max_time),
            };
            // A block without kinds (begun by a build before migration
            // 0026) keeps its earlier slots unknown.
            let mut kinds = current_kinds
                .query_row(params![account, block], |r| r.get::<_, Vec<u8>>(0))
                .optional()
                .map_err(sql_error)?
                .and_then(|k| BlockKinds::decode(&k))
                .unwrap_or_default();
            for (slot, kind) in appended {
                kinds.set(slot, kind);
            }
            upsert_kinds
                .execute(params![account, block, kinds.encode()])
                .map_err(sql_error)?;
            let before: Option<i64> = previous
                .query_row(params![account, block], |r| r.get(0))
                .optional()
                .map_err(sql_error)?;
            let upto = before.map_or(max_time, |b| b.max(max_time));
            upsert
                .execute(params![account, block, min_time, max_time, upto])
                .map_err(sql_error)?;
            later
                .execute(params![account, block, upto])
                .map_err(sql_error)?;
        }
        let mut through = conn
            .prepare_cached(
                "INSERT INTO word_blocks_through (account_id, seq) VALUES (?1, ?2) \
                 ON CONFLICT (account_id) DO UPDATE SET seq = max(seq, excluded.seq)",
            )
            .map_err(sql_error)?;
        for (account, seq) in self.through {
            through
                .execute(params![account, seq as i64])
                .map_err(sql_error)?;
        }
        Ok(())
    }
}

/// Migration 0026: the kinds' table, then the summary of every account's
/// events (migration 0024 made the tables; the summary is built here, once
/// with its kinds, for stores older than either).
pub fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(include_str!("../migrations/0026_block_kinds.sql"))
        .map_err(sql_error)?;
    summarise(conn, None)
}

/// Summarises the events of `account` (every account when `None`) again,
/// replacing their rows. One pass over `event_log_by_kind` (the key, the
/// time and the kind only: the index is covering, about 20 bytes an event,
/// where the table's rows hold the leaves), its blocks gathered in memory
/// (40,000 for 10M events, about 15 MB with their kinds), so no sort of the
/// events is needed.
pub(crate) fn summarise(conn: &Connection, account: Option<i64>) -> Result<()> {
    let mut blocks: BTreeMap<(i64, i64), ((i64, i64), BlockKinds)> = BTreeMap::new();
    let mut through: BTreeMap<i64, i64> = BTreeMap::new();
    {
        let (sql, values) = match account {
            Some(account) => (
                "SELECT key, time, kind FROM event_log INDEXED BY event_log_by_kind \
                 WHERE key >> 40 = ?1",
                vec![account],
            ),
            None => (
                "SELECT key, time, kind FROM event_log INDEXED BY event_log_by_kind",
                vec![],
            ),
        };
        let mut stmt = conn.prepare(sql).map_err(sql_error)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(values))
            .map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            let key: i64 = row.get(0).map_err(sql_error)?;
            let time: i64 = row.get(1).map_err(sql_error)?;
            let kind: i64 = row.get(2).map_err(sql_error)?;
            let account = key >> 40;
            let ((min, max), kinds) = blocks
                .entry((account, block_of(key)))
                .or_insert(((time, time), BlockKinds::default()));
            *min = (*min).min(time);
            *max = (*max).max(time);
            kinds.set(slot_of(seq_of(key)), kind);
            let seq = seq_of(key) as i64;
            let last = through.entry(account).or_insert(seq);
            *last = (*last).max(seq);
        }
    }
    match account {
        Some(account) => {
            conn.execute("DELETE FROM word_blocks WHERE account_id = ?1", [account])
                .map_err(sql_error)?;
            conn.execute(
                "DELETE FROM word_block_kinds WHERE account_id = ?1",
                [account],
            )
            .map_err(sql_error)?;
            conn.execute(
                "DELETE FROM word_blocks_through WHERE account_id = ?1",
                [account],
            )
            .map_err(sql_error)?;
        }
        None => {
            conn.execute_batch(
                "DELETE FROM word_blocks; DELETE FROM word_block_kinds; \
                 DELETE FROM word_blocks_through;",
            )
            .map_err(sql_error)?;
        }
    }
    let mut insert = conn
        .prepare(
            "INSERT INTO word_blocks (account_id, block, min_time, max_time, max_time_upto) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sql_error)?;
    let mut insert_kinds = conn
        .prepare("INSERT INTO word_block_kinds (account_id, block, kinds) VALUES (?1, ?2, ?3)")
        .map_err(sql_error)?;
    let mut running: Option<(i64, i64)> = None;
    for ((account, block), ((min_time, max_time), kinds)) in blocks {
        let upto = match running {
            Some((a, upto)) if a == account => upto.max(max_time),
            _ => max_time,
        };
        running = Some((account, upto));
        insert
            .execute(params![account, block, min_time, max_time, upto])
            .map_err(sql_error)?;
        insert_kinds
            .execute(params![account, block, kinds.encode()])
            .map_err(sql_error)?;
    }
    for (account, seq) in through {
        conn.execute(
            "INSERT INTO word_blocks_through (account_id, seq) VALUES (?1, ?2)",
            params![account, seq],
        )
        .map_err(sql_error)?;
    }
    Ok(())
}

/// Summarises again every account whose events go beyond what the summary
/// accounts for (appended by a build older than migration 0024 after it
/// ran: a downgrade, then an upgrade). Runs at open; a check reads one
/// index entry and one row per account.
pub fn summarise_stale(conn: &mut Connection) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    let accounts: Vec<(i64, Option<i64>)> = {
        let mut stmt = tx
            .prepare(
                "SELECT a.id, t.seq FROM accounts a \
                 LEFT JOIN word_blocks_through t ON t.account_id = a.id ORDER BY a.id",
            )
            .map_err(sql_error)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_error)?
    };
    for (account, through) in accounts {
        let last = event_log::last_seq(&tx, account)? as i64;
        if last > through.unwrap_or(0) {
            tracing::warn!(
                account_id = account,
                last_seq = last,
                summarised = through,
                "the block time summary misses events: summarising the account again"
            );
            summarise(&tx, Some(account))?;
        }
    }
    tx.commit().map_err(sql_error)
}

/// The summaries of `blocks` (any order; a block without one is absent),
/// by the primary key in one statement: one statement per block cost a
/// rare word's page with a `time:` term about 5 µs per block it walked
/// past (BENCHMARKS.md, "The 10M rerun" of 7 December, morning).
fn blocks_by_key(
    conn: &Connection,
    account: i64,
    blocks: &[i64],
) -> Result<HashMap<i64, BlockTimes>> {
    rows_by_key(conn, account, blocks, TIMES, block_row)
}

/// `(table, columns)` of the block time summary.
const TIMES: (&str, &str) = ("word_blocks", "block, min_time, max_time, max_time_upto");

/// `(table, columns)` of the blocks' kinds.
const KINDS: (&str, &str) = ("word_block_kinds", "block, kinds");

/// The rows of `blocks` of `table`, by its primary key in one statement.
fn rows_by_key<T>(
    conn: &Connection,
    account: i64,
    blocks: &[i64],
    (table, columns): (&str, &str),
    row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<(i64, T)>,
) -> Result<HashMap<i64, T>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {columns} FROM {table} \
             WHERE account_id = ?1 AND block IN (SELECT value FROM json_each(?2))"
        ))
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(
            params![
                account,
                serde_json::Value::from(blocks.to_vec()).to_string()
            ],
            row,
        )
        .map_err(sql_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql_error)
}

/// A `(block, times)` row of `word_blocks`.
fn block_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, BlockTimes)> {
    Ok((
        r.get(0)?,
        BlockTimes {
            min_time: r.get(1)?,
            max_time: r.get(2)?,
            max_time_upto: r.get(3)?,
        },
    ))
}

/// The summaries of the blocks of `matches` (ascending keys of one
/// account): the blocks between the first and the last when the matches
/// are in most of them (one range of the primary key), else each matched
/// block by the primary key (a rare word's few blocks among 40,000).
fn matched_blocks(
    conn: &Connection,
    account: i64,
    matches: &[i64],
) -> Result<HashMap<i64, BlockTimes>> {
    matched_rows(conn, account, matches, TIMES, block_row)
}

/// The stored kinds of the blocks of `matches` (as [`matched_blocks`]
/// reads their times), read in place by [`BlockKinds::kind_in`]; a block
/// whose row has none is absent.
fn matched_kinds(
    conn: &Connection,
    account: i64,
    matches: &[i64],
) -> Result<HashMap<i64, Vec<u8>>> {
    let kinds_row =
        |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, Vec<u8>)> { Ok((r.get(0)?, r.get(1)?)) };
    matched_rows(conn, account, matches, KINDS, kinds_row)
}

/// `columns` of the `table` rows of the blocks of `matches` (ascending
/// keys of one account): the blocks between the first and the last in one
/// range of the primary key when the matches are in most of them, else
/// each matched block by the primary key (a rare word's few blocks among
/// 40,000).
fn matched_rows<T>(
    conn: &Connection,
    account: i64,
    matches: &[i64],
    (table, columns): (&str, &str),
    row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<(i64, T)>,
) -> Result<HashMap<i64, T>> {
    let mut blocks: Vec<i64> = matches.iter().map(|key| block_of(*key)).collect();
    blocks.dedup();
    let (Some(&first), Some(&last)) = (blocks.first(), blocks.last()) else {
        return Ok(HashMap::new());
    };
    if (blocks.len() as i64).saturating_mul(8) < last - first + 1 {
        return rows_by_key(conn, account, &blocks, (table, columns), row);
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {columns} FROM {table} WHERE account_id = ?1 AND block BETWEEN ?2 AND ?3"
        ))
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![account, first, last], row)
        .map_err(sql_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql_error)
}

/// What a block's summary settles for a histogram.
#[derive(Clone, Copy)]
enum Settled {
    /// Every event of the block is in the range and in this bucket.
    Bucket(i64),
    /// No event of the block is in the range.
    Outside,
    /// Its matches must be looked up (or it has no summary).
    LookUp,
}

/// The histogram of the events of `account` among the full-text index's
/// matches of `words` with times in `[from, to]` (inclusive; `i64::MIN`
/// and `i64::MAX` for open ends), and of one of `kinds` (`log_values` ids)
/// when given, at `interval` (UTC buckets), as `query::histogram` counts
/// it: the matches are read from the index's doclist (rowids only), a
/// match's kind from its block's row, and only the matches of blocks the
/// summary does not settle (or whose kind it does not know) are looked up.
/// `looked_up` counts those lookups (tests check that settled blocks read
/// no row).
pub(crate) fn histogram(
    conn: &Connection,
    account: i64,
    words: &str,
    (from, to): (i64, i64),
    kinds: Option<&[i64]>,
    interval: Interval,
    looked_up: &mut usize,
) -> Result<Vec<Bucket>> {
    let bucket = |time: i64| interval.bucket_start(Timestamp::from_micros(time)).micros();
    let (first, last) = account_keys(account);
    // The rowids only (the doclist), in ascending order: 8 bytes a match.
    let matches: Vec<i64> = conn
        .prepare_cached(
            "SELECT rowid FROM event_words WHERE event_words MATCH ?1 \
             AND rowid BETWEEN ?2 AND ?3 ORDER BY rowid",
        )
        .map_err(sql_error)?
        .query_map(params![words, first, last], |r| r.get(0))
        .map_err(sql_error)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql_error)?;
    let blocks = matched_blocks(conn, account, &matches)?;
    let settle = |block: i64| match blocks.get(&block) {
        None => Settled::LookUp,
        Some(b) if b.max_time < from || b.min_time > to => Settled::Outside,
        Some(b)
            if from <= b.min_time
                && b.max_time <= to
                && bucket(b.min_time) == bucket(b.max_time) =>
        {
            Settled::Bucket(bucket(b.min_time))
        }
        Some(_) => Settled::LookUp,
    };
    // The kinds, when the filter has some, of the matches' blocks that lie
    // not wholly outside the time range.
    let accepted: Option<HashSet<i64>> = kinds.map(|k| k.iter().copied().collect());
    let block_kinds = match accepted {
        Some(_) => {
            let candidates: Vec<i64> = matches
                .iter()
                .copied()
                .filter(|key| !matches!(settle(block_of(*key)), Settled::Outside))
                .collect();
            matched_kinds(conn, account, &candidates)?
        }
        None => HashMap::new(),
    };
    let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
    let mut pending: Vec<i64> = Vec::new();
    {
        // One block's matches are consecutive: its verdict is reused until
        // the block changes.
        let mut current: Option<(i64, Settled)> = None;
        for &key in &matches {
            let block = block_of(key);
            let settled = match current {
                Some((b, settled)) if b == block => settled,
                _ => {
                    let settled = settle(block);
                    current = Some((block, settled));
                    settled
                }
            };
            if matches!(settled, Settled::Outside) {
                continue;
            }
            if let Some(accepted) = &accepted {
                let kind = block_kinds
                    .get(&block)
                    .and_then(|kinds| BlockKinds::kind_in(kinds, slot_of(seq_of(key))));
                match kind {
                    Some(kind) if !accepted.contains(&kind) => continue,
                    Some(_) => {}
                    None => {
                        pending.push(key);
                        continue;
                    }
                }
            }
            match settled {
                Settled::Bucket(start) => *counts.entry(start).or_default() += 1,
                Settled::Outside => {}
                Settled::LookUp => pending.push(key),
            }
        }
    }
    *looked_up += pending.len();
    for chunk in pending.chunks(LOOKUP_CHUNK) {
        let mut stmt = conn
            .prepare_cached(
                "SELECT time, kind FROM event_log NOT INDEXED \
                 WHERE key IN (SELECT value FROM json_each(?1)) AND time BETWEEN ?2 AND ?3",
            )
            .map_err(sql_error)?;
        let rows = stmt
            .query_map(
                params![
                    serde_json::Value::from(chunk.to_vec()).to_string(),
                    from,
                    to
                ],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .map_err(sql_error)?;
        for row in rows {
            let (time, kind) = row.map_err(sql_error)?;
            if accepted.as_ref().is_none_or(|a| a.contains(&kind)) {
                *counts.entry(bucket(time)).or_default() += 1;
            }
        }
    }
    Ok(counts
        .into_iter()
        .map(|(start, count)| Bucket {
            start: Timestamp::from_micros(start),
            count,
        })
        .collect())
}

/// The blocks whose summaries [`newest`] reads in one statement: enough
/// that the statement's own cost is small beside its rows', few enough
/// that a walk which stops early reads little it does not use.
const SUMMARIES_AHEAD: usize = 128;

/// The newest `limit` rows, by `(time, key)` descending, among `matches`
/// (the full-text index's matches of one account, descending keys) that
/// `look_up` accepts: it gets a block's keys and answers `(time, key)` of
/// those passing every other condition. `high` is the latest time a row
/// may have (the cursor's, the filter's `to`); `low` the earliest.
///
/// Blocks are read from the newest: a block is looked up only if it could
/// hold a row better than the page's current last one, and the walk stops
/// when `max_time_upto` (the latest time of this and every earlier block)
/// is not above it, since every key left is below every key kept. A block
/// without a summary is always looked up and never stops the walk.
pub(crate) fn newest(
    conn: &Connection,
    account: i64,
    matches: &[i64],
    limit: usize,
    (low, high): (Option<i64>, Option<i64>),
    mut look_up: impl FnMut(&[i64]) -> Result<Vec<(i64, i64)>>,
) -> Result<Vec<(i64, i64)>> {
    // A min-heap of the best `limit` rows so far: its top is the page's
    // last row.
    let mut page: BinaryHeap<Reverse<(i64, i64)>> = BinaryHeap::with_capacity(limit + 1);
    let mut summaries: HashMap<i64, BlockTimes> = HashMap::new();
    let mut fetched: HashSet<i64> = HashSet::new();
    let mut at = 0;
    while at < matches.len() && limit > 0 {
        let block = block_of(matches[at]);
        let end = at
            + matches[at..]
                .iter()
                .take_while(|key| block_of(**key) == block)
                .count();
        let keys = &matches[at..end];
        if !fetched.contains(&block) {
            // This block's summary and those of the next blocks the walk
            // may reach, in one statement.
            let mut ahead: Vec<i64> = Vec::with_capacity(SUMMARIES_AHEAD);
            for key in &matches[at..] {
                let block = block_of(*key);
                if ahead.last() != Some(&block) {
                    if ahead.len() == SUMMARIES_AHEAD {
                        break;
                    }
                    ahead.push(block);
                }
            }
            summaries.extend(blocks_by_key(conn, account, &ahead)?);
            fetched.extend(ahead);
        }
        at = end;
        if let Some(times) = summaries.get(&block) {
            let last = (page.len() >= limit)
                .then(|| page.peek().map(|Reverse((time, _))| *time))
                .flatten();
            if let Some(last) = last {
                // Keys left are all below the page's: a row of theirs
                // needs a later time than its last row's.
                if times.max_time_upto <= last {
                    break;
                }
                if times.max_time <= last {
                    continue;
                }
            }
            if high.is_some_and(|high| times.min_time > high)
                || low.is_some_and(|low| times.max_time < low)
            {
                continue;
            }
        }
        for row in look_up(keys)? {
            page.push(Reverse(row));
            if page.len() > limit {
                page.pop();
            }
        }
    }
    let mut rows: Vec<(i64, i64)> = page.into_iter().map(|Reverse(row)| row).collect();
    rows.sort_unstable_by(|a, b| b.cmp(a));
    Ok(rows)
}
