//! The server as a witnessed log (issue 17, SPEC "Witnesses"), end to end:
//! the real server submits its root checkpoints to three real witnesses
//! (`auditlog witness serve` on loopback ports) with quorum 2. Every root
//! checkpoint is cosigned; a killed witness leaves the quorum standing; a
//! witness restarted from its state continues; a new account is covered
//! without touching any witness. The attack: a database restored from an
//! older copy with the signed-heads files deleted, which the server's own
//! guard cannot see, is refused by the witnesses, the alarm fires on
//! `/readyz`, and `auditlog monitor` names the two checkpoints.

use crate::helpers::*;
use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::cosignature::CosignatureVerifier;
use auditlog_core::merkle::Hash;
use auditlog_core::note::NoteVerifier;
use auditlog_core::root_log::{check_covered, open_cosigned};
use auditlog_server::signing_key;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LOG_NAME: &str = auditlog_core::checkpoint::DEFAULT_LOG_NAME;
/// How long the tests wait for the submitter (a round a second, backoff
/// after a witness failed).
const PATIENCE: Duration = Duration::from_secs(60);

/// One witness: its directory (key, logs file, state) and the port it
/// listens on, kept across restarts.
struct Witness {
    dir: PathBuf,
    vkey: String,
    port: u16,
    process: Option<KillOnDrop>,
}

impl Witness {
    fn create(dir: &Path, name: &str, log_vkey: &str) -> Self {
        let key_file = dir.join("key");
        let out = Command::new(BIN)
            .args(["witness", "key", "create", "--name", name, "--key-file"])
            .arg(&key_file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vkey = String::from_utf8(out.stdout).unwrap().trim().to_string();
        std::fs::write(
            dir.join("logs.toml"),
            format!("[[log]]\norigin = \"{LOG_NAME}\"\nkeys = [\"{log_vkey}\"]\n"),
        )
        .unwrap();
        let mut witness = Self {
            dir: dir.to_path_buf(),
            vkey,
            port: 0,
            process: None,
        };
        witness.start();
        witness
    }

    /// Starts it (again, on the same port once it had one).
    fn start(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = Command::new(BIN)
                .args(["witness", "serve", "--listen"])
                .arg(format!("127.0.0.1:{}", self.port))
                .arg("--key-file")
                .arg(self.dir.join("key"))
                .arg("--logs")
                .arg(self.dir.join("logs.toml"))
                .arg("--state")
                .arg(self.dir.join("state"))
                .env_remove("AUDITLOG_DATABASE_URL")
                .env("AUDITLOG_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                wait_until_listening(&mut child)
            }));
            match started {
                Ok(base) => {
                    self.port = base.rsplit(':').next().unwrap().parse().unwrap();
                    self.process = Some(KillOnDrop(child));
                    return;
                }
                // The port may linger for a moment after a kill.
                Err(_) if Instant::now() < deadline => {
                    let _ = child.wait();
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => std::panic::resume_unwind(e),
            }
        }
    }

    fn kill(&mut self) {
        self.process.take();
    }

    fn setting(&self) -> String {
        format!("http://127.0.0.1:{} {}", self.port, self.vkey)
    }

    fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier::parse(&self.vkey).unwrap()
    }
}

/// A data directory with the server's signing key made ahead (the
/// witnesses' logs files name its verifier key) and three witnesses.
struct Setup {
    data: tempfile::TempDir,
    _witness_dirs: Vec<tempfile::TempDir>,
    witnesses: Vec<Witness>,
    log: NoteVerifier,
}

impl Setup {
    fn new() -> Self {
        let data = tempfile::tempdir().unwrap();
        let key =
            signing_key::load_or_create(&data.path().join(signing_key::DEFAULT_FILE), LOG_NAME)
                .unwrap();
        let log = key.verifier();
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let witnesses = dirs
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                Witness::create(dir.path(), &format!("witness.test/w{i}"), &log.to_text())
            })
            .collect();
        Self {
            data,
            _witness_dirs: dirs,
            witnesses,
            log,
        }
    }

    fn start_server(&self) -> TestServer {
        let list: Vec<String> = self.witnesses.iter().map(Witness::setting).collect();
        let list = list.join(", ");
        TestServer::start_on(
            self.data.path(),
            &["--witnesses", &list, "--witness-quorum", "2"],
        )
    }

    /// A server on a PostgreSQL database, with this setup's signing key.
    fn start_server_on(&self, url: &str, scratch: &Path) -> TestServer {
        let list: Vec<String> = self.witnesses.iter().map(Witness::setting).collect();
        let list = list.join(", ");
        let key = self.data.path().join(signing_key::DEFAULT_FILE);
        let key = key.display().to_string();
        TestServer::start_on_database(
            url,
            scratch,
            &[
                "--witnesses",
                &list,
                "--witness-quorum",
                "2",
                "--signing-key-file",
                &key,
            ],
        )
    }

    fn verifiers(&self) -> Vec<CosignatureVerifier> {
        self.witnesses.iter().map(Witness::verifier).collect()
    }
}

async fn ingest(server: &TestServer, account: &TestAccount, prefix: &str, n: u32) {
    let events: Vec<_> = (0..n)
        .map(|i| {
            json!({"id": format!("{prefix}{i}"), "event_type": "Test Case", "action": "Create",
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

/// `GET /api/v1/root-checkpoint[?size=N]`: status, the note, the header.
async fn root_checkpoint(
    server: &TestServer,
    key: &str,
    size: Option<u64>,
) -> (u16, String, String) {
    let path = match size {
        Some(size) => format!("/api/v1/root-checkpoint?size={size}"),
        None => "/api/v1/root-checkpoint".to_string(),
    };
    let response = reqwest::Client::new()
        .get(server.url(&path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let header = response
        .headers()
        .get("auditlog-cosignatures")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, response.text().await.unwrap(), header)
}

fn hashes(value: &serde_json::Value) -> Vec<Hash> {
    value
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
        .collect()
}

/// Waits until the account's checkpoint of at least `size` is covered by a
/// root checkpoint that `quorum` of `witnesses` cosigned, checks it all
/// offline (signatures, cosignatures, the inclusion) and returns the
/// account checkpoint's size and the root checkpoint's.
async fn witnessed(
    server: &TestServer,
    setup: &Setup,
    account: &TestAccount,
    size: u64,
    witnesses: &[CosignatureVerifier],
    quorum: usize,
) -> (u64, u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = server.get("/api/v1/proofs/root", &account.read).await;
        // (After a key rotation the witnessed checkpoint is signed by the
        // old key until one signed by the new key is witnessed.)
        let opened = Checkpoint::open(body["checkpoint"].as_str().unwrap_or_default(), &setup.log);
        if let (200, Ok(account_checkpoint)) = (status, opened) {
            assert_eq!(
                account_checkpoint.origin,
                format!("{LOG_NAME}/{}", account.name)
            );
            let root = &body["root"];
            let opened = open_cosigned(
                root["checkpoint"].as_str().unwrap(),
                LOG_NAME,
                &setup.log,
                witnesses,
                quorum,
            );
            if let Ok(opened) = opened {
                if account_checkpoint.size >= size {
                    check_covered(
                        &account_checkpoint,
                        root["leaf_index"].as_u64().unwrap(),
                        &hashes(&root["hashes"]),
                        &opened.checkpoint,
                    )
                    .unwrap();
                    assert_eq!(root["tree_size"].as_u64(), Some(opened.checkpoint.size));
                    return (account_checkpoint.size, opened.checkpoint.size);
                }
            }
        } else {
            assert!(status == 404 || status == 200, "{status} {body}");
        }
        assert!(
            Instant::now() < deadline,
            "no root checkpoint with {quorum} cosignature(s) covers {}'s size {size}: {status} {body}",
            account.name
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every root checkpoint signed so far (sizes 1..=latest that exist) has
/// at least `quorum` valid cosignatures by the three witnesses.
async fn every_root_checkpoint_is_cosigned(
    server: &TestServer,
    setup: &Setup,
    key: &str,
    from: u64,
    quorum: usize,
) -> u64 {
    let (status, latest, _) = root_checkpoint(server, key, None).await;
    assert_eq!(status, 200, "{latest}");
    let latest = Checkpoint::open(&latest, &setup.log).unwrap().size;
    let mut seen = 0;
    for size in from..=latest {
        let (status, note, header) = root_checkpoint(server, key, Some(size)).await;
        if status == 404 {
            continue;
        }
        assert_eq!(status, 200, "{note}");
        seen += 1;
        let opened = open_cosigned(&note, LOG_NAME, &setup.log, &setup.verifiers(), quorum)
            .unwrap_or_else(|e| panic!("root checkpoint of size {size}: {e}\n{note}"));
        assert_eq!(header, format!("{}/2", opened.cosigners.len()), "{note}");
    }
    assert!(seen > 0);
    latest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_witnesses_cosign_every_root_checkpoint_through_a_kill_a_restart_and_a_new_account() {
    let mut setup = Setup::new();
    let server = setup.start_server();
    let acme = server.account("acme");
    let globex = server.account("globex");
    let all = setup.verifiers();

    ingest(&server, &acme, "a", 5).await;
    ingest(&server, &globex, "g", 3).await;
    witnessed(&server, &setup, &acme, 5, &all, 3).await;
    witnessed(&server, &setup, &globex, 3, &all, 3).await;
    ingest(&server, &acme, "b", 4).await;
    witnessed(&server, &setup, &acme, 9, &all, 3).await;
    // The event proof carries the same: its checkpoint and its root inclusion.
    let (status, proof) = server.get("/api/v1/events/b3/proof", &acme.read).await;
    assert_eq!(status, 200, "{proof}");
    let checkpoint = Checkpoint::open(proof["checkpoint"].as_str().unwrap(), &setup.log).unwrap();
    let root = &proof["root"];
    let opened = open_cosigned(
        root["checkpoint"].as_str().unwrap(),
        LOG_NAME,
        &setup.log,
        &all,
        2,
    )
    .unwrap();
    check_covered(
        &checkpoint,
        root["leaf_index"].as_u64().unwrap(),
        &hashes(&root["hashes"]),
        &opened.checkpoint,
    )
    .unwrap();
    let before_kill = every_root_checkpoint_is_cosigned(&server, &setup, &acme.read, 1, 3).await;

    // One witness killed: the quorum of 2 holds.
    setup.witnesses[1].kill();
    ingest(&server, &acme, "c", 2).await;
    let (_, root_size) = witnessed(&server, &setup, &acme, 11, &all, 2).await;
    let (_, note, header) = root_checkpoint(&server, &acme.read, Some(root_size)).await;
    assert_eq!(header, "2/2", "{note}");
    assert!(!note.contains("witness.test/w1"), "{note}");
    every_root_checkpoint_is_cosigned(&server, &setup, &acme.read, before_kill + 1, 2).await;

    // Restarted from its state: behind, it is brought up to date with a
    // consistency proof from what it cosigned, and cosigns again.
    setup.witnesses[1].start();
    ingest(&server, &globex, "h", 2).await;
    let w1 = [setup.witnesses[1].verifier()];
    let (_, root_size) = witnessed(&server, &setup, &globex, 5, &w1, 1).await;
    let (_, note, header) = root_checkpoint(&server, &acme.read, Some(root_size)).await;
    assert_eq!(header, "3/2", "{note}");

    // A new account: covered, and no witness's logs file changed.
    let logs_before: Vec<String> = setup
        .witnesses
        .iter()
        .map(|w| std::fs::read_to_string(w.dir.join("logs.toml")).unwrap())
        .collect();
    let initech = server.account("initech");
    ingest(&server, &initech, "i", 2).await;
    witnessed(&server, &setup, &initech, 2, &all, 3).await;
    for (witness, before) in setup.witnesses.iter().zip(&logs_before) {
        assert_eq!(
            &std::fs::read_to_string(witness.dir.join("logs.toml")).unwrap(),
            before
        );
    }
    let (status, body) = server.get("/readyz", "").await;
    assert_eq!(status, 200, "{body}");
}

/// Copies the embedded database's files (`auditlog.db*`) from `from` to `to`.
/// `/readyz` once it answers 503 (within `PATIENCE`): the alarm's body.
async fn readyz_refusal(server: &TestServer, missing: &str) -> serde_json::Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = server.get("/readyz", "").await;
        if status == 503 {
            return body;
        }
        assert!(Instant::now() < deadline, "{missing}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn copy_database(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("auditlog.db") {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

fn remove_database(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("auditlog.db"))
        {
            std::fs::remove_file(path).unwrap();
        }
    }
}

/// The operator restores an older copy of the database and deletes the
/// signed-heads files (`signed-heads.json`, `signed-root.json`), so the
/// server's own guard sees nothing. The witnesses
/// have cosigned a larger root log: they refuse, `/readyz` reports
/// `witness_refused`, and a customer's monitor names both checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_database_is_refused_by_the_witnesses_and_raises_the_alarm() {
    let setup = Setup::new();
    let all = setup.verifiers();
    let backup = tempfile::tempdir().unwrap();
    let mut server = setup.start_server();
    let acme = server.account("acme");
    ingest(&server, &acme, "a", 5).await;
    witnessed(&server, &setup, &acme, 5, &all, 3).await;
    server.kill();
    copy_database(setup.data.path(), backup.path());

    let mut server = setup.start_server();
    ingest(&server, &acme, "b", 5).await;
    witnessed(&server, &setup, &acme, 10, &all, 3).await;
    let (status, body) = server.get("/readyz", "").await;
    assert_eq!(status, 200, "{body}");
    // A customer's monitor remembers the checkpoint of size 10.
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state");
    let witnessed_state = state_dir.path().join("witnessed");
    let witness_args: Vec<String> = setup
        .witnesses
        .iter()
        .flat_map(|w| ["--witness".to_string(), w.vkey.clone()])
        .chain(["--quorum".to_string(), "2".to_string()])
        .collect();
    // Without witnesses (the latest checkpoint), and with them (the latest
    // witnessed one, its root inclusion and 2 of the 3 cosignatures).
    let run_monitor = |server: &TestServer, state: &Path, extra: &[String]| {
        Command::new(BIN)
            .args(["monitor", "--once", "--url", &server.base])
            .args(["--key", &acme.read, "--account", "acme"])
            .args(["--vkey", &setup.log.to_text(), "--state"])
            .arg(state)
            .args(extra)
            .env_remove("AUDITLOG_URL")
            .env_remove("AUDITLOG_KEY")
            .output()
            .unwrap()
    };
    let monitor = |server: &TestServer| run_monitor(server, &state, &[]);
    let out = monitor(&server);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let remembered = std::fs::read_to_string(&state).unwrap();
    assert!(
        remembered.starts_with("auditlog/acme\n10\n"),
        "{remembered}"
    );
    let out = run_monitor(&server, &witnessed_state, &witness_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&witnessed_state).unwrap(),
        remembered
    );
    // One pinned witness and a quorum of 2: cannot check (exit 1), no alarm.
    let one = [
        "--witness".to_string(),
        setup.witnesses[0].vkey.clone(),
        "--quorum".to_string(),
        "2".to_string(),
    ];
    let out = run_monitor(&server, &state_dir.path().join("one"), &one);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.kill();

    remove_database(setup.data.path());
    copy_database(backup.path(), setup.data.path());
    std::fs::remove_file(setup.data.path().join(signing_key::HEADS_FILE)).unwrap();
    std::fs::remove_file(setup.data.path().join(signing_key::ROOT_HEAD_FILE)).unwrap();
    let server = setup.start_server();
    // The server signs again (its own guard is blind)…
    ingest(&server, &acme, "x", 1).await;
    // …but the witnesses cosigned more than this store holds: alarm.
    let body = readyz_refusal(&server, "no alarm").await;
    assert_eq!(body["status"], "witness_refused", "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("refused the root log"),
        "{body}"
    );
    // Nothing after the restore gets a quorum: proofs of the new event
    // carry no root inclusion.
    let (status, proof) = server.get("/api/v1/events/x0/proof", &acme.read).await;
    assert_eq!(status, 200, "{proof}");
    assert!(proof.get("root").is_none(), "{proof}");

    let out = monitor(&server);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("rollback") && stderr.contains("size 6") && stderr.contains("size 10"),
        "{stderr}"
    );
    assert!(stdout.contains(&remembered), "{stdout}");

    // With the witnesses: the latest witnessed checkpoint is the restored
    // database's (size 5), smaller than the one remembered.
    let out = run_monitor(&server, &witnessed_state, &witness_args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("rollback") && stderr.contains("size 5") && stderr.contains("size 10"),
        "{stderr}"
    );
    assert!(stdout.contains(&remembered), "{stdout}");
}

/// Two servers on one PostgreSQL database: one root log, one submitter at a
/// time (the lease); when the holder dies, the other takes over and the
/// root checkpoints keep getting cosigned, with no alarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_postgres_share_one_root_log_and_hand_the_submitter_over() {
    let Some(database) = auditlog_store_postgres::test_support::TestDatabase::create(
        "two_servers_on_postgres_share_one_root_log",
    ) else {
        return;
    };
    let setup = Setup::new();
    let all = setup.verifiers();
    let scratch = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut first = setup.start_server_on(&database.url, scratch[0].path());
    let second = setup.start_server_on(&database.url, scratch[1].path());
    let acme = first.account("acme");
    let globex = first.account("globex");
    ingest(&first, &acme, "a", 3).await;
    ingest(&second, &globex, "g", 3).await;
    ingest(&second, &acme, "b", 2).await;
    witnessed(&first, &setup, &acme, 5, &all, 3).await;
    witnessed(&second, &setup, &globex, 3, &all, 3).await;
    every_root_checkpoint_is_cosigned(&second, &setup, &acme.read, 1, 3).await;

    // The first server dies without giving anything up: within the lease
    // (15 s) the second one submits, and nothing contradicts the witnesses.
    first.kill();
    ingest(&second, &acme, "c", 2).await;
    witnessed(&second, &setup, &acme, 7, &all, 3).await;
    let (status, body) = second.get("/readyz", "").await;
    assert_eq!(status, 200, "{body}");
}

/// Exports a bundle of the account through the API and returns its bytes.
async fn export_bundle(server: &TestServer, account: &TestAccount) -> Vec<u8> {
    let (status, created) = server
        .post(
            "/api/v1/exports",
            &account.read,
            &json!({"format": "bundle", "filters": {}}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["export"]["id"].clone();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, body) = server
            .get(&format!("/api/v1/exports/{id}"), &account.read)
            .await;
        match body["export"]["status"].as_str() {
            Some("completed") => break,
            Some("failed") => panic!("bundle export failed: {body}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "export did not complete: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/exports/{id}/download")))
        .bearer_auth(&account.read)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.bytes().await.unwrap().to_vec()
}

/// `auditlog verify-export FILE ARGS…`: success, stdout and stderr.
fn verify_export(file: &Path, args: &[String]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("verify-export")
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `--witness W` for each of `witnesses`, then `--quorum K`.
fn witness_args(witnesses: &[&Witness], quorum: usize) -> Vec<String> {
    witnesses
        .iter()
        .flat_map(|w| ["--witness".to_string(), w.vkey.clone()])
        .chain(["--quorum".to_string(), quorum.to_string()])
        .collect()
}

/// Export bundles carry the account checkpoint, its inclusion proof in the
/// root log and the latest root checkpoint with its quorum, cosignatures
/// included; `verify-export --witness … --quorum K` demands K of them. A
/// bundle written while one witness of three was down carries two
/// cosignatures: enough for a quorum of 2, too few for 3. An altered root
/// inclusion proof fails; a quorum larger than the witnesses named is a
/// usage error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_carry_the_cosigned_root_and_verify_export_demands_the_quorum() {
    let mut setup = Setup::new();
    let server = setup.start_server();
    bundles_demand_the_quorum(&mut setup, &server).await;
}

/// The same with the server on PostgreSQL (`AUDITLOG_TEST_DATABASE_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_carry_the_cosigned_root_on_postgres() {
    let Some(database) = auditlog_store_postgres::test_support::TestDatabase::create(
        "bundles_carry_the_cosigned_root_on_postgres",
    ) else {
        return;
    };
    let mut setup = Setup::new();
    let scratch = tempfile::tempdir().unwrap();
    let server = setup.start_server_on(&database.url, scratch.path());
    bundles_demand_the_quorum(&mut setup, &server).await;
}

async fn bundles_demand_the_quorum(setup: &mut Setup, server: &TestServer) {
    let acme = server.account("acme");
    let globex = server.account("globex");
    let all = setup.verifiers();
    ingest(server, &globex, "g", 2).await;
    ingest(server, &acme, "a", 5).await;
    witnessed(server, setup, &acme, 5, &all, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let key = ["--key".to_string(), setup.log.to_text()];
    let [w0, w1, w2] = [
        &setup.witnesses[0],
        &setup.witnesses[1],
        &setup.witnesses[2],
    ];

    let full = dir.path().join("full.tar");
    std::fs::write(&full, export_bundle(server, &acme).await).unwrap();
    let (ok, out) = verify_export(&full, &[&key[..], &witness_args(&[w0, w1, w2], 2)].concat());
    assert!(ok, "{out}");
    assert!(out.contains("OK: 5 entries of auditlog/acme"), "{out}");
    assert!(out.contains("cosigned by"), "{out}");
    // Without --witness the root is checked but no cosignature demanded.
    let (ok, out) = verify_export(&full, &key);
    assert!(
        ok && out.contains("not checked: name the witnesses"),
        "{out}"
    );

    // One witness down: the next bundle's root has two cosignatures.
    setup.witnesses[2].kill();
    ingest(server, &acme, "b", 3).await;
    // (8 events and the audit records of the first export.)
    witnessed(server, setup, &acme, 8, &all, 2).await;
    let two = dir.path().join("two.tar");
    let bytes = export_bundle(server, &acme).await;
    std::fs::write(&two, &bytes).unwrap();
    let files = auditlog_core::tar::read_files(&bytes).unwrap();
    let root_note = &files
        .iter()
        .find(|(n, _)| n == "root-checkpoint")
        .unwrap()
        .1;
    let root_note = String::from_utf8(root_note.clone()).unwrap();
    assert!(!root_note.contains("witness.test/w2"), "{root_note}");
    let [w0, w1, w2] = [
        &setup.witnesses[0],
        &setup.witnesses[1],
        &setup.witnesses[2],
    ];
    let (ok, out) = verify_export(&two, &[&key[..], &witness_args(&[w0, w1, w2], 2)].concat());
    assert!(ok, "{out}");
    assert!(out.contains("entries of auditlog/acme verify"), "{out}");
    // Too few cosignatures for a quorum of 3: refused, naming the missing one.
    let (ok, out) = verify_export(&two, &[&key[..], &witness_args(&[w0, w1, w2], 3)].concat());
    assert!(!ok, "{out}");
    assert!(
        out.contains("does NOT verify")
            && out.contains("too few of the named witnesses")
            && out.contains("without a valid cosignature: witness.test/w2")
            && out.contains("2 valid cosignature(s) of the 3 required"),
        "{out}"
    );
    // Two demanded of witnesses of which only one cosigned.
    let (ok, out) = verify_export(&two, &[&key[..], &witness_args(&[w1, w2], 2)].concat());
    assert!(
        !ok && out.contains("1 valid cosignature(s) of the 2 required"),
        "{out}"
    );

    // An altered root inclusion proof fails, with or without witnesses.
    let tampered: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(name, bytes)| {
            let bytes = if name == "root-proof.json" {
                let mut proof: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                let first = proof["hashes"][0].as_str().unwrap().to_string();
                let mut hash = BASE64.decode(first).unwrap();
                hash[0] ^= 1;
                proof["hashes"][0] = json!(BASE64.encode(hash));
                format!("{proof}\n").into_bytes()
            } else {
                bytes.clone()
            };
            (name.clone(), bytes)
        })
        .collect();
    let altered = dir.path().join("altered.tar");
    std::fs::write(
        &altered,
        auditlog_core::tar::write_files(
            tampered.iter().map(|(n, b)| (n.as_str(), b.as_slice())),
            0,
        )
        .unwrap(),
    )
    .unwrap();
    for args in [
        key.to_vec(),
        [&key[..], &witness_args(&[w0, w1, w2], 2)].concat(),
    ] {
        let (ok, out) = verify_export(&altered, &args);
        assert!(!ok, "{out}");
        assert!(out.contains("not in the root log"), "{out}");
    }

    // A quorum no bundle could meet is a usage error.
    let (ok, out) = verify_export(&two, &[&key[..], &witness_args(&[w0, w1, w2], 4)].concat());
    assert!(!ok, "{out}");
    assert!(
        out.contains("--quorum 4 is more than the 3 --witness keys"),
        "{out}"
    );
}

/// Interoperability (issue 17, Done when): the cosignatures the server
/// serves (`GET /api/v1/root-checkpoint`), made by real `auditlog witness`
/// processes, verify with an implementation this project did not share
/// code with: `tests/fixtures/cosignature.mjs`, written from the C2SP
/// tlog-cosignature and signed-note texts on Node's built-in Ed25519
/// (Go's `sumdb/note` rejects cosignature keys, so goverify cannot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_cosignatures_verify_with_the_independent_implementation() {
    let Some(node) = crate::witness::node() else {
        return;
    };
    let setup = Setup::new();
    let server = setup.start_server();
    let acme = server.account("acme");
    ingest(&server, &acme, "a", 3).await;
    let (_, root_size) = witnessed(&server, &setup, &acme, 3, &setup.verifiers(), 3).await;
    let (status, note, header) = root_checkpoint(&server, &acme.read, Some(root_size)).await;
    assert_eq!(status, 200, "{note}");
    assert_eq!(header, "3/2");
    let (body, signatures) = note.split_once("\n\n").unwrap();
    let body = format!("{body}\n");
    for witness in &setup.witnesses {
        let name = witness.vkey.split('+').next().unwrap();
        let line = signatures
            .lines()
            .find(|l| l.starts_with(&format!("\u{2014} {name} ")))
            .unwrap_or_else(|| panic!("no cosignature by {name}: {note}"));
        let (ok, said) = crate::witness::independent(node, &["verify", &witness.vkey, &body, line]);
        assert!(ok, "{name}: {said}");
        assert!(said.starts_with("OK "), "{said}");
        // The same line on another checkpoint body does not verify.
        let other = body.replacen(
            &format!("\n{root_size}\n"),
            &format!("\n{}\n", root_size + 1),
            1,
        );
        let (ok, said) =
            crate::witness::independent(node, &["verify", &witness.vkey, &other, line]);
        assert!(!ok, "{said}");
    }
    // The log's own signature line is no cosignature.
    let log_line = signatures.lines().next().unwrap();
    let (ok, _) =
        crate::witness::independent(node, &["verify", &setup.witnesses[0].vkey, &body, log_line]);
    assert!(!ok);
}

/// The latest root checkpoint's size (0 while none is signed).
async fn latest_root_size(server: &TestServer, setup: &Setup, key: &str) -> u64 {
    let (status, note, _) = root_checkpoint(server, key, None).await;
    if status == 404 {
        return 0;
    }
    assert_eq!(status, 200, "{note}");
    Checkpoint::open(&note, &setup.log).unwrap().size
}

/// Waits until the latest root checkpoint has at least `size` leaves.
async fn root_reaches(server: &TestServer, setup: &Setup, key: &str, size: u64) -> u64 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let latest = latest_root_size(server, setup, key).await;
        if latest >= size {
            return latest;
        }
        assert!(Instant::now() < deadline, "the root log stays at {latest}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The server's own rollback guard for the root log (no witness involved):
/// the last root checkpoint signed is remembered in `signed-root.json`
/// beside the key. A database restored from an older copy, with only the
/// accounts' `signed-heads.json` deleted, grows a root tree that does not
/// extend the remembered one: the server refuses to sign root checkpoints
/// (smaller, then larger than the remembered size), says so on `/readyz`,
/// and signs nothing over the remembered history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_sign_a_root_log_that_does_not_extend_its_record() {
    let data = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let key = signing_key::load_or_create(&data.path().join(signing_key::DEFAULT_FILE), LOG_NAME)
        .unwrap();
    let setup = Setup {
        log: key.verifier(),
        data,
        _witness_dirs: Vec::new(),
        witnesses: Vec::new(),
    };
    let mut server = TestServer::start_on(setup.data.path(), &[]);
    let acme = server.account("acme");
    let globex = server.account("globex");
    ingest(&server, &acme, "a", 3).await;
    let before = root_reaches(&server, &setup, &acme.read, 1).await;
    server.kill();
    copy_database(setup.data.path(), backup.path());

    let mut server = TestServer::start_on(setup.data.path(), &[]);
    ingest(&server, &acme, "b", 2).await;
    ingest(&server, &globex, "g", 2).await;
    let remembered = root_reaches(&server, &setup, &acme.read, before + 2).await;
    // Signing stops before it is remembered: let the last round finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let remembered = remembered.max(latest_root_size(&server, &setup, &acme.read).await);
    server.kill();
    let record =
        std::fs::read_to_string(setup.data.path().join(signing_key::ROOT_HEAD_FILE)).unwrap();
    assert!(
        record.contains(&format!("\"size\":{remembered}")),
        "{record}"
    );

    remove_database(setup.data.path());
    copy_database(backup.path(), setup.data.path());
    std::fs::remove_file(setup.data.path().join(signing_key::HEADS_FILE)).unwrap();
    let server = TestServer::start_on(setup.data.path(), &[]);
    // The accounts' signer, blind, signs again; the root log grows…
    ingest(&server, &acme, "x", 1).await;
    let body = readyz_refusal(&server, "no refusal").await;
    // …but no root checkpoint is signed over it.
    assert_eq!(body["status"], "signing_refused", "{body}");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("root log")
            && reason.contains(&format!("size {remembered}"))
            && reason.contains("signed-root.json"),
        "{body}"
    );
    assert_eq!(latest_root_size(&server, &setup, &acme.read).await, before);
    // Grown past the remembered size: a different history, still refused.
    for i in 0..=remembered {
        ingest(&server, &globex, &format!("y{i}-"), 1).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let (status, body) = server.get("/readyz", "").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(latest_root_size(&server, &setup, &acme.read).await, before);
    let (status, proof) = server.get("/api/v1/proofs/root", &acme.read).await;
    assert!(
        status == 404 || proof["root"]["tree_size"] == before,
        "{status} {proof}"
    );
}

/// `auditlog monitor --once` for `account` on `server` with `state`.
fn run_monitor(
    server: &TestServer,
    account: &TestAccount,
    log: &NoteVerifier,
    state: &Path,
    extra: &[String],
) -> std::process::Output {
    Command::new(BIN)
        .args(["monitor", "--once", "--url", &server.base])
        .args(["--key", &account.read, "--account", &account.name])
        .args(["--vkey", &log.to_text(), "--state"])
        .arg(state)
        .args(extra)
        .env_remove("AUDITLOG_URL")
        .env_remove("AUDITLOG_KEY")
        .output()
        .unwrap()
}

/// A forked view: a second store signed with the same key and log name
/// (a copy of the server run by the operator for some customers) holds
/// another history of the same size. Its root checkpoint has the size the
/// witnesses cosigned with another root: they refuse it (409 at their own
/// size), the second server raises the alarm (`/readyz` 503
/// `witness_refused`, "forked"), nothing it signs gets a cosignature, and a
/// customer's monitor that remembered the first view exits 3 naming both
/// checkpoints of that size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_view_is_refused_by_the_witnesses_and_reported_by_the_monitor() {
    let setup = Setup::new();
    let all = setup.verifiers();
    let first = setup.start_server();
    let acme = first.account("acme");
    ingest(&first, &acme, "real-", 3).await;
    let (size, root_size) = witnessed(&first, &setup, &acme, 3, &all, 3).await;
    assert_eq!((size, root_size), (3, 1));
    let states = tempfile::tempdir().unwrap();
    let state = states.path().join("acme.checkpoint");
    let witnessed_state = states.path().join("acme-witnessed.checkpoint");
    let witness_args = witness_args(&setup.witnesses.iter().collect::<Vec<_>>(), 2);
    for (state, extra) in [(&state, &[][..]), (&witnessed_state, &witness_args[..])] {
        let out = run_monitor(&first, &acme, &setup.log, state, extra);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let remembered = std::fs::read_to_string(&state).unwrap();
    assert!(remembered.starts_with("auditlog/acme\n3\n"), "{remembered}");

    // The other view: its own store, the same key and witnesses.
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(
        setup.data.path().join(signing_key::DEFAULT_FILE),
        other.path().join(signing_key::DEFAULT_FILE),
    )
    .unwrap();
    let list: Vec<String> = setup.witnesses.iter().map(Witness::setting).collect();
    let list = list.join(", ");
    let forked = TestServer::start_on(
        other.path(),
        &["--witnesses", &list, "--witness-quorum", "2"],
    );
    let acme_forked = forked.account("acme");
    ingest(&forked, &acme_forked, "forged-", 3).await;
    let body = readyz_refusal(&forked, "no alarm").await;
    assert_eq!(body["status"], "witness_refused", "{body}");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("another root at size 1") && reason.contains("forked"),
        "{body}"
    );
    // Its root checkpoint of size 1 has no cosignature; the first view's
    // keeps all three.
    let (status, note, header) = root_checkpoint(&forked, &acme_forked.read, Some(1)).await;
    assert_eq!(status, 200, "{note}");
    assert_eq!(header, "0/2", "{note}");
    let (_, real_note, header) = root_checkpoint(&first, &acme.read, Some(1)).await;
    assert_eq!(header, "3/2", "{real_note}");
    let forked_root = Checkpoint::open(&note, &setup.log).unwrap();
    let real_root = Checkpoint::open(&real_note, &setup.log).unwrap();
    assert_eq!(forked_root.size, real_root.size);
    assert_ne!(forked_root.root, real_root.root);
    let (status, proof) = forked.get("/api/v1/proofs/root", &acme_forked.read).await;
    assert_eq!(status, 404, "{proof}");

    // The customer's monitor, pointed at the forked view with the state of
    // the first: a fork, both checkpoints of size 3 in the report.
    let out = run_monitor(&forked, &acme_forked, &setup.log, &state, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("fork") && stderr.contains("size 3"),
        "{stderr}"
    );
    let (status, forked_checkpoint) = {
        let response = reqwest::Client::new()
            .get(forked.url("/api/v1/checkpoint"))
            .bearer_auth(&acme_forked.read)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_ne!(forked_checkpoint, remembered);
    assert!(
        stdout.contains(&remembered) && stdout.contains(&forked_checkpoint),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&state).unwrap(), remembered);
    // With the witnesses demanded, the forked view has nothing witnessed to
    // show: the monitor cannot be satisfied (exit 1), and remembers nothing new.
    let out = run_monitor(
        &forked,
        &acme_forked,
        &setup.log,
        &witnessed_state,
        &witness_args,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&witnessed_state).unwrap(),
        remembered
    );
    // (Last: an export is audited, which grows the tree.) Its bundle (written after waiting half the export lease for a
    // witnessed root that never comes) carries no root: signed by the log's
    // key, it verifies with that alone, and fails as soon as witnesses are
    // demanded.
    let forked_bundle = states.path().join("forked.tar");
    std::fs::write(&forked_bundle, export_bundle(&forked, &acme_forked).await).unwrap();
    let key = ["--key".to_string(), setup.log.to_text()];
    let (ok, out) = verify_export(&forked_bundle, &key);
    assert!(ok && out.contains("carries no root checkpoint"), "{out}");
    let (ok, out) = verify_export(&forked_bundle, &[&key[..], &witness_args].concat());
    assert!(!ok, "{out}");
    assert!(
        out.contains("carries no root checkpoint, so no witness cosignature"),
        "{out}"
    );
    // The first view is unharmed.
    let (status, body) = first.get("/readyz", "").await;
    assert_eq!(status, 200, "{body}");
}

/// Keys change (issue 17): the log's signing key is rotated (same log
/// name, new key) and the witness set changes (w0 leaves, w2 joins; the
/// witnesses that stay list both log keys during the rotation). Bundles,
/// checkpoints and the monitor's state from before keep verifying with the
/// keys that signed them; what is made after verifies with the new ones;
/// a verifier pinning both keys accepts both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_and_witness_rotation_keeps_old_bundles_and_checkpoints_verifying() {
    let mut setup = Setup::new();
    let dir = tempfile::tempdir().unwrap();
    let start = |setup: &Setup, witnesses: &[usize]| {
        let list: Vec<String> = witnesses
            .iter()
            .map(|&i| setup.witnesses[i].setting())
            .collect();
        TestServer::start_on(
            setup.data.path(),
            &["--witnesses", &list.join(", "), "--witness-quorum", "2"],
        )
    };
    let old_key = setup.log.clone();
    let key_args = |keys: &[&NoteVerifier]| -> Vec<String> {
        keys.iter()
            .flat_map(|k| ["--key".to_string(), k.to_text()])
            .collect()
    };

    // Before: key K1, witnesses w0 and w1.
    let mut server = start(&setup, &[0, 1]);
    let acme = server.account("acme");
    ingest(&server, &acme, "a", 4).await;
    let before: Vec<CosignatureVerifier> = [0, 1]
        .iter()
        .map(|&i| setup.witnesses[i].verifier())
        .collect();
    witnessed(&server, &setup, &acme, 4, &before, 2).await;
    let old_bundle = dir.path().join("old.tar");
    std::fs::write(&old_bundle, export_bundle(&server, &acme).await).unwrap();
    let state = dir.path().join("acme.checkpoint");
    let out = run_monitor(&server, &acme, &old_key, &state, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stale_state = dir.path().join("stale.checkpoint");
    std::fs::copy(&state, &stale_state).unwrap();
    server.kill();

    // The rotation: a new key with the log's name; w1 and w2 list both keys.
    let key_file = setup.data.path().join(signing_key::DEFAULT_FILE);
    std::fs::remove_file(&key_file).unwrap();
    let new_key = signing_key::load_or_create(&key_file, LOG_NAME)
        .unwrap()
        .verifier();
    assert_ne!(new_key, old_key);
    for i in [1, 2] {
        let witness = &mut setup.witnesses[i];
        std::fs::write(
            witness.dir.join("logs.toml"),
            format!(
                "[[log]]\norigin = \"{LOG_NAME}\"\nkeys = [\"{}\", \"{}\"]\n",
                old_key.to_text(),
                new_key.to_text()
            ),
        )
        .unwrap();
        witness.kill();
        witness.start();
    }
    setup.log = new_key.clone();
    let server = start(&setup, &[1, 2]);
    let (status, served) = reqwest::get(server.url("/api/v1/public-key"))
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(served.text().await.unwrap().trim(), new_key.to_text());
    let after: Vec<CosignatureVerifier> = [1, 2]
        .iter()
        .map(|&i| setup.witnesses[i].verifier())
        .collect();
    let (w0, w1, w2) = (
        &setup.witnesses[0],
        &setup.witnesses[1],
        &setup.witnesses[2],
    );

    // Right after the rotation nothing new is signed yet: a bundle is still
    // signed by the new key alone (the retained checkpoints signed again
    // with it), and the new witnesses cosign the root checkpoint (waited
    // for here: the export waits only 15 s for it, too short on a loaded
    // machine).
    witnessed(&server, &setup, &acme, 4, &after, 2).await;
    let between = dir.path().join("between.tar");
    std::fs::write(&between, export_bundle(&server, &acme).await).unwrap();
    let (ok, out) = verify_export(
        &between,
        &[key_args(&[&new_key]), witness_args(&[w1, w2], 2)].concat(),
    );
    assert!(ok, "{out}");

    ingest(&server, &acme, "b", 3).await;
    witnessed(&server, &setup, &acme, 7, &after, 2).await;
    let new_bundle = dir.path().join("new.tar");
    std::fs::write(&new_bundle, export_bundle(&server, &acme).await).unwrap();

    // Old bundle: the old key and the old witnesses.
    let (ok, out) = verify_export(
        &old_bundle,
        &[key_args(&[&old_key]), witness_args(&[w0, w1], 2)].concat(),
    );
    assert!(ok, "{out}");
    let (ok, out) = verify_export(&old_bundle, &key_args(&[&new_key]));
    assert!(!ok && out.contains("does NOT verify"), "{out}");
    // New bundle: the new key and the new witnesses.
    let (ok, out) = verify_export(
        &new_bundle,
        &[key_args(&[&new_key]), witness_args(&[w1, w2], 2)].concat(),
    );
    assert!(ok, "{out}");
    let (ok, out) = verify_export(&new_bundle, &key_args(&[&old_key]));
    assert!(!ok, "{out}");
    // …whose root the old set no longer covers: only w1 of w0, w1.
    let (ok, out) = verify_export(
        &new_bundle,
        &[key_args(&[&new_key]), witness_args(&[w0, w1], 2)].concat(),
    );
    assert!(
        !ok && out.contains("without a valid cosignature: witness.test/w0"),
        "{out}"
    );
    // A verifier pinning both keys accepts both bundles.
    for bundle in [&old_bundle, &new_bundle] {
        let (ok, out) = verify_export(bundle, &key_args(&[&old_key, &new_key]));
        assert!(ok, "{out}");
    }

    // The monitor pinning both keys carries on across the rotation; with
    // only the new key its old state cannot be checked (exit 1).
    let both = ["--vkey".to_string(), new_key.to_text()];
    let out = run_monitor(&server, &acme, &old_key, &state, &both);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let now = std::fs::read_to_string(&state).unwrap();
    assert!(Checkpoint::open(&now, &new_key).unwrap().size >= 7, "{now}");
    let out = run_monitor(&server, &acme, &new_key, &stale_state, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The store: its checkpoints verify with both keys, not the new one alone.
    let (ok, out) = {
        let out = run_cli(
            setup.data.path(),
            &[
                &["verify".to_string()][..],
                &key_args(&[&old_key, &new_key]),
            ]
            .concat()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
            "",
        );
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    assert!(ok, "{out}");
    let out = run_cli(
        setup.data.path(),
        &["verify", "--key", &new_key.to_text()],
        "",
    );
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("signed by a key not given with --key"),
        "{text}"
    );
}
