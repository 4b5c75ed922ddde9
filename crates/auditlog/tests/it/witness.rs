//! `auditlog witness`: the key command, the witness served by the real
//! binary, a restart after SIGKILL from its state directory, and its
//! cosignatures checked by an independent implementation written from the
//! C2SP text in JavaScript (tests/fixtures/cosignature.mjs, Node's built-in
//! Ed25519), which also signs cosignatures our verifier must accept.
//! The protocol's status codes one by one: crates/witness/tests/it.rs.

use crate::helpers::{wait_until_listening, KillOnDrop, BIN};
use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::cosignature::CosignatureVerifier;
use auditlog_core::merkle::{leaf_hash, prove_tree, tree_hash, MemoryHashes};
use auditlog_core::note::NoteSigner;
use auditlog_core::witness::AddCheckpoint;
use std::path::Path;
use std::process::{Command, Stdio};

const ORIGIN: &str = "auditlog.test";
const NODE_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cosignature.mjs"
);

fn log_key() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, [4; 32]).unwrap()
}

fn tree(n: usize, tag: &str) -> MemoryHashes {
    let mut tree = MemoryHashes::default();
    for i in 0..n {
        tree.append_leaf(leaf_hash(format!("{tag} {i}").as_bytes()))
            .unwrap();
    }
    tree
}

fn checkpoint(tree: &MemoryHashes) -> Checkpoint {
    Checkpoint {
        origin: ORIGIN.into(),
        size: tree.leaf_count() as u64,
        root: tree_hash(tree.leaf_count(), tree).unwrap(),
    }
}

fn request(old: u64, tree: &MemoryHashes) -> String {
    let proof = if old == 0 {
        Vec::new()
    } else {
        prove_tree(tree.leaf_count(), old as i64, tree).unwrap()
    };
    AddCheckpoint::body(old, &proof, &checkpoint(tree).sign(&log_key()).unwrap())
}

fn witness_cli(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("witness")
        .args(args)
        .env_remove("AUDITLOG_DATABASE_URL")
        .output()
        .unwrap()
}

fn start_witness(dir: &Path) -> (KillOnDrop, String) {
    let mut child = Command::new(BIN)
        .args(["witness", "serve", "--listen", "127.0.0.1:0"])
        .arg("--key-file")
        .arg(dir.join("witness-key"))
        .arg("--logs")
        .arg(dir.join("logs.toml"))
        .arg("--state")
        .arg(dir.join("state"))
        .env_remove("AUDITLOG_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = wait_until_listening(&mut child);
    (KillOnDrop(child), base)
}

async fn post(base: &str, body: String) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{base}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Node, or `None` (with a note on why the test skips) outside CI; CI must have it.
pub(crate) fn node() -> Option<&'static str> {
    let found = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if found {
        return Some("node");
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI must check cosignatures with the independent implementation, but node is missing"
    );
    eprintln!("SKIPPED: the independent cosignature check needs node (apt-get install nodejs)");
    None
}

/// Runs the independent implementation; returns (success, its output line).
pub(crate) fn independent(node: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(node)
        .arg(NODE_SCRIPT)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    (out.status.success(), text)
}

#[test]
fn witness_key_create_prints_the_verifier_key_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("witness-key");
    let file_arg = file.to_str().unwrap();
    let out = witness_cli(&[
        "key",
        "create",
        "--key-file",
        file_arg,
        "--name",
        "w.example/1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let verifier = CosignatureVerifier::parse(printed.trim()).unwrap();
    assert_eq!(verifier.name(), "w.example/1");
    // The key's first byte is the cosignature/v1 algorithm, 0x04.
    let key = printed.trim().splitn(3, '+').nth(2).unwrap();
    let key = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key).unwrap();
    assert_eq!((key[0], key.len()), (0x04, 33), "{printed}");

    let again = witness_cli(&[
        "key",
        "create",
        "--key-file",
        file_arg,
        "--name",
        "w.example/1",
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let shown = witness_cli(&["key", "show", "--key-file", file_arg]);
    assert_eq!(String::from_utf8(shown.stdout).unwrap(), printed);

    let bad_name = witness_cli(&[
        "key",
        "create",
        "--key-file",
        dir.path().join("k2").to_str().unwrap(),
        "--name",
        "two words",
    ]);
    assert!(!bad_name.status.success());
    assert!(String::from_utf8_lossy(&bad_name.stderr).contains("without spaces"));
}

#[test]
fn witness_serve_refuses_a_bad_logs_file_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("witness-key");
    let key_arg = key.to_str().unwrap();
    assert!(
        witness_cli(&["key", "create", "--key-file", key_arg, "--name", "w"])
            .status
            .success()
    );
    let logs = dir.path().join("logs.toml");
    std::fs::write(
        &logs,
        format!("[[log]]\norigin = \"{ORIGIN}\"\nkeys = [\"not-a-key\"]\n"),
    )
    .unwrap();
    let out = witness_cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--key-file",
        key_arg,
        "--logs",
        logs.to_str().unwrap(),
        "--state",
        dir.path().join("state").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("log[0].keys[0]"), "{stderr}");
}

/// The binary cosigns, survives SIGKILL with its state, and its
/// cosignatures verify with code this project did not write.
#[tokio::test]
async fn the_witness_binary_cosigns_survives_a_kill_and_interoperates() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("witness-key");
    let created = witness_cli(&[
        "key",
        "create",
        "--key-file",
        key.to_str().unwrap(),
        "--name",
        "witness.test/w1",
    ]);
    let vkey = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    let verifier = CosignatureVerifier::parse(&vkey).unwrap();
    std::fs::write(
        dir.path().join("logs.toml"),
        format!(
            "[[log]]\norigin = \"{ORIGIN}\"\nkeys = [\"{}\"]\n",
            log_key().verifier().to_text()
        ),
    )
    .unwrap();

    let (t5, t8, t13) = (tree(5, "e"), tree(8, "e"), tree(13, "e"));
    let (mut first, base) = start_witness(dir.path());
    let (status, line5) = post(&base, request(0, &t5)).await;
    assert_eq!(status, 200, "{line5}");
    verifier
        .verify_line(&checkpoint(&t5).body(), &line5)
        .unwrap();
    let (status, line8) = post(&base, request(5, &t8)).await;
    assert_eq!(status, 200, "{line8}");

    // Killed without warning: what it answered 200 for was already stored.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let (_second, base) = start_witness(dir.path());
    assert_eq!(
        post(&base, request(0, &tree(3, "e"))).await,
        (409, "8\n".into())
    );
    assert_eq!(
        post(&base, request(5, &tree(8, "forked"))).await,
        (409, "8\n".into())
    );
    let (status, _) = post(&base, request(8, &tree(13, "forked"))).await;
    assert_eq!(status, 422);
    let (status, line13) = post(&base, request(8, &t13)).await;
    assert_eq!(status, 200, "{line13}");

    let Some(node) = node() else { return };
    for (tree, line) in [(&t5, &line5), (&t8, &line8), (&t13, &line13)] {
        let body = checkpoint(tree).body();
        let (ok, said) = independent(node, &["verify", &vkey, &body, line]);
        assert!(ok, "the independent verifier refused {line}: {said}");
        let timestamp: u64 = said.trim().strip_prefix("OK ").unwrap().parse().unwrap();
        assert_eq!(verifier.verify_line(&body, line).unwrap(), timestamp);
    }
    // It can fail: another checkpoint, or another witness's key.
    let (ok, said) = independent(node, &["verify", &vkey, &checkpoint(&t8).body(), &line13]);
    assert!(!ok, "{said}");
    let other = CosignatureVerifier::parse(&vkey.replacen("witness.test/w1", "witness.test/w2", 1));
    assert!(other.is_err(), "a renamed key must not keep its id");

    // And the other way round: a cosignature made by the independent code
    // verifies with ours, and fails on another body.
    let body = checkpoint(&t13).body();
    let (ok, said) = independent(node, &["sign", "other.witness/w9", "1700000000", &body]);
    assert!(ok, "{said}");
    let (their_vkey, their_line) = said.trim().split_once('\n').unwrap();
    let theirs = CosignatureVerifier::parse(their_vkey).unwrap();
    assert_eq!(
        theirs.verify_line(&body, their_line).unwrap(),
        1_700_000_000
    );
    assert!(theirs
        .verify_line(&checkpoint(&t8).body(), their_line)
        .is_err());
}
