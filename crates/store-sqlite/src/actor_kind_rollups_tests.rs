//! `user` with `type` and `action` served by `actor_kind_rollups`
//! (migration 0025) against the index path: random queries before and
//! after pruning, a tampered row that shows, the recount at open, the
//! migration of a store without the table, and the statements' plans.

use super::*;
use crate::rollups_tests::{
    actor_rollups_agree, edge, events, index_histogram, parsed, prune_first, random_user_q,
    with_actors, DAY, FIRST,
};
use auditlog_store::samples::Rng;

async fn kind_rollup_total(store: &SqliteStore, account: AccountId) -> i64 {
    let conn = open_connection(store.path()).unwrap();
    conn.query_row(
        "SELECT COALESCE(SUM(count), 0) FROM actor_kind_rollups WHERE account_id = ?1",
        [account],
        |r| r.get(0),
    )
    .unwrap()
}

/// One to three random `type` or `action` terms (negated, OR lists,
/// prefixes, other cases, values no event has).
fn random_kind_terms(rng: &mut Rng, types: &[String], actions: &[String]) -> String {
    let mut terms = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let (key, values) = if rng.below(2) == 0 {
            ("type", types)
        } else {
            ("action", actions)
        };
        let list: Vec<String> = (0..1 + rng.below(3))
            .map(|_| {
                let v = values[rng.below(values.len() as u64) as usize].clone();
                let v = match rng.below(6) {
                    0 => v.to_lowercase(),
                    1 => format!(
                        "{}*",
                        v.chars()
                            .take(1 + rng.below(3) as usize)
                            .collect::<String>()
                    ),
                    2 => "Nonexistent".into(),
                    _ => v,
                };
                if v.contains(' ') {
                    format!("\"{v}\"")
                } else {
                    v
                }
            })
            .collect();
        let minus = if rng.below(3) == 0 { "-" } else { "" };
        terms.push(format!("{minus}{key}:{}", list.join(",")));
    }
    terms.join(" ")
}

/// Users combined with event types and actions (in `q` and in the
/// parameters, negated, OR lists, prefixes, with times) are served by the
/// actor and kind rollup with exactly the index path's buckets, before and
/// after bodies are pruned; the other account's events, whose actors have
/// the same ids, are never counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actor_kind_rollups_serve_users_with_types_and_actions_with_the_index_paths_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("kinds").await.unwrap();
    let other = store.create_account("other").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0025);
    let stored = {
        let plain = events(&mut rng, 800, "a");
        with_actors(&mut rng, plain)
    };
    for chunk in stored.chunks(80) {
        store.append(&account, chunk.to_vec()).await.unwrap();
    }
    store
        .append(&other, {
            let plain = events(&mut rng, 80, "o");
            with_actors(&mut rng, plain)
        })
        .await
        .unwrap();
    assert_eq!(kind_rollup_total(&store, account.id).await, 800);
    assert_eq!(kind_rollup_total(&store, other.id).await, 80);
    let mut types: Vec<String> = stored.iter().map(|e| e.event_type().to_string()).collect();
    types.sort();
    types.dedup();
    let mut actions: Vec<String> = stored.iter().map(|e| e.action().to_string()).collect();
    actions.sort();
    actions.dedup();
    assert!(
        types.len() > 1 && actions.len() > 1,
        "{types:?} {actions:?}"
    );
    let quoted = |v: &str| {
        if v.contains(' ') {
            format!("\"{v}\"")
        } else {
            v.to_string()
        }
    };
    let (t0, a0, a1) = (quoted(&types[0]), quoted(&actions[0]), quoted(&actions[1]));
    let day = |n: i64| Timestamp::from_micros(FIRST + n * DAY).to_rfc3339()[..10].to_string();
    let mut cases: Vec<String> = vec![
        format!("type:{t0} user:u-1"),
        format!("type:{t0} -action:{a0} -user:u-1"),
        format!("action:{a0},{a1} -user:u-1,u-2 time:{}..{}", day(3), day(9)),
        format!("-type:{t0} user:u-*"),
        format!("action:{a1} user:u-1,u-2,u-3 -user:u-2"),
        format!("type:{t0} -user:u-*"),
        format!("type:Nonexistent user:u-1"),
        format!("action:{a0} user:nobody"),
        format!("type:{t0} -user:nobody time:{},{}", day(1), day(12)),
    ];
    for _ in 0..150 {
        let kinds = random_kind_terms(&mut rng, &types, &actions);
        let users = random_user_q(&mut rng);
        cases.push(if rng.below(2) == 0 {
            format!("{kinds} {users}")
        } else {
            format!("{users} {kinds}")
        });
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
        if n % 6 == 3 {
            filter.event_types = vec![types[n % types.len()].clone()];
        }
        if n % 7 == 2 {
            filter.actions = vec![actions[n % actions.len()].clone(), "Nonexistent".into()];
        }
        if n % 5 == 2 {
            filter.from = edge(&mut rng);
            filter.to = edge(&mut rng);
        }
        filters.push((q.clone(), filter));
    }
    // The parameters alone: users with event types, actions, times.
    filters.push((
        "parameters".into(),
        EventFilter {
            users: vec!["u-1".into(), "U-1".into()],
            event_types: vec![types[0].clone()],
            actions: vec![actions[1].clone()],
            from: edge(&mut rng),
            ..EventFilter::default()
        },
    ));
    let conn = open_connection(store.path()).unwrap();
    let compared = actor_rollups_agree(&store, &conn, account.id, &filters).await;
    assert!(compared > 1_000, "only {compared} buckets compared");

    // Prune the bodies of seq 1..=300: their rows are subtracted, and rows
    // left with no event go.
    assert_eq!(prune_first(&store, &account, &stored, 300).await, 300);
    assert_eq!(kind_rollup_total(&store, account.id).await, 801 - 300);
    let empty: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM actor_kind_rollups WHERE count <= 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(empty, 0, "rows of removed events only are deleted");
    let compared = actor_rollups_agree(&store, &conn, account.id, &filters).await;
    assert!(compared > 500, "only {compared} buckets compared");
    store.shutdown().await;
}

/// A count of a user with a type really reads the rollup (a row changed
/// behind the store's back shows, and so do the rejected actor's rows when
/// the user is negated); an edited rollup is recounted at open, and
/// migration 0025 builds it for a store that had none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actor_kind_rollups_are_read_recounted_and_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("read").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0026);
    let stored = {
        let plain = events(&mut rng, 300, "a");
        with_actors(&mut rng, plain)
    };
    let event_type = stored[0].event_type().to_string();
    store.append(&account, stored).await.unwrap();
    let conn = open_connection(store.path()).unwrap();
    let q = |text: String| EventFilter {
        query: parsed(&text),
        ..EventFilter::default()
    };
    let total = |buckets: Vec<Bucket>| buckets.iter().map(|b| b.count).sum::<u64>();
    let user = q(format!("type:\"{event_type}\" user:u-2"));
    let negated = q(format!("type:\"{event_type}\" -user:u-2"));
    for filter in [&user, &negated] {
        assert!(rollups::applies(filter, Interval::Day));
    }
    let count = |filter: &EventFilter| {
        let filter = filter.clone();
        let store = &store;
        async move {
            total(
                store
                    .histogram(account.id, &filter, Interval::Day)
                    .await
                    .unwrap(),
            )
        }
    };
    let (before, before_negated) = (count(&user).await, count(&negated).await);
    assert!(
        before > 0 && before_negated > 0,
        "{before} {before_negated}"
    );
    let changed = conn
        .execute(
            "UPDATE actor_kind_rollups SET count = count + 1000 WHERE account_id = ?1 \
             AND actor = (SELECT id FROM actors WHERE account_id = ?1 AND actor_id = 'u-2') \
             AND kind IN (SELECT id FROM log_values WHERE account_id = ?1 AND kind = 1 \
                          AND json_extract(value, '$[0]') = ?2)",
            rusqlite::params![account.id, event_type],
        )
        .unwrap() as u64;
    assert!(changed > 0);
    assert_eq!(count(&user).await, before + 1000 * changed);
    // The type's day totals less u-2's rows: the negated count drops.
    let after_negated = count(&negated).await;
    assert!(
        after_negated < before_negated,
        "{after_negated} {before_negated}"
    );
    store.shutdown().await;

    // Reopened, the edited rollup is recounted from the events.
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(kind_rollup_total(&store, account.id).await, 300);
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

    // A store of the version before migration 0025.
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "DROP TABLE actor_kind_rollups; DELETE FROM schema_migrations WHERE version = 25;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(kind_rollup_total(&store, account.id).await, 300);
    let conn = open_connection(store.path()).unwrap();
    for filter in [user, negated, q("action:Create user:u-1,u-3,u-8".into())] {
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

/// The actor and kind rollup's statements search its primary key by
/// actor, and the negated form the day rollups' too: no scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_kind_rollup_query_searches_the_primary_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("plans").await.unwrap();
    let conn = open_connection(store.path()).unwrap();
    let filter = EventFilter {
        query: parsed("type:a -user:u-1"),
        ..EventFilter::default()
    };
    let texts = rollups::QueryTexts::default();
    for choice in [
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
    ] {
        for days in [(None, None), (Some(3), None), (Some(3), Some(9))] {
            let clause = choice.kind_clause(account.id, &filter, &[7, 8], &texts, days);
            let sql = format!("EXPLAIN QUERY PLAN {}", clause.sql);
            let mut stmt = conn.prepare(&sql).unwrap();
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(clause.params), |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                !plan.iter().any(|s| s.starts_with("SCAN event_rollups")
                    || s.starts_with("SCAN actor_kind_rollups")),
                "{choice:?} {days:?}: {plan:?}"
            );
            assert!(
                plan.iter().any(|s| s.starts_with(
                    "SEARCH actor_kind_rollups USING PRIMARY KEY (account_id=? AND actor=?"
                )),
                "{choice:?} {days:?}: {plan:?}"
            );
        }
    }
    store.shutdown().await;
}
