//! `auditlog copy` moves the demo store to PostgreSQL: every event kept with
//! its seq, leaf bytes and hash, the keys still working, and a second run
//! (a resumed copy) adding nothing. The account's administration travels
//! too: custom event types, the two-factor requirement, users' roles and
//! disabled state, keys' public ids and revocation; a copy run again
//! disables and revokes what the source did since, and never enables a
//! user or brings a revoked key back.

use crate::console::{add_user, Visitor, PASSWORD};
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

async fn send_json(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(path))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// What a copy must keep of each key: public id, name, prefix, scopes,
/// creator, creation, expiry, status.
fn key_summary(list: &Value) -> Vec<Value> {
    list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            json!([
                k["id"],
                k["name"],
                k["prefix"],
                k["scopes"],
                k["created_by"],
                k["created_at"],
                k["expires_at"],
                k["status"]
            ])
        })
        .collect()
}

/// Each user's email, role and status.
fn user_summary(list: &Value) -> Vec<(String, String, String)> {
    let mut users: Vec<(String, String, String)> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["email"].as_str().unwrap().to_string(),
                u["role"].as_str().unwrap().to_string(),
                u["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    users.sort();
    users
}

fn user_cli(data: &std::path::Path, action: &str, email: &str) {
    crate::helpers::cli(
        data,
        &["user", action, "--account", "acme", "--email", email],
        "",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_keeps_roles_disabled_users_revoked_keys_and_event_types() {
    let Some(database) = TestDatabase::create("copy_keeps_roles_disabled_users") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut embedded = TestServer::start_on(data.path(), &[]);
    let acme = embedded.account("acme");
    for (email, role) in [
        ("ada@acme.test", "admin"),
        ("aud@acme.test", "auditor"),
        ("mia@acme.test", "member"),
    ] {
        add_user(&embedded, "acme", email, role);
    }
    let admin = embedded
        .cli(
            &[
                "key",
                "create",
                "--account",
                "acme",
                "--scope",
                "admin",
                "--name",
                "ops",
            ],
            "",
        )
        .trim()
        .to_string();
    let (status, _) = send_json(
        &embedded,
        reqwest::Method::POST,
        "/api/v1/event-types",
        &admin,
        Some(json!({"name": "Defect", "actions": ["Triage"]})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = send_json(
        &embedded,
        reqwest::Method::PUT,
        "/api/v1/account/security",
        &admin,
        Some(json!({"require_two_factor": true})),
    )
    .await;
    assert_eq!(status, 200);
    // Two keys to revoke: one before the first copy, one between the runs.
    let mut spare = Vec::new();
    for name in ["old", "leaked"] {
        let (status, made) = send_json(
            &embedded,
            reqwest::Method::POST,
            "/api/v1/keys",
            &admin,
            Some(json!({"name": name, "scopes": ["read"]})),
        )
        .await;
        assert_eq!(status, 201, "{made}");
        spare.push((
            made["key"]["id"].as_str().unwrap().to_string(),
            made["secret"].as_str().unwrap().to_string(),
        ));
    }
    let (status, _) = send_json(
        &embedded,
        reqwest::Method::DELETE,
        &format!("/api/v1/keys/{}", spare[0].0),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let defect =
        json!({"id": "d-1", "event_type": "Defect", "action": "Triage", "actor": {"id": "u-1"}});
    assert_eq!(
        embedded
            .post("/api/v1/events", &acme.ingest, &defect)
            .await
            .0,
        201
    );
    embedded.kill();
    user_cli(data.path(), "disable", "mia@acme.test");

    let data_dir = data.path().display().to_string();
    let report = copy(&data_dir, &database.url);
    assert!(report.contains("verified"), "{report}");

    // Between the runs the source disables the auditor, revokes the leaked
    // key and enables Mia again; the second run carries the first two and
    // leaves Mia disabled in the target (a copy never enables).
    user_cli(data.path(), "disable", "aud@acme.test");
    user_cli(data.path(), "enable", "mia@acme.test");
    let source_store = vec!["--data-dir".to_string(), data_dir.clone()];
    crate::helpers::cli_on(
        &source_store,
        &["key", "revoke", "--account", "acme", &spare[1].0],
        "",
    );
    let report = copy(&data_dir, &database.url);
    assert!(report.contains("verified"), "{report}");

    let embedded = TestServer::start_on(data.path(), &[]);
    let (_, source_keys) = embedded.get("/api/v1/keys", &admin).await;
    let (_, source_users) = embedded.get("/api/v1/users", &admin).await;
    drop(embedded);

    let scratch = tempfile::tempdir().unwrap();
    let signing_key = data.path().join("signing-key").display().to_string();
    let target = TestServer::start_on_database(
        &database.url,
        scratch.path(),
        &["--signing-key-file", &signing_key],
    );
    let (status, target_keys) = target.get("/api/v1/keys", &admin).await;
    assert_eq!(status, 200, "{target_keys}");
    assert_eq!(key_summary(&target_keys), key_summary(&source_keys));
    let revoked: Vec<&Value> = target_keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["status"] == "revoked")
        .collect();
    assert_eq!(revoked.len(), 2, "{target_keys}");
    for (_, secret) in &spare {
        assert_eq!(target.get("/api/v1/events", secret).await.0, 401);
    }
    let (_, target_users) = target.get("/api/v1/users", &admin).await;
    let mia = |status: &str| {
        (
            "mia@acme.test".to_string(),
            "member".to_string(),
            status.to_string(),
        )
    };
    let expected: Vec<(String, String, String)> = user_summary(&source_users)
        .into_iter()
        .map(|u| {
            if u.0 == "mia@acme.test" {
                mia("disabled")
            } else {
                u
            }
        })
        .collect();
    assert!(user_summary(&source_users).contains(&mia("active")));
    assert_eq!(user_summary(&target_users), expected);
    assert!(expected.contains(&(
        "aud@acme.test".to_string(),
        "auditor".to_string(),
        "disabled".to_string()
    )));

    // Disabled users cannot sign in on the target; the admin can, and is
    // led to two-factor enrolment: the requirement travelled.
    for email in ["mia@acme.test", "aud@acme.test"] {
        let mut visitor = Visitor::new(&target);
        let (status, _, page) = visitor.sign_in("acme", email, PASSWORD, "/").await;
        assert_eq!(status, 401, "{email}: {page}");
    }
    let mut ada = Visitor::new(&target);
    let (status, headers, _) = ada.sign_in("acme", "ada@acme.test", PASSWORD, "/").await;
    assert_eq!(status, 303);
    assert_eq!(
        headers["location"],
        "/settings/profile/two-factor?required=1"
    );
    let (_, security) = target.get("/api/v1/account/security", &admin).await;
    assert_eq!(security, json!({"require_two_factor": true}));

    // The custom event type: listed, and accepted for new events.
    let (_, types) = target.get("/api/v1/event-types", &admin).await;
    assert!(
        types["event_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "Defect"),
        "{types}"
    );
    let again =
        json!({"id": "d-2", "event_type": "Defect", "action": "Triage", "actor": {"id": "u-1"}});
    assert_eq!(
        target.post("/api/v1/events", &acme.ingest, &again).await.0,
        201
    );
}
