//! Erasure on both backends (issue 16, Done when): a subject who is the
//! actor of 1,000 version 2 events is erased with `POST /api/v1/erasures`;
//! the events are then served with `"[erased]"` values, the pseudonym as
//! `actor.id` and `"erased": true`, their leaf hashes stay in the tree (each
//! proof checked by Go's sumdb verifier, as are other events'), a held event
//! stays until its hold is released and is then erased by itself, the
//! completed export that held the values is deleted, `verify` passes, and
//! no file of the store holds the subject's email, name, IP or user agent in
//! any encoding the test thinks of. A `kill -9` in the middle of an erasure
//! leaves a job that the restarted server finishes, removing nothing
//! outside its record.

use crate::helpers::{goverify, run_cli_on, run_goverify, TestServer};
use auditlog_store::Store;
use auditlog_store_postgres::test_support::TestDatabase;
use auditlog_store_postgres::PgStore;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SUBJECT: &str = "u-8841";
const NAME: &str = "Zyxquor Wemblington-Ørsted";
const EMAIL: &str = "zyxquor.wemblington@quuxmail.example";
const IP: &str = "198.51.100.213";
const USER_AGENT: &str = "QuuxBrowser/77.3 (Zyxquorphone)";
/// The subject's events; one more (`e-held`) is under a legal hold.
const SUBJECT_EVENTS: usize = 1_000;
const OTHER_EVENTS: usize = 200;

/// Every byte string the subject's values could leave in a file: plain,
/// JSON-escaped, lower-cased words (as the full-text index stores them),
/// UTF-16 (LE and BE) and Latin-1 of the non-ASCII name.
fn needles() -> Vec<(String, Vec<u8>)> {
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for value in [NAME, EMAIL, IP, USER_AGENT, "Wemblington", "Zyxquor"] {
        needles.push((format!("plain {value:?}"), value.as_bytes().to_vec()));
        let escaped = serde_json::to_string(value).unwrap();
        needles.push((format!("JSON {escaped}"), escaped.into_bytes()));
        let ascii_escaped: String = value
            .chars()
            .map(|c| {
                if c.is_ascii() {
                    c.to_string()
                } else {
                    format!("\\u{:04x}", c as u32)
                }
            })
            .collect();
        needles.push((
            format!("JSON \\u-escaped {value:?}"),
            ascii_escaped.into_bytes(),
        ));
        let le: Vec<u8> = value.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let be: Vec<u8> = value.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        needles.push((format!("UTF-16LE {value:?}"), le));
        needles.push((format!("UTF-16BE {value:?}"), be));
    }
    let latin1: Vec<u8> = NAME.chars().map(|c| c as u32 as u8).collect();
    needles.push(("Latin-1 name".into(), latin1));
    // The words search indexes (lower-cased, split on punctuation).
    for word in [
        "zyxquor",
        "wemblington",
        "ørsted",
        "quuxmail",
        "quuxbrowser",
        "zyxquorphone",
    ] {
        needles.push((format!("word {word}"), word.as_bytes().to_vec()));
    }
    needles
}

/// `(file, needle)` for each needle found in a file under `dir`.
fn find_needles(files: &[PathBuf]) -> Vec<String> {
    let needles = needles();
    let mut found = Vec::new();
    for file in files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        for (what, needle) in &needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                found.push(format!("{}: {what}", file.display()));
            }
        }
    }
    found
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn admin_key(server: &TestServer) -> String {
    server
        .cli(
            &["key", "create", "--account", "acme", "--scope", "admin"],
            "",
        )
        .trim()
        .to_string()
}

/// `GET /api/v1/events/{id}`: the status and the event.
async fn event(server: &TestServer, id: &str, key: &str) -> (u16, Value) {
    let (status, body) = server.get(&format!("/api/v1/events/{id}"), key).await;
    let event = body.get("event").cloned().unwrap_or(body);
    (status, event)
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

fn subject_event(i: usize) -> Value {
    json!({"id": format!("s{i}"), "event_type": "Test Case", "action": "Update",
           "actor": {"id": SUBJECT, "name": NAME, "email": EMAIL},
           "target": {"id": format!("TC-{i}")},
           "details": {"assignee": NAME, "state": format!("state {i}")},
           "context": {"ip": IP, "user_agent": USER_AGENT, "request_id": format!("r-{i}")}})
}

fn other_event(i: usize) -> Value {
    json!({"id": format!("o{i}"), "event_type": "Test Case", "action": "Create",
           "actor": {"id": format!("u-other-{}", i % 7), "name": "Grace Hopper", "email": "grace@example.com"},
           "target": {"id": format!("TC-o{i}")},
           "details": {"assignee": "Grace Hopper"},
           "context": {"ip": "192.0.2.1"}})
}

/// Sends the events: the subject's and others' interleaved, one held.
async fn send_events(server: &TestServer, ingest: &str) {
    let mut events: Vec<Value> = Vec::new();
    for i in 0..SUBJECT_EVENTS {
        events.push(subject_event(i));
        if i % 5 == 0 && i / 5 < OTHER_EVENTS {
            events.push(other_event(i / 5));
        }
    }
    let mut held = subject_event(SUBJECT_EVENTS);
    held["id"] = json!("e-held");
    held["target"]["id"] = json!("TC-held");
    events.push(held);
    for chunk in events.chunks(500) {
        let (status, body) = server
            .post("/api/v1/events", ingest, &json!({"events": chunk}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// Polls the erasure until `done` accepts it.
async fn wait_for_erasure(
    server: &TestServer,
    admin: &str,
    id: &Value,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = server.get(&format!("/api/v1/erasures/{id}"), admin).await;
        assert_eq!(status, 200, "{body}");
        if done(&body["erasure"]) {
            return body["erasure"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "erasure {id} never became {what}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks the proof of event `index` (0-based) with goverify, when Go is
/// there; returns the proof.
async fn check_proof(
    server: &TestServer,
    read: &str,
    vkey: &str,
    id: &str,
    bin: &Result<PathBuf, String>,
) -> Value {
    let (status, proof) = server
        .get(&format!("/api/v1/events/{id}/proof"), read)
        .await;
    assert_eq!(status, 200, "{id}: {proof}");
    if let Ok(bin) = bin {
        let request = json!({"vkey": vkey.trim(), "checkpoint": proof["checkpoint"],
                             "leaf": proof["leaf"], "index": proof["leaf_index"], "proof": proof["hashes"]});
        let answer = run_goverify(bin, &request);
        assert!(answer.starts_with("OK auditlog/acme"), "{id}: {answer}");
    }
    proof
}

/// The whole scenario on a running server; returns the pseudonym. On
/// PostgreSQL (`database`), two things its erasure must withstand happen
/// as they would on a busy server: `ANALYZE` runs once the events are
/// stored (its statistics must not keep the values: migration 0021), and a
/// write in another database of the cluster is running while the last of
/// the subject's events is erased (every snapshot's xmin includes it, so
/// the job's rewrite must wait for it to end).
async fn erase_and_check(server: &TestServer, database: Option<&TestDatabase>) -> String {
    let account = server.account("acme");
    let admin = admin_key(server);
    let response = server
        .http
        .put(server.url("/api/v1/account/personal-paths"))
        .bearer_auth(&admin)
        .json(&json!({"paths": ["details.assignee"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    send_events(server, &account.ingest).await;
    if let Some(database) = database {
        let owner = PgStore::connect(&database.url).await.unwrap();
        owner.execute_raw("ANALYZE").await.unwrap();
        owner.shutdown().await;
    }

    // Before: the subject's values are served, searchable, exported.
    let (status, before) = event(server, "s7", &account.read).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["actor"]["email"], EMAIL, "{before}");
    let hash_before = before["hash"].clone();
    let (status, found) = server
        .get("/api/v1/events?q=wemblington&limit=5", &account.read)
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["events"].as_array().unwrap().len(), 5, "{found}");
    let (status, export) = server
        .post(
            "/api/v1/exports",
            &account.read,
            &json!({"format": "jsonl", "filters": {"user": [SUBJECT]}}),
        )
        .await;
    assert_eq!(status, 202, "{export}");
    let export_id = export["export"]["id"].clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = server
            .get(&format!("/api/v1/exports/{export_id}"), &account.read)
            .await;
        if body["export"]["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "export never completed: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (status, hold) = server
        .post(
            "/api/v1/holds",
            &admin,
            &json!({"name": "case-9", "reason": "litigation", "filters": {"target_id": "TC-held"}}),
        )
        .await;
    assert_eq!(status, 201, "{hold}");

    // Bad requests name the field and the rule.
    for (body, field, rule) in [
        (json!({}), "subject", "required"),
        (json!({"subject": ""}), "subject", "not_an_actor_id"),
        (json!({"subject": 7}), "subject", "not_an_actor_id"),
        (
            json!({"subject": "u", "reason": "x"}),
            "reason",
            "unknown_field",
        ),
    ] {
        let (status, refused) = server.post("/api/v1/erasures", &admin, &body).await;
        assert_eq!(status, 422, "{body}: {refused}");
        assert_eq!(refused["error"]["details"]["field"], field, "{refused}");
        assert_eq!(refused["error"]["details"]["rule"], rule, "{refused}");
    }
    let (status, refused) = server
        .post(
            "/api/v1/erasures",
            &account.read,
            &json!({"subject": SUBJECT}),
        )
        .await;
    assert_eq!(status, 403, "{refused}");

    let (status, created) = server
        .post("/api/v1/erasures", &admin, &json!({"subject": SUBJECT}))
        .await;
    assert_eq!(status, 202, "{created}");
    let erasure = &created["erasure"];
    let pseudonym = erasure["subject"].as_str().unwrap().to_string();
    assert!(pseudonym.starts_with("erased:"), "{erasure}");
    assert!(!created.to_string().contains(SUBJECT), "{created}");
    assert_eq!(erasure["events"], SUBJECT_EVENTS as u64 + 1, "{erasure}");
    let id = erasure["id"].clone();

    // Everything but the held event is erased; the job then waits.
    let started = Instant::now();
    let waiting =
        wait_for_erasure(server, &admin, &id, "waiting", |e| e["status"] == "waiting").await;
    eprintln!("erasure waiting after {:?}", started.elapsed());
    assert_eq!(waiting["erased"], SUBJECT_EVENTS as u64, "{waiting}");
    assert_eq!(waiting["held"], 1, "{waiting}");
    let (status, list) = server.get("/api/v1/erasures", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(list["erasures"][0]["id"], id, "{list}");

    // The record: one Auditlog Erasure / Erase event, the subject as the
    // pseudonym, the counts, what it covers.
    let (_, records) = server
        .get(
            "/api/v1/events?event_type=Auditlog%20Erasure&limit=10",
            &account.read,
        )
        .await;
    let records = records["events"].as_array().unwrap().clone();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record["action"], "Erase");
    assert_eq!(record["details"]["subject"], pseudonym.as_str());
    assert_eq!(record["details"]["erased"], SUBJECT_EVENTS as u64);
    assert_eq!(record["details"]["held"], 1);
    assert_eq!(record["seq"], waiting["record_seq"]);
    assert!(!record.to_string().contains(SUBJECT), "{record}");

    // An erased event: "[erased]", the pseudonym, erased: true, same hash.
    let (status, erased) = event(server, "s7", &account.read).await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["erased"], true, "{erased}");
    assert_eq!(
        erased["actor"],
        json!({"id": pseudonym, "name": "[erased]", "email": "[erased]"})
    );
    assert_eq!(erased["context"]["ip"], "[erased]");
    assert_eq!(erased["context"]["user_agent"], "[erased]");
    assert_eq!(erased["context"]["request_id"], "r-7");
    assert_eq!(erased["details"]["assignee"], "[erased]");
    assert_eq!(erased["details"]["state"], "state 7");
    assert_eq!(erased["hash"], hash_before);
    assert!(erased.get("openings").is_none(), "{erased}");
    // The held one keeps its values for now.
    let (_, held) = event(server, "e-held", &account.read).await;
    assert_eq!(held["actor"]["email"], EMAIL, "{held}");
    // A resend of an erased event is an idempotent repeat.
    let (status, repeat) = server
        .post("/api/v1/events", &account.ingest, &subject_event(7))
        .await;
    assert_eq!(status, 200, "{repeat}");

    // Releasing the hold finishes the erasure by itself.
    let neighbour = match database {
        Some(database) => Some(database.open_transaction_elsewhere().await),
        None => None,
    };
    let hold_id = hold["hold"]["id"].clone();
    let response = server
        .http
        .delete(server.url(&format!("/api/v1/holds/{hold_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    if let Some(neighbour) = neighbour {
        // Long enough for the job to erase the held event and reach its
        // rewrite, which must wait for this commit.
        tokio::time::sleep(Duration::from_secs(3)).await;
        neighbour.commit().await;
    }
    let done = wait_for_erasure(server, &admin, &id, "done", |e| e["status"] == "done").await;
    eprintln!("erasure done after {:?}", started.elapsed());
    assert_eq!(done["erased"], SUBJECT_EVENTS as u64 + 1, "{done}");
    assert_eq!(done["held"], 0, "{done}");
    let (_, held) = event(server, "e-held", &account.read).await;
    assert_eq!(held["erased"], true, "{held}");
    assert_eq!(held["actor"]["id"], pseudonym.as_str(), "{held}");

    // The subject is gone from search, lists and the user filter; the
    // pseudonym lists the erased events ("the same person did these").
    let (_, found) = server
        .get("/api/v1/events?q=wemblington", &account.read)
        .await;
    assert_eq!(found["events"], json!([]), "{found}");
    let (_, found) = server
        .get(&format!("/api/v1/events?user={SUBJECT}"), &account.read)
        .await;
    assert_eq!(found["events"], json!([]), "{found}");
    let (_, by_pseudonym) = server
        .get(
            &format!("/api/v1/events?user={pseudonym}&limit=1000"),
            &account.read,
        )
        .await;
    assert_eq!(
        by_pseudonym["events"].as_array().unwrap().len(),
        1000,
        "{by_pseudonym}"
    );
    // Counts too (on SQLite, the actor rollups answer these): nothing under
    // the subject's id, every erased event under the pseudonym.
    for query in [format!("q=user:{SUBJECT}"), format!("user={SUBJECT}")] {
        let (_, histogram) = server
            .get(
                &format!("/api/v1/events/histogram?interval=day&{query}"),
                &account.read,
            )
            .await;
        assert_eq!(histogram["total"], 0, "{query}: {histogram}");
    }
    let (_, histogram) = server
        .get(
            &format!("/api/v1/events/histogram?interval=day&q=user:{pseudonym}"),
            &account.read,
        )
        .await;
    assert_eq!(histogram["total"], SUBJECT_EVENTS as u64 + 1, "{histogram}");
    let (_, others) = event(server, "o3", &account.read).await;
    assert_eq!(others["actor"]["email"], "grace@example.com");
    // The export that held the values is gone.
    let (_, export) = server
        .get(&format!("/api/v1/exports/{export_id}"), &account.read)
        .await;
    assert_eq!(export["export"]["status"], "expired", "{export}");

    // Proofs: other events' and the erased events' (their leaf hashes are
    // still in the tree) verify against the latest checkpoint.
    let vkey = text(server, "/api/v1/public-key", &account.read).await;
    let bin = goverify();
    for id in ["o0", "o3", "o150", "s0", "s7", "s999", "e-held"] {
        let proof = check_proof(server, &account.read, &vkey, id, &bin).await;
        if id.starts_with('s') {
            let (_, served) = event(server, id, &account.read).await;
            let leaf_hash = BASE64.decode(proof["leaf_hash"].as_str().unwrap()).unwrap();
            let hex: String = leaf_hash.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(served["hash"], hex.as_str(), "{id}");
        }
    }
    if let Err(why) = &bin {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: goverify did not run: {why}");
    }
    pseudonym
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_subject_leaves_no_value_in_any_file_and_every_proof_valid() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_on(dir.path(), &[]);
    // The needles are in the files before the erasure (the test can fail).
    let account_probe = erase_and_check(&server, None).await;
    assert!(account_probe.starts_with("erased:"));
    server.kill();
    let store_args = vec!["--data-dir".to_string(), dir.path().display().to_string()];
    let (ok, out) = verify(&store_args);
    assert!(ok, "{out}");
    let files = files_under(dir.path());
    assert!(
        files.iter().any(|f| f.ends_with("auditlog.db")),
        "{files:?}"
    );
    let found = find_needles(&files);
    if !found.is_empty() && std::env::var_os("ERASURE_KEEP").is_some() {
        eprintln!("kept {}", dir.keep().display());
    }
    assert!(found.is_empty(), "erased values left in files: {found:#?}");
}

#[test]
fn the_needles_are_found_where_the_values_are() {
    // The search itself can fail: a file with the values in each encoding.
    let dir = tempfile::tempdir().unwrap();
    for (i, (_, needle)) in needles().iter().enumerate() {
        let path = dir.path().join(format!("f{i}"));
        let mut bytes = vec![0u8; 100];
        bytes.extend_from_slice(needle);
        bytes.extend_from_slice(&[1u8; 100]);
        std::fs::write(&path, bytes).unwrap();
        assert!(!find_needles(&[path]).is_empty(), "needle {i}");
    }
    let clean = dir.path().join("clean");
    std::fs::write(&clean, b"nothing personal [erased] erased:0123").unwrap();
    assert!(find_needles(&[clean]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_subject_on_postgres_leaves_no_value_in_the_database() {
    let Some(database) = TestDatabase::create("erasure_on_postgres") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let key_file = scratch.path().join("signing-key").display().to_string();
    let mut server = TestServer::start_on_database(
        &database.url,
        scratch.path(),
        &["--signing-key-file", &key_file],
    );
    erase_and_check(&server, Some(&database)).await;
    server.kill();
    let store_args = vec![
        "--database-url".to_string(),
        database.url.clone(),
        "--signing-key-file".to_string(),
        key_file,
    ];
    let (ok, out) = verify(&store_args);
    assert!(ok, "{out}");
    postgres_files_check(&database).await;
}

/// After the job, a `VACUUM` and a `CHECKPOINT`: a dump of the database
/// (every row as PostgreSQL serves it) holds no needle, and neither does
/// any file of the database's own directory (`base/<oid>/`: tables, their
/// TOAST, every index, the catalogs) — the old row versions and the word
/// index's keys included. The other events' values are found there (the
/// grep can fail).
async fn postgres_files_check(database: &TestDatabase) {
    let owner = PgStore::connect(&database.url).await.unwrap();
    owner.execute_raw("VACUUM").await.unwrap();
    owner.execute_raw("CHECKPOINT").await.unwrap();
    let data_directory = owner
        .query_raw_text("SHOW data_directory")
        .await
        .unwrap()
        .remove(0)
        .remove(0)
        .unwrap();
    let oid = owner
        .query_raw_text("SELECT oid FROM pg_database WHERE datname = current_database()")
        .await
        .unwrap()
        .remove(0)
        .remove(0)
        .unwrap();
    // Which relation each file is, to name it when a needle is found.
    let relations: std::collections::HashMap<String, String> = owner
        .query_raw_text(
            "SELECT pg_relation_filenode(oid)::text, relname::text FROM pg_class \
             WHERE pg_relation_filenode(oid) IS NOT NULL",
        )
        .await
        .unwrap()
        .into_iter()
        .filter_map(|mut row| {
            let name = row.pop()??;
            let node = row.pop()??;
            Some((node, name))
        })
        .collect();
    owner.shutdown().await;
    let dir = Path::new(&data_directory).join("base").join(&oid);
    // The grep needs read access to PostgreSQL's files (the test runs as
    // root in CI); elsewhere only the dump is checked.
    if std::fs::read_dir(&dir).is_err() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the relation files under {} are not readable by this process; \
             only the dump is checked",
            dir.display()
        );
    } else {
        let files = files_under(&dir);
        assert!(files.len() > 10, "{files:?}");
        let holds_others = files.iter().any(|f| {
            std::fs::read(f).is_ok_and(|b| b.windows(17).any(|w| w == b"grace@example.com"))
        });
        assert!(
            holds_others,
            "the relation files hold the other events' values"
        );
        let found: Vec<String> = find_needles(&files)
            .into_iter()
            .map(|hit| {
                // "<dir>/<filenode>[_fsm|.1]: <what>" -> the relation's name.
                let node = Path::new(hit.split(':').next().unwrap_or_default())
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.split(['_', '.']).next())
                    .unwrap_or_default()
                    .to_string();
                let name = relations.get(&node).map_or("?", String::as_str);
                format!("{hit} (relation {name})")
            })
            .collect();
        assert!(
            found.is_empty(),
            "erased values in the database's files: {found:#?}"
        );
    }
    let dump = std::process::Command::new("pg_dump")
        .arg("--data-only")
        .arg(&database.url)
        .output();
    match dump {
        Ok(out) if out.status.success() => {
            let path =
                std::env::temp_dir().join(format!("erasure-dump-{}.sql", std::process::id()));
            std::fs::write(&path, &out.stdout).unwrap();
            assert!(
                out.stdout.windows(8).any(|w| w == b"Grace Ho"),
                "the dump holds the other events' values"
            );
            let found = find_needles(std::slice::from_ref(&path));
            std::fs::remove_file(&path).ok();
            assert!(found.is_empty(), "erased values in pg_dump: {found:#?}");
        }
        other => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: pg_dump did not run ({other:?}); the rows are checked through the API"
            );
        }
    }
}

/// Sends `count` events of `subject` (and one of another user per ten).
async fn send_many(server: &TestServer, ingest: &str, subject: &str, count: usize) {
    let events: Vec<Value> = (0..count)
        .map(|i| {
            if i % 10 == 9 {
                other_event(i)
            } else {
                let mut event = subject_event(i);
                event["actor"]["id"] = json!(subject);
                event["id"] = json!(format!("k{i}"));
                event
            }
        })
        .collect();
    for chunk in events.chunks(500) {
        let (status, body) = server
            .post("/api/v1/events", ingest, &json!({"events": chunk}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_erasure_finishes_after_restart_and_removes_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    kill_mid_erasure(8_000, || TestServer::start_on(dir.path(), &[])).await;
    let store_args = vec!["--data-dir".to_string(), dir.path().display().to_string()];
    let (ok, out) = verify(&store_args);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_erasure_finishes_after_restart_and_removes_nothing_else_on_postgres() {
    let Some(database) = TestDatabase::create("erasure_killed_on_postgres") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let key_file = scratch.path().join("signing-key").display().to_string();
    // Fewer events: PostgreSQL erases more slowly, and the restarted
    // server first waits for the killed one's lease (20 s) to expire.
    kill_mid_erasure(2_000, || {
        TestServer::start_on_database(
            &database.url,
            scratch.path(),
            &["--signing-key-file", &key_file],
        )
    })
    .await;
    let store_args = vec![
        "--database-url".to_string(),
        database.url.clone(),
        "--signing-key-file".to_string(),
        key_file.clone(),
    ];
    let (ok, out) = verify(&store_args);
    assert!(ok, "{out}");
}

/// Sends `total` events (nine in ten the subject's), requests the erasure,
/// `kill -9`s the server once some batches are erased and others not,
/// starts another with `start` and checks that it finishes the job with
/// one record, every subject event erased and every other event intact.
async fn kill_mid_erasure(total: usize, start: impl Fn() -> TestServer) {
    let mut server = start();
    let account = server.account("acme");
    let admin = admin_key(&server);
    send_many(&server, &account.ingest, SUBJECT, total).await;
    let subject_events = (0..total).filter(|i| i % 10 != 9).count() as u64;
    let (status, created) = server
        .post("/api/v1/erasures", &admin, &json!({"subject": SUBJECT}))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["erasure"]["id"].clone();
    // kill -9 once some batches are erased and others not.
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let (_, body) = server.get(&format!("/api/v1/erasures/{id}"), &admin).await;
        let erased = body["erasure"]["erased"].as_u64().unwrap_or(0);
        if erased > 0 {
            break body["erasure"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the erasure never started: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    server.kill();
    let erased_at_kill = at_kill["erased"].as_u64().unwrap();
    assert!(
        erased_at_kill < subject_events,
        "killed too late to test a resume: {at_kill}"
    );

    let server = start();
    let done = wait_for_erasure(&server, &admin, &id, "done", |e| e["status"] == "done").await;
    assert_eq!(done["erased"], subject_events, "{done}");
    assert_eq!(done["held"], 0, "{done}");
    // One record, however often the job ran.
    let (_, records) = server
        .get(
            "/api/v1/events?event_type=Auditlog%20Erasure&limit=10",
            &account.read,
        )
        .await;
    assert_eq!(records["events"].as_array().unwrap().len(), 1, "{records}");
    // Nothing outside the record: every other event keeps its values, every
    // subject event is erased (none lost its body).
    let (_, page) = server
        .get("/api/v1/events?limit=1000&user=u-other-1", &account.read)
        .await;
    let others = page["events"].as_array().unwrap();
    assert!(!others.is_empty());
    for event in others {
        assert_eq!(event["actor"]["email"], "grace@example.com", "{event}");
        assert!(event.get("erased").is_none(), "{event}");
    }
    for i in [0usize, 1, total / 2, total - 2] {
        let (status, served) = event(&server, &format!("k{i}"), &account.read).await;
        assert_eq!(status, 200, "k{i}: {served}");
        assert_eq!(served["erased"], true, "k{i}: {served}");
    }
    for i in [9usize, total / 2 + 9, total - 1] {
        let (status, served) = event(&server, &format!("o{i}"), &account.read).await;
        assert_eq!(status, 200, "o{i}: {served}");
        assert_eq!(served["actor"]["email"], "grace@example.com");
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditlog_erase_runs_on_the_store_and_the_server_serves_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_on(dir.path(), &[]);
    let account = server.account("acme");
    send_many(&server, &account.ingest, "u-cli", 30).await;
    server.kill();
    let store_args = vec!["--data-dir".to_string(), dir.path().display().to_string()];
    let out = run_cli_on(
        &store_args,
        &["erase", "--account", "acme", "--subject", "u-cli"],
        "",
    );
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains(": done, 27 events erased, 0 held"),
        "{printed}"
    );
    assert!(!printed.contains("u-cli"), "{printed}");
    let refused = run_cli_on(
        &store_args,
        &["erase", "--account", "acme", "--subject", ""],
        "",
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--subject"));
    let (ok, out) = verify(&store_args);
    assert!(ok, "{out}");
    // The server serves what the command erased, with the pseudonym the
    // server itself would use (the same key file).
    let server = TestServer::start_on(dir.path(), &[]);
    let (status, served) = event(&server, "k0", &account.read).await;
    assert_eq!(status, 200, "{served}");
    assert_eq!(served["erased"], true, "{served}");
    let pseudonym = served["actor"]["id"].as_str().unwrap().to_string();
    assert!(printed.contains(&pseudonym), "{printed} / {pseudonym}");
}

/// Sends `count` events of the subject, each between two of other users',
/// so that every subject event is a range of its own in the record.
async fn send_scattered(server: &TestServer, ingest: &str, count: usize) {
    let events: Vec<Value> = (0..count)
        .flat_map(|i| {
            let mut subject = subject_event(i);
            subject["id"] = json!(format!("x{i}"));
            [other_event(i), subject]
        })
        .collect();
    for chunk in events.chunks(500) {
        let (status, body) = server
            .post("/api/v1/events", ingest, &json!({"events": chunk}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// A subject whose `count` events are scattered one by one through the
/// log: its ranges do not fit one record (a leaf is at most 65,535 bytes),
/// so the job appends several, each covering a part in order, and erases
/// every event under the one that covers it; `verify` accepts them.
async fn erase_scattered(server: &TestServer, count: usize, min_records: usize) {
    let account = server.account("acme");
    let admin = admin_key(server);
    send_scattered(server, &account.ingest, count).await;
    let (status, created) = server
        .post("/api/v1/erasures", &admin, &json!({"subject": SUBJECT}))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["erasure"]["id"].clone();
    let done = wait_for_erasure(server, &admin, &id, "done", |e| e["status"] == "done").await;
    assert_eq!(done["erased"], count as u64, "{done}");
    assert_eq!(done["events"], count as u64, "{done}");
    let record_seqs: Vec<u64> = done["record_seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert!(
        record_seqs.len() >= min_records,
        "{} records: {done}",
        record_seqs.len()
    );
    assert_eq!(done["record_seq"], record_seqs[0], "{done}");

    // The records, oldest first: parts 1..n, each its own ranges, together
    // exactly the job's coverage; each leaf within the cap.
    let (_, page) = server
        .get(
            "/api/v1/events?event_type=Auditlog%20Erasure&limit=100",
            &account.read,
        )
        .await;
    let mut records = page["events"].as_array().unwrap().clone();
    records.sort_by_key(|r| r["seq"].as_u64().unwrap());
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, record_seqs, "{page}");
    let mut covered: Vec<Value> = Vec::new();
    let mut counted = 0;
    for (index, record) in records.iter().enumerate() {
        let details = &record["details"];
        assert_eq!(details["part"], index + 1, "{record}");
        assert_eq!(details["parts"], records.len(), "{record}");
        assert_eq!(details["subject"], done["subject"], "{record}");
        counted += details["events"].as_u64().unwrap();
        covered.extend(details["covers"].as_array().unwrap().iter().cloned());
        let expected_id = match index {
            0 => format!("auditlog-erasure-{id}"),
            _ => format!("auditlog-erasure-{id}-{}", index + 1),
        };
        assert_eq!(record["id"], expected_id.as_str());
        let (status, proof) = server
            .get(
                &format!("/api/v1/events/{expected_id}/proof"),
                &account.read,
            )
            .await;
        assert_eq!(status, 200, "{proof}");
        let leaf = BASE64.decode(proof["leaf"].as_str().unwrap()).unwrap();
        assert!(leaf.len() <= 65_535, "a record of {} bytes", leaf.len());
    }
    assert_eq!(counted, count as u64);
    assert_eq!(Value::Array(covered), done["covers"]);

    // Every subject event erased, the others intact.
    for i in [0, 1, count / 2, count - 1] {
        let (status, served) = event(server, &format!("x{i}"), &account.read).await;
        assert_eq!(status, 200, "x{i}: {served}");
        assert_eq!(served["erased"], true, "x{i}: {served}");
        assert_eq!(served["actor"]["email"], "[erased]", "x{i}: {served}");
        let (status, other) = event(server, &format!("o{i}"), &account.read).await;
        assert_eq!(status, 200, "o{i}: {other}");
        assert_eq!(other["actor"]["email"], "grace@example.com", "{other}");
    }
    let (_, remaining) = server
        .get(
            &format!("/api/v1/events?user={SUBJECT}&limit=1"),
            &account.read,
        )
        .await;
    assert_eq!(remaining["events"], json!([]), "{remaining}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_with_thousands_of_scattered_events_is_erased_under_several_records() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(dir.path(), &[]);
    // 6,000 ranges of ~14 bytes: more than one 64 KiB record could hold.
    erase_scattered(&server, 6_000, 3).await;
    drop(server);
    let store_args = vec!["--data-dir".to_string(), dir.path().display().to_string()];
    let (ok, out) = verify(&store_args);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_with_thousands_of_scattered_events_is_erased_under_several_records_on_postgres()
{
    let Some(database) = TestDatabase::create("erasure_scattered_on_postgres") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let key_file = scratch.path().join("signing-key").display().to_string();
    let server = TestServer::start_on_database(
        &database.url,
        scratch.path(),
        &["--signing-key-file", &key_file],
    );
    // Fewer (PostgreSQL erases more slowly): 3,500 ranges of ~12 bytes
    // still need two records of at most 32 KiB of ranges.
    erase_scattered(&server, 3_500, 2).await;
    drop(server);
    let store_args = vec![
        "--database-url".to_string(),
        database.url.clone(),
        "--signing-key-file".to_string(),
        key_file,
    ];
    let (ok, out) = verify(&store_args);
    assert!(ok, "{out}");
}
