//! The operator commands and graceful shutdown, through the real binary.

use crate::helpers::{cli, run_cli, TestServer};
use serde_json::json;
use std::process::Command;

#[test]
fn admin_commands_check_their_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(cli(d, &["account", "create", "acme"], "").contains("created account acme"));
    let user = |email: &'static str, role: &'static str| -> Vec<&'static str> {
        vec![
            "user",
            "create",
            "--account",
            "acme",
            "--email",
            email,
            "--role",
            role,
        ]
    };
    let refused: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["account", "create", "acme"], "", "already exists"),
        (
            vec!["account", "create", "Bad Name"],
            "",
            "must be 1-64 characters",
        ),
        (
            vec!["key", "create", "--account", "nope", "--scope", "read"],
            "",
            "no account named",
        ),
        (
            vec!["key", "create", "--account", "acme", "--scope", "write"],
            "",
            "unknown scope",
        ),
        (user("ada@acme.test", "admin"), "short\n", "at least 12"),
        (
            user("ada@acme.test", "owner"),
            "long enough password\n",
            "unknown role",
        ),
        (
            user("not-an-email", "admin"),
            "long enough password\n",
            "not an email address",
        ),
    ];
    for (args, stdin, message) in refused {
        let out = run_cli(d, &args, stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(message),
            "{args:?}: {err}"
        );
    }
    let created = cli(d, &user("Ada@Acme.test", "admin"), "long enough password\n");
    assert!(created.contains("created admin ada@acme.test"), "{created}");
    let again = run_cli(
        d,
        &user("ada@acme.test", "member"),
        "another long password\n",
    );
    assert!(
        !again.status.success()
            && String::from_utf8_lossy(&again.stderr).contains("already exists")
    );
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
    let (status, _) = server.post("/api/v1/events", &account.ingest, &event).await;
    assert_eq!(status, 201);
    let (status, page) = server.get("/api/v1/events", &account.read).await;
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
