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
