//! `/metrics` scraped from the real binary after known traffic: the text
//! format is well formed (every sample's family has HELP and TYPE,
//! histogram buckets are cumulative and `_count` is the `+Inf` bucket),
//! the counts are exactly what was sent, and no label value carries an
//! account, key, user, event id or raw URI.

use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: the samples, and the HELP and TYPE of each family.
struct Exposition {
    samples: Vec<Sample>,
    types: HashMap<String, String>,
}

impl Exposition {
    /// Parses the text format 0.0.4, failing the test on any malformed line.
    fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        let mut helps = HashMap::new();
        let mut types: HashMap<String, String> = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP with text");
                assert!(!help.trim().is_empty(), "empty HELP: {line}");
                assert!(
                    helps.insert(name.to_string(), ()).is_none(),
                    "two HELPs for {name}"
                );
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE with a type");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "unknown type: {line}"
                );
                assert!(
                    !samples
                        .iter()
                        .any(|s: &Sample| family_of(&s.name, &types) == name),
                    "TYPE of {name} after its samples"
                );
                assert!(types.insert(name.to_string(), kind.to_string()).is_none());
                continue;
            }
            assert!(!line.starts_with('#'), "unknown comment line: {line}");
            assert!(!line.trim().is_empty(), "blank line in the exposition");
            samples.push(parse_sample(line));
        }
        for sample in &samples {
            let family = family_of(&sample.name, &types);
            assert!(types.contains_key(&family), "no TYPE for {}", sample.name);
            assert!(helps.contains_key(&family), "no HELP for {}", sample.name);
        }
        let exposition = Self { samples, types };
        exposition.check_histograms();
        exposition
    }

    /// Every histogram series: buckets ascending by `le`, counts cumulative,
    /// the last one `+Inf`, and `_count` equal to it, with a `_sum`.
    fn check_histograms(&self) {
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
            for sample in self.named(&format!("{family}_bucket")) {
                let mut labels = sample.labels.clone();
                let le = labels.remove("le").expect("a bucket without le");
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("numeric le")
                };
                series
                    .entry(labels)
                    .or_default()
                    .push((bound, sample.value));
            }
            for (labels, buckets) in series {
                for pair in buckets.windows(2) {
                    assert!(
                        pair[0].0 < pair[1].0,
                        "{family} {labels:?}: le not ascending"
                    );
                    assert!(
                        pair[0].1 <= pair[1].1,
                        "{family} {labels:?}: not cumulative"
                    );
                }
                let (last_bound, inf_count) = *buckets.last().unwrap();
                assert_eq!(
                    last_bound,
                    f64::INFINITY,
                    "{family} {labels:?}: no +Inf bucket"
                );
                let count = self.value(&format!("{family}_count"), &labels);
                assert_eq!(
                    count,
                    Some(inf_count),
                    "{family} {labels:?}: _count != +Inf"
                );
                assert!(
                    self.value(&format!("{family}_sum"), &labels).is_some(),
                    "{family} {labels:?}: no _sum"
                );
            }
        }
    }

    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the sample with exactly these labels.
    fn value(&self, name: &str, labels: &BTreeMap<String, String>) -> Option<f64> {
        self.named(name)
            .find(|s| &s.labels == labels)
            .map(|s| s.value)
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.value(name, &labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }
}

/// The family a sample belongs to: histograms' `_bucket`, `_sum` and
/// `_count` series belong to the histogram's name.
fn family_of(name: &str, types: &HashMap<String, String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|t| t == "histogram") {
                return base.to_string();
            }
        }
    }
    name.to_string()
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line}"));
    let name = &line[..name_end];
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit()),
        "bad metric name: {line}"
    );
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let end = loop {
            let (start, c) = chars
                .next()
                .unwrap_or_else(|| panic!("open labels: {line}"));
            if c == '}' {
                break start + 1;
            }
            let mut key = String::from(c);
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            assert!(
                key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bad label name {key:?}: {line}"
            );
            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "unquoted: {line}");
            let mut value = String::new();
            loop {
                match chars
                    .next()
                    .unwrap_or_else(|| panic!("open value: {line}"))
                    .1
                {
                    '"' => break,
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(c @ ('\\' | '"')) => value.push(c),
                        other => panic!("bad escape {other:?}: {line}"),
                    },
                    c => value.push(c),
                }
            }
            assert!(
                labels.insert(key, value).is_none(),
                "repeated label: {line}"
            );
            match chars.next() {
                Some((_, ',')) => {}
                Some((i, '}')) => break i + 1,
                other => panic!("unexpected {other:?} in labels: {line}"),
            }
        };
        rest = &after[end..];
    }
    let value_text = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value: {line}"));
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        text => text
            .parse()
            .unwrap_or_else(|_| panic!("bad value {text:?}: {line}")),
    };
    Sample {
        name: name.to_string(),
        labels,
        value,
    }
}

fn event(id: &str) -> Value {
    json!({"id": id, "event_type": "Test Case", "action": "Update",
           "actor": {"id": "u-metrics-secret", "name": "Grace Metrics", "email": "grace@metrics.test"},
           "project": "Checkout", "target": {"id": "TC-77"}})
}

async fn scrape(server: &TestServer) -> (String, String) {
    let response = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_exactly_what_was_sent_with_bounded_labels() {
    let server = TestServer::start();
    let acme = server.account("tenant-zebra-metrics");
    let ingest = "/api/v1/events";

    // Accepted: one event, a batch of three, the first again (idempotent).
    let (status, body) = server.post(ingest, &acme.ingest, &event("ev-one-1")).await;
    assert_eq!(status, 201, "{body}");
    let batch = json!({"events": [event("ev-batch-1"), event("ev-batch-2"), event("ev-batch-3")]});
    assert_eq!(server.post(ingest, &acme.ingest, &batch).await.0, 201);
    assert_eq!(
        server
            .post(ingest, &acme.ingest, &event("ev-one-1"))
            .await
            .0,
        200
    );

    // Rejected: three invalid, two unauthorized, one too large.
    let mut invalid = event("ev-bad-1");
    invalid["action"] = json!("Explode");
    assert_eq!(server.post(ingest, &acme.ingest, &invalid).await.0, 422);
    let half_bad = json!({"events": [event("ev-bad-2"), invalid]});
    assert_eq!(server.post(ingest, &acme.ingest, &half_bad).await.0, 422);
    let malformed = server
        .http
        .post(server.url(ingest))
        .bearer_auth(&acme.ingest)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);
    let unknown_key = "alk_thisisnotakeyatall0000000000000000000";
    assert_eq!(
        server.post(ingest, unknown_key, &event("ev-x")).await.0,
        401
    );
    assert_eq!(server.post(ingest, &acme.read, &event("ev-y")).await.0, 403);
    let too_many: Vec<Value> = (0..1_001).map(|i| event(&format!("ev-many-{i}"))).collect();
    let (status, _) = server
        .post(ingest, &acme.ingest, &json!({"events": too_many}))
        .await;
    assert_eq!(status, 413);

    // Queries: a first page, a filtered page, one event, a histogram.
    let (status, page) = server.get("/api/v1/events?limit=2", &acme.read).await;
    assert_eq!(status, 200);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    assert_eq!(
        server
            .get(
                &format!("/api/v1/events?limit=2&cursor={cursor}"),
                &acme.read
            )
            .await
            .0,
        200
    );
    let filtered = "/api/v1/events?user=u-metrics-secret&project=Checkout";
    assert_eq!(server.get(filtered, &acme.read).await.0, 200);
    assert_eq!(
        server.get("/api/v1/events/ev-batch-2", &acme.read).await.0,
        200
    );
    assert_eq!(
        server
            .get("/api/v1/events/histogram?interval=hour", &acme.read)
            .await
            .0,
        200
    );
    assert_eq!(
        server.get("/api/v1/no-such/ev-batch-3", &acme.read).await.0,
        404
    );

    // An export, run to completion by the worker.
    let (status, created) = server
        .post("/api/v1/exports", &acme.read, &json!({"format": "csv"}))
        .await;
    assert_eq!(status, 202, "{created}");
    let export_path = format!("/api/v1/exports/{}", created["export"]["id"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = server.get(&export_path, &acme.read).await;
        assert_eq!(status, 200, "{body}");
        if body["export"]["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "export not completed: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A checkpoint, signed on demand.
    let checkpoint = server
        .http
        .get(server.url("/api/v1/checkpoint"))
        .bearer_auth(&acme.read)
        .send()
        .await
        .unwrap();
    assert_eq!(checkpoint.status().as_u16(), 200);

    let (content_type, text) = scrape(&server).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let metrics = Exposition::parse(&text);

    // Events: 1 + 3 new, 1 repeat.
    assert_eq!(metrics.get("auditlog_events_accepted_total", &[]), 5.0);
    assert_eq!(metrics.get("auditlog_events_stored_total", &[]), 4.0);
    assert_eq!(metrics.get("auditlog_events_repeated_total", &[]), 1.0);
    for (reason, count) in [
        ("invalid", 3.0),
        ("unauthorized", 2.0),
        ("too_large", 1.0),
        ("conflict", 0.0),
        ("rate_limited", 0.0),
        ("unavailable", 0.0),
        ("internal", 0.0),
        ("other", 0.0),
    ] {
        assert_eq!(
            metrics.get("auditlog_ingest_rejected_total", &[("reason", reason)]),
            count,
            "rejected for {reason}"
        );
    }
    // Three accepted requests of 1, 3 and 1 events.
    assert_eq!(metrics.get("auditlog_ingest_batch_events_count", &[]), 3.0);
    assert_eq!(metrics.get("auditlog_ingest_batch_events_sum", &[]), 5.0);
    assert_eq!(
        metrics.get("auditlog_ingest_batch_events_bucket", &[("le", "1")]),
        2.0
    );
    assert_eq!(
        metrics.get("auditlog_ingest_batch_events_bucket", &[("le", "5")]),
        3.0
    );

    // The writer committed the three accepted requests and the export's
    // audit event, each in a group of its own (they came one after another).
    let commits = metrics.get("auditlog_writer_commit_seconds_count", &[]);
    assert!(commits >= 4.0, "{commits} commits observed");
    assert!(metrics.get("auditlog_writer_commit_seconds_sum", &[]) > 0.0);
    assert_eq!(
        metrics.get("auditlog_writer_commit_failures_total", &[]),
        0.0
    );
    assert_eq!(metrics.get("auditlog_writer_queue_depth", &[]), 0.0);

    // Latency per route template, method and status class.
    let route_count = |route: &str, method: &str, status: &str| {
        metrics.get(
            "auditlog_http_request_duration_seconds_count",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(route_count("/api/v1/events", "POST", "2xx"), 3.0);
    assert_eq!(route_count("/api/v1/events", "POST", "4xx"), 6.0);
    assert_eq!(route_count("/api/v1/events", "GET", "2xx"), 3.0);
    assert_eq!(route_count("/api/v1/events/{id}", "GET", "2xx"), 1.0);
    assert_eq!(route_count("/api/v1/events/histogram", "GET", "2xx"), 1.0);
    assert_eq!(route_count("/api/v1/exports", "POST", "2xx"), 1.0);
    assert!(route_count("/api/v1/exports/{id}", "GET", "2xx") >= 1.0);
    assert_eq!(route_count("/api/v1/checkpoint", "GET", "2xx"), 1.0);
    assert_eq!(route_count("unmatched", "GET", "4xx"), 1.0);

    // Exports per status, read from the store.
    for (status, count) in [
        ("queued", 0.0),
        ("running", 0.0),
        ("completed", 1.0),
        ("failed", 0.0),
        ("expired", 0.0),
    ] {
        assert_eq!(
            metrics.get("auditlog_export_jobs", &[("status", status)]),
            count,
            "exports {status}"
        );
    }
    let age = metrics.get("auditlog_checkpoint_age_seconds", &[]);
    assert!((0.0..120.0).contains(&age), "checkpoint age {age}");

    // Bounded cardinality: routes are templates; nothing a client sent.
    let templates = [
        "/api/v1/events",
        "/api/v1/events/{id}",
        "/api/v1/events/histogram",
        "/api/v1/exports",
        "/api/v1/exports/{id}",
        "/api/v1/checkpoint",
        "unmatched",
    ];
    let forbidden = [
        acme.name.as_str(),
        acme.ingest.as_str(),
        acme.read.as_str(),
        unknown_key,
        "u-metrics-secret",
        "Grace",
        "grace@metrics.test",
        "ev-",
        "Checkout",
        "TC-77",
        "?",
        "no-such",
    ];
    for sample in &metrics.samples {
        for (label, value) in &sample.labels {
            for secret in forbidden {
                assert!(
                    !value.contains(secret),
                    "{}{{{label}={value:?}}} holds {secret:?}",
                    sample.name
                );
            }
            if label == "route" {
                assert!(templates.contains(&value.as_str()), "route {value:?}");
            }
        }
    }
    for secret in [acme.ingest.as_str(), acme.read.as_str(), acme.name.as_str()] {
        assert!(!text.contains(secret), "the exposition holds {secret:?}");
    }
}

/// A fresh server exposes every family, counts at zero; a scrape is timed
/// like any request, so the second scrape shows the first.
#[tokio::test]
async fn a_fresh_server_exposes_every_family_with_zero_counts() {
    let server = TestServer::start();
    let (_, first) = scrape(&server).await;
    let metrics = Exposition::parse(&first);
    assert_eq!(metrics.get("auditlog_events_accepted_total", &[]), 0.0);
    assert_eq!(metrics.get("auditlog_ingest_batch_events_count", &[]), 0.0);
    assert_eq!(
        metrics.get("auditlog_writer_commit_seconds_count", &[]),
        0.0
    );
    assert_eq!(
        metrics.get("auditlog_export_jobs", &[("status", "queued")]),
        0.0
    );
    for family in [
        "auditlog_events_accepted_total",
        "auditlog_ingest_rejected_total",
        "auditlog_ingest_batch_events",
        "auditlog_writer_queue_depth",
        "auditlog_writer_commit_seconds",
        "auditlog_http_request_duration_seconds",
        "auditlog_export_jobs",
        "auditlog_checkpoint_age_seconds",
    ] {
        assert!(metrics.types.contains_key(family), "no TYPE for {family}");
    }
    let (_, second) = scrape(&server).await;
    let metrics = Exposition::parse(&second);
    assert_eq!(
        metrics.get(
            "auditlog_http_request_duration_seconds_count",
            &[("route", "/metrics"), ("method", "GET"), ("status", "2xx")]
        ),
        1.0
    );
}

/// The checker above is not vacuous: each rule it enforces fails a broken text.
#[test]
fn the_checker_refuses_malformed_expositions() {
    let histogram = "# HELP h A histogram.\n# TYPE h histogram\n";
    let broken = [
        ("no TYPE", "# HELP c Count.\nc 1\n".to_string()),
        ("no HELP", "# TYPE c counter\nc 1\n".to_string()),
        ("not a sample", "# HELP c Count.\n# TYPE c counter\nc{x=\"1\" 1\n".to_string()),
        ("bad value", "# HELP c Count.\n# TYPE c counter\nc one\n".to_string()),
        (
            "not cumulative",
            format!("{histogram}h_bucket{{le=\"1\"}} 2\nh_bucket{{le=\"+Inf\"}} 1\nh_sum 1\nh_count 1\n"),
        ),
        (
            "count is not +Inf",
            format!("{histogram}h_bucket{{le=\"1\"}} 1\nh_bucket{{le=\"+Inf\"}} 2\nh_sum 1\nh_count 3\n"),
        ),
        (
            "no +Inf",
            format!("{histogram}h_bucket{{le=\"1\"}} 1\nh_sum 1\nh_count 1\n"),
        ),
    ];
    for (what, text) in broken {
        let parsed = std::panic::catch_unwind(|| Exposition::parse(&text));
        assert!(parsed.is_err(), "accepted an exposition with {what}");
    }
    let good = format!(
        "{histogram}h_bucket{{route=\"/a\\\"b\",le=\"1\"}} 1\nh_bucket{{route=\"/a\\\"b\",le=\"+Inf\"}} 2\nh_sum{{route=\"/a\\\"b\"}} 3.5\nh_count{{route=\"/a\\\"b\"}} 2\n"
    );
    let parsed = Exposition::parse(&good);
    assert_eq!(parsed.get("h_count", &[("route", "/a\"b")]), 2.0);
}

/// Answers made outside the ingest handler count too: the per-key rate
/// limit's 429 is a `rate_limited` rejection, and its latency is recorded.
#[tokio::test]
async fn a_rate_limited_ingest_counts_as_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(
        dir.path(),
        &["--rate-limit-per-second", "1", "--rate-limit-burst", "1"],
    );
    let acme = server.account("acme");
    let statuses = [
        server
            .post("/api/v1/events", &acme.ingest, &event("ev-rl-1"))
            .await
            .0,
        server
            .post("/api/v1/events", &acme.ingest, &event("ev-rl-2"))
            .await
            .0,
    ];
    assert_eq!(statuses, [201, 429]);
    let (_, text) = scrape(&server).await;
    let metrics = Exposition::parse(&text);
    assert_eq!(
        metrics.get(
            "auditlog_ingest_rejected_total",
            &[("reason", "rate_limited")]
        ),
        1.0
    );
    assert_eq!(metrics.get("auditlog_events_accepted_total", &[]), 1.0);
    assert_eq!(
        metrics.get(
            "auditlog_http_request_duration_seconds_count",
            &[
                ("route", "/api/v1/events"),
                ("method", "POST"),
                ("status", "4xx")
            ]
        ),
        1.0
    );
}
