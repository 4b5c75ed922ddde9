//! The layered configuration through the real binary: file, environment
//! and flags together, the errors, the example and the secrets.

use crate::helpers::{wait_until_listening, KillOnDrop, BIN};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `auditlog ARGS` with `env` set and no inherited `AUDITLOG_*` setting
/// that could change the answer.
fn auditlog(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("AUDITLOG_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    auditlog(args, env).output().expect("run auditlog")
}

fn success(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run(args, env);
    assert!(
        out.status.success(),
        "auditlog {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The line of `config show` for `key`.
fn shown<'a>(show: &'a str, key: &str) -> &'a str {
    show.lines()
        .find(|line| line.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("config show has no {key}:\n{show}"))
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir.path().join("auditlog.toml"),
        "data_dir = \"/srv/from-file\"\n\
         listen = \"0.0.0.0:1001\"\n\
         export_concurrency = 3\n\
         request_timeout = \"1m\"\n",
    );
    let env = [
        ("AUDITLOG_LISTEN", "0.0.0.0:1002"),
        ("AUDITLOG_EXPORT_CONCURRENCY", "4"),
    ];
    let show = success(
        &[
            "--config",
            &file,
            "config",
            "show",
            "--export-concurrency",
            "5",
        ],
        &env,
    );
    assert_eq!(
        shown(&show, "data_dir"),
        format!("data_dir = \"/srv/from-file\"  # file {file}")
    );
    assert_eq!(
        shown(&show, "listen"),
        "listen = \"0.0.0.0:1002\"  # environment AUDITLOG_LISTEN"
    );
    assert_eq!(
        shown(&show, "export_concurrency"),
        "export_concurrency = 5  # flag --export-concurrency"
    );
    assert_eq!(
        shown(&show, "request_timeout"),
        format!("request_timeout = \"1m\"  # file {file}")
    );
    assert_eq!(
        shown(&show, "log_format"),
        "log_format = \"text\"  # default"
    );
    // The file may be named by the environment as well.
    let show = success(&["config", "show"], &[("AUDITLOG_CONFIG", file.as_str())]);
    assert_eq!(
        shown(&show, "listen"),
        format!("listen = \"0.0.0.0:1001\"  # file {file}")
    );
}

#[test]
fn serve_runs_on_the_configuration_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = write(
        &dir.path().join("auditlog.toml"),
        &format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\nlog_name = \"audit.example.test\"\nlog_level = \"warn\"\n",
            data.display().to_string()
        ),
    );
    let mut server = KillOnDrop(
        auditlog(&["serve"], &[("AUDITLOG_CONFIG", file.as_str())])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let base = wait_until_listening(&mut server.0);
    let key = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::get(format!("{base}/api/v1/public-key"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    drop(server);
    assert!(
        key.starts_with("audit.example.test+"),
        "the log name comes from the file: {key}"
    );
    assert!(
        data.join("signing-key").exists(),
        "the data directory comes from the file"
    );
}

#[test]
fn bad_configuration_stops_with_the_setting_the_place_and_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = write(&dir.path().join("unknown.toml"), "listen_address = \"x\"\n");
    let wrong_type = write(
        &dir.path().join("type.toml"),
        "max_connections = \"many\"\n",
    );
    /// Arguments, environment, and what the error must say.
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, Vec<String>);
    let cases: Vec<Case> = vec![
        (
            vec!["--config", &unknown, "config", "show"],
            vec![],
            vec![format!("unknown key \"listen_address\" in {unknown}")],
        ),
        (
            vec!["--config", &wrong_type, "account", "create", "acme"],
            vec![],
            vec![format!(
                "max_connections in {wrong_type}: must be an integer, not a string"
            )],
        ),
        (
            vec!["config", "show"],
            vec![("AUDITLOG_EXPORT_EXPIRY", "a week")],
            vec![
                "AUDITLOG_EXPORT_EXPIRY (setting export_expiry)".into(),
                "is not a duration".into(),
            ],
        ),
        (
            vec!["serve", "--rate-limit-burst=-1"],
            vec![],
            vec!["--rate-limit-burst: \"-1\" is not a whole number".into()],
        ),
        (
            vec!["--config", "/nonexistent/auditlog.toml", "config", "show"],
            vec![],
            vec!["cannot read the configuration file /nonexistent/auditlog.toml".into()],
        ),
    ];
    for (args, env, expected) in cases {
        let out = run(&args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        for part in expected {
            assert!(
                stderr.contains(&part),
                "{args:?}: {stderr:?} lacks {part:?}"
            );
        }
    }
}

#[test]
fn the_printed_example_is_read_back_as_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let example = success(&["config", "example"], &[]);
    let file = write(&dir.path().join("example.toml"), &example);
    let from_example = success(&["--config", &file, "config", "show"], &[]);
    let defaults = success(&["config", "show"], &[]);
    // The same values; only where they came from differs.
    let values = |show: &str| -> Vec<String> {
        show.lines()
            .map(|line| line.split("  # ").next().unwrap_or(line).to_string())
            .collect()
    };
    assert_eq!(values(&from_example), values(&defaults));
    assert!(from_example.contains(&format!("# file {file}")));
}

#[test]
fn the_database_password_is_never_printed() {
    let password = "hunter2-correct-horse";
    // Nothing listens on port 9 here: the start fails after logging its
    // configuration.
    let url = format!("postgres://auditlog:{password}@127.0.0.1:9/auditlog");
    let show = success(
        &["config", "show"],
        &[("AUDITLOG_DATABASE_URL", url.as_str())],
    );
    assert_eq!(
        shown(&show, "database_url"),
        "database_url = \"[redacted]\"  # environment AUDITLOG_DATABASE_URL"
    );
    let out = run(
        &["serve", "--database-url", &url, "--log-format", "json"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "started on a closed port: {stderr}");
    assert!(
        stderr.contains("\"message\":\"starting\"") && stderr.contains("[redacted]"),
        "the start-up log shows the configuration: {stderr}"
    );
    assert!(
        !stderr.contains(password) && !stdout.contains(password) && !show.contains(password),
        "the password was printed: {stderr}"
    );
}

/// The limits settings reach the serving process: a key over the
/// configured burst is answered 429 with `Retry-After`, another key is not.
#[tokio::test]
async fn serve_enforces_the_configured_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = crate::helpers::TestServer::start_on(
        dir.path(),
        &["--rate-limit-per-second", "1", "--rate-limit-burst", "2"],
    );
    let account = server.account("acme");
    let url = server.url("/api/v1/events?limit=1");
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let response = server
            .http
            .get(&url)
            .bearer_auth(&account.read)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
    }
    assert_eq!(statuses, [200, 200, 429]);
    let seconds: u64 = retry_after
        .expect("429 carries Retry-After")
        .parse()
        .unwrap();
    assert!(seconds >= 1);
    // The ingest key has a bucket of its own.
    let other = server
        .http
        .get(&url)
        .bearer_auth(&account.ingest)
        .send()
        .await
        .unwrap();
    assert_ne!(other.status().as_u16(), 429);
}
