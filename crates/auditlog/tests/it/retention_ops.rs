//! Retention as an operator runs it (issue 16): the `auditlog retention` and
//! `auditlog hold` commands on the store, audited as the API audits; the
//! space a pruning frees leaving the disk (SQLite's incremental vacuum,
//! PostgreSQL's VACUUM); and a server killed with SIGKILL in the middle of a
//! pruning, whose job the next server finishes without removing anything
//! outside its record's range, `verify` passing on both backends.

use crate::helpers::{run_cli_on, TestServer};
use auditlog_store_postgres::test_support::TestDatabase;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn admin_key(server: &TestServer) -> String {
    server
        .cli(
            &["key", "create", "--account", "acme", "--scope", "admin"],
            "",
        )
        .trim()
        .to_string()
}

async fn put(server: &TestServer, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let response = server
        .http
        .put(server.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Runs a command that must fail; returns its standard error.
fn cli_fails(store_args: &[String], args: &[&str]) -> String {
    let out = run_cli_on(store_args, args, "");
    assert!(
        !out.status.success(),
        "auditlog {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every event of the key's account that lists, by seq.
async fn listed_seqs(server: &TestServer, key: &str) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut path = "/api/v1/events?limit=1000".to_string();
    loop {
        let (status, page) = server.get(&path, key).await;
        assert_eq!(status, 200, "{page}");
        seqs.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/events?limit=1000&cursor={cursor}"),
            None => break,
        }
    }
    seqs.sort_unstable();
    seqs
}

/// The account's events of `event_type` (Auditlog's own among them), oldest first.
async fn events_of_type(server: &TestServer, key: &str, event_type: &str) -> Vec<Value> {
    let path = format!(
        "/api/v1/events?limit=1000&event_type={}",
        event_type.replace(' ', "%20")
    );
    let (status, page) = server.get(&path, key).await;
    assert_eq!(status, 200, "{page}");
    let mut events = page["events"].as_array().unwrap().clone();
    events.reverse();
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_and_hold_commands_change_the_store_as_the_api_does_and_are_audited() {
    let server = TestServer::start();
    let account = server.account("acme");
    let admin = admin_key(&server);
    let store = server.store_args.clone();

    let out = server.cli(
        &["retention", "set", "--account", "acme", "--days", "30"],
        "",
    );
    assert!(out.contains("kept 30 days"), "{out}");
    let (status, retention) = server.get("/api/v1/retention", &admin).await;
    assert_eq!(status, 200, "{retention}");
    assert_eq!(retention["retention"]["retention_days"], 30);
    // Refused as the API refuses, naming the flag.
    let refused = cli_fails(
        &store,
        &["retention", "set", "--account", "acme", "--days", "0"],
    );
    assert!(
        refused.contains("--days") && refused.contains("from 1 to 36500"),
        "{refused}"
    );
    let refused = cli_fails(
        &store,
        &["retention", "set", "--account", "acme", "--days", "soon"],
    );
    assert!(refused.contains("--days \"soon\""), "{refused}");
    let refused = cli_fails(
        &store,
        &["retention", "set", "--account", "nobody", "--days", "3"],
    );
    assert!(refused.contains("no account named \"nobody\""), "{refused}");

    let shown = server.cli(&["retention", "show", "--account", "acme"], "");
    assert!(
        shown.contains("retention: 30 days after receipt"),
        "{shown}"
    );
    let json: Value =
        serde_json::from_str(&server.cli(&["retention", "show", "--format", "json"], "")).unwrap();
    assert_eq!(json["acme"]["retention_days"], 30, "{json}");
    assert!(json["acme"]["next"].is_object(), "{json}");

    // Holds: created with filters and a query, listed, refused when bad.
    let out = server.cli(
        &[
            "hold",
            "create",
            "--account",
            "acme",
            "--name",
            "case-17",
            "--reason",
            "litigation",
            "--user",
            "u-held",
            "--query",
            "-action:Delete",
        ],
        "",
    );
    let id: i64 = out
        .split_whitespace()
        .nth(3)
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no hold id in {out:?}"));
    let refused = cli_fails(
        &store,
        &[
            "hold",
            "create",
            "--account",
            "acme",
            "--name",
            "case-17",
            "--reason",
            "again",
        ],
    );
    assert!(refused.contains("already exists"), "{refused}");
    let refused = cli_fails(
        &store,
        &[
            "hold",
            "create",
            "--account",
            "acme",
            "--name",
            "bad",
            "--reason",
            "r",
            "--query",
            "type:",
        ],
    );
    assert!(refused.contains("--query"), "{refused}");
    let refused = cli_fails(
        &store,
        &[
            "hold",
            "create",
            "--account",
            "acme",
            "--name",
            "bad",
            "--reason",
            "r",
            "--from",
            "yesterday",
        ],
    );
    assert!(refused.contains("--from"), "{refused}");
    let (status, holds) = server.get("/api/v1/holds", &admin).await;
    assert_eq!(status, 200, "{holds}");
    assert_eq!(holds["holds"].as_array().unwrap().len(), 1, "{holds}");
    let hold = &holds["holds"][0];
    assert_eq!(hold["id"], id);
    assert_eq!(hold["filters"], json!({"user": ["u-held"]}));
    assert_eq!(hold["q"], "-action:Delete");
    assert!(hold["created_by"].as_str().unwrap().starts_with("cli:"));
    let listed = server.cli(&["hold", "list", "--account", "acme"], "");
    assert!(
        listed.contains(&format!("{id}\tcase-17\tactive\t")),
        "{listed}"
    );

    server.cli(
        &["hold", "release", "--account", "acme", &id.to_string()],
        "",
    );
    let refused = cli_fails(
        &store,
        &["hold", "release", "--account", "acme", &id.to_string()],
    );
    assert!(refused.contains("no active legal hold"), "{refused}");
    let listed = server.cli(&["hold", "list", "--account", "acme"], "");
    assert_eq!(listed.lines().count(), 1, "only the header: {listed}");
    let listed = server.cli(&["hold", "list", "--account", "acme", "--all"], "");
    assert!(listed.contains("\treleased\t"), "{listed}");

    server.cli(
        &["retention", "set", "--account", "acme", "--days", "none"],
        "",
    );
    let shown = server.cli(&["retention", "show", "--account", "acme"], "");
    assert!(shown.contains("events are kept forever"), "{shown}");

    // Audited as the API audits, with the operator as actor.
    let holds = events_of_type(&server, &account.read, "Auditlog Legal Hold").await;
    let actions: Vec<&str> = holds
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["Create", "Release"], "{holds:?}");
    for event in &holds {
        assert!(event["actor"]["id"].as_str().unwrap().starts_with("cli:"));
        assert_eq!(event["target"]["id"], format!("hold-{id}"));
    }
    assert_eq!(holds[0]["details"]["reason"], "litigation");
    let updates = events_of_type(&server, &account.read, "Auditlog Account").await;
    let changes: Vec<&Value> = updates
        .iter()
        .map(|e| &e["details"]["changes"][0])
        .filter(|c| c["field"] == "retention_days")
        .collect();
    assert_eq!(
        changes,
        [
            &json!({"field": "retention_days", "old": null, "new": 30}),
            &json!({"field": "retention_days", "old": 30, "new": null}),
        ],
        "{updates:?}"
    );
}

/// Waits until the newest pruning is done; returns `/api/v1/retention`.
async fn wait_for_pruning(server: &TestServer, admin: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (status, retention) = server.get("/api/v1/retention", admin).await;
        assert_eq!(status, 200, "{retention}");
        if retention["retention"]["prunings"][0]["status"] == "done" {
            return retention;
        }
        assert!(
            Instant::now() < deadline,
            "no pruning finished: {retention}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `count` events with a kilobyte of details that does not compress, in
/// requests of 1,000; every 100th of user `u-held`.
async fn send_events(server: &TestServer, key: &str, count: usize) {
    use sha2::{Digest, Sha256};
    for start in (0..count).step_by(1_000) {
        let events: Vec<Value> = (start..(start + 1_000).min(count))
            .map(|i| {
                let noise: String = (0..16)
                    .map(|j| format!("{:x}", Sha256::digest(format!("{i}-{j}"))))
                    .collect::<Vec<_>>()
                    .join("");
                let user = if i % 100 == 7 {
                    "u-held".to_string()
                } else {
                    format!("u-{}", i % 13)
                };
                json!({"id": format!("e{i}"), "event_type": "Test Case", "action": "Update",
                       "actor": {"id": user}, "target": {"id": format!("TC-{i}")},
                       "details": {"note": noise}})
            })
            .collect();
        let (status, body) = server
            .post("/api/v1/events", key, &json!({"events": events}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

fn bytes_on_disk(dir: &std::path::Path) -> u64 {
    ["auditlog.db", "auditlog.db-wal"]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_half_of_a_store_gives_its_space_back_to_the_disk() {
    const EVENTS: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_on(
        dir.path(),
        &[
            "--retention-min-days",
            "0",
            "--prune-interval",
            "1s",
            "--stream-allow-private",
            "127.0.0.1/32",
        ],
    );
    let account = server.account("acme");
    let admin = admin_key(&server);
    send_events(&server, &account.ingest, EVENTS).await;
    // A stream that never gets past the middle keeps the second half.
    let (status, stream) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": "http://127.0.0.1:9/never", "from_seq": EVENTS / 2 + 1}),
        )
        .await;
    assert_eq!(status, 201, "{stream}");
    let conn = rusqlite::Connection::open(dir.path().join("auditlog.db")).unwrap();
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 2, "a new store frees its pages incrementally");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let before = bytes_on_disk(dir.path());

    let (status, set) = put(
        &server,
        "/api/v1/retention",
        &admin,
        &json!({"retention_days": 0}),
    )
    .await;
    assert_eq!(status, 200, "{set}");
    let retention = wait_for_pruning(&server, &admin, Duration::from_secs(120)).await;
    let pruning = &retention["retention"]["prunings"][0];
    assert_eq!(pruning["last_seq"], EVENTS / 2, "{pruning}");
    // The space is given back after the job is marked done.
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let after = bytes_on_disk(dir.path());
        if after * 10 < before * 7 || Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let freelist: i64 = conn
        .pragma_query_value(None, "freelist_count", |r| r.get(0))
        .unwrap();
    eprintln!(
        "bytes on disk: {before} before pruning half, {after} after ({:.0}%), {freelist} free pages left",
        after as f64 * 100.0 / before as f64
    );
    assert!(
        after * 10 < before * 7,
        "pruning half of the store must return at least 30% of its bytes: {before} before, {after} after"
    );
    drop(conn);
    server.kill();
    let store = server.store_args.clone();
    let verified = run_cli_on(&store, &["verify"], "");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // A store made before incremental vacuum is converted by `retention vacuum`.
    let conn = rusqlite::Connection::open(dir.path().join("auditlog.db")).unwrap();
    conn.execute_batch("PRAGMA auto_vacuum = NONE; VACUUM;")
        .unwrap();
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 0);
    drop(conn);
    let out = server.cli(&["retention", "vacuum"], "");
    assert!(out.contains("gives its space back by itself"), "{out}");
    let conn = rusqlite::Connection::open(dir.path().join("auditlog.db")).unwrap();
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 2, "converted: {out}");
}

/// The held events' seqs among the first `count` (every 100th from the 8th).
fn held(count: usize) -> Vec<u64> {
    (0..count)
        .filter(|i| i % 100 == 7)
        .map(|i| i as u64 + 1)
        .collect()
}

/// Starts a pruning of 6,000 events that pauses after each batch, kills
/// the server with SIGKILL once a batch is done and before the last, shows
/// from the store that the job was cut short, restarts the server, and
/// checks that the job finished with exactly its range removed.
async fn kill_mid_pruning(start: impl Fn() -> TestServer) {
    const EVENTS: usize = 6_000;
    let mut server = start();
    let account = server.account("acme");
    let admin = admin_key(&server);
    send_events(&server, &account.ingest, EVENTS).await;
    server.cli(
        &[
            "hold",
            "create",
            "--account",
            "acme",
            "--name",
            "case-17",
            "--reason",
            "litigation",
            "--user",
            "u-held",
        ],
        "",
    );
    let (status, set) = put(
        &server,
        "/api/v1/retention",
        &admin,
        &json!({"retention_days": 0}),
    )
    .await;
    assert_eq!(status, 200, "{set}");

    // Killed once a batch is removed: the job is `removing`, part done.
    let deadline = Instant::now() + Duration::from_secs(120);
    let at_kill = loop {
        let (_, retention) = server.get("/api/v1/retention", &admin).await;
        let pruning = retention["retention"]["prunings"][0].clone();
        if pruning["status"] == "removing" && pruning["removed"].as_u64().unwrap_or(0) > 0 {
            server.kill();
            break pruning;
        }
        assert!(Instant::now() < deadline, "no pruning started: {retention}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (first, last) = (
        at_kill["first_seq"].as_u64().unwrap(),
        at_kill["last_seq"].as_u64().unwrap(),
    );
    assert_eq!(first, 1, "{at_kill}");
    // The events, the hold's record and the policy's record.
    assert_eq!(last, EVENTS as u64 + 2, "{at_kill}");
    let planned = at_kill["planned"].as_u64().unwrap();
    assert_eq!(planned, last - held(EVENTS).len() as u64, "{at_kill}");
    // What the store says after the kill: the job was cut short.
    let shown: Value =
        serde_json::from_str(&server.cli(&["retention", "show", "--format", "json"], "")).unwrap();
    let stored = &shown["acme"]["prunings"][0];
    assert_eq!(stored["status"], "removing", "{stored}");
    let removed = stored["removed"].as_u64().unwrap();
    assert!(
        removed > 0 && removed < planned,
        "the kill must land mid-job: {stored}"
    );
    assert!(stored["next_seq"].as_u64().unwrap() <= last, "{stored}");
    eprintln!("killed with {removed} of {planned} bodies removed: {stored}");

    // The next server takes the job over once its lease ran out.
    let server = start();
    let retention = wait_for_pruning(&server, &admin, Duration::from_secs(120)).await;
    let prunings = retention["retention"]["prunings"].as_array().unwrap();
    assert_eq!(prunings.len(), 1, "one job, finished: {retention}");
    assert_eq!(prunings[0]["removed"], planned, "{retention}");
    let records = events_of_type(&server, &account.read, "Auditlog Retention").await;
    assert_eq!(records.len(), 1, "one record, never a second: {records:?}");
    let record_seq = records[0]["seq"].as_u64().unwrap();
    assert_eq!(prunings[0]["record_seq"], record_seq);
    assert_eq!(
        records[0]["details"]["covers"],
        json!([[first, last]]),
        "{records:?}"
    );
    // Nothing outside the record's range, and no held event, was removed.
    let mut kept = held(EVENTS);
    kept.extend(last + 1..=record_seq);
    assert_eq!(listed_seqs(&server, &account.read).await, kept);
    let (status, gone) = server.get("/api/v1/events/e0", &account.read).await;
    assert_eq!(status, 410, "{gone}");
    drop(server);
}

fn verify_passes(store: &[String]) {
    let out = run_cli_on(store, &["verify"], "");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const KILL_ARGS: [&str; 8] = [
    "--retention-min-days",
    "0",
    "--prune-interval",
    "1s",
    "--prune-lease",
    "2s",
    "--prune-test-batch-pause-ms",
    "400",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruning_killed_mid_job_is_finished_by_the_next_server_and_verify_passes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    kill_mid_pruning(|| TestServer::start_on(&path, &KILL_ARGS)).await;
    verify_passes(&crate::helpers::data_dir_args(dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruning_killed_mid_job_is_finished_by_the_next_server_and_verify_passes_on_postgres() {
    let Some(database) = TestDatabase::create("pruning_killed_on_postgres") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let key_file = scratch.path().join("signing-key").display().to_string();
    let mut args: Vec<&str> = KILL_ARGS.to_vec();
    args.extend(["--signing-key-file", &key_file]);
    kill_mid_pruning(|| TestServer::start_on_database(&database.url, scratch.path(), &args)).await;
    let store = vec![
        "--database-url".to_string(),
        database.url.clone(),
        "--signing-key-file".to_string(),
        key_file,
    ];
    verify_passes(&store);
    // The rows are gone: VACUUM (FULL) gives their space back.
    let out = run_cli_on(&store, &["retention", "vacuum"], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes: Vec<u64> = text
        .split(['(', ' '])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        bytes.len() == 2 && bytes[1] < bytes[0],
        "the database must shrink: {text}"
    );
}
