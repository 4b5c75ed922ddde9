//! `auditlog send` through the real binary against a real server: bad lines
//! named and good ones stored once, reruns that store nothing twice (also
//! after a SIGKILL halfway), standard input, two files that never collide,
//! and retries while the server is unreachable or rate limiting.

use crate::helpers::{cli, wait_until_listening, KillOnDrop, TestAccount, TestServer, BIN};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `auditlog send --url … --key … <args>`, waited for.
fn send(base: &str, key: &str, args: &[&str]) -> Output {
    send_command(base, key, args).output().unwrap()
}

fn send_command(base: &str, key: &str, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["send", "--url", base, "--key", key])
        .args(args)
        .env_remove("AUDITLOG_DATABASE_URL")
        .env("AUDITLOG_LOG", "warn")
        .stdin(Stdio::null());
    command
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `<label>: ` in the summary.
fn count(summary: &str, label: &str) -> u64 {
    summary
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{label}: ")))
        .unwrap_or_else(|| panic!("no {label:?} in the summary:\n{summary}"))
        .trim()
        .parse()
        .unwrap()
}

/// The line numbers the summary reports rejected.
fn rejected_lines(summary: &str) -> Vec<u64> {
    summary
        .lines()
        .filter_map(|line| line.strip_prefix("line "))
        .map(|rest| rest.split(':').next().unwrap().parse().unwrap())
        .collect()
}

/// Every stored event's id, paging through the API.
async fn stored_ids(server: &TestServer, account: &TestAccount) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/events?limit=1000&cursor={c}"),
            None => "/api/v1/events?limit=1000".to_string(),
        };
        let (status, page) = server.get(&path, &account.read).await;
        assert_eq!(status, 200, "{page}");
        for event in page["events"].as_array().unwrap() {
            ids.push(event["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return ids,
        }
    }
}

/// The account's event count, through the API.
async fn stored_count(server: &TestServer, account: &TestAccount) -> u64 {
    let (status, body) = server.get("/api/v1/events/histogram", &account.read).await;
    assert_eq!(status, 200, "{body}");
    body["total"].as_u64().unwrap()
}

fn event(n: usize) -> Value {
    json!({"event_type": "Element", "action": "Update", "actor": {"id": format!("u-{}", n % 7)},
           "target": {"id": format!("E-{n}")}, "details": {"n": n}})
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn bad_lines_are_named_and_good_ones_are_stored_once() {
    let server = TestServer::start();
    let account = server.account("send-bad");
    // An id stored earlier with other content: sending it again is a 409.
    let (status, _) = server
        .post(
            "/api/v1/events",
            &account.ingest,
            &json!({"id": "taken", "event_type": "Element", "action": "Create", "actor": {"id": "x"}}),
        )
        .await;
    assert_eq!(status, 201);
    let mut lines: Vec<String> = (1..=20).map(|n| event(n).to_string()).collect();
    // Line numbers are 1-based; the bad ones sit among good ones, several per batch.
    lines[2] = "not json at all".into(); // line 3: rejected locally
    lines[4] = "[1, 2, 3]".into(); // line 5: rejected locally
    lines[7] =
        json!({"event_type": "Element", "action": "Explode", "actor": {"id": "u"}}).to_string(); // line 8: 422
    lines[8] = json!({"event_type": "Element", "action": "Create"}).to_string(); // line 9: 422, same batch
    lines[11] =
        json!({"id": "taken", "event_type": "Element", "action": "Delete", "actor": {"id": "x"}})
            .to_string(); // line 12: 409
    lines[13] =
        json!({"id": "own-id", "event_type": "Element", "action": "Create", "actor": {"id": "x"}})
            .to_string();
    lines.insert(15, String::new()); // a blank line 16: skipped, not rejected
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    write_lines(&file, &lines);
    let file = file.to_str().unwrap();

    let out = send(&server.base, &account.ingest, &[file, "--batch-size", "5"]);
    let summary = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{summary}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rejected_lines(&summary), [3, 5, 8, 9, 12], "{summary}");
    assert!(
        summary.contains("line 3: rejected: not a JSON object"),
        "{summary}"
    );
    assert!(
        summary.contains("line 8: rejected: ") && summary.contains("Explode"),
        "{summary}"
    );
    assert!(summary.contains("line 9: rejected: actor"), "{summary}");
    assert!(
        summary.contains("line 12: rejected: ") && summary.contains("taken"),
        "{summary}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("5 of 20 lines were rejected"));
    assert_eq!(count(&summary, "stored"), 15);
    assert_eq!(count(&summary, "already present"), 0);
    assert_eq!(count(&summary, "rejected"), 5);

    // The 15 good lines and the earlier event, each once.
    let ids = stored_ids(&server, &account).await;
    assert_eq!(ids.len(), 16);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 16);
    assert!(ids.contains(&"own-id".to_string()));

    // A rerun stores nothing twice: the good lines are already present.
    let out = send(&server.base, &account.ingest, &[file, "--batch-size", "7"]);
    let summary = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{summary}");
    assert_eq!(count(&summary, "stored"), 0, "{summary}");
    assert_eq!(count(&summary, "already present"), 15);
    assert_eq!(rejected_lines(&summary), [3, 5, 8, 9, 12]);
    assert_eq!(stored_count(&server, &account).await, 16);
}

#[tokio::test]
async fn a_clean_file_exits_0_and_two_files_never_collide() {
    let server = TestServer::start();
    let account = server.account("send-two");
    let lines: Vec<String> = (0..30).map(|n| event(n).to_string()).collect();
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    // The same lines in two files: two sources, so two sets of events.
    write_lines(&first, &lines);
    write_lines(&second, &lines);
    for file in [&first, &second] {
        let out = send(&server.base, &account.ingest, &[file.to_str().unwrap()]);
        let summary = stdout(&out);
        assert!(
            out.status.success(),
            "{summary}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(count(&summary, "stored"), 30, "{summary}");
        assert!(summary.contains(&format!(
            "namespace of derived ids: file:{}",
            std::fs::canonicalize(file).unwrap().display()
        )));
    }
    assert_eq!(stored_count(&server, &account).await, 60);
    // The same file through another path (a symlink) is the same source.
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(&first, &link).unwrap();
    let out = send(&server.base, &account.ingest, &[link.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(count(&stdout(&out), "already present"), 30);
    // An explicit namespace replaces the default: a new source again.
    let out = send(
        &server.base,
        &account.ingest,
        &[first.to_str().unwrap(), "--namespace", "import-2026"],
    );
    assert_eq!(count(&stdout(&out), "stored"), 30);
    assert_eq!(stored_count(&server, &account).await, 90);
}

#[tokio::test]
async fn standard_input_needs_a_namespace_and_then_reruns_idempotently() {
    let server = TestServer::start();
    let account = server.account("send-stdin");
    let text: String = (0..10).map(|n| format!("{}\n", event(n))).collect();
    let run = |args: &[&str]| {
        let mut child = send_command(&server.base, &account.ingest, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The command may refuse before reading: a closed pipe is no failure here.
        let _ = child.stdin.take().unwrap().write_all(text.as_bytes());
        child.wait_with_output().unwrap()
    };
    let out = run(&["-"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --namespace"));
    assert_eq!(stored_count(&server, &account).await, 0);
    let out = run(&["--namespace", "nightly-2026-12-06"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(&stdout(&out), "stored"), 10);
    let out = run(&["--namespace", "nightly-2026-12-06", "-"]);
    assert_eq!(count(&stdout(&out), "already present"), 10);
    assert_eq!(stored_count(&server, &account).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_after_a_sigkill_halfway_leaves_exactly_every_event_once() {
    const N: usize = 6_000;
    let server = TestServer::start();
    let account = server.account("send-kill");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.jsonl");
    write_lines(
        &file,
        &(0..N).map(|n| event(n).to_string()).collect::<Vec<_>>(),
    );
    let file = file.to_str().unwrap();
    let args = [file, "--batch-size", "20", "--concurrency", "2"];
    let mut child = KillOnDrop(
        send_command(&server.base, &account.ingest, &args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while stored_count(&server, &account).await < (N / 3) as u64 {
        assert!(started.elapsed() < Duration::from_secs(120), "too slow");
        assert!(child.0.try_wait().unwrap().is_none(), "send ended early");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.0.kill().unwrap(); // SIGKILL: no chance to finish anything
    child.0.wait().unwrap();
    let at_kill = stored_count(&server, &account).await;
    assert!(at_kill < N as u64, "the run was not interrupted: {at_kill}");

    let out = send(&server.base, &account.ingest, &args);
    let summary = stdout(&out);
    assert!(
        out.status.success(),
        "{summary}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the killed run stored is found present, the rest stored now.
    assert!(count(&summary, "already present") >= at_kill, "{summary}");
    assert_eq!(
        count(&summary, "stored") + count(&summary, "already present"),
        N as u64
    );
    let ids = stored_ids(&server, &account).await;
    assert_eq!(ids.len(), N);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), N);
}

/// A port nothing listens on now (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn connection_errors_are_retried_until_the_server_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cli(&data, &["account", "create", "late"], "");
    let key = cli(
        &data,
        &["key", "create", "--account", "late", "--scope", "ingest"],
        "",
    );
    let file = dir.path().join("events.jsonl");
    write_lines(
        &file,
        &(0..50).map(|n| event(n).to_string()).collect::<Vec<_>>(),
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The sender starts first and meets refused connections.
    let sender = send_command(
        &base,
        key.trim(),
        &[file.to_str().unwrap(), "--batch-size", "10"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut server = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("AUDITLOG_DATABASE_URL")
        .env("AUDITLOG_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_listening(&mut server);
    let _server = KillOnDrop(server);
    let out = sender.wait_with_output().unwrap();
    let summary = stdout(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{summary}{stderr}");
    assert_eq!(count(&summary, "stored"), 50);
    assert!(count(&summary, "retried requests") >= 1, "{summary}");
    assert!(
        stderr.contains("retrying a batch") && stderr.contains("onnection refused"),
        "{stderr}"
    );
}

#[tokio::test]
async fn rate_limited_requests_wait_for_retry_after_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(
        dir.path(),
        &["--rate-limit-per-second", "2", "--rate-limit-burst", "2"],
    );
    let account = server.account("send-429");
    let file = dir.path().join("events.jsonl");
    write_lines(
        &file,
        &(0..60).map(|n| event(n).to_string()).collect::<Vec<_>>(),
    );
    let started = Instant::now();
    let out = send(
        &server.base,
        &account.ingest,
        &[
            file.to_str().unwrap(),
            "--batch-size",
            "5",
            "--concurrency",
            "4",
        ],
    );
    let summary = stdout(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{summary}{stderr}");
    assert_eq!(count(&summary, "stored"), 60);
    assert!(count(&summary, "retried requests") >= 1, "{summary}");
    assert!(stderr.contains("429 rate_limited"), "{stderr}");
    // 12 requests at 2 per second after a burst of 2: the waits were kept.
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stored_count(&server, &account).await, 60);
}

#[test]
fn bad_arguments_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    std::fs::write(&file, "{}\n").unwrap();
    let file = file.to_str().unwrap();
    for (base, args, message) in [
        (
            "ftp://example.test",
            vec![file],
            "must be the server's base URL",
        ),
        (
            "https://example.test",
            vec![file, "--ca-file", "/no/such/ca.pem"],
            "--ca-file /no/such/ca.pem: cannot read it",
        ),
        (
            "127.0.0.1:8080",
            vec![file],
            "must be the server's base URL",
        ),
        (
            "http://127.0.0.1:9",
            vec!["/no/such/file.jsonl"],
            "cannot open /no/such/file.jsonl",
        ),
        (
            "http://127.0.0.1:9",
            vec![file, "--batch-size", "1001"],
            "1001",
        ),
        (
            "http://127.0.0.1:9",
            vec![file, "--namespace", ""],
            "--namespace must not be empty",
        ),
    ] {
        let out = send(base, "alk_x", &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(message),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_progress_bar_is_drawn_on_a_terminal_and_nothing_otherwise() {
    let server = TestServer::start();
    let account = server.account("send-progress");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    write_lines(
        &file,
        &(0..1_000).map(|n| event(n).to_string()).collect::<Vec<_>>(),
    );
    let args = ["--batch-size", "10", "--concurrency", "1"];
    // Standard error is a pipe here: the summary only, no bar.
    let out = send(
        &server.base,
        &account.ingest,
        &[&[file.to_str().unwrap()], &args[..]].concat(),
    );
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(count(&stdout(&out), "already present"), 0);
    // Under a pseudo-terminal (util-linux `script`), the bar and its counts appear.
    let command = format!(
        "{BIN} send --url {} --key {} {} {} --namespace terminal-run",
        server.base,
        account.ingest,
        file.display(),
        args.join(" ")
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("AUDITLOG_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux script runs the command under a pseudo-terminal");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains(" stored, ") && screen.contains('%'),
        "{screen}"
    );
    assert!(screen.contains("stored: 1000"), "{screen}");
}

#[tokio::test]
async fn a_refused_key_stops_the_run_with_exit_code_1() {
    let server = TestServer::start();
    let account = server.account("send-refused");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    write_lines(
        &file,
        &(0..5).map(|n| event(n).to_string()).collect::<Vec<_>>(),
    );
    for (key, status) in [("alk_not_a_key", "401"), (account.read.as_str(), "403")] {
        let out = send(&server.base, key, &[file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("the server answered {status}")),
            "{stderr}"
        );
        assert!(stderr.contains("run the same command again"), "{stderr}");
        // The summary is printed all the same.
        assert_eq!(count(&stdout(&out), "stored"), 0);
    }
    assert_eq!(stored_count(&server, &account).await, 0);
}
