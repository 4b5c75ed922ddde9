//! `auditlog copy` moves the demo store to PostgreSQL: every event kept with
//! its seq, leaf bytes and hash, the keys still working, and a second run
//! (a resumed copy) adding nothing.

use crate::helpers::{run_cli_on, TestServer};
use auditlog_store_postgres::test_support::TestDatabase;
use serde_json::{json, Value};

fn printed_key(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("{label} not printed in {output}"))
        .trim()
        .to_string()
}

/// Every event of the key's account, newest first, as the API returns it.
async fn all_events(server: &TestServer, key: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut path = "/api/v1/events?limit=1000".to_string();
    loop {
        let (status, page) = server.get(&path, key).await;
        assert_eq!(status, 200, "{page}");
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/events?limit=1000&cursor={cursor}"),
            None => return events,
        }
    }
}

fn copy(from: &str, to: &str) -> String {
    let out = run_cli_on(&[], &["copy", "--from", from, "--to", to], "");
    assert!(
        out.status.success(),
        "copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_moves_the_demo_store_to_postgres() {
    let Some(database) = TestDatabase::create("copy_moves_the_demo_store_to_postgres") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut embedded = TestServer::start_on(data.path(), &["--demo"]);
    let read = printed_key(&embedded.startup_output(), "read key:");
    let ingest = printed_key(&embedded.startup_output(), "ingest key:");
    let sent = json!({"id": "before-copy", "event_type": "Element", "action": "Create", "actor": {"id": "u-1"}});
    assert_eq!(embedded.post("/api/v1/events", &ingest, &sent).await.0, 201);
    let before = all_events(&embedded, &read).await;
    assert!(before.len() >= 10_000, "{} demo events", before.len());
    embedded.kill();

    let data_dir = data.path().display().to_string();
    let report = copy(&data_dir, &database.url);
    assert!(
        report.contains(&format!("verified {} events", before.len())),
        "{report}"
    );

    // The embedded store's signing key: the copied checkpoints verify with it.
    let signing_key = data.path().join("signing-key").display().to_string();
    let verified = run_cli_on(
        &[
            "--database-url".to_string(),
            database.url.clone(),
            "--signing-key-file".to_string(),
            signing_key.clone(),
        ],
        &["verify"],
        "",
    );
    assert!(
        verified.status.success(),
        "verify on PostgreSQL failed: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );

    let scratch = tempfile::tempdir().unwrap();
    let on_postgres = TestServer::start_on_database(
        &database.url,
        scratch.path(),
        &["--signing-key-file", &signing_key],
    );
    // The key made on the embedded store works on PostgreSQL: keys moved by hash.
    let after = all_events(&on_postgres, &read).await;
    assert_eq!(after.len(), before.len());
    assert_eq!(
        after, before,
        "every event with the same seq, content and hash"
    );

    // Running it again (as after an interruption) copies nothing new.
    let again = copy(&data_dir, &database.url);
    assert!(again.contains("verified"), "{again}");
    let (_, histogram) = on_postgres.get("/api/v1/events/histogram", &read).await;
    assert_eq!(histogram["total"], before.len());

    // The key keeps its public id: what it stores on PostgreSQL names the
    // same `source.key` as what it stored before the copy.
    let sent = json!({"id": "after-copy", "event_type": "Element", "action": "Create", "actor": {"id": "u-1"}});
    assert_eq!(
        on_postgres.post("/api/v1/events", &ingest, &sent).await.0,
        201
    );
    let (_, old) = on_postgres.get("/api/v1/events/before-copy", &read).await;
    let (_, new) = on_postgres.get("/api/v1/events/after-copy", &read).await;
    assert!(
        old["event"]["source"]["key"]
            .as_str()
            .unwrap()
            .starts_with("key_"),
        "{old}"
    );
    assert_eq!(new["event"]["source"], old["event"]["source"]);
}

#[tokio::test]
async fn copy_refuses_a_missing_source_and_an_embedded_target() {
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("nothing-here").display().to_string();
    let out = run_cli_on(
        &[],
        &[
            "copy",
            "--from",
            &missing,
            "--to",
            "postgres://x@127.0.0.1:1/x",
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no embedded store there"));
    assert!(
        !empty.path().join("nothing-here").exists(),
        "the source was not created"
    );

    let data = tempfile::tempdir().unwrap();
    crate::helpers::cli(data.path(), &["account", "create", "acme"], "");
    let from = data.path().display().to_string();
    let to = empty.path().display().to_string();
    let out = run_cli_on(&[], &["copy", "--from", &from, "--to", &to], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be a postgres:// URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
