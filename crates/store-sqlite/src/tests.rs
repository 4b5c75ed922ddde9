use super::*;
use auditlog_store::conformance;

async fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let (_dir, store) = fresh().await;
    conformance::run_all(&store).await;
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_filter_combination_scans_the_events_table() {
    let (_dir, store) = fresh().await;
    let account = store.create_account("plans").await.unwrap();
    // Plans depend on statistics; give the planner a populated table.
    store
        .append(&account, conformance::sample_events(500, "e"))
        .await
        .unwrap();
    store
        .with_conn(|c| c.execute_batch("ANALYZE").map_err(sql_error))
        .await
        .unwrap();
    let mut cases = conformance::filter_cases();
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
    for filter in cases {
        let plan = store.explain_page_query(account.id, &filter).await.unwrap();
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN events")),
            "full scan for {filter:?}: {plan:?}"
        );
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX") || step.contains("USING COVERING INDEX")),
            "{plan:?}"
        );
    }
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
    let update = conn
        .execute("UPDATE events SET action = 'Delete' WHERE seq = 1", [])
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = conn
        .execute("DELETE FROM events WHERE seq = 1", [])
        .unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
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
async fn passes_the_transfer_source_cases() {
    let (_dir, store) = fresh().await;
    conformance::transfer_source_round_trips(&store).await;
    store.shutdown().await;
}
