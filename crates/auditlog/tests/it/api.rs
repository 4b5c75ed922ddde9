//! The HTTP API driven over real HTTP against the real binary: filters,
//! paging, idempotency, validation, limits, scopes and account isolation.

use crate::helpers::{error_code, TestAccount, TestServer};
use auditlog_core::{EventFilter, NewEvent, Taxonomy, Timestamp};
use serde_json::{json, Value};
use std::collections::HashMap;

const APPS: [&str; 3] = ["Web", "iOS", "API"];
const PROJECTS: [&str; 4] = ["Checkout", "Payments", "Mobile", "Search"];

/// Varied events: every type and action, 9 users, 4 projects and none,
/// apps, versions, targets, and times that collide so seq breaks ties.
fn varied_events(n: usize, prefix: &str) -> Vec<Value> {
    let taxonomy = Taxonomy::default();
    let pairs: Vec<(String, String)> = taxonomy
        .types
        .iter()
        .filter(|t| t.name != "Audit Log")
        .flat_map(|t| t.actions.iter().map(move |a| (t.name.clone(), a.clone())))
        .collect();
    let base = Timestamp::parse("t", "2026-10-01T00:00:00Z")
        .unwrap()
        .micros();
    (0..n)
        .map(|i| {
            let (event_type, action) = &pairs[(i * 7) % pairs.len()];
            let mut e = json!({
                "id": format!("{prefix}{i}"),
                "time": Timestamp::from_micros(base + ((i * 37) % (n / 2 + 1)) as i64 * 3_600_000_000).to_rfc3339(),
                // Mixed case on the way in; canonical spelling is stored.
                "event_type": if i % 3 == 0 { event_type.to_uppercase() } else { event_type.clone() },
                "action": action.to_lowercase(),
                "actor": {"id": format!("u-{}", i % 9), "name": format!("User {}", i % 9), "email": format!("u{}@example.com", i % 9)},
                "app": APPS[i % 3],
                "version": format!("{}.{}", 1 + i % 2, i % 4),
                "target": {"id": format!("TC-{}", i % 13), "name": format!("Case {}", i % 13)},
                "details": {"changes": [{"field": "title", "old": format!("v{i}"), "new": format!("v{}", i + 1)}]},
                "context": {"ip": format!("198.51.100.{}", i % 250), "user_agent": "test", "request_id": format!("r{i}")}
            });
            if i % 5 != 0 {
                e["project"] = json!(PROJECTS[i % 4]);
            }
            e
        })
        .collect()
}

async fn ingest_all(server: &TestServer, account: &TestAccount, events: &[Value]) -> Vec<u64> {
    let mut seqs = Vec::new();
    for chunk in events.chunks(100) {
        let (status, body) = server
            .post("/api/v1/events", &account.ingest, &json!({"events": chunk}))
            .await;
        assert_eq!(status, 201, "{body}");
        seqs.extend(
            body["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["seq"].as_u64().unwrap()),
        );
    }
    seqs
}

/// Pages through `query` with `limit`, returning event ids in the order served.
async fn page_all(server: &TestServer, key: &str, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/events?limit={limit}");
        if !query.is_empty() {
            path.push('&');
            path.push_str(query);
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = server.get(&path, key).await;
        assert_eq!(status, 200, "{path}: {body}");
        let events = body["events"].as_array().unwrap();
        assert!(events.len() <= limit);
        ids.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.replace("%20", " ").replace("%3A", ":"))
        })
        .collect()
}

#[tokio::test]
async fn every_filter_and_combination_returns_exactly_the_reference_events_newest_first() {
    let server = TestServer::start();
    let account = server.account("acme");
    let sent = varied_events(400, "e");
    let seqs = ingest_all(&server, &account, &sent).await;
    let taxonomy = Taxonomy::default();
    let now = Timestamp::now();
    let parsed: Vec<(NewEvent, u64)> = sent
        .iter()
        .zip(&seqs)
        .map(|(v, seq)| (NewEvent::parse(v, &taxonomy, now).unwrap(), *seq))
        .collect();

    let singles = [
        "event_type=Test%20Case",
        "event_type=test%20case",
        "event_type=Element&event_type=Environment",
        "action=Update",
        "action=LOGIN&action=Delete",
        "user=u-4",
        "user=u-1&user=u-2",
        "project=Checkout",
        "project=Payments&project=Search",
        "app=iOS",
        "version=2.1",
        "target_id=TC-5",
        "from=2026-10-03T00:00:00Z",
        "to=2026-10-02T12:00:00Z",
        "from=2026-10-02T00:00:00Z&to=2026-10-05T00:00:00Z",
    ];
    let mut cases: Vec<String> = vec![String::new()];
    cases.extend(singles.iter().map(|s| s.to_string()));
    // Every pair of different single filters.
    for (i, a) in singles.iter().enumerate() {
        for b in &singles[i + 1..] {
            // Time filters share a key; two of them could contradict each other.
            let key = |s: &str| {
                if s.contains("from=") || s.contains("to=") {
                    "time".to_string()
                } else {
                    s.split('=').next().unwrap().to_string()
                }
            };
            if key(a) != key(b) {
                cases.push(format!("{a}&{b}"));
            }
        }
    }
    cases.push("event_type=Test%20Case&action=Update&project=Checkout".into());
    cases.push("user=u-3&from=2026-10-02T00:00:00Z&to=2026-10-09T00:00:00Z".into());
    cases.push("app=Web&version=1.0&target_id=TC-0".into());

    for query in &cases {
        let mut filter = EventFilter::default();
        for (k, v) in query_pairs(query) {
            assert!(filter.add_param(&k, &v, &taxonomy).unwrap());
        }
        let mut want: Vec<&(NewEvent, u64)> =
            parsed.iter().filter(|(e, _)| filter.matches(e)).collect();
        want.sort_by_key(|w| std::cmp::Reverse((w.0.time(), w.1)));
        let want_ids: Vec<String> = want.iter().map(|(e, _)| e.id().to_string()).collect();
        let got = page_all(&server, &account.read, query, 37).await;
        assert_eq!(got, want_ids, "filter {query:?}");
        let (status, hist) = server
            .get(&format!("/api/v1/events/histogram?{query}"), &account.read)
            .await;
        assert_eq!(status, 200, "{hist}");
        assert_eq!(
            hist["total"].as_u64().unwrap() as usize,
            want_ids.len(),
            "histogram total for {query:?}"
        );
        let bucket_sum: u64 = hist["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        assert_eq!(bucket_sum, hist["total"].as_u64().unwrap());
    }
    // Stored in canonical spelling, with the server's fields added.
    let (_, one) = server.get("/api/v1/events/e0", &account.read).await;
    assert_eq!(one["event"]["event_type"], "Test Case");
    assert_eq!(one["event"]["action"], "Create");
    assert_eq!(one["event"]["account"], "acme");
    assert_eq!(one["event"]["seq"], 1);
    assert_eq!(one["event"]["hash"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn histogram_fills_empty_buckets_and_checks_interval() {
    let server = TestServer::start();
    let account = server.account("hist");
    let events: Vec<Value> = ["2026-10-01T10:00:00Z", "2026-10-01T23:59:59Z", "2026-10-04T00:00:00Z"]
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": format!("h{i}"), "time": t, "event_type": "Element", "action": "Create", "actor": {"id": "u"}}))
        .collect();
    ingest_all(&server, &account, &events).await;
    let (_, body) = server.get("/api/v1/events/histogram", &account.read).await;
    assert_eq!(body["interval"], "day");
    assert_eq!(body["total"], 3);
    let counts: Vec<(String, u64)> = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["start"].as_str().unwrap().to_string(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("2026-10-01T00:00:00.000000Z".to_string(), 2),
            ("2026-10-02T00:00:00.000000Z".to_string(), 0),
            ("2026-10-03T00:00:00.000000Z".to_string(), 0),
            ("2026-10-04T00:00:00.000000Z".to_string(), 1)
        ]
    );
    let (_, hourly) = server
        .get(
            "/api/v1/events/histogram?interval=hour&to=2026-10-02T00:00:00Z",
            &account.read,
        )
        .await;
    assert_eq!(hourly["buckets"].as_array().unwrap().len(), 14);
    let (status, bad) = server
        .get("/api/v1/events/histogram?interval=month", &account.read)
        .await;
    assert_eq!(
        (status, error_code(&bad).as_str()),
        (400, "invalid_parameter")
    );
    let (status, bad) = server
        .get("/api/v1/events/histogram?limit=5", &account.read)
        .await;
    assert_eq!(
        (status, error_code(&bad).as_str()),
        (400, "unknown_parameter")
    );
}

#[tokio::test]
async fn paging_while_another_task_ingests_visits_each_earlier_event_exactly_once() {
    let server = TestServer::start();
    let account = server.account("paging");
    ingest_all(&server, &account, &varied_events(600, "p")).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, http, url, key) = (
            stop.clone(),
            server.http.clone(),
            server.url("/api/v1/events"),
            account.ingest.clone(),
        );
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Times spread across the same range, so newcomers land among the pages.
                let batch = varied_events(20, &format!("late{i}-"));
                let response = http
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"events": batch}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 201);
                i += 1;
            }
            i
        })
    };
    let ids = page_all(&server, &account.read, "", 25).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let batches = writer.await.unwrap();
    assert!(batches > 0, "the writer must have ingested during paging");
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &ids {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    for i in 0..600 {
        assert_eq!(
            counts.get(format!("p{i}").as_str()),
            Some(&1),
            "p{i} must be visited exactly once"
        );
    }
    assert!(counts.values().all(|c| *c == 1), "no event visited twice");
}

#[tokio::test]
async fn idempotency_both_ways() {
    let server = TestServer::start();
    let account = server.account("idem");
    let event = json!({"id": "order-1", "event_type": "Test Plan", "action": "Create", "actor": {"id": "u-1"}, "project": "P"});
    let (status, first) = server.post("/api/v1/events", &account.ingest, &event).await;
    assert_eq!(status, 201, "{first}");
    // Same id and content (time left to the server both times): the original entry, 200.
    let (status, again) = server.post("/api/v1/events", &account.ingest, &event).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(first["events"][0]["created"], true);
    // The original receipt, marked as not new.
    let mut original = first["events"][0].clone();
    original["created"] = json!(false);
    assert_eq!(again["events"][0], original);
    // In a batch beside a new event: 201, the repeat keeps its original seq.
    let batch = json!({"events": [event, {"id": "order-2", "event_type": "Test Plan", "action": "Update", "actor": {"id": "u-1"}}]});
    let (status, mixed) = server.post("/api/v1/events", &account.ingest, &batch).await;
    assert_eq!(status, 201);
    assert_eq!(mixed["events"][0]["seq"], 1);
    assert_eq!(mixed["events"][1]["seq"], 2);
    assert_eq!(mixed["events"][0]["created"], false);
    assert_eq!(mixed["events"][1]["created"], true);
    // Same id, different content: 409, nothing stored.
    let changed = json!({"id": "order-1", "event_type": "Test Plan", "action": "Delete", "actor": {"id": "u-1"}, "project": "P"});
    let (status, conflict) = server
        .post("/api/v1/events", &account.ingest, &changed)
        .await;
    assert_eq!((status, error_code(&conflict).as_str()), (409, "conflict"));
    assert_eq!(conflict["error"]["details"]["id"], "order-1");
    // Within one batch, two different events with one id conflict too.
    let dup = json!({"events": [
        {"id": "x", "event_type": "Element", "action": "Create", "actor": {"id": "a"}},
        {"id": "x", "event_type": "Element", "action": "Delete", "actor": {"id": "a"}}]});
    let (status, _) = server.post("/api/v1/events", &account.ingest, &dup).await;
    assert_eq!(status, 409);
    let (_, all) = server.get("/api/v1/events", &account.read).await;
    assert_eq!(all["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_batch_with_one_bad_event_stores_nothing_and_names_the_index() {
    let server = TestServer::start();
    let account = server.account("batch");
    let mut events = varied_events(5, "b");
    events[3]["action"] = json!("Teleport");
    let (status, body) = server
        .post(
            "/api/v1/events",
            &account.ingest,
            &json!({"events": events}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (422, "invalid_events")
    );
    let details = body["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 1);
    assert_eq!(details[0]["index"], 3);
    assert_eq!(details[0]["errors"][0]["field"], "action");
    let (_, all) = server.get("/api/v1/events", &account.read).await;
    assert!(all["events"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn each_bad_input_class_gets_its_status_and_the_error_shape_with_nothing_stored() {
    let server = TestServer::start();
    let account = server.account("bad");
    let good = || json!({"event_type": "Test Case", "action": "Update", "actor": {"id": "u-1"}});
    let future = Timestamp::from_micros(Timestamp::now().micros() + 3_600_000_000).to_rfc3339();
    let mut cases: Vec<(&str, Value, u16, &str, &str)> = vec![];
    let mut with = |name, f: &dyn Fn(&mut Value), status, code, field| {
        let mut v = good();
        f(&mut v);
        cases.push((name, v, status, code, field));
    };
    with(
        "unknown type",
        &|v| v["event_type"] = json!("Rocket"),
        422,
        "invalid_events",
        "event_type",
    );
    with(
        "action not allowed",
        &|v| v["action"] = json!("Login"),
        422,
        "invalid_events",
        "action",
    );
    with(
        "missing actor.id",
        &|v| v["actor"] = json!({"name": "n"}),
        422,
        "invalid_events",
        "actor.id",
    );
    with(
        "unparseable time",
        &|v| v["time"] = json!("26/11/2026"),
        422,
        "invalid_events",
        "time",
    );
    with(
        "far-future time",
        &|v| v["time"] = json!(future),
        422,
        "invalid_events",
        "time",
    );
    with(
        "unknown field",
        &|v| v["severity"] = json!("high"),
        422,
        "invalid_events",
        "severity",
    );
    with(
        "over-long string",
        &|v| v["project"] = json!("p".repeat(201)),
        422,
        "invalid_events",
        "project",
    );
    with(
        "details not an object",
        &|v| v["details"] = json!("changed"),
        422,
        "invalid_events",
        "details",
    );
    with(
        "invalid ip",
        &|v| v["context"] = json!({"ip": "10.0.0.256"}),
        422,
        "invalid_events",
        "context.ip",
    );
    with(
        "NUL in a string",
        &|v| v["actor"]["id"] = json!("u\u{0}1"),
        422,
        "invalid_events",
        "actor.id",
    );
    with(
        "NUL inside details",
        &|v| v["details"] = json!({"changes": [{"field": "title", "new": "a\u{0}b"}]}),
        422,
        "invalid_events",
        "details.changes[0].new",
    );
    with(
        "details over 64 KiB",
        &|v| v["details"] = json!({"x": "y".repeat(66_000)}),
        422,
        "invalid_events",
        "details",
    );
    for (name, body, status, code, field) in cases {
        let (got, answer) = server.post("/api/v1/events", &account.ingest, &body).await;
        assert_eq!(got, status, "{name}: {answer}");
        assert_eq!(error_code(&answer), code, "{name}");
        assert_eq!(
            answer["error"]["details"][0]["errors"][0]["field"], field,
            "{name}: {answer}"
        );
    }

    let raw = |body: Vec<u8>, content_type: &'static str| {
        server
            .http
            .post(server.url("/api/v1/events"))
            .bearer_auth(&account.ingest)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = raw(b"{\"event_type\": ".to_vec(), "application/json")
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        error_code(&response.json().await.unwrap()),
        "malformed_json"
    );
    let response = raw(serde_json::to_vec(&good()).unwrap(), "text/plain")
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    assert_eq!(
        error_code(&response.json().await.unwrap()),
        "unsupported_media_type"
    );
    let too_many: Vec<Value> = (0..1_001).map(|_| good()).collect();
    let (status, body) = server
        .post(
            "/api/v1/events",
            &account.ingest,
            &json!({"events": too_many}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (413, "too_many_events")
    );
    let huge = vec![b' '; 10 * 1024 * 1024 + 1];
    let response = raw(huge, "application/json").await.unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(
        error_code(&response.json().await.unwrap()),
        "body_too_large"
    );
    let (status, body) = server
        .post("/api/v1/events", &account.ingest, &json!({"events": []}))
        .await;
    assert_eq!((status, error_code(&body).as_str()), (422, "invalid_batch"));

    // Bad query parameters: 400 naming the parameter.
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z", "from"),
        ("cursor=not-a-cursor", "cursor"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("colour=red", "colour"),
        ("event_type=Rocket", "event_type"),
    ] {
        let (status, body) = server
            .get(&format!("/api/v1/events?{query}"), &account.read)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        error_code(&body);
        assert_eq!(body["error"]["details"]["field"], field, "{query}: {body}");
    }

    let (_, all) = server.get("/api/v1/events", &account.read).await;
    assert!(
        all["events"].as_array().unwrap().is_empty(),
        "nothing stored: {all}"
    );
}

#[tokio::test]
async fn scopes_and_account_isolation_hold() {
    let server = TestServer::start();
    let a = server.account("alpha");
    let b = server.account("beta");
    let event = json!({"id": "secret-1", "event_type": "Access Bridge", "action": "Create", "actor": {"id": "u"}});
    let (status, _) = server.post("/api/v1/events", &a.ingest, &event).await;
    assert_eq!(status, 201);

    let response = server
        .http
        .get(server.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        error_code(&response.json().await.unwrap()),
        "missing_api_key"
    );
    let (status, body) = server.get("/api/v1/events", "alk_not-a-real-key").await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (401, "invalid_api_key")
    );
    let (status, body) = server.get("/api/v1/events", &a.ingest).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "insufficient_scope")
    );
    let (status, body) = server.post("/api/v1/events", &a.read, &event).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "insufficient_scope")
    );
    // An admin key reads (it implies read) but does not send.
    let admin = server.cli(
        &["key", "create", "--account", "alpha", "--scope", "admin"],
        "",
    );
    let admin = admin.trim();
    let (status, _) = server.get("/api/v1/events/secret-1", admin).await;
    assert_eq!(status, 200, "admin implies read");
    let (status, body) = server.post("/api/v1/events", admin, &event).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "insufficient_scope")
    );

    let (status, body) = server.get("/api/v1/events/secret-1", &b.read).await;
    assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));
    let (_, list) = server.get("/api/v1/events", &b.read).await;
    assert!(list["events"].as_array().unwrap().is_empty());
    let (_, hist) = server.get("/api/v1/events/histogram", &b.read).await;
    assert_eq!(hist["total"], 0);
    let (status, mine) = server.get("/api/v1/events/secret-1", &a.read).await;
    assert_eq!(status, 200);
    assert_eq!(mine["event"]["account"], "alpha");
    // The same id in another account is that account's own event.
    let (status, theirs) = server.post("/api/v1/events", &b.ingest, &event).await;
    assert_eq!(status, 201);
    assert_eq!(theirs["events"][0]["seq"], 1);
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let server = TestServer::start();
    for path in ["/healthz", "/readyz", "/api/v1/openapi.json"] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body.is_object(), "{path}");
    }
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("auditlog_events_stored_total 0"));
    let response = server
        .http
        .get(server.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(error_code(&response.json().await.unwrap()), "not_found");
}
