//! The rollup path of histograms (`rollups.rs`, migration 0022) against the
//! index path, bucket by bucket, for fixed and random filters and `q`,
//! before and after bodies are removed; proof that the served counts read
//! the rollups; and the migration on a store that holds events already.

use super::*;
use crate::test_support::TestDatabase;
use auditlog_core::coverage::SeqRange;
use auditlog_core::search::{Query, Zone};
use auditlog_store::samples::Rng;
use auditlog_store::{conformance, removal_conformance, RemovalKind, Removals, RemovedBody};

const DAY: i64 = 86_400_000_000;
/// Events spread over 30 days starting 10 days before the epoch, so that
/// day numbers of negative times are exercised too.
const FIRST: i64 = -10 * DAY;
const SPAN: i64 = 30 * DAY;
const PROJECTS: [&str; 4] = ["P0", "P1", "", "P3"];

/// Sample events at random times (midnights and the microsecond before
/// them included), projects among P0, P1, P3, the empty string and none,
/// actors u-0 … u-8 (u-8 rare; `U-1` is another actor than `u-1`).
fn events(rng: &mut Rng, n: usize, prefix: &str) -> Vec<NewEvent> {
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
            let project = PROJECTS.get(p).map(|p| p.to_string());
            let actor = match rng.below(20) {
                0 => "u-8".to_string(),
                1 => "U-1".to_string(),
                n => format!("u-{}", n % 8),
            };
            let e = auditlog_store::samples::edited(&e, |json| {
                json.insert("actor".into(), serde_json::json!({ "id": actor }));
            });
            e.into_builder().time(time).project(project).build()
        })
        .collect()
}

/// A time edge: none, a midnight, a microsecond either side of one, or any.
fn edge(rng: &mut Rng) -> Option<Timestamp> {
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

/// Random parameters of the columns `event_rollups` holds, and times.
fn random_parameters(rng: &mut Rng, stored: &[NewEvent]) -> EventFilter {
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

fn quoted(v: &str) -> String {
    if v.contains(' ') {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

/// A `time` term's value: a bound, a range or a whole UTC day.
fn random_range(rng: &mut Rng) -> String {
    let mut instant = || {
        edge(rng)
            .unwrap_or(Timestamp::from_micros(FIRST + 3 * DAY))
            .to_rfc3339()
    };
    let (a, b) = (instant(), instant());
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    match rng.below(5) {
        0 => format!("..{b}"),
        1 => format!("{a}.."),
        2 => {
            let day = FIRST + rng.below(30) as i64 * DAY;
            Timestamp::from_micros(day).to_rfc3339()[..10].to_string()
        }
        _ => format!("{a}..{b}"),
    }
}

/// A random `q` of the terms `event_rollups` serve: `type`, `action` and
/// `project` (negated, OR lists, prefixes, other cases, values no event
/// has) and `time` (bounds, ranges, lists, negations).
fn random_dictionary_q(rng: &mut Rng, types: &[String], actions: &[String]) -> String {
    let projects: Vec<String> = ["P0", "P1", "P3", "P2"].map(String::from).to_vec();
    let mut q = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let minus = if rng.below(4) == 0 { "-" } else { "" };
        let term = match rng.below(5) {
            0 | 1 => {
                let (key, values) = match rng.below(3) {
                    0 => ("type", types),
                    1 => ("action", actions),
                    _ => ("project", projects.as_slice()),
                };
                let list: Vec<String> = (0..1 + rng.below(3))
                    .map(|_| {
                        let v = &values[rng.below(values.len() as u64) as usize];
                        match rng.below(6) {
                            0 => quoted(&v.to_lowercase()),
                            1 => {
                                let cut: String =
                                    v.chars().take(1 + rng.below(3) as usize).collect();
                                format!("{}*", quoted(&cut))
                            }
                            2 => "Nonexistent".into(),
                            _ => quoted(v),
                        }
                    })
                    .collect();
                format!("{minus}{key}:{}", list.join(","))
            }
            2 => {
                let op = [">=", "<=", ">", "<"][rng.below(4) as usize];
                let at = edge(rng)
                    .unwrap_or(Timestamp::from_micros(FIRST))
                    .to_rfc3339();
                format!("{minus}time:{op}{at}")
            }
            3 => format!("{minus}time:{}", random_range(rng)),
            _ => format!("{minus}time:{},{}", random_range(rng), random_range(rng)),
        };
        q.push(term);
    }
    q.join(" ")
}

/// A random `q` of `user` terms (negated, OR lists, prefixes, ids no event
/// has) and at times `time` terms.
fn random_user_q(rng: &mut Rng) -> String {
    let mut q = Vec::new();
    for n in 0..1 + rng.below(3) {
        let minus = if rng.below(3) == 0 { "-" } else { "" };
        if n > 0 && rng.below(3) == 0 {
            q.push(format!("{minus}time:{}", random_range(rng)));
            continue;
        }
        let list: Vec<String> = (0..1 + rng.below(3))
            .map(|_| match rng.below(9) {
                0 => "u-*".to_string(),
                1 => "u-1*".to_string(),
                2 => "U-1".to_string(),
                3 => "nobody".to_string(),
                n => format!("u-{n}"),
            })
            .collect();
        q.push(format!("{minus}user:{}", list.join(",")));
    }
    q.join(" ")
}

fn parsed(q: &str) -> Query {
    Query::parse(q, &Zone::utc()).unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// The histogram counted from the log's indexes, never the rollups.
async fn index_histogram(
    store: &PgStore,
    account: AccountId,
    filter: &EventFilter,
    interval: Interval,
) -> Vec<Bucket> {
    let mut client = store.client().await.unwrap();
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .unwrap();
    crate::index_counts::index_histogram(&tx, &store.dictionaries, account, filter, interval)
        .await
        .unwrap()
}

/// The store's answer (which must take the rollup path) equals the index
/// path's for each filter at day and week buckets; returns how many
/// buckets were compared.
async fn rollups_agree(
    store: &PgStore,
    account: AccountId,
    filters: &[(String, EventFilter)],
) -> usize {
    let mut compared = 0;
    for (q, filter) in filters {
        for interval in [Interval::Day, Interval::Week] {
            assert!(rollups::applies(filter, interval), "{q} {filter:?}");
            let from_rollups = store.histogram(account, filter, interval).await.unwrap();
            let from_index = index_histogram(store, account, filter, interval).await;
            assert_eq!(from_rollups, from_index, "q={q} {filter:?} at {interval:?}");
            compared += from_index.len();
        }
        assert!(!rollups::applies(filter, Interval::Hour));
    }
    compared
}

async fn owner_client(db: &TestDatabase) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// `(event_rollups total, actor_rollups total)` of `account`.
/// The events `event_rollups`, `actor_rollups` and `actor_kind_rollups`
/// count in `account`.
async fn rollup_totals(client: &tokio_postgres::Client, account: AccountId) -> (i64, i64, i64) {
    let row = client
        .query_one(
            "SELECT (SELECT COALESCE(SUM(count), 0)::bigint FROM event_rollups WHERE account_id = $1), \
                    (SELECT COALESCE(SUM(count), 0)::bigint FROM actor_rollups WHERE account_id = $1), \
                    (SELECT COALESCE(SUM(count), 0)::bigint FROM actor_kind_rollups WHERE account_id = $1)",
            &[&account],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// Prunes the bodies of seq `1..=last` of `stored` (appended first, in
/// order) under a prune record.
async fn prune(store: &PgStore, account: &Account, stored: &[NewEvent], last: u64) {
    let range = SeqRange::new(1, last).unwrap();
    let receipts = store
        .append(account, vec![removal_conformance::prune_record(&[range])])
        .await
        .unwrap();
    let record = receipts[0].seq;
    store
        .add_coverage(account.id, record, &[range])
        .await
        .unwrap();
    let bodies: Vec<RemovedBody> = stored[..last as usize]
        .iter()
        .enumerate()
        .map(|(i, e)| RemovedBody {
            seq: i as u64 + 1,
            event_id: e.id().to_string(),
        })
        .collect();
    let removed = store
        .remove_bodies(account.id, record, RemovalKind::Pruned, &bodies)
        .await
        .unwrap();
    assert_eq!(removed, last);
}

/// Every filter the rollups serve (parameters of type, action and
/// project; `q` of those and `time`; `user` terms and the `users`
/// parameter with times) answers with exactly the index path's buckets at
/// day and week intervals, for fixed and random cases, before and after
/// bodies are pruned (which the rollups lose: an actor's row left at 0 is
/// deleted); filters they do not serve agree too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_histograms_equal_the_index_paths_buckets() {
    let Some(db) = TestDatabase::create("rollup_histograms_equal_the_index_paths_buckets") else {
        return;
    };
    let store = PgStore::connect(&db.url).await.unwrap();
    let account = store.create_account("rollups").await.unwrap();
    let other = store.create_account("other").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0012);
    let stored = events(&mut rng, 900, "a");
    for chunk in stored.chunks(90) {
        store.append(&account, chunk.to_vec()).await.unwrap();
    }
    // Another account with the same texts and actor ids: never counted here.
    store
        .append(&other, events(&mut rng, 80, "o"))
        .await
        .unwrap();
    let owner = owner_client(&db).await;
    assert_eq!(rollup_totals(&owner, account.id).await, (900, 900, 900));
    assert_eq!(rollup_totals(&owner, other.id).await, (80, 80, 80));

    let mut types: Vec<String> = stored.iter().map(|e| e.event_type().to_string()).collect();
    types.sort();
    types.dedup();
    let mut actions: Vec<String> = stored.iter().map(|e| e.action().to_string()).collect();
    actions.sort();
    actions.dedup();
    let day = |n: i64| Timestamp::from_micros(FIRST + n * DAY).to_rfc3339()[..10].to_string();
    let midnight = |n: i64| Timestamp::from_micros(FIRST + n * DAY).to_rfc3339();
    let before_midnight = |n: i64| Timestamp::from_micros(FIRST + n * DAY - 1).to_rfc3339();
    let t0 = quoted(&types[0]);
    let mut cases: Vec<String> = vec![
        String::new(),
        format!("type:{t0}"),
        format!("-type:{t0}"),
        format!("type:{},{}", quoted(&types[1]), quoted(&types[2])),
        format!(
            "type:{} action:{}",
            t0.to_lowercase(),
            actions[0].to_uppercase()
        ),
        format!("-action:{},{}", actions[0], actions[1]),
        "project:P0".into(),
        "-project:P0".into(),
        "project:P0,P3".into(),
        "-project:P0,P1,P3".into(),
        "project:P*".into(),
        "-project:P*".into(),
        "project:P2".into(),
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
        format!("-time:{}..{}", day(5), day(20)),
        format!("-time:{}", midnight(7)),
        format!("time:{},{}..{},{}", day(1), day(4), day(6), day(25)),
        format!("time:>={} time:<={}", midnight(9), before_midnight(9)),
        format!(
            "type:{t0} -action:{} -project:P1 time:{}..{}",
            actions[0],
            day(2),
            day(28)
        ),
    ];
    for _ in 0..150 {
        cases.push(random_dictionary_q(&mut rng, &types, &actions));
    }
    let mut user_cases: Vec<String> = vec![
        "user:u-1".into(),
        "user:U-1".into(),
        "user:u-1,u-2,u-3".into(),
        "-user:u-1".into(),
        "-user:u-1,u-2".into(),
        "-user:u-*".into(),
        "user:u-*".into(),
        "user:u-* -user:u-8".into(),
        "user:nobody".into(),
        "-user:nobody".into(),
        format!("user:u-2 time:{}..{}", day(3), day(9)),
        format!("-user:u-3 time:{}..{}", midnight(2), midnight(20)),
        format!("user:u-4,u-5 -time:{}", day(7)),
    ];
    for _ in 0..80 {
        user_cases.push(random_user_q(&mut rng));
    }
    // Users with event types and actions: `actor_kind_rollups`.
    user_cases.extend([
        format!("type:{t0} user:u-1"),
        format!("type:{t0} -action:{} -user:u-1", actions[0]),
        format!(
            "action:{},{} -user:u-1,u-2 time:{}..{}",
            actions[0],
            actions[1],
            day(3),
            day(9)
        ),
        format!("-type:{t0} user:u-*"),
        "type:Nonexistent user:u-1".into(),
    ]);
    for _ in 0..60 {
        let pick = |rng: &mut Rng, values: &[String]| {
            quoted(&values[rng.below(values.len() as u64) as usize])
        };
        let kind = match rng.below(4) {
            0 => format!("type:{}", pick(&mut rng, &types)),
            1 => format!("-type:{}", pick(&mut rng, &types)),
            2 => format!("action:{}", pick(&mut rng, &actions)),
            _ => format!("-action:{}*", &actions[0][..1]),
        };
        user_cases.push(format!("{kind} {}", random_user_q(&mut rng)));
    }
    let mut filters: Vec<(String, EventFilter)> = Vec::new();
    for (n, q) in cases.iter().enumerate() {
        let filter = EventFilter {
            query: parsed(q),
            ..if n % 3 == 1 {
                random_parameters(&mut rng, &stored)
            } else {
                EventFilter::default()
            }
        };
        filters.push((q.clone(), filter));
    }
    for (n, q) in user_cases.iter().enumerate() {
        let mut filter = EventFilter {
            query: parsed(q),
            ..EventFilter::default()
        };
        if n % 4 == 1 {
            filter.users = vec!["u-2".into(), "u-5".into()];
        }
        if n % 6 == 3 {
            // A user with the event type parameter: by actor and kind.
            filter.event_types = vec![types[n % types.len()].clone()];
        }
        if n % 5 == 2 {
            filter.from = edge(&mut rng);
            filter.to = edge(&mut rng);
        }
        filters.push((q.clone(), filter));
    }
    for users in [vec!["u-1"], vec!["u-1", "U-1", "nobody"], vec!["nobody"]] {
        filters.push((
            format!("users={users:?}"),
            EventFilter {
                users: users.iter().map(|u| u.to_string()).collect(),
                from: edge(&mut rng),
                ..EventFilter::default()
            },
        ));
    }
    let compared = rollups_agree(&store, account.id, &filters).await;
    assert!(compared > 4_000, "only {compared} buckets compared");

    // Filters the rollups do not hold: the index path, the same answer.
    for q in [
        format!("type:{t0} user:u-1 project:P0"),
        "-user:u-1 project:P0".into(),
        "target:T-1".into(),
        "project:P0 app:A0".into(),
        "-version:1.0".into(),
        format!("type:{t0} User"),
        "seq:>100".into(),
        format!("id:a1 time:{}..{}", day(0), day(29)),
    ] {
        let filter = EventFilter {
            query: parsed(&q),
            ..EventFilter::default()
        };
        assert!(!rollups::applies(&filter, Interval::Day), "{q}");
        assert_eq!(
            store
                .histogram(account.id, &filter, Interval::Day)
                .await
                .unwrap(),
            index_histogram(&store, account.id, &filter, Interval::Day).await,
            "{q}"
        );
    }

    // Prune the bodies of seq 1..=300: the rollups lose them, actors' rows
    // left with no event go, and every answer still equals the index's.
    let count_rows = |sql: &'static str| {
        let owner = &owner;
        async move { owner.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let rows_before = count_rows("SELECT COUNT(*) FROM actor_rollups").await;
    prune(&store, &account, &stored, 300).await;
    // 900 events less 300 removed, plus the prune record.
    assert_eq!(rollup_totals(&owner, account.id).await, (601, 601, 601));
    assert_eq!(
        count_rows("SELECT COUNT(*) FROM actor_rollups WHERE count <= 0").await,
        0,
        "the rows of removed events only are deleted"
    );
    assert!(count_rows("SELECT COUNT(*) FROM actor_rollups").await < rows_before);
    let compared = rollups_agree(&store, account.id, &filters).await;
    assert!(compared > 2_000, "only {compared} buckets compared");
    store.shutdown().await;
}

/// The served counts read the rollups: a row changed behind the store's
/// back (by the owner) shows in a parameter filter's, a `q`'s, a `user`
/// filter's and a `user` with `type` filter's histogram, and not in one
/// the rollups do not serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollup_row_changed_behind_the_stores_back_shows_in_the_count() {
    let Some(db) = TestDatabase::create("a_rollup_row_changed_behind_the_stores_back") else {
        return;
    };
    let store = PgStore::connect(&db.url).await.unwrap();
    let account = store.create_account("changed").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0013);
    let stored = events(&mut rng, 300, "a");
    store.append(&account, stored.clone()).await.unwrap();
    let total = |buckets: &[Bucket]| buckets.iter().map(|b| b.count).sum::<u64>();
    let event_type = stored[0].event_type().to_string();
    let by_type = EventFilter {
        event_types: vec![event_type.clone()],
        ..EventFilter::default()
    };
    let by_q = EventFilter {
        query: parsed(&format!("type:{}", quoted(&event_type))),
        ..EventFilter::default()
    };
    let by_user = EventFilter {
        query: parsed("user:u-2"),
        ..EventFilter::default()
    };
    let by_user_and_type = EventFilter {
        query: parsed(&format!("type:{} user:u-2", quoted(&event_type))),
        ..EventFilter::default()
    };
    let not_served = EventFilter {
        query: parsed(&format!("type:{} user:u-2 project:P0", quoted(&event_type))),
        ..EventFilter::default()
    };
    let filters = [&by_type, &by_q, &by_user, &by_user_and_type, &not_served];
    let mut before = Vec::new();
    for filter in filters {
        before.push(total(
            &store
                .histogram(account.id, filter, Interval::Day)
                .await
                .unwrap(),
        ));
    }
    let owner = owner_client(&db).await;
    let changed = owner
        .execute(
            "UPDATE event_rollups SET count = count + 1000 \
             WHERE (account_id, day, kind, has_project, project) = \
             (SELECT r.account_id, r.day, r.kind, r.has_project, r.project FROM event_rollups r \
              JOIN log_values v ON v.id = r.kind \
              WHERE r.account_id = $1 AND v.value ->> 0 = $2 ORDER BY r.day LIMIT 1)",
            &[&account.id, &event_type],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let changed = owner
        .execute(
            "UPDATE actor_rollups SET count = count + 1000 WHERE (account_id, actor, day) = \
             (SELECT r.account_id, r.actor, r.day FROM actor_rollups r JOIN actors a ON a.id = r.actor \
              WHERE r.account_id = $1 AND a.actor_id = 'u-2' ORDER BY r.day LIMIT 1)",
            &[&account.id],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let changed = owner
        .execute(
            "UPDATE actor_kind_rollups SET count = count + 1000 \
             WHERE (account_id, actor, day, kind) = \
             (SELECT r.account_id, r.actor, r.day, r.kind FROM actor_kind_rollups r \
              JOIN actors a ON a.id = r.actor JOIN log_values v ON v.id = r.kind \
              WHERE r.account_id = $1 AND a.actor_id = 'u-2' AND v.value ->> 0 = $2 \
              ORDER BY r.day LIMIT 1)",
            &[&account.id, &event_type],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let mut after = Vec::new();
    for filter in filters {
        after.push(total(
            &store
                .histogram(account.id, filter, Interval::Day)
                .await
                .unwrap(),
        ));
    }
    assert_eq!(
        after,
        vec![
            before[0] + 1000,
            before[1] + 1000,
            before[2] + 1000,
            before[3] + 1000,
            before[4]
        ]
    );
    store.shutdown().await;
}

/// Migration 0022 on a store that holds events (and removed bodies) from
/// before it: the rollups count exactly the events present, and the
/// histograms that read them equal the index path's. Such a store is made
/// by undoing the migration on a current one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_rolls_up_the_events_stored_before_it() {
    let Some(db) = TestDatabase::create("the_migration_rolls_up_the_events_stored_before_it")
    else {
        return;
    };
    let store = PgStore::connect(&db.url).await.unwrap();
    let account = store.create_account("before").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0014);
    let stored = events(&mut rng, 400, "a");
    store.append(&account, stored.clone()).await.unwrap();
    prune(&store, &account, &stored, 50).await;
    store.shutdown().await;
    let owner = owner_client(&db).await;
    owner
        .batch_execute(
            "DROP TRIGGER event_log_rollups_add ON event_log; \
             DROP TRIGGER event_log_rollups_subtract ON event_log; \
             DROP FUNCTION event_log_add_rollups(); DROP FUNCTION event_log_subtract_rollups(); \
             DROP TRIGGER event_log_rollups_add_actor_kinds ON event_log; \
             DROP TRIGGER event_log_rollups_subtract_actor_kinds ON event_log; \
             DROP FUNCTION event_log_add_actor_kinds(); DROP FUNCTION event_log_subtract_actor_kinds(); \
             DROP TABLE event_rollups; DROP TABLE actor_rollups; DROP TABLE actor_kind_rollups; \
             DROP FUNCTION auditlog_day(BIGINT); \
             DELETE FROM schema_migrations WHERE version IN (22, 23, 24);",
        )
        .await
        .unwrap();

    let store = PgStore::connect(&db.url).await.unwrap();
    assert_eq!(rollup_totals(&owner, account.id).await, (351, 351, 351));
    // Migration 0023 gave the planner their statistics.
    let analyzed: i64 = owner
        .query_one(
            "SELECT COUNT(DISTINCT tablename) FROM pg_stats \
             WHERE tablename IN ('event_rollups', 'actor_rollups', 'actor_kind_rollups')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(analyzed, 3);
    let mut filters = vec![(String::new(), EventFilter::default())];
    for n in 0..40 {
        let q = if n % 4 == 0 {
            random_user_q(&mut rng)
        } else if n % 4 == 2 {
            format!("-action:Create {}", random_user_q(&mut rng))
        } else {
            format!("project:P0,P1 time:{}", random_range(&mut rng))
        };
        filters.push((
            q.clone(),
            EventFilter {
                query: parsed(&q),
                ..EventFilter::default()
            },
        ));
        filters.push((String::new(), random_parameters(&mut rng, &stored)));
    }
    let compared = rollups_agree(&store, account.id, &filters).await;
    assert!(compared > 500, "only {compared} buckets compared");
    store.shutdown().await;
}

/// Bodies removed while events of the same days, kinds, projects and
/// actors are appended: both go on (neither transaction is chosen as a
/// deadlock's victim: the removal locks the account's sequencer first, as
/// an append does, so the two never hold rollup rows the other waits for),
/// and the rollups count exactly the events left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_beside_appends_to_the_same_rollup_rows_never_deadlocks() {
    let Some(db) = TestDatabase::create("removal_beside_appends_never_deadlocks") else {
        return;
    };
    let store = PgStore::connect(&db.url).await.unwrap();
    let account = store.create_account("busy").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0015);
    let stored = events(&mut rng, 1_200, "a");
    for chunk in stored.chunks(200) {
        store.append(&account, chunk.to_vec()).await.unwrap();
    }
    let range = SeqRange::new(1, 1_200).unwrap();
    let record = store
        .append(&account, vec![removal_conformance::prune_record(&[range])])
        .await
        .unwrap()[0]
        .seq;
    store
        .add_coverage(account.id, record, &[range])
        .await
        .unwrap();
    let more = events(&mut rng, 1_200, "b");
    let appending = async {
        for chunk in more.chunks(40) {
            store.append(&account, chunk.to_vec()).await.unwrap();
        }
    };
    let removing = async {
        let mut removed = 0;
        for (n, chunk) in stored.chunks(40).enumerate() {
            let bodies: Vec<RemovedBody> = chunk
                .iter()
                .enumerate()
                .map(|(i, e)| RemovedBody {
                    seq: (n * 40 + i) as u64 + 1,
                    event_id: e.id().to_string(),
                })
                .collect();
            removed += store
                .remove_bodies(account.id, record, RemovalKind::Pruned, &bodies)
                .await
                .unwrap();
        }
        removed
    };
    let ((), removed) = tokio::join!(appending, removing);
    assert_eq!(removed, 1_200);
    let owner = owner_client(&db).await;
    assert_eq!(
        rollup_totals(&owner, account.id).await,
        (1_201, 1_201, 1_201)
    );
    store.shutdown().await;
}
