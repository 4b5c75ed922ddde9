//! The rollup path of histograms against the plain index count, for many
//! random filters and ranges (day-aligned and not), before and after the
//! migration runs on a store that already holds events.

use super::*;
use auditlog_core::NewEvent;
use auditlog_core::Timestamp;
use auditlog_store::conformance;
use auditlog_store::samples::Rng;

pub(crate) const DAY: i64 = 86_400_000_000;
/// Events spread over 30 days starting 10 days before the epoch, so that
/// day numbers of negative times are exercised too.
pub(crate) const FIRST: i64 = -10 * DAY;
const SPAN: i64 = 30 * DAY;
const PROJECTS: [&str; 4] = ["P0", "P1", "", "P3"];

/// Sample events at random times (midnights and the microsecond before
/// them included), projects among P0, P1, P3, the empty string and none.
pub(crate) fn events(rng: &mut Rng, n: usize, prefix: &str) -> Vec<NewEvent> {
    conformance::sample_events(n, prefix)
        .into_iter()
        .map(|e| {
            let day = FIRST + rng.below(30) as i64 * DAY;
            let time = Timestamp::from_micros(match rng.below(4) {
                0 => day,
                1 => day - 1,
                _ => day + rng.below(DAY as u64) as i64,
            });
            let p = rng.below(PROJECTS.len() as u64 + 1) as usize;
            // An empty project, which the parser refuses, must still count.
            let project = PROJECTS.get(p).map(|p| p.to_string());
            e.into_builder().time(time).project(project).build()
        })
        .collect()
}

/// A time edge: none, a midnight, a microsecond either side of one, or any.
pub(crate) fn edge(rng: &mut Rng) -> Option<Timestamp> {
    let midnight = FIRST - 2 * DAY + rng.below(34) as i64 * DAY;
    let micros = match rng.below(6) {
        0 => return None,
        1 => midnight,
        2 => midnight - 1,
        3 => midnight + 1,
        _ => FIRST - 2 * DAY + rng.below((SPAN + 4 * DAY) as u64) as i64,
    };
    Some(Timestamp::from_micros(micros))
}

fn some_of(rng: &mut Rng, values: &[String]) -> Vec<String> {
    let n = rng.below(3);
    (0..n)
        .map(|_| values[rng.below(values.len() as u64) as usize].clone())
        .collect()
}

fn random_filter(rng: &mut Rng, stored: &[NewEvent]) -> EventFilter {
    let types: Vec<String> = stored.iter().map(|e| e.event_type().to_string()).collect();
    let actions: Vec<String> = stored.iter().map(|e| e.action().to_string()).collect();
    let projects: Vec<String> = PROJECTS.iter().map(|p| p.to_string()).collect();
    let mut filter = EventFilter {
        event_types: some_of(rng, &types),
        actions: some_of(rng, &actions),
        projects: some_of(rng, &projects),
        from: edge(rng),
        to: edge(rng),
        ..EventFilter::default()
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from > to && rng.below(4) != 0 {
            (filter.from, filter.to) = (Some(to), Some(from));
        }
    }
    filter
}

/// The store's answer (the rollup path) equals the index path's for `cases`
/// random filters at day and week intervals; returns how many buckets were
/// compared, so that callers can check the cases were not all empty.
async fn rollups_agree_with_the_index(
    store: &SqliteStore,
    account: AccountId,
    rng: &mut Rng,
    stored: &[NewEvent],
    cases: usize,
) -> usize {
    let conn = open_connection(store.path()).unwrap();
    let mut compared = 0;
    for case in 0..cases {
        let filter = random_filter(rng, stored);
        let interval = if case % 2 == 0 {
            Interval::Day
        } else {
            Interval::Week
        };
        assert!(rollups::applies(&filter, interval));
        let from_rollups = store.histogram(account, &filter, interval).await.unwrap();
        let from_index = index_histogram(&conn, account, &filter, interval);
        assert_eq!(from_rollups, from_index, "{filter:?} at {interval:?}");
        compared += from_index.len();
    }
    compared
}

/// The histogram counted from the log's indexes, never the rollups.
pub(crate) fn index_histogram(
    conn: &Connection,
    account: AccountId,
    filter: &EventFilter,
    interval: Interval,
) -> Vec<auditlog_store::Bucket> {
    let cache = auditlog_store::leaf_codec::DictionaryCache::default();
    let leaves = crate::sql::LeafDecoder {
        cache: &cache,
        conn,
        objects: None,
    };
    query::histogram_of(conn, account, filter, interval, &leaves).unwrap()
}

async fn rollup_total(store: &SqliteStore, account: AccountId) -> i64 {
    let conn = open_connection(store.path()).unwrap();
    conn.query_row(
        "SELECT COALESCE(SUM(count), 0) FROM event_rollups WHERE account_id = ?1",
        [account],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_histograms_equal_the_index_count_for_random_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("rollups").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut stored = events(&mut rng, 700, "a");
    for chunk in stored.chunks(70) {
        store.append(&account, chunk.to_vec()).await.unwrap();
    }
    assert_eq!(rollup_total(&store, account.id).await, 700);
    // Idempotent repeats and a conflicting request add nothing.
    store.append(&account, stored[..50].to_vec()).await.unwrap();
    let mut conflicting = stored[..2].to_vec();
    let later = Timestamp::from_micros(conflicting[1].time().micros() + 1);
    conflicting[1] = conflicting[1].clone().into_builder().time(later).build();
    assert!(store.append(&account, conflicting).await.is_err());
    assert_eq!(rollup_total(&store, account.id).await, 700);
    let compared = rollups_agree_with_the_index(&store, account.id, &mut rng, &stored, 300).await;
    assert!(compared > 1_000, "only {compared} buckets compared");

    // Appending more keeps them in step, including days that already have rows.
    let more = events(&mut rng, 300, "b");
    store.append(&account, more.clone()).await.unwrap();
    stored.extend(more);
    assert_eq!(rollup_total(&store, account.id).await, 1_000);
    rollups_agree_with_the_index(&store, account.id, &mut rng, &stored, 300).await;
    store.shutdown().await;
}

/// The migration fills the rollups from the events a store already holds,
/// and appends after it keep them exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_rolls_up_events_stored_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("old").await.unwrap();
    let other = store.create_account("other").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let mut stored = events(&mut rng, 500, "a");
    store.append(&account, stored.clone()).await.unwrap();
    store
        .append(&other, events(&mut rng, 50, "o"))
        .await
        .unwrap();
    store.shutdown().await;
    // Make it look like a store of a version before the rollups (and the
    // event log: migration 0005 counts the old table).
    let old = tempfile::tempdir().unwrap();
    crate::migration_tests::write_old_layout(dir.path(), old.path());
    let conn = Connection::open(old.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "DROP TABLE event_rollups; DELETE FROM schema_migrations WHERE version = 5;",
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(old.path()).unwrap();
    assert_eq!(rollup_total(&store, account.id).await, 500);
    assert_eq!(rollup_total(&store, other.id).await, 50);
    // Migration 0023 counted them by actor too.
    assert_eq!(actor_rollup_total(&store, account.id).await, 500);
    assert_eq!(actor_rollup_total(&store, other.id).await, 50);
    let compared = rollups_agree_with_the_index(&store, account.id, &mut rng, &stored, 200).await;
    assert!(compared > 500, "only {compared} buckets compared");
    let more = events(&mut rng, 200, "b");
    store.append(&account, more.clone()).await.unwrap();
    stored.extend(more);
    rollups_agree_with_the_index(&store, account.id, &mut rng, &stored, 200).await;
    store.shutdown().await;
}

/// The answer really comes from the rollups for whole days (and from the
/// index for the edges): a rollup row changed behind the store's back shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_days_are_read_from_the_rollups_and_edges_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("path").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    store
        .append(&account, events(&mut rng, 200, "a"))
        .await
        .unwrap();
    let day_total = |buckets: &[Bucket], day: i64| {
        buckets
            .iter()
            .find(|b| b.start.micros() == day * DAY)
            .map_or(0, |b| b.count)
    };
    let whole = EventFilter::default();
    let before = store
        .histogram(account.id, &whole, Interval::Day)
        .await
        .unwrap();
    let conn = open_connection(store.path()).unwrap();
    // The rollup is append-only in spirit; this test alone edits it.
    let changed = conn
        .execute(
            "UPDATE event_rollups SET count = count + 1000 WHERE account_id = ?1 AND day = \
             (SELECT MIN(day) FROM event_rollups WHERE account_id = ?1)",
            [account.id],
        )
        .unwrap();
    assert!(changed > 0);
    let first_day: i64 = conn
        .query_row(
            "SELECT MIN(day) FROM event_rollups WHERE account_id = ?1",
            [account.id],
            |r| r.get(0),
        )
        .unwrap();
    let after = store
        .histogram(account.id, &whole, Interval::Day)
        .await
        .unwrap();
    assert_eq!(
        day_total(&after, first_day),
        day_total(&before, first_day) + 1000 * changed as u64
    );
    // A range that holds that day only partly counts it from the events.
    let partial = EventFilter {
        from: Some(Timestamp::from_micros(first_day * DAY + 1)),
        ..EventFilter::default()
    };
    let edge = store
        .histogram(account.id, &partial, Interval::Day)
        .await
        .unwrap();
    let from_index = index_histogram(&conn, account.id, &partial, Interval::Day);
    assert_eq!(edge, from_index);
    assert!(day_total(&edge, first_day) <= day_total(&before, first_day));
    // Hour buckets never use the rollups.
    let hours = store
        .histogram(account.id, &whole, Interval::Hour)
        .await
        .unwrap();
    assert_eq!(
        hours.iter().map(|b| b.count).sum::<u64>(),
        before.iter().map(|b| b.count).sum::<u64>()
    );
    store.shutdown().await;
}

/// Rollups that miss events (appended by an older build after the migration
/// ran, or edited) are recounted from the events when the store opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_rollups_are_recounted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("stale").await.unwrap();
    let other = store.create_account("intact").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0004);
    let stored = events(&mut rng, 300, "a");
    store.append(&account, stored.clone()).await.unwrap();
    store
        .append(&other, events(&mut rng, 40, "o"))
        .await
        .unwrap();
    store.shutdown().await;
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    let missed = conn
        .execute(
            "DELETE FROM event_rollups WHERE account_id = ?1 AND day = \
             (SELECT MIN(day) FROM event_rollups WHERE account_id = ?1)",
            [account.id],
        )
        .unwrap();
    assert!(missed > 0);
    drop(conn);

    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(rollup_total(&store, account.id).await, 300);
    assert_eq!(rollup_total(&store, other.id).await, 40);
    let compared = rollups_agree_with_the_index(&store, account.id, &mut rng, &stored, 100).await;
    assert!(compared > 200, "only {compared} buckets compared");
    store.shutdown().await;
}

/// The rollups' check at open takes no write lock when every rollup counts
/// its events: run while a server's writer holds the lock, it neither
/// waits for it nor fails. A stale rollup is still recounted
/// once the lock is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_at_open_leaves_the_write_lock_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("busy").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0005);
    store
        .append(&account, events(&mut rng, 120, "b"))
        .await
        .unwrap();
    store.shutdown().await;
    let path = dir.path().join(DB_FILE);

    // Another writer holds the write lock, mid-transaction.
    let holder = open_connection(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut opener = open_connection(&path).unwrap();
    opener.busy_timeout(std::time::Duration::ZERO).unwrap();
    rollups::recount_stale(&mut opener)
        .expect("a check with nothing stale must not need the write lock");
    holder.execute_batch("ROLLBACK").unwrap();

    // A stale rollup, once the lock is free, is recounted.
    opener
        .execute(
            "DELETE FROM actor_rollups WHERE account_id = ?1 AND day = \
             (SELECT MIN(day) FROM actor_rollups WHERE account_id = ?1)",
            [account.id],
        )
        .unwrap();
    rollups::recount_stale(&mut opener).unwrap();
    let total: i64 = opener
        .query_row(
            "SELECT SUM(count) FROM actor_rollups WHERE account_id = ?1",
            [account.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(total, 120);
}

/// The rollup query is a search of the rollups' primary key by account (and
/// day range), read in day order: no scan and no sort, whatever the filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollup_query_searches_the_primary_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("plans").await.unwrap();
    let conn = open_connection(store.path()).unwrap();
    let one = |v: &str| vec![v.to_string()];
    let filters = [
        EventFilter::default(),
        EventFilter {
            event_types: one("Test Case"),
            ..EventFilter::default()
        },
        EventFilter {
            actions: vec!["Update".into(), "Create".into()],
            projects: one("P0"),
            ..EventFilter::default()
        },
    ];
    let choice = |accepted: &[&str], rejected: &[&str], none| rollups::TextChoice {
        accepted: accepted.iter().map(|s| s.to_string()).collect(),
        rejected: rejected.iter().map(|s| s.to_string()).collect(),
        none,
    };
    // `q`'s texts: accepted lists, rejected lists (negations), projects
    // with and without events that have none.
    let q_texts = [
        rollups::QueryTexts::default(),
        rollups::QueryTexts {
            event_types: Some(choice(&["Test Case"], &["A", "B"], false)),
            actions: Some(choice(&["X", "Y", "Z"], &["Update"], false)),
            projects: None,
        },
        rollups::QueryTexts {
            event_types: None,
            actions: Some(choice(&["Update", "Create"], &["Z", "Y", "X"], false)),
            projects: Some(choice(&["P1", "P2"], &["P0"], true)),
        },
        rollups::QueryTexts {
            event_types: None,
            actions: None,
            projects: Some(choice(&["P0"], &["P1", "P2"], false)),
        },
    ];
    for (filter, texts) in filters
        .iter()
        .flat_map(|f| q_texts.iter().map(move |t| (f, t)))
    {
        for days in [(None, None), (Some(3), None), (Some(3), Some(9))] {
            let clause = rollups::rollup_clause(account.id, filter, texts, days);
            let sql = format!("EXPLAIN QUERY PLAN {}", rollups::rollup_sql(&clause));
            let mut stmt = conn.prepare(&sql).unwrap();
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(clause.params), |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                plan.iter()
                    .any(|s| s.starts_with("SEARCH event_rollups USING PRIMARY KEY")),
                "{filter:?} {texts:?} {days:?}: {plan:?}"
            );
            assert!(
                !plan
                    .iter()
                    .any(|s| s.contains("SCAN") || s.contains("TEMP B-TREE")),
                "{filter:?} {texts:?} {days:?}: {plan:?}"
            );
        }
    }
    store.shutdown().await;
}

// ---- `q` served by the rollups ----

/// A random `q` of the terms the rollups serve: `type`, `action` and
/// `project` (negated, OR lists, prefixes, other cases, values no event
/// has) and `time` (bounds, ranges, OR lists of ranges, negations, whole
/// days), one to four terms, keys repeated at times.
fn random_served_q(rng: &mut Rng, types: &[String], actions: &[String]) -> String {
    let pick =
        |rng: &mut Rng, values: &[String]| values[rng.below(values.len() as u64) as usize].clone();
    let quoted = |v: String| {
        if v.contains(' ') {
            format!("\"{v}\"")
        } else {
            v
        }
    };
    let text_value = |rng: &mut Rng, values: &[String]| -> String {
        let v = pick(rng, values);
        match rng.below(6) {
            0 => quoted(v.to_lowercase()),
            1 => {
                let cut: String = v.chars().take(1 + rng.below(3) as usize).collect();
                format!("{}*", quoted(cut))
            }
            2 => "Nonexistent".into(),
            _ => quoted(v),
        }
    };
    let projects: Vec<String> = ["P0", "P1", "P3", "P2"]
        .iter()
        .map(|p| p.to_string())
        .collect();
    let instant = |rng: &mut Rng| -> String {
        edge(rng)
            .unwrap_or(Timestamp::from_micros(FIRST + 3 * DAY))
            .to_rfc3339()
    };
    let range = |rng: &mut Rng| -> String {
        let (a, b) = (instant(rng), instant(rng));
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        match rng.below(5) {
            0 => format!("{a}..{b}"),
            1 => format!("..{b}"),
            2 => format!("{a}.."),
            3 => {
                // A whole UTC day.
                let day = FIRST + rng.below(30) as i64 * DAY;
                Timestamp::from_micros(day).to_rfc3339()[..10].to_string()
            }
            _ => format!("{a}..{b}"),
        }
    };
    let terms = 1 + rng.below(4);
    let mut q = Vec::new();
    for _ in 0..terms {
        let minus = if rng.below(4) == 0 { "-" } else { "" };
        let term = match rng.below(5) {
            0 | 1 => {
                let (key, values) = match rng.below(3) {
                    0 => ("type", types),
                    1 => ("action", actions),
                    _ => ("project", projects.as_slice()),
                };
                let n = 1 + rng.below(3);
                let list: Vec<String> = (0..n).map(|_| text_value(rng, values)).collect();
                format!("{minus}{key}:{}", list.join(","))
            }
            2 => {
                let op = [">=", "<=", ">", "<"][rng.below(4) as usize];
                format!("{minus}time:{op}{}", instant(rng))
            }
            3 => format!("{minus}time:{}", range(rng)),
            _ => format!("{minus}time:{},{}", range(rng), range(rng)),
        };
        q.push(term);
    }
    q.join(" ")
}

pub(crate) fn parsed(q: &str) -> auditlog_core::search::Query {
    auditlog_core::search::Query::parse(q, &auditlog_core::search::Zone::utc())
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// `q`'s `type`, `action`, `project` and `time` terms are served by the
/// rollups (`rollups::applies`) with exactly the index path's buckets, for
/// fixed cases (negations, OR lists, time edges at midnights) and random
/// ones, alone and with the filter parameters; a `q` with any other term is
/// left to the index path and agrees too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_serve_q_with_the_index_paths_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("q").await.unwrap();
    let other = store.create_account("other").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0005);
    let stored = events(&mut rng, 900, "a");
    for chunk in stored.chunks(90) {
        store.append(&account, chunk.to_vec()).await.unwrap();
    }
    // Another account's texts must not leak into this one's answers.
    let others: Vec<NewEvent> = events(&mut rng, 60, "o")
        .into_iter()
        .map(|e| {
            auditlog_store::samples::edited(&e, |json| {
                json.insert("project".into(), serde_json::json!("Elsewhere"));
            })
        })
        .collect();
    store.append(&other, others).await.unwrap();
    let conn = open_connection(store.path()).unwrap();
    let mut types: Vec<String> = stored.iter().map(|e| e.event_type().to_string()).collect();
    types.sort();
    types.dedup();
    let mut actions: Vec<String> = stored.iter().map(|e| e.action().to_string()).collect();
    actions.sort();
    actions.dedup();
    let day = |n: i64| Timestamp::from_micros(FIRST + n * DAY).to_rfc3339()[..10].to_string();
    let midnight = |n: i64| Timestamp::from_micros(FIRST + n * DAY).to_rfc3339();
    let before_midnight = |n: i64| Timestamp::from_micros(FIRST + n * DAY - 1).to_rfc3339();
    let t0 = quoted_first(&types);
    let mut served: Vec<String> = vec![
        format!("type:{t0}"),
        format!("-type:{t0}"),
        format!(
            "type:{},{}",
            quoted_first(&types[1..]),
            quoted_first(&types[2..])
        ),
        format!(
            "type:{} action:{}",
            t0.to_lowercase(),
            actions[0].to_uppercase()
        ),
        format!("-action:{},{}", actions[0], actions[1]),
        format!("action:{} action:{}", actions[0], actions[1]),
        "project:P0".into(),
        "-project:P0".into(),
        "project:P0,P3".into(),
        "-project:P0,P1,P3".into(),
        "project:P*".into(),
        "-project:P*".into(),
        "project:P2".into(),
        "project:Elsewhere".into(),
        "type:Nonexistent".into(),
        "-type:Nonexistent".into(),
        format!("time:{}", day(3)),
        format!("time:{}..{}", day(3), day(9)),
        format!("time:>={} time:<{}", midnight(4), midnight(11)),
        format!(
            "time:>{} time:<={}",
            before_midnight(4),
            before_midnight(11)
        ),
        format!("time:{}..{}", before_midnight(4), midnight(11)),
        format!("-time:{}..{}", day(5), day(20)),
        format!("-time:{}", midnight(7)),
        format!("time:{},{}..{},{}", day(1), day(4), day(6), day(25)),
        format!("time:{}..{} -time:{}", day(1), day(25), day(10)),
        format!("time:>={} time:<={}", midnight(9), before_midnight(9)),
        format!(
            "type:{t0} -action:{} -project:P1 time:{}..{}",
            actions[0],
            day(2),
            day(28)
        ),
        format!(
            "project:P0,P1 action:{},{} -time:{}",
            actions[0],
            actions[2],
            day(15)
        ),
    ];
    for _ in 0..250 {
        served.push(random_served_q(&mut rng, &types, &actions));
    }
    let mut compared = 0;
    for (n, q) in served.iter().enumerate() {
        let mut filter = EventFilter {
            query: parsed(q),
            ..EventFilter::default()
        };
        if n % 3 == 1 {
            // With the parameters, too.
            let params = random_filter(&mut rng, &stored);
            filter = EventFilter {
                query: filter.query,
                ..params
            };
        }
        for interval in [Interval::Day, Interval::Week] {
            assert!(rollups::applies(&filter, interval), "{q}");
            let from_rollups = store
                .histogram(account.id, &filter, interval)
                .await
                .unwrap();
            let from_index = index_histogram(&conn, account.id, &filter, interval);
            assert_eq!(from_rollups, from_index, "q={q} {filter:?} at {interval:?}");
            compared += from_index.len();
        }
        assert!(!rollups::applies(&filter, Interval::Hour));
    }
    assert!(compared > 3_000, "only {compared} buckets compared");

    // Terms the rollups do not hold: the index path, with the same answer.
    for q in [
        format!("type:{t0} user:u-1 project:P0"),
        "project:P0 app:A0".into(),
        "-version:1.0".into(),
        "target:T-1".into(),
        format!("type:{t0} User"),
        "-project:P0 -user".into(),
        "seq:>100".into(),
        "actor.name:\"User 1\" project:P1".into(),
        format!("id:a1 time:{}..{}", day(0), day(29)),
    ] {
        let filter = EventFilter {
            query: parsed(&q),
            ..EventFilter::default()
        };
        assert!(!rollups::applies(&filter, Interval::Day), "{q}");
        let from_store = store
            .histogram(account.id, &filter, Interval::Day)
            .await
            .unwrap();
        let from_index = index_histogram(&conn, account.id, &filter, Interval::Day);
        assert_eq!(from_store, from_index, "{q}");
    }
    store.shutdown().await;
}

fn quoted_first(values: &[String]) -> String {
    let v = &values[0];
    if v.contains(' ') {
        format!("\"{v}\"")
    } else {
        v.clone()
    }
}

/// A `q` the rollups serve really reads them (a rollup row changed behind
/// the store's back shows), and one with free text does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q_of_rollup_terms_reads_the_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("q-path").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0006);
    let stored = events(&mut rng, 300, "a");
    store.append(&account, stored.clone()).await.unwrap();
    let conn = open_connection(store.path()).unwrap();
    let (first_day, event_type): (i64, String) = conn
        .query_row(
            "SELECT day, event_type FROM event_rollups WHERE account_id = ?1 ORDER BY day LIMIT 1",
            [account.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let total_of = |buckets: &[Bucket]| buckets.iter().map(|b| b.count).sum::<u64>();
    let q = |text: &str| EventFilter {
        query: parsed(text),
        ..EventFilter::default()
    };
    let quoted = if event_type.contains(' ') {
        format!("\"{event_type}\"")
    } else {
        event_type.clone()
    };
    let served = q(&format!(
        "type:{} -project:Nonexistent",
        quoted.to_lowercase()
    ));
    let unserved = q(&format!("type:{quoted} User"));
    let before = total_of(
        &store
            .histogram(account.id, &served, Interval::Day)
            .await
            .unwrap(),
    );
    let before_unserved = total_of(
        &store
            .histogram(account.id, &unserved, Interval::Day)
            .await
            .unwrap(),
    );
    let changed = conn
        .execute(
            "UPDATE event_rollups SET count = count + 1000 WHERE account_id = ?1 AND day = ?2 \
             AND event_type = ?3",
            rusqlite::params![account.id, first_day, event_type],
        )
        .unwrap();
    assert!(changed > 0);
    let after = total_of(
        &store
            .histogram(account.id, &served, Interval::Day)
            .await
            .unwrap(),
    );
    assert_eq!(after, before + 1000 * changed as u64);
    let after_unserved = total_of(
        &store
            .histogram(account.id, &unserved, Interval::Day)
            .await
            .unwrap(),
    );
    assert_eq!(after_unserved, before_unserved);
    store.shutdown().await;
}

/// Prunes the bodies of seqs `1..=last` of `account` (`stored`, appended
/// first and in order) under a prune record covering them; returns how
/// many bodies were removed.
pub(crate) async fn prune_first(
    store: &SqliteStore,
    account: &Account,
    stored: &[NewEvent],
    last: u64,
) -> u64 {
    let range = auditlog_core::coverage::SeqRange::new(1, last).unwrap();
    let receipts = store
        .append(
            account,
            vec![auditlog_store::removal_conformance::prune_record(&[range])],
        )
        .await
        .unwrap();
    let record = receipts[0].seq;
    store
        .add_coverage(account.id, record, &[range])
        .await
        .unwrap();
    let bodies: Vec<auditlog_store::RemovedBody> = stored[..last as usize]
        .iter()
        .enumerate()
        .map(|(i, e)| auditlog_store::RemovedBody {
            seq: i as u64 + 1,
            event_id: e.id().to_string(),
        })
        .collect();
    store
        .remove_bodies(
            account.id,
            record,
            auditlog_store::RemovalKind::Pruned,
            &bodies,
        )
        .await
        .unwrap()
}

// ---- `user` served by the actor rollups (migration 0023) ----

use auditlog_store::Removals;

async fn actor_rollup_total(store: &SqliteStore, account: AccountId) -> i64 {
    let conn = open_connection(store.path()).unwrap();
    conn.query_row(
        "SELECT COALESCE(SUM(count), 0) FROM actor_rollups WHERE account_id = ?1",
        [account],
        |r| r.get(0),
    )
    .unwrap()
}

/// Events of `events` with actors u-0 … u-8 (u-8 rare, `U-1` another
/// actor than `u-1`: ids are compared exactly).
pub(crate) fn with_actors(rng: &mut Rng, events: Vec<NewEvent>) -> Vec<NewEvent> {
    events
        .into_iter()
        .map(|e| {
            let actor = match rng.below(20) {
                0 => "u-8".to_string(),
                1 => "U-1".to_string(),
                n => format!("u-{}", n % 8),
            };
            auditlog_store::samples::edited(&e, |json| {
                json.insert("actor".into(), serde_json::json!({ "id": actor }));
            })
        })
        .collect()
}

/// A random `q` of `user` terms (negated, OR lists, prefixes, ids no
/// event has) and at times `time` terms.
pub(crate) fn random_user_q(rng: &mut Rng) -> String {
    let actor = |rng: &mut Rng| match rng.below(9) {
        0 => "u-*".to_string(),
        1 => "u-1*".to_string(),
        2 => "U-1".to_string(),
        3 => "nobody".to_string(),
        n => format!("u-{}", n),
    };
    let terms = 1 + rng.below(3);
    let mut q = Vec::new();
    for n in 0..terms {
        let minus = if rng.below(3) == 0 { "-" } else { "" };
        if n > 0 && rng.below(3) == 0 {
            let day = FIRST + rng.below(30) as i64 * DAY;
            let a = Timestamp::from_micros(day).to_rfc3339();
            let b = edge(rng)
                .unwrap_or(Timestamp::from_micros(FIRST + 20 * DAY))
                .to_rfc3339();
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            q.push(format!("{minus}time:{a}..{b}"));
            continue;
        }
        let list: Vec<String> = (0..1 + rng.below(3)).map(|_| actor(rng)).collect();
        q.push(format!("{minus}user:{}", list.join(",")));
    }
    q.join(" ")
}

/// `filter` answered by the store (which must take the rollup path) and
/// by the index path, at day and week buckets; the buckets compared.
pub(crate) async fn actor_rollups_agree(
    store: &SqliteStore,
    conn: &Connection,
    account: AccountId,
    filters: &[(String, EventFilter)],
) -> usize {
    let mut compared = 0;
    for (q, filter) in filters {
        for interval in [Interval::Day, Interval::Week] {
            assert!(rollups::applies(filter, interval), "{q} {filter:?}");
            let from_rollups = store.histogram(account, filter, interval).await.unwrap();
            let from_index = index_histogram(conn, account, filter, interval);
            assert_eq!(from_rollups, from_index, "q={q} {filter:?} at {interval:?}");
            compared += from_index.len();
        }
        assert!(!rollups::applies(filter, Interval::Hour));
    }
    compared
}

/// `user` terms and the `users` parameter (with times) are served by
/// `actor_rollups` with exactly the index path's buckets: fixed and random
/// `q` (negation, OR lists, prefixes), before and after bodies are pruned
/// (whose rows leave the rollup when empty); `user` with other terms is
/// left to the index path and agrees too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actor_rollups_serve_user_terms_with_the_index_paths_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("users").await.unwrap();
    let other = store.create_account("other").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0007);
    let stored = {
        let plain = events(&mut rng, 800, "a");
        with_actors(&mut rng, plain)
    };
    for chunk in stored.chunks(80) {
        store.append(&account, chunk.to_vec()).await.unwrap();
    }
    // The other account's actors have the same ids: never counted here.
    store
        .append(&other, {
            let plain = events(&mut rng, 80, "o");
            with_actors(&mut rng, plain)
        })
        .await
        .unwrap();
    assert_eq!(actor_rollup_total(&store, account.id).await, 800);
    assert_eq!(actor_rollup_total(&store, other.id).await, 80);
    let conn = open_connection(store.path()).unwrap();
    let day = |n: i64| Timestamp::from_micros(FIRST + n * DAY).to_rfc3339()[..10].to_string();
    let midnight = |n: i64| Timestamp::from_micros(FIRST + n * DAY).to_rfc3339();
    let mut cases: Vec<String> = vec![
        "user:u-1".into(),
        "user:U-1".into(),
        "user:u-1,u-2,u-3".into(),
        "user:u-1 user:u-1,u-2".into(),
        "-user:u-1".into(),
        "-user:u-1,u-2".into(),
        "-user:u-*".into(),
        "user:u-*".into(),
        "user:u-* -user:u-8".into(),
        "user:nobody".into(),
        "-user:nobody".into(),
        format!("user:u-2 time:{}..{}", day(3), day(9)),
        format!("user:u-2 time:>={} time:<{}", midnight(4), midnight(11)),
        format!("-user:u-3 time:{}..{}", midnight(2), midnight(20)),
        format!("user:u-4,u-5 -time:{}", day(7)),
        format!("user:u-8 time:{},{}", day(1), day(12)),
    ];
    for _ in 0..120 {
        cases.push(random_user_q(&mut rng));
    }
    let mut filters: Vec<(String, EventFilter)> = Vec::new();
    for (n, q) in cases.iter().enumerate() {
        let mut filter = EventFilter {
            query: parsed(q),
            ..EventFilter::default()
        };
        if n % 4 == 1 {
            filter.users = vec!["u-2".into(), "u-5".into()];
        }
        if n % 5 == 2 {
            filter.from = edge(&mut rng);
            filter.to = edge(&mut rng);
        }
        filters.push((q.clone(), filter));
    }
    // The parameter alone, with and without times.
    for users in [vec!["u-1"], vec!["u-1", "U-1", "nobody"], vec!["nobody"]] {
        let filter = EventFilter {
            users: users.iter().map(|u| u.to_string()).collect(),
            from: edge(&mut rng),
            ..EventFilter::default()
        };
        filters.push((format!("users={users:?}"), filter));
    }
    let compared = actor_rollups_agree(&store, &conn, account.id, &filters).await;
    assert!(compared > 1_500, "only {compared} buckets compared");

    // `user` with terms no actor rollup is keyed by: the index path
    // (`user` with `type` is `actor_kind_rollups_tests`').
    for q in [
        "-user:u-1 project:P0".to_string(),
        "user:u-1 app:A0".into(),
        "user:u-1 zyx".into(),
        "user:u-1 target:T-1".into(),
    ] {
        let filter = EventFilter {
            query: parsed(&q),
            ..EventFilter::default()
        };
        assert!(!rollups::applies(&filter, Interval::Day), "{q}");
        let from_store = store
            .histogram(account.id, &filter, Interval::Day)
            .await
            .unwrap();
        assert_eq!(
            from_store,
            index_histogram(&conn, account.id, &filter, Interval::Day),
            "{q}"
        );
    }

    // Prune the bodies of seq 1..=300: the rollups lose them, and rows left
    // with no event go (rare actors have days of one event).
    let rows = |conn: &Connection| -> i64 {
        conn.query_row("SELECT COUNT(*) FROM actor_rollups", [], |r| r.get(0))
            .unwrap()
    };
    let rows_before = rows(&conn);
    assert_eq!(prune_first(&store, &account, &stored, 300).await, 300);
    assert_eq!(actor_rollup_total(&store, account.id).await, 801 - 300);
    let empty: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM actor_rollups WHERE count <= 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(empty, 0, "rows of removed events only are deleted");
    assert!(rows(&conn) < rows_before);
    let compared = actor_rollups_agree(&store, &conn, account.id, &filters).await;
    assert!(compared > 800, "only {compared} buckets compared");
    store.shutdown().await;
}

/// The actor rollup holds integers only (account, `actors` row id, day,
/// count): no actor id, name or email, so erasure, which renames the
/// `actors` row, leaves nothing personal in it; and a user is found by the
/// id its `actors` row holds now, never by one it held before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actor_rollups_hold_no_personal_value_and_follow_the_actors_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("personal").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0008);
    let stored = {
        let plain = events(&mut rng, 200, "a");
        with_actors(&mut rng, plain)
    };
    store.append(&account, stored).await.unwrap();
    let conn = open_connection(store.path()).unwrap();
    let columns: Vec<(String, String)> = conn
        .prepare("SELECT name, type FROM pragma_table_info('actor_rollups')")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(columns.len(), 4, "{columns:?}");
    assert!(columns.iter().all(|(_, t)| t == "INTEGER"), "{columns:?}");
    let not_integer: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM actor_rollups WHERE typeof(account_id) <> 'integer' \
             OR typeof(actor) <> 'integer' OR typeof(day) <> 'integer' OR typeof(count) <> 'integer'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(not_integer, 0);
    let q = |text: &str| EventFilter {
        query: parsed(text),
        ..EventFilter::default()
    };
    let total = |buckets: Vec<Bucket>| buckets.iter().map(|b| b.count).sum::<u64>();
    let before = total(
        store
            .histogram(account.id, &q("user:u-3"), Interval::Day)
            .await
            .unwrap(),
    );
    assert!(before > 0);
    // What erasure's retirement of an actor does to `actors` (erasure.rs
    // `retire_actor`): the row keeps its id and takes the pseudonym.
    conn.execute(
        "UPDATE actors SET actor_id = 'erased:abc', name = NULL, email = NULL \
         WHERE account_id = ?1 AND actor_id = 'u-3'",
        [account.id],
    )
    .unwrap();
    for filter in [
        q("user:u-3"),
        q("user:u-3,nobody"),
        EventFilter {
            users: vec!["u-3".into()],
            ..EventFilter::default()
        },
    ] {
        assert!(rollups::applies(&filter, Interval::Day));
        let answer = store
            .histogram(account.id, &filter, Interval::Day)
            .await
            .unwrap();
        assert_eq!(answer, vec![], "{filter:?}");
        assert_eq!(
            index_histogram(&conn, account.id, &filter, Interval::Day),
            vec![]
        );
    }
    let by_pseudonym = q("user:erased:abc");
    let answer = store
        .histogram(account.id, &by_pseudonym, Interval::Day)
        .await
        .unwrap();
    assert_eq!(
        answer,
        index_histogram(&conn, account.id, &by_pseudonym, Interval::Day)
    );
    assert_eq!(total(answer), before);
    let rest = q("-user:erased:abc");
    assert_eq!(
        store
            .histogram(account.id, &rest, Interval::Week)
            .await
            .unwrap(),
        index_histogram(&conn, account.id, &rest, Interval::Week)
    );
    store.shutdown().await;
}

/// A `user` count really reads the actor rollup (a row changed behind the
/// store's back shows), the rejected actors' rows too when it is negated,
/// and the rollup is recounted at open when it misses events, or built by
/// migration 0023 for a store that had none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actor_rollups_are_read_recounted_and_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("read").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0009);
    let stored = {
        let plain = events(&mut rng, 300, "a");
        with_actors(&mut rng, plain)
    };
    store.append(&account, stored).await.unwrap();
    let conn = open_connection(store.path()).unwrap();
    let q = |text: &str| EventFilter {
        query: parsed(text),
        ..EventFilter::default()
    };
    let total = |buckets: Vec<Bucket>| buckets.iter().map(|b| b.count).sum::<u64>();
    let (user, negated) = (q("user:u-2"), q("-user:u-2"));
    let before = total(
        store
            .histogram(account.id, &user, Interval::Day)
            .await
            .unwrap(),
    );
    let before_negated = total(
        store
            .histogram(account.id, &negated, Interval::Day)
            .await
            .unwrap(),
    );
    let changed = conn
        .execute(
            "UPDATE actor_rollups SET count = count + 1000 WHERE account_id = ?1 \
             AND actor = (SELECT id FROM actors WHERE account_id = ?1 AND actor_id = 'u-2')",
            [account.id],
        )
        .unwrap() as u64;
    assert!(changed > 0);
    assert_eq!(
        total(
            store
                .histogram(account.id, &user, Interval::Day)
                .await
                .unwrap()
        ),
        before + 1000 * changed
    );
    // Day totals less u-2's rows: the negated count drops by as much (a
    // day whose total turns negative has no bucket).
    let after_negated = total(
        store
            .histogram(account.id, &negated, Interval::Day)
            .await
            .unwrap(),
    );
    assert!(
        after_negated < before_negated,
        "{after_negated} {before_negated}"
    );
    store.shutdown().await;

    // Reopened, the edited rollup is recounted from the events.
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(actor_rollup_total(&store, account.id).await, 300);
    assert_eq!(
        total(
            store
                .histogram(account.id, &user, Interval::Day)
                .await
                .unwrap()
        ),
        before
    );
    store.shutdown().await;

    // A store of the version before migration 0023.
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "DROP TABLE actor_rollups; DELETE FROM schema_migrations WHERE version = 23;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(actor_rollup_total(&store, account.id).await, 300);
    let conn = open_connection(store.path()).unwrap();
    for filter in [user, negated, q("user:u-1,u-3,u-8")] {
        assert_eq!(
            store
                .histogram(account.id, &filter, Interval::Day)
                .await
                .unwrap(),
            index_histogram(&conn, account.id, &filter, Interval::Day)
        );
    }
    store.shutdown().await;
}

/// The actor rollup's statements search its primary key (one range per
/// actor), and the negated form the day rollups' too: no scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_rollup_query_searches_the_primary_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("plans").await.unwrap();
    let conn = open_connection(store.path()).unwrap();
    let choices = [
        rollups::ActorChoice {
            accepted: vec![1],
            rejected: vec![2, 3],
            named: false,
        },
        rollups::ActorChoice {
            accepted: vec![1, 2],
            rejected: vec![],
            named: true,
        },
        rollups::ActorChoice {
            accepted: vec![1, 2, 3],
            rejected: vec![4],
            named: false,
        },
        rollups::ActorChoice {
            accepted: vec![1, 2],
            rejected: vec![],
            named: false,
        },
    ];
    for choice in &choices {
        for days in [(None, None), (Some(3), None), (Some(3), Some(9))] {
            let clause = choice.clause(account.id, days);
            let sql = format!("EXPLAIN QUERY PLAN {}", clause.sql);
            let mut stmt = conn.prepare(&sql).unwrap();
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(clause.params), |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                !plan
                    .iter()
                    .any(|s| s.starts_with("SCAN event_rollups")
                        || s.starts_with("SCAN actor_rollups")),
                "{choice:?} {days:?}: {plan:?}"
            );
            if choice.named
                || choice.accepted.len() <= choice.rejected.len()
                || !choice.rejected.is_empty()
            {
                assert!(
                    plan.iter().any(|s| s.starts_with(
                        "SEARCH actor_rollups USING PRIMARY KEY (account_id=? AND actor=?"
                    )),
                    "{choice:?} {days:?}: {plan:?}"
                );
            }
        }
    }
    store.shutdown().await;
}
