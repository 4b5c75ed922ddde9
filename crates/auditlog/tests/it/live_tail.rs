//! The live tail, `GET /api/v1/events/stream`, against the real binary:
//! watchers with different filters see exactly their events in seq order
//! while 10,000 are sent, one of them reconnecting midway with
//! `Last-Event-ID`, and each event arrives within 100 ms (p95) of its 201;
//! `after_seq`, the refusals, keep-alives, the caps, the shutdown; the
//! `auditlog tail` command resuming through a cut connection; and, on
//! PostgreSQL, a stream on one server seeing events sent to another.

use crate::helpers::{TestAccount, TestServer, BIN};
use auditlog_store_postgres::test_support::TestDatabase;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// One SSE message as a watcher received it.
#[derive(Debug, Clone)]
struct Received {
    seq: u64,
    event: Value,
    at: Instant,
}

/// A minimal `text/event-stream` reader (independent of the binary's own):
/// `id` and `data` fields, comments, messages split across chunks.
#[derive(Default)]
struct Sse {
    buffer: Vec<u8>,
    id: Option<u64>,
    data: Option<String>,
    comments: usize,
}

impl Sse {
    fn feed(&mut self, chunk: &[u8]) -> Vec<(Option<u64>, Option<String>)> {
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8(line[..line.len() - 1].to_vec()).unwrap();
            if line.is_empty() {
                if self.id.is_some() || self.data.is_some() {
                    out.push((self.id.take(), self.data.take()));
                }
            } else if line.starts_with(':') {
                self.comments += 1;
            } else if let Some(id) = line.strip_prefix("id: ") {
                self.id = Some(id.parse().expect("an SSE id is a seq"));
            } else if let Some(data) = line.strip_prefix("data: ") {
                assert!(self.data.is_none(), "one data line per message");
                self.data = Some(data.to_string());
            } else {
                panic!("unexpected SSE line {line:?}");
            }
        }
        out
    }
}

/// What one watcher saw, shared with the test.
#[derive(Default)]
struct Seen {
    events: Vec<Received>,
    /// The `id` of the first message of each connection (the start).
    starts: Vec<u64>,
    connections: usize,
}

/// Connects to the stream and records every event until `stop` is set;
/// reconnects (with `Last-Event-ID`) after `reconnect_after` events once,
/// and whenever the connection ends. Returns once the first connection
/// has its start position.
async fn watch(
    base: &str,
    key: &str,
    query: &str,
    reconnect_after: Option<usize>,
) -> (Arc<Mutex<Seen>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let url = format!("{base}/api/v1/events/stream{query}");
    let key = key.to_string();
    let shared = seen.clone();
    let task = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut ready = Some(ready_tx);
        let mut last_id: Option<u64> = None;
        let mut reconnect_after = reconnect_after;
        loop {
            let mut request = http.get(&url).bearer_auth(&key);
            if let Some(id) = last_id {
                request = request.header("Last-Event-ID", id.to_string());
            }
            // The server gone (the test ended or stopped it): the watcher ends.
            let Ok(mut response) = request.send().await else {
                return;
            };
            assert_eq!(response.status(), 200, "{:?}", response.text().await);
            assert_eq!(
                response.headers()["content-type"],
                "text/event-stream",
                "the stream's content type"
            );
            shared.lock().unwrap().connections += 1;
            let mut parser = Sse::default();
            let mut first = true;
            'connection: while let Ok(Some(chunk)) = response.chunk().await {
                let at = Instant::now();
                for (id, data) in parser.feed(&chunk) {
                    let id = id.expect("every message has an id");
                    last_id = Some(id);
                    let mut seen = shared.lock().unwrap();
                    if first {
                        first = false;
                        assert!(data.is_none(), "the first message is the start, no data");
                        seen.starts.push(id);
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(());
                        }
                        continue;
                    }
                    let Some(data) = data else { continue };
                    let event: Value = serde_json::from_str(&data).unwrap();
                    assert_eq!(event["seq"], id, "the SSE id is the event's seq");
                    seen.events.push(Received { seq: id, event, at });
                    if reconnect_after.is_some_and(|n| seen.events.len() >= n) {
                        reconnect_after = None;
                        // Drop the connection in the middle of the stream.
                        break 'connection;
                    }
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(20), ready_rx)
        .await
        .expect("the stream started")
        .unwrap();
    (seen, task)
}

/// Waits until `seen` holds `count` events (or fails after `limit`).
async fn wait_for(seen: &Arc<Mutex<Seen>>, count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let have = seen.lock().unwrap().events.len();
        if have >= count {
            // A moment more, so that a repeat or an extra would show.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {have} of {count} events arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const TYPES: [&str; 3] = ["Test Case", "Test Suite", "Element"];
const ACTIONS: [&str; 3] = ["Create", "Update", "Delete"];

fn event(i: usize) -> Value {
    json!({
        "id": format!("live-{i}"),
        "event_type": TYPES[i % 3],
        "action": ACTIONS[(i / 3) % 3],
        "actor": {"id": format!("u-{}", i % 7)},
        "project": format!("P{}", i % 4),
        "target": {"id": format!("T-{}", i % 11)},
    })
}

/// Sends events `range` in batches of `batch` with `senders` concurrent
/// clients; returns (event index, seq, when its 201 arrived) for each.
async fn send_all(
    server: &TestServer,
    account: &TestAccount,
    total: usize,
    batch: usize,
    senders: usize,
) -> Vec<(usize, u64, Instant)> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (next, url, key) = (
            next.clone(),
            server.url("/api/v1/events"),
            account.ingest.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut out = Vec::new();
            loop {
                let first = next.fetch_add(batch, std::sync::atomic::Ordering::SeqCst);
                if first >= total {
                    return out;
                }
                let indexes: Vec<usize> = (first..(first + batch).min(total)).collect();
                let body = json!({"events": indexes.iter().map(|i| event(*i)).collect::<Vec<_>>()});
                let response = http
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let at = Instant::now();
                assert_eq!(response.status(), 201);
                let answer: Value = response.json().await.unwrap();
                for (i, receipt) in indexes.iter().zip(answer["events"].as_array().unwrap()) {
                    out.push((*i, receipt["seq"].as_u64().unwrap(), at));
                }
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_watchers_see_exactly_their_events_in_order_while_10_000_arrive() {
    let server = TestServer::start();
    let account = server.account("live");
    // Different filters: everything; Test Case updates; one user, who
    // also reconnects midway with Last-Event-ID.
    let (all, _a) = watch(&server.base, &account.read, "", None).await;
    let (updates, _b) = watch(
        &server.base,
        &account.read,
        "?event_type=test%20case&action=Update",
        None,
    )
    .await;
    let (user, _c) = watch(&server.base, &account.read, "?user=u-3", Some(700)).await;

    let sent = send_all(&server, &account, 10_000, 5, 2).await;
    assert_eq!(sent.len(), 10_000);
    let mut by_seq: Vec<(u64, usize, Instant)> =
        sent.iter().map(|(i, seq, at)| (*seq, *i, *at)).collect();
    by_seq.sort_by_key(|(seq, _, _)| *seq);
    let answered: HashMap<u64, Instant> = by_seq.iter().map(|(s, _, at)| (*s, *at)).collect();

    let expect = |keep: &dyn Fn(usize) -> bool| -> Vec<u64> {
        by_seq
            .iter()
            .filter(|(_, i, _)| keep(*i))
            .map(|(seq, _, _)| *seq)
            .collect()
    };
    let want_all = expect(&|_| true);
    let want_updates = expect(&|i| TYPES[i % 3] == "Test Case" && ACTIONS[(i / 3) % 3] == "Update");
    let want_user = expect(&|i| i % 7 == 3);
    assert!(want_user.len() > 1_400 && want_updates.len() > 1_000);

    let mut latencies = Vec::new();
    for (name, seen, want) in [
        ("all", &all, &want_all),
        ("updates", &updates, &want_updates),
        ("user", &user, &want_user),
    ] {
        wait_for(seen, want.len(), Duration::from_secs(60)).await;
        let seen = seen.lock().unwrap();
        let got: Vec<u64> = seen.events.iter().map(|r| r.seq).collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{name}: every event exactly once (no gap, no repeat)"
        );
        assert!(got == *want, "{name}: exactly its events, in seq order");
        for r in &seen.events {
            let i: usize = r.event["id"].as_str().unwrap()["live-".len()..]
                .parse()
                .unwrap();
            assert_eq!(r.event, {
                // The served event matches what was sent.
                let mut sent = event(i);
                for (k, v) in r.event.as_object().unwrap() {
                    if sent.get(k).is_none() {
                        sent[k] = v.clone();
                    }
                }
                sent
            });
            latencies.push(r.at.saturating_duration_since(answered[&r.seq]));
        }
        if name == "user" {
            assert_eq!(seen.connections, 2, "the user's watcher reconnected once");
        } else {
            assert_eq!(seen.connections, 1);
        }
    }
    latencies.sort();
    let p95 = latencies[latencies.len() * 95 / 100];
    let p50 = latencies[latencies.len() / 2];
    eprintln!(
        "live tail: {} deliveries, 201 → SSE p50 {p50:?}, p95 {p95:?}, max {:?}",
        latencies.len(),
        latencies.last().unwrap()
    );
    assert!(
        p95 <= Duration::from_millis(100),
        "p95 from the 201 to the SSE event is {p95:?}, over 100 ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_starts_where_asked_and_refuses_what_it_cannot_serve() {
    let server = TestServer::start();
    let account = server.account("start");
    let events: Vec<Value> = (0..5).map(event).collect();
    let (status, _) = server
        .post(
            "/api/v1/events",
            &account.ingest,
            &json!({"events": events}),
        )
        .await;
    assert_eq!(status, 201);

    // after_seq: the events after it, at once.
    let (seen, _task) = watch(&server.base, &account.read, "?after_seq=2", None).await;
    wait_for(&seen, 3, Duration::from_secs(10)).await;
    let got: Vec<u64> = seen.lock().unwrap().events.iter().map(|r| r.seq).collect();
    assert_eq!(got, [3, 4, 5]);
    assert_eq!(seen.lock().unwrap().starts, [2]);

    // Without after_seq: the next event stored, none before.
    let (next, _task) = watch(&server.base, &account.read, "", None).await;
    assert_eq!(next.lock().unwrap().starts, [5]);
    let (status, _) = server
        .post("/api/v1/events", &account.ingest, &event(5))
        .await;
    assert_eq!(status, 201);
    wait_for(&next, 1, Duration::from_secs(10)).await;
    let got: Vec<u64> = next.lock().unwrap().events.iter().map(|r| r.seq).collect();
    assert_eq!(got, [6]);

    // Last-Event-ID wins over after_seq.
    let response = server
        .http
        .get(server.url("/api/v1/events/stream?after_seq=1"))
        .bearer_auth(&account.read)
        .header("Last-Event-ID", "5")
        .send()
        .await
        .unwrap();
    let mut response = response;
    let mut parser = Sse::default();
    let mut messages = Vec::new();
    while messages.len() < 2 {
        let chunk = response.chunk().await.unwrap().unwrap();
        messages.extend(parser.feed(&chunk));
    }
    assert_eq!(messages[0], (Some(5), None));
    assert_eq!(messages[1].0, Some(6));
    drop(response);

    // Refusals, in the API's error shape, naming what is wrong.
    for (query, header, status, field) in [
        ("?after_seq=-1", None, 400, "after_seq"),
        ("?after_seq=x", None, 400, "after_seq"),
        ("", Some("seven"), 400, "Last-Event-ID"),
        ("?colour=red", None, 400, "colour"),
        ("?event_type=Nope", None, 400, "event_type"),
    ] {
        let mut request = server
            .http
            .get(server.url(&format!("/api/v1/events/stream{query}")))
            .bearer_auth(&account.read);
        if let Some(h) = header {
            request = request.header("Last-Event-ID", h);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{query} {header:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
    }
    let response = server
        .http
        .get(server.url("/api/v1/events/stream"))
        .bearer_auth(&account.ingest)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "an ingest-only key may not watch");
    let response = server
        .http
        .get(server.url("/api/v1/events/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_capped_kept_alive_and_ended_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    // A 3 s request timeout closes idle connections after 6 s, so keep-alives
    // come every 2 s; at most 2 streams on this server.
    let server = TestServer::start_on(
        dir.path(),
        &["--max-live-streams", "2", "--request-timeout", "3s"],
    );
    let account = server.account("caps");
    let (first, _a) = watch(&server.base, &account.read, "", None).await;
    let open = |server: &TestServer| {
        server
            .http
            .get(server.url("/api/v1/events/stream"))
            .bearer_auth(&account.read)
            .send()
    };
    let second = open(&server).await.unwrap();
    assert_eq!(second.status(), 200);
    let refused = open(&server).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_streams");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_live_streams"),
        "{body}"
    );

    // A closed stream gives its place back (noticed at the next keep-alive).
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(10);
    let third = loop {
        let response = open(&server).await.unwrap();
        if response.status() == 200 {
            break response;
        }
        assert!(Instant::now() < deadline, "the place was never given back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Keep-alive comments keep a quiet stream open past the idle timeout.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (status, _) = server
        .post("/api/v1/events", &account.ingest, &event(0))
        .await;
    assert_eq!(status, 201);
    wait_for(&first, 1, Duration::from_secs(5)).await;
    assert_eq!(first.lock().unwrap().connections, 1, "never reconnected");

    // SIGTERM ends the streams, so the server drains and exits promptly.
    drop(third);
    let pid = server.child.id().to_string();
    let mut server = server;
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the server did not stop with a stream open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP proxy that can cut every connection through it at once.
struct CuttingProxy {
    base: String,
    cut: tokio::sync::watch::Sender<u64>,
    /// Connections accepted so far.
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl CuttingProxy {
    async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cuts = cut.clone();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let upstream = upstream.clone();
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {
                            let _ = client.shutdown().await;
                        }
                    }
                });
            }
        });
        Self {
            base,
            cut,
            accepted,
        }
    }

    /// Waits until at least `n` connections were accepted.
    async fn wait_for_connections(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.accepted.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "fewer than {n} connections came");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditlog_tail_prints_each_event_once_across_a_cut_connection() {
    let server = TestServer::start();
    let account = server.account("cli-tail");
    let proxy = CuttingProxy::start(&server.base).await;
    let mut child = crate::helpers::KillOnDrop(
        Command::new(BIN)
            .args([
                "tail",
                "--url",
                &proxy.base,
                "--key",
                &account.read,
                "--event-type",
                "Test Case",
                "--after-seq",
                "0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    // From seq 0, so that events sent before it connects are its too.

    let mut want = Vec::new();
    for round in 0..3 {
        // The command is connected (again), so the cut below hits it.
        proxy.wait_for_connections(round + 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let events: Vec<Value> = (round * 30..(round + 1) * 30).map(event).collect();
        let (status, answer) = server
            .post(
                "/api/v1/events",
                &account.ingest,
                &json!({"events": events}),
            )
            .await;
        assert_eq!(status, 201);
        for (i, receipt) in (round * 30..).zip(answer["events"].as_array().unwrap()) {
            if TYPES[i % 3] == "Test Case" {
                want.push(receipt["seq"].as_u64().unwrap());
            }
        }
        // Cut the connection; the next round is sent while it reconnects.
        proxy.cut_all();
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < want.len() && Instant::now() < deadline {
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(200)) {
            let event: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(event["event_type"], "Test Case");
            got.push(event["seq"].as_u64().unwrap());
        }
    }
    // Nothing more may follow (no repeat).
    assert!(lines_rx.recv_timeout(Duration::from_millis(500)).is_err());
    assert_eq!(got, want, "each matching event once, in seq order");
    let _ = child.0.kill();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("reconnecting") || stderr.contains("retrying"),
        "{stderr}"
    );
    assert!(
        proxy.accepted.load(std::sync::atomic::Ordering::SeqCst) >= 4,
        "it reconnected after each cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_stream_sees_events_sent_to_another_server() {
    let Some(database) = TestDatabase::create("live_tail_across_servers") else {
        return;
    };
    let scratch = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let servers = [
        TestServer::start_on_database(&database.url, scratch[0].path(), &[]),
        TestServer::start_on_database(&database.url, scratch[1].path(), &[]),
    ];
    let account = servers[0].account("across");
    let (seen, _task) = watch(&servers[1].base, &account.read, "?project=P1", None).await;
    let sent = send_all(&servers[0], &account, 200, 10, 2).await;
    let mut want: Vec<u64> = sent
        .iter()
        .filter(|(i, _, _)| i % 4 == 1)
        .map(|(_, seq, _)| *seq)
        .collect();
    want.sort_unstable();
    wait_for(&seen, want.len(), Duration::from_secs(20)).await;
    let got: Vec<u64> = seen.lock().unwrap().events.iter().map(|r| r.seq).collect();
    assert_eq!(got, want, "found by polling the shared database");
}
