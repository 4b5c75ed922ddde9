//! Account administration over HTTP (issue 18): API keys with names,
//! expiry and revocation through `/api/v1/keys` and the CLI, each change an
//! `Auditlog API Key` event with exact old → new values; the reserved event
//! types clients may not send; the console's role × page table; and, on two
//! servers sharing one PostgreSQL database, a key revoked through one is
//! refused by the other within 5 s. Run on both backends.

use crate::console::{add_user, Visitor, PASSWORD};
use crate::helpers::{error_code, TestServer};
use auditlog_core::Timestamp;
use auditlog_store_postgres::test_support::TestDatabase;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn delete(server: &TestServer, path: &str, key: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .delete(server.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn event(event_type: &str, action: &str) -> Value {
    json!({"event_type": event_type, "action": action, "actor": {"id": "u-1"}})
}

/// Every bit of this sequence runs on each backend.
async fn keys_and_reserved_types(server: &TestServer) {
    let acme = server.account("acme");
    let admin = server
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

    // Auditlog's own types cannot be forged; the 422 names the type.
    for reserved in ["Audit Log", "Auditlog User", "auditlog api key"] {
        let (status, body) = server
            .post("/api/v1/events", &acme.ingest, &event(reserved, "Export"))
            .await;
        assert_eq!(status, 422, "{reserved}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("{reserved:?}")), "{message}");
        assert_eq!(
            body["error"]["details"][0]["errors"][0]["rule"],
            "reserved_event_type"
        );
    }

    // Only the admin scope manages keys.
    for key in [&acme.ingest, &acme.read] {
        let (status, body) = server.get("/api/v1/keys", key).await;
        assert_eq!(
            (status, error_code(&body)),
            (403, "insufficient_scope".into())
        );
    }
    let (status, body) = server.get("/api/v1/keys", "alk_nope").await;
    assert_eq!((status, error_code(&body)), (401, "invalid_api_key".into()));

    // Bad requests name the field.
    for (body, field, rule) in [
        (json!({"scopes": ["read"]}), "name", "required"),
        (json!({"name": "x", "scopes": []}), "scopes", "required"),
        (
            json!({"name": "x", "scopes": ["write"]}),
            "scopes",
            "unknown_scope",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
            "in_the_past",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "secret": "mine"}),
            "secret",
            "unknown_field",
        ),
    ] {
        let (status, answer) = server.post("/api/v1/keys", &admin, &body).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(
            answer["error"]["details"],
            json!({"field": field, "rule": rule}),
            "{body}"
        );
    }

    // Create: the secret once; the listing shows the prefix, never the secret.
    let (status, created) = server
        .post(
            "/api/v1/keys",
            &admin,
            &json!({"name": "ci", "scopes": ["ingest"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    let key_id = created["key"]["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("alk_") && key_id.starts_with("key_"));
    assert_eq!(created["key"]["prefix"], json!(&secret[..8]));
    assert_eq!(created["key"]["status"], "active");
    assert_eq!(created["key"]["scopes"], json!(["ingest"]));
    assert!(created["key"]["created_by"]
        .as_str()
        .unwrap()
        .starts_with("api-key:"));
    let (status, _) = server
        .post("/api/v1/events", &secret, &event("Element", "Create"))
        .await;
    assert_eq!(status, 201, "the new key works at once");
    // Its use is noted to the minute (off the request's path).
    let deadline = Instant::now() + Duration::from_secs(5);
    let listed = loop {
        let (_, list) = server.get("/api/v1/keys", &admin).await;
        let key = list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == json!(key_id))
            .cloned()
            .unwrap();
        if !key["last_used_at"].is_null() || Instant::now() > deadline {
            assert!(
                !list.to_string().contains(&secret),
                "no secret in a listing"
            );
            break key;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let last_used = listed["last_used_at"].as_str().expect("last use noted");
    assert!(
        last_used.ends_with(":00.000000Z"),
        "to the minute: {last_used}"
    );

    // Revoke: refused at once on this server; a second revoke changes nothing.
    let (status, revoked) = delete(server, &format!("/api/v1/keys/{key_id}"), &admin).await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["key"]["status"], "revoked");
    let (status, body) = server
        .post("/api/v1/events", &secret, &event("Element", "Create"))
        .await;
    assert_eq!((status, error_code(&body)), (401, "invalid_api_key".into()));
    let (status, again) = delete(server, &format!("/api/v1/keys/{key_id}"), &admin).await;
    assert_eq!(status, 200);
    assert_eq!(again["key"]["revoked_at"], revoked["key"]["revoked_at"]);
    let (status, body) = delete(server, "/api/v1/keys/key_nope", &admin).await;
    assert_eq!((status, error_code(&body)), (404, "key_not_found".into()));

    // An expired key is refused.
    let soon = Timestamp::from_micros(Timestamp::now().micros() + 1_500_000).to_rfc3339();
    let (status, short) = server
        .post(
            "/api/v1/keys",
            &admin,
            &json!({"name": "short", "scopes": ["read"], "expires_at": soon}),
        )
        .await;
    assert_eq!(status, 201, "{short}");
    let short_secret = short["secret"].as_str().unwrap();
    assert_eq!(server.get("/api/v1/events", short_secret).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let (status, body) = server.get("/api/v1/events", short_secret).await;
    assert_eq!((status, error_code(&body)), (401, "invalid_api_key".into()));

    // The CLI lists and revokes (as the operator), with the same effect.
    let cli_key = server
        .cli(
            &[
                "key",
                "create",
                "--account",
                "acme",
                "--scope",
                "read",
                "--name",
                "nightly",
                "--expires",
                "30d",
            ],
            "",
        )
        .trim()
        .to_string();
    let table = server.cli(&["key", "list", "--account", "acme"], "");
    let row = table.lines().find(|l| l.contains("\tnightly\t")).unwrap();
    let cli_id = row.split('\t').next().unwrap().to_string();
    assert!(row.contains(&cli_key[..8]) && row.contains("\tactive\t") && row.contains("\tcli:"));
    assert!(!table.contains(&cli_key[8..]), "no secret in the listing");
    assert!(table.contains(&format!("{key_id}\tci\t")) && table.contains("\trevoked\t"));
    assert!(table.contains("\texpired\t"));
    assert_eq!(server.get("/api/v1/events", &cli_key).await.0, 200);
    server.cli(&["key", "revoke", "--account", "acme", &cli_id], "");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/api/v1/events", &cli_key).await.0 != 401 {
        assert!(
            Instant::now() < deadline,
            "a key revoked by the CLI still works after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every change is an `Auditlog API Key` event with exact old → new values.
    let (status, page) = server
        .get(
            "/api/v1/events?event_type=auditlog%20api%20key&limit=100",
            &admin,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let mut events: Vec<Value> = page["events"].as_array().unwrap().clone();
    events.reverse();
    // Keys created at the shell are not events (they bootstrap an account);
    // a revocation at the shell is the operator's (`source` system).
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["target"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let (_, list) = server.get("/api/v1/keys", &admin).await;
    let admin_id = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ops")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let short_id = short["key"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        summary,
        [
            ("Create", key_id.as_str()),
            ("Revoke", key_id.as_str()),
            ("Create", short_id.as_str()),
            ("Revoke", cli_id.as_str()),
        ]
        .map(|(a, t)| (a.to_string(), t.to_string()))
    );
    assert_eq!(events[3]["source"], json!({"kind": "system"}));
    assert!(events[3]["actor"]["id"]
        .as_str()
        .unwrap()
        .starts_with("cli:"));
    // The API's are the admin key's.
    for event in &events[..3] {
        assert_eq!(
            event["source"],
            json!({"kind": "api_key", "key": admin_id, "name": "ops"})
        );
        assert!(event["actor"]["id"]
            .as_str()
            .unwrap()
            .starts_with("api-key:"));
    }
    assert_eq!(
        events[0]["details"]["changes"],
        json!([
            {"field": "name", "old": null, "new": "ci"},
            {"field": "scopes", "old": null, "new": ["ingest"]},
            {"field": "expires_at", "old": null, "new": null},
        ])
    );
    assert_eq!(
        events[1]["details"]["changes"],
        json!([{"field": "revoked_at", "old": null, "new": revoked["key"]["revoked_at"]}])
    );
    assert_eq!(
        events[2]["details"]["changes"][2],
        json!({"field": "expires_at", "old": null, "new": short["key"]["expires_at"]})
    );
    let all = page.to_string();
    for secret in [&secret, &cli_key, &admin, &short_secret.to_string()] {
        assert!(!all.contains(&secret[4..]), "no secret in an audit event");
    }
}

#[tokio::test]
async fn keys_are_named_expire_revoke_and_are_audited_and_reserved_types_are_refused() {
    let server = TestServer::start();
    keys_and_reserved_types(&server).await;
    // No key secret anywhere in the store's files.
    let admin = server.cli(
        &["key", "create", "--account", "acme", "--scope", "admin"],
        "",
    );
    let (status, list) = server
        .post(
            "/api/v1/keys",
            admin.trim(),
            &json!({"name": "grep me", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(status, 201);
    let secret = list["secret"].as_str().unwrap();
    let mut found = Vec::new();
    for entry in walk(&server.data_dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        if bytes
            .windows(secret.len() - 4)
            .any(|w| w == &secret.as_bytes()[4..])
        {
            found.push(entry);
        }
    }
    assert!(found.is_empty(), "the secret is stored in {found:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn keys_are_named_expire_revoke_and_are_audited_on_postgres() {
    let Some(database) = TestDatabase::create("keys_are_named_expire_revoke_and_are_audited")
    else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_database(&database.url, scratch.path(), &[]);
    keys_and_reserved_types(&server).await;
}

#[tokio::test]
async fn a_key_revoked_on_one_server_is_refused_by_the_other_within_5_s() {
    let Some(database) = TestDatabase::create("a_key_revoked_on_one_server_is_refused") else {
        return;
    };
    let scratch = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = TestServer::start_on_database(&database.url, scratch[0].path(), &[]);
    let b = TestServer::start_on_database(&database.url, scratch[1].path(), &[]);
    let acme = a.account("acme");
    let admin = a
        .cli(
            &["key", "create", "--account", "acme", "--scope", "admin"],
            "",
        )
        .trim()
        .to_string();
    // Server B has verified (and cached) the key before it is revoked.
    for _ in 0..3 {
        assert_eq!(b.get("/api/v1/events", &acme.read).await.0, 200);
    }
    let (_, list) = a.get("/api/v1/keys", &admin).await;
    let read_id = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scopes"] == json!(["read"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = delete(&a, &format!("/api/v1/keys/{read_id}"), &admin).await;
    assert_eq!(status, 200);
    let revoked_at = Instant::now();
    assert_eq!(
        a.get("/api/v1/events", &acme.read).await.0,
        401,
        "at once here"
    );
    loop {
        let status = b.get("/api/v1/events", &acme.read).await.0;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "server B still accepts a revoked key after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "refused on the other server after {:?}",
        revoked_at.elapsed()
    );
}

/// Which console pages each role may open (the 403 page otherwise).
async fn console_role_table(server: &TestServer) {
    server.account("acme");
    for (email, role) in [
        ("ada@acme.test", "admin"),
        ("aud@acme.test", "auditor"),
        ("mia@acme.test", "member"),
    ] {
        add_user(server, "acme", email, role);
    }
    let table: [(&str, [u16; 3]); 8] = [
        ("/settings/audit-logs", [200, 200, 403]),
        ("/settings/exports", [200, 200, 403]),
        ("/settings/exports/new", [200, 200, 403]),
        ("/settings/log-streams", [200, 403, 403]),
        ("/settings/log-streams/new", [200, 403, 403]),
        ("/settings/event-types", [200, 403, 403]),
        ("/settings/api-keys", [200, 403, 403]),
        // Everyone's own two-factor sign-in.
        ("/settings/profile/two-factor", [200, 200, 200]),
    ];
    for (column, email) in ["ada@acme.test", "aud@acme.test", "mia@acme.test"]
        .into_iter()
        .enumerate()
    {
        let mut visitor = Visitor::new(server);
        let (status, _, _) = visitor.sign_in("acme", email, PASSWORD, "/").await;
        assert_eq!(status, 303, "{email} signs in");
        let (_, _, home) = visitor.get("/settings/exports").await;
        for (path, expected) in &table {
            let (status, _, page) = visitor.get(path).await;
            assert_eq!(status, expected[column], "{email} {path}");
            if status == 403 {
                assert!(page.contains("Not allowed"), "{email} {path}: the 403 page");
            }
        }
        // Navigation offers only what the role may open.
        let shows_streams = home.contains("href=\"/settings/log-streams\"");
        assert_eq!(shows_streams, column == 0, "{email}: Log Streams link");
        for link in ["/settings/event-types", "/settings/api-keys"] {
            let shown = home.contains(&format!("href=\"{link}\""));
            assert_eq!(shown, column == 0, "{email}: the {link} link");
        }
    }
}

#[tokio::test]
async fn console_pages_follow_the_role() {
    let server = TestServer::start();
    console_role_table(&server).await;
}

#[tokio::test]
async fn console_pages_follow_the_role_on_postgres() {
    let Some(database) = TestDatabase::create("console_pages_follow_the_role") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_database(&database.url, scratch.path(), &[]);
    console_role_table(&server).await;
}
