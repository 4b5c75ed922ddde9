//! Log stream features beyond delivery itself, against the real binary and
//! real receivers on 127.0.0.1:
//!
//! - mutual TLS: a stream presents a client certificate (its key write-only,
//!   sealed) to rsyslog over TLS with `AuthMode x509/certvalid` and to an
//!   https webhook receiver that requires a client certificate (rustls):
//!   delivered with it, refused without it or with one of another CA;
//! - **Send test event** for syslog: one RFC 5424 message written by rsyslog;
//!   a stopped receiver reported as not delivered;
//! - a Splunk HEC stream's own `index` and `sourcetype` in every envelope;
//! - a webhook receiver answering 413 above a body size: batches split,
//!   every event delivered in order; a single event too large leaves the
//!   stream `failing` with a message naming 413 and the size;
//! - `auditlog send`, `tail` and `monitor` over `https://` (a TLS proxy in
//!   front of the server, a throwaway CA given with `--ca-file`).

use crate::helpers::{TestServer, BIN};
use crate::streams_kinds::{
    admin_key, api_seqs, certificates, filters, free_port, metric, rsyslogd, send, stream_state,
    Hec, Rsyslog,
};
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_rustls::rustls;

fn openssl(dir: &Path, args: &[&str]) {
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
}

/// A client certificate (`clientAuth`) signed by the CA `ca.pem`/`ca.key`
/// of `dir` (as `certificates` makes them): (`name`.pem, `name`.key).
fn client_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let pem = format!("{name}.pem");
    let ext = format!("{name}.ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    std::fs::write(
        dir.join(&ext),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
    (dir.join(pem), dir.join(key))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

async fn test_event(server: &TestServer, admin: &str, id: u64) -> Value {
    let (status, got) = server
        .post(&format!("/api/v1/streams/{id}/test"), admin, &json!({}))
        .await;
    assert_eq!(status, 200, "{got}");
    got
}

async fn patch(server: &TestServer, admin: &str, id: u64, body: &Value) -> (u16, Value) {
    let response = server
        .http
        .patch(server.url(&format!("/api/v1/streams/{id}")))
        .bearer_auth(admin)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn assert_invalid(status: u16, body: &Value, field: &str, rule: &str) {
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"]["field"], field, "{body}");
    assert_eq!(body["error"]["details"]["rule"], rule, "{body}");
}

#[allow(deprecated, reason = "ring, as the server uses")]
fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS server setup with `cert`/`key`; with `client_ca`, a client
/// certificate signed by it is required.
fn server_tls(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).unwrap() {
                roots.add(cert.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                ring(),
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    Arc::new(builder.with_single_cert(certs, key).unwrap())
}

/// An https webhook receiver that requires a client certificate of `ca`:
/// its URL, the bodies it took, and the handshakes it refused.
async fn mtls_webhook(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> (String, Arc<Mutex<Vec<String>>>, Arc<AtomicUsize>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let acceptor = tokio_rustls::TlsAcceptor::from(server_tls(cert, key, Some(ca)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/hook",
        listener.local_addr().unwrap().port()
    );
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let (shared, refusals) = (bodies.clone(), refused.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let shared = shared.clone();
            let refusals = refusals.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    refusals.fetch_add(1, Ordering::SeqCst);
                    return;
                };
                let mut stream = BufReader::new(tls);
                loop {
                    let mut request_line = String::new();
                    if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0u8; length];
                    if stream.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    shared
                        .lock()
                        .unwrap()
                        .push(String::from_utf8(body).unwrap());
                    let response = "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                    if stream
                        .get_mut()
                        .write_all(response.as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                    let _ = stream.get_mut().flush().await;
                }
            });
        }
    });
    (url, bodies, refused)
}

/// The seqs of the webhook bodies (JSON arrays), test events (seq 0) left out.
fn body_seqs(bodies: &[String]) -> Vec<u64> {
    bodies
        .iter()
        .flat_map(|b| {
            serde_json::from_str::<Vec<Value>>(b)
                .unwrap()
                .into_iter()
                .map(|e| e["seq"].as_u64().unwrap())
                .filter(|s| *s > 0)
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn wait_until<F: Fn() -> bool>(what: &str, limit: Duration, done: F) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stream's `last_error`, once it has one.
async fn last_error(server: &TestServer, admin: &str, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = stream_state(server, admin, id).await;
        if got["stream"]["last_error"].is_string() {
            return got;
        }
        assert!(Instant::now() < deadline, "no error recorded: {got}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------------ mutual TLS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_stream_presents_its_client_certificate_and_is_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let (client_pem, client_key) = client_certificate(dir.path(), "auditlog-client");
    // A client certificate of another CA, which the receiver does not trust.
    let rogue_dir = dir.path().join("rogue");
    std::fs::create_dir_all(&rogue_dir).unwrap();
    certificates(&rogue_dir);
    let (rogue_pem, rogue_key) = client_certificate(&rogue_dir, "rogue");
    let (url, bodies, refused) = mtls_webhook(&ca, &cert, &key).await;

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
    let account = server.account("mtls");
    let admin = admin_key(&server, "mtls");

    // Bad input is refused naming the field and the rule.
    let base = json!({"kind": "webhook", "url": url, "filters": filters(), "from_seq": 1});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, field, rule) in [
        (
            json!({"client_certificate": "hello", "client_key": read(&client_key)}),
            "client_certificate",
            "not_a_certificate",
        ),
        (
            json!({"client_certificate": read(&client_pem), "client_key": "nope"}),
            "client_key",
            "not_a_private_key",
        ),
        (
            json!({"client_certificate": read(&client_pem), "client_key": read(&rogue_key)}),
            "client_key",
            "key_does_not_match",
        ),
        (
            json!({"client_certificate": read(&client_pem)}),
            "client_key",
            "required",
        ),
        (
            json!({"client_key": read(&client_key)}),
            "client_certificate",
            "required",
        ),
        (
            json!({"url": url.replace("https://", "http://"), "client_certificate": read(&client_pem), "client_key": read(&client_key)}),
            "client_certificate",
            "needs_tls",
        ),
    ] {
        let (status, body) = server.post("/api/v1/streams", &admin, &with(extra)).await;
        assert_invalid(status, &body, field, rule);
    }

    // Without a client certificate: the receiver refuses the handshake.
    let (status, plain) = server.post("/api/v1/streams", &admin, &base).await;
    assert_eq!(status, 201, "{plain}");
    let plain_id = plain["stream"]["id"].as_u64().unwrap();
    let got = test_event(&server, &admin, plain_id).await;
    assert_eq!(got["delivered"], false, "{got}");

    // With one of another CA: refused too.
    let (status, rogue) = server
        .post(
            "/api/v1/streams",
            &admin,
            &with(json!({"client_certificate": read(&rogue_pem), "client_key": read(&rogue_key)})),
        )
        .await;
    assert_eq!(status, 201, "{rogue}");
    let rogue_id = rogue["stream"]["id"].as_u64().unwrap();

    // With the receiver's CA's client certificate: delivered.
    let key_text = read(&client_key);
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &with(json!({"client_certificate": read(&client_pem), "client_key": key_text})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["stream"]["id"].as_u64().unwrap();
    assert_eq!(created["stream"]["client_certificate"], read(&client_pem));
    assert!(
        !created.to_string().contains("PRIVATE KEY"),
        "the key is never returned: {created}"
    );
    let got = test_event(&server, &admin, id).await;
    assert_eq!(got["delivered"], true, "{got}");

    send(&server, &account.ingest, 0..30).await;
    let want = api_seqs(&server, &account.read).await;
    wait_until(
        "every event over mutual TLS",
        Duration::from_secs(30),
        || body_seqs(&bodies.lock().unwrap()).len() >= want.len(),
    )
    .await;
    assert_eq!(
        body_seqs(&bodies.lock().unwrap()),
        want,
        "every event once, in order, delivered only by the stream with the certificate"
    );
    for other in [plain_id, rogue_id] {
        let got = last_error(&server, &admin, other).await;
        assert!(
            got["stream"]["last_error"]
                .as_str()
                .unwrap()
                .contains("no answer"),
            "{got}"
        );
        assert!(
            got["stream"]["cursor"].as_u64().unwrap() < want[0],
            "none of the events passed: {got}"
        );
    }
    assert!(refused.load(Ordering::SeqCst) >= 2);

    // Never returned, nor stored in clear, nor logged.
    let key_line = key_text.lines().nth(1).unwrap();
    let (_, listed) = server.get("/api/v1/streams", &admin).await;
    assert!(!listed.to_string().contains(key_line), "{listed}");
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes
                    .windows(key_line.len())
                    .any(|w| w == key_line.as_bytes()),
                "{} holds the client key in clear",
                path.display()
            );
        }
    }
    // The audit event shows the certificate's fingerprint, the key as not recorded.
    let (_, audit) = server
        .get(
            "/api/v1/events?limit=1000&event_type=Auditlog%20Log%20Stream",
            &account.read,
        )
        .await;
    let text = audit.to_string();
    assert!(
        text.contains("sha256:") && text.contains("[not recorded]"),
        "{text}"
    );
    assert!(!text.contains(key_line), "{text}");

    // PATCH: the certificate removed (null), the stream is refused again.
    let (status, changed) = patch(&server, &admin, id, &json!({"client_certificate": null})).await;
    assert_eq!(status, 200, "{changed}");
    assert!(
        changed["stream"].get("client_certificate").is_none(),
        "{changed}"
    );
    let got = test_event(&server, &admin, id).await;
    assert_eq!(got["delivered"], false, "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syslog_stream_over_tls_presents_its_client_certificate_to_rsyslog() {
    if rsyslogd().is_none() {
        eprintln!("SKIPPED: rsyslogd is not installed (apt-get install rsyslog rsyslog-gnutls)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let receiver_dir = dir.path().join("rsyslog");
    std::fs::create_dir_all(&receiver_dir).unwrap();
    let certs = certificates(&receiver_dir);
    let (client_pem, client_key) = client_certificate(&receiver_dir, "auditlog-client");
    let port = free_port();
    let rsyslog = Rsyslog::start_with(&receiver_dir, port, Some(certs.clone()), "x509/certvalid");

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ca_arg = certs.0.display().to_string();
    let server = TestServer::start_on(
        &data,
        &[
            "--stream-allow-private",
            "127.0.0.1/32",
            "--stream-tls-ca-file",
            &ca_arg,
        ],
    );
    let account = server.account("sys");
    let admin = admin_key(&server, "sys");
    let url = format!("tls://127.0.0.1:{port}");

    // Without a client certificate rsyslog refuses the connection.
    let (status, plain) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "syslog", "url": url, "filters": filters(), "from_seq": 1}),
        )
        .await;
    assert_eq!(status, 201, "{plain}");
    let plain_id = plain["stream"]["id"].as_u64().unwrap();
    let got = test_event(&server, &admin, plain_id).await;
    assert_eq!(got["delivered"], false, "{got}");

    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "syslog", "url": url, "filters": filters(), "from_seq": 1,
                    "client_certificate": read(&client_pem), "client_key": read(&client_key)}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["stream"]["id"].as_u64().unwrap();
    let got = test_event(&server, &admin, id).await;
    assert_eq!(got["delivered"], true, "{got}");

    send(&server, &account.ingest, 0..200).await;
    let want = api_seqs(&server, &account.read).await;
    // The test event (seq 0) and every event, from the stream with the certificate only.
    rsyslog.wait_for(want.len() + 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seqs = rsyslog.seqs();
    assert_eq!(seqs[0], 0, "the test event first");
    let mut delivered: Vec<u64> = Vec::new();
    for seq in &seqs[1..] {
        if !delivered.contains(seq) {
            delivered.push(*seq);
        }
    }
    assert_eq!(
        delivered, want,
        "every event, in order, once the certificate is presented"
    );
    assert_eq!(
        seqs.len(),
        want.len() + 1,
        "nothing from the stream without a certificate: {seqs:?}"
    );
    let got = last_error(&server, &admin, plain_id).await;
    assert!(
        got["stream"]["cursor"].as_u64().unwrap() < want[0],
        "none of the events passed: {got}"
    );
}

// ------------------------------------------------------------ syslog test event

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_event_of_a_syslog_stream_reaches_rsyslog_and_a_stopped_one_is_reported() {
    if rsyslogd().is_none() {
        eprintln!("SKIPPED: rsyslogd is not installed (apt-get install rsyslog rsyslog-gnutls)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let receiver_dir = dir.path().join("rsyslog");
    std::fs::create_dir_all(&receiver_dir).unwrap();
    let port = free_port();
    let mut rsyslog = Rsyslog::start(&receiver_dir, port, None);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = TestServer::start_on(&data, &["--stream-allow-private", "127.0.0.1/32"]);
    server.account("sys");
    let admin = admin_key(&server, "sys");
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "syslog", "url": format!("tcp://127.0.0.1:{port}"), "filters": filters()}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["stream"]["id"].as_u64().unwrap();

    let got = test_event(&server, &admin, id).await;
    assert_eq!(got["delivered"], true, "{got}");
    assert!(
        got["response"]
            .as_str()
            .unwrap()
            .contains("acknowledged every byte"),
        "{got}"
    );
    rsyslog.wait_for(1).await;
    let lines = rsyslog.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let (msgid, sd, msg) = &lines[0];
    assert_eq!(msgid, "AuditlogLogStream.Test");
    assert!(
        sd.starts_with("[auditlog@32473 account=\"sys\" seq=\"0\""),
        "{sd}"
    );
    let msg: Value = serde_json::from_str(msg).unwrap();
    assert_eq!(msg["test"], true);
    assert_eq!(msg["id"], got["event"]["id"]);
    // Not stored, not in the history.
    let got_stream = stream_state(&server, &admin, id).await;
    assert_eq!(got_stream["batches"], json!([]), "{got_stream}");
    let (_, page) = server.get("/api/v1/events?limit=10", &admin).await;
    assert!(
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] != "Test"),
        "{page}"
    );

    rsyslog.stop();
    let got = test_event(&server, &admin, id).await;
    assert_eq!(got["delivered"], false, "{got}");
    assert!(
        got["response"].as_str().unwrap().contains("cannot connect"),
        "{got}"
    );
}

// ------------------------------------------------------------ HEC index and sourcetype

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_splunk_hec_stream_sends_its_index_and_sourcetype_in_every_envelope() {
    let hec = Hec::start("tok-ix").await;
    hec.state.lock().unwrap().release = true;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(dir.path(), &["--stream-allow-private", "127.0.0.1/32"]);
    let account = server.account("ix");
    let admin = admin_key(&server, "ix");
    let base = json!({"kind": "splunk_hec", "url": hec.url, "token": "tok-ix", "filters": filters(), "from_seq": 1});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, field, rule) in [
        (json!({"index": "Main"}), "index", "invalid_index"),
        (json!({"index": "_internal"}), "index", "invalid_index"),
        (json!({"index": 7}), "index", "not_a_string"),
        (
            json!({"sourcetype": "a b"}),
            "sourcetype",
            "invalid_sourcetype",
        ),
        (
            json!({"sourcetype": "x".repeat(101)}),
            "sourcetype",
            "invalid_sourcetype",
        ),
    ] {
        let (status, body) = server.post("/api/v1/streams", &admin, &with(extra)).await;
        assert_invalid(status, &body, field, rule);
    }
    let (status, body) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": "http://127.0.0.1:9/hook", "index": "main"}),
        )
        .await;
    assert_invalid(status, &body, "index", "not_for_kind");

    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &with(json!({"index": "audit_main-2", "sourcetype": "auditlog:event"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["stream"]["index"], "audit_main-2");
    assert_eq!(created["stream"]["sourcetype"], "auditlog:event");
    let id = created["stream"]["id"].as_u64().unwrap();
    let got = test_event(&server, &admin, id).await;
    assert_eq!(got["delivered"], true, "{got}");

    send(&server, &account.ingest, 0..50).await;
    let want = api_seqs(&server, &account.read).await;
    let received = |hec: &Hec| {
        hec.events()
            .iter()
            .filter(|e| e["seq"].as_u64() != Some(0))
            .count()
    };
    wait_until(
        "every event at the collector",
        Duration::from_secs(30),
        || received(&hec) >= want.len(),
    )
    .await;
    {
        let state = hec.state.lock().unwrap();
        assert!(state.bad_envelopes.is_empty(), "{:?}", state.bad_envelopes);
        assert_eq!(
            state.envelopes.len(),
            want.len() + 1,
            "the test event and every event"
        );
        for envelope in &state.envelopes {
            assert_eq!(envelope["index"], "audit_main-2", "{envelope}");
            assert_eq!(envelope["sourcetype"], "auditlog:event", "{envelope}");
        }
    }

    // Changed: a new sourcetype, the index removed (the token's default).
    let (status, changed) = patch(
        &server,
        &admin,
        id,
        &json!({"index": null, "sourcetype": "audit"}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert!(changed["stream"].get("index").is_none(), "{changed}");
    assert_eq!(changed["stream"]["sourcetype"], "audit");
    let (status, body) = patch(&server, &admin, id, &json!({"index": "No Spaces"})).await;
    assert_invalid(status, &body, "index", "invalid_index");
    let got = test_event(&server, &admin, id).await;
    assert_eq!(got["delivered"], true, "{got}");
    let state = hec.state.lock().unwrap();
    let last = state.envelopes.last().unwrap();
    assert!(last.get("index").is_none(), "{last}");
    assert_eq!(last["sourcetype"], "audit");
}

// ------------------------------------------------------------ 413

/// A webhook receiver that answers 413 to bodies over `limit` bytes: its
/// URL, the seqs it took (in order) and the sizes it refused.
async fn limited_webhook(limit: usize) -> (String, Arc<Mutex<Vec<u64>>>, Arc<Mutex<Vec<usize>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seqs: Arc<Mutex<Vec<u64>>> = Arc::default();
    let refused: Arc<Mutex<Vec<usize>>> = Arc::default();
    let (taken, refusals) = (seqs.clone(), refused.clone());
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let taken = taken.clone();
                let refusals = refusals.clone();
                async move {
                    if body.len() > limit {
                        refusals.lock().unwrap().push(body.len());
                        return StatusCode::PAYLOAD_TOO_LARGE;
                    }
                    let events: Vec<Value> = serde_json::from_slice(&body).unwrap();
                    taken
                        .lock()
                        .unwrap()
                        .extend(events.iter().map(|e| e["seq"].as_u64().unwrap()));
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(16 << 20));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seqs, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_a_receiver_refuses_with_413_are_split_until_every_event_is_delivered_in_order() {
    const LIMIT: usize = 6_000;
    let (url, seqs, refused) = limited_webhook(LIMIT).await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(dir.path(), &["--stream-allow-private", "127.0.0.1/32"]);
    let account = server.account("big");
    let admin = admin_key(&server, "big");
    // A backlog first: the first batch holds every event (far over the limit).
    send(&server, &account.ingest, 0..300).await;
    let (status, created) = server
        .post(
            "/api/v1/streams",
            &admin,
            &json!({"kind": "webhook", "url": url, "filters": filters(), "from_seq": 1}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["stream"]["id"].as_u64().unwrap();
    send(&server, &account.ingest, 300..400).await;
    let want = api_seqs(&server, &account.read).await;
    wait_until(
        "every event through the 413s",
        Duration::from_secs(60),
        || seqs.lock().unwrap().len() >= want.len(),
    )
    .await;
    assert_eq!(*seqs.lock().unwrap(), want, "every event once, in order");
    assert!(
        refused.lock().unwrap().iter().any(|n| *n > LIMIT),
        "the receiver did refuse batches"
    );
    let got = stream_state(&server, &admin, id).await;
    assert_eq!(got["stream"]["status"], "active", "{got}");
    let series = r#"auditlog_stream_failures_total{kind="webhook",reason="too_large"}"#;
    assert!(metric(&server, series).await >= 1.0, "the 413s are counted");

    // A single event over the limit: the stream shows failing, naming 413 and the size.
    let (status, body) = server
        .post(
            "/api/v1/events",
            &account.ingest,
            &json!({"events": [{"id": "huge", "event_type": "Test Case", "action": "Update",
                "actor": {"id": "u-1"}, "target": {"id": "T-1"},
                "details": {"note": "x".repeat(LIMIT + 500)}}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let huge = api_seqs(&server, &account.read)
        .await
        .last()
        .copied()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = stream_state(&server, &admin, id).await;
        if got["stream"]["status"] == "failing" {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "the stream did not turn failing: {got}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let error = got["stream"]["last_error"].as_str().unwrap();
    assert!(
        error.contains("413") && error.contains("bytes") && error.contains(&format!("seq {huge}")),
        "{error}"
    );
    assert_eq!(
        got["stream"]["cursor"],
        huge - 1,
        "it keeps its place: {got}"
    );
    assert_eq!(
        seqs.lock().unwrap().len(),
        want.len(),
        "nothing more delivered"
    );
}

// ------------------------------------------------------------ CLI over https

/// A TLS proxy on 127.0.0.1 in front of `upstream` (host:port), with the
/// certificate `cert`/`key`: its `https://` base URL.
async fn tls_proxy(upstream: String, cert: &Path, key: &Path) -> String {
    let acceptor = tokio_rustls::TlsAcceptor::from(server_tls(cert, key, None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_tail_and_monitor_reach_a_server_over_https_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let server = TestServer::start();
    let account = server.account("tls");
    let upstream = server.base.trim_start_matches("http://").to_string();
    let base = tls_proxy(upstream, &cert, &key).await;
    let ca_arg = ca.display().to_string();

    // tail, watching from the start.
    let mut tail = crate::helpers::KillOnDrop(
        Command::new(BIN)
            .args([
                "tail",
                "--url",
                &base,
                "--key",
                &account.read,
                "--ca-file",
                &ca_arg,
            ])
            .args(["--after-seq", "0"])
            .env_remove("AUDITLOG_URL")
            .env_remove("AUDITLOG_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let tail_out = tail.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(tail_out).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });

    // send, over https.
    let lines: String = (0..20)
        .map(|i| {
            format!(
                "{}\n",
                json!({"id": format!("h-{i}"), "event_type": "Test Case", "action": "Create",
                       "actor": {"id": "u-1"}, "target": {"id": "TC-1"}})
            )
        })
        .collect();
    let run_send = |extra: &[&str]| {
        let mut child = Command::new(BIN)
            .args(["send", "--url", &base, "--key", &account.ingest])
            .args(["--namespace", "https-test"])
            .args(extra)
            .env_remove("AUDITLOG_URL")
            .env_remove("AUDITLOG_KEY")
            .env_remove("AUDITLOG_CA_FILE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    // Without the CA the certificate is refused.
    let out = run_send(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("certificate") || stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
    let (_, page) = server.get("/api/v1/events", &account.read).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 0, "nothing sent");
    let out = run_send(&["--ca-file", &ca_arg]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, page) = server.get("/api/v1/events?limit=100", &account.read).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 20, "{page}");

    // tail printed each event, in order.
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("tail prints each event within 30 s");
        let event: Value = serde_json::from_str(&line).unwrap();
        seen.push(event["seq"].as_u64().unwrap());
    }
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    drop(tail);

    // monitor, one round over https.
    let vkey = reqwest::get(server.url("/api/v1/public-key"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .trim()
        .to_string();
    let (status, _) = server.get("/api/v1/events/h-19/proof", &account.read).await;
    assert_eq!(status, 200);
    let state = dir.path().join("tls.checkpoint");
    let out = Command::new(BIN)
        .args(["monitor", "--once", "--url", &base, "--key", &account.read])
        .args([
            "--account",
            &account.name,
            "--vkey",
            &vkey,
            "--ca-file",
            &ca_arg,
        ])
        .arg("--state")
        .arg(&state)
        .env_remove("AUDITLOG_URL")
        .env_remove("AUDITLOG_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verified size 20"), "{stdout}");
}
