//! Custom event types and actions over HTTP (issue 18), on both backends:
//! an admin key adds a type with its actions and an action to it, retires
//! an action and a type (new events of them are 422 naming them, stored
//! ones stay valid and filterable), reserved names cannot be added, a
//! customer's own `User` type works, and every change is an `Auditlog
//! Account` event with the exact old → new value. On two servers sharing a
//! PostgreSQL database, a type added or retired through one is accepted or
//! refused by the other within 5 s.

use crate::helpers::{error_code, TestServer};
use auditlog_store_postgres::test_support::TestDatabase;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn event(event_type: &str, action: &str) -> Value {
    json!({"event_type": event_type, "action": action, "actor": {"id": "u-1"}})
}

fn admin_key(server: &TestServer, account: &str) -> String {
    server
        .cli(
            &[
                "key",
                "create",
                "--account",
                account,
                "--scope",
                "admin",
                "--name",
                "ops",
            ],
            "",
        )
        .trim()
        .to_string()
}

/// The first error of a refused event: `(rule, message)`.
fn refusal(body: &Value) -> (String, String) {
    let error = &body["error"]["details"][0]["errors"][0];
    (
        error["rule"].as_str().unwrap_or_default().to_string(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

async fn taxonomy_story(server: &TestServer) {
    let acme = server.account("acme");
    let admin = admin_key(server, "acme");

    // Anyone who reads sees the taxonomy; only admin keys change it.
    let (status, list) = server.get("/api/v1/event-types", &acme.read).await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Test Case") && !names.contains(&"Defect"),
        "{names:?}"
    );
    assert_eq!(
        list["event_types"][0]["actions"][0],
        json!({"name": "Create", "status": "active"})
    );
    let defect = json!({"name": "Defect", "actions": ["Triage"]});
    for key in [&acme.ingest, &acme.read] {
        let (status, body) = server.post("/api/v1/event-types", key, &defect).await;
        assert_eq!(
            (status, error_code(&body)),
            (403, "insufficient_scope".into())
        );
    }
    let (status, body) = server
        .post("/api/v1/events", &acme.ingest, &event("Defect", "Triage"))
        .await;
    assert_eq!(status, 422, "unknown before it is added: {body}");

    // Add: accepted at once.
    let (status, added) = server.post("/api/v1/event-types", &admin, &defect).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(
        added["event_type"],
        json!({"name": "Defect", "status": "active", "actions": [{"name": "Triage", "status": "active"}]})
    );
    let (status, body) = server
        .post("/api/v1/events", &acme.ingest, &event("defect", "triage"))
        .await;
    assert_eq!(status, 201, "{body}");

    // Refusals name the field and the rule.
    for (body, status, field, rule) in [
        (
            json!({"name": "Audit Log", "actions": ["Export"]}),
            422,
            "name",
            "reserved_event_type",
        ),
        (
            json!({"name": "Auditlog User", "actions": ["Create"]}),
            422,
            "name",
            "reserved_event_type",
        ),
        (
            json!({"name": "auditlog thing", "actions": ["X"]}),
            422,
            "name",
            "reserved_event_type",
        ),
        (
            json!({"name": "DEFECT", "actions": ["X"]}),
            409,
            "name",
            "already_exists",
        ),
        (
            json!({"name": "Bug", "actions": []}),
            422,
            "actions",
            "invalid_length",
        ),
        (
            json!({"name": "Bug", "actions": ["A", "a"]}),
            422,
            "actions",
            "repeated",
        ),
        (
            json!({"name": "", "actions": ["A"]}),
            422,
            "name",
            "invalid_length",
        ),
        (json!({"actions": ["A"]}), 422, "name", "required"),
        (
            json!({"name": "Bug", "actions": ["A"], "x": 1}),
            422,
            "x",
            "unknown_field",
        ),
    ] {
        let (got, answer) = server.post("/api/v1/event-types", &admin, &body).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(
            answer["error"]["details"],
            json!({"field": field, "rule": rule}),
            "{body}"
        );
    }

    // A customer's own `User` type is theirs; Auditlog's are still refused.
    let (status, body) = server
        .post(
            "/api/v1/event-types",
            &admin,
            &json!({"name": "User", "actions": ["Create", "Delete"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .post("/api/v1/events", &acme.ingest, &event("User", "Create"))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .post(
            "/api/v1/events",
            &acme.ingest,
            &event("Auditlog User", "Create"),
        )
        .await;
    assert_eq!(
        (status, refusal(&body).0),
        (422, "reserved_event_type".into())
    );

    // Add an action, use it, retire it: refused for new events, naming it.
    let (status, body) = server
        .post(
            "/api/v1/event-types/Defect/actions",
            &admin,
            &json!({"name": "Close"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["event_type"]["actions"][1],
        json!({"name": "Close", "status": "active"})
    );
    let (status, _) = server
        .post("/api/v1/events", &acme.ingest, &event("Defect", "Close"))
        .await;
    assert_eq!(status, 201);
    let (status, body) = server
        .post(
            "/api/v1/event-types/defect/actions",
            &admin,
            &json!({"name": "close"}),
        )
        .await;
    assert_eq!((status, error_code(&body)), (409, "already_exists".into()));
    let (status, body) = server
        .post(
            "/api/v1/event-types/No%20Such/actions",
            &admin,
            &json!({"name": "X"}),
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "not_found".into()));
    let (status, body) = server
        .post(
            "/api/v1/event-types/Defect/actions/close/retire",
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["event_type"]["actions"][1],
        json!({"name": "Close", "status": "retired"})
    );
    let (status, body) = server
        .post("/api/v1/events", &acme.ingest, &event("Defect", "Close"))
        .await;
    let (rule, message) = refusal(&body);
    assert_eq!((status, rule.as_str()), (422, "retired_action"), "{body}");
    assert!(
        message.contains("\"Close\"") && message.contains("\"Defect\""),
        "{message}"
    );
    let (status, _) = server
        .post("/api/v1/events", &acme.ingest, &event("Defect", "Triage"))
        .await;
    assert_eq!(status, 201, "the type's other actions still work");

    // Retire the type (on a batch: all or nothing, the index named).
    let (status, body) = server
        .post("/api/v1/event-types/Defect/retire", &admin, &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["event_type"]["status"], "retired");
    let batch = json!({"events": [event("Element", "Create"), event("Defect", "Triage")]});
    let (status, body) = server.post("/api/v1/events", &acme.ingest, &batch).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["index"], 1);
    assert_eq!(
        body["error"]["details"][0]["errors"][0]["rule"],
        "retired_event_type"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"Defect\""),
        "{body}"
    );
    // Retiring again changes nothing; reserved and unknown types cannot be retired.
    let (status, _) = server
        .post("/api/v1/event-types/Defect/retire", &admin, &json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = server
        .post("/api/v1/event-types/Audit%20Log/retire", &admin, &json!({}))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "invalid_event_type".into())
    );
    let (status, body) = server
        .post("/api/v1/event-types/Nope/retire", &admin, &json!({}))
        .await;
    assert_eq!((status, error_code(&body)), (404, "not_found".into()));

    // Stored events of the retired type stay valid and filterable.
    for path in [
        "/api/v1/events?event_type=defect",
        "/api/v1/events?q=type:Defect",
    ] {
        let (status, page) = server.get(path, &acme.read).await;
        assert_eq!(status, 200, "{path}: {page}");
        let mut actions: Vec<&str> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        actions.sort_unstable();
        assert_eq!(actions, ["Close", "Triage", "Triage"], "{path}");
    }
    let (_, list) = server.get("/api/v1/event-types", &acme.read).await;
    let listed = list["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Defect")
        .cloned()
        .unwrap();
    assert_eq!(
        listed,
        json!({"name": "Defect", "status": "retired", "actions": [
            {"name": "Triage", "status": "active"},
            {"name": "Close", "status": "retired"},
        ]})
    );

    // Every change is an `Auditlog Account` `Update` with exact old → new
    // values, by the admin key; the no-op retire added nothing.
    let (status, page) = server
        .get(
            "/api/v1/events?event_type=Auditlog%20Account&limit=100",
            &admin,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let mut events = page["events"].as_array().unwrap().clone();
    events.reverse();
    let changes: Vec<Value> = events
        .iter()
        .map(|e| {
            assert_eq!(e["action"], "Update");
            assert_eq!(e["source"]["kind"], "api_key");
            assert!(e["actor"]["id"].as_str().unwrap().starts_with("api-key:"));
            e["details"]["changes"].clone()
        })
        .collect();
    assert_eq!(
        changes,
        [
            json!([{"field": "event_types", "old": null, "new": {"name": "Defect", "actions": ["Triage"]}}]),
            json!([{"field": "event_types", "old": null, "new": {"name": "User", "actions": ["Create", "Delete"]}}]),
            json!([{"field": "event_types.Defect.actions", "old": ["Triage"], "new": ["Triage", "Close"]}]),
            json!([{"field": "event_types.Defect.actions.Close.status", "old": "active", "new": "retired"}]),
            json!([{"field": "event_types.Defect.status", "old": "active", "new": "retired"}]),
        ]
    );
}

#[tokio::test]
async fn custom_event_types_are_added_retired_and_audited() {
    let server = TestServer::start();
    taxonomy_story(&server).await;
}

#[tokio::test]
async fn custom_event_types_are_added_retired_and_audited_on_postgres() {
    let Some(database) = TestDatabase::create("custom_event_types_are_added_retired") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_database(&database.url, scratch.path(), &[]);
    taxonomy_story(&server).await;
}

/// Polls `server` with an event of `event_type`/`action` until it answers
/// `wanted`; returns how long that took, failing after 5 s.
async fn within_5_s(
    server: &TestServer,
    key: &str,
    event_type: &str,
    action: &str,
    wanted: u16,
    since: Instant,
) -> Duration {
    loop {
        let (status, body) = server
            .post("/api/v1/events", key, &event(event_type, action))
            .await;
        if status == wanted {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "the other server still answers {status} after 5 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_taxonomy_change_on_one_server_applies_on_the_other_within_5_s() {
    let Some(database) = TestDatabase::create("a_taxonomy_change_applies_on_the_other") else {
        return;
    };
    let scratch = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = TestServer::start_on_database(&database.url, scratch[0].path(), &[]);
    let b = TestServer::start_on_database(&database.url, scratch[1].path(), &[]);
    let acme = a.account("acme");
    let admin = admin_key(&a, "acme");
    // Server B has verified (and cached, with its taxonomy) the ingest key.
    for _ in 0..3 {
        let (status, _) = b
            .post("/api/v1/events", &acme.ingest, &event("Element", "Create"))
            .await;
        assert_eq!(status, 201);
    }

    let (status, _) = a
        .post(
            "/api/v1/event-types",
            &admin,
            &json!({"name": "Defect", "actions": ["Triage"]}),
        )
        .await;
    assert_eq!(status, 201);
    let added = Instant::now();
    let (status, _) = a
        .post("/api/v1/events", &acme.ingest, &event("Defect", "Triage"))
        .await;
    assert_eq!(status, 201, "at once on the server that made the change");
    let took = within_5_s(&b, &acme.ingest, "Defect", "Triage", 201, added).await;
    println!("an added type was accepted by the other server after {took:?}");

    // B has the taxonomy with Defect active in its cache now.
    let (status, _) = b
        .post("/api/v1/events", &acme.ingest, &event("Defect", "Triage"))
        .await;
    assert_eq!(status, 201);
    let (status, _) = a
        .post("/api/v1/event-types/Defect/retire", &admin, &json!({}))
        .await;
    assert_eq!(status, 200);
    let retired = Instant::now();
    let (status, body) = a
        .post("/api/v1/events", &acme.ingest, &event("Defect", "Triage"))
        .await;
    assert_eq!(
        (status, refusal(&body).0),
        (422, "retired_event_type".into()),
        "at once here"
    );
    let took = within_5_s(&b, &acme.ingest, "Defect", "Triage", 422, retired).await;
    println!("a retired type was refused by the other server after {took:?}");
    // Stored ones stay readable through either server.
    let (status, page) = b.get("/api/v1/events?event_type=Defect", &acme.read).await;
    assert_eq!(status, 200);
    assert!(!page["events"].as_array().unwrap().is_empty());
}
