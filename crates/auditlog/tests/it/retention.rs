//! Retention on both backends (issue 16, Done when): a store pruned with a
//! legal hold in the middle of the range and a log stream that lags keeps
//! the held events and everything the stream has not examined, loses the
//! rest of the prefix (410 `pruned`), serves every proof (each retained
//! event's checked by Go's sumdb verifier), keeps checkpoints consistent,
//! and passes `verify`; one more body removed behind the database's back is
//! then named by `verify`.

use crate::helpers::{goverify, run_cli_on, run_goverify, TestServer};
use auditlog_store::Store;
use auditlog_store_postgres::test_support::TestDatabase;
use auditlog_store_postgres::PgStore;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const HELD: std::ops::Range<usize> = 10..15;

fn admin_key(server: &TestServer) -> String {
    server
        .cli(
            &["key", "create", "--account", "acme", "--scope", "admin"],
            "",
        )
        .trim()
        .to_string()
}

async fn text(server: &TestServer, path: &str, key: &str) -> String {
    let response = server
        .http
        .get(server.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{path}");
    response.text().await.unwrap()
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

/// Sends 40 events (five of user `u-held`), holds them, starts a stream
/// at seq 30 that never gets through, sets retention to 0 days and waits
/// for the pruning; checks what stayed and what went, every proof and the
/// consistency of the checkpoints before and after.
async fn prune_and_check(server: &TestServer) {
    let account = server.account("acme");
    let admin = admin_key(server);
    let events: Vec<Value> = (0..40)
        .map(|i| {
            let user = if HELD.contains(&i) {
                "u-held".to_string()
            } else {
                format!("u-{}", i % 3)
            };
            json!({"id": format!("e{i}"), "event_type": "Test Case", "action": "Update",
                   "actor": {"id": user, "email": format!("{user}@example.com")},
                   "target": {"id": format!("TC-{i}")}})
        })
        .collect();
    let (status, body) = server
        .post(
            "/api/v1/events",
            &account.ingest,
            &json!({"events": events}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // A checkpoint of the whole log before pruning.
    let (status, before) = server.get("/api/v1/events/e39/proof", &account.read).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["tree_size"], 40);

    let (status, hold) = server
        .post(
            "/api/v1/holds",
            &admin,
            &json!({"name": "case-17", "reason": "litigation hold", "filters": {"user": ["u-held"]}}),
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    let (status, refused) = server
        .post(
            "/api/v1/holds",
            &admin,
            &json!({"name": "bad", "reason": "r", "q": "type:"}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    let (status, stream) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": "http://127.0.0.1:9/never", "from_seq": 30}),
        )
        .await;
    assert_eq!(status, 201, "{stream}");
    let (status, refused) = put(
        server,
        "/api/v1/retention",
        &admin,
        &json!({"retention_days": -1}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["details"]["field"], "retention_days");
    let (status, set) = put(
        server,
        "/api/v1/retention",
        &admin,
        &json!({"retention_days": 0}),
    )
    .await;
    assert_eq!(status, 200, "{set}");

    // The pruner runs every second here.
    let deadline = Instant::now() + Duration::from_secs(60);
    let retention = loop {
        let (status, retention) = server.get("/api/v1/retention", &admin).await;
        assert_eq!(status, 200, "{retention}");
        if retention["retention"]["prunings"][0]["status"] == "done" {
            break retention;
        }
        assert!(
            Instant::now() < deadline,
            "no pruning finished: {retention}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let pruning = &retention["retention"]["prunings"][0];
    assert_eq!(pruning["first_seq"], 1, "{pruning}");
    assert_eq!(
        pruning["last_seq"], 29,
        "the stream examined seqs up to 29: {pruning}"
    );
    assert_eq!(pruning["removed"], 24, "{pruning}");
    assert_eq!(
        pruning["held"],
        json!([{"id": hold["hold"]["id"], "name": "case-17", "count": 5}])
    );
    let next = &retention["retention"]["next"];
    assert!(
        next["held_back_by"][0]
            .as_str()
            .unwrap_or("")
            .contains("log stream"),
        "{next}"
    );

    // What went, what stayed.
    let vkey = text(server, "/api/v1/public-key", &account.read).await;
    let bin = goverify();
    for i in 0..40 {
        let (status, body) = server
            .get(&format!("/api/v1/events/e{i}"), &account.read)
            .await;
        let (proof_status, proof) = server
            .get(&format!("/api/v1/events/e{i}/proof"), &account.read)
            .await;
        assert_eq!(proof_status, 200, "e{i}: {proof}");
        assert!(proof["leaf_hash"].is_string());
        let kept = HELD.contains(&i) || i >= 29;
        if kept {
            assert_eq!(status, 200, "e{i} must stay: {body}");
            let leaf = proof["leaf"]
                .as_str()
                .expect("a kept event's proof has its leaf");
            if let Ok(bin) = &bin {
                let request = json!({"vkey": vkey.trim(), "checkpoint": proof["checkpoint"], "leaf": leaf,
                                     "index": i, "proof": proof["hashes"]});
                let answer = run_goverify(bin, &request);
                assert!(answer.starts_with("OK auditlog/acme"), "e{i}: {answer}");
            }
        } else {
            assert_eq!(status, 410, "e{i} must be pruned: {body}");
            assert_eq!(body["error"]["code"], "pruned");
            assert!(proof.get("leaf").is_none(), "{proof}");
        }
    }
    // Lists skip pruned events; resending a pruned id is an idempotent repeat.
    let (_, page) = server
        .get("/api/v1/events?limit=1000&user=u-0", &account.read)
        .await;
    assert!(page["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["seq"].as_u64().unwrap() >= 30));
    let (status, repeat) = server
        .post("/api/v1/events", &account.ingest, &events[0])
        .await;
    assert_eq!(status, 200, "{repeat}");
    assert_eq!(repeat["events"][0]["seq"], 1);

    // The checkpoint before and the latest are consistent.
    let (_, latest) = server.get("/api/v1/events/e39/proof", &account.read).await;
    let (status, _) = server.get("/api/v1/events/e35/proof", &account.read).await;
    assert_eq!(status, 200);
    let latest_note = text(server, "/api/v1/checkpoint", &account.read).await;
    let latest_size = latest_note.lines().nth(1).unwrap().parse::<u64>().unwrap();
    assert!(latest_size > 40, "{latest}");
    let (status, consistency) = server
        .get(
            &format!("/api/v1/proofs/consistency?from=40&to={latest_size}"),
            &account.read,
        )
        .await;
    assert_eq!(status, 200, "{consistency}");
    if let Ok(bin) = &bin {
        let request = json!({"vkey": vkey.trim(), "old_checkpoint": before["checkpoint"],
                             "checkpoint": latest_note, "consistency": consistency["hashes"]});
        let answer = run_goverify(bin, &request);
        assert!(answer.starts_with("OK auditlog/acme"), "{answer}");
    } else if let Err(why) = &bin {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: goverify did not run: {why}");
    }
}

fn verify(store_args: &[String]) -> (bool, String) {
    let out = run_cli_on(store_args, &["verify"], "");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const SERVE_ARGS: [&str; 6] = [
    "--retention-min-days",
    "0",
    "--prune-interval",
    "1s",
    "--stream-allow-private",
    "127.0.0.1/32",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_keeps_holds_and_unexamined_events_and_verify_names_an_unauthorised_removal() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_on(dir.path(), &SERVE_ARGS);
    prune_and_check(&server).await;
    server.kill();
    let store_args = vec!["--data-dir".to_string(), dir.path().display().to_string()];
    let (ok, out) = verify(&store_args);
    assert!(ok, "{out}");

    // One more body removed by someone who can write the file.
    let conn = rusqlite::Connection::open(dir.path().join("auditlog.db")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER event_log_delete_only_covered; DROP TRIGGER event_openings_delete_only_covered;
         DELETE FROM event_openings WHERE seq = 35 AND account_id = (SELECT id FROM accounts WHERE name = 'acme');
         DELETE FROM event_log WHERE key = ((SELECT id FROM accounts WHERE name = 'acme') << 40) | 35;",
    )
    .unwrap();
    drop(conn);
    let (ok, out) = verify(&store_args);
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL  acme: event seq 35 "), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_keeps_holds_and_unexamined_events_and_verify_names_an_unauthorised_removal_on_postgres(
) {
    let Some(database) = TestDatabase::create("pruning_on_postgres") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let key_file = scratch.path().join("signing-key").display().to_string();
    let mut args: Vec<&str> = SERVE_ARGS.to_vec();
    args.extend(["--signing-key-file", &key_file]);
    let mut server = TestServer::start_on_database(&database.url, scratch.path(), &args);
    prune_and_check(&server).await;
    server.kill();
    let store_args = vec![
        "--database-url".to_string(),
        database.url.clone(),
        "--signing-key-file".to_string(),
        key_file,
    ];
    let (ok, out) = verify(&store_args);
    assert!(ok, "{out}");

    // The owner drops the trigger and removes one more body, with a
    // tombstone and a coverage row of its own making: the record does not
    // list it, so verify names it.
    let owner = PgStore::connect(&database.url).await.unwrap();
    owner
        .execute_raw(
            "DROP TRIGGER event_log_delete_only_covered ON event_log;
             DROP TRIGGER event_personal_delete_only_covered ON event_personal;
             DELETE FROM event_personal WHERE seq = 35;
             DELETE FROM event_log WHERE key & 1099511627775 = 35;",
        )
        .await
        .unwrap();
    owner.shutdown().await;
    let (ok, out) = verify(&store_args);
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL  acme: event seq 35 "), "{out}");
}
