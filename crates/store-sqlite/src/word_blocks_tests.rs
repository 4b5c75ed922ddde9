//! The block time summary (`word_blocks`, migration 0024) against the index
//! path it replaces: free text's counts and histograms, and its pages with
//! cursors, on random stores of several accounts whose events arrive with
//! out-of-order times, before and after bodies are pruned; that settled
//! blocks read no row; and that the migration and the check at open build
//! the same summary as the writer.

use super::*;
use crate::query::WordsDrive;
use auditlog_core::search::{Query, Zone};
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::samples::Rng;
use auditlog_store::samples::{self, BASE};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
/// Words of the events' details: `common` in most, the others rarer.
const WORDS: [&str; 6] = ["common", "often", "some", "rare", "seldom", "once"];

/// `n` sample events (times rising an hour every third event, so a block
/// of 16 seqs spans about five hours and some blocks straddle midnight)
/// with a note of random words; one in 12 carries an old time (up to 40
/// days back, some at a midnight), as a late or replayed event does.
fn events(rng: &mut Rng, n: usize, prefix: &str) -> Vec<NewEvent> {
    samples::sample_events(n, prefix)
        .into_iter()
        .map(|e| {
            let mut words = vec!["common"];
            for (i, word) in WORDS.iter().enumerate().skip(1) {
                if rng.below(2 * i as u64 + 1) == 0 {
                    words.push(word);
                }
            }
            let time = match rng.below(12) {
                0 => e.time().micros() - rng.below(40 * DAY as u64) as i64,
                1 => e.time().micros().div_euclid(DAY) * DAY - (rng.below(10) * DAY as u64) as i64,
                _ => e.time().micros(),
            };
            let note = words.join(" ");
            samples::edited(&e, |json| {
                json.insert("details".into(), serde_json::json!({ "note": note }));
                json.insert(
                    "time".into(),
                    serde_json::json!(Timestamp::from_micros(time).to_rfc3339()),
                );
            })
        })
        .collect()
}

fn parsed(q: &str) -> Query {
    Query::parse(q, &Zone::utc()).unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// A time near the events: a midnight, a microsecond either side of one, a
/// half hour (where a zone at +05:30 starts its days), or any.
fn edge(rng: &mut Rng) -> i64 {
    let midnight = BASE.div_euclid(DAY) * DAY + (rng.below(60) as i64 - 45) * DAY;
    match rng.below(5) {
        0 => midnight,
        1 => midnight - 1,
        2 => midnight + 1,
        3 => midnight + 18 * HOUR + HOUR / 2,
        _ => midnight + rng.below(DAY as u64) as i64,
    }
}

/// A random filter of free text and at times `time` terms and `from`/`to`.
fn random_words_filter(rng: &mut Rng) -> (String, EventFilter) {
    let mut q = vec![WORDS[rng.below(WORDS.len() as u64) as usize].to_string()];
    if rng.below(4) == 0 {
        q.push(WORDS[rng.below(WORDS.len() as u64) as usize].to_string());
    }
    if rng.below(6) == 0 {
        q.push("so*".into());
    }
    // Event types and actions, which the summary's kinds settle.
    if rng.below(2) == 0 {
        const KINDS: [&str; 8] = [
            "type:\"Test Case\"",
            "-type:Authentication",
            "action:Update",
            "action:Create,Delete",
            "type:Test*",
            "-action:Login",
            "type:Nonexistent",
            "type:\"test case\" -action:Delete",
        ];
        q.push(KINDS[rng.below(KINDS.len() as u64) as usize].to_string());
    }
    let mut filter = EventFilter::default();
    if rng.below(8) == 0 {
        filter.event_types = vec!["Test Case".into(), "Element".into()];
    }
    if rng.below(8) == 0 {
        filter.actions = vec!["Update".into()];
    }
    match rng.below(4) {
        0 => {
            let (a, b) = (edge(rng), edge(rng));
            let (a, b) = (a.min(b), a.max(b));
            q.push(format!(
                "time:{}..{}",
                Timestamp::from_micros(a).to_rfc3339(),
                Timestamp::from_micros(b).to_rfc3339()
            ));
        }
        1 => {
            q.push(format!(
                "time:>={}",
                Timestamp::from_micros(edge(rng)).to_rfc3339()
            ));
            filter.to = Some(Timestamp::from_micros(edge(rng)));
        }
        2 => filter.from = Some(Timestamp::from_micros(edge(rng))),
        _ => {}
    }
    let q = q.join(" ");
    filter.query = parsed(&q);
    (q, filter)
}

/// `n` sample events noting `common`, 16 seqs to a day: each block of 16
/// seqs (seqs 16k..=16k+15) lies in one day, an hour between its events.
fn a_day_per_block(n: usize, prefix: &str) -> Vec<NewEvent> {
    samples::sample_events(n, prefix)
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let seq = i as i64 + 1;
            let time = BASE.div_euclid(DAY) * DAY + (seq / 16) * DAY + (seq % 16) * HOUR;
            samples::edited(&e, |json| {
                json.insert("details".into(), serde_json::json!({ "note": "common" }));
                json.insert(
                    "time".into(),
                    serde_json::json!(Timestamp::from_micros(time).to_rfc3339()),
                );
            })
        })
        .collect()
}

/// The histogram by the index path (no block summary) and by the store.
fn histogram_with(
    conn: &Connection,
    account: i64,
    filter: &EventFilter,
    interval: Interval,
    blocks: bool,
) -> Vec<Bucket> {
    let cache = auditlog_store::leaf_codec::DictionaryCache::default();
    let leaves = crate::sql::LeafDecoder {
        cache: &cache,
        conn,
        objects: None,
    };
    let drive = WordsDrive {
        blocks,
        ..WordsDrive::default()
    };
    match query::resolve(conn, account, filter).unwrap() {
        Some(f) => query::histogram(conn, &f.with_words_drive(drive), interval, &leaves).unwrap(),
        None => Vec::new(),
    }
}

/// Every page of `filter` (pages of `limit`, by cursor, at the snapshot
/// `snapshot`), read with or without the block summary (the matches
/// always drive), as seqs.
fn pages_with(
    conn: &Connection,
    account: i64,
    filter: &EventFilter,
    (limit, snapshot): (usize, u64),
    blocks: bool,
) -> Vec<Vec<u64>> {
    let cache = auditlog_store::leaf_codec::DictionaryCache::default();
    let leaves = crate::sql::LeafDecoder {
        cache: &cache,
        conn,
        objects: None,
    };
    let drive = WordsDrive {
        page: usize::MAX,
        count: usize::MAX,
        walk: false,
        blocks,
        block_page: usize::MAX,
    };
    let Some(f) = query::resolve(conn, account, filter).unwrap() else {
        return Vec::new();
    };
    let f = f.with_words_drive(drive);
    let mut cursor: Option<auditlog_core::Cursor> = None;
    let mut pages = Vec::new();
    loop {
        let bounds = query::Bounds::page(cursor.as_ref(), snapshot);
        let mut rows = query::page(conn, &f, bounds, limit + 1, &leaves).unwrap();
        let more = rows.len() > limit;
        rows.truncate(limit);
        pages.push(rows.iter().map(|r| r.seq).collect());
        match (more, rows.last()) {
            (true, Some(last)) => {
                cursor = Some(auditlog_core::Cursor {
                    time: last.time,
                    seq: last.seq,
                    snapshot_seq: snapshot,
                })
            }
            _ => return pages,
        }
    }
}

/// Appends `stored` in groups of random sizes (so blocks are written by
/// several group commits).
async fn append_in_groups(
    store: &SqliteStore,
    account: &Account,
    rng: &mut Rng,
    stored: &[NewEvent],
) {
    let mut at = 0;
    while at < stored.len() {
        let n = (1 + rng.below(40) as usize).min(stored.len() - at);
        store
            .append(account, stored[at..at + n].to_vec())
            .await
            .unwrap();
        at += n;
    }
}

/// Compares the block paths with the index path on random filters: hour,
/// day and week buckets, and pages of 1, 3 and 7 with cursors (with other
/// terms beside the words for pages, which the summary does not settle
/// but which look up fewer rows). Returns the buckets compared.
fn blocks_agree(conn: &Connection, account: i64, rng: &mut Rng, cases: usize) -> usize {
    let mut compared = 0;
    for case in 0..cases {
        let (q, filter) = random_words_filter(rng);
        for interval in [Interval::Hour, Interval::Day, Interval::Week] {
            let expected = histogram_with(conn, account, &filter, interval, false);
            let served = histogram_with(conn, account, &filter, interval, true);
            assert_eq!(served, expected, "q={q} {filter:?} at {interval:?}");
            compared += expected.len();
        }
        let mut paged = filter.clone();
        if case % 3 == 1 {
            paged.query = parsed(&format!("{q} -user:u-3"));
        } else if case % 3 == 2 {
            paged.projects = vec!["P1".into(), "P2".into()];
        }
        let limit = [1, 3, 7][case % 3];
        // The latest events, or a snapshot taken before the last ones
        // (a walk that began earlier never sees them).
        let last = event_log::last_seq(conn, account).unwrap();
        let snapshot = if case % 2 == 0 {
            last
        } else {
            1 + rng.below(last)
        };
        let paging = (limit, snapshot);
        assert_eq!(
            pages_with(conn, account, &paged, paging, true),
            pages_with(conn, account, &paged, paging, false),
            "q={q} {paged:?} pages of {limit} at snapshot {snapshot}"
        );
    }
    compared
}

/// Block counts and pages equal the index path's on random stores of two
/// accounts (old times included), before and after bodies are pruned, and
/// the summary bounds every stored event's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_counts_and_pages_equal_the_index_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut rng = Rng(0x5eed_b10c_0000_0001);
    let a = store.create_account("blocks-a").await.unwrap();
    let b = store.create_account("blocks-b").await.unwrap();
    let stored_a = events(&mut rng, 600, "a");
    let stored_b = events(&mut rng, 250, "b");
    append_in_groups(&store, &a, &mut rng, &stored_a).await;
    append_in_groups(&store, &b, &mut rng, &stored_b).await;
    let conn = open_connection(store.path()).unwrap();
    summary_bounds_every_event(&conn);
    let blocks: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM word_blocks WHERE account_id = ?1",
            [a.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(blocks, 600 / 16 + 1, "seqs 1..=600 in blocks of 16");
    let compared =
        blocks_agree(&conn, a.id, &mut rng, 60) + blocks_agree(&conn, b.id, &mut rng, 30);
    assert!(compared > 2_000, "only {compared} buckets compared");

    // Prune seqs 1..=200 of account a: the summary stays as it was (wider
    // bounds), and the answers still agree. (The prune record itself, seq
    // 601, joins the last block.)
    let last_block = 601 >> word_blocks::BLOCK_SHIFT;
    let before: Vec<(i64, i64, i64)> = conn
        .prepare(
            "SELECT block, min_time, max_time FROM word_blocks \
             WHERE account_id = ?1 AND block < ?2 ORDER BY block",
        )
        .unwrap()
        .query_map([a.id, last_block], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        crate::rollups_tests::prune_first(&store, &a, &stored_a, 200).await,
        200
    );
    let after: Vec<(i64, i64, i64)> = conn
        .prepare(
            "SELECT block, min_time, max_time FROM word_blocks \
             WHERE account_id = ?1 AND block < ?2 ORDER BY block",
        )
        .unwrap()
        .query_map([a.id, last_block], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(after, before);
    summary_bounds_every_event(&conn);
    blocks_agree(&conn, a.id, &mut rng, 40);

    // The store's own answers (the API's path) use the summary too.
    let (_, filter) = random_words_filter(&mut rng);
    assert_eq!(
        store.histogram(a.id, &filter, Interval::Day).await.unwrap(),
        histogram_with(&conn, a.id, &filter, Interval::Day, false)
    );
    store.shutdown().await;
}

/// Every event's time lies within its block's bounds, and every block's
/// running maximum is the greatest `max_time` up to it.
fn summary_bounds_every_event(conn: &Connection) {
    let outside: i64 = conn
        .query_row(
            &format!(
                "SELECT COUNT(*) FROM event_log e LEFT JOIN word_blocks b \
                 ON b.account_id = e.key >> 40 AND b.block = (e.key & 1099511627775) >> {} \
                 WHERE b.block IS NULL OR e.time < b.min_time OR e.time > b.max_time",
                word_blocks::BLOCK_SHIFT
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(outside, 0, "events outside their block's bounds");
    let wrong: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM word_blocks b WHERE max_time_upto <> \
             (SELECT MAX(max_time) FROM word_blocks c \
              WHERE c.account_id = b.account_id AND c.block <= b.block)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(wrong, 0, "running maxima");
}

/// The summary's rows (with their kinds' bytes), for comparing builds.
type SummaryRow = (i64, i64, i64, i64, i64, Option<Vec<u8>>);
fn summary(conn: &Connection) -> Vec<SummaryRow> {
    conn.prepare(
        "SELECT b.account_id, b.block, min_time, max_time, max_time_upto, kinds \
         FROM word_blocks b LEFT JOIN word_block_kinds k USING (account_id, block) \
         ORDER BY account_id, block",
    )
    .unwrap()
    .query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

/// A histogram of a word whose blocks each lie in one day reads no row
/// (the lookups are counted), and a summary changed behind the store's
/// back shows in the answer: the counts come from the summary, not from
/// the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_blocks_are_counted_from_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("settled").await.unwrap();
    // 96 events (seqs 1..=96): each block of 16 seqs lies in one day.
    let stored = a_day_per_block(96, "s");
    store.append(&account, stored[..15].to_vec()).await.unwrap();
    store.append(&account, stored[15..].to_vec()).await.unwrap();
    let conn = open_connection(store.path()).unwrap();
    let filter = EventFilter {
        query: parsed("common"),
        ..EventFilter::default()
    };
    let words = auditlog_store::search_plan::fts5_match(
        &auditlog_store::search_plan::SearchPlan::of(&filter).words,
    )
    .unwrap();
    let mut looked_up = 0;
    let by_blocks = word_blocks::histogram(
        &conn,
        account.id,
        &words,
        (i64::MIN, i64::MAX),
        None,
        Interval::Week,
        &mut looked_up,
    )
    .unwrap();
    assert_eq!(
        by_blocks,
        histogram_with(&conn, account.id, &filter, Interval::Week, false)
    );
    assert_eq!(looked_up, 0, "no block straddles a week");
    let mut day_lookups = 0;
    word_blocks::histogram(
        &conn,
        account.id,
        &words,
        (i64::MIN, i64::MAX),
        None,
        Interval::Day,
        &mut day_lookups,
    )
    .unwrap();
    assert_eq!(day_lookups, 0, "no block straddles a day");
    // A bound inside a block: only that block's matches are looked up.
    let mut bounded_lookups = 0;
    let from = BASE.div_euclid(DAY) * DAY + 2 * DAY + 5 * HOUR;
    let bounded = word_blocks::histogram(
        &conn,
        account.id,
        &words,
        (from, i64::MAX),
        None,
        Interval::Day,
        &mut bounded_lookups,
    )
    .unwrap();
    assert_eq!(bounded_lookups, 16);
    let mut from_filter = filter.clone();
    from_filter.from = Some(Timestamp::from_micros(from));
    assert_eq!(
        bounded,
        histogram_with(&conn, account.id, &from_filter, Interval::Day, false)
    );
    // A first page of 5 newest-first looks up the two last blocks (times
    // rise with the seqs), not the 96 matches.
    let matches: Vec<i64> = conn
        .prepare(
            "SELECT rowid FROM event_words WHERE event_words MATCH ?1 \
             AND rowid BETWEEN ?2 AND ?3 ORDER BY rowid DESC",
        )
        .unwrap()
        .query_map(
            rusqlite::params![
                words,
                event_log::account_keys(account.id).0,
                event_log::account_keys(account.id).1
            ],
            |r| r.get(0),
        )
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(matches.len(), 96);
    let mut page_lookups = 0;
    let page = word_blocks::newest(&conn, account.id, &matches, 5, (None, None), |keys| {
        page_lookups += keys.len();
        Ok(keys
            .iter()
            .map(|key| {
                let time: i64 = conn
                    .query_row("SELECT time FROM event_log WHERE key = ?1", [key], |r| {
                        r.get(0)
                    })
                    .unwrap();
                (time, *key)
            })
            .collect())
    })
    .unwrap();
    let seqs: Vec<u64> = page
        .iter()
        .map(|(_, key)| event_log::seq_of(*key))
        .collect();
    assert_eq!(seqs, vec![96, 95, 94, 93, 92]);
    // Seq 96 is alone in its block (96..=111), so the block before (80..=95)
    // is read whole; the one before that ends at hour 15 of the day before
    // the page's last row, and the walk stops there.
    assert_eq!(page_lookups, 1 + 16);

    // One block's bounds moved ten days on: its matches count there.
    let total = |buckets: &[Bucket]| buckets.iter().map(|b| b.count).sum::<u64>();
    let served = store
        .histogram(account.id, &filter, Interval::Day)
        .await
        .unwrap();
    let (block, min_time): (i64, i64) = conn
        .query_row(
            "SELECT block, min_time FROM word_blocks WHERE account_id = ?1 AND block = 1",
            [account.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let moved = min_time.div_euclid(DAY) * DAY + 10 * DAY;
    conn.execute(
        "UPDATE word_blocks SET min_time = ?3, max_time = ?3 + 1 WHERE account_id = ?1 AND block = ?2",
        rusqlite::params![account.id, block, moved],
    )
    .unwrap();
    let tampered = store
        .histogram(account.id, &filter, Interval::Day)
        .await
        .unwrap();
    assert_eq!(total(&tampered), total(&served));
    let moved_bucket = tampered
        .iter()
        .find(|b| b.start.micros() == moved)
        .map(|b| b.count);
    assert_eq!(moved_bucket, Some(16), "{tampered:?}");
    // A word with a type term is settled by the summary too (each match's
    // kind from its block's row): the moved block's matches of that type
    // count on the moved day, where the index path counts them on theirs.
    let typed = EventFilter {
        query: parsed(&format!("common type:\"{}\"", stored[0].event_type())),
        ..EventFilter::default()
    };
    let typed_served = store
        .histogram(account.id, &typed, Interval::Day)
        .await
        .unwrap();
    let typed_index = histogram_with(&conn, account.id, &typed, Interval::Day, false);
    assert_eq!(total(&typed_served), total(&typed_index));
    assert!(
        typed_served.iter().any(|b| b.start.micros() == moved),
        "{typed_served:?}"
    );
    assert!(!typed_index.iter().any(|b| b.start.micros() == moved));
    store.shutdown().await;
}

/// The migration builds, from the events stored, the summary the writer
/// kept; an account whose events go beyond the summary is summarised
/// again at open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_and_the_check_at_open_build_the_writers_summary() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut rng = Rng(0x5eed_b10c_0000_0002);
    let a = store.create_account("migrated-a").await.unwrap();
    let b = store.create_account("migrated-b").await.unwrap();
    let (stored_a, stored_b) = (events(&mut rng, 300, "a"), events(&mut rng, 70, "b"));
    append_in_groups(&store, &a, &mut rng, &stored_a).await;
    append_in_groups(&store, &b, &mut rng, &stored_b).await;
    let conn = open_connection(store.path()).unwrap();
    let kept = summary(&conn);
    store.shutdown().await;

    assert!(
        kept.iter().all(|row| row.5.is_some()),
        "the writer keeps every block's kinds"
    );
    // A store of the version before migration 0024 (and so 0026).
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "DROP TABLE word_blocks; DROP TABLE word_blocks_through; DROP TABLE word_block_kinds; \
         DELETE FROM schema_migrations WHERE version IN (24, 26);",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path()).unwrap();
    let conn = open_connection(store.path()).unwrap();
    assert_eq!(summary(&conn), kept);
    store.shutdown().await;

    // A store of the version before migration 0026: its summary has no
    // kinds until the migration summarises it again.
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "DROP TABLE word_block_kinds; DELETE FROM schema_migrations WHERE version = 26;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path()).unwrap();
    let conn = open_connection(store.path()).unwrap();
    assert_eq!(summary(&conn), kept);
    store.shutdown().await;

    // Events appended beyond the summary (an older build after it ran):
    // summarised again at open.
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "DELETE FROM word_blocks WHERE block > 3; UPDATE word_blocks_through SET seq = 60;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path()).unwrap();
    let conn = open_connection(store.path()).unwrap();
    assert_eq!(summary(&conn), kept);
    summary_bounds_every_event(&conn);
    store.shutdown().await;
}

/// A count of a word with `type` and `action` terms takes each match's
/// kind from its block's row: with whole blocks in the buckets it looks no
/// row up, it equals the index path, and a block's kinds changed behind
/// the store's back show in the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_counts_with_kinds_read_each_blocks_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("kinds").await.unwrap();
    let mut rng = Rng(0x5eed_b10c_0000_0003);
    // 400 events, a day to each block of 16 seqs, so that no block
    // straddles a week.
    let stored = a_day_per_block(400, "k");
    append_in_groups(&store, &account, &mut rng, &stored).await;
    let conn = open_connection(store.path()).unwrap();
    let filter = EventFilter {
        query: parsed("common type:\"Test Case\" -action:Delete"),
        ..EventFilter::default()
    };
    let expected = histogram_with(&conn, account.id, &filter, Interval::Week, false);
    assert!(!expected.is_empty());
    assert_eq!(
        store
            .histogram(account.id, &filter, Interval::Week)
            .await
            .unwrap(),
        expected
    );
    let resolved = query::resolve(&conn, account.id, &filter).unwrap().unwrap();
    let block = resolved.block_count().expect("served by the block summary");
    let kinds =
        query::accepted_kinds(&conn, account.id, block.kinds.expect("with its kinds")).unwrap();
    let words = block.words.to_string();
    let all_time = (i64::MIN, i64::MAX);
    let mut looked_up = 0;
    let by_blocks = word_blocks::histogram(
        &conn,
        account.id,
        &words,
        all_time,
        Some(&kinds),
        Interval::Week,
        &mut looked_up,
    )
    .unwrap();
    let total = |buckets: &[Bucket]| buckets.iter().map(|b| b.count).sum::<u64>();
    assert_eq!(total(&by_blocks), total(&expected));
    assert_eq!(looked_up, 0, "every match settled by its block's row");
    // Every event's kind in block 2 changed to one the query rejects:
    // its matches no longer count, though no event changed.
    let in_block: u64 = {
        let first = event_log::log_key(account.id, 2 << word_blocks::BLOCK_SHIFT).unwrap();
        let last = event_log::log_key(account.id, (3 << word_blocks::BLOCK_SHIFT) - 1).unwrap();
        let rows: Vec<(i64, i64)> = conn
            .prepare("SELECT key, kind FROM event_log WHERE key BETWEEN ?1 AND ?2")
            .unwrap()
            .query_map([first, last], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let matched: std::collections::HashSet<i64> = conn
            .prepare(
                "SELECT rowid FROM event_words WHERE event_words MATCH ?1 \
                 AND rowid BETWEEN ?2 AND ?3",
            )
            .unwrap()
            .query_map(rusqlite::params![words, first, last], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        rows.iter()
            .filter(|(key, kind)| matched.contains(key) && kinds.contains(kind))
            .count() as u64
    };
    assert!(in_block > 0, "block 2 holds matches of the query");
    let rejected = conn
        .query_row(
            "SELECT id FROM log_values WHERE account_id = ?1 AND kind = 1 \
             AND id NOT IN (SELECT value FROM json_each(?2)) LIMIT 1",
            rusqlite::params![
                account.id,
                serde_json::Value::from(kinds.clone()).to_string()
            ],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
    let mut tampered = crate::block_kinds::BlockKinds::default();
    for slot in 0..(1usize << word_blocks::BLOCK_SHIFT) {
        tampered.set(slot, rejected);
    }
    conn.execute(
        "UPDATE word_block_kinds SET kinds = ?2 WHERE account_id = ?1 AND block = 2",
        rusqlite::params![account.id, tampered.encode()],
    )
    .unwrap();
    let after = store
        .histogram(account.id, &filter, Interval::Week)
        .await
        .unwrap();
    assert_eq!(total(&after), total(&expected) - in_block);
    // A block without kinds (written by an older build) is looked up.
    conn.execute(
        "DELETE FROM word_block_kinds WHERE account_id = ?1 AND block = 2",
        [account.id],
    )
    .unwrap();
    assert_eq!(
        store
            .histogram(account.id, &filter, Interval::Week)
            .await
            .unwrap(),
        expected
    );
    store.shutdown().await;
}
