//! The shared harness: [`TestServer`] runs the real `auditlog` binary on a
//! fresh data directory (or a PostgreSQL database) and a free port; its
//! methods talk to it over real HTTP and run the admin commands on its store.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_auditlog");

/// A running server; killed when dropped.
pub struct TestServer {
    pub data_dir: PathBuf,
    /// How the `auditlog` commands reach this server's store: `--data-dir DIR`
    /// or `--database-url URL`.
    pub store_args: Vec<String>,
    pub base: String,
    pub child: Child,
    pub http: reqwest::Client,
    /// Keeps the temporary directory alive for the server's lifetime.
    _temp: Option<tempfile::TempDir>,
}

/// Runs an `auditlog` subcommand on `data_dir`, feeding `stdin`.
pub fn run_cli(data_dir: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    run_cli_on(&data_dir_args(data_dir), args, stdin)
}

/// `--data-dir DIR`, as the commands take it.
pub fn data_dir_args(data_dir: &Path) -> Vec<String> {
    vec!["--data-dir".to_string(), data_dir.display().to_string()]
}

/// Runs an `auditlog` subcommand with `store_args` (`--data-dir DIR` or
/// `--database-url URL`), feeding `stdin`.
pub fn run_cli_on(store_args: &[String], args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(store_args)
        .args(args)
        .env_remove("AUDITLOG_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run auditlog");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs an `auditlog` subcommand that must succeed; returns its stdout.
pub fn cli(data_dir: &Path, args: &[&str], stdin: &str) -> String {
    cli_on(&data_dir_args(data_dir), args, stdin)
}

/// Like [`cli`], with `store_args` naming the store.
pub fn cli_on(store_args: &[String], args: &[&str], stdin: &str) -> String {
    let out = run_cli_on(store_args, args, stdin);
    assert!(
        out.status.success(),
        "auditlog {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A child process killed when the test ends, however it ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server started by a test from its own `command` (an `auditlog …
/// serve` with stdout piped): waits for the "listening" line and returns
/// the base URL; stdout is drained from then on. The caller kills the child.
pub fn wait_until_listening(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout must be piped");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(url) = line.strip_prefix("auditlog listening on ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    base
}

impl TestServer {
    /// Starts a server on a new temporary data directory.
    pub fn start() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        let mut server = Self::start_on(&dir, &[]);
        server._temp = Some(temp);
        server
    }

    /// Starts a server on `data_dir` (which may hold an earlier server's data).
    pub fn start_on(data_dir: &Path, extra_args: &[&str]) -> Self {
        let store = vec!["--data-dir".to_string(), data_dir.display().to_string()];
        // Every file-backed setting defaults to a place inside `data_dir`.
        Self::start_with(data_dir, None, store, extra_args)
    }

    /// Starts a server on the PostgreSQL database at `url`; `scratch` is a
    /// directory of its own for the files the harness writes.
    pub fn start_on_database(url: &str, scratch: &Path, extra_args: &[&str]) -> Self {
        let store = vec!["--database-url".to_string(), url.to_string()];
        Self::start_with(scratch, Some(scratch), store, extra_args)
    }

    /// Runs the server in `working_dir` when given, so that settings left at
    /// their relative defaults (`./auditlog-data` for the signing key and
    /// exports on PostgreSQL) land in the test's own directory, never in the
    /// source tree.
    fn start_with(
        data_dir: &Path,
        working_dir: Option<&Path>,
        store_args: Vec<String>,
        extra_args: &[&str],
    ) -> Self {
        let mut command = Command::new(BIN);
        if let Some(dir) = working_dir {
            command.current_dir(dir);
        }
        let mut child = command
            .args(&store_args)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra_args)
            .env_remove("AUDITLOG_DATABASE_URL")
            .env("AUDITLOG_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start auditlog serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut printed = Vec::new();
        let base = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(url) = line.strip_prefix("auditlog listening on ") {
                break url.trim().to_string();
            }
            printed.push(line);
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let server = Self {
            data_dir: data_dir.to_path_buf(),
            store_args,
            base,
            child,
            http: reqwest::Client::new(),
            _temp: None,
        };
        std::fs::write(data_dir.join("startup-output.txt"), printed.join("\n")).ok();
        server
    }

    /// What the server printed before it started listening (demo keys, …).
    pub fn startup_output(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("startup-output.txt")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Runs an `auditlog` subcommand on this server's store that must
    /// succeed; returns its stdout.
    pub fn cli(&self, args: &[&str], stdin: &str) -> String {
        cli_on(&self.store_args, args, stdin)
    }

    /// Creates an account with an ingest key and a read key.
    pub fn account(&self, name: &str) -> TestAccount {
        self.cli(&["account", "create", name], "");
        let ingest = self.cli(
            &["key", "create", "--account", name, "--scope", "ingest"],
            "",
        );
        let read = self.cli(&["key", "create", "--account", name, "--scope", "read"], "");
        TestAccount {
            name: name.into(),
            ingest: ingest.trim().into(),
            read: read.trim().into(),
        }
    }

    /// POSTs `body` as JSON with `key`; returns status and parsed body.
    pub async fn post(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let request = self.http.post(self.url(path)).bearer_auth(key).json(body);
        send(request).await
    }

    /// GETs `path` with `key`; returns status and parsed body.
    pub async fn get(&self, path: &str, key: &str) -> (u16, serde_json::Value) {
        send(self.http.get(self.url(path)).bearer_auth(key)).await
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request`; returns the status and the body as JSON (`Null` when the
/// body is not JSON).
async fn send(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone, Debug)]
pub struct TestAccount {
    pub name: String,
    pub ingest: String,
    pub read: String,
}

/// Checks SPEC.md's error shape and returns the code.
pub fn error_code(body: &serde_json::Value) -> String {
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error without a message: {body}"
    );
    error["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
        .to_string()
}

/// Builds the Go verifier from ../shared/tools/goverify (it fetches Go from
/// Debian's registry) once per test process, so that tests running at the
/// same time never overwrite the binary another one runs; Err says why it
/// could not.
pub fn goverify() -> Result<PathBuf, String> {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_goverify).clone()
}

fn build_goverify() -> Result<PathBuf, String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/tools/goverify/build.sh");
    if !script.exists() {
        return Err(format!("{} is not there", script.display()));
    }
    let out = std::env::temp_dir().join("auditlog-goverify");
    let built = std::process::Command::new("bash")
        .arg(&script)
        .arg(&out)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !built.status.success() || !out.exists() {
        return Err(format!(
            "build failed: {}",
            String::from_utf8_lossy(&built.stderr)
        ));
    }
    Ok(out)
}

pub fn run_goverify(bin: &std::path::Path, request: &serde_json::Value) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(bin)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}
