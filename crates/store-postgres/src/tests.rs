use super::*;
use crate::test_support::TestDatabase;
use auditlog_store::conformance;
use std::sync::Arc;

/// A store on a fresh database, or `None` when PostgreSQL tests are skipped.
async fn fresh(test: &str) -> Option<(TestDatabase, PgStore)> {
    let database = TestDatabase::create(test)?;
    let store = PgStore::connect(&database.url).await.unwrap();
    Some((database, store))
}

/// One test per case of the shared suite, each on a database of its own.
mod conformance_cases {
    auditlog_store::conformance_tests!(super::fresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_filter_combination_scans_the_events_table() {
    let Some((_db, store)) = fresh("no_filter_combination_scans_the_events_table").await else {
        return;
    };
    // Plans depend on statistics: a populated, analysed table with several accounts.
    for n in 0..4 {
        let account = store.create_account(&format!("other{n}")).await.unwrap();
        store
            .append(&account, conformance::sample_events(2_000, "o"))
            .await
            .unwrap();
    }
    let account = store.create_account("plans").await.unwrap();
    store
        .append(&account, conformance::sample_events(500, "e"))
        .await
        .unwrap();
    store.execute_raw("ANALYZE").await.unwrap();
    let mut cases = conformance::filter_cases();
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
    for filter in cases {
        let plan = store.explain_page_query(account.id, &filter).await.unwrap();
        assert!(
            !plan
                .iter()
                .any(|step| step.contains("Seq Scan on event_log")),
            "full scan for {filter:?}: {plan:#?}"
        );
        assert!(plan.iter().any(|step| step.contains("Index")), "{plan:#?}");
    }
    store.shutdown().await;
}

/// `q` read in UTC, as the API reads it without `tz`.
fn q(text: &str) -> EventFilter {
    EventFilter {
        query: auditlog_core::filter::parse_query(Some(text), None).unwrap(),
        ..EventFilter::default()
    }
}

/// Free text is answered from the full-text index (migration 0013): a rare
/// word, a prefix and a word beside an indexed term read the GIN index for
/// pages and counts; a word every event holds may read the newest events in
/// time order instead, but never scans the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_text_query_uses_the_word_index() {
    let Some((_db, store)) = fresh("a_free_text_query_uses_the_word_index").await else {
        return;
    };
    for n in 0..4 {
        let account = store.create_account(&format!("other{n}")).await.unwrap();
        store
            .append(&account, conformance::sample_events(2_000, "o"))
            .await
            .unwrap();
    }
    let account = store.create_account("words").await.unwrap();
    let mut events = conformance::sample_events(3_000, "e");
    for event in events.iter_mut().step_by(500) {
        *event = auditlog_store::samples::edited(event, |json| {
            json["target"]["name"] = serde_json::json!("Zanzibar gateway");
        });
    }
    store.append(&account, events).await.unwrap();
    store.execute_raw("ANALYZE").await.unwrap();
    for (text, matching) in [
        ("zanzibar", 6),
        ("zanz*", 6),
        ("zanzibar type:\"Test Case\"", 3),
        ("\"zanzibar gateway\"", 6),
    ] {
        let filter = q(text);
        let page = store.explain_page_query(account.id, &filter).await.unwrap();
        assert!(
            page.iter().any(|step| step.contains("event_log_by_words")),
            "{text}: {page:#?}"
        );
        let counts = store
            .explain_histogram_query(account.id, &filter, Interval::Day)
            .await
            .unwrap();
        assert!(
            counts
                .iter()
                .any(|step| step.contains("event_log_by_words")),
            "{text}: {counts:#?}"
        );
        let found = store.query(account.id, &filter, None, 50).await.unwrap();
        assert_eq!(found.events.len(), matching, "{text}");
    }
    for text in ["user", "user type:\"Test Case\" -zanzibar"] {
        let page = store
            .explain_page_query(account.id, &q(text))
            .await
            .unwrap();
        assert!(
            !page
                .iter()
                .any(|step| step.contains("Seq Scan on event_log")),
            "{text}: {page:#?}"
        );
    }
    store.shutdown().await;
}

/// Erasure's path (`replace_event_words`): an event's words replaced by
/// those of the erased event are no longer found; its other words are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_words_leave_the_index_and_the_others_stay() {
    let Some((db, store)) = fresh("replaced_words_leave_the_index_and_the_others_stay").await
    else {
        return;
    };
    let account = store.create_account("erasing").await.unwrap();
    let events = conformance::sample_events(20, "e");
    store.append(&account, events.clone()).await.unwrap();
    // seq 4 is events[3]: actor "User 3", target "T-3".
    let seqs_of = |page: Page| page.events.iter().map(|e| e.seq).collect::<Vec<_>>();
    let before = seqs_of(store.query(account.id, &q("t 3"), None, 50).await.unwrap());
    assert!(before.contains(&4), "{before:?}");
    let erased = auditlog_store::samples::edited(&events[3], |json| {
        json["actor"]["name"] = serde_json::json!("[erased]");
    });
    assert!(store
        .replace_event_words(account.id, 4, &erased)
        .await
        .unwrap());
    // Its row holds the erased event's words, and the index no longer
    // selects it for "user" (its leaf is unchanged here, so ask the index
    // directly rather than through the reference's confirmation).
    let (client, connection) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    let words: String = client
        .query_one(
            "SELECT words FROM event_log WHERE key = $1",
            &[&auditlog_store::log_key::log_key(account.id, 4).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(words, "0 3 a1 erased p3 t");
    let with_user: i64 = client
        .query_one(
            &format!(
                "SELECT COUNT(*) FROM event_log l WHERE {} @@ 'user'::tsquery",
                word_index::WORDS_VECTOR
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(with_user, 19);
    drop(client);
    let _ = driver.await;
    // Its other words still find it.
    let after = seqs_of(store.query(account.id, &q("t"), None, 50).await.unwrap());
    assert!(after.contains(&4), "{after:?}");
    // No row, no words: false.
    assert!(!store
        .replace_event_words(account.id, 99, &erased)
        .await
        .unwrap());
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_update_and_delete_of_events() {
    let Some((db, store)) = fresh("the_database_refuses_update_and_delete_of_events").await else {
        return;
    };
    let account = store.create_account("immutable").await.unwrap();
    store
        .append(&account, conformance::sample_events(3, "e"))
        .await
        .unwrap();
    store.shutdown().await;
    // A raw session, as any tool with the owner's credentials would open it.
    let (client, connection) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
    tokio::spawn(connection);
    for sql in [
        "UPDATE event_log SET kind = kind + 1",
        "DELETE FROM event_log",
        "TRUNCATE event_log",
        "UPDATE log_values SET value = '[\"x\", \"y\"]'",
        "UPDATE tree_hashes SET hash = '\\x00' WHERE hash_index = 0",
        "DELETE FROM tree_hashes",
        "TRUNCATE checkpoints",
    ] {
        let error = client.batch_execute(sql).await.unwrap_err();
        let message = error.as_db_error().unwrap().message().to_string();
        assert!(message.contains("append-only"), "{sql}: {message}");
    }
    let count: i64 = client
        .query_one("SELECT COUNT(*) FROM event_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);
}

/// Two stores on one database stand for two server processes: each has its
/// own writer and pool, and only the database orders them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_from_two_processes_are_gapless() {
    let Some((db, first)) = fresh("appends_from_two_processes_are_gapless").await else {
        return;
    };
    let second = PgStore::connect(&db.url).await.unwrap();
    let stores = [Arc::new(first), Arc::new(second)];
    let account = stores[0].create_account("group").await.unwrap();
    let mut tasks = Vec::new();
    for client in 0..16 {
        let (store, account) = (stores[client % 2].clone(), account.clone());
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..20 {
                let events = conformance::sample_events(1 + i % 3, &format!("c{client}-{i}-"));
                seqs.extend(
                    store
                        .append(&account, events)
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
    let total = all.len() as u64;
    assert_eq!(all, (1..=total).collect::<Vec<u64>>());
    assert_eq!(stores[1].last_seq(account.id).await.unwrap(), total);
    // Both processes added to one tree: its stored root equals the root
    // rebuilt from the leaf hashes alone.
    use auditlog_core::merkle;
    use auditlog_store::transfer::TransferSource;
    let mut rebuilt = merkle::MemoryHashes::default();
    for event in stores[0].events_after(account.id, 0, 10_000).await.unwrap() {
        rebuilt.append_leaf(event.leaf_hash).unwrap();
    }
    let stored_root = auditlog_store::tree::tree_root(stores[1].as_ref(), account.id, total)
        .await
        .unwrap();
    assert_eq!(
        stored_root,
        merkle::tree_hash(total as i64, &rebuilt).unwrap()
    );
    for store in &stores {
        store.shutdown().await;
    }
}

/// A transaction that aborts after taking seqs gives them back: the next
/// append continues right after the last committed event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_append_leaves_no_gap() {
    let Some((db, store)) = fresh("an_aborted_append_leaves_no_gap").await else {
        return;
    };
    let account = store.create_account("abort").await.unwrap();
    store
        .append(&account, conformance::sample_events(2, "a"))
        .await
        .unwrap();
    // Make the next insert fail inside the writer's transaction, after the
    // sequencer row was locked and moved.
    let (client, connection) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'injected failure'; END; $$; \
             CREATE TRIGGER fail_once BEFORE INSERT ON event_log FOR EACH ROW EXECUTE FUNCTION fail_once();",
        )
        .await
        .unwrap();
    let failed = store
        .append(&account, conformance::sample_events(3, "b"))
        .await;
    assert!(failed.is_err(), "{failed:?}");
    client
        .batch_execute("DROP TRIGGER fail_once ON event_log")
        .await
        .unwrap();
    let receipts = store
        .append(&account, conformance::sample_events(3, "b"))
        .await
        .unwrap();
    assert_eq!(
        receipts.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    store.shutdown().await;
}

/// Several servers starting together on an empty database: one applies the
/// migrations, the others wait for its advisory lock and find them applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_together_migrate_once() {
    let Some(db) = TestDatabase::create("servers_starting_together_migrate_once") else {
        return;
    };
    let starts = (0..4).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move { PgStore::connect(&url).await })
    });
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.unwrap().unwrap());
    }
    let (client, connection) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let versions: i64 = client
        .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions, schema::MIGRATION_COUNT as i64);
    for store in stores {
        store.ping().await.unwrap();
        store.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_transfer_source_cases() {
    let Some((_db, store)) = fresh("passes_the_transfer_source_cases").await else {
        return;
    };
    conformance::transfer_source_round_trips(&store).await;
    store.shutdown().await;
}

/// Imports keep exact records and refuse anything that would break the
/// log: a gap, a hash that is not the leaf's, a leaf of another account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_refuse_gaps_and_wrong_hashes() {
    use auditlog_store::transfer::{TransferSource, TransferTarget};
    let Some((_db, store)) = fresh("imports_refuse_gaps_and_wrong_hashes").await else {
        return;
    };
    let source = store.create_account("source").await.unwrap();
    store
        .append(&source, conformance::sample_events(4, "m"))
        .await
        .unwrap();
    let records = store.events_after(source.id, 0, 10).await.unwrap();
    let other = store.create_account("other").await.unwrap();
    // The leaves name account "source": refused in "other".
    assert!(store
        .import_events(&other, records[..1].to_vec())
        .await
        .is_err());

    let target_db = TestDatabase::create("imports_refuse_gaps_and_wrong_hashes_target").unwrap();
    let target = PgStore::connect(&target_db.url).await.unwrap();
    let copy = target.create_account("source").await.unwrap();
    let gap = target.import_events(&copy, records[1..2].to_vec()).await;
    assert!(gap.is_err(), "{gap:?}");
    let mut forged = records[0].clone();
    forged.leaf_hash[0] ^= 1;
    assert!(target.import_events(&copy, vec![forged]).await.is_err());
    assert_eq!(target.last_seq(copy.id).await.unwrap(), 0);
    target.import_events(&copy, records.clone()).await.unwrap();
    assert_eq!(target.events_after(copy.id, 0, 10).await.unwrap(), records);
    // Appends continue the imported log.
    let next = target
        .append(&copy, conformance::sample_events(1, "n"))
        .await
        .unwrap();
    assert_eq!(next[0].seq, 5);
    target.shutdown().await;
    store.shutdown().await;
}

/// The role of docs/POSTGRES.md: runs every conformance case, and the
/// database refuses it UPDATE and DELETE of events by privilege.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_role_without_update_grants_runs_the_store() {
    let Some((db, owner)) = fresh("a_service_role_without_update_grants_runs_the_store").await
    else {
        return;
    };
    let role = format!("{}_app", db.name());
    let grants = include_str!("../service-role.sql").replace("auditlog_app", &role);
    owner
        .execute_raw(&format!("CREATE ROLE {role} LOGIN; {grants}"))
        .await
        .unwrap();
    let app_url = crate::test_support::with_database(
        &crate::test_support::with_user(&db.url, &role),
        db.name(),
    );
    let app = PgStore::connect(&app_url).await.unwrap();
    conformance::run_all(&app).await;
    // Erasure's way to replace an event's words is open to it.
    let account = app.create_account("replaced-words").await.unwrap();
    let events = conformance::sample_events(2, "w");
    app.append(&account, events.clone()).await.unwrap();
    assert!(app
        .replace_event_words(account.id, 1, &events[1])
        .await
        .unwrap());
    app.shutdown().await;

    let (client, connection) = tokio_postgres::connect(&app_url, NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    for sql in [
        "UPDATE event_log SET kind = kind + 1",
        "UPDATE event_log SET words = NULL",
        "DELETE FROM event_log",
        "TRUNCATE event_log",
        "UPDATE log_values SET kind = 2",
    ] {
        let error = client.batch_execute(sql).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {error:?}"
        );
        let message = error.as_db_error().unwrap().message().to_string();
        assert!(message.contains("permission denied"), "{sql}: {message}");
    }
    drop(client);
    let _ = driver.await;
    // Roles belong to the server, not the database: remove it again.
    owner
        .execute_raw(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await
        .unwrap();
    owner.shutdown().await;
}

/// Workers of two processes claiming at once: `FOR UPDATE SKIP LOCKED`
/// hands every job to exactly one of them, and none waits for another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_workers_claim_each_export_once() {
    use auditlog_store::{Compression, ExportFormat, ExportJobs, NewExportJob};
    let Some((db, first)) = fresh("concurrent_workers_claim_each_export_once").await else {
        return;
    };
    let second = PgStore::connect(&db.url).await.unwrap();
    let stores = [Arc::new(first), Arc::new(second)];
    let account = stores[0].create_account("claims").await.unwrap();
    const JOBS: usize = 40;
    for _ in 0..JOBS {
        stores[0]
            .create_export(NewExportJob {
                account_id: account.id,
                requested_by: "api-key:1".into(),
                format: ExportFormat::Csv,
                compression: Compression::None,
                filters: serde_json::json!({}),
                seq_bound: 0,
                created_at: Timestamp::now(),
            })
            .await
            .unwrap();
    }
    let mut workers = Vec::new();
    for worker in 0..8 {
        let store = stores[worker % 2].clone();
        workers.push(tokio::spawn(async move {
            let name = format!("w{worker}");
            let mut claimed = Vec::new();
            let now = Timestamp::now();
            let lease = Timestamp::from_micros(now.micros() + 60_000_000);
            while let Some(job) = store.claim_export(&name, now, lease).await.unwrap() {
                assert_eq!(job.claimed_by.as_deref(), Some(name.as_str()));
                claimed.push(job.id);
            }
            claimed
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    all.sort_unstable();
    let distinct = {
        let mut d = all.clone();
        d.dedup();
        d
    };
    assert_eq!(all.len(), JOBS, "every job claimed");
    assert_eq!(distinct, all, "no job claimed twice");
    for store in &stores {
        store.shutdown().await;
    }
}

/// Leaves past the dictionary are stored compressed on PostgreSQL too
/// (the conformance case checks that they read back exactly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaves_are_compressed_once_the_account_has_a_dictionary() {
    let Some((_db, store)) = fresh("leaves_are_compressed_once_the_account_has_a_dictionary").await
    else {
        return;
    };
    conformance::leaves_read_back_exactly_past_the_dictionary(&store).await;
    let client = store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT COUNT(*) FILTER (WHERE leaf_dict IS NOT NULL), \
             AVG(length(leaf)) FILTER (WHERE leaf_dict IS NULL)::float8, \
             AVG(length(leaf)) FILTER (WHERE leaf_dict IS NOT NULL)::float8 FROM event_log",
            &[],
        )
        .await
        .unwrap();
    let (compressed, plain, packed): (i64, f64, f64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(compressed, 300);
    assert!(
        packed * 2.0 < plain,
        "{packed} bytes per compressed leaf against {plain}"
    );
}
