//! Declared personal `details` paths end to end (issue 16): an admin key
//! declares `details.assignee` with `PUT /api/v1/account/personal-paths`;
//! an event sent afterwards has a commitment at that path in its leaf (the
//! proof's bytes hold no value there), is served with the plain value and
//! its opening, and rebuilds to its hash; one sent before keeps the value
//! in its leaf. Bad bodies are refused naming the field, a read key is
//! refused, the change is audited, and `verify` passes. Both backends.

use crate::helpers::*;
use auditlog_core::leaf;
use auditlog_core::leaf_v2::rebuild_leaf;
use auditlog_store_postgres::test_support::TestDatabase;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};

async fn put(server: &TestServer, key: &str, body: &Value) -> (u16, Value) {
    let response = server
        .http
        .put(server.url("/api/v1/account/personal-paths"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn event(id: &str) -> Value {
    json!({"id": id, "event_type": "Test Case", "action": "Update", "actor": {"id": "u-1"},
           "details": {"assignee": "Grace Hopper", "state": "open"}})
}

async fn proof_leaf(server: &TestServer, key: &str, id: &str) -> String {
    let (status, proof) = server.get(&format!("/api/v1/events/{id}/proof"), key).await;
    assert_eq!(status, 200, "{proof}");
    String::from_utf8(BASE64.decode(proof["leaf"].as_str().unwrap()).unwrap()).unwrap()
}

async fn declared_paths_apply_from_the_next_event(server: &TestServer, verify_args: &[String]) {
    let acme = server.account("acme");
    let admin = server.cli(
        &["key", "create", "--account", "acme", "--scope", "admin"],
        "",
    );
    let admin = admin.trim();
    let (status, body) = server
        .post("/api/v1/events", &acme.ingest, &event("before"))
        .await;
    assert_eq!(status, 201, "{body}");

    let (status, body) = put(server, &acme.read, &json!({"paths": ["details.assignee"]})).await;
    assert_eq!(status, 403, "{body}");
    for (bad, field) in [
        (json!({"paths": ["actor.email"]}), "paths[0]"),
        (json!({"paths": ["details.a", "details..b"]}), "paths[1]"),
        (json!({"paths": "details.a"}), "paths"),
        (json!({"paths": [], "extra": 1}), "extra"),
    ] {
        let (status, body) = put(server, admin, &bad).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(error_code(&body), "invalid_personal_paths");
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
    }
    let (status, body) = put(server, admin, &json!({"paths": ["details.assignee"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"paths": ["details.assignee"]}));
    let (status, body) = server.get("/api/v1/account/personal-paths", admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"paths": ["details.assignee"]}));

    let (status, body) = server
        .post("/api/v1/events", &acme.ingest, &event("after"))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.get("/api/v1/events/after", &acme.read).await;
    assert_eq!(status, 200, "{body}");
    let served = body["event"].clone();
    assert_eq!(served["details"]["assignee"], "Grace Hopper", "{served}");
    assert!(
        served["openings"]["details.assignee"].is_string(),
        "{served}"
    );
    let rebuilt = rebuild_leaf(&served).unwrap();
    assert_eq!(
        leaf::to_hex(&leaf::leaf_hash(&rebuilt)),
        served["hash"].as_str().unwrap()
    );
    let after = proof_leaf(server, &acme.read, "after").await;
    assert_eq!(after.as_bytes(), rebuilt.as_slice());
    assert!(!after.contains("Grace Hopper"), "{after}");
    assert!(after.contains("\"assignee\":{\"c\":"), "{after}");
    let before = proof_leaf(server, &acme.read, "before").await;
    assert!(before.contains("Grace Hopper"), "{before}");

    let (status, body) = server
        .get(
            "/api/v1/events?event_type=Auditlog%20Account&action=Update",
            &acme.read,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let audited = &body["events"][0];
    assert_eq!(
        audited["details"]["changes"],
        json!([{"field": "personal_paths", "old": [], "new": ["details.assignee"]}]),
        "{body}"
    );
    assert_eq!(audited["source"]["kind"], "api_key", "{audited}");
    let out = run_cli_on(verify_args, &["verify"], "");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_personal_paths_apply_from_the_next_event() {
    let server = TestServer::start();
    declared_paths_apply_from_the_next_event(&server, &server.store_args).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_personal_paths_apply_from_the_next_event_on_postgres() {
    let Some(database) = TestDatabase::create("declared_personal_paths") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let key_file = scratch.path().join("signing-key").display().to_string();
    let server = TestServer::start_on_database(
        &database.url,
        scratch.path(),
        &["--signing-key-file", &key_file],
    );
    let verify_args = vec![
        "--database-url".to_string(),
        database.url.clone(),
        "--signing-key-file".to_string(),
        key_file,
    ];
    declared_paths_apply_from_the_next_event(&server, &verify_args).await;
}
