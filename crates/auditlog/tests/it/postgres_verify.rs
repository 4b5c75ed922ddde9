//! `auditlog verify` on PostgreSQL is not a formality: it passes on an intact
//! database and fails once someone with the owner's rights edits an event
//! behind the triggers' back.

use crate::helpers::{run_cli_on, TestServer};
use auditlog_store::Store;
use auditlog_store_postgres::test_support::TestDatabase;
use auditlog_store_postgres::PgStore;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_an_edited_event_on_postgres() {
    let Some(database) = TestDatabase::create("verify_catches_an_edited_event_on_postgres") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let key_file = scratch.path().join("signing-key").display().to_string();
    let server = TestServer::start_on_database(
        &database.url,
        scratch.path(),
        &["--signing-key-file", &key_file],
    );
    let account = server.account("acme");
    let events: Vec<_> = (0..20)
        .map(|i| json!({"event_type": "Test Case", "action": "Update", "actor": {"id": format!("u-{i}")}}))
        .collect();
    let (status, body) = server
        .post(
            "/api/v1/events",
            &account.ingest,
            &json!({"events": events}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    drop(server);

    let store_args = vec![
        "--database-url".to_string(),
        database.url.clone(),
        "--signing-key-file".to_string(),
        key_file,
    ];
    let intact = run_cli_on(&store_args, &["verify"], "");
    assert!(
        intact.status.success(),
        "{}{}",
        String::from_utf8_lossy(&intact.stdout),
        String::from_utf8_lossy(&intact.stderr)
    );

    // The owner can switch a trigger off; verify must still notice the edit.
    let owner = PgStore::connect(&database.url).await.unwrap();
    owner
        .execute_raw(
            "ALTER TABLE events DISABLE TRIGGER events_refuse_update; \
             UPDATE events SET action = 'Delete' WHERE seq = 7; \
             ALTER TABLE events ENABLE TRIGGER events_refuse_update;",
        )
        .await
        .unwrap();
    owner.shutdown().await;
    let edited = run_cli_on(&store_args, &["verify"], "");
    assert!(!edited.status.success(), "verify passed an edited store");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&edited.stdout),
        String::from_utf8_lossy(&edited.stderr)
    );
    assert!(
        report.contains("action") || report.contains("seq 7"),
        "{report}"
    );
}

/// PostgreSQL's text and JSON types cannot hold U+0000; such an event used to
/// fail its whole group commit (503 for every request in it). It is now
/// refused at parse (422 naming the field) on PostgreSQL as on SQLite, and
/// the good events beside it are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_is_refused_with_422_and_good_events_are_stored_on_postgres() {
    let Some(database) = TestDatabase::create("nul_is_refused_on_postgres") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_database(&database.url, scratch.path(), &[]);
    let account = server.account("acme");
    let event = |id: &str, actor: &str, details: serde_json::Value| {
        json!({"id": id, "event_type": "Test Case", "action": "Update",
               "actor": {"id": actor}, "details": details})
    };
    let bad = [
        event("nul-1", "u\u{0}1", json!({})),
        event("nul-2", "u-1", json!({"note": "a\u{0}b"})),
    ];
    let good = event("good-1", "u-1", json!({"note": "fine"}));
    // Sent together, so that they can share one group commit.
    let (first_bad, second_bad, good_answer) = tokio::join!(
        server.post("/api/v1/events", &account.ingest, &bad[0]),
        server.post("/api/v1/events", &account.ingest, &bad[1]),
        server.post("/api/v1/events", &account.ingest, &good),
    );
    for ((status, answer), field) in [(first_bad, "actor.id"), (second_bad, "details.note")] {
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["error"]["details"][0]["errors"][0]["field"], field);
        assert_eq!(
            answer["error"]["details"][0]["errors"][0]["rule"],
            "contains_nul"
        );
    }
    assert_eq!(good_answer.0, 201, "{}", good_answer.1);
    let (status, page) = server.get("/api/v1/events", &account.read).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(ids, ["good-1"]);
}
