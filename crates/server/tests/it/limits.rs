//! The protective limits, each against the real server (`auditlog_server::serve`
//! on a port of 127.0.0.1 with an embedded store in a temporary directory):
//! the per-key rate limit, the request timeout, the connection cap and the
//! closing of unanswered connections, and the body limit of every class of
//! route that reads a body.

use auditlog_core::Timestamp;
use auditlog_server::api::body::{MAX_BODY_BYTES, MAX_SMALL_BODY_BYTES};
use auditlog_server::console::session::{start_session, SESSION_COOKIE};
use auditlog_server::exports::{ExportSettings, Exports};
use auditlog_server::limits::Limits;
use auditlog_server::tokens::{hash_api_key, hash_password, new_api_key};
use auditlog_server::AppState;
use auditlog_store::{
    Account, Compression, Directory, ExportFormat, ExportJobs, ExportOutcome, NewExportJob, Role,
    Scope, Store,
};
use auditlog_store_sqlite::SqliteStore;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct TestServer {
    address: SocketAddr,
    base: String,
    state: AppState,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TestServer {
    async fn start(limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let exports = Exports::new(ExportSettings::new(dir.path().join("exports")));
        std::fs::create_dir_all(&exports.settings.dir).unwrap();
        let state = AppState::new(store.clone() as Arc<dyn Store>)
            .with_exports(exports)
            .with_limits(limits);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(auditlog_server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            address,
            base: format!("http://{address}"),
            state,
            store,
            _dir: dir,
            http: reqwest::Client::new(),
            _stop: stop,
        }
    }

    async fn account(&self, name: &str) -> Account {
        match self.store.account_by_name(name).await.unwrap() {
            Some(account) => account,
            None => self.store.create_account(name).await.unwrap(),
        }
    }

    /// A new key of account `acme` with both scopes.
    async fn key(&self) -> String {
        let account = self.account("acme").await;
        let key = new_api_key();
        self.store
            .create_api_key(
                account.id,
                hash_api_key(&key),
                &[Scope::Read, Scope::Ingest],
            )
            .await
            .unwrap();
        key
    }

    async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    async fn post_json(&self, key: &str, path: &str, body: Vec<u8>) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

fn limits() -> Limits {
    Limits::default()
}

async fn error_of(response: reqwest::Response) -> Value {
    let body: Value = response.json().await.unwrap();
    body["error"].clone()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn event(id: &str) -> Value {
    json!({"id": id, "event_type": "Test Case", "action": "Create", "actor": {"id": "u-1"}})
}

// ---------------------------------------------------------------- rate limit

#[tokio::test]
async fn a_key_over_its_rate_is_answered_429_with_retry_after_others_are_not() {
    let server = TestServer::start(Limits {
        rate_limit_per_second: 2,
        rate_limit_burst: 3,
        ..limits()
    })
    .await;
    let (busy, other) = (server.key().await, server.key().await);

    for _ in 0..3 {
        assert_eq!(server.get(&busy, "/api/v1/events").await.status(), 200);
    }
    let refused = server.get(&busy, "/api/v1/events").await;
    assert_eq!(refused.status(), 429);
    let wait = retry_after(&refused);
    assert_eq!(wait, 1, "one token comes back in 0.5 s: rounded up to 1 s");
    let error = error_of(refused).await;
    assert_eq!(error["code"], "rate_limited");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("2 requests per second") && message.contains("retry after 1 s"));
    // Every route of the key shares its bucket: ingest is refused too.
    let body = serde_json::to_vec(&event("e-1")).unwrap();
    let refused = server.post_json(&busy, "/api/v1/events", body).await;
    assert_eq!(refused.status(), 429);

    // Another key of the same account is not affected.
    assert_eq!(server.get(&other, "/api/v1/events").await.status(), 200);

    // After the advertised wait the busy key is served again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(server.get(&busy, "/api/v1/events").await.status(), 200);
}

#[tokio::test]
async fn bad_keys_do_not_use_up_a_keys_allowance() {
    let server = TestServer::start(Limits {
        rate_limit_per_second: 1,
        rate_limit_burst: 2,
        ..limits()
    })
    .await;
    let key = server.key().await;
    for _ in 0..10 {
        let response = server.get("alk_not-a-key", "/api/v1/events").await;
        assert_eq!(response.status(), 401);
    }
    assert_eq!(server.get(&key, "/api/v1/events").await.status(), 200);
    assert_eq!(server.get(&key, "/api/v1/events").await.status(), 200);
    assert_eq!(server.get(&key, "/api/v1/events").await.status(), 429);
}

#[tokio::test]
async fn the_default_limits_let_a_thousand_quick_requests_of_one_key_through() {
    let server = TestServer::start(limits()).await;
    let key = server.key().await;
    let mut answers = Vec::new();
    for _ in 0..10 {
        let batch = (0..100).map(|_| server.get(&key, "/api/v1/events?limit=1"));
        answers.extend(futures_util::future::join_all(batch).await);
    }
    assert_eq!(answers.len(), 1_000);
    assert!(answers.iter().all(|r| r.status() == 200));
    assert_eq!(server.state.api_rate_limiter.tracked_keys(), 1);
}

// ------------------------------------------------------------------- timeout

#[tokio::test]
async fn a_stalled_store_is_answered_503_timeout_within_the_request_timeout() {
    let server = TestServer::start(Limits {
        request_timeout: Duration::from_millis(300),
        ..limits()
    })
    .await;
    let key = server.key().await;
    // Warm the key cache, so that the stall below is the append's.
    assert_eq!(server.get(&key, "/api/v1/events").await.status(), 200);

    // Another connection holds SQLite's write lock: the writer waits for it.
    let locker = rusqlite::Connection::open(server.store.path()).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let body = serde_json::to_vec(&event("stalled-1")).unwrap();
    let started = Instant::now();
    let response = server.post_json(&key, "/api/v1/events", body.clone()).await;
    let took = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "answered after {took:?}"
    );
    assert_eq!(retry_after(&response), 5);
    let error = error_of(response).await;
    assert_eq!(error["code"], "timeout");
    assert!(error["message"].as_str().unwrap().contains("same id"));

    // Reads do not wait for the writer, so they are answered meanwhile.
    assert_eq!(server.get(&key, "/api/v1/events").await.status(), 200);

    // Once the lock goes, the timed-out request takes effect, as the
    // message warned; resending the same id is an idempotent repeat.
    locker.execute_batch("ROLLBACK").unwrap();
    let again = server.post_json(&key, "/api/v1/events", body).await;
    assert_eq!(again.status(), 200, "the first attempt was stored");
    let receipt: Value = again.json().await.unwrap();
    assert_eq!(receipt["events"][0]["seq"], 1);
}

/// A completed export of account `acme` whose file is `size` bytes, written
/// directly, so that a large download needs no large ingest.
async fn completed_export(server: &TestServer, size: usize) -> i64 {
    let account = server.account("acme").await;
    let now = Timestamp::now();
    let job = server
        .store
        .create_export(NewExportJob {
            account_id: account.id,
            requested_by: "test".into(),
            format: ExportFormat::Jsonl,
            compression: Compression::None,
            filters: json!({}),
            seq_bound: 0,
            created_at: now,
        })
        .await
        .unwrap();
    let later = Timestamp::from_micros(now.micros() + 3_600_000_000);
    let claimed = server
        .store
        .claim_export("test", now, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, job.id);
    let file_name = format!("export-{}.jsonl", job.id);
    let line = b"{\"padding\":\"................................................\"}\n";
    let content: Vec<u8> = line.iter().copied().cycle().take(size).collect();
    std::fs::write(server.state.exports.settings.dir.join(&file_name), &content).unwrap();
    let done = server
        .store
        .complete_export(
            job.id,
            "test",
            ExportOutcome {
                row_count: 0,
                size_bytes: size as u64,
                sha256: String::new(),
                file_name,
                completed_at: now,
                expires_at: later,
            },
        )
        .await
        .unwrap();
    assert!(done);
    job.id
}

#[tokio::test]
async fn a_download_longer_than_the_request_timeout_is_not_cut() {
    let server = TestServer::start(Limits {
        request_timeout: Duration::from_millis(200),
        ..limits()
    })
    .await;
    let key = server.key().await;
    let size = 32 << 20;
    let id = completed_export(&server, size).await;

    let started = Instant::now();
    let mut response = server
        .get(&key, &format!("/api/v1/exports/{id}/download"))
        .await;
    assert_eq!(response.status(), 200);
    // Read slowly: the whole download takes several request timeouts (and
    // more than the unanswered-connection limit of 400 ms), but bytes keep
    // moving, so neither limit applies.
    let mut received = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len();
        if received % (1 << 20) < chunk.len() {
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
    assert_eq!(received, size);
    assert!(
        started.elapsed() > Duration::from_millis(1_000),
        "the download took {:?}, not longer than the limits",
        started.elapsed()
    );
}

// ------------------------------------------------------------ connection cap

/// Sends a GET on a raw connection and reads its whole answer.
async fn raw_get(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    read_response(stream).await
}

async fn read_response(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before a full answer");
        bytes.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&bytes).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn a_third_connection_waits_until_one_of_two_closes() {
    let server = TestServer::start(Limits {
        max_connections: 2,
        ..limits()
    })
    .await;
    let mut first = TcpStream::connect(server.address).await.unwrap();
    let mut second = TcpStream::connect(server.address).await.unwrap();
    assert!(raw_get(&mut first, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    assert!(raw_get(&mut second, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));

    // The third connects (the kernel queues it) but is not served while
    // both places are held by open keep-alive connections.
    let mut third = TcpStream::connect(server.address).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(500), read_response(&mut third)).await;
    assert!(waiting.is_err(), "the third connection was served");
    // Both held connections are still served.
    assert!(raw_get(&mut second, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));

    drop(first);
    let answer = tokio::time::timeout(Duration::from_secs(5), read_response(&mut third))
        .await
        .expect("served once a place was free");
    assert!(answer.starts_with("HTTP/1.1 200"));
}

/// Reads until the server closes the connection (waiting 5 s at most);
/// how long that took since `started`.
async fn time_until_closed(stream: &mut TcpStream, started: Instant) -> Duration {
    let mut buf = [0u8; 1024];
    let closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the server did not close the connection");
    started.elapsed()
}

#[tokio::test]
async fn a_silent_connection_is_closed_and_frees_its_place() {
    // Unanswered connections close after 2 × 200 ms.
    let server = TestServer::start(Limits {
        max_connections: 1,
        request_timeout: Duration::from_millis(200),
        ..limits()
    })
    .await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(server.address).await.unwrap();
    let mut next = TcpStream::connect(server.address).await.unwrap();
    let served = tokio::time::timeout(Duration::from_secs(5), raw_get(&mut next, "/healthz"))
        .await
        .expect("served once the silent connection was closed");
    assert!(served.starts_with("HTTP/1.1 200"));
    let closed_after = time_until_closed(&mut silent, started).await;
    assert!(
        closed_after >= Duration::from_millis(400) && closed_after < Duration::from_secs(3),
        "closed after {closed_after:?}"
    );
}

#[tokio::test]
async fn a_request_trickled_in_is_cut_off_and_an_idle_keep_alive_closed() {
    let server = TestServer::start(Limits {
        request_timeout: Duration::from_millis(200),
        ..limits()
    })
    .await;
    // One byte every 50 ms: bytes keep arriving, but the request is never
    // complete, and 400 ms after its first byte the connection is closed.
    let mut trickle = TcpStream::connect(server.address).await.unwrap();
    let started = Instant::now();
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ";
    let mut cut = false;
    for i in 0.. {
        let byte = [request.get(i).copied().unwrap_or(b'a')];
        if trickle.write_all(&byte).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    let closed_after = time_until_closed(&mut trickle, started).await;
    assert!(cut, "the trickling client was never cut off");
    assert!(
        closed_after < Duration::from_secs(3),
        "closed after {closed_after:?}"
    );

    // A keep-alive connection is served, then closed once left idle.
    let mut idle = TcpStream::connect(server.address).await.unwrap();
    assert!(raw_get(&mut idle, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    let closed_after = time_until_closed(&mut idle, answered).await;
    assert!(
        closed_after >= Duration::from_millis(300) && closed_after < Duration::from_secs(3),
        "closed after {closed_after:?}"
    );
}

// --------------------------------------------------------------- body limits

/// `json` followed by spaces up to exactly `size` bytes (still valid JSON).
fn padded(json: &Value, size: usize) -> Vec<u8> {
    let mut body = serde_json::to_vec(json).unwrap();
    assert!(body.len() <= size);
    body.resize(size, b' ');
    body
}

#[tokio::test]
async fn ingest_takes_10_mib_and_refuses_one_byte_more_with_413() {
    let server = TestServer::start(limits()).await;
    let key = server.key().await;
    let batch = json!({"events": [event("big-1")]});

    let at_limit = server
        .post_json(&key, "/api/v1/events", padded(&batch, MAX_BODY_BYTES))
        .await;
    assert_eq!(at_limit.status(), 201);

    let over = server
        .post_json(&key, "/api/v1/events", padded(&batch, MAX_BODY_BYTES + 1))
        .await;
    assert_eq!(over.status(), 413);
    let error = error_of(over).await;
    assert_eq!(error["code"], "body_too_large");
    assert!(error["message"].as_str().unwrap().contains("10 MiB"));
}

#[tokio::test]
async fn an_export_request_takes_64_kib_and_refuses_one_byte_more_with_413() {
    let server = TestServer::start(limits()).await;
    let key = server.key().await;
    let request = json!({"format": "csv"});

    let at_limit = server
        .post_json(
            &key,
            "/api/v1/exports",
            padded(&request, MAX_SMALL_BODY_BYTES),
        )
        .await;
    assert_eq!(at_limit.status(), 202);

    let over = server
        .post_json(
            &key,
            "/api/v1/exports",
            padded(&request, MAX_SMALL_BODY_BYTES + 1),
        )
        .await;
    assert_eq!(over.status(), 413);
    let error = error_of(over).await;
    assert_eq!(error["code"], "body_too_large");
    assert!(error["message"].as_str().unwrap().contains("64 KiB"));
}

fn form_of_size(size: usize) -> String {
    let mut form = String::from("account=acme&email=a%40acme.test&password=x&csrf=t&next=%2F&pad=");
    let pad = size - form.len();
    form.push_str(&"a".repeat(pad));
    form
}

#[tokio::test]
async fn console_forms_over_64_kib_are_refused_413_with_a_page() {
    let server = TestServer::start(limits()).await;
    let account = server.account("acme").await;
    let user = server
        .store
        .create_user(
            account.id,
            "ada@acme.test",
            &hash_password("a long passphrase").unwrap(),
            Role::Admin,
        )
        .await
        .unwrap();
    let session = start_session(&server.state, user.id).await.unwrap();
    let post = |path: &str, form: String, cookie: String| {
        server
            .http
            .post(format!("{}{path}", server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body(form)
            .send()
    };

    // Sign-in, without a session.
    let over = post(
        "/login",
        form_of_size(MAX_SMALL_BODY_BYTES + 1),
        String::new(),
    )
    .await
    .unwrap();
    assert_eq!(over.status(), 413);
    assert!(over.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(over.text().await.unwrap().contains("more than 64 KiB"));
    // At the limit the form is read and judged on its content (no login
    // cookie: the form is refused as expired, not as too large).
    let at_limit = post("/login", form_of_size(MAX_SMALL_BODY_BYTES), String::new())
        .await
        .unwrap();
    assert_eq!(at_limit.status(), 403);

    // The signed-in forms: export and sign-out.
    let cookie = format!("{SESSION_COOKIE}={session}");
    for path in ["/settings/exports", "/logout"] {
        let over = post(path, form_of_size(MAX_SMALL_BODY_BYTES + 1), cookie.clone())
            .await
            .unwrap();
        assert_eq!(over.status(), 413, "{path}");
        assert!(over.text().await.unwrap().contains("more than 64 KiB"));
        let at_limit = post(path, form_of_size(MAX_SMALL_BODY_BYTES), cookie.clone())
            .await
            .unwrap();
        assert_eq!(
            at_limit.status(),
            403,
            "{path}: refused for its CSRF token only"
        );
    }
}
