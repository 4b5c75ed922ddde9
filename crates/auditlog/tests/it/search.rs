//! Search (`q`, SPEC "Search") end to end on the real binary, both
//! backends: every query of the table in `auditlog_core::search::cases`
//! through `GET /api/v1/events` (paged with cursors), the histogram (its
//! total, and its buckets in `tz`), an export's file and `auditlog search`,
//! each answering exactly the events the reference `Query::matches` picks
//! and, for the queries that do not name `source` (the API stores every
//! event with the ingest key as its source), exactly the table's events;
//! malformed queries are 400 `bad_query` with the position, and a second
//! account holding the same events is never reached.

use crate::helpers::{error_code, TestAccount, TestServer};
use auditlog_core::leaf_v2::Source;
use auditlog_core::search::cases::{event_values, CASES, ERRORS};
use auditlog_core::search::{Query, Zone};
use auditlog_core::StoredEvent;
use auditlog_store_postgres::test_support::TestDatabase;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Every case event is before this, every audit event of an export after.
const CASES_END: &str = "2026-12-02T00:00:00Z";

fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Sends the table's events; returns them as served (with the source the
/// server recorded), in seq order.
async fn send_cases(server: &TestServer, account: &TestAccount) -> Vec<(StoredEvent, Source)> {
    let mut stored = Vec::new();
    for (value, _) in event_values() {
        let (status, body) = server.post("/api/v1/events", &account.ingest, &value).await;
        assert_eq!(status, 201, "{body}");
        let id = value["id"].as_str().unwrap();
        let (status, served) = server
            .get(&format!("/api/v1/events/{id}"), &account.read)
            .await;
        assert_eq!(status, 200, "{served}");
        let map = served["event"].as_object().unwrap();
        let source = Source::from_json(&map["source"]).expect("a source");
        stored.push((StoredEvent::from_json_map(map).unwrap(), source));
    }
    stored
}

/// The ids the reference picks, newest first; and checks them against the
/// table when the query does not name `source`.
fn reference(case_query: &str, tz: &str, stored: &[(StoredEvent, Source)]) -> Vec<String> {
    let query = Query::parse(case_query, &Zone::parse(tz).unwrap()).unwrap();
    let mut hits: Vec<&StoredEvent> = stored
        .iter()
        .filter(|(e, s)| query.matches(e, Some(s)))
        .map(|(e, _)| e)
        .collect();
    if !case_query.contains("source") {
        let case = CASES
            .iter()
            .find(|c| c.query == case_query && c.tz == tz)
            .unwrap();
        let mut ids: Vec<&str> = hits.iter().map(|e| e.event().id()).collect();
        ids.sort_unstable();
        assert_eq!(ids, case.expect, "{case_query:?} in {tz}: the table");
    }
    hits.sort_by_key(|e| std::cmp::Reverse((e.event().time(), e.seq())));
    hits.iter().map(|e| e.event().id().to_string()).collect()
}

/// Pages of 3 through `GET /api/v1/events?q=…&tz=…`.
async fn api_ids(server: &TestServer, key: &str, q: &str, tz: &str, account: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!(
            "/api/v1/events?q={}&tz={}&to={}&limit=3",
            encode(q),
            encode(tz),
            encode(CASES_END)
        );
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = server.get(&path, key).await;
        assert_eq!(status, 200, "{q:?}: {body}");
        for event in body["events"].as_array().unwrap() {
            assert_eq!(event["account"], account, "{q:?}: another account's event");
            ids.push(event["id"].as_str().unwrap().to_string());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

async fn histogram(server: &TestServer, key: &str, q: &str, tz: &str, interval: &str) -> Value {
    let path = format!(
        "/api/v1/events/histogram?q={}&tz={}&to={}&interval={interval}",
        encode(q),
        encode(tz),
        encode(CASES_END)
    );
    let (status, body) = server.get(&path, key).await;
    assert_eq!(status, 200, "{q:?}: {body}");
    body
}

/// An export of `q` (with `to` before the exports' own audit events),
/// completed and downloaded as JSON Lines: its ids in file order.
async fn export_ids(server: &TestServer, key: &str, q: &str, tz: &str) -> Vec<String> {
    let body = json!({"format": "jsonl", "filters": {"q": q, "tz": tz, "to": CASES_END}});
    let (status, answer) = server.post("/api/v1/exports", key, &body).await;
    assert_eq!(status, 202, "{q:?}: {answer}");
    let id = answer["export"]["id"].clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = server.get(&format!("/api/v1/exports/{id}"), key).await;
        match body["export"]["status"].as_str() {
            Some("completed") => break,
            Some("queued" | "running") => {}
            other => panic!("{q:?}: export {other:?}: {body}"),
        }
        assert!(Instant::now() < deadline, "{q:?}: export never completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let file = server
        .http
        .get(server.url(&format!("/api/v1/exports/{id}/download")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    file.lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            event["id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// `auditlog search` on the server's store, as JSON Lines.
fn cli_ids(server: &TestServer, account: &str, q: &str, tz: &str) -> Vec<String> {
    let out = server.cli(
        &[
            "search",
            "--account",
            account,
            "--tz",
            tz,
            "--format",
            "jsonl",
            "--limit",
            "1000",
            q,
        ],
        "",
    );
    out.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        // The CLI takes no `to`: leave out the exports' own audit events.
        .filter(|event| event["event_type"] != "Audit Log")
        .map(|event| event["id"].as_str().unwrap().to_string())
        .collect()
}

async fn search_everywhere(server: &TestServer) {
    let acme = server.account("acme");
    let other = server.account("other");
    send_cases(server, &other).await;
    let stored = send_cases(server, &acme).await;
    assert!(CASES.len() >= 40);
    for case in CASES {
        let want = reference(case.query, case.tz, &stored);
        let what = format!("{:?} in {}", case.query, case.tz);
        assert_eq!(
            api_ids(server, &acme.read, case.query, case.tz, "acme").await,
            want,
            "{what}: API"
        );
        for interval in ["hour", "day", "week"] {
            let h = histogram(server, &acme.read, case.query, case.tz, interval).await;
            assert_eq!(h["total"], want.len(), "{what}: histogram total");
            let counted: u64 = h["buckets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["count"].as_u64().unwrap())
                .sum();
            assert_eq!(counted, want.len() as u64, "{what}: bucket counts");
        }
        assert_eq!(
            cli_ids(server, "acme", case.query, case.tz),
            want,
            "{what}: CLI"
        );
    }
    // Exports last: each adds its own audit events (after CASES_END).
    for case in CASES {
        let want = reference(case.query, case.tz, &stored);
        assert_eq!(
            export_ids(server, &acme.read, case.query, case.tz).await,
            want,
            "{:?} in {}: export",
            case.query,
            case.tz
        );
    }

    // Day buckets start at the zone's midnight: Kolkata is +05:30.
    let h = histogram(server, &acme.read, "", "Asia/Kolkata", "day").await;
    assert_eq!(h["total"], 8);
    for bucket in h["buckets"].as_array().unwrap() {
        let start = bucket["start"].as_str().unwrap();
        assert!(start.ends_with("T18:30:00.000000Z"), "{start}");
    }
    // e3 (23:30Z on 11-30) is on 12-01 in Kolkata, beside e4.
    let dec1 = h["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["start"] == "2026-11-30T18:30:00.000000Z")
        .unwrap();
    assert_eq!(dec1["count"], 2);

    // Malformed queries: 400 bad_query with the position in code points.
    for error in ERRORS {
        let (status, body) = server
            .get(
                &format!("/api/v1/events?q={}", encode(error.query)),
                &acme.read,
            )
            .await;
        assert_eq!(status, 400, "{:?}: {body}", error.query);
        assert_eq!(error_code(&body), "bad_query");
        let details = &body["error"]["details"];
        assert_eq!(details["position"], error.position, "{:?}", error.query);
        assert!(
            details["expected"]
                .as_str()
                .unwrap()
                .contains(error.expected),
            "{:?}: {body}",
            error.query
        );
    }
    let (status, body) = server
        .post(
            "/api/v1/exports",
            &acme.read,
            &json!({"format": "csv", "filters": {"q": "ünïcödé user:"}}),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "bad_query".into()));
    assert_eq!(body["error"]["details"]["position"], 13);
    let (status, body) = server
        .get("/api/v1/events/histogram?q=colour:red", &acme.read)
        .await;
    assert_eq!((status, error_code(&body)), (400, "bad_query".into()));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("type, action, user"),
        "{body}"
    );
    let (status, body) = server
        .get("/api/v1/events?q=ada&tz=Mars%2FBase", &acme.read)
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"]["field"], "tz");
    let out = crate::helpers::run_cli_on(
        &server.store_args,
        &["search", "--account", "acme", "action:Delete user:"],
        "",
    );
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("position 19"), "{said}");

    // The table format: a header and a line per event.
    let table = server.cli(&["search", "--account", "acme", "user:u-17"], "");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("time"), "{table}");
    assert!(
        lines[1].contains("e4") && lines[2].contains("e1"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_answers_the_table_through_the_api_exports_and_the_cli() {
    let server = TestServer::start();
    search_everywhere(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_answers_the_table_through_the_api_exports_and_the_cli_on_postgres() {
    let Some(database) = TestDatabase::create("search_answers_the_table") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let key_file = scratch.path().join("signing-key").display().to_string();
    let server = TestServer::start_on_database(
        &database.url,
        scratch.path(),
        &["--signing-key-file", &key_file],
    );
    search_everywhere(&server).await;
}
