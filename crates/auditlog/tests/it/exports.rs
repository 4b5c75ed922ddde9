//! Exports end to end, on the real binary: content equal to the reference
//! filter's events (CSV read back with a CSV parser, JSON Lines, gzip), the
//! list newest first, 409 before completion, 410 after expiry, 404 across
//! accounts, restart safety after SIGKILL, the CLI, and the `Audit Log`
//! events of every export and download.

use crate::helpers::{error_code, TestServer};
use auditlog_core::{EventFilter, NewEvent, Taxonomy, Timestamp};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::time::{Duration, Instant};

/// One sent event with what the server answered for it.
#[derive(Clone, Debug)]
struct Sent {
    json: Value,
    event: NewEvent,
    seq: u64,
    hash: String,
}

/// Events with every awkward cell: commas, quotes, line breaks, non-ASCII,
/// and values starting with `=`, `+`, `-`, `@` and tab. Times repeat in
/// pairs so that ties are ordered by `seq`.
fn fixture(n: usize, first: usize) -> Vec<Value> {
    let types = ["Test Case", "Test Suite", "Element", "Environment"];
    let actions = ["Create", "Update", "Delete"];
    let projects = [
        "Checkout",
        "=cmd|' /C calc'!A0",
        "+Plus, \"quoted\"",
        "Ünïcödé ✓ 日本",
        "-minus\nsecond line",
    ];
    (first..first + n)
        .map(|i| {
            let seconds = 1_767_225_600 + (i / 2) as i64 * 7; // from 2026-01-01, in pairs
            let time = Timestamp::from_micros(seconds * 1_000_000).to_rfc3339();
            let mut event = json!({
                "id": format!("ev,{i}"),
                "time": time,
                "event_type": types[i % types.len()],
                "action": actions[(i / 4) % actions.len()],
                "actor": {"id": format!("u-{}", i % 5), "name": if i % 3 == 0 { "Ada, \"the\" Countess" } else { "Grace Hopper" }, "email": "@ada@example.com"},
                "app": if i % 2 == 0 { "-Web" } else { "Mobile" },
                "version": format!("@{}", i % 3),
                "target": {"id": format!("TC-{}", i % 17), "name": "Login\r\nwith SSO, \"fast\""},
                "details": {"changes": [{"field": "title", "old": "a,b", "new": format!("say \"hi\" {i}\n=SUM(A1)")}]},
                "context": {"ip": format!("203.0.113.{}", i % 250), "user_agent": "\tMozilla/5.0 (X11; Linux)"}
            });
            if i % 7 != 0 {
                event["project"] = json!(projects[i % projects.len()]);
            }
            event
        })
        .collect()
}

async fn send(server: &TestServer, key: &str, events: Vec<Value>) -> Vec<Sent> {
    let mut sent = Vec::new();
    let now = Timestamp::now();
    for batch in events.chunks(1_000) {
        let (status, body) = server
            .post("/api/v1/events", key, &json!({"events": batch}))
            .await;
        assert_eq!(status, 201, "{body}");
        for (value, receipt) in batch.iter().zip(body["events"].as_array().unwrap()) {
            sent.push(Sent {
                event: NewEvent::parse(value, &Taxonomy::default(), now).unwrap(),
                json: value.clone(),
                seq: receipt["seq"].as_u64().unwrap(),
                hash: receipt["hash"].as_str().unwrap().to_string(),
            });
        }
    }
    sent
}

/// The reference answer: what `filter` selects from `sent`, newest first.
fn reference(sent: &[Sent], filter: &Value) -> Vec<Sent> {
    let filter = EventFilter::from_json(filter, &Taxonomy::default()).unwrap();
    let mut chosen: Vec<Sent> = sent
        .iter()
        .filter(|s| filter.matches(&s.event))
        .cloned()
        .collect();
    chosen.sort_by_key(|s| std::cmp::Reverse((s.event.time(), s.seq)));
    chosen
}

/// SPEC's formula neutralising, written independently of the server's.
fn neutral(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_string(),
    }
}

fn expected_row(s: &Sent) -> Vec<String> {
    let j = &s.json;
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    vec![
        text(&j["time"]),
        s.seq.to_string(),
        text(&j["event_type"]),
        text(&j["action"]),
        text(&j["project"]),
        text(&j["app"]),
        text(&j["version"]),
        text(&j["actor"]["id"]),
        text(&j["actor"]["name"]),
        text(&j["actor"]["email"]),
        text(&j["target"]["id"]),
        text(&j["target"]["name"]),
        String::new(), // details: compared as JSON below
        text(&j["context"]["ip"]),
        text(&j["context"]["user_agent"]),
        text(&j["id"]),
        s.hash.clone(),
    ]
    .iter()
    .map(|v| neutral(v))
    .collect()
}

/// Reads a CSV export back with a CSV parser and compares it with `expected`.
fn assert_csv_is(bytes: &[u8], expected: &[Sent]) {
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        "time,seq,event_type,action,project,app,version,user_id,user_name,user_email,target_id,target_name,details,ip,user_agent,id,hash"
            .split(',')
            .collect::<Vec<_>>()
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), expected.len(), "row count");
    for (row, want) in rows.iter().zip(expected) {
        let mut got: Vec<String> = row.iter().map(String::from).collect();
        let details: Value = serde_json::from_str(&got[12]).unwrap();
        assert_eq!(
            details, want.json["details"],
            "details of {}",
            want.json["id"]
        );
        got[12] = String::new();
        assert_eq!(got, expected_row(want));
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

async fn create_export(server: &TestServer, key: &str, body: Value) -> Value {
    let (status, answer) = server.post("/api/v1/exports", key, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["export"]["status"], "queued");
    answer["export"].clone()
}

/// Polls the export until `done` accepts it, or panics at the deadline.
async fn wait_for(
    server: &TestServer,
    key: &str,
    id: &Value,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = server.get(&format!("/api/v1/exports/{id}"), key).await;
        assert_eq!(status, 200, "{body}");
        if done(&body["export"]) {
            return body["export"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "export {id} never became {what}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn completed(server: &TestServer, key: &str, id: &Value) -> Value {
    let export = wait_for(server, key, id, "completed", |e| {
        e["status"] != "queued" && e["status"] != "running"
    })
    .await;
    assert_eq!(export["status"], "completed", "{export}");
    export
}

async fn download(
    server: &TestServer,
    key: &str,
    id: &Value,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = server
        .http
        .get(server.url(&format!("/api/v1/exports/{id}/download")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

/// Downloads a completed export and checks size, hash and file name.
async fn fetch_file(server: &TestServer, key: &str, export: &Value, extension: &str) -> Vec<u8> {
    let id = &export["id"];
    let (status, headers, bytes) = download(server, key, id).await;
    assert_eq!(status, 200);
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert!(
        disposition.ends_with(&format!("-export-{id}.{extension}\"")),
        "{disposition}"
    );
    assert_eq!(export["size_bytes"].as_u64().unwrap(), bytes.len() as u64);
    assert_eq!(
        export["sha256"].as_str().unwrap(),
        auditlog_core::leaf::to_hex(&Sha256::digest(&bytes))
    );
    bytes
}

async fn audit_events(server: &TestServer, key: &str, action: &str) -> Vec<Value> {
    let (status, body) = server
        .get(
            &format!("/api/v1/events?event_type=Audit%20Log&action={action}&limit=1000"),
            key,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_hold_exactly_the_reference_events_and_are_audited() {
    let server = TestServer::start();
    let acme = server.account("acme");
    let sent = send(&server, &acme.ingest, fixture(2_500, 0)).await;

    // Everything, gzip CSV; then filtered CSV and gzip JSON Lines.
    let all = create_export(
        &server,
        &acme.read,
        json!({"format": "csv", "compression": "gzip"}),
    )
    .await;
    let csv_filter = json!({"event_type": ["test case", "Element"], "action": "Update", "project": ["=cmd|' /C calc'!A0", "Ünïcödé ✓ 日本", "Checkout"]});
    let filtered = create_export(
        &server,
        &acme.read,
        json!({"format": "csv", "filters": csv_filter}),
    )
    .await;
    let jsonl_filter = json!({"user": ["u-1", "u-3"], "from": "2026-01-01T01:00:00Z", "to": "2026-01-02T00:00:00Z", "app": "-Web"});
    let jsonl = create_export(
        &server,
        &acme.read,
        json!({"format": "jsonl", "compression": "gzip", "filters": jsonl_filter}),
    )
    .await;
    assert_eq!(
        filtered["filters"]["event_type"],
        json!(["Test Case", "Element"]),
        "filters stored in canonical form"
    );
    // Events that arrive after the exports were created are not in them.
    send(&server, &acme.ingest, fixture(300, 10_000)).await;

    let all = completed(&server, &acme.read, &all["id"]).await;
    let bytes = gunzip(&fetch_file(&server, &acme.read, &all, "csv.gz").await);
    assert_eq!(all["row_count"], 2_500);
    assert_csv_is(&bytes, &reference(&sent, &json!({})));

    let filtered = completed(&server, &acme.read, &filtered["id"]).await;
    let expected = reference(&sent, &csv_filter);
    assert!(expected.len() > 50, "the filter selects a meaningful share");
    assert_eq!(
        filtered["row_count"].as_u64().unwrap(),
        expected.len() as u64
    );
    assert_csv_is(
        &fetch_file(&server, &acme.read, &filtered, "csv").await,
        &expected,
    );

    let jsonl = completed(&server, &acme.read, &jsonl["id"]).await;
    let text = String::from_utf8(gunzip(
        &fetch_file(&server, &acme.read, &jsonl, "jsonl.gz").await,
    ))
    .unwrap();
    let expected = reference(&sent, &jsonl_filter);
    assert!(!expected.is_empty());
    let lines: Vec<&str> = text.strip_suffix('\n').unwrap().split('\n').collect();
    assert_eq!(lines.len(), expected.len());
    for (line, want) in lines.iter().zip(&expected) {
        let raw = server
            .http
            .get(server.url(&format!(
                "/api/v1/events/{}",
                urlencode(want.json["id"].as_str().unwrap())
            )))
            .bearer_auth(&acme.read)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            raw,
            format!("{{\"event\":{line}}}"),
            "exactly as the API returns it"
        );
        assert_eq!(
            serde_json::from_str::<Value>(line).unwrap()["hash"],
            want.hash.as_str()
        );
    }

    // The list: newest first.
    let (status, list) = server.get("/api/v1/exports", &acme.read).await;
    assert_eq!(status, 200);
    let ids: Vec<&Value> = list["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(ids, vec![&jsonl["id"], &filtered["id"], &all["id"]]);
    assert_eq!(
        list["exports"][0]["requested_by"]
            .as_str()
            .unwrap()
            .split(':')
            .next(),
        Some("api-key")
    );

    // Every export and every download is an Audit Log event of the account.
    let exports = audit_events(&server, &acme.read, "Export").await;
    let downloads = audit_events(&server, &acme.read, "Download").await;
    assert_eq!(exports.len(), 3);
    assert_eq!(downloads.len(), 3);
    for (audited, job) in [
        (&exports, &all),
        (&exports, &filtered),
        (&exports, &jsonl),
        (&downloads, &jsonl),
    ] {
        let event = audited
            .iter()
            .find(|e| e["details"]["export_id"] == job["id"])
            .unwrap_or_else(|| panic!("no audit event for export {}", job["id"]));
        assert_eq!(event["actor"]["id"], job["requested_by"]);
        assert_eq!(event["details"]["format"], job["format"]);
        assert_eq!(event["details"]["filters"], job["filters"]);
    }
}

/// Events whose `details` print differently in RFC 8785 (the leaf) and in
/// serde_json (the CSV cell): doubles, integers as doubles, member names
/// that sort differently by UTF-16 and by bytes, escapes. (No U+0000:
/// PostgreSQL's text types cannot hold it.)
fn number_and_unicode_events(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "id": format!("num-{i}"),
                "time": Timestamp::from_micros(1_767_225_600_000_000 + i as i64).to_rfc3339(),
                "event_type": "Element",
                "action": "Update",
                "actor": {"id": format!("u-{}", i % 3)},
                "details": {"big": 1e21, "tiny": 1.5e-7, "f": 0.1 + 0.25 * i as f64, "u": u64::MAX as f64, "i": 9_007_199_254_740_992u64 - i as u64,
                            "\u{feff}": i, "\u{1F600}": [null, true, "\u{1}\u{7f}"], "x,\"y\"": {"=a": -1}}
            })
        })
        .collect()
}

/// The rows of a CSV export and the lines of a JSON Lines export, on the
/// embedded store and (when a database is configured) on PostgreSQL: each
/// CSV row holds the event's values, each line is byte for byte the JSON
/// that `GET /api/v1/events/{id}` serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_and_json_lines_on_both_backends() {
    let scratch = tempfile::tempdir().unwrap();
    let database = auditlog_store_postgres::test_support::TestDatabase::create(
        "csv_and_json_lines_on_both_backends",
    );
    let mut servers = vec![TestServer::start()];
    if let Some(database) = &database {
        // Without a data directory the export files and the signing key
        // would land in the working directory.
        let export_dir = scratch.path().join("exports").display().to_string();
        let key_file = scratch.path().join("signing-key").display().to_string();
        servers.push(TestServer::start_on_database(
            &database.url,
            scratch.path(),
            &["--export-dir", &export_dir, "--signing-key-file", &key_file],
        ));
    }
    for server in &servers {
        let acme = server.account("acme");
        let mut events = fixture(200, 0);
        events.extend(number_and_unicode_events(40));
        let sent = send(server, &acme.ingest, events).await;
        let csv = create_export(server, &acme.read, json!({"format": "csv"})).await;
        let jsonl = create_export(server, &acme.read, json!({"format": "jsonl"})).await;
        let csv = completed(server, &acme.read, &csv["id"]).await;
        let expected = reference(&sent, &json!({}));
        assert_csv_is(
            &fetch_file(server, &acme.read, &csv, "csv").await,
            &expected,
        );
        let jsonl = completed(server, &acme.read, &jsonl["id"]).await;
        let text =
            String::from_utf8(fetch_file(server, &acme.read, &jsonl, "jsonl").await).unwrap();
        // The CSV export's own `Audit Log` event came before the JSON Lines export.
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .unwrap()
            .split('\n')
            .filter(|line| !line.contains(r#""event_type":"Audit Log""#))
            .collect();
        assert_eq!(lines.len(), expected.len());
        for (line, want) in lines.iter().zip(&expected) {
            let served = server
                .http
                .get(server.url(&format!(
                    "/api/v1/events/{}",
                    urlencode(want.json["id"].as_str().unwrap())
                )))
                .bearer_auth(&acme.read)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(
                served,
                format!("{{\"event\":{line}}}").as_bytes(),
                "exactly as the API serves it"
            );
        }
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_is_409_expired_is_410_and_other_accounts_see_nothing() {
    let temp = tempfile::tempdir().unwrap();
    // A pause per page keeps the export running long enough to ask for it early.
    let server = TestServer::start_on(
        temp.path(),
        &[
            "--export-expiry",
            "2s",
            "--export-test-page-delay-ms",
            "1000",
        ],
    );
    let acme = server.account("acme");
    let other = server.account("other");
    send(&server, &acme.ingest, fixture(1_500, 0)).await;
    let export = create_export(&server, &acme.read, json!({"format": "jsonl"})).await;
    let id = &export["id"];

    let (status, _, body) = download(&server, &acme.read, id).await;
    assert_eq!(status, 409);
    assert_eq!(
        error_code(&serde_json::from_slice(&body).unwrap()),
        "export_not_ready"
    );

    // Another account's key learns nothing about it.
    for path in [
        format!("/api/v1/exports/{id}"),
        format!("/api/v1/exports/{id}/download"),
    ] {
        let (status, body) = server.get(&path, &other.read).await;
        assert_eq!(status, 404, "{path}: {body}");
        error_code(&body);
    }
    let (_, list) = server.get("/api/v1/exports", &other.read).await;
    assert_eq!(list["exports"], json!([]));

    let done = completed(&server, &acme.read, id).await;
    let file = temp
        .path()
        .join("exports")
        .join(format!("export-{id}.jsonl"));
    let expired = wait_for(&server, &acme.read, id, "expired", |e| {
        e["status"] == "expired"
    })
    .await;
    assert_eq!(expired["row_count"], done["row_count"], "the record stays");
    assert!(!file.exists(), "the file of an expired export is deleted");
    let (status, _, body) = download(&server, &acme.read, id).await;
    assert_eq!(status, 410);
    assert_eq!(
        error_code(&serde_json::from_slice(&body).unwrap()),
        "export_expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_an_export_completes_it_after_restart() {
    let temp = tempfile::tempdir().unwrap();
    let args = ["--export-lease", "1s", "--export-test-page-delay-ms", "700"];
    let mut server = TestServer::start_on(temp.path(), &args);
    let acme = server.account("acme");
    let sent = send(&server, &acme.ingest, fixture(4_000, 0)).await;
    let export = create_export(&server, &acme.read, json!({"format": "csv"})).await;
    let id = export["id"].clone();
    wait_for(&server, &acme.read, &id, "running", |e| {
        e["status"] == "running"
    })
    .await;
    server.kill();

    let server = TestServer::start_on(temp.path(), &args[..2]);
    let done = completed(&server, &acme.read, &id).await;
    assert_eq!(done["row_count"], 4_000);
    let bytes = fetch_file(&server, &acme.read, &done, "csv").await;
    assert_csv_is(&bytes, &reference(&sent, &json!({})));
    let leftovers: Vec<_> = std::fs::read_dir(temp.path().join("exports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field() {
    let server = TestServer::start();
    let acme = server.account("acme");
    for (body, status, field) in [
        (json!({"format": "xlsx"}), 422, "format"),
        (json!({}), 422, "format"),
        (
            json!({"format": "csv", "compression": "zip"}),
            422,
            "compression",
        ),
        (json!({"format": "csv", "colour": "red"}), 422, "colour"),
        (
            json!({"format": "csv", "filters": {"event_type": "Nope"}}),
            400,
            "filters.event_type",
        ),
        (
            json!({"format": "csv", "filters": {"limit": "5"}}),
            400,
            "filters.limit",
        ),
        (
            json!({"format": "csv", "filters": {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}}),
            400,
            "from",
        ),
    ] {
        let (got, answer) = server.post("/api/v1/exports", &acme.read, &body).await;
        assert_eq!(got, status, "{body}: {answer}");
        error_code(&answer);
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
    }
    let (status, answer) = server
        .post("/api/v1/exports", &acme.ingest, &json!({"format": "csv"}))
        .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (403, "insufficient_scope")
    );
    let (status, _) = server.get("/api/v1/exports/nope", &acme.read).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_writes_the_same_files() {
    let server = TestServer::start();
    let acme = server.account("acme");
    let sent = send(&server, &acme.ingest, fixture(1_200, 0)).await;
    let dir = server.data_dir.clone();
    let csv_path = dir.join("out.csv");
    server.cli(
        &[
            "export",
            "--account",
            "acme",
            "--format",
            "csv",
            "--event-type",
            "Element",
            "--event-type",
            "test case",
            "--project",
            "Checkout",
            "-o",
            csv_path.to_str().unwrap(),
        ],
        "",
    );
    let expected = reference(
        &sent,
        &json!({"event_type": ["Element", "Test Case"], "project": "Checkout"}),
    );
    assert!(!expected.is_empty());
    assert_csv_is(&std::fs::read(&csv_path).unwrap(), &expected);

    let gz_path = dir.join("out.jsonl.gz");
    server.cli(
        &[
            "export",
            "--account",
            "acme",
            "--format",
            "jsonl",
            "--gzip",
            "--user",
            "u-2",
            "-o",
            gz_path.to_str().unwrap(),
        ],
        "",
    );
    let text = String::from_utf8(gunzip(&std::fs::read(&gz_path).unwrap())).unwrap();
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let want: Vec<String> = reference(&sent, &json!({"user": "u-2"}))
        .iter()
        .map(|s| s.json["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, want);
    // The operator's exports are audited too.
    let audited = audit_events(&server, &acme.read, "Export").await;
    assert_eq!(audited.len(), 2);
    assert!(audited
        .iter()
        .all(|e| e["actor"]["id"].as_str().unwrap().starts_with("cli:")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_hands_its_running_export_back() {
    let temp = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_on(temp.path(), &["--export-test-page-delay-ms", "700"]);
    let acme = server.account("acme");
    send(&server, &acme.ingest, fixture(3_000, 0)).await;
    let export = create_export(&server, &acme.read, json!({"format": "jsonl"})).await;
    let id = export["id"].clone();
    wait_for(&server, &acme.read, &id, "running", |e| {
        e["status"] == "running"
    })
    .await;

    // SIGTERM: the worker stops at the next page and gives the job back.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the server did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let db = rusqlite::Connection::open(temp.path().join("auditlog.db")).unwrap();
    let (state, attempts): (String, i64) = db
        .query_row(
            "SELECT status, attempts FROM export_jobs WHERE id = ?1",
            [id.as_i64().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (state.as_str(), attempts),
        ("queued", 0),
        "handed back without using up an attempt"
    );
    drop(db);

    let server = TestServer::start_on(temp.path(), &[]);
    let done = completed(&server, &acme.read, &id).await;
    assert_eq!(done["row_count"], 3_000);
}
