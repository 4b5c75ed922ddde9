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

/// `PUT /api/v1/retention`.
async fn set_retention(server: &TestServer, admin: &str, days: Value) {
    let response = server
        .http
        .put(server.url("/api/v1/retention"))
        .bearer_auth(admin)
        .json(&json!({ "retention_days": days }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// Polls `path` until `done` accepts the answer.
async fn wait_for(server: &TestServer, path: &str, key: &str, done: impl Fn(&Value) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, body) = server.get(path, key).await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{path}: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_carries_pruned_and_erased_events_and_verify_passes_on_the_copy() {
    let Some(database) = TestDatabase::create("copy_pruned_and_erased") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut embedded = TestServer::start_on(
        data.path(),
        &["--retention-min-days", "0", "--prune-interval", "1s"],
    );
    let account = embedded.account("acme");
    let admin = embedded
        .cli(
            &["key", "create", "--account", "acme", "--scope", "admin"],
            "",
        )
        .trim()
        .to_string();
    // Old events, pruned: retention 0 days, then kept forever again.
    let old: Vec<Value> = (0..30)
        .map(|i| {
            json!({"id": format!("old{i}"), "event_type": "Element", "action": "Create",
                         "actor": {"id": "u-old", "email": "old@example.com"}})
        })
        .collect();
    let (status, body) = embedded
        .post("/api/v1/events", &account.ingest, &json!({ "events": old }))
        .await;
    assert_eq!(status, 201, "{body}");
    set_retention(&embedded, &admin, json!(0)).await;
    wait_for(&embedded, "/api/v1/retention", &admin, |r| {
        r["retention"]["prunings"][0]["status"] == "done"
    })
    .await;
    set_retention(&embedded, &admin, Value::Null).await;
    wait_for(&embedded, "/api/v1/retention", &admin, |r| {
        r["retention"]["prunings"][0]["status"] == "done"
    })
    .await;
    let (status, pruned) = embedded.get("/api/v1/events/old0", &account.read).await;
    assert_eq!(status, 410, "{pruned}");
    // Then a subject's events and another user's, and the subject erased.
    let events: Vec<Value> = (0..40)
        .map(|i| {
            let user = if i % 4 == 0 { "u-keep" } else { "u-gone" };
            json!({"id": format!("new{i}"), "event_type": "Element", "action": "Update",
                   "actor": {"id": user, "name": format!("Name of {user}"), "email": format!("{user}@example.com")},
                   "context": {"ip": "198.51.100.7"}})
        })
        .collect();
    let (status, body) = embedded
        .post(
            "/api/v1/events",
            &account.ingest,
            &json!({ "events": events }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, created) = embedded
        .post("/api/v1/erasures", &admin, &json!({"subject": "u-gone"}))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["erasure"]["id"].clone();
    wait_for(&embedded, &format!("/api/v1/erasures/{id}"), &admin, |e| {
        e["erasure"]["status"] == "done"
    })
    .await;
    let before = all_events(&embedded, &account.read).await;
    let (_, erased_before) = embedded.get("/api/v1/events/new1", &account.read).await;
    assert_eq!(erased_before["event"]["erased"], true, "{erased_before}");
    embedded.kill();

    let data_dir = data.path().display().to_string();
    let report = copy(&data_dir, &database.url);
    assert!(
        report.contains(&format!("verified {} events", before.len())),
        "{report}"
    );
    let signing_key = data.path().join("signing-key").display().to_string();
    let store = [
        "--database-url".to_string(),
        database.url.clone(),
        "--signing-key-file".to_string(),
        signing_key.clone(),
    ];
    let verified = run_cli_on(&store, &["verify"], "");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(verified.status.success(), "verify on the copy: {printed}");
    // A second run (a resumed copy) adds nothing and still checks out.
    let again = copy(&data_dir, &database.url);
    assert!(
        again.contains(&format!("verified {} events", before.len())),
        "{again}"
    );

    let scratch = tempfile::tempdir().unwrap();
    let on_postgres = TestServer::start_on_database(
        &database.url,
        scratch.path(),
        &["--signing-key-file", &signing_key],
    );
    let after = all_events(&on_postgres, &account.read).await;
    assert_eq!(after, before, "the same events, erased ones as erased");
    let (status, pruned) = on_postgres.get("/api/v1/events/old0", &account.read).await;
    assert_eq!(status, 410, "{pruned}");
    assert_eq!(pruned["error"]["code"], "pruned", "{pruned}");
    let (status, proof) = on_postgres
        .get("/api/v1/events/old0/proof", &account.read)
        .await;
    assert_eq!(status, 200, "{proof}");
    let (status, erased) = on_postgres.get("/api/v1/events/new1", &account.read).await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["event"], erased_before["event"]);
    assert_eq!(erased["event"]["actor"]["email"], "[erased]");
    let (_, kept) = on_postgres.get("/api/v1/events/new0", &account.read).await;
    assert_eq!(
        kept["event"]["actor"]["email"], "u-keep@example.com",
        "{kept}"
    );
    // The subject's id is not searchable on the copy; the pseudonym is.
    let (_, found) = on_postgres
        .get("/api/v1/events?user=u-gone", &account.read)
        .await;
    assert_eq!(found["events"], json!([]), "{found}");
    let pseudonym = erased["event"]["actor"]["id"].as_str().unwrap();
    let (_, found) = on_postgres
        .get(&format!("/api/v1/events?user={pseudonym}"), &account.read)
        .await;
    assert_eq!(found["events"].as_array().unwrap().len(), 30, "{found}");
}
