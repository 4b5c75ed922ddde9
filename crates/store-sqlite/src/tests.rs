use super::*;
use auditlog_core::Timestamp;
use auditlog_store::transfer::TransferSource;
use auditlog_store::{conformance, TreeStore, WriteHealth};

async fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, store)
}

/// A fresh store for one conformance case; the directory lives as long as it.
async fn fresh_for_case(_case: &'static str) -> Option<(tempfile::TempDir, SqliteStore)> {
    Some(fresh().await)
}

/// Search's conformance with free text read every way the store can
/// (on these small stores the matches would always drive): by the other
/// terms' indexes, each row tested against the matches; pages by the walk
/// and sweep of `query::walk_page` with counts from the block time summary
/// (`word_blocks`); always driven by the matches; and driven by the
/// matches through the block summary (pages and counts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_conformance_with_words_driving_never_and_always() {
    for drive in [
        WordsDrive {
            page: 0,
            count: 0,
            walk: false,
            blocks: false,
            block_page: 0,
        },
        WordsDrive {
            page: 0,
            count: 0,
            walk: true,
            blocks: true,
            block_page: 0,
        },
        WordsDrive {
            page: usize::MAX,
            count: usize::MAX,
            walk: false,
            blocks: false,
            block_page: usize::MAX,
        },
        // Counts and pages from the block time summary (`word_blocks`).
        WordsDrive {
            page: usize::MAX,
            count: usize::MAX,
            walk: false,
            blocks: true,
            block_page: usize::MAX,
        },
    ] {
        let (_dir, mut store) = fresh().await;
        store.set_words_drive(drive);
        auditlog_store::search_conformance::search_cases_agree_with_the_table(&store).await;
        auditlog_store::search_conformance::random_queries_agree_with_the_reference(&store).await;
        store.shutdown().await;
    }
}

/// One test per case of the shared suite, each on a store of its own.
mod conformance_cases {
    auditlog_store::conformance_tests!(super::fresh_for_case);
}

/// Whether a step of a query plan scans a table or an index. `json_each`
/// reads a statement's own list of ids (its parameter), not a table.
fn scans_a_table(step: &str) -> bool {
    step.contains("SCAN") && !step.contains("SCAN json_each VIRTUAL TABLE")
}

/// SPEC "Query events": every combination of filters is an index search of
/// the log (its pages, first and later, and its count), never a scan of it
/// nor of an index, and a newest-first page reads its index in order (a
/// sort only where more ids than `MAX_ARMS` drive it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_filter_combination_scans_the_event_log() {
    let (_dir, store) = fresh().await;
    let account = store.create_account("plans").await.unwrap();
    // Every value of the filters exists (a filter of a value the account
    // never had matches nothing and runs no statement).
    store
        .append(&account, conformance::sample_events(500, "e"))
        .await
        .unwrap();
    let t =
        |hours: i64| Timestamp::from_micros(auditlog_store::samples::BASE + hours * 3_600_000_000);
    let mut cases = conformance::filter_cases();
    cases.push(EventFilter {
        users: vec!["u-3".into()],
        from: Some(t(10)),
        to: Some(t(100)),
        ..Default::default()
    });
    cases.push(EventFilter {
        actions: vec!["Update".into()],
        ..Default::default()
    });
    cases.push(EventFilter {
        version: Some("1.0".into()),
        ..Default::default()
    });
    cases.push(EventFilter {
        app: Some("A0".into()),
        ..Default::default()
    });
    // Every pair of single filters, too.
    let singles: Vec<EventFilter> = cases.iter().skip(1).cloned().collect();
    for a in &singles {
        for b in &singles {
            let mut both = a.clone();
            both.event_types.extend(b.event_types.clone());
            both.actions.extend(b.actions.clone());
            both.users.extend(b.users.clone());
            both.projects.extend(b.projects.clone());
            both.app = both.app.or(b.app.clone());
            both.version = both.version.or(b.version.clone());
            both.target_id = both.target_id.or(b.target_id.clone());
            both.from = both.from.or(b.from);
            both.to = both.to.or(b.to);
            cases.push(both);
        }
    }
    let mut explained = 0;
    for filter in cases {
        let plan = store.explain_query(account.id, &filter).await.unwrap();
        if plan.is_empty() {
            // Only a pair of exclusive values (an app and another app's
            // version, say) may match nothing at all.
            continue;
        }
        explained += 1;
        for step in &plan {
            assert!(
                !scans_a_table(step),
                "a scan for {filter:?}: {step}\n{plan:#?}"
            );
        }
        assert!(
            plan.iter()
                .any(|step| step.starts_with("SEARCH event_log USING")),
            "{filter:?}: {plan:#?}"
        );
        // The first page reads its index in time order: no sort.
        let first_page: Vec<&String> = plan
            .iter()
            .skip(1)
            .take_while(|step| !step.starts_with("statement "))
            .collect();
        assert!(
            !first_page.iter().any(|step| step.contains("TEMP B-TREE")),
            "{filter:?}: {plan:#?}"
        );
    }
    assert!(explained > 100, "only {explained} combinations explained");
    store.shutdown().await;
}

/// `q`'s exact `target:` and `id:` values lead by their hash's index
/// (`event_log_by_target`, `event_log_by_id`): before, they were tested on
/// every event of the account in a walk of `event_log_by_time` (a count of
/// one target's 5,605 events in 8M took 1.9 s). The page and count read
/// only the hashes' rows; the answers are the reference's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q_targets_and_ids_search_their_hash_index() {
    let (_dir, store) = fresh().await;
    let account = store.create_account("targets").await.unwrap();
    let events = conformance::sample_events(400, "e");
    store.append(&account, events.clone()).await.unwrap();
    let zone = auditlog_core::search::Zone::utc();
    for (q, index) in [
        ("target:T-1", "event_log_by_target"),
        ("target:T-1,T-2,T-3", "event_log_by_target"),
        (
            "target:T-1 type:\"Test Case\" -action:Update",
            "event_log_by_target",
        ),
        ("target:T-1 user:u-1,u-2", "event_log_by_target"),
        ("target:T-4 user", "event_log_by_target"),
        // Confirmed on the leaf's target id alone, or (a negation, a
        // name) on the whole record.
        ("target:T-1,T-2 target:T-2,T-3", "event_log_by_target"),
        ("target:T-1,T-2 -target:T-2", "event_log_by_target"),
        ("target:T-1 actor.name:\"User 1\"", "event_log_by_target"),
        ("id:e5", "event_log_by_id"),
        ("id:e5,e6 target:T-5,T-6,T-7", "event_log_by_id"),
    ] {
        let filter = EventFilter {
            query: auditlog_core::search::Query::parse(q, &zone).unwrap(),
            ..Default::default()
        };
        let plan = store.explain_query(account.id, &filter).await.unwrap();
        assert!(!plan.is_empty(), "{q}");
        // Statements 0-2: the first page, a later page, the count.
        let mut statements = 0;
        for statement in plan
            .split(|line| line.starts_with("statement "))
            .skip(1)
            .take(3)
        {
            statements += 1;
            assert!(
                statement
                    .iter()
                    .any(|s| s.starts_with("SEARCH event_log USING") && s.contains(index)),
                "{q}: {plan:#?}"
            );
            // (The full-text index's MATCH is a "SCAN" of its virtual table.)
            assert!(
                !statement.iter().any(|s| s.starts_with("SCAN event_log")),
                "{q}: {plan:#?}"
            );
            assert!(
                !statement.iter().any(|s| s.contains("event_log_by_time")),
                "{q}: {plan:#?}"
            );
        }
        assert_eq!(statements, 3, "{q}: {plan:#?}");
        // The answer is the reference's, page and count.
        // The events were appended in order, so event i has seq i + 1.
        let expected: Vec<u64> = events
            .iter()
            .enumerate()
            .filter(|(i, e)| {
                let stored = auditlog_core::StoredEvent::new(
                    "targets",
                    *i as u64 + 1,
                    Timestamp::from_micros(0),
                    (*e).clone(),
                );
                filter.query.matches(&stored, None)
            })
            .map(|(i, _)| i as u64 + 1)
            .collect();
        assert!(!expected.is_empty(), "{q}");
        let page = store.query(account.id, &filter, None, 1000).await.unwrap();
        let mut got: Vec<u64> = page.events.iter().map(|r| r.seq).collect();
        got.sort_unstable();
        assert_eq!(got, expected, "{q}");
        let total = day_total(&store, account.id, &filter).await;
        assert_eq!(total as usize, expected.len(), "{q}");
    }
    store.shutdown().await;
}

/// The events `filter` counts in `account`: its day histogram's total.
async fn day_total(store: &SqliteStore, account: AccountId, filter: &EventFilter) -> u64 {
    store
        .histogram(account, filter, Interval::Day)
        .await
        .unwrap()
        .iter()
        .map(|b| b.count)
        .sum()
}

/// A column selected both by a parameter and by `q` (`users` and
/// `user:`) keeps both conditions whichever of them drives: each must hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parameter_and_q_on_one_column_both_hold() {
    let (_dir, store) = fresh().await;
    let account = store.create_account("both").await.unwrap();
    store
        .append(&account, conformance::sample_events(140, "e"))
        .await
        .unwrap();
    let zone = auditlog_core::search::Zone::utc();
    for (users, q, expected) in [
        (vec!["u-1"], "user:u-2", 0),
        (vec!["u-1", "u-2", "u-3"], "user:u-2", 20),
        (vec!["u-2"], "user:u-1,u-2,u-3", 20),
        (vec!["u-1", "u-2"], "-user:u-2", 20),
    ] {
        let filter = EventFilter {
            users: users.iter().map(|u| u.to_string()).collect(),
            query: auditlog_core::search::Query::parse(q, &zone).unwrap(),
            ..Default::default()
        };
        let page = store.query(account.id, &filter, None, 1000).await.unwrap();
        assert_eq!(page.events.len(), expected, "{users:?} {q}");
        let total = day_total(&store, account.id, &filter).await;
        assert_eq!(total, expected as u64, "{users:?} {q}");
    }
    store.shutdown().await;
}

/// `user:` terms that name their users exactly read those actors alone
/// (`query::named_actors`); the negated terms must still hold on them, and
/// a list with a prefix reads the whole dictionary as before. Each answer
/// equals the reference `matches`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_users_in_q_meet_every_other_user_term() {
    let (_dir, store) = fresh().await;
    let account = store.create_account("named").await.unwrap();
    store
        .append(&account, conformance::sample_events(140, "n"))
        .await
        .unwrap();
    let all = store
        .query(account.id, &EventFilter::default(), None, 1000)
        .await
        .unwrap();
    let zone = auditlog_core::search::Zone::utc();
    // The same key repeated is one OR list (SPEC, "Search").
    for (q, expected) in [
        ("user:u-2", 20),
        ("user:u-1,u-2,nobody", 40),
        ("user:u-1,u-2 -user:u-2", 20),
        ("user:u-1,u-2 user:u-2*", 40),
        ("user:u-1,u-2 user:u-2,u-3", 60),
        ("user:u-1 -user:u-1*", 0),
        ("user:nobody", 0),
        ("user:U-2", 0),
        ("user:u-2 -user:u-2", 0),
        ("-user:u-2", 120),
        ("user:u-*", 140),
    ] {
        let filter = EventFilter {
            query: auditlog_core::search::Query::parse(q, &zone).unwrap(),
            ..Default::default()
        };
        let page = store.query(account.id, &filter, None, 1000).await.unwrap();
        assert_eq!(page.events.len(), expected, "{q}");
        let reference = all
            .events
            .iter()
            .filter(|e| filter.query.matches_record(&e.stored()).unwrap())
            .count();
        assert_eq!(reference, expected, "{q}");
        assert!(
            page.events
                .iter()
                .all(|e| filter.query.matches_record(&e.stored()).unwrap()),
            "{q}"
        );
        let total = day_total(&store, account.id, &filter).await;
        assert_eq!(total, expected as u64, "{q}");
    }
    store.shutdown().await;
}

/// A filter on more ids than `MAX_ARMS` (a project filter naming many
/// projects) is still one index search, sorted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_of_many_values_is_one_index_search() {
    let (_dir, store) = fresh().await;
    let account = store.create_account("many").await.unwrap();
    let events: Vec<NewEvent> = conformance::sample_events(200, "m")
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            auditlog_store::samples::edited(&event, |json| {
                json.insert("project".into(), serde_json::json!(format!("Q{i}")));
            })
        })
        .collect();
    store.append(&account, events).await.unwrap();
    let filter = EventFilter {
        projects: (0..150).map(|i| format!("Q{i}")).collect(),
        ..Default::default()
    };
    let plan = store.explain_query(account.id, &filter).await.unwrap();
    assert!(!plan.iter().any(|s| scans_a_table(s)), "{plan:#?}");
    assert!(
        plan.iter()
            .any(|s| s.starts_with("SEARCH event_log USING INDEX event_log_by_place")),
        "{plan:#?}"
    );
    let page = store.query(account.id, &filter, None, 1000).await.unwrap();
    assert_eq!(page.events.len(), 150);
    assert!(page
        .events
        .windows(2)
        .all(|w| (w[0].time, w[0].seq) > (w[1].time, w[1].seq)));
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_update_and_delete_of_events() {
    let (dir, store) = fresh().await;
    let account = store.create_account("immutable").await.unwrap();
    store
        .append(&account, conformance::sample_events(3, "e"))
        .await
        .unwrap();
    store.shutdown().await;
    // A raw connection, as any tool with the file would open it.
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    for sql in [
        "UPDATE event_log SET kind = kind + 1 WHERE key & 1099511627775 = 1",
        "UPDATE event_log SET leaf = x'00'",
        "DELETE FROM event_log WHERE key & 1099511627775 = 1",
        "UPDATE log_values SET value = '[\"Element\",\"Delete\"]'",
        "DELETE FROM log_values",
    ] {
        let error = conn.execute(sql, []).unwrap_err();
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM event_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_gapless() {
    let (_dir, store) = fresh().await;
    let store = Arc::new(store);
    let account = store.create_account("group").await.unwrap();
    let mut tasks = Vec::new();
    for client in 0..16 {
        let (store, account) = (store.clone(), account.clone());
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..20 {
                let event = conformance::sample_events(1, &format!("c{client}-{i}-")).remove(0);
                seqs.extend(
                    store
                        .append(&account, vec![event])
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|r| r.seq),
                );
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=320).collect::<Vec<u64>>());
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_to_change_tree_hashes_and_checkpoints() {
    let (dir, store) = fresh().await;
    let account = store.create_account("tree").await.unwrap();
    store
        .append(&account, conformance::sample_events(3, "e"))
        .await
        .unwrap();
    store
        .add_checkpoint(
            account.id,
            &auditlog_store::StoredCheckpoint {
                size: 3,
                root: [1; 32],
                note: "n".into(),
                created_at: Timestamp::from_micros(1),
            },
        )
        .await
        .unwrap();
    store.shutdown().await;
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    for sql in [
        "UPDATE tree_hashes SET hash = x'00' WHERE hash_index = 0",
        "DELETE FROM tree_hashes",
        "UPDATE checkpoints SET size = 9",
        "DELETE FROM checkpoints",
    ] {
        let error = conn.execute(sql, []).unwrap_err();
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_transfer_source_cases() {
    let (_dir, store) = fresh().await;
    conformance::transfer_source_round_trips(&store).await;
    store.shutdown().await;
}

/// SQLITE_FULL (here from a cap on the database's pages, the way a full disk
/// reports it) fails the whole group: the request is told `Full`, none of
/// its events or tree hashes is stored, and the same writer thread goes on:
/// the next request that fits gets seq 1, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_refuses_the_group_whole_and_the_writer_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with(dir.path(), |conn| {
        // Room for a few events, not for a batch of a thousand.
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        conn.pragma_update(None, "max_page_count", pages + 32)
    })
    .unwrap();
    let account = store.create_account("acme").await.unwrap();
    assert_eq!(store.write_health(), WriteHealth::Ok);

    let refused = store
        .append(&account, conformance::sample_events(1_000, "big-"))
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Full { .. }), "{refused}");
    // The driver's error is kept as the cause, not flattened into the message.
    let cause = std::error::Error::source(&refused).expect("the driver's error is the cause");
    assert!(
        cause.downcast_ref::<rusqlite::Error>().is_some(),
        "{cause:?}"
    );
    assert!(
        auditlog_core::ErrorChain(&refused)
            .to_string()
            .contains("database or disk is full"),
        "{refused:?}"
    );
    assert!(
        matches!(store.write_health(), WriteHealth::Full { .. }),
        "{:?}",
        store.write_health()
    );
    assert_eq!(store.last_seq(account.id).await.unwrap(), 0);
    assert_eq!(store.stored_hash_count(account.id).await.unwrap(), 0);
    assert!(store.get(account.id, "big-0").await.unwrap().is_none());
    assert!(store.get(account.id, "big-999").await.unwrap().is_none());

    let receipts = store
        .append(&account, conformance::sample_events(2, "small-"))
        .await
        .unwrap();
    assert_eq!(
        receipts.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(store.write_health(), WriteHealth::Ok);
    assert_eq!(
        store.stored_hash_count(account.id).await.unwrap(),
        auditlog_core::merkle::stored_hash_count(2)
    );
    store.shutdown().await;
}

/// Once an account has `TRAIN_AFTER` version 2 leaves stored as they are,
/// the writer trains its dictionary and stores what follows compressed;
/// every read hands out the exact leaf bytes (their hash is the stored
/// hash), idempotent retries of compressed events still compare, and the
/// compressed leaves are a fraction of the plain ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaves_are_compressed_once_the_account_has_a_dictionary() {
    use auditlog_store::leaf_codec::TRAIN_AFTER;
    let (_dir, store) = fresh().await;
    let account = store.create_account("packed").await.unwrap();
    let events = conformance::sample_events(TRAIN_AFTER as usize + 500, "z");
    for chunk in events.chunks(500) {
        store.append(&account, chunk.to_vec()).await.unwrap();
    }
    let (compressed, plain_bytes, packed_bytes): (i64, i64, i64) = store
        .with_conn(|c| {
            c.query_row(
                "SELECT COUNT(*), \
                 (SELECT AVG(length(leaf)) FROM event_log WHERE leaf_dict IS NULL), \
                 (SELECT AVG(length(leaf)) FROM event_log WHERE leaf_dict IS NOT NULL) \
                 FROM event_log WHERE leaf_dict IS NOT NULL",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get::<_, f64>(1)? as i64,
                        r.get::<_, f64>(2)? as i64,
                    ))
                },
            )
            .map_err(sql_error)
        })
        .await
        .unwrap();
    assert_eq!(
        compressed, 500,
        "the leaves after the training are compressed"
    );
    // The sample events have 7 actors (no IP or user agent): 7 personal
    // objects, and one row of openings per event.
    let (objects, openings): (i64, i64) = store
        .with_conn(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM personal_objects), (SELECT COUNT(*) FROM event_openings)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(sql_error)
        })
        .await
        .unwrap();
    assert_eq!((objects, openings), (7, events.len() as i64));
    assert!(
        packed_bytes * 2 < plain_bytes,
        "{packed_bytes} compressed bytes per leaf against {plain_bytes}"
    );
    let mut after = 0;
    let mut seen = 0;
    loop {
        let page = store.events_after(account.id, after, 700).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in &page {
            assert_eq!(
                auditlog_core::leaf::leaf_hash(&record.leaf_bytes),
                record.leaf_hash
            );
            record.stored().check().unwrap();
            seen += 1;
        }
    }
    assert_eq!(seen, events.len());
    // A retry of compressed events is idempotent (the stored leaf is read back).
    let retried = store
        .append(&account, events[events.len() - 3..].to_vec())
        .await
        .unwrap();
    assert!(retried.iter().all(|r| !r.created));
    let last = events.last().unwrap();
    let got = store.get(account.id, last.id()).await.unwrap().unwrap();
    assert_eq!(got.seq, events.len() as u64);
    let scanned = store
        .scan_events(account.id, events.len() as u64 - 1, 10)
        .await
        .unwrap();
    assert_eq!(scanned[0].leaf_bytes, got.leaf_bytes);
}

/// A seq window (rows read bare, given their personal values a batch at a
/// time by `personal_rows::attach`) reads the same records, byte for
/// byte, as the statement that looks each row's personal values up
/// (`sql::personal_of_log_row`):
/// events with openings, with `details` values, with personal values only
/// in `event_personal` (stored before migration 0009, or erased), with
/// both (the openings win), and with none, in windows of every size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_of_every_row_reads_what_the_per_row_lookups_read() {
    let (_dir, store) = fresh().await;
    let account = store.create_account("window").await.unwrap();
    let other = store.create_account("other").await.unwrap();
    store
        .append(&account, conformance::sample_events(120, "w"))
        .await
        .unwrap();
    store
        .append(&other, conformance::sample_events(30, "o"))
        .await
        .unwrap();
    let dictionaries = store.dictionaries.clone();
    let id = account.id;
    store
        .with_write_conn(move |c| {
            // The append-only triggers stand in the way of the odd rows
            // this test makes.
            let triggers: Vec<String> = c
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' \
                     AND tbl_name IN ('event_openings', 'event_personal', 'personal_objects')",
                )
                .and_then(|mut s| {
                    s.query_map([], |r| r.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()
                })
                .map_err(sql_error)?;
            for trigger in triggers {
                c.execute_batch(&format!("DROP TRIGGER \"{trigger}\""))
                    .map_err(sql_error)?;
            }
            let legacy = |seq: i64| {
                format!(
                    "INSERT INTO event_personal (account_id, seq, personal) \
                     SELECT {id}, {seq}, CAST('{{\"details\":' || COALESCE(CAST(s.details AS TEXT), '{{}}') \
                     || ',\"openings\":' || CAST(s.openings AS TEXT) || ',\"personal\":' \
                     || CAST(o.object AS TEXT) || '}}' AS BLOB) \
                     FROM event_openings s JOIN personal_objects o ON o.id = s.object_id \
                     WHERE s.account_id = {id} AND s.seq = {seq};"
                )
            };
            // Personal values in both tables: the openings are read.
            let both = format!(
                "INSERT INTO event_personal (account_id, seq, personal) \
                 VALUES ({id}, 6, CAST('{{\"erased\":2}}' AS BLOB));"
            );
            c.execute_batch(&format!(
                "{} DELETE FROM event_openings WHERE account_id = {id} AND seq IN (5, 40); \
                 {} \
                 INSERT INTO event_personal (account_id, seq, personal) VALUES ({id}, 9, CAST('{{\"erased\":1}}' AS BLOB)); \
                 DELETE FROM event_openings WHERE account_id = {id} AND seq = 9; \
                 DELETE FROM event_openings WHERE account_id = {id} AND seq = 11; \
                 UPDATE event_openings SET details = CAST('{{\"details.x\":[1,\"y\"]}}' AS BLOB) \
                 WHERE account_id = {id} AND seq = 12;",
                legacy(5) + &legacy(40),
                both,
            ))
            .map_err(sql_error)?;
            let filter = crate::query::resolve(c, id, &EventFilter::default())?
                .expect("the account has events");
            let leaves = LeafDecoder {
                cache: &dictionaries,
                conn: c,
                objects: None,
            };
            let mut compared = 0;
            for (after, through) in [(0, 120), (0, 1), (4, 13), (39, 41), (100, 500), (120, 130)] {
                let fast = crate::query::seq_window(c, &filter, after, through, &leaves)?;
                let slow = crate::query::seq_window_by_rows(c, &filter, after, through, &leaves)?;
                assert_eq!(fast.len(), slow.len(), "({after}, {through}]");
                for (a, b) in fast.iter().zip(&slow) {
                    assert_eq!(
                        (a.seq, a.time, &a.leaf_bytes, a.leaf_hash, &a.personal),
                        (b.seq, b.time, &b.leaf_bytes, b.leaf_hash, &b.personal),
                    );
                    compared += 1;
                }
            }
            assert_eq!(compared, 120 + 1 + 9 + 2 + 20);
            // Pages and exports give rows their personal values a batch at
            // a time (`personal_rows::attach`): a dense batch reads the
            // openings as a range, a sparse one seq by seq, a batch may mix
            // accounts and come in any order; each reads the same bytes.
            let by_rows = crate::query::seq_window_by_rows(c, &filter, 0, 120, &leaves)?;
            let expected: std::collections::HashMap<u64, Option<Vec<u8>>> = by_rows
                .iter()
                .map(|r| (r.seq, r.personal.clone()))
                .collect();
            let bare = |keys: &[i64]| -> Result<Vec<crate::personal_rows::BareRow>> {
                keys.iter()
                    .map(|key| {
                        c.query_row(
                            &format!(
                                "SELECT {} FROM event_log WHERE key = ?1",
                                crate::personal_rows::BARE_COLUMNS
                            ),
                            [key],
                            crate::personal_rows::bare_row,
                        )
                        .map_err(sql_error)
                    })
                    .collect()
            };
            let key = |seq: i64| (id << 40) | seq;
            let dense: Vec<i64> = (1..=120).map(key).collect();
            let sparse: Vec<i64> = (1..=120).step_by(7).map(key).collect();
            let mut mixed: Vec<i64> = (1..=40).rev().map(key).collect();
            mixed.extend((1..=30).map(|seq| (other.id << 40) | seq));
            for keys in [&dense, &sparse, &mixed, &dense[4..13].to_vec()] {
                let attached = crate::personal_rows::attach(c, bare(keys)?, None)?;
                assert_eq!(attached.len(), keys.len());
                for (row, key) in attached.iter().zip(keys) {
                    assert_eq!(row.0, *key, "the order is kept");
                    if key >> 40 == id {
                        let seq = (key & ((1 << 40) - 1)) as u64;
                        assert_eq!(&row.4, &expected[&seq], "seq {seq}");
                    } else {
                        assert!(row.4.is_some(), "the other account's events have openings");
                    }
                }
            }
            let seq = |n: u64| crate::query::seq_window(c, &filter, n - 1, n, &leaves);
            let personal = |n: u64| seq(n).map(|r| r[0].personal.clone());
            assert!(personal(11)?.is_none(), "no personal values at all");
            assert_eq!(personal(9)?.as_deref(), Some(&b"{\"erased\":1}"[..]));
            assert!(String::from_utf8(personal(12)?.unwrap())
                .unwrap()
                .starts_with("{\"details\":{\"details.x\":[1,\"y\"]},\"openings\":"));
            for n in [5, 6] {
                assert!(String::from_utf8(personal(n)?.unwrap())
                    .unwrap()
                    .starts_with("{\"details\":{},\"openings\":"));
            }
            Ok(())
        })
        .await
        .unwrap();
    store.shutdown().await;
}

/// Each personal object's count of uses (`object_uses`, migration 0027,
/// added by the writer once per group) agrees with the openings that name
/// it, after appends in groups that name the same objects many times and
/// after a migration of a store that had the index of 0015 instead; an
/// object in use cannot be deleted, and an unused one can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_uses_count_the_openings_and_guard_deletes() {
    let (dir, store) = fresh().await;
    let account = store.create_account("uses").await.unwrap();
    let other = store.create_account("other").await.unwrap();
    let events = conformance::sample_events(300, "u");
    for chunk in events.chunks(70) {
        store.append(&account, chunk.to_vec()).await.unwrap();
    }
    store
        .append(&other, conformance::sample_events(40, "o"))
        .await
        .unwrap();
    type Counts = Vec<(i64, i64)>;
    let counts = |conn: &Connection| -> (Counts, Counts) {
        let read = |sql: &str| -> Counts {
            let mut stmt = conn.prepare(sql).unwrap();
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            rows.map(Result::unwrap).collect()
        };
        (
            read("SELECT object_id, uses FROM object_uses ORDER BY object_id"),
            read(
                "SELECT object_id, COUNT(*) FROM event_openings NOT INDEXED \
                 GROUP BY object_id ORDER BY object_id",
            ),
        )
    };
    store.shutdown().await;

    let conn = open_connection(&dir.path().join(DB_FILE)).unwrap();
    let (uses, openings) = counts(&conn);
    assert_eq!(uses, openings);
    assert_eq!(
        uses.iter().map(|(_, n)| n).sum::<i64>(),
        340,
        "one use per event"
    );
    let (used, _) = uses[0];
    let refused = conn
        .execute("DELETE FROM personal_objects WHERE id = ?1", [used])
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("personal values are removed only under"),
        "{refused}"
    );
    conn.execute(
        "INSERT INTO personal_objects (id, account_id, digest, object) \
         VALUES (999999, ?1, x'00', CAST('{}' AS BLOB))",
        [account.id],
    )
    .unwrap();
    assert_eq!(
        conn.execute("DELETE FROM personal_objects WHERE id = 999999", [])
            .unwrap(),
        1,
        "an object no opening names can go"
    );

    // A store as migration 0026 left it: the index, no counts.
    conn.execute_batch(
        "DROP TRIGGER event_openings_uncount_use;
         DROP TRIGGER personal_objects_forget_uses; DROP TRIGGER personal_objects_delete_unused;
         DROP TABLE object_uses;
         CREATE INDEX event_openings_by_object ON event_openings (object_id);
         CREATE TRIGGER personal_objects_delete_unused BEFORE DELETE ON personal_objects
         WHEN EXISTS (SELECT 1 FROM event_openings s WHERE s.object_id = OLD.id)
         BEGIN SELECT RAISE(ABORT, 'in use'); END;
         DELETE FROM schema_migrations WHERE version = 27;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .append(&account, conformance::sample_events(20, "after"))
        .await
        .unwrap();
    store.shutdown().await;
    let conn = open_connection(&dir.path().join(DB_FILE)).unwrap();
    let (uses, openings) = counts(&conn);
    assert_eq!(uses, openings);
    assert_eq!(uses.iter().map(|(_, n)| n).sum::<i64>(), 360);
    let index: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'event_openings_by_object'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 0, "the index is dropped");
}

/// Long pages and windows decode their leaves beside the read
/// (`decode_aside`): over several batches, compressed leaves and plain ones,
/// a dictionary the cache has not loaded yet, and limits that end inside a
/// batch, they read what the row-by-row lookups read, in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_reads_decoded_beside_the_read_match_the_row_by_row_lookups() {
    use auditlog_store::leaf_codec::{DictionaryCache, TRAIN_AFTER};
    let (_dir, store) = fresh().await;
    let account = store.create_account("long").await.unwrap();
    let events = conformance::sample_events(TRAIN_AFTER as usize + 700, "l");
    for chunk in events.chunks(500) {
        store.append(&account, chunk.to_vec()).await.unwrap();
    }
    let id = account.id;
    let total = events.len() as u64;
    store
        .with_conn(move |c| {
            let compressed: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM event_log WHERE leaf_dict IS NOT NULL",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql_error)?;
            assert_eq!(compressed, 700, "the newest leaves are compressed");
            let filter = crate::query::resolve(c, id, &EventFilter::default())?
                .expect("the account has events");
            assert!(filter.needs_no_confirmation());
            let same = |a: &[EventRecord], b: &[EventRecord], what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                for (a, b) in a.iter().zip(b) {
                    assert_eq!(
                        (a.seq, a.time, &a.leaf_bytes, a.leaf_hash, &a.personal),
                        (b.seq, b.time, &b.leaf_bytes, b.leaf_hash, &b.personal),
                        "{what}"
                    );
                }
            };
            // A cache that holds no dictionary: the reading thread loads it.
            let cache = DictionaryCache::default();
            let leaves = LeafDecoder {
                cache: &cache,
                conn: c,
                objects: None,
            };
            let by_rows = crate::query::seq_window_by_rows(c, &filter, 0, total, &leaves)?;
            assert_eq!(by_rows.len() as u64, total);
            let cache = DictionaryCache::default();
            let leaves = LeafDecoder {
                cache: &cache,
                conn: c,
                objects: None,
            };
            let window = crate::query::seq_window(c, &filter, 0, total, &leaves)?;
            same(&window, &by_rows, "the whole window");
            let mut newest_first = by_rows;
            newest_first.sort_by_key(|r| std::cmp::Reverse((r.time, r.seq)));
            for limit in [257, 1_001, 3_000] {
                let cache = DictionaryCache::default();
                let leaves = LeafDecoder {
                    cache: &cache,
                    conn: c,
                    objects: None,
                };
                let bounds = crate::query::Bounds::page(None, total);
                let page = crate::query::page(c, &filter, bounds, limit, &leaves)?;
                let expected = &newest_first[..limit.min(newest_first.len())];
                same(&page, expected, &format!("a page of {limit}"));
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// The personal objects pages and exports keep across transactions
/// (`object_cache`): a kept object is served from the cache while no
/// object has been deleted, and forgotten once one has (its id may then
/// name a new object); outside a transaction nothing is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_personal_objects_are_forgotten_once_an_object_is_deleted() {
    use crate::object_cache::ObjectCache;
    let (dir, store) = fresh().await;
    let account = store.create_account("kept").await.unwrap();
    store
        .append(&account, conformance::sample_events(10, "k"))
        .await
        .unwrap();
    store.shutdown().await;
    let mut conn = open_connection(&dir.path().join(DB_FILE)).unwrap();
    // An object no event uses (so that it may be deleted), and a way to
    // change it behind the cache's back, which the store itself refuses.
    conn.execute_batch(&format!(
        "DROP TRIGGER personal_objects_refuse_update;
         INSERT INTO personal_objects (id, account_id, digest, object)
         VALUES (999999, {}, x'01', CAST('{{\"v\":1}}' AS BLOB));",
        account.id
    ))
    .unwrap();
    let cache = ObjectCache::default();
    let read = |conn: &mut Connection| -> Vec<u8> {
        let tx = conn.transaction().unwrap();
        let object = cache.begin(&tx).unwrap().get(999999).unwrap().unwrap();
        tx.commit().unwrap();
        object.to_vec()
    };
    assert_eq!(read(&mut conn), br#"{"v":1}"#);
    conn.execute(
        "UPDATE personal_objects SET object = CAST('{\"v\":2}' AS BLOB) WHERE id = 999999",
        [],
    )
    .unwrap();
    assert_eq!(
        read(&mut conn),
        br#"{"v":1}"#,
        "no object was deleted: the kept copy is served"
    );
    // Outside a transaction the cache is not read.
    let fresh_read = cache.begin(&conn).unwrap().get(999999).unwrap().unwrap();
    assert_eq!(&fresh_read[..], br#"{"v":2}"#);
    // The object goes and a new one takes its id: the count of deletions
    // moves, and the cache forgets what it kept.
    conn.execute_batch(&format!(
        "DELETE FROM personal_objects WHERE id = 999999;
         INSERT INTO personal_objects (id, account_id, digest, object)
         VALUES (999999, {}, x'03', CAST('{{\"v\":3}}' AS BLOB));",
        account.id
    ))
    .unwrap();
    let deleted: i64 = conn
        .query_row("SELECT deleted FROM personal_object_deletions", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(read(&mut conn), br#"{"v":3}"#);
    // A missing object is `None` (the row then has no personal values).
    let tx = conn.transaction().unwrap();
    assert!(cache
        .begin(&tx)
        .unwrap()
        .get(123_456_789)
        .unwrap()
        .is_none());
}
