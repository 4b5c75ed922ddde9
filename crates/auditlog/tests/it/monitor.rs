//! `auditlog monitor` against the real server (docs/MONITOR.md): growth
//! across rounds passes, a rollback, a fork and a wrong verifier key are
//! reported with exit code 3 and the signed checkpoints, and `--check-ids`
//! proves events present and catches a missing one.

use crate::helpers::*;
use auditlog_core::checkpoint::{origin, Checkpoint};
use auditlog_core::note::NoteSigner;
use auditlog_server::signing_key;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

async fn ingest(server: &TestServer, account: &TestAccount, ids: std::ops::Range<u32>) {
    let events: Vec<_> = ids
        .map(|i| {
            json!({"id": format!("e{i}"), "event_type": "Test Case", "action": "Create",
                   "actor": {"id": "u-1"}, "target": {"id": "TC-1"}})
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
}

/// The server's verifier key, as a customer pins it.
async fn vkey(server: &TestServer) -> String {
    let response = reqwest::get(server.url("/api/v1/public-key"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap().trim().to_string()
}

/// Asks for event `id`'s proof, which signs a checkpoint covering it now
/// rather than within the background signer's 10 s.
async fn sign_up_to(server: &TestServer, account: &TestAccount, id: &str) {
    let (status, body) = server
        .get(&format!("/api/v1/events/{id}/proof"), &account.read)
        .await;
    assert_eq!(status, 200, "{body}");
}

fn monitor(
    server: &TestServer,
    account: &TestAccount,
    vkey: &str,
    state: &Path,
    extra: &[&str],
) -> Output {
    Command::new(BIN)
        .args(["monitor", "--once", "--url", &server.base])
        .args(["--key", &account.read, "--account", &account.name])
        .args(["--vkey", vkey, "--state"])
        .arg(state)
        .args(extra)
        .env_remove("AUDITLOG_URL")
        .env_remove("AUDITLOG_KEY")
        .output()
        .expect("run auditlog monitor")
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Signs a checkpoint of `size` and `root` for `account` with the server's
/// own key (what a log that rolled back or forked would have signed).
fn signed_by_server(server: &TestServer, account: &str, size: u64, root: [u8; 32]) -> String {
    let signer: NoteSigner =
        signing_key::load(&server.data_dir.join(signing_key::DEFAULT_FILE)).unwrap();
    Checkpoint {
        origin: origin(signer.name(), account),
        size,
        root,
    }
    .sign(&signer)
    .unwrap()
}

#[tokio::test]
async fn growth_across_rounds_passes_and_the_state_follows_it() {
    let server = TestServer::start();
    let account = server.account("acme");
    let vkey = vkey(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("acme.checkpoint");

    // No events yet: nothing to check, nothing remembered.
    let out = monitor(&server, &account, &vkey, &state, &[]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("no events yet"), "{stdout}");
    assert!(!state.exists());

    ingest(&server, &account, 0..3).await;
    sign_up_to(&server, &account, "e2").await;
    let out = monitor(&server, &account, &vkey, &state, &[]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("verified size 3 root"), "{stdout}");
    assert!(stdout.contains("the first one remembered"), "{stdout}");
    let first = std::fs::read_to_string(&state).unwrap();
    assert!(first.starts_with("auditlog/acme\n3\n"), "{first}");

    ingest(&server, &account, 3..10).await;
    sign_up_to(&server, &account, "e9").await;
    let out = monitor(&server, &account, &vkey, &state, &[]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("verified size 10 root"), "{stdout}");
    assert!(stdout.contains("consistent with size 3"), "{stdout}");
    assert!(std::fs::read_to_string(&state)
        .unwrap()
        .starts_with("auditlog/acme\n10\n"));

    let out = monitor(&server, &account, &vkey, &state, &[]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("size 10") && stdout.contains("unchanged"),
        "{stdout}"
    );
    // No temporary file is left beside the state.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // A wrong --url (the server answers 404 to any unknown path) is a
    // failure to check, not an empty log, which would be a rollback.
    let out = Command::new(BIN)
        .args(["monitor", "--once", "--url", &server.url("/not-the-api")])
        .args(["--key", &account.read, "--account", "acme", "--vkey", &vkey])
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("check --url"), "{stderr}");
}

#[tokio::test]
async fn check_ids_proves_present_events_and_reports_a_missing_one() {
    let server = TestServer::start();
    let account = server.account("acme");
    let vkey = vkey(&server).await;
    ingest(&server, &account, 0..5).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let ids = dir.path().join("ids");
    std::fs::write(&ids, "# ours\ne0\ne3\n\ne4\n").unwrap();
    let ids_arg = ids.display().to_string();

    let out = monitor(&server, &account, &vkey, &state, &["--check-ids", &ids_arg]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("verified the inclusion of 3 events"),
        "{stdout}"
    );

    // Events after the checkpoint the round verified: their proofs come
    // with a newer checkpoint, which must extend the remembered one.
    ingest(&server, &account, 5..8).await;
    std::fs::write(&ids, "e7\ne1\n").unwrap();
    let out = monitor(&server, &account, &vkey, &state, &["--check-ids", &ids_arg]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(std::fs::read_to_string(&state)
        .unwrap()
        .starts_with("auditlog/acme\n8\n"));

    std::fs::write(&ids, "e1\nnever-sent\n").unwrap();
    let out = monitor(&server, &account, &vkey, &state, &["--check-ids", &ids_arg]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("missing event") && stderr.contains("never-sent"),
        "{stderr}"
    );
    assert!(stdout.contains("ALARM: missing event"), "{stdout}");
}

#[tokio::test]
async fn a_rollback_and_a_fork_are_reported_with_both_checkpoints() {
    let server = TestServer::start();
    let account = server.account("acme");
    let vkey = vkey(&server).await;
    ingest(&server, &account, 0..4).await;
    sign_up_to(&server, &account, "e3").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");

    // The monitor once saw size 9, signed by this log's key: the log now
    // serving size 4 rolled back.
    let bigger = signed_by_server(&server, "acme", 9, [5; 32]);
    std::fs::write(&state, &bigger).unwrap();
    let out = monitor(&server, &account, &vkey, &state, &[]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("rollback") && stderr.contains("size 4") && stderr.contains("size 9"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&bigger),
        "the remembered note is printed: {stdout}"
    );
    assert!(
        stdout.contains("auditlog/acme\n4\n"),
        "the served note is printed: {stdout}"
    );
    // The evidence is kept: the state is not replaced by the smaller tree.
    assert_eq!(std::fs::read_to_string(&state).unwrap(), bigger);

    // Another root at the size the log serves now: a fork.
    let forked = signed_by_server(&server, "acme", 4, [6; 32]);
    std::fs::write(&state, &forked).unwrap();
    let out = monitor(&server, &account, &vkey, &state, &[]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("fork") && stderr.contains("size 4"),
        "{stderr}"
    );
    assert!(stdout.contains(&forked), "{stdout}");
    assert!(stdout.contains("served checkpoint (size 4"), "{stdout}");
}

#[tokio::test]
async fn a_wrong_verifier_key_fails() {
    let server = TestServer::start();
    let account = server.account("acme");
    let right = vkey(&server).await;
    ingest(&server, &account, 0..2).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let wrong = NoteSigner::from_seed("auditlog", [7; 32])
        .unwrap()
        .verifier()
        .to_text();

    let out = monitor(&server, &account, &wrong, &state, &[]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("bad signature") && stderr.contains("--vkey"),
        "{stderr}"
    );
    assert!(!state.exists());

    // A state file verified with the right key is refused with the wrong one.
    let out = monitor(&server, &account, &right, &state, &[]);
    assert!(out.status.success(), "{}", texts(&out).1);
    let out = monitor(&server, &account, &wrong, &state, &[]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--state"), "{stderr}");

    let out = monitor(&server, &account, "not a key", &state, &[]);
    assert!(texts(&out).1.contains("--vkey"));
}

/// A log that serves a checkpoint its history does not support: signed by
/// its key, but the consistency proof (the real tree's) does not lead to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consistency_proof_that_fails_is_reported() {
    let server = TestServer::start();
    let account = server.account("acme");
    let vkey = vkey(&server).await;
    ingest(&server, &account, 0..3).await;
    sign_up_to(&server, &account, "e2").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = monitor(&server, &account, &vkey, &state, &[]);
    assert!(out.status.success(), "{}", texts(&out).1);
    let remembered = std::fs::read_to_string(&state).unwrap();

    ingest(&server, &account, 3..10).await;
    let (status, proof) = server
        .get("/api/v1/proofs/consistency?from=3&to=10", &account.read)
        .await;
    assert_eq!(status, 200, "{proof}");
    let rewritten = signed_by_server(&server, "acme", 10, [8; 32]);
    let note = rewritten.clone();
    let app = axum::Router::new()
        .route(
            "/api/v1/checkpoint",
            axum::routing::get(move || async move { note }),
        )
        .route(
            "/api/v1/proofs/consistency",
            axum::routing::get(move || async move { axum::Json(proof) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let out = Command::new(BIN)
        .args(["monitor", "--once", "--url", &fake, "--key", &account.read])
        .args(["--account", "acme", "--vkey", &vkey, "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("bad proof") && stderr.contains("size 10") && stderr.contains("size 3"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&remembered) && stdout.contains(&rewritten),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&state).unwrap(), remembered);
}

/// Without `--once`: rounds repeat, follow the growth, and a round that
/// cannot reach the server is not an alarm.
#[tokio::test]
async fn rounds_repeat_and_an_unreachable_server_is_not_an_alarm() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::Duration;

    let mut server = TestServer::start();
    let account = server.account("acme");
    let vkey = vkey(&server).await;
    ingest(&server, &account, 0..2).await;
    sign_up_to(&server, &account, "e1").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = Command::new(BIN)
        .args(["monitor", "--interval", "1s", "--url", &server.base])
        .args(["--key", &account.read, "--account", "acme", "--vkey", &vkey])
        .arg("--state")
        .arg(&state)
        .env("AUDITLOG_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let mut child = KillOnDrop(child);
    // Both streams' lines, in one channel.
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stderr_tx = lines_tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = stderr_tx.send(line);
        }
    });
    let wait_for = |needle: &str| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no line with {needle:?}"));
        if line.contains(needle) {
            return;
        }
    };
    wait_for("verified size 2 root");
    ingest(&server, &account, 2..5).await;
    sign_up_to(&server, &account, "e4").await;
    wait_for("consistent with size 2");

    server.kill();
    // Two failed rounds, each logged as a warning, and still running.
    wait_for("could not check the log");
    wait_for("could not check the log");
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the monitor stopped when the server went away"
    );
    assert!(std::fs::read_to_string(&state)
        .unwrap()
        .starts_with("auditlog/acme\n5\n"));
}

/// Copies the embedded database's files (`auditlog.db*`) from `from` to `to`.
fn copy_database(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("auditlog.db") {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// The attack the server's own guard cannot see: an operator restores an
/// older database and deletes the signed-heads files, so the server signs a
/// smaller tree, then a different tree of the remembered size. Only a
/// monitor that remembered what was signed catches both.
#[tokio::test]
async fn a_restored_database_is_caught_as_a_rollback_then_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_on(dir.path(), &[]);
    let account = server.account("acme");
    let vkey = vkey(&server).await;
    ingest(&server, &account, 0..5).await;
    sign_up_to(&server, &account, "e4").await;
    server.kill();
    copy_database(dir.path(), backup.path());

    let mut server = TestServer::start_on(dir.path(), &[]);
    ingest(&server, &account, 5..10).await;
    sign_up_to(&server, &account, "e9").await;
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state");
    let out = monitor(&server, &account, &vkey, &state, &[]);
    assert!(out.status.success(), "{}", texts(&out).1);
    let remembered = std::fs::read_to_string(&state).unwrap();
    assert!(
        remembered.starts_with("auditlog/acme\n10\n"),
        "{remembered}"
    );
    server.kill();

    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("auditlog.db"))
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    copy_database(backup.path(), dir.path());
    // Both of the server's own records of what it signed (the accounts' and
    // the root log's), so that nothing on the server side objects.
    std::fs::remove_file(dir.path().join(signing_key::HEADS_FILE)).unwrap();
    // (The root log's may not be written yet if no root round ran.)
    let _ = std::fs::remove_file(dir.path().join(signing_key::ROOT_HEAD_FILE));
    let server = TestServer::start_on(dir.path(), &[]);

    let out = monitor(&server, &account, &vkey, &state, &[]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("rollback") && stderr.contains("size 5") && stderr.contains("size 10"),
        "{stderr}"
    );
    assert!(stdout.contains(&remembered), "{stdout}");

    // Other events up to the same size: the server signs another tree of size 10.
    let (status, body) = server
        .post(
            "/api/v1/events",
            &account.ingest,
            &json!({"events": (5..10).map(|i| json!({"id": format!("x{i}"),
                "event_type": "Test Case", "action": "Delete", "actor": {"id": "u-2"},
                "target": {"id": "TC-9"}})).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    sign_up_to(&server, &account, "x9").await;
    let out = monitor(&server, &account, &vkey, &state, &[]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("fork") && stderr.contains("size 10"),
        "{stderr}"
    );
    assert!(stdout.contains(&remembered), "{stdout}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), remembered);
}
