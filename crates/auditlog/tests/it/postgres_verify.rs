//! `auditlog verify` on PostgreSQL is not a formality: it passes on an intact
//! database and fails once someone with the owner's rights edits an event
//! behind the triggers' back (a dictionary value, an id's hash, an actor
//! reference, the leaf bytes of the event log).

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

    // The owner can switch a trigger off; verify must still notice each
    // edit of the event log (migration 0010): a dictionary value, an id's
    // hash, a dictionary id, the leaf bytes. Each is undone before the next.
    let seven = "key & 1099511627775 = 7";
    let cases = [
        (
            "UPDATE log_values SET value = jsonb_build_array(value ->> 0, 'Delete') WHERE kind = 1".to_string(),
            "UPDATE log_values SET value = jsonb_build_array(value ->> 0, 'Update') WHERE kind = 1".to_string(),
            "action",
        ),
        (
            format!("UPDATE event_log SET id_hash = id_hash + 1 WHERE {seven}"),
            format!("UPDATE event_log SET id_hash = id_hash - 1 WHERE {seven}"),
            "seq 7",
        ),
        (
            format!("UPDATE event_log SET actor = actor + 1 WHERE {seven}"),
            format!("UPDATE event_log SET actor = actor - 1 WHERE {seven}"),
            "seq 7",
        ),
        (
            format!("UPDATE event_log SET leaf = leaf || '\\x20'::bytea WHERE {seven}"),
            format!("UPDATE event_log SET leaf = substring(leaf FROM 1 FOR length(leaf) - 1) WHERE {seven}"),
            "seq 7",
        ),
    ];
    for (edit, undo, named) in cases {
        let owner = PgStore::connect(&database.url).await.unwrap();
        let behind_the_triggers = |sql: &str| {
            format!(
                "ALTER TABLE event_log DISABLE TRIGGER USER; ALTER TABLE log_values DISABLE TRIGGER USER; \
                 {sql}; ALTER TABLE event_log ENABLE TRIGGER USER; ALTER TABLE log_values ENABLE TRIGGER USER;"
            )
        };
        owner
            .execute_raw(&behind_the_triggers(&edit))
            .await
            .unwrap();
        let edited = run_cli_on(&store_args, &["verify"], "");
        assert!(!edited.status.success(), "verify passed after {edit}");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&edited.stdout),
            String::from_utf8_lossy(&edited.stderr)
        );
        assert!(report.contains(named), "{edit}: {report}");
        owner
            .execute_raw(&behind_the_triggers(&undo))
            .await
            .unwrap();
        owner.shutdown().await;
        let undone = run_cli_on(&store_args, &["verify"], "");
        assert!(
            undone.status.success(),
            "after undoing {edit}: {}{}",
            String::from_utf8_lossy(&undone.stdout),
            String::from_utf8_lossy(&undone.stderr)
        );
    }
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
