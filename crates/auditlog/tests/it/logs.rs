//! Structured logs and request ids, through the real binary: every answer
//! carries an `x-request-id`, and the JSON log lines written while serving
//! a request carry the same id.

use crate::helpers::{wait_until_listening, KillOnDrop, BIN};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `auditlog` with no inherited setting that could change its logging.
fn auditlog() -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("AUDITLOG_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

/// The JSON log lines in `path`; every line must be one JSON object.
fn json_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect()
}

fn request_id_of(line: &Value) -> Option<&str> {
    line["span"]["request_id"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_and_its_log_lines_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut server = KillOnDrop(
        auditlog()
            .args(["--data-dir", &dir.path().join("data").display().to_string()])
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--log-level", "info,auditlog_server=debug"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let base = wait_until_listening(&mut server.0);
    let http = reqwest::Client::new();
    let get = |path: &str, id: Option<&str>| {
        let mut request = http.get(format!("{base}{path}"));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };
    let header = |response: &reqwest::Response| {
        response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string()
    };

    // A sane id from the client is kept.
    let given = "client-42.retry_1";
    let kept = get("/healthz", Some(given)).await.unwrap();
    assert_eq!(kept.status(), 200);
    assert_eq!(header(&kept), given);
    // No id, or one that is not a short token: a new one, each different.
    let generated = header(&get("/healthz", None).await.unwrap());
    let too_long = "a".repeat(65);
    let replaced_long = header(&get("/healthz", Some(&too_long)).await.unwrap());
    let replaced_odd = header(&get("/healthz", Some("two words;")).await.unwrap());
    for id in [&generated, &replaced_long, &replaced_odd] {
        assert_eq!(id.len(), 32, "a generated id: {id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    assert_ne!(generated, replaced_long);
    assert_ne!(replaced_long, replaced_odd);
    // Errors carry it too.
    let missing = get("/no/such/route", Some("not-found-1")).await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing), "not-found-1");
    let unauthorized = get("/api/v1/events", Some("no-key-1")).await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(header(&unauthorized), "no-key-1");

    // The completion lines are written after the answers; wait for them.
    let wanted = [given, &generated, "not-found-1", "no-key-1"];
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = json_lines(&log_path);
        let logged = |id: &str| lines.iter().any(|line| request_id_of(line) == Some(id));
        if wanted.iter().all(|id| logged(id)) {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "not every request id was logged: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let completed = |id: &str| {
        lines
            .iter()
            .find(|line| {
                request_id_of(line) == Some(id) && line["fields"]["message"] == "request completed"
            })
            .unwrap_or_else(|| panic!("no completion line for {id}: {lines:#?}"))
    };
    let line = completed(given);
    assert_eq!(line["level"], "DEBUG");
    assert_eq!(line["fields"]["method"], "GET");
    assert_eq!(line["fields"]["route"], "/healthz");
    assert_eq!(line["fields"]["status"], 200);
    assert!(line["fields"]["latency_ms"].as_f64().is_some(), "{line}");
    assert_eq!(completed("not-found-1")["fields"]["status"], 404);
    assert_eq!(completed("no-key-1")["fields"]["route"], "/api/v1/events");
    assert_eq!(completed("no-key-1")["fields"]["status"], 401);
    // Lines outside any request (start-up) carry no id.
    let starting = lines
        .iter()
        .find(|line| line["fields"]["message"] == "starting")
        .expect("a start-up line");
    assert_eq!(request_id_of(starting), None);
}

#[test]
fn logs_are_text_unless_json_is_asked_for() {
    // A misspelt variable draws a warning: a log line from any command.
    let warn = |format: Option<&str>| {
        let mut command = auditlog();
        command.env("AUDITLOG_LISTNE", "x").args(["config", "show"]);
        if let Some(format) = format {
            command.args(["--log-format", format]);
        }
        let out = command.output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let text = warn(None);
    assert!(
        text.contains("WARN") && text.contains("AUDITLOG_LISTNE"),
        "{text}"
    );
    assert!(
        serde_json::from_str::<Value>(text.trim()).is_err(),
        "{text}"
    );
    let json = warn(Some("json"));
    let line: Value = serde_json::from_str(json.trim()).expect("one JSON line");
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["fields"]["variable"], "AUDITLOG_LISTNE");
    // The level filters: nothing below error is written.
    let mut quiet = auditlog();
    quiet
        .env("AUDITLOG_LISTNE", "x")
        .args(["--log-level", "error", "config", "show"]);
    let out = quiet.output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
