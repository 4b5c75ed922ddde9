//! `/metrics` scraped from the real binary after known traffic: the text
//! format is well formed (every sample's family has HELP and TYPE,
//! histogram buckets are cumulative and `_count` is the `+Inf` bucket),
//! the counts are exactly what was sent, and no label value carries an
//! account, key, user, event id or raw URI.

use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The families the binary exposed before the move to the `metrics`
/// facade: dashboards are built on these names, types and label sets.
const FAMILIES: &str = include_str!("../fixtures/metrics-families.txt");

/// The lines of [`FAMILIES`] without its comments.
fn committed_families() -> Vec<&'static str> {
    FAMILIES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
}

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape, read strictly: every line is a `# HELP`, a `# TYPE` or a
/// sample of a family typed before it; anything else fails the test.
struct Exposition {
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        let mut types = BTreeMap::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE with a type");
                assert!(
                    ["counter", "gauge", "histogram"].contains(&kind),
                    "unexpected type: {line}"
                );
                assert!(types.insert(name.to_string(), kind.to_string()).is_none());
            } else if !line.starts_with("# HELP ") {
                let sample = parse_sample(line);
                let family = family_of(&sample.name, &types);
                assert!(types.contains_key(&family), "no TYPE before {line}");
                samples.push(sample);
            }
        }
        let exposition = Self { samples, types };
        exposition.check_histograms();
        exposition
    }

    /// Each histogram series: cumulative buckets ending at `+Inf`, whose
    /// count `_count` repeats, and a `_sum` (a summary would have none).
    fn check_histograms(&self) {
        for (family, _) in self.types.iter().filter(|(_, t)| *t == "histogram") {
            let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
            for sample in self
                .samples
                .iter()
                .filter(|s| s.name == format!("{family}_bucket"))
            {
                let mut labels = sample.labels.clone();
                let le = labels.remove("le").expect("a bucket without le");
                let bound: f64 = le.parse().expect("numeric le");
                series
                    .entry(labels)
                    .or_default()
                    .push((bound, sample.value));
            }
            for (labels, buckets) in series {
                assert!(
                    buckets
                        .windows(2)
                        .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                    "{family} {labels:?}: buckets not ascending and cumulative"
                );
                let (last_bound, inf_count) = buckets[buckets.len() - 1];
                assert_eq!(last_bound, f64::INFINITY, "{family} {labels:?}: no +Inf");
                assert_eq!(
                    self.value(&format!("{family}_count"), &labels),
                    Some(inf_count)
                );
                assert!(self.value(&format!("{family}_sum"), &labels).is_some());
            }
        }
    }

    /// Name, type and label names (without `le`) of every family, in the
    /// format of `fixtures/metrics-families.txt`.
    fn families(&self) -> Vec<String> {
        self.types
            .iter()
            .map(|(family, kind)| {
                let mut names: Vec<&str> = self
                    .samples
                    .iter()
                    .filter(|s| &family_of(&s.name, &self.types) == family)
                    .flat_map(|s| s.labels.keys().map(String::as_str))
                    .filter(|label| *label != "le")
                    .collect();
                names.sort_unstable();
                names.dedup();
                let names = if names.is_empty() {
                    "-".to_string()
                } else {
                    names.join(",")
                };
                format!("{family} {kind} {names}")
            })
            .collect()
    }

    /// The value of the sample with exactly these labels.
    fn value(&self, name: &str, labels: &BTreeMap<String, String>) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name && &s.labels == labels)
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
fn family_of(name: &str, types: &BTreeMap<String, String>) -> String {
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|suffix| name.strip_suffix(suffix))
        .find(|base| types.get(*base).is_some_and(|t| t == "histogram"))
        .unwrap_or(name)
        .to_string()
}

/// `name{key="value",…} value`; our label values hold no `",`, so a plain
/// split finds the pairs, and every piece must then be a well-formed pair.
fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
    let value = match value {
        "+Inf" => f64::INFINITY,
        text => text.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
    };
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let pairs = rest.strip_suffix("\"}").expect("labels end with \"}");
            let labels = pairs
                .split("\",")
                .map(|pair| {
                    let (key, value) = pair.split_once("=\"").expect("label=\"value\"");
                    assert!(is_name(key) && !value.contains('"'), "bad label: {line}");
                    (key.to_string(), value.to_string())
                })
                .collect();
            (name, labels)
        }
        None => (series, BTreeMap::new()),
    };
    assert!(is_name(name), "bad metric name: {line}");
    Sample {
        name: name.to_string(),
        labels,
        value,
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
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
    // Every family a dashboard may read, with today's type and label names.
    let expected: Vec<&str> = FAMILIES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(
        metrics.families(),
        expected,
        "the families of /metrics changed"
    );

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

/// A fresh server exposes every family whose series are known in advance,
/// counts at zero. Request latencies appear with the first request, as the
/// exporter shows no family without a series: a scrape is timed like any
/// request, so the second scrape shows the first. The checkpoint age
/// appears with the first checkpoint.
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
        metrics.get("auditlog_ingest_rejected_total", &[("reason", "other")]),
        0.0
    );
    assert_eq!(metrics.get("auditlog_writer_queue_depth", &[]), 0.0);
    assert_eq!(
        metrics.get("auditlog_export_jobs", &[("status", "queued")]),
        0.0
    );
    let (_, second) = scrape(&server).await;
    let metrics = Exposition::parse(&second);
    assert_eq!(
        metrics.get(
            "auditlog_http_request_duration_seconds_count",
            &[("route", "/metrics"), ("method", "GET"), ("status", "2xx")]
        ),
        1.0
    );
    let mut expected = committed_families();
    expected.retain(|l| !l.starts_with("auditlog_checkpoint_age_seconds "));
    assert_eq!(metrics.families(), expected);
}

/// The checker above is not vacuous: each rule it enforces fails a broken text.
#[test]
fn the_checker_refuses_malformed_expositions() {
    let histogram = "# HELP h A histogram.\n# TYPE h histogram\n";
    let broken = [
        ("no TYPE", "# HELP c Count.\nc 1\n".to_string()),
        ("not a sample", "# HELP c Count.\n# TYPE c counter\nc{x=\"1\" 1\n".to_string()),
        ("bad value", "# HELP c Count.\n# TYPE c counter\nc one\n".to_string()),
        ("a summary", "# TYPE s summary\ns{quantile=\"0.5\"} 1\n".to_string()),
        ("a quote in a label", "# TYPE c counter\nc{x=\"a\"b\"} 1\n".to_string()),
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
        "{histogram}h_bucket{{route=\"/a/{{id}}\",le=\"1\"}} 1\nh_bucket{{route=\"/a/{{id}}\",le=\"+Inf\"}} 2\nh_sum{{route=\"/a/{{id}}\"}} 3.5\nh_count{{route=\"/a/{{id}}\"}} 2\n"
    );
    let parsed = Exposition::parse(&good);
    assert_eq!(parsed.get("h_count", &[("route", "/a/{id}")]), 2.0);
    assert_eq!(parsed.families(), vec!["h histogram route"]);
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
