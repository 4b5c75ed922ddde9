//! Faults: a full disk, and writes that fail. The embedded store's data
//! directory is a small tmpfs that the test mounts (we are root here and in
//! CI), filled with a ballast file. While it is full, every ingest request is
//! answered 503 in SPEC's error shape with a `Retry-After`, nothing of a
//! failed request is stored, and every acknowledged event stays readable and
//! provable; once the ballast is deleted, ingest succeeds again in the same
//! process, `seq` stays gapless and `auditlog verify` passes. Also: SIGKILL
//! and restart while full, an export into a full export directory, and a
//! PostgreSQL transaction that fails midway.

use crate::helpers::*;
use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::merkle;
use auditlog_core::note::NoteVerifier;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Set (by `.ci/run`) where a refused mount must fail the test, not skip it.
const REQUIRE_MOUNT: &str = "AUDITLOG_TEST_REQUIRE_MOUNT";

/// A tmpfs mounted for one test; unmounted when dropped, also when the test
/// fails (declare it before the server, so that the server dies first).
struct SmallDisk {
    mount_point: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (mount's syntax, `8m`), or prints why the
    /// test is skipped and returns `None`.
    fn mount(size: &str, test: &str) -> Option<Self> {
        let mount_point = tempfile::tempdir().unwrap();
        let result = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(mount_point.path())
            .output();
        let refusal = match result {
            Ok(out) if out.status.success() => return Some(Self { mount_point }),
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => format!("cannot run mount: {e}"),
        };
        assert!(
            std::env::var_os(REQUIRE_MOUNT).is_none(),
            "{test}: {REQUIRE_MOUNT} is set but mounting a tmpfs failed: {refusal}"
        );
        eprintln!("SKIPPED {test}: mounting a small tmpfs was refused ({refusal}); it needs root");
        None
    }

    fn path(&self) -> &Path {
        self.mount_point.path()
    }

    /// Changes the size in place (files stay).
    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount to {size} failed");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy: detach it now; the kernel frees it once released.
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// A file that takes all the free space of its filesystem but `leave_free` bytes.
struct Ballast {
    path: PathBuf,
}

impl Ballast {
    fn fill(dir: &Path, leave_free: u64) -> Self {
        let path = dir.join("ballast");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0xA5u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("writing the ballast: {e}"),
            }
        }
        file.set_len(written.saturating_sub(leave_free)).unwrap();
        file.sync_all().unwrap();
        Self { path }
    }

    fn remove(self) {
        std::fs::remove_file(&self.path).unwrap();
    }
}

fn event(id: &str) -> Value {
    // A few hundred bytes of details, so that a few MiB fill quickly.
    json!({"id": id, "event_type": "Test Case", "action": "Update", "actor": {"id": "u-1"},
           "project": "Checkout", "target": {"id": id},
           "details": {"changes": [{"field": "notes", "old": "", "new": "n".repeat(400)}]}})
}

/// One ingest request and its answer.
#[derive(Debug, Clone)]
struct Attempt {
    ids: Vec<String>,
    batch: bool,
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

async fn send(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    ids: Vec<String>,
    batch: bool,
) -> Attempt {
    let body = if batch {
        json!({"events": ids.iter().map(|id| event(id)).collect::<Vec<_>>()})
    } else {
        event(&ids[0])
    };
    let response = http
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    attempt(ids, batch, response).await
}

async fn attempt(ids: Vec<String>, batch: bool, response: reqwest::Response) -> Attempt {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.json().await.unwrap_or(Value::Null);
    Attempt {
        ids,
        batch,
        status,
        retry_after,
        body,
    }
}

async fn send_to(
    server: &TestServer,
    account: &TestAccount,
    ids: Vec<String>,
    batch: bool,
) -> Attempt {
    send(
        &server.http,
        &server.url("/api/v1/events"),
        &account.ingest,
        ids,
        batch,
    )
    .await
}

/// A 503 in SPEC's shape, saying the storage is full, with a Retry-After.
fn assert_full(attempt: &Attempt) {
    assert_eq!(attempt.status, 503, "{attempt:?}");
    assert_eq!(error_code(&attempt.body), "unavailable", "{attempt:?}");
    let message = attempt.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("full") && message.contains("nothing was stored"),
        "the message should say the storage is full and nothing was stored: {attempt:?}"
    );
    let seconds: u64 = attempt
        .retry_after
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("503 without a Retry-After in seconds: {attempt:?}"));
    assert!(seconds >= 1, "{attempt:?}");
}

/// The receipts (id → seq) of an accepted request.
fn receipts(attempt: &Attempt) -> Vec<(String, u64)> {
    assert_eq!(attempt.status, 201, "{attempt:?}");
    attempt.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Every stored event of the account, id → seq, through the API.
async fn stored_events(server: &TestServer, account: &TestAccount) -> BTreeMap<String, u64> {
    let mut stored = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/v1/events?limit=1000{cursor}");
        let (status, page) = server.get(&path, &account.read).await;
        assert_eq!(status, 200, "{page}");
        for e in page["events"].as_array().unwrap() {
            stored.insert(
                e["id"].as_str().unwrap().to_string(),
                e["seq"].as_u64().unwrap(),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return stored,
        }
    }
}

/// Exactly the acknowledged events are stored, with their acknowledged
/// seqs, and the seqs run 1..=n.
async fn assert_stored_exactly(
    server: &TestServer,
    account: &TestAccount,
    acknowledged: &BTreeMap<String, u64>,
) {
    let stored = stored_events(server, account).await;
    for (id, seq) in acknowledged {
        assert_eq!(
            stored.get(id),
            Some(seq),
            "acknowledged event {id} (seq {seq})"
        );
    }
    let unacknowledged: Vec<&String> = stored
        .keys()
        .filter(|id| !acknowledged.contains_key(*id))
        .collect();
    assert!(
        unacknowledged.is_empty(),
        "stored but never acknowledged: {unacknowledged:?}"
    );
    let mut seqs: Vec<u64> = stored.values().copied().collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "seq must be gapless"
    );
}

/// `auditlog verify` over the whole store passes.
fn assert_verify_passes(data_dir: &Path) {
    let out = run_cli(data_dir, &["verify"], "");
    assert!(
        out.status.success(),
        "verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The event's inclusion proof verifies against its signed checkpoint.
async fn assert_provable(server: &TestServer, account: &TestAccount, id: &str, seq: u64) {
    let response = server
        .http
        .get(server.url("/api/v1/public-key"))
        .send()
        .await
        .unwrap();
    let verifier = NoteVerifier::parse(&response.text().await.unwrap()).unwrap();
    let (status, proof) = server
        .get(&format!("/api/v1/events/{id}/proof"), &account.read)
        .await;
    assert_eq!(status, 200, "{proof}");
    let checkpoint = Checkpoint::open(proof["checkpoint"].as_str().unwrap(), &verifier).unwrap();
    let leaf = BASE64.decode(proof["leaf"].as_str().unwrap()).unwrap();
    let hashes: Vec<merkle::Hash> = proof["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            BASE64
                .decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    merkle::check_record(
        &hashes,
        checkpoint.size as i64,
        &checkpoint.root,
        seq as i64 - 1,
        &merkle::leaf_hash(&leaf),
    )
    .unwrap();
}

/// SIGTERM, and the exit status once the server has drained and stopped.
fn stop_gracefully(server: &mut TestServer) -> std::process::ExitStatus {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Clients that keep ingesting (half single events, half batches of 20)
/// until each has been refused `refusals` times; every attempt is returned.
async fn ingest_until_refused(
    server: &TestServer,
    account: &TestAccount,
    prefix: &str,
    refusals: usize,
) -> Vec<Attempt> {
    let mut clients = Vec::new();
    for client in 0..4 {
        let (http, url, key) = (
            server.http.clone(),
            server.url("/api/v1/events"),
            account.ingest.clone(),
        );
        let prefix = prefix.to_string();
        clients.push(tokio::spawn(async move {
            let batch = client % 2 == 1;
            let mut attempts = Vec::new();
            let mut refused = 0;
            // Bounded, so that a disk that never fills fails the test below
            // instead of hanging it.
            for n in 0..400 {
                let ids: Vec<String> = if batch {
                    (0..20)
                        .map(|i| format!("{prefix}-c{client}-{n}-{i}"))
                        .collect()
                } else {
                    vec![format!("{prefix}-c{client}-{n}")]
                };
                let attempt = send(&http, &url, &key, ids, batch).await;
                if attempt.status != 201 {
                    refused += 1;
                }
                attempts.push(attempt);
                if refused >= refusals {
                    break;
                }
            }
            attempts
        }));
    }
    let mut attempts = Vec::new();
    for client in clients {
        attempts.extend(client.await.unwrap());
    }
    attempts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_answers_503_stores_nothing_partial_and_recovers_without_restart() {
    let test = "a_full_disk_answers_503_stores_nothing_partial_and_recovers_without_restart";
    let Some(disk) = SmallDisk::mount("8m", test) else {
        return;
    };
    let data = disk.path().join("data");
    let mut server = TestServer::start_on(&data, &[]);
    let account = server.account("acme");
    let mut acknowledged: BTreeMap<String, u64> = BTreeMap::new();
    let first = send_to(
        &server,
        &account,
        (0..50).map(|i| format!("base-{i}")).collect(),
        true,
    )
    .await;
    acknowledged.extend(receipts(&first));

    // Leave room for a few commits, so that the disk fills while clients
    // are sending: some requests succeed, then they are refused.
    let ballast = Ballast::fill(disk.path(), 512 * 1024);
    let attempts = ingest_until_refused(&server, &account, "full", 4).await;
    let mut refused = Vec::new();
    for attempt in &attempts {
        match attempt.status {
            201 => acknowledged.extend(receipts(attempt)),
            _ => {
                assert_full(attempt);
                refused.push(attempt.clone());
            }
        }
    }
    assert!(
        refused.iter().any(|a| a.batch) && refused.iter().any(|a| !a.batch),
        "both single events and batches must have met the full disk ({} attempts, {} refused)",
        attempts.len(),
        refused.len()
    );
    let accepted_while_filling = attempts.iter().filter(|a| a.status == 201).count();
    eprintln!(
        "{} requests while the disk filled: {accepted_while_filling} accepted, {} refused",
        attempts.len(),
        refused.len()
    );

    // Reads still work; /readyz reports that writes fail.
    assert_stored_exactly(&server, &account, &acknowledged).await;
    let (status, ready) = server.get("/readyz", "").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["storage_writes"]["status"], "full", "{ready}");
    for attempt in refused.iter().take(5) {
        let (status, body) = server
            .get(&format!("/api/v1/events/{}", attempt.ids[0]), &account.read)
            .await;
        assert_eq!(
            status, 404,
            "an event of a refused request is stored: {body}"
        );
    }

    // Space returns: the same process takes events again at once.
    ballast.remove();
    let single = send_to(&server, &account, vec!["after-single".into()], false).await;
    let (after_id, after_seq) = receipts(&single).pop().unwrap();
    acknowledged.insert(after_id.clone(), after_seq);
    // A proof of an event that no checkpoint covers yet needs one signed
    // now. On a full disk that is refused with the same 503, or, if the
    // signature found room (the WAL keeps the space a refused commit had
    // claimed, and a checkpoint is a small write; the background signer may
    // also have come first), the proof is whole and verifies.
    let full = Ballast::fill(disk.path(), 0);
    let response = server
        .http
        .get(server.url(&format!("/api/v1/events/{after_id}/proof")))
        .bearer_auth(&account.read)
        .send()
        .await
        .unwrap();
    let proof = attempt(vec![after_id.clone()], false, response).await;
    if proof.status == 200 {
        assert_provable(&server, &account, &after_id, after_seq).await;
    } else {
        assert_full(&proof);
    }
    full.remove();
    let batch = send_to(
        &server,
        &account,
        (0..20).map(|i| format!("after-{i}")).collect(),
        true,
    )
    .await;
    acknowledged.extend(receipts(&batch));
    // A refused request, sent again, is stored as new (201), not recognised
    // as a repeat of something stored (200).
    let retried = refused.iter().find(|a| a.batch).unwrap();
    let again = send_to(&server, &account, retried.ids.clone(), true).await;
    acknowledged.extend(receipts(&again));
    let (status, ready) = server.get("/readyz", "").await;
    assert_eq!(
        (status, &ready["storage_writes"]["status"]),
        (200, &json!("ok")),
        "{ready}"
    );

    assert_stored_exactly(&server, &account, &acknowledged).await;
    let last_while_full = attempts
        .iter()
        .filter(|a| a.status == 201)
        .flat_map(receipts)
        .max_by_key(|(_, seq)| *seq)
        .unwrap_or_else(|| receipts(&first).pop().unwrap());
    assert_provable(&server, &account, &last_while_full.0, last_while_full.1).await;
    let (id, seq) = receipts(&again).pop().unwrap();
    assert_provable(&server, &account, &id, seq).await;
    assert_verify_passes(&data);

    // Full again, then SIGKILL: the server restarts on the full disk,
    // serves reads and refuses writes, and takes them once space returns.
    let ballast = Ballast::fill(disk.path(), 0);
    let refused = send_to(&server, &account, vec!["kill-0".into()], false).await;
    assert_full(&refused);
    server.kill();
    let mut server = TestServer::start_on(&data, &[]);
    assert_stored_exactly(&server, &account, &acknowledged).await;
    let refused = send_to(
        &server,
        &account,
        (0..5).map(|i| format!("kill-{i}")).collect(),
        true,
    )
    .await;
    assert_full(&refused);
    // A graceful stop on the full disk (its final WAL checkpoint cannot
    // grow the database file) is still clean, and so is the next start.
    let exit = stop_gracefully(&mut server);
    assert!(exit.success(), "{exit}");
    let server = TestServer::start_on(&data, &[]);
    ballast.remove();
    let accepted = send_to(
        &server,
        &account,
        (0..5).map(|i| format!("kill-{i}")).collect(),
        true,
    )
    .await;
    acknowledged.extend(receipts(&accepted));
    assert_stored_exactly(&server, &account, &acknowledged).await;
    assert_verify_passes(&data);
}

/// An export whose directory is full fails with a reason that says so,
/// leaves no partial file and does not take the server down; once there is
/// room, the next export completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_into_a_full_directory_fails_cleanly() {
    let test = "an_export_into_a_full_directory_fails_cleanly";
    let Some(disk) = SmallDisk::mount("64k", test) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let export_dir = disk.path().join("exports");
    let server = TestServer::start_on(
        data.path(),
        &["--export-dir", &export_dir.display().to_string()],
    );
    let account = server.account("acme");
    for n in 0..3 {
        let ids = (0..200).map(|i| format!("e{n}-{i}")).collect();
        receipts(&send_to(&server, &account, ids, true).await);
    }

    let failed = run_export(&server, &account).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let reason = failed["error"].as_str().unwrap();
    assert!(
        reason.contains("No space left on device") && reason.contains("disk is full"),
        "{reason}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&export_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        leftovers.is_empty(),
        "partial export files left: {leftovers:?}"
    );
    let (status, _) = server.get("/healthz", "").await;
    assert_eq!(status, 200);

    disk.resize("8m");
    let completed = run_export(&server, &account).await;
    assert_eq!(completed["status"], "completed", "{completed}");
    assert_eq!(completed["row_count"], 600 + 1, "{completed}");
}

/// Creates a CSV export and waits for it to finish; returns the export.
async fn run_export(server: &TestServer, account: &TestAccount) -> Value {
    let (status, created) = server
        .post("/api/v1/exports", &account.read, &json!({"format": "csv"}))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["export"]["id"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = server
            .get(&format!("/api/v1/exports/{id}"), &account.read)
            .await;
        assert_eq!(status, 200, "{body}");
        let export = body["export"].clone();
        if export["status"] == "completed" || export["status"] == "failed" {
            return export;
        }
        assert!(
            Instant::now() < deadline,
            "export {id} did not finish: {export}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 503 in SPEC's shape for storage that fails (not full), with a Retry-After.
fn assert_failing(attempt: &Attempt) {
    assert_eq!(attempt.status, 503, "{attempt:?}");
    assert_eq!(error_code(&attempt.body), "unavailable", "{attempt:?}");
    let message = attempt.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("nothing was stored"), "{attempt:?}");
    assert!(
        attempt.retry_after.is_some(),
        "503 without a Retry-After: {attempt:?}"
    );
}

/// PostgreSQL rolls a failed transaction back by itself; what matters is
/// that the server answers it like the embedded store does. A trigger makes
/// the events' transaction fail after its INSERT ran: first as the server
/// does when its disk is full, then by dropping the writer's connection.
/// Each time: 503, nothing stored, and the next request (on a fresh
/// connection) succeeds with the next seq; `auditlog verify` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_transaction_that_fails_midway_answers_503_and_stores_nothing() {
    use auditlog_store_postgres::test_support::TestDatabase;
    use auditlog_store_postgres::PgStore;
    let test = "a_postgres_transaction_that_fails_midway_answers_503_and_stores_nothing";
    let Some(database) = TestDatabase::create(test) else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let key_file = scratch.path().join("signing-key").display().to_string();
    let server = TestServer::start_on_database(
        &database.url,
        scratch.path(),
        &["--signing-key-file", &key_file],
    );
    let owner = PgStore::connect(&database.url).await.unwrap();
    let account = server.account("acme");
    let mut acknowledged: BTreeMap<String, u64> = BTreeMap::new();
    let first = send_to(
        &server,
        &account,
        (0..10).map(|i| format!("base-{i}")).collect(),
        true,
    )
    .await;
    acknowledged.extend(receipts(&first));

    owner
        .execute_raw(
            "CREATE FUNCTION disk_fills() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; \
             END $$; \
             CREATE TRIGGER disk_fills AFTER INSERT ON event_log FOR EACH STATEMENT EXECUTE FUNCTION disk_fills();",
        )
        .await
        .unwrap();
    let batch: Vec<String> = (0..5).map(|i| format!("full-{i}")).collect();
    assert_full(&send_to(&server, &account, batch.clone(), true).await);
    assert_full(&send_to(&server, &account, vec!["full-single".into()], false).await);
    let (status, ready) = server.get("/readyz", "").await;
    assert_eq!(
        (status, &ready["storage_writes"]["status"]),
        (200, &json!("full")),
        "{ready}"
    );
    owner
        .execute_raw("DROP TRIGGER disk_fills ON event_log")
        .await
        .unwrap();
    let accepted = send_to(&server, &account, batch, true).await;
    assert_eq!(
        receipts(&accepted)
            .iter()
            .map(|(_, seq)| *seq)
            .collect::<Vec<_>>(),
        (11..=15).collect::<Vec<_>>()
    );
    acknowledged.extend(receipts(&accepted));

    owner
        .execute_raw(
            "CREATE FUNCTION connection_drops() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); RETURN NULL; \
             END $$; \
             CREATE TRIGGER connection_drops AFTER INSERT ON event_log FOR EACH STATEMENT EXECUTE FUNCTION connection_drops();",
        )
        .await
        .unwrap();
    let dropped: Vec<String> = (0..5).map(|i| format!("dropped-{i}")).collect();
    assert_failing(&send_to(&server, &account, dropped.clone(), true).await);
    owner
        .execute_raw("DROP TRIGGER connection_drops ON event_log")
        .await
        .unwrap();
    let accepted = send_to(&server, &account, dropped, true).await;
    assert_eq!(
        receipts(&accepted)
            .iter()
            .map(|(_, seq)| *seq)
            .collect::<Vec<_>>(),
        (16..=20).collect::<Vec<_>>()
    );
    acknowledged.extend(receipts(&accepted));
    let (status, ready) = server.get("/readyz", "").await;
    assert_eq!(
        (status, &ready["storage_writes"]["status"]),
        (200, &json!("ok")),
        "{ready}"
    );

    assert_stored_exactly(&server, &account, &acknowledged).await;
    let (id, seq) = receipts(&accepted).pop().unwrap();
    assert_provable(&server, &account, &id, seq).await;
    drop(server);
    let store_args = vec![
        "--database-url".to_string(),
        database.url.clone(),
        "--signing-key-file".to_string(),
        key_file,
    ];
    let out = run_cli_on(&store_args, &["verify"], "");
    assert!(
        out.status.success(),
        "verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(owner);
}
