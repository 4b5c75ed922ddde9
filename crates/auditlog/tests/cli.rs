//! The operator commands and graceful shutdown, through the real binary.

mod common;

use common::{cli, get, post, TestServer, BIN};
use serde_json::json;
use std::process::{Command, Stdio};

fn run(data_dir: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn admin_commands_check_their_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(cli(d, &["account", "create", "acme"], "").contains("created account acme"));
    let (ok, err) = run(d, &["account", "create", "acme"], "");
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, err) = run(d, &["account", "create", "Bad Name"], "");
    assert!(!ok && err.contains("must be 1-64 characters"), "{err}");
    let (ok, err) = run(
        d,
        &["key", "create", "--account", "nope", "--scope", "read"],
        "",
    );
    assert!(!ok && err.contains("no account named"), "{err}");
    let (ok, err) = run(
        d,
        &["key", "create", "--account", "acme", "--scope", "admin"],
        "",
    );
    assert!(!ok && err.contains("unknown scope"), "{err}");
    let (ok, err) = run(
        d,
        &[
            "user",
            "create",
            "--account",
            "acme",
            "--email",
            "ada@acme.test",
            "--role",
            "admin",
        ],
        "short\n",
    );
    assert!(!ok && err.contains("at least 12"), "{err}");
    let (ok, err) = run(
        d,
        &[
            "user",
            "create",
            "--account",
            "acme",
            "--email",
            "ada@acme.test",
            "--role",
            "owner",
        ],
        "long enough password\n",
    );
    assert!(!ok && err.contains("unknown role"), "{err}");
    assert!(cli(
        d,
        &[
            "user",
            "create",
            "--account",
            "acme",
            "--email",
            "Ada@Acme.test",
            "--role",
            "admin"
        ],
        "long enough password\n"
    )
    .contains("created admin ada@acme.test"));
    let (ok, err) = run(
        d,
        &[
            "user",
            "create",
            "--account",
            "acme",
            "--email",
            "ada@acme.test",
            "--role",
            "member",
        ],
        "another long password\n",
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    // Secrets are stored hashed: neither the key nor the password appears in the database file.
    let key = cli(
        d,
        &["key", "create", "--account", "acme", "--scope", "read"],
        "",
    );
    let raw = std::fs::read(d.join("auditlog.db")).unwrap();
    let wal = std::fs::read(d.join("auditlog.db-wal")).unwrap_or_default();
    for secret in [key.trim().as_bytes(), b"long enough password".as_slice()] {
        for bytes in [&raw, &wal] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "a secret was stored in plain text"
            );
        }
    }
}

#[tokio::test]
async fn keys_created_while_the_server_runs_work_at_once_and_sigterm_drains() {
    let server = TestServer::start();
    let account = server.account("live");
    let event = json!({"event_type": "Element", "action": "Create", "actor": {"id": "u"}});
    let (status, _) = post(&server, "/api/v1/events", &account.ingest, &event).await;
    assert_eq!(status, 201);
    let (status, page) = get(&server, "/api/v1/events", &account.read).await;
    assert_eq!(status, 200);
    assert_eq!(page["events"].as_array().unwrap().len(), 1);

    // SIGTERM: the server stops accepting, finishes what it has, and exits cleanly.
    let pid = server.child.id().to_string();
    let mut server = server;
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = server.child.wait().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
}
