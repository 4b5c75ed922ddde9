//! The witness over real HTTP on 127.0.0.1: every status code of
//! `add-checkpoint`, malformed bodies, the atomic check-and-store under
//! concurrent requests, and a restart from the state directory; then the
//! log's end (`submitter`) against three of them: a quorum of cosigned
//! root checkpoints over several accounts, a witness killed and restarted,
//! and the alarms of a rollback and a fork.

mod submission;

use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::cosignature::CosignatureSigner;
use auditlog_core::merkle::{leaf_hash, prove_tree, tree_hash, Hash, MemoryHashes};
use auditlog_core::note::NoteSigner;
use auditlog_core::witness::AddCheckpoint;
use auditlog_witness::{Logs, Witness};
use std::path::Path;
use std::sync::Arc;

const ORIGIN: &str = "log.example/acme";

fn log_key() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, [1; 32]).unwrap()
}

fn witness_key() -> CosignatureSigner {
    CosignatureSigner::from_seed("witness.example/w1", [2; 32]).unwrap()
}

/// A tree of `n` leaves named after `tag`.
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

fn proof(tree: &MemoryHashes, old: u64) -> Vec<Hash> {
    let new = tree.leaf_count();
    if old == 0 || old as i64 >= new {
        Vec::new()
    } else {
        prove_tree(new, old as i64, tree).unwrap()
    }
}

/// The `add-checkpoint` body for `tree` from `old`, signed by `signer`.
fn request(old: u64, tree: &MemoryHashes, signer: &NoteSigner) -> String {
    let note = checkpoint(tree).sign(signer).unwrap();
    AddCheckpoint::body(old, &proof(tree, old), &note)
}

struct TestWitness {
    base: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestWitness {
    async fn start(state: &Path) -> Self {
        Self::start_for(state, &log_key(), witness_key()).await
    }

    /// A witness with `key` for the one log whose key is `log`.
    async fn start_for(state: &Path, log: &NoteSigner, key: CosignatureSigner) -> Self {
        let logs = Logs::parse(&format!(
            "[[log]]\norigin = \"{}\"\nkeys = [\"{}\"]\n",
            log.name(),
            log.verifier().to_text()
        ))
        .unwrap();
        let witness = Arc::new(Witness::open(logs, key, state).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            auditlog_witness::serve(listener, witness, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            base,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.unwrap();
    }

    /// Posts `body`; returns the status, the content type and the body.
    async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, String, String) {
        let response = self
            .http
            .post(format!("{}/add-checkpoint", self.base))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    }

    /// Posts and expects a cosignature; checks it with the witness's key.
    async fn cosigns(&self, body: String, tree: &MemoryHashes) {
        let (status, _, text) = self.post(body).await;
        assert_eq!(status, 200, "{text}");
        let verifier = witness_key().verifier();
        let timestamp = verifier
            .verify_line(&checkpoint(tree).body(), &text)
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(timestamp.abs_diff(now) < 60, "timestamp {timestamp}");
    }

    async fn refuses(&self, body: impl Into<reqwest::Body>, status: u16, what: &str) -> String {
        let (got, _, text) = self.post(body).await;
        assert_eq!(got, status, "{what}: {text}");
        text
    }

    /// Expects a 409 whose `text/x.tlog.size` body says `size`.
    async fn conflicts(&self, body: String, size: u64, what: &str) {
        let (status, content_type, text) = self.post(body).await;
        assert_eq!(status, 409, "{what}: {text}");
        assert_eq!(content_type, "text/x.tlog.size", "{what}");
        assert_eq!(text, format!("{size}\n"), "{what}");
    }
}

#[tokio::test]
async fn every_status_code_of_add_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let witness = TestWitness::start(dir.path()).await;
    let (t5, t8) = (tree(5, "leaf"), tree(8, "leaf"));

    // 200: the first checkpoint (from 0), then a consistent one.
    witness.cosigns(request(0, &t5, &log_key()), &t5).await;
    witness.cosigns(request(5, &t8, &log_key()), &t8).await;
    // The same checkpoint again is cosigned again.
    witness.cosigns(request(8, &t8, &log_key()), &t8).await;

    // 404: an origin this witness is not configured for.
    let other_key = NoteSigner::from_seed("other.example", [1; 32]).unwrap();
    let other = Checkpoint {
        origin: "other.example".into(),
        ..checkpoint(&t8)
    };
    let body = AddCheckpoint::body(0, &[], &other.sign(&other_key).unwrap());
    witness.refuses(body, 404, "unknown origin").await;

    // 403: signed by an unknown key (with the log's name), or altered.
    let t13 = tree(13, "leaf");
    let impostor = NoteSigner::from_seed(ORIGIN, [9; 32]).unwrap();
    witness
        .refuses(request(8, &t13, &impostor), 403, "unknown key")
        .await;
    let altered = request(8, &t13, &log_key()).replacen("\n13\n", "\n14\n", 1);
    witness.refuses(altered, 403, "bad signature").await;

    // 400: old size larger than the checkpoint's.
    witness
        .refuses(
            request(13, &t8, &log_key()),
            400,
            "old size larger than new",
        )
        .await;

    // 409 with the witness's size: a stale old size, a client that knows
    // nothing (old 0), and a fork at the witness's own size.
    witness
        .conflicts(request(5, &t13, &log_key()), 8, "stale old size")
        .await;
    witness
        .conflicts(request(0, &t13, &log_key()), 8, "old size 0")
        .await;
    witness
        .conflicts(request(8, &tree(8, "forked"), &log_key()), 8, "fork")
        .await;

    // 422: a proof that does not lead from the witness's root.
    witness
        .refuses(
            request(8, &tree(13, "forked"), &log_key()),
            422,
            "forked history",
        )
        .await;
    let note = checkpoint(&t13).sign(&log_key()).unwrap();
    let mut short = proof(&t13, 8);
    short.pop();
    witness
        .refuses(
            AddCheckpoint::body(8, &short, &note),
            422,
            "truncated proof",
        )
        .await;

    // 400: malformed bodies.
    let hash_line = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n";
    let malformed = [
        (
            "64 proof lines",
            format!("old 8\n{}\n{note}", hash_line.repeat(64)),
        ),
        ("bad base64", format!("old 8\n!!!!\n\n{note}")),
        ("a leading zero", format!("old 08\n\n{note}")),
        ("no old line", format!("\n{note}")),
        ("no checkpoint", "old 8\n\n".to_string()),
        (
            "an unsigned checkpoint",
            format!("old 8\n\n{}", checkpoint(&t13).body()),
        ),
    ];
    for (what, body) in malformed {
        let text = witness.refuses(body, 400, what).await;
        assert!(text.starts_with("malformed request"), "{what}: {text}");
    }
    witness
        .refuses(vec![0xffu8, 0xfe, b'\n'], 400, "not UTF-8")
        .await;
    // A body over the limit, and the wrong method.
    witness
        .refuses("x".repeat(65 * 1024), 413, "too large")
        .await;
    let get = witness
        .http
        .get(format!("{}/add-checkpoint", witness.base))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);

    // Nothing refused moved the witness: 13 from 8 is still cosigned.
    witness.cosigns(request(8, &t13, &log_key()), &t13).await;
    witness.stop().await;
}

/// The check and the store are one step: of many requests from the same
/// old size, exactly one is cosigned and the others learn the new size.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_from_one_state_cosign_once() {
    let dir = tempfile::tempdir().unwrap();
    let witness = Arc::new(TestWitness::start(dir.path()).await);
    witness
        .cosigns(request(0, &tree(4, "leaf"), &log_key()), &tree(4, "leaf"))
        .await;
    let mut tasks = Vec::new();
    for size in 5..21 {
        let witness = witness.clone();
        tasks.push(tokio::spawn(async move {
            let (status, _, body) = witness
                .post(request(4, &tree(size, "leaf"), &log_key()))
                .await;
            (size, status, body)
        }));
    }
    let mut accepted = Vec::new();
    let mut conflicts = Vec::new();
    for task in tasks {
        let (size, status, body) = task.await.unwrap();
        match status {
            200 => accepted.push(size),
            409 => conflicts.push(body),
            other => panic!("size {size}: {other} {body}"),
        }
    }
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    let expected = format!("{}\n", accepted[0]);
    assert!(
        conflicts.iter().all(|body| *body == expected),
        "{conflicts:?}"
    );
}

/// A witness restarted from its state directory remembers what it cosigned:
/// it refuses a rollback and a fork, and continues from where it was.
#[tokio::test]
async fn a_restarted_witness_keeps_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let (t8, t20) = (tree(8, "leaf"), tree(20, "leaf"));
    let first = TestWitness::start(dir.path()).await;
    first.cosigns(request(0, &t8, &log_key()), &t8).await;
    first.stop().await;

    let second = TestWitness::start(dir.path()).await;
    second
        .conflicts(
            request(0, &tree(3, "leaf"), &log_key()),
            8,
            "rollback after restart",
        )
        .await;
    second
        .conflicts(
            request(8, &tree(8, "forked"), &log_key()),
            8,
            "fork after restart",
        )
        .await;
    second
        .refuses(
            request(8, &tree(20, "forked"), &log_key()),
            422,
            "forked growth after restart",
        )
        .await;
    second.cosigns(request(8, &t20, &log_key()), &t20).await;
    second.stop().await;

    // And the state holds the note as the log sent it.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "checkpoint"))
        .collect();
    assert_eq!(files.len(), 1);
    let stored = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(stored, checkpoint(&t20).sign(&log_key()).unwrap());

    // A second process on the same directory is refused while one runs.
    let running = TestWitness::start(dir.path()).await;
    let logs = Logs::parse(&format!(
        "[[log]]\norigin = \"{ORIGIN}\"\nkeys = [\"{}\"]\n",
        log_key().verifier().to_text()
    ))
    .unwrap();
    let err = Witness::open(logs, witness_key(), dir.path()).unwrap_err();
    assert!(err.to_string().contains("another witness process"), "{err}");
    running.stop().await;
}

/// 500: the state cannot be stored (its directory is gone here; a full or
/// failing disk in life). Nothing is cosigned and the witness's memory does
/// not move: once the directory is back, the same checkpoint is still new
/// to it and a fork of the refused one is not taken for its state.
#[tokio::test]
async fn a_state_that_cannot_be_stored_is_500_and_cosigns_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let moved = dir.path().join("moved");
    let witness = TestWitness::start(&state).await;
    let (t5, t8) = (tree(5, "leaf"), tree(8, "leaf"));
    witness.cosigns(request(0, &t5, &log_key()), &t5).await;

    std::fs::rename(&state, &moved).unwrap();
    let (status, _, text) = witness.post(request(5, &t8, &log_key())).await;
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("cannot store the state file"), "{text}");
    assert!(!text.contains('\u{2014}'), "a cosignature was sent: {text}");

    std::fs::rename(&moved, &state).unwrap();
    // Still at 5: a request from 8 is told so, and 5 → 8 is cosigned now.
    witness
        .conflicts(request(8, &t8, &log_key()), 5, "old size not stored")
        .await;
    witness.cosigns(request(5, &t8, &log_key()), &t8).await;
    witness.stop().await;
}
