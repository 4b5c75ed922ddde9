//! Log streams (`/api/v1/streams`, webhook kind) against the real binary
//! and a real webhook receiver on 127.0.0.1 that checks every delivery's
//! signature with the reference Standard Webhooks library (`standardwebhooks`,
//! not this project's signing code): every matching event delivered once,
//! in seq order, exactly what the API answers for the same filter; 500s
//! and 429 with `Retry-After` retried with backoff and nothing lost, the
//! retried batch with the same `webhook-id`; 410 disables; pause, resume
//! and replay from a seq; the address check; secrets never shown again;
//! and `kill -9` mid-delivery resuming from the cursor with the same id
//! (before and after batches were accepted).

use crate::helpers::TestServer;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One delivery the receiver saw.
#[derive(Debug, Clone)]
struct Arrival {
    id: String,
    seqs: Vec<u64>,
    answered: u16,
    at: Instant,
}

#[derive(Default)]
struct ReceiverState {
    secret: Option<String>,
    /// The answers to give, in order; then 200.
    script: Vec<(u16, Option<u64>)>,
    /// Hold each answer this long (to catch a server mid-delivery).
    delay: Duration,
    arrivals: Vec<Arrival>,
    bad_signatures: usize,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_with(listener).await
    }

    async fn start_with(listener: tokio::net::TcpListener) -> Self {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let shared = state.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = shared.clone();
                async move {
                    let (status, retry_after, delay) = {
                        let mut s = state.lock().unwrap();
                        let verified = s.secret.as_deref().is_some_and(|secret| {
                            standardwebhooks::Webhook::new(secret)
                                .and_then(|w| w.verify(&body, &headers))
                                .is_ok()
                        });
                        if !verified {
                            s.bad_signatures += 1;
                        }
                        let (status, retry_after) = if s.script.is_empty() {
                            (200, None)
                        } else {
                            s.script.remove(0)
                        };
                        let events: Vec<Value> = serde_json::from_slice(&body).unwrap();
                        s.arrivals.push(Arrival {
                            id: headers["webhook-id"].to_str().unwrap().to_string(),
                            seqs: events.iter().map(|e| e["seq"].as_u64().unwrap()).collect(),
                            answered: status,
                            at: Instant::now(),
                        });
                        (status, retry_after, s.delay)
                    };
                    tokio::time::sleep(delay).await;
                    let mut response = axum::response::Response::new(axum::body::Body::from("ok"));
                    *response.status_mut() = StatusCode::from_u16(status).unwrap();
                    if let Some(seconds) = retry_after {
                        response
                            .headers_mut()
                            .insert("retry-after", seconds.to_string().parse().unwrap());
                    }
                    response
                }
            }),
        );
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state }
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.state.lock().unwrap().arrivals.clone()
    }

    /// The seqs of accepted deliveries, in arrival order.
    fn delivered(&self) -> Vec<u64> {
        self.arrivals()
            .iter()
            .filter(|a| a.answered == 200)
            .flat_map(|a| a.seqs.clone())
            .collect()
    }

    async fn wait_for(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.delivered().len() < count {
            assert!(
                Instant::now() < deadline,
                "only {} of {count} events delivered: {:?}",
                self.delivered().len(),
                self.arrivals()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

const TYPES: [&str; 3] = ["Test Case", "Element", "Test Suite"];

fn event(i: usize) -> Value {
    json!({
        "id": format!("st-{i}"),
        "event_type": TYPES[i % 3],
        "action": "Update",
        "actor": {"id": format!("u-{}", i % 5), "email": "ada@example.com"},
        "target": {"id": format!("T-{i}")},
    })
}

fn admin_key(server: &TestServer, account: &str) -> String {
    server
        .cli(
            &["key", "create", "--account", account, "--scope", "admin"],
            "",
        )
        .trim()
        .to_string()
}

async fn send(server: &TestServer, key: &str, range: std::ops::Range<usize>) {
    let events: Vec<Value> = range.map(event).collect();
    let (status, body) = server
        .post("/api/v1/events", key, &json!({"events": events}))
        .await;
    assert_eq!(status, 201, "{body}");
}

/// The seqs the API answers for `query`, oldest first.
async fn api_seqs(server: &TestServer, key: &str, query: &str) -> Vec<u64> {
    let (_, page) = server
        .get(&format!("/api/v1/events?limit=1000&{query}"), key)
        .await;
    let mut seqs: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    seqs.sort_unstable();
    seqs
}

async fn patch(server: &TestServer, key: &str, id: u64, body: Value) -> (u16, Value) {
    let response = server
        .http
        .patch(server.url(&format!("/api/v1/streams/{id}")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_stream_delivers_exactly_its_events_signed_through_failures() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(
        dir.path(),
        &[
            "--stream-allow-private",
            "127.0.0.1/32",
            "--stream-lease",
            "2s",
        ],
    );
    let account = server.account("streams");
    let admin = admin_key(&server, "streams");
    let receiver = Receiver::start().await;
    // 500 twice, then 429 asking for 1 s, then 200 for ever.
    receiver.state.lock().unwrap().script = vec![(500, None), (500, None), (429, Some(1))];
    send(&server, &account.ingest, 0..5).await;

    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": receiver.url, "filters": {"event_type": ["Test Case", "Element"]}, "from_seq": 1}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    receiver.state.lock().unwrap().secret = Some(secret.clone());
    let id = created["stream"]["id"].as_u64().unwrap();
    assert_eq!(created["stream"]["cursor"], 0);
    assert_eq!(created["stream"]["status"], "active");

    send(&server, &account.ingest, 5..120).await;
    let want = api_seqs(
        &server,
        &account.read,
        "event_type=Test%20Case&event_type=Element",
    )
    .await;
    assert_eq!(want.len(), 80);
    receiver.wait_for(want.len()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.delivered(),
        want,
        "exactly the events the API answers for the filter, in seq order, once"
    );
    let arrivals = receiver.arrivals();
    assert_eq!(
        receiver.state.lock().unwrap().bad_signatures,
        0,
        "every signature verifies"
    );
    // The first batch was retried three times with the same id and content,
    // the 429's Retry-After honoured.
    let first = &arrivals[0];
    assert_eq!(
        arrivals[..4].iter().map(|a| a.answered).collect::<Vec<_>>(),
        [500, 500, 429, 200]
    );
    assert!(arrivals[..4]
        .iter()
        .all(|a| a.id == first.id && a.seqs == first.seqs));
    assert!(
        arrivals[3].at - arrivals[2].at >= Duration::from_millis(950),
        "Retry-After: 1 was honoured"
    );
    assert!(
        arrivals[1].at - arrivals[0].at >= Duration::from_millis(200),
        "a backoff between failures"
    );

    // The stream's record: cursor at the end, history, no secret anywhere.
    let (status, got) = server.get(&format!("/api/v1/streams/{id}"), &admin).await;
    assert_eq!(status, 200);
    // 120 events and the stream's own Create event (seq 6).
    assert_eq!(got["stream"]["cursor"], 121);
    assert_eq!(got["stream"]["lag"], 0);
    assert_eq!(got["stream"]["status"], "active");
    let batches = got["batches"].as_array().unwrap();
    assert!(batches
        .iter()
        .any(|b| b["status"] == "failed" && b["response"].as_str().unwrap().starts_with("429")));
    let (_, list) = server.get("/api/v1/streams", &admin).await;
    for text in [got.to_string(), list.to_string()] {
        assert!(
            !text.contains(&secret[6..]),
            "the secret is never shown again"
        );
    }
    assert!(!std::fs::read(dir.path().join("auditlog.db"))
        .unwrap_or_default()
        .windows(secret.len())
        .any(|w| w == secret.as_bytes()));

    // Pause: nothing is delivered; resume: the rest arrives.
    let (status, _) = patch(&server, &admin, id, json!({"status": "paused"})).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = receiver.delivered().len();
    send(&server, &account.ingest, 120..126).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.delivered().len(), before, "paused");
    let (status, _) = patch(&server, &admin, id, json!({"status": "active"})).await;
    assert_eq!(status, 200);
    receiver.wait_for(before + 4).await;

    // Replay from a seq: exactly the matching events from there, again.
    let mark = receiver.delivered().len();
    let (status, replayed) = patch(&server, &admin, id, json!({"from_seq": 100})).await;
    assert_eq!(status, 200, "{replayed}");
    let want_again: Vec<u64> = api_seqs(
        &server,
        &account.read,
        "event_type=Test%20Case&event_type=Element",
    )
    .await
    .into_iter()
    .filter(|s| *s >= 100)
    .collect();
    receiver.wait_for(mark + want_again.len()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.delivered()[mark..], want_again[..]);

    // Replay from a time: from the lowest seq received at or after it.
    let (_, all) = server.get("/api/v1/events?limit=1000", &account.read).await;
    let all = all["events"].as_array().unwrap().clone();
    let since = all.iter().find(|e| e["seq"] == 110).unwrap()["received_at"]
        .as_str()
        .unwrap()
        .to_string();
    let first = all
        .iter()
        .filter(|e| e["received_at"].as_str().unwrap() >= since.as_str())
        .map(|e| e["seq"].as_u64().unwrap())
        .min()
        .unwrap();
    let mark = receiver.delivered().len();
    let (status, replayed) = patch(&server, &admin, id, json!({"from_received_at": since})).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["stream"]["cursor"], first - 1);
    let want_again: Vec<u64> = api_seqs(
        &server,
        &account.read,
        "event_type=Test%20Case&event_type=Element",
    )
    .await
    .into_iter()
    .filter(|s| *s >= first)
    .collect();
    receiver.wait_for(mark + want_again.len()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.delivered()[mark..], want_again[..]);
    let (status, _) = patch(
        &server,
        &admin,
        id,
        json!({"from_received_at": "yesterday"}),
    )
    .await;
    assert_eq!(status, 422);

    // 410: the stream is disabled and delivers nothing more.
    receiver.state.lock().unwrap().script = vec![(410, None)];
    send(&server, &account.ingest, 126..129).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, got) = server.get(&format!("/api/v1/streams/{id}"), &admin).await;
        if got["stream"]["status"] == "disabled" {
            assert!(got["stream"]["last_error"]
                .as_str()
                .unwrap()
                .contains("410"));
            break;
        }
        assert!(Instant::now() < deadline, "not disabled: {got}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The metrics count deliveries and failures by kind, format and reason only.
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .unwrap_or_else(|| panic!("no {series} in {text}"))
            .trim()
            .parse()
            .unwrap()
    };
    let delivered =
        value(r#"auditlog_stream_events_delivered_total{kind="webhook",format="native"}"#);
    assert!(delivered >= 80.0, "{delivered}");
    assert!(value(r#"auditlog_stream_failures_total{kind="webhook",reason="status"}"#) >= 2.0);
    assert!(
        value(r#"auditlog_stream_failures_total{kind="webhook",reason="rate_limited"}"#) >= 1.0
    );
    assert!(value(r#"auditlog_stream_failures_total{kind="webhook",reason="gone"}"#) >= 1.0);
    assert!(
        !text.contains(&format!("stream=\"{id}\"")),
        "no stream id in a label"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_admin_only_checked_and_refuse_private_addresses() {
    let server = TestServer::start();
    let account = server.account("stream-rules");
    let admin = admin_key(&server, "stream-rules");
    let hook = json!({"kind": "webhook", "url": "http://127.0.0.1:9/hook"});
    let (status, _) = server.post("/api/v1/streams", &account.read, &hook).await;
    assert_eq!(status, 403, "a read key may not configure streams");
    let (status, _) = server.get("/api/v1/streams", &account.read).await;
    assert_eq!(status, 403);
    let (status, body) = server.post("/api/v1/streams", &admin, &hook).await;
    assert_eq!(status, 422, "loopback without the allow-list: {body}");
    assert_eq!(body["error"]["details"]["field"], "url");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stream_allow_private"));
    for (body, field) in [
        (json!({"kind": "kafka", "url": "http://8.8.8.8/"}), "kind"),
        (json!({"kind": "webhook"}), "url"),
        (json!({"kind": "webhook", "url": "ftp://8.8.8.8/"}), "url"),
        (
            json!({"kind": "webhook", "url": "http://169.254.169.254/"}),
            "url",
        ),
        (
            json!({"kind": "webhook", "url": "http://8.8.8.8/", "secret": "abc"}),
            "secret",
        ),
        (
            json!({"kind": "webhook", "url": "http://8.8.8.8/", "format": "cef"}),
            "format",
        ),
        (
            json!({"kind": "webhook", "url": "http://8.8.8.8/", "colour": 1}),
            "colour",
        ),
        (
            json!({"kind": "webhook", "url": "http://8.8.8.8/", "from_seq": 0}),
            "from_seq",
        ),
    ] {
        let (status, answer) = server.post("/api/v1/streams", &admin, &body).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
    }
    let (status, answer) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": "http://8.8.8.8/", "filters": {"event_type": ["Nope"]}}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, _) = server.get("/api/v1/streams/999", &admin).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_delivery_resends_the_same_batch_with_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--stream-allow-private",
        "127.0.0.1/32",
        "--stream-lease",
        "1s",
    ];
    let mut server = TestServer::start_on(dir.path(), &args);
    let account = server.account("stream-kill");
    let admin = admin_key(&server, "stream-kill");
    let receiver = Receiver::start().await;
    send(&server, &account.ingest, 0..30).await;
    // Every answer takes 3 s, so the server is killed while it waits.
    receiver.state.lock().unwrap().delay = Duration::from_secs(3);
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": receiver.url, "from_seq": 1, "filters": {"event_type": TYPES}}),
        )
        .await;
    assert_eq!(status, 201);
    receiver.state.lock().unwrap().secret = Some(created["secret"].as_str().unwrap().into());
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.arrivals().is_empty() {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    let first = receiver.arrivals()[0].clone();
    receiver.state.lock().unwrap().delay = Duration::ZERO;
    let server = TestServer::start_on(dir.path(), &args);
    receiver.wait_for(30 + first.seqs.len()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let arrivals = receiver.arrivals();
    assert_eq!(
        arrivals[1].id, first.id,
        "the retried batch carries the same webhook-id"
    );
    assert_eq!(arrivals[1].seqs, first.seqs);
    // Each event at least once, in order; the duplicates are that one batch.
    let delivered = receiver.delivered();
    assert_eq!(
        &delivered[first.seqs.len()..],
        (1..=30).collect::<Vec<u64>>().as_slice()
    );
    assert_eq!(&delivered[..first.seqs.len()], first.seqs.as_slice());
    assert_eq!(receiver.state.lock().unwrap().bad_signatures, 0);
    drop(server);
}

/// `kill -9` after batches were accepted (on the embedded store the cursor
/// then lives in `stream-progress.db`, beside `auditlog.db`): the restarted
/// server resumes from that cursor — nothing accepted is sent again — and
/// the batch in flight is sent again with the same `webhook-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_after_accepted_batches_resumes_from_the_cursor_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--stream-allow-private",
        "127.0.0.1/32",
        "--stream-lease",
        "1s",
    ];
    let mut server = TestServer::start_on(dir.path(), &args);
    let account = server.account("stream-kill-later");
    let admin = admin_key(&server, "stream-kill-later");
    let receiver = Receiver::start().await;
    send(&server, &account.ingest, 0..30).await;
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": receiver.url, "from_seq": 1, "filters": {"event_type": TYPES}}),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["stream"]["id"].as_u64().unwrap();
    receiver.state.lock().unwrap().secret = Some(created["secret"].as_str().unwrap().into());
    receiver.wait_for(30).await;
    // Seqs 1-30 and the stream's own Create event (31) examined.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, got) = server.get(&format!("/api/v1/streams/{id}"), &admin).await;
        if got["stream"]["cursor"] == 31 {
            break;
        }
        assert!(Instant::now() < deadline, "the cursor stays behind: {got}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let accepted = receiver.arrivals().len();
    receiver.state.lock().unwrap().delay = Duration::from_secs(3);
    send(&server, &account.ingest, 30..60).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.arrivals().len() == accepted {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    let in_flight = receiver.arrivals()[accepted].clone();
    receiver.state.lock().unwrap().delay = Duration::ZERO;
    let server = TestServer::start_on(dir.path(), &args);
    receiver.wait_for(60 + in_flight.seqs.len()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let arrivals = receiver.arrivals();
    assert_eq!(
        arrivals[accepted + 1].id,
        in_flight.id,
        "the retried batch carries the same webhook-id"
    );
    assert_eq!(arrivals[accepted + 1].seqs, in_flight.seqs);
    let delivered = receiver.delivered();
    let mut later: Vec<u64> = (32..=61).collect();
    later.splice(0..0, in_flight.seqs.iter().copied());
    assert_eq!(
        &delivered[..30],
        (1..=30).collect::<Vec<u64>>().as_slice(),
        "nothing accepted before the kill is sent again"
    );
    assert_eq!(&delivered[30..], later.as_slice());
    assert_eq!(receiver.state.lock().unwrap().bad_signatures, 0);
    drop(server);
}

/// The pruner keeps what a stream has not examined, reading the cursor its
/// deliveries moved (on the embedded store, kept in `stream-progress.db`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_stops_at_the_cursor_that_deliveries_moved() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(
        dir.path(),
        &[
            "--stream-allow-private",
            "127.0.0.1/32",
            "--retention-min-days",
            "0",
            "--prune-interval",
            "1s",
        ],
    );
    let account = server.account("stream-prune");
    let admin = admin_key(&server, "stream-prune");
    let receiver = Receiver::start().await;
    send(&server, &account.ingest, 0..30).await;
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": receiver.url, "from_seq": 1, "filters": {"event_type": TYPES}}),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["stream"]["id"].as_u64().unwrap();
    receiver.state.lock().unwrap().secret = Some(created["secret"].as_str().unwrap().into());
    receiver.wait_for(30).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, got) = server.get(&format!("/api/v1/streams/{id}"), &admin).await;
        if got["stream"]["cursor"] == 31 {
            break;
        }
        assert!(Instant::now() < deadline, "the cursor stays behind: {got}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // From now on the receiver refuses everything: the cursor stays at 31.
    receiver.state.lock().unwrap().script = vec![(500, None); 1_000];
    send(&server, &account.ingest, 30..40).await;
    let response = server
        .http
        .put(server.url("/api/v1/retention"))
        .bearer_auth(&admin)
        .json(&json!({"retention_days": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    let pruning = loop {
        let (_, retention) = server.get("/api/v1/retention", &admin).await;
        let pruning = retention["retention"]["prunings"][0].clone();
        if pruning["status"] == "done" {
            break pruning;
        }
        assert!(
            Instant::now() < deadline,
            "no pruning finished: {retention}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        pruning["last_seq"], 31,
        "the stream examined seqs up to 31: {pruning}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_one_server_delivers_a_stream_and_another_takes_it_over() {
    use auditlog_store_postgres::test_support::TestDatabase;
    let Some(database) = TestDatabase::create("streams_take_over") else {
        return;
    };
    let scratch = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let shared = tempfile::tempdir().unwrap();
    let key_file = shared
        .path()
        .join("stream-secret-key")
        .display()
        .to_string();
    let signing = shared.path().join("signing-key").display().to_string();
    let args = [
        "--stream-allow-private",
        "127.0.0.1/32",
        "--stream-lease",
        "2s",
        "--stream-secret-key-file",
        key_file.as_str(),
        "--signing-key-file",
        signing.as_str(),
    ];
    // The first server alone takes the stream.
    let mut first = TestServer::start_on_database(&database.url, scratch[0].path(), &args);
    let account = first.account("takeover");
    let admin = admin_key(&first, "takeover");
    let receiver = Receiver::start().await;
    let (status, created) = first
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": receiver.url, "filters": {"event_type": TYPES}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    receiver.state.lock().unwrap().secret = Some(created["secret"].as_str().unwrap().into());
    send(&first, &account.ingest, 0..20).await;
    receiver.wait_for(20).await;
    // A second server joins: the stream stays with the first (its lease is renewed).
    let second = TestServer::start_on_database(&database.url, scratch[1].path(), &args);
    send(&second, &account.ingest, 20..40).await;
    receiver.wait_for(40).await;
    // The first dies; the second takes the stream over within the lease.
    first.kill();
    let killed = Instant::now();
    send(&second, &account.ingest, 40..60).await;
    receiver.wait_for(60).await;
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "taken over in {:?}",
        killed.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // At least once, in order: a batch the first server had sent but not
    // yet recorded as accepted when it died is sent again, with the same
    // id, so a receiver de-duplicating on webhook-id sees each event once.
    let mut seen_ids = std::collections::HashSet::new();
    let mut once = Vec::new();
    let mut repeated = 0;
    for arrival in receiver.arrivals().iter().filter(|a| a.answered == 200) {
        if seen_ids.insert(arrival.id.clone()) {
            once.extend(arrival.seqs.iter().copied());
        } else {
            repeated += 1;
        }
    }
    // Seq 1 is the stream's own `Auditlog Log Stream` Create event, which its filters leave out.
    assert_eq!(
        once,
        (2..=61).collect::<Vec<u64>>(),
        "one server at a time, in order"
    );
    assert!(repeated <= 1, "duplicates bounded by one batch: {repeated}");
    assert_eq!(receiver.state.lock().unwrap().bad_signatures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_every_event_in_order_once_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(dir.path(), &["--stream-allow-private", "127.0.0.1/32"]);
    let account = server.account("stream-down");
    let admin = admin_key(&server, "stream-down");
    // A port with nothing listening on it yet: connections are refused.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{address}/hook");
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": url, "filters": {"event_type": TYPES}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["stream"]["id"].as_u64().unwrap();
    for round in 0..3 {
        send(&server, &account.ingest, round * 20..(round + 1) * 20).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let (_, got) = server.get(&format!("/api/v1/streams/{id}"), &admin).await;
    // Nothing accepted while down. The cursor may have passed seq 1, the
    // stream's own Create event, which its filters leave out: the worker
    // can examine it alone before the first events are stored.
    assert!(
        got["stream"]["cursor"].as_u64().unwrap() <= 1,
        "nothing accepted while down: {got}"
    );
    assert!(got["stream"]["attempts"].as_u64().unwrap() >= 2, "{got}");
    assert!(got["stream"]["last_error"]
        .as_str()
        .unwrap()
        .contains("no answer"));
    // The receiver comes up on that port: everything arrives, in order.
    let receiver =
        Receiver::start_with(tokio::net::TcpListener::bind(address).await.unwrap()).await;
    receiver.state.lock().unwrap().secret = Some(created["secret"].as_str().unwrap().into());
    send(&server, &account.ingest, 60..70).await;
    receiver.wait_for(70).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Seq 1 is the stream's own Create event, which its filters leave out.
    assert_eq!(receiver.delivered(), (2..=71).collect::<Vec<u64>>());
    assert_eq!(receiver.state.lock().unwrap().bad_signatures, 0);
}

/// The `Auditlog Log Stream` events of one account, oldest first.
async fn stream_audit_events(server: &TestServer, key: &str) -> Vec<Value> {
    let (status, page) = server
        .get(
            "/api/v1/events?limit=1000&event_type=Auditlog%20Log%20Stream",
            key,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let mut events = page["events"].as_array().unwrap().clone();
    events.reverse();
    events
}

fn changes(event: &Value) -> Vec<(String, Value, Value)> {
    event["details"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_string(),
                c["old"].clone(),
                c["new"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_change_is_audited_with_old_and_new_values_and_no_secret() {
    audit_case(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_every_stream_change_is_audited() {
    use auditlog_store_postgres::test_support::TestDatabase;
    let Some(database) = TestDatabase::create("streams_audit") else {
        return;
    };
    audit_case(Some(&database.url)).await;
}

async fn audit_case(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--stream-allow-private", "127.0.0.1/32"];
    let server = match database {
        None => TestServer::start_on(dir.path(), &args),
        Some(url) => TestServer::start_on_database(url, dir.path(), &args),
    };
    let account = server.account("stream-audit");
    let admin = admin_key(&server, "stream-audit");
    let receiver = Receiver::start().await;
    let other = Receiver::start().await;
    send(&server, &account.ingest, 0..10).await;
    let given_secret = format!("whsec_{}", "QUJD".repeat(8));
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": receiver.url, "secret": given_secret,
                    "filters": {"event_type": ["Test Case"]}, "from_seq": 3}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["stream"]["id"].as_u64().unwrap();
    let new_secret = format!("whsec_{}", "WFla".repeat(8));
    for body in [
        json!({"url": other.url}),
        json!({"secret": new_secret}),
        json!({"status": "paused"}),
        json!({"status": "active"}),
        json!({"from_seq": 2}),
        json!({"from_received_at": "2020-01-01T00:00:00Z"}),
        json!({"filters": {"event_type": ["Element"]}, "from_seq": 5}),
        // Nothing changes: nothing is recorded.
        json!({"url": other.url}),
    ] {
        let (status, answer) = patch(&server, &admin, id, body.clone()).await;
        assert_eq!(status, 200, "{body}: {answer}");
    }
    let response = server
        .http
        .delete(server.url(&format!("/api/v1/streams/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let events = stream_audit_events(&server, &account.read).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "Create", "Update", "Update", "Update", "Update", "Replay", "Replay", "Update",
            "Replay", "Delete"
        ]
    );
    let key_id = |e: &Value| e["actor"]["id"].as_str().unwrap().to_string();
    for event in &events {
        assert!(key_id(event).starts_with("api-key:"), "{event}");
        assert_eq!(event["source"]["kind"], "api_key");
        assert_eq!(event["target"]["id"], format!("stream-{id}"));
        assert_eq!(event["details"]["stream_id"], id);
        assert_eq!(event["details"]["kind"], "webhook");
    }
    let url = json!(receiver.url);
    let other_url = json!(other.url);
    let hidden = json!("[not recorded]");
    assert_eq!(
        changes(&events[0]),
        [
            ("kind".into(), Value::Null, json!("webhook")),
            ("format".into(), Value::Null, json!("native")),
            ("url".into(), Value::Null, url.clone()),
            (
                "filters".into(),
                Value::Null,
                json!({"event_type": ["Test Case"]})
            ),
            ("status".into(), Value::Null, json!("active")),
            ("cursor".into(), Value::Null, json!(2)),
            ("secret".into(), Value::Null, hidden.clone()),
        ]
    );
    assert_eq!(
        changes(&events[1]),
        [("url".into(), url.clone(), other_url.clone())]
    );
    assert_eq!(
        changes(&events[2]),
        [("secret".into(), hidden.clone(), hidden.clone())]
    );
    assert_eq!(
        changes(&events[3]),
        [("status".into(), json!("active"), json!("paused"))]
    );
    assert_eq!(
        changes(&events[4]),
        [("status".into(), json!("paused"), json!("active"))]
    );
    let replay = &events[5];
    assert_eq!(replay["details"]["from_seq"], 2);
    let (field, _, new) = &changes(replay)[0];
    assert_eq!((field.as_str(), new), ("cursor", &json!(1)));
    let replay = &events[6];
    assert_eq!(
        replay["details"]["from_received_at"],
        "2020-01-01T00:00:00.000000Z"
    );
    assert_eq!(changes(replay)[0].2, json!(0), "from the first seq");
    // One PATCH with filters and a replay: an Update, then a Replay.
    assert_eq!(
        changes(&events[7]),
        [(
            "filters".into(),
            json!({"event_type": ["Test Case"]}),
            json!({"event_type": ["Element"]})
        )]
    );
    assert_eq!(changes(&events[8])[0].2, json!(4));
    assert_eq!(events[8]["details"]["from_seq"], 5);
    let deleted = changes(&events[9]);
    assert!(deleted.contains(&("url".into(), other_url, Value::Null)));
    assert!(deleted.contains(&("status".into(), json!("active"), Value::Null)));
    assert!(!deleted.iter().any(|(f, ..)| f == "secret"));

    // No secret anywhere: not in the events, not in the database file.
    let text = serde_json::to_string(&events).unwrap();
    for secret in [&given_secret, &new_secret] {
        assert!(!text.contains(&secret[6..]), "a secret in an audit event");
        assert!(!std::fs::read(dir.path().join("auditlog.db"))
            .unwrap_or_default()
            .windows(secret.len() - 6)
            .any(|w| w == &secret.as_bytes()[6..]));
    }
    // Clients cannot send Auditlog's own type.
    let (status, refused) = server
        .post(
            "/api/v1/events",
            &account.ingest,
            &json!({"event_type": "Auditlog Log Stream", "action": "Create", "actor": {"id": "x"}}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused.to_string().contains("Auditlog Log Stream"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_event_delivers_one_signed_made_up_event_and_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(dir.path(), &["--stream-allow-private", "127.0.0.1/32"]);
    let account = server.account("stream-test");
    let admin = admin_key(&server, "stream-test");
    let receiver = Receiver::start().await;
    send(&server, &account.ingest, 0..3).await;
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": receiver.url, "filters": {"event_type": TYPES}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    receiver.state.lock().unwrap().secret = Some(created["secret"].as_str().unwrap().into());
    let id = created["stream"]["id"].as_u64().unwrap();
    // Paused: a test event is sent all the same.
    let (status, _) = patch(&server, &admin, id, json!({"status": "paused"})).await;
    assert_eq!(status, 200);
    // Before the pause the worker may already have examined the stream's
    // own `Auditlog Log Stream` / Create event (filtered out, so the cursor
    // moves with no request): the cursor to compare with is the one the
    // paused stream settles at.
    let mut paused_cursor = Value::Null;
    for _ in 0..50 {
        let (_, got) = server.get(&format!("/api/v1/streams/{id}"), &admin).await;
        if got["stream"]["cursor"] == paused_cursor {
            break;
        }
        paused_cursor = got["stream"]["cursor"].clone();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (status, tested) = server
        .post(&format!("/api/v1/streams/{id}/test"), &admin, &json!({}))
        .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["delivered"], true, "{tested}");
    assert!(tested["response"].as_str().unwrap().starts_with("200"));
    let arrivals = receiver.arrivals();
    assert_eq!(arrivals.len(), 1);
    assert_eq!(arrivals[0].seqs, [0], "the made-up event has seq 0");
    assert_eq!(arrivals[0].id, tested["webhook_id"].as_str().unwrap());
    assert_eq!(receiver.state.lock().unwrap().bad_signatures, 0);
    assert_eq!(tested["event"]["test"], true);
    assert_eq!(tested["event"]["account"], "stream-test");

    // A second test has a new id; a failing destination is reported.
    receiver.state.lock().unwrap().script = vec![(500, None)];
    let (_, failed) = server
        .post(&format!("/api/v1/streams/{id}/test"), &admin, &json!({}))
        .await;
    assert_eq!(failed["delivered"], false, "{failed}");
    assert!(failed["response"].as_str().unwrap().starts_with("500"));
    assert_ne!(failed["webhook_id"], tested["webhook_id"]);

    // Nothing stored, no cursor moved, no batch in the history.
    let (_, got) = server.get(&format!("/api/v1/streams/{id}"), &admin).await;
    assert_eq!(got["stream"]["cursor"], paused_cursor);
    assert_eq!(got["batches"], json!([]));
    let (_, page) = server.get("/api/v1/events?limit=100", &account.read).await;
    assert!(!page.to_string().contains("\"test\":true"));

    // Admin scope only; another account's stream is not found.
    let (status, _) = server
        .post(
            &format!("/api/v1/streams/{id}/test"),
            &account.read,
            &json!({}),
        )
        .await;
    assert_eq!(status, 403);
    server.account("stream-test-other");
    let other_admin = admin_key(&server, "stream-test-other");
    let (status, _) = server
        .post(
            &format!("/api/v1/streams/{id}/test"),
            &other_admin,
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
}

/// A tiny seeded generator (xorshift), so the chaos is the same each run.
struct Chaos(u64);

impl Chaos {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_at_random_gets_everything_in_order_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(dir.path(), &["--stream-allow-private", "127.0.0.1/32"]);
    let account = server.account("stream-chaos");
    let admin = admin_key(&server, "stream-chaos");
    let receiver = Receiver::start().await;
    // 40 answers drawn at random: about 30 % 500, 10 % 429 with
    // Retry-After: 1, the rest 200; then 200 for ever.
    let mut chaos = Chaos(0x5eed_1234_abcd_0001);
    let script: Vec<(u16, Option<u64>)> = (0..40)
        .map(|_| match chaos.next() % 10 {
            0..=2 => (500, None),
            3 => (429, Some(1)),
            _ => (200, None),
        })
        .collect();
    let failing =
        |answers: &[(u16, Option<u64>)]| answers.iter().filter(|(s, _)| *s != 200).count();
    assert!(
        failing(&script) >= 8,
        "the script fails often enough: {script:?}"
    );
    receiver.state.lock().unwrap().script = script.clone();
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": receiver.url, "filters": {"event_type": TYPES}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    receiver.state.lock().unwrap().secret = Some(created["secret"].as_str().unwrap().into());
    let id = created["stream"]["id"].as_u64().unwrap();
    // 25 waves of 8 events, each sent once the one before was delivered,
    // so that there are many batches, each through the failures in its way.
    for wave in 0..25 {
        send(&server, &account.ingest, wave * 8..(wave + 1) * 8).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while receiver.delivered().len() < (wave + 1) * 8 {
            assert!(Instant::now() < deadline, "{:?}", receiver.arrivals());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let want = api_seqs(&server, &account.read, "").await;
    let want: Vec<u64> = want.into_iter().filter(|s| *s != 1).collect();
    assert_eq!(want.len(), 200);
    let deadline = Instant::now() + Duration::from_secs(120);
    while receiver.delivered().len() < want.len() {
        assert!(Instant::now() < deadline, "{:?}", receiver.arrivals());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.delivered(),
        want,
        "nothing lost, nothing twice, in seq order"
    );
    assert_eq!(receiver.state.lock().unwrap().bad_signatures, 0);
    let arrivals = receiver.arrivals();
    let used = &script[..arrivals.len().min(script.len())];
    assert!(failing(used) >= 5, "enough failures happened: {arrivals:?}");
    assert_eq!(
        arrivals.iter().filter(|a| a.answered != 200).count(),
        failing(used),
        "the answers were the script's"
    );
    // Each retry resends the same batch (same id, same seqs) after a
    // backoff: at least half the first step (0.5 s with jitter) after a
    // 500, the whole Retry-After after a 429; a run of failures waits longer.
    let mut longest_run = 0;
    let mut run = 0;
    for pair in arrivals.windows(2) {
        let (failed, retry) = (&pair[0], &pair[1]);
        if failed.answered == 200 {
            run = 0;
            continue;
        }
        run += 1;
        longest_run = longest_run.max(run);
        assert_eq!(retry.id, failed.id, "a retry carries the same webhook-id");
        assert_eq!(retry.seqs, failed.seqs, "and the same events");
        let gap = retry.at - failed.at;
        let least = if failed.answered == 429 {
            Duration::from_millis(950)
        } else {
            Duration::from_millis(240) * 2u32.pow(run - 1)
        };
        assert!(
            gap >= least,
            "after {} (failure {run} in a row) the retry came {gap:?} later, before {least:?}",
            failed.answered
        );
    }
    assert!(longest_run >= 2, "the script has a run of failures");
    // The history shows batches that took several attempts, with the answers.
    let (_, got) = server.get(&format!("/api/v1/streams/{id}"), &admin).await;
    let batches = got["batches"].as_array().unwrap();
    assert!(batches.iter().any(|b| b["status"] == "failed"
        && (b["response"].as_str().unwrap().starts_with("500")
            || b["response"].as_str().unwrap().starts_with("429"))));
    assert!(batches
        .iter()
        .any(|b| b["status"] == "delivered" && b["attempts"].as_u64().unwrap() > 1));
    assert_eq!(got["stream"]["lag"], 0);
    assert_eq!(got["stream"]["attempts"], 0);
}
