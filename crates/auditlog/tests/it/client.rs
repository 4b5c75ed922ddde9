//! The Rust client (`auditlog-client`) against the real binary: receipts that
//! verify, refused events reported by id while the rest is stored, backoff
//! through 503 and 429, exactly-once delivery across a SIGKILL of the
//! server, and a spool that survives a SIGKILL of the client.

use crate::helpers::{cli, wait_until_listening, KillOnDrop, TestServer, BIN};
use auditlog_client::{
    AddError, Batcher, Client, Event, FlushError, Rejection, RetryPolicy, SendError, StartError,
    Target, VerifierKey, VerifyError, WhenFull,
};
use serde_json::Value;
use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn event(n: usize) -> Event {
    Event::builder("Test Case", "Update", "u-1")
        .project("Client")
        .target(Target::new(format!("TC-{n}")))
        .change("title", "old", format!("new {n}"))
        .build()
        .unwrap()
}

/// Every stored event's id, paged through the API; panics on a repeated id.
async fn stored_ids(base: &str, read_key: &str) -> HashSet<String> {
    let http = reqwest::Client::new();
    let mut ids = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page: Value = http
            .get(format!("{base}/api/v1/events?limit=1000{cursor}"))
            .bearer_auth(read_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for e in page["events"].as_array().unwrap() {
            let id = e["id"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "event {id} is stored twice");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return ids,
        }
    }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
        give_up_after: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn send_returns_a_durable_receipt_that_verifies_against_the_pinned_key() {
    let server = TestServer::start();
    let account = server.account("client-send");
    let client = Client::builder(&server.base, &account.ingest)
        .read_key(&account.read)
        .build()
        .unwrap();
    let first = event(1);
    let receipt = client.send(first.clone()).await.unwrap();
    assert_eq!(
        (receipt.id.as_str(), receipt.seq, receipt.created),
        (first.id.as_str(), 1, true)
    );
    // A retry of the same event (same id) is the same entry.
    let again = client.send(first.clone()).await.unwrap();
    assert_eq!(
        (again.seq, again.hash.as_str(), again.created),
        (1, receipt.hash.as_str(), false)
    );
    client.send(event(2)).await.unwrap();

    // Pinned out of band: from the server's key file, not from its answers.
    let signer = auditlog_server::signing_key::load(&server.data_dir.join("signing-key")).unwrap();
    let pinned: VerifierKey = signer.verifier().to_text().parse().unwrap();
    assert_eq!(
        client.fetch_public_key().await.unwrap(),
        signer.verifier().to_text()
    );
    let verified = client.verify_receipt(&receipt, &pinned).await.unwrap();
    assert_eq!(verified.origin, "auditlog/client-send");
    assert!(verified.tree_size >= 1);
    let leaf: Value = serde_json::from_slice(&verified.leaf).unwrap();
    assert_eq!(leaf["id"], first.id.as_str());
    assert_eq!(leaf["details"]["changes"][0]["new"], "new 1");

    // Another server's key does not verify this server's checkpoint.
    let other = TestServer::start();
    let other_key: VerifierKey = Client::new(&other.base, "unused")
        .unwrap()
        .fetch_public_key()
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(matches!(
        client.verify_receipt(&receipt, &other_key).await,
        Err(VerifyError::Signature(_))
    ));
    // A receipt whose hash is not the stored event's.
    let mut forged = receipt.clone();
    forged.hash = "0".repeat(64);
    assert!(matches!(
        client.verify_receipt(&forged, &pinned).await,
        Err(VerifyError::Mismatch(_))
    ));
}

#[tokio::test]
async fn a_bad_key_is_refused_without_retries_and_one_bad_event_is_its_rejection() {
    let server = TestServer::start();
    let client = Client::new(&server.base, "alk_not_a_key").unwrap();
    let started = Instant::now();
    let error = client.send(event(1)).await.unwrap_err();
    assert!(
        matches!(error, SendError::Refused { status: 401, .. }),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // One invalid event sent alone comes back as its rejection.
    let account = server.account("client-one");
    let client = Client::new(&server.base, &account.ingest).unwrap();
    let mut invalid = event(1);
    invalid.action = "Explode".into();
    match client.send(invalid.clone()).await {
        Err(SendError::Rejected(r)) => {
            assert_eq!((r.id.as_str(), r.status), (invalid.id.as_str(), 422));
            assert!(r.errors.iter().any(|e| e.field == "action"), "{r:?}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn two_invalid_events_are_reported_by_id_and_the_others_stored() {
    let server = TestServer::start();
    let account = server.account("client-invalid");
    let client = Client::builder(&server.base, &account.ingest)
        .retry(quick_retries())
        .build()
        .unwrap();
    let mut events: Vec<Event> = (0..10).map(event).collect();
    events[3].event_type = "No Such Type".into();
    let ahead = auditlog_client::OffsetDateTime::now_utc() + time::Duration::hours(1);
    events[7] = Event::builder("Test Case", "Update", "u-1")
        .time(ahead)
        .build()
        .unwrap();
    let result = client.send_batch(events.clone()).await.unwrap();
    let rejected: Vec<&str> = result.rejected.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(rejected, [events[3].id.as_str(), events[7].id.as_str()]);
    let bad_type = &result.rejected[0];
    assert_eq!(
        (bad_type.status, bad_type.code.as_str()),
        (422, "invalid_events")
    );
    assert!(
        bad_type.reason.starts_with("event_type"),
        "{}",
        bad_type.reason
    );
    assert_eq!(bad_type.event, events[3]);
    let future = &result.rejected[1];
    assert!(future.time_in_future(), "{future:?}");
    // The server's clock comes with it, never the event silently dropped.
    let server_clock = future.server_time.expect("the server's Date header");
    let skew = server_clock
        .duration_since(std::time::SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    assert!(skew < Duration::from_secs(120), "{skew:?}");
    assert!(
        future.to_string().contains("the server's clock"),
        "{future}"
    );
    assert_eq!(result.receipts.len(), 8);
    let ids = stored_ids(&server.base, &account.read).await;
    let expected: HashSet<String> = events
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 7)
        .map(|(_, e)| e.id.clone())
        .collect();
    assert_eq!(ids, expected);

    // Through the batcher: a conflicting reuse of an id (409) and an invalid
    // event, each reported to its Pending and to the callback; the rest stored.
    let reported: Arc<Mutex<Vec<Rejection>>> = Arc::default();
    let seen = reported.clone();
    let batcher = Batcher::builder(client.clone())
        .on_rejected(move |r| seen.lock().unwrap().push(r.clone()))
        .start()
        .unwrap();
    let mut conflicting = events[0].clone();
    conflicting.action = "Delete".into();
    let mut invalid = event(20);
    invalid.actor.id = String::new();
    let mut pending = Vec::new();
    for e in [
        event(21),
        conflicting.clone(),
        event(22),
        invalid.clone(),
        event(23),
    ] {
        pending.push(batcher.add(e).await.unwrap());
    }
    batcher.flush(Duration::from_secs(30)).await.unwrap();
    let mut answers = Vec::new();
    for p in pending {
        answers.push(p.receipt().await);
    }
    assert!(
        matches!(&answers[1], Err(SendError::Rejected(r)) if r.status == 409 && r.id == conflicting.id)
    );
    assert!(
        matches!(&answers[3], Err(SendError::Rejected(r)) if r.status == 422 && r.id == invalid.id
        && r.errors.iter().any(|e| e.field == "actor.id"))
    );
    assert!([0, 2, 4]
        .iter()
        .all(|&i| answers[i].as_ref().is_ok_and(|r| r.created)));
    let mut by_callback: Vec<String> = reported
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.id.clone())
        .collect();
    by_callback.sort();
    let mut expected_ids = vec![conflicting.id.clone(), invalid.id.clone()];
    expected_ids.sort();
    assert_eq!(by_callback, expected_ids);
    assert_eq!(stored_ids(&server.base, &account.read).await.len(), 8 + 3);
    batcher.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(batcher.stats().rejected, 2);
}

/// A proxy in front of the server that answers each request with the next
/// scripted fault (status, `Retry-After`) until the script is empty, then
/// forwards; it records each request's arrival.
struct FaultProxy {
    base: String,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
}

/// One scripted answer: a status and its `Retry-After` seconds.
type Fault = (u16, Option<u64>);

/// A request the proxy saw: when, how many events its body held, and the
/// status it was answered with.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: Instant,
    events: usize,
    status: u16,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    http: reqwest::Client,
}

async fn proxy_handler(
    axum::extract::State(state): axum::extract::State<ProxyState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let events = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["events"].as_array().map(Vec::len))
        .unwrap_or(0);
    let record = |status: u16| {
        state
            .arrivals
            .lock()
            .unwrap()
            .push(Arrival { at, events, status });
    };
    let fault = state.faults.lock().unwrap().pop_front();
    if let Some((status, retry_after)) = fault {
        record(status);
        let code = match status {
            429 => "rate_limited",
            413 => "body_too_large",
            _ => "unavailable",
        };
        let body = format!(r#"{{"error":{{"code":"{code}","message":"injected by the test"}}}}"#);
        let status = axum::http::StatusCode::from_u16(status).unwrap();
        let mut response = (status, [("content-type", "application/json")], body).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", seconds.to_string().parse().unwrap());
        }
        return response;
    }
    let mut forward = state
        .http
        .request(
            parts.method.clone(),
            format!("{}{}", state.upstream, parts.uri),
        )
        .body(body);
    for name in ["authorization", "content-type"] {
        if let Some(value) = parts.headers.get(name) {
            forward = forward.header(name, value.to_str().unwrap());
        }
    }
    let answer = forward.send().await.unwrap();
    let status = answer.status().as_u16();
    record(status);
    let status = axum::http::StatusCode::from_u16(status).unwrap();
    let body = answer.bytes().await.unwrap();
    (status, [("content-type", "application/json")], body).into_response()
}

impl FaultProxy {
    async fn start(upstream: &str, faults: &[Fault]) -> Self {
        let arrivals: Arc<Mutex<Vec<Arrival>>> = Arc::default();
        let state = ProxyState {
            upstream: upstream.to_string(),
            faults: Arc::new(Mutex::new(faults.iter().copied().collect())),
            arrivals: arrivals.clone(),
            http: reqwest::Client::new(),
        };
        let app = axum::Router::new()
            .fallback(proxy_handler)
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, arrivals }
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_413_for_several_events_resends_them_in_halves() {
    let server = TestServer::start();
    let account = server.account("client-413");
    let proxy = FaultProxy::start(&server.base, &[(413, None)]).await;
    let client = Client::new(&proxy.base, &account.ingest).unwrap();
    let events: Vec<Event> = (0..10).map(event).collect();
    let result = client.send_batch(events.clone()).await.unwrap();
    assert_eq!(result.receipts.len(), 10);
    let ids: Vec<&str> = result.receipts.iter().map(|r| r.id.as_str()).collect();
    let sent: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, sent, "receipts in the order the events were given");
    let seen: Vec<(usize, u16)> = proxy
        .arrivals()
        .iter()
        .map(|a| (a.events, a.status))
        .collect();
    assert_eq!(seen, [(10, 413), (5, 201), (5, 201)]);
}

#[tokio::test]
async fn batches_by_count_by_bytes_and_by_interval() {
    let server = TestServer::start();
    let account = server.account("client-batches");
    let proxy = FaultProxy::start(&server.base, &[]).await;
    let client = Client::new(&proxy.base, &account.ingest).unwrap();

    let by_count = Batcher::builder(client.clone())
        .max_batch_events(10)
        .start()
        .unwrap();
    for n in 0..25 {
        by_count.add(event(n)).await.unwrap();
    }
    by_count.flush(Duration::from_secs(30)).await.unwrap();
    let sizes: Vec<usize> = proxy.arrivals().iter().map(|a| a.events).collect();
    assert_eq!(sizes, [10, 10, 5], "two full batches, the rest on flush");

    let one = event(100).to_json().len();
    let by_bytes = Batcher::builder(client.clone())
        .max_batch_bytes(3 * one + one / 2)
        .start()
        .unwrap();
    for n in 100..107 {
        by_bytes.add(event(n)).await.unwrap();
    }
    by_bytes.flush(Duration::from_secs(30)).await.unwrap();
    let sizes: Vec<usize> = proxy.arrivals()[3..].iter().map(|a| a.events).collect();
    assert_eq!(sizes, [3, 3, 1], "at most 3.5 events' bytes per batch");

    let by_interval = Batcher::builder(client)
        .flush_interval(Duration::from_millis(300))
        .start()
        .unwrap();
    let started = Instant::now();
    let pending = by_interval.add(event(200)).await.unwrap();
    // No flush: the interval alone sends the lone event.
    let receipt = tokio::time::timeout(Duration::from_secs(10), pending.receipt())
        .await
        .unwrap()
        .unwrap();
    assert!(receipt.created);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(proxy.arrivals().len(), 7);
}

#[tokio::test]
async fn backs_off_through_503_and_429_honouring_retry_after_and_loses_nothing() {
    let server = TestServer::start();
    let account = server.account("client-backoff");
    let faults = [
        (503, None),
        (503, None),
        (503, None),
        (429, Some(1)),
        (503, Some(1)),
        (429, None),
    ];
    let proxy = FaultProxy::start(&server.base, &faults).await;
    let client = Client::builder(&proxy.base, &account.ingest)
        .retry(RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            give_up_after: Duration::from_secs(60),
        })
        .build()
        .unwrap();
    let batcher = Batcher::builder(client).start().unwrap();
    let mut pending = Vec::new();
    let events: Vec<Event> = (0..50).map(event).collect();
    for e in &events {
        pending.push(batcher.add(e.clone()).await.unwrap());
    }
    batcher.shutdown(Duration::from_secs(30)).await.unwrap();
    for p in pending {
        p.receipt().await.unwrap();
    }
    let arrivals = proxy.arrivals();
    let statuses: Vec<u16> = arrivals.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [503, 503, 503, 429, 503, 429, 201]);
    let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1].at - w[0].at).collect();
    // Without Retry-After: at least half of 100, 200, 400 ms (equal jitter),
    // and half of 3.2 s for the sixth failure in a row; with it: its second.
    let floors_ms = [50, 100, 200, 1_000, 1_000, 1_600];
    for (n, (gap, floor)) in gaps.iter().zip(floors_ms).enumerate() {
        assert!(
            *gap >= Duration::from_millis(floor),
            "wait {n} was {gap:?}, expected ≥ {floor} ms: {gaps:?}"
        );
    }
    assert!(gaps[2] > gaps[0], "the waits grow: {gaps:?}");
    let expected: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(stored_ids(&server.base, &account.read).await, expected);
}

#[tokio::test]
async fn gives_up_at_its_deadlines_and_a_full_buffer_fails_fast_or_waits() {
    // A port where nothing listens: every attempt is a connection error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::builder(&base, "k")
        .retry(RetryPolicy {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            give_up_after: Duration::from_millis(600),
        })
        .build()
        .unwrap();
    match client.send(event(1)).await {
        Err(SendError::GaveUp {
            attempts,
            elapsed,
            last,
        }) => {
            assert!(attempts >= 3, "{attempts}");
            assert!(elapsed >= Duration::from_millis(600) && elapsed < Duration::from_secs(5));
            assert!(last.contains("connect") || last.contains("error"), "{last}");
        }
        other => panic!("expected GaveUp, got {other:?}"),
    }

    let batcher = Batcher::builder(client.clone())
        .max_buffered_events(3)
        .when_full(WhenFull::FailFast)
        .start()
        .unwrap();
    let mut pending = Vec::new();
    for n in 0..3 {
        pending.push(batcher.add(event(n)).await.unwrap());
    }
    let refused = event(3);
    match batcher.add(refused.clone()).await {
        Err(AddError::Full { event, capacity }) => assert_eq!((*event, capacity), (refused, 3)),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(
        batcher.flush(Duration::from_millis(200)).await,
        Err(FlushError::Deadline {
            pending: 3,
            spooled: false
        })
    );
    let started = Instant::now();
    assert_eq!(
        batcher.shutdown(Duration::from_millis(300)).await,
        Err(FlushError::Deadline {
            pending: 3,
            spooled: false
        })
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    for p in pending {
        assert!(matches!(p.receipt().await, Err(SendError::GaveUp { .. })));
    }
    assert!(matches!(
        batcher.add(event(9)).await,
        Err(AddError::Closed(_))
    ));

    let waiting = Batcher::builder(client)
        .max_buffered_events(1)
        .when_full(WhenFull::Wait)
        .start()
        .unwrap();
    waiting.add(event(1)).await.unwrap();
    let blocked = tokio::time::timeout(Duration::from_millis(300), waiting.add(event(2))).await;
    assert!(blocked.is_err(), "add must wait while the buffer is full");
    // Shutting down wakes the waiting caller: the event is handed back.
    let (add, shut) = tokio::join!(waiting.add(event(3)), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waiting.shutdown(Duration::from_millis(100)).await
    });
    assert!(matches!(add, Err(AddError::Closed(_))), "{add:?}");
    assert!(shut.is_err());
}

/// `auditlog serve` on `data_dir` at `listen` (a fixed port to restart on).
fn serve(data_dir: &Path, listen: &str) -> (KillOnDrop, String) {
    let mut child = Command::new(BIN)
        .args(["--data-dir", &data_dir.display().to_string()])
        .args(["serve", "--listen", listen])
        .env_remove("AUDITLOG_DATABASE_URL")
        .env("AUDITLOG_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let base = wait_until_listening(&mut child);
    (KillOnDrop(child), base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batcher_stores_100k_events_exactly_once_across_a_server_sigkill() {
    const EVENTS: usize = 100_000;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    cli(dir, &["account", "create", "client-kill"], "");
    let ingest = cli(
        dir,
        &[
            "key",
            "create",
            "--account",
            "client-kill",
            "--scope",
            "ingest",
        ],
        "",
    );
    let read = cli(
        dir,
        &[
            "key",
            "create",
            "--account",
            "client-kill",
            "--scope",
            "read",
        ],
        "",
    );
    let (mut server, base) = serve(dir, "127.0.0.1:0");
    let listen = base.trim_start_matches("http://").to_string();
    let client = Client::builder(&base, ingest.trim())
        .retry(quick_retries())
        .build()
        .unwrap();
    let batcher = Arc::new(
        Batcher::builder(client)
            .max_batch_events(1_000)
            .flush_interval(Duration::from_millis(50))
            .max_buffered_events(20_000)
            .start()
            .unwrap(),
    );
    let adder = {
        let batcher = batcher.clone();
        tokio::spawn(async move {
            let mut ids = Vec::with_capacity(EVENTS);
            for n in 0..EVENTS {
                let e = Event::builder("Test Suite", "Update", "u-1")
                    .target(Target::new(format!("TS-{n}")))
                    .build()
                    .unwrap();
                ids.push(e.id.clone());
                // Dropping the Pending: the batcher delivers all the same.
                batcher.add(e).await.unwrap();
            }
            ids
        })
    };
    let started = Instant::now();
    while batcher.stats().delivered < 30_000 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{:?}",
            batcher.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SIGKILL mid-stream, then the same data directory on the same port.
    let _ = server.0.kill();
    let _ = server.0.wait();
    let delivered_at_kill = batcher.stats().delivered;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (restarted, _) = serve(dir, &listen);
    server = restarted;
    let ids = adder.await.unwrap();
    batcher.flush(Duration::from_secs(120)).await.unwrap();
    let stats = batcher.stats();
    assert_eq!(
        (stats.delivered, stats.rejected, stats.failed),
        (EVENTS as u64, 0, 0)
    );
    assert!(
        delivered_at_kill < EVENTS as u64,
        "the kill came too late to test anything"
    );
    let stored = stored_ids(&base, read.trim()).await;
    assert_eq!(stored.len(), EVENTS);
    assert_eq!(stored, ids.into_iter().collect::<HashSet<String>>());
    eprintln!(
        "100k through the batcher with a SIGKILL at {delivered_at_kill}: {:?}, {} batches",
        started.elapsed(),
        stats.batches
    );
    drop(server);
}

/// The child of `spool_survives_a_client_process_kill`, run as this test
/// binary with the `AUDITLOG_SPOOL_CHILD` variable set: adds events through
/// a spooled batcher to a server that is down, prints their ids and waits
/// to be killed.
#[tokio::test]
#[ignore = "the child process of spool_survives_a_client_process_kill, which runs it"]
async fn spool_child() {
    let spec = std::env::var("AUDITLOG_SPOOL_CHILD")
        .expect("run by spool_survives_a_client_process_kill with AUDITLOG_SPOOL_CHILD set");
    let (dir, base) = spec.split_once('|').unwrap();
    let client = Client::new(base, "alk_unused").unwrap();
    let batcher = Batcher::builder(client)
        .spool(dir)
        .max_batch_events(100)
        .start()
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..250 {
        let e = event(n);
        ids.push(e.id.clone());
        // Half with the fsync guarantee, half written only.
        if n % 2 == 0 {
            batcher.add_synced(e).await.unwrap();
        } else {
            batcher.add(e).await.unwrap();
        }
    }
    println!("spool-child added {}", ids.join(","));
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test]
async fn spool_survives_a_client_process_kill() {
    let spool = tempfile::tempdir().unwrap();
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "client::spool_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            "AUDITLOG_SPOOL_CHILD",
            format!("{}|http://{down}", spool.path().display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let ids: Vec<String> = std::io::BufRead::lines(stdout)
        .map(Result::unwrap)
        // The harness prints "test client::spool_child ... " before it.
        .find_map(|line| {
            line.split_once("spool-child added ")
                .map(|(_, ids)| ids.to_string())
        })
        .expect("the child printed its ids")
        .split(',')
        .map(str::to_string)
        .collect();
    let mut child = KillOnDrop(child);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_eq!(ids.len(), 250);

    let server = TestServer::start();
    let account = server.account("client-spool");
    let client = Client::new(&server.base, &account.ingest).unwrap();
    let batcher = Batcher::builder(client)
        .spool(spool.path())
        .start()
        .unwrap();
    let recovered = batcher.recovered();
    assert_eq!((recovered.events, recovered.unreadable_lines), (250, 0));
    assert_eq!(recovered.batches, 3);
    batcher.shutdown(Duration::from_secs(30)).await.unwrap();
    assert_eq!(batcher.stats().delivered, 250);
    let expected: HashSet<String> = ids.into_iter().collect();
    assert_eq!(stored_ids(&server.base, &account.read).await, expected);
    let left: Vec<_> = std::fs::read_dir(spool.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    assert!(left.is_empty(), "delivered batches leave no file: {left:?}");
    // While this batcher holds the spool, no other may take it.
    let second = Batcher::builder(Client::new(&server.base, &account.ingest).unwrap())
        .spool(spool.path())
        .start();
    assert!(matches!(second, Err(StartError::Spool { .. })));
}

#[tokio::test]
async fn the_example_service_audits_its_changes_with_old_and_new_values() {
    let server = TestServer::start();
    let account = server.account("client-example");
    let spool = tempfile::tempdir().unwrap();
    let client = Client::new(&server.base, &account.ingest).unwrap();
    let batcher = Arc::new(
        Batcher::builder(client)
            .spool(spool.path())
            .flush_interval(Duration::from_millis(50))
            .start()
            .unwrap(),
    );
    let app = testcase_service::router(testcase_service::Service::new(batcher.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/test-cases"))
        .header("x-user", "ada")
        .json(&serde_json::json!({"title": "Login", "steps": ["open", "sign in"], "priority": 2}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_u64().unwrap();
    let patched = http
        .patch(format!("{base}/test-cases/{id}"))
        .header("x-user", "grace")
        .json(&serde_json::json!({"title": "Login with SSO", "priority": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let deleted = http
        .delete(format!("{base}/test-cases/{id}"))
        .header("x-user", "ada")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let missing = http
        .delete(format!("{base}/test-cases/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404, "no change, no audit event");

    batcher.flush(Duration::from_secs(30)).await.unwrap();
    let (status, page) = server
        .get(&format!("/api/v1/events?target_id=TC-{id}"), &account.read)
        .await;
    assert_eq!(status, 200);
    let mut events = page["events"].as_array().unwrap().clone();
    events.sort_by_key(|e| e["seq"].as_u64());
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"]["id"].as_str().unwrap(),
                e["project"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Create", "ada", "Test Case Service"),
            ("Update", "grace", "Test Case Service"),
            ("Delete", "ada", "Test Case Service"),
        ]
    );
    let changes = |n: usize| events[n]["details"]["changes"].clone();
    assert_eq!(
        changes(1),
        serde_json::json!([
            {"field": "priority", "old": 2, "new": 1},
            {"field": "title", "old": "Login", "new": "Login with SSO"},
        ])
    );
    assert!(changes(0)
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"field": "steps", "old": null, "new": ["open", "sign in"]})));
    assert!(changes(2)
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"field": "title", "old": "Login with SSO", "new": null})));
    assert_eq!(events[1]["target"]["name"], "Login with SSO");
}
