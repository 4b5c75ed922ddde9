//! Log streams of kind `splunk_hec` and `syslog`, and the `ocsf` format,
//! against the real binary and real receivers on 127.0.0.1:
//!
//! - a Splunk HEC receiver written here that checks each request's token
//!   (`Authorization: Splunk …`), channel and envelopes (concatenated, not an
//!   array) and does indexer acknowledgement: while it withholds the acks
//!   the cursor does not move, once it confirms them it does;
//! - rsyslog (`rsyslogd`, the Debian package), started by the test, over
//!   TCP with octet counting and over TLS (a throwaway CA made with the
//!   `openssl` command): every event written, in order, its MSGID and
//!   structured data parsed by rsyslog; after rsyslog is stopped and
//!   started again, every event arrives (the window resent; duplicates
//!   de-duplicated on account and seq);
//! - every OCSF event delivered (and the mapping's corner cases) validates
//!   against the OCSF 1.5.0 class schemas in `tests/fixtures/ocsf-1.5.0`,
//!   with Python's reference `jsonschema`.
//!
//! Without `rsyslogd` the syslog tests say they were skipped; CI installs it.

use crate::helpers::{error_code, TestServer};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) fn admin_key(server: &TestServer, account: &str) -> String {
    server
        .cli(
            &["key", "create", "--account", account, "--scope", "admin"],
            "",
        )
        .trim()
        .to_string()
}

/// Events of every OCSF class: entity events, logins and logouts, events
/// without a target.
pub(crate) fn event(i: usize) -> Value {
    let mut e = match i % 6 {
        0 => {
            json!({"event_type": "Test Case", "action": "Update", "target": {"id": format!("T-{i}"), "name": "Login with SSO"}})
        }
        1 => {
            json!({"event_type": "Element", "action": "Create", "target": {"id": format!("E-{i}")}})
        }
        2 => json!({"event_type": "Authentication", "action": "Login"}),
        3 => {
            json!({"event_type": "Authentication", "action": "Logout", "context": {"ip": "203.0.113.7"}})
        }
        4 => json!({"event_type": "Test Plan", "action": "Delete"}),
        _ => {
            json!({"event_type": "Environment", "action": "Update", "details": {"changes": [{"field": "name", "old": "a", "new": "b]\"\\"}]}})
        }
    };
    e["id"] = json!(format!("k-{i}"));
    e["actor"] =
        json!({"id": format!("u-{}", i % 4), "name": "Ada Lovelace", "email": "ada@example.com"});
    e
}

pub(crate) async fn send(server: &TestServer, key: &str, range: std::ops::Range<usize>) {
    let events: Vec<Value> = range.map(event).collect();
    for chunk in events.chunks(500) {
        let (status, body) = server
            .post("/api/v1/events", key, &json!({"events": chunk}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// The event types the tests send: a stream filtered on them delivers the
/// test's events and passes over Auditlog's own (such as the audit event of
/// the stream's creation).
pub(crate) const FILTERS: &str = "event_type=Test%20Case&event_type=Element&event_type=Authentication&event_type=Test%20Plan&event_type=Environment";

pub(crate) fn filters() -> Value {
    json!({"event_type": ["Test Case", "Element", "Authentication", "Test Plan", "Environment"]})
}

/// The seqs the API answers for [`FILTERS`], oldest first.
pub(crate) async fn api_seqs(server: &TestServer, key: &str) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = server
            .get(&format!("/api/v1/events?limit=1000&{FILTERS}{cursor}"), key)
            .await;
        assert_eq!(status, 200, "{page}");
        seqs.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    seqs.sort_unstable();
    seqs
}

/// The value of one series of `/metrics`.
pub(crate) async fn metric(server: &TestServer, series: &str) -> f64 {
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .unwrap_or_else(|| panic!("no {series} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

pub(crate) async fn stream_state(server: &TestServer, key: &str, id: u64) -> Value {
    let (status, got) = server.get(&format!("/api/v1/streams/{id}"), key).await;
    assert_eq!(status, 200, "{got}");
    got
}

/// Validates each of `events` (OCSF) against its class's schema with
/// Python's `jsonschema` (draft 2020-12); panics naming every violation.
fn validate_ocsf(events: &[Value]) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ocsf-1.5.0");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.json");
    std::fs::write(&input, serde_json::to_vec(events).unwrap()).unwrap();
    let script = r#"
import json, sys, glob, os
from jsonschema import Draft202012Validator
schemas = {}
for path in glob.glob(os.path.join(sys.argv[1], "*.json")):
    uid = int(os.path.basename(path).split("-")[0])
    with open(path) as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    schemas[uid] = Draft202012Validator(schema)
events = json.load(open(sys.argv[2]))
bad = 0
for event in events:
    validator = schemas.get(event.get("class_uid"))
    if validator is None:
        print("no schema for class_uid", event.get("class_uid"), json.dumps(event)); bad += 1; continue
    for error in validator.iter_errors(event):
        print(event["class_uid"], list(error.absolute_path), error.message); bad += 1
print(len(events), "validated,", bad, "errors")
sys.exit(1 if bad else 0)
"#;
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(&fixtures)
        .arg(&input)
        .output()
        .expect("python3 runs (CI installs it, with jsonschema)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "OCSF events must validate against the OCSF 1.5.0 schemas:\n{text}"
    );
    assert!(
        text.contains(&format!("{} validated, 0 errors", events.len())),
        "{text}"
    );
}

// ------------------------------------------------------------ Splunk HEC

#[derive(Default)]
pub(crate) struct HecState {
    token: String,
    /// Requests with a wrong or missing token.
    pub(crate) bad_tokens: usize,
    /// Envelopes that are not as HEC wants them.
    pub(crate) bad_envelopes: Vec<String>,
    channels: Vec<String>,
    /// (ackId, the events of that request).
    batches: Vec<(u64, Vec<Value>)>,
    /// Every envelope received, whole.
    pub(crate) envelopes: Vec<Value>,
    /// Acks confirmed once this is true.
    pub(crate) release: bool,
    ack_queries: usize,
}

#[derive(Clone)]
pub(crate) struct Hec {
    pub(crate) url: String,
    pub(crate) state: Arc<Mutex<HecState>>,
}

impl Hec {
    pub(crate) async fn start(token: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let state = Arc::new(Mutex::new(HecState {
            token: token.into(),
            ..Default::default()
        }));
        let events_state = state.clone();
        let acks_state = state.clone();
        let authorized = |s: &HecState, headers: &HeaderMap| {
            headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(format!("Splunk {}", s.token).as_str())
        };
        let app = axum::Router::new()
            .route(
                "/services/collector/event",
                axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                    let state = events_state.clone();
                    async move {
                        let mut s = state.lock().unwrap();
                        if !authorized(&s, &headers) {
                            s.bad_tokens += 1;
                            return (
                                StatusCode::UNAUTHORIZED,
                                r#"{"text":"Invalid token","code":4}"#.to_string(),
                            );
                        }
                        let channel = headers
                            .get("x-splunk-request-channel")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        s.channels.push(channel);
                        let text = String::from_utf8(body.to_vec()).unwrap();
                        if text.trim_start().starts_with('[') {
                            s.bad_envelopes
                                .push("a JSON array, not concatenated envelopes".into());
                        }
                        let mut events = Vec::new();
                        for envelope in
                            serde_json::Deserializer::from_str(&text).into_iter::<Value>()
                        {
                            let envelope = envelope.unwrap();
                            let ok = envelope["time"].is_number()
                                && envelope["source"] == "auditlog"
                                && envelope["sourcetype"].is_string()
                                && envelope["event"].is_object()
                                && envelope.as_object().unwrap().keys().all(|k| {
                                    [
                                        "time",
                                        "host",
                                        "source",
                                        "sourcetype",
                                        "index",
                                        "event",
                                        "fields",
                                    ]
                                    .contains(&k.as_str())
                                });
                            if !ok {
                                s.bad_envelopes.push(envelope.to_string());
                            }
                            events.push(envelope["event"].clone());
                            s.envelopes.push(envelope);
                        }
                        let ack = s.batches.len() as u64;
                        s.batches.push((ack, events));
                        (
                            StatusCode::OK,
                            format!(r#"{{"text":"Success","code":0,"ackId":{ack}}}"#),
                        )
                    }
                }),
            )
            .route(
                "/services/collector/ack",
                axum::routing::post(move |headers: HeaderMap, body: axum::Json<Value>| {
                    let state = acks_state.clone();
                    async move {
                        let mut s = state.lock().unwrap();
                        if !authorized(&s, &headers) {
                            s.bad_tokens += 1;
                            return (
                                StatusCode::UNAUTHORIZED,
                                axum::Json(json!({"text": "Invalid token", "code": 4})),
                            );
                        }
                        s.ack_queries += 1;
                        let mut acks = serde_json::Map::new();
                        for id in body["acks"].as_array().unwrap() {
                            acks.insert(id.as_u64().unwrap().to_string(), json!(s.release));
                        }
                        (StatusCode::OK, axum::Json(json!({"acks": acks})))
                    }
                }),
            );
        let url = format!(
            "http://{}/services/collector/event",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state }
    }

    pub(crate) fn events(&self) -> Vec<Value> {
        let s = self.state.lock().unwrap();
        s.batches.iter().flat_map(|(_, e)| e.clone()).collect()
    }
}

/// A server on SQLite in `dir`, or on the PostgreSQL database `database`.
pub(crate) fn start_server(dir: &Path, database: Option<&str>, args: &[&str]) -> TestServer {
    match database {
        None => TestServer::start_on(dir, args),
        Some(url) => TestServer::start_on_database(url, dir, args),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_splunk_hec_stream_sends_envelopes_with_its_token_and_moves_only_on_acknowledgement() {
    hec_case(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_splunk_hec_stream_moves_only_on_acknowledgement() {
    use auditlog_store_postgres::test_support::TestDatabase;
    let Some(database) = TestDatabase::create("streams_hec") else {
        return;
    };
    hec_case(Some(&database.url)).await;
}

async fn hec_case(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(
        dir.path(),
        database,
        &["--stream-allow-private", "127.0.0.1/32"],
    );
    let account = server.account("hec");
    let admin = admin_key(&server, "hec");
    let token = "B5A79AAD-D822-46CC-80D1-819F80D7BFB0";
    let hec = Hec::start(token).await;

    // The rules of each kind, naming the field and the rule.
    for (body, field, rule) in [
        (
            json!({"kind": "splunk_hec", "url": hec.url}),
            "token",
            "required",
        ),
        (
            json!({"kind": "splunk_hec", "url": hec.url, "token": "a b"}),
            "token",
            "invalid_token",
        ),
        (
            json!({"kind": "splunk_hec", "url": hec.url, "token": token, "secret": "whsec_x"}),
            "secret",
            "not_for_kind",
        ),
        (
            json!({"kind": "splunk_hec", "url": hec.url.replace("/services/collector/event", "/x"), "token": token}),
            "url",
            "not_a_collector_url",
        ),
        (
            json!({"kind": "splunk_hec", "url": "http://10.1.2.3:8088/services/collector/event", "token": token}),
            "url",
            "address_not_allowed",
        ),
        (
            json!({"kind": "webhook", "url": "http://127.0.0.1:1/hook", "token": token}),
            "token",
            "not_for_kind",
        ),
        (
            json!({"kind": "syslog", "url": "http://127.0.0.1:514"}),
            "url",
            "invalid_url",
        ),
        (
            json!({"kind": "kafka", "url": "http://127.0.0.1:1/"}),
            "kind",
            "unknown_kind",
        ),
        (
            json!({"kind": "syslog", "url": "tcp://127.0.0.1:514", "format": "cef"}),
            "format",
            "unknown_format",
        ),
    ] {
        let (status, refused) = server.post("/api/v1/streams", &admin, &body).await;
        assert_eq!(status, 422, "{body} → {refused}");
        assert_eq!(error_code(&refused), "invalid_stream");
        assert_eq!(
            refused["error"]["details"]["field"], field,
            "{body} → {refused}"
        );
        assert_eq!(
            refused["error"]["details"]["rule"], rule,
            "{body} → {refused}"
        );
    }

    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "splunk_hec", "format": "ocsf", "url": hec.url, "token": token, "filters": filters(), "from_seq": 1}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(created.get("secret").is_none(), "{created}");
    assert!(
        !created.to_string().contains(token),
        "the token is never shown"
    );
    let id = created["stream"]["id"].as_u64().unwrap();
    assert_eq!(created["stream"]["kind"], "splunk_hec");
    assert_eq!(created["stream"]["format"], "ocsf");

    // The acks are withheld: events arrive, the cursor stays.
    send(&server, &account.ingest, 0..60).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while hec.events().len() < 60 || hec.state.lock().unwrap().ack_queries < 3 {
        assert!(
            Instant::now() < deadline,
            "{} events arrived",
            hec.events().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first_60 = api_seqs(&server, &account.read).await;
    assert_eq!(first_60.len(), 60);
    let held = stream_state(&server, &admin, id).await;
    let held_cursor = held["stream"]["cursor"].as_u64().unwrap();
    assert!(
        held_cursor < first_60[0] && !held["stream"]["pending"].is_null(),
        "not acknowledged: the cursor stays before the events sent ({held})"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        stream_state(&server, &admin, id).await["stream"]["cursor"],
        held_cursor
    );

    // Confirmed: the cursor moves, and later batches go through too.
    hec.state.lock().unwrap().release = true;
    send(&server, &account.ingest, 60..90).await;
    let want = api_seqs(&server, &account.read).await;
    assert_eq!(want.len(), 90);
    let tip = *want.last().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = stream_state(&server, &admin, id).await;
        if got["stream"]["cursor"].as_u64().unwrap() >= tip {
            let batches = got["batches"].as_array().unwrap();
            assert!(
                batches.iter().all(|b| b["status"] == "delivered"
                    && b["response"].as_str().unwrap().contains("acknowledged")),
                "{got}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{got}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    {
        let s = hec.state.lock().unwrap();
        assert_eq!(s.bad_tokens, 0, "every request carried the token");
        assert!(s.bad_envelopes.is_empty(), "{:?}", s.bad_envelopes);
        assert!(
            !s.channels.is_empty()
                && s.channels
                    .iter()
                    .all(|c| c.len() == 36 && *c == s.channels[0])
        );
    }
    let events = hec.events();
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["metadata"]["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, want, "every event once, in order");
    assert!(events.iter().all(|e| e["metadata"]["tenant_uid"] == "hec"));
    validate_ocsf(&events);
    assert_eq!(
        metric(
            &server,
            r#"auditlog_stream_events_delivered_total{kind="splunk_hec",format="ocsf"}"#
        )
        .await,
        90.0,
        "counted once each, when acknowledged"
    );

    // The token is write-only: not in the answers, not in the database file.
    let (_, list) = server.get("/api/v1/streams", &admin).await;
    assert!(!list.to_string().contains(token));
    assert!(!std::fs::read(dir.path().join("auditlog.db"))
        .unwrap_or_default()
        .windows(token.len())
        .any(|w| w == token.as_bytes()));
    // A new token is taken by PATCH; a secret is refused on this kind.
    let response = server
        .http
        .patch(server.url(&format!("/api/v1/streams/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let refused: Value = response.json().await.unwrap();
    assert_eq!(refused["error"]["details"]["rule"], "not_for_kind");
}

// ------------------------------------------------------------ https

/// A Splunk HEC collector over https (a throwaway CA's certificate for
/// 127.0.0.1): each request's path, `Authorization` and body.
pub(crate) async fn https_collector(
    cert: &Path,
    key: &Path,
) -> (String, Arc<Mutex<Vec<(String, String, String)>>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio_rustls::rustls;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    #[allow(deprecated, reason = "ring, as the server uses")]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/services/collector/event",
        listener.local_addr().unwrap().port()
    );
    let requests: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let shared = requests.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let shared = shared.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut stream = BufReader::new(tls);
                loop {
                    let mut request_line = String::new();
                    if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
                    let (mut length, mut authorization) = (0usize, String::new());
                    loop {
                        let mut line = String::new();
                        stream.read_line(&mut line).await.unwrap();
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        let (name, value) = line.split_once(':').unwrap();
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap(),
                            "authorization" => authorization = value.trim().to_string(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0u8; length];
                    stream.read_exact(&mut body).await.unwrap();
                    shared.lock().unwrap().push((
                        path,
                        authorization,
                        String::from_utf8(body).unwrap(),
                    ));
                    let answer = r#"{"text":"Success","code":0}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    stream
                        .get_mut()
                        .write_all(response.as_bytes())
                        .await
                        .unwrap();
                    stream.get_mut().flush().await.unwrap();
                }
            });
        }
    });
    (url, requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_splunk_hec_stream_reaches_an_https_collector_checking_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let (url, requests) = https_collector(&cert, &key).await;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ca_arg = ca.display().to_string();
    let server = TestServer::start_on(
        &data,
        &[
            "--stream-allow-private",
            "127.0.0.1/32",
            "--stream-tls-ca-file",
            &ca_arg,
        ],
    );
    let account = server.account("tls");
    let admin = admin_key(&server, "tls");
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "splunk_hec", "url": url, "token": "tok-1", "filters": filters(), "from_seq": 1}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    send(&server, &account.ingest, 0..40).await;
    let want = api_seqs(&server, &account.read).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let seqs = loop {
        let seqs: Vec<u64> = requests
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(path, authorization, body)| {
                assert_eq!(path, "/services/collector/event");
                assert_eq!(authorization, "Splunk tok-1");
                serde_json::Deserializer::from_str(body)
                    .into_iter::<Value>()
                    .map(|e| e.unwrap()["event"]["seq"].as_u64().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        if seqs.len() >= want.len() {
            break seqs;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} over https",
            seqs.len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(seqs, want);

    // Without the CA, the certificate is refused: nothing is delivered.
    let other = tempfile::tempdir().unwrap();
    let untrusting =
        TestServer::start_on(other.path(), &["--stream-allow-private", "127.0.0.1/32"]);
    let account = untrusting.account("tls");
    let admin = admin_key(&untrusting, "tls");
    let (status, created) = untrusting
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "splunk_hec", "url": url, "token": "tok-2", "filters": filters(), "from_seq": 1}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["stream"]["id"].as_u64().unwrap();
    send(&untrusting, &account.ingest, 0..5).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = stream_state(&untrusting, &admin, id).await;
        if let Some(error) = got["stream"]["last_error"].as_str() {
            assert!(error.contains("no answer"), "{got}");
            break;
        }
        assert!(Instant::now() < deadline, "{got}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        requests
            .lock()
            .unwrap()
            .iter()
            .all(|(_, a, _)| a != "Splunk tok-2"),
        "nothing reached the collector through an untrusted certificate"
    );
}

// ------------------------------------------------------------ webhook + OCSF

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_stream_in_ocsf_delivers_events_that_validate_against_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(dir.path(), &["--stream-allow-private", "127.0.0.1/32"]);
    let account = server.account("hook");
    let admin = admin_key(&server, "hook");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies: Arc<Mutex<Vec<(HeaderMap, axum::body::Bytes)>>> = Arc::default();
    let shared = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let shared = shared.clone();
            async move {
                shared.lock().unwrap().push((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "format": "ocsf", "url": url, "filters": filters(), "from_seq": 1}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    send(&server, &account.ingest, 0..30).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let events: Vec<Value> = {
            let bodies = bodies.lock().unwrap();
            for (headers, body) in bodies.iter() {
                standardwebhooks::Webhook::new(&secret)
                    .unwrap()
                    .verify(body, headers)
                    .expect("signed");
            }
            bodies
                .iter()
                .flat_map(|(_, b)| serde_json::from_slice::<Vec<Value>>(b).unwrap())
                .collect()
        };
        if events.len() >= 30 {
            break events;
        }
        assert!(Instant::now() < deadline, "{} of 30 events", events.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["metadata"]["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, api_seqs(&server, &account.read).await);
    let classes: std::collections::BTreeSet<u64> = events
        .iter()
        .map(|e| e["class_uid"].as_u64().unwrap())
        .collect();
    assert_eq!(classes, [3002, 3004, 6003].into(), "every class");
    validate_ocsf(&events);
}

// ------------------------------------------------------------ the OCSF mapping

#[test]
fn the_ocsf_mapping_validates_against_the_ocsf_schema_in_every_case() {
    let mut events = Vec::new();
    for (action, target, context) in [
        (
            "Update",
            Some(json!({"id": "T-1", "name": "n"})),
            json!({"ip": "2001:db8::1", "user_agent": "curl/8"}),
        ),
        ("Export", Some(json!({"name": "only a name"})), json!({})),
        (
            "Disable",
            Some(json!({"id": "U-1"})),
            json!({"request_id": "r-1"}),
        ),
        ("Login", None, json!({"ip": "198.51.100.4"})),
        ("Logout", None, json!({})),
        ("Login Failed", None, json!({})),
        ("Download", None, json!({})),
        ("Delete", None, json!({"ip": "203.0.113.9"})),
    ] {
        let mut event = json!({
            "id": "0192f0c4-7a6b-7cc1-8d1a-6f3b1c2d3e4f", "seq": 42, "account": "acme",
            "time": "2026-11-25T14:03:07.123456Z", "received_at": "2026-11-25T14:03:07.2Z",
            "event_type": "Test Case", "action": action,
            "actor": {"id": "u-1", "name": "Ada", "email": "not an address"},
            "project": "p", "app": "a", "version": "1",
            "details": {"changes": [{"field": "f", "old": 1, "new": [2]}]},
            "context": context, "hash": "00ff",
            "source": {"kind": "api_key", "key": "k", "name": "n"},
        });
        if let Some(target) = target {
            event["target"] = target;
        }
        let ocsf = auditlog_server::streams::ocsf::event(&event);
        events.push(ocsf);
    }
    let activities: Vec<(u64, u64)> = events
        .iter()
        .map(|e| {
            (
                e["class_uid"].as_u64().unwrap(),
                e["activity_id"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        activities,
        [
            (3004, 3),
            (3004, 99),
            (3004, 9),
            (3002, 1),
            (3002, 2),
            (3002, 1),
            (6003, 99),
            (6003, 4)
        ]
    );
    validate_ocsf(&events);
}

// ------------------------------------------------------------ syslog (rsyslog)

/// `rsyslogd`'s path, or `None` (the test then says it was skipped).
pub(crate) fn rsyslogd() -> Option<PathBuf> {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it,
/// made with the `openssl` command: (ca.pem, cert.pem, key.pem).
pub(crate) fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Auditlog test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// An rsyslogd of the test's own: listening on 127.0.0.1:`port` (imtcp,
/// octet counting; TLS with gtls when `tls` is given), writing each
/// message's MSGID, structured data and MSG, one per line, to `out.log`.
pub(crate) struct Rsyslog {
    dir: PathBuf,
    port: u16,
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
    auth_mode: String,
    child: Option<Child>,
}

impl Rsyslog {
    pub(crate) fn start(dir: &Path, port: u16, tls: Option<(PathBuf, PathBuf, PathBuf)>) -> Self {
        Self::start_with(dir, port, tls, "anon")
    }

    /// Like `start`; over TLS, `auth_mode` is imtcp's `StreamDriver.AuthMode`
    /// (`anon`, or `x509/certvalid`: a client certificate signed by the CA required).
    pub(crate) fn start_with(
        dir: &Path,
        port: u16,
        tls: Option<(PathBuf, PathBuf, PathBuf)>,
        auth_mode: &str,
    ) -> Self {
        let mut rsyslog = Rsyslog {
            dir: dir.to_path_buf(),
            port,
            tls,
            auth_mode: auth_mode.to_string(),
            child: None,
        };
        rsyslog.launch();
        rsyslog
    }

    pub(crate) fn out(&self) -> PathBuf {
        self.dir.join("out.log")
    }

    pub(crate) fn launch(&mut self) {
        let dir = &self.dir;
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let (global, module) = match &self.tls {
            None => (String::new(), r#"module(load="imtcp")"#.to_string()),
            Some((ca, cert, key)) => (
                format!(
                    r#"global(DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{}" DefaultNetstreamDriverCertFile="{}" DefaultNetstreamDriverKeyFile="{}")"#,
                    ca.display(),
                    cert.display(),
                    key.display()
                ),
                format!(
                    r#"module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="{}")"#,
                    self.auth_mode
                ),
            ),
        };
        let conf = format!(
            r#"global(workDirectory="{work}" maxMessageSize="128k")
{global}
{module}
template(name="fields" type="string" string="%msgid%\t%structured-data%\t%msg%\n")
input(type="imtcp" port="{port}" address="127.0.0.1")
action(type="omfile" file="{out}" template="fields")
"#,
            work = work.display(),
            port = self.port,
            out = self.out().display(),
        );
        let conf_path = dir.join("rsyslog.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let _ = std::fs::remove_file(dir.join("rsyslog.pid"));
        let child = Command::new(rsyslogd().unwrap())
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rsyslogd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd does not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it (SIGTERM, as an operator would), waiting for it to exit.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    /// Each line written: (MSGID, structured data, MSG).
    pub(crate) fn lines(&self) -> Vec<(String, String, String)> {
        std::fs::read_to_string(self.out())
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, '\t');
                Some((
                    parts.next()?.to_string(),
                    parts.next()?.to_string(),
                    parts.next()?.trim_start().to_string(),
                ))
            })
            .collect()
    }

    /// The seqs written, in the order written.
    pub(crate) fn seqs(&self) -> Vec<u64> {
        self.lines()
            .iter()
            .map(|(_, sd, _)| {
                let start = sd.find("seq=\"").expect("seq in the structured data") + 5;
                sd[start..].split('"').next().unwrap().parse().unwrap()
            })
            .collect()
    }

    pub(crate) async fn wait_for(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut seen = self.seqs();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rsyslog wrote {} of {count} events",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn syslog_case(tls: bool, database: Option<&str>) {
    if rsyslogd().is_none() {
        eprintln!(
            "SKIPPED: rsyslogd is not installed (apt-get install rsyslog rsyslog-gnutls); \
             the syslog stream test did not run"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let receiver_dir = dir.path().join("rsyslog");
    std::fs::create_dir_all(&receiver_dir).unwrap();
    let certs = tls.then(|| certificates(&receiver_dir));
    let port = free_port();
    let mut rsyslog = Rsyslog::start(&receiver_dir, port, certs.clone());

    let data = dir.path().join("data");
    let mut args = vec![
        "--stream-allow-private".to_string(),
        "127.0.0.1/32".to_string(),
        "--stream-lease".to_string(),
        "2s".to_string(),
    ];
    if let Some((ca, _, _)) = &certs {
        args.push("--stream-tls-ca-file".into());
        args.push(ca.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    std::fs::create_dir_all(&data).unwrap();
    let server = start_server(&data, database, &args);
    let account = server.account("sys");
    let admin = admin_key(&server, "sys");
    let (scheme, format) = if tls {
        ("tls", "ocsf")
    } else {
        ("tcp", "native")
    };
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "syslog", "format": format, "url": format!("{scheme}://127.0.0.1:{port}"), "filters": filters(), "from_seq": 1}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(created.get("secret").is_none());
    let id = created["stream"]["id"].as_u64().unwrap();

    send(&server, &account.ingest, 0..600).await;
    let want = api_seqs(&server, &account.read).await;
    assert_eq!(want.len(), 600);
    rsyslog.wait_for(600).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rsyslog.seqs(), want, "every event written once, in order");
    let lines = rsyslog.lines();
    let msgs: Vec<Value> = lines
        .iter()
        .map(|(_, _, msg)| serde_json::from_str(msg).unwrap_or_else(|e| panic!("{e}: {msg}")))
        .collect();
    for ((msgid, sd, _), msg) in lines.iter().zip(&msgs) {
        let (event_type, action) = if tls {
            (&msg["unmapped"]["event_type"], &msg["unmapped"]["action"])
        } else {
            (&msg["event_type"], &msg["action"])
        };
        let expected = format!(
            "{}.{}",
            event_type.as_str().unwrap().replace(' ', ""),
            action.as_str().unwrap()
        );
        assert_eq!(msgid, &expected, "MSGID without spaces");
        assert!(
            sd.starts_with("[auditlog@32473 account=\"sys\" seq=\""),
            "structured data under the SD-ID: {sd}"
        );
    }
    if tls {
        validate_ocsf(&msgs);
    } else {
        let seqs: Vec<u64> = msgs.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, want);
        assert!(msgs.iter().all(|m| m["account"] == "sys"));
    }
    let tip = *want.last().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stream_state(&server, &admin, id).await["stream"]["cursor"]
        .as_u64()
        .unwrap()
        < tip
    {
        assert!(Instant::now() < deadline, "the cursor reaches {tip}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // rsyslog stopped and started again: the stream reconnects, resends
    // its window; every event arrives, duplicates only by (account, seq).
    rsyslog.stop();
    send(&server, &account.ingest, 600..700).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    rsyslog.launch();
    send(&server, &account.ingest, 700..800).await;
    let want = api_seqs(&server, &account.read).await;
    assert_eq!(want.len(), 800);
    rsyslog.wait_for(800).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seqs = rsyslog.seqs();
    let mut first_seen = Vec::new();
    for seq in &seqs {
        if !first_seen.contains(seq) {
            first_seen.push(*seq);
        }
    }
    assert_eq!(
        first_seen, want,
        "after the restart every event arrived, in order (de-duplicated on seq)"
    );
    let got = stream_state(&server, &admin, id).await;
    assert!(
        got["batches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["status"] == "failed"),
        "the broken connection is in the history: {got}"
    );
    let series =
        format!(r#"auditlog_stream_events_delivered_total{{kind="syslog",format="{format}"}}"#);
    // Counted once accepted: a new TLS connection's first window waits a
    // second for a refusal of the client (mutual TLS).
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&server, &series).await < 800.0 {
        assert!(Instant::now() < deadline, "{series} reaches 800");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failures = r#"auditlog_stream_failures_total{kind="syslog",reason="connection"}"#;
    assert!(metric(&server, failures).await >= 1.0);

    // A new destination (PATCH url): the stream connects there.
    let other_dir = dir.path().join("rsyslog-2");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other_port = free_port();
    let other = Rsyslog::start(&other_dir, other_port, certs.clone());
    let from = want.last().unwrap() + 1;
    let response = server
        .http
        .patch(server.url(&format!("/api/v1/streams/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"url": format!("{scheme}://127.0.0.1:{other_port}"), "from_seq": from}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The runner takes a change in at its next lease renewal (a third of
    // the 2 s lease here).
    tokio::time::sleep(Duration::from_secs(1)).await;
    send(&server, &account.ingest, 800..850).await;
    let moved: Vec<u64> = api_seqs(&server, &account.read)
        .await
        .into_iter()
        .filter(|s| *s >= from)
        .collect();
    assert_eq!(moved.len(), 50);
    other.wait_for(50).await;
    // At least once: a resent window may repeat seqs (de-duplicated on seq).
    let mut got = Vec::new();
    for seq in other.seqs() {
        if !got.contains(&seq) {
            got.push(seq);
        }
    }
    assert_eq!(got, moved, "the new destination gets the events from there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syslog_stream_over_tcp_reaches_rsyslog_every_event_in_order() {
    syslog_case(false, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_syslog_stream_over_tcp_reaches_rsyslog_every_event_in_order() {
    use auditlog_store_postgres::test_support::TestDatabase;
    let Some(database) = TestDatabase::create("streams_syslog") else {
        return;
    };
    syslog_case(false, Some(&database.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syslog_stream_over_tls_reaches_rsyslog_every_event_in_order_as_ocsf() {
    syslog_case(true, None).await;
}
