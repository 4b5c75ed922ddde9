//! Prometheus metrics: what the server counts while it works (`Metrics`),
//! the per-route latency middleware (`track_requests`), and `/metrics`
//! rendered in the text exposition format 0.0.4 (`render`), which also
//! reads at scrape time what others keep: the store's group-commit
//! statistics, export jobs per status, and the signer's newest checkpoint.
//!
//! Every label takes values from a small fixed set (reason classes, route
//! templates, methods, status classes, export statuses), never from a
//! request: no account, key, user, event id or raw URI, so the number of
//! series stays bounded whatever clients send.
//!
//! The counter and histogram types are a few atomics each; the prometheus
//! crate would bring a registry and its dependencies for what they do here.

use crate::signer::CheckpointSigner;
use auditlog_core::Timestamp;
use auditlog_store::group_commit::{GroupCommitSnapshot, COMMIT_SECONDS_BUCKETS};
use auditlog_store::{ExportStatus, Store};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The ingest route: its error answers are the rejected ingest requests.
pub const INGEST_ROUTE: &str = "/api/v1/events";

/// Request latency buckets (seconds): first pages take a few milliseconds,
/// histograms over a big account and batch ingest up to seconds.
pub const REQUEST_SECONDS_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Events per ingest request: single events up to the largest batch (1,000).
pub const BATCH_EVENTS_BUCKETS: [f64; 10] =
    [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Observations counted in fixed buckets, with their sum. Bucket counts are
/// kept per bucket (not cumulative), so an observation is one increment;
/// rendering accumulates them.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One slot per bound, then one for values above every bound.
    buckets: Box<[AtomicU64]>,
    /// The sum of observations, as the bits of an `f64`.
    sum_bits: AtomicU64,
}

/// A histogram's counts at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub bounds: &'static [f64],
    /// Per bucket, not cumulative; one more than `bounds` (the `+Inf` rest).
    pub buckets: Vec<u64>,
    pub sum: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, value: f64) {
        let slot = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        // The closure always returns Some, so the update cannot fail.
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum: f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
        }
    }
}

/// Why an ingest request was refused, as a small fixed set of classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Malformed JSON, not JSON, or events breaking a rule (400, 415, 422).
    Invalid,
    /// Over the body size or the batch size (413).
    TooLarge,
    /// No key, a bad key or a key without the ingest scope (401, 403).
    Unauthorized,
    /// An id already stored with other content (409).
    Conflict,
    /// Over the key's rate limit (429).
    RateLimited,
    /// Storage unavailable or the request timed out (408, 503, 504).
    Unavailable,
    /// Any other server error (5xx).
    Internal,
    /// Any other client error (404, 405, …).
    Other,
}

impl RejectReason {
    pub const ALL: [RejectReason; 8] = [
        Self::Invalid,
        Self::TooLarge,
        Self::Unauthorized,
        Self::Conflict,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
        Self::Other,
    ];

    /// The class of an error answer.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 | 415 | 422 => Self::Invalid,
            413 => Self::TooLarge,
            401 | 403 => Self::Unauthorized,
            409 => Self::Conflict,
            429 => Self::RateLimited,
            408 | 503 | 504 => Self::Unavailable,
            500..=599 => Self::Internal,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::TooLarge => "too_large",
            Self::Unauthorized => "unauthorized",
            Self::Conflict => "conflict",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::Other => "other",
        }
    }
}

/// One series of the request-latency histogram.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RouteKey {
    /// The route template (`/api/v1/events/{id}`), or `unmatched`.
    route: String,
    method: &'static str,
    status: &'static str,
}

/// What the server counts while it works; read by [`render`].
#[derive(Debug)]
pub struct Metrics {
    /// Events newly stored.
    pub events_stored: Counter,
    /// Events acknowledged as idempotent repeats of stored ones.
    pub events_repeated: Counter,
    /// Ingest requests answered with an error, per `RejectReason::ALL` slot.
    ingest_rejected: [Counter; RejectReason::ALL.len()],
    /// Events per accepted ingest request.
    batch_events: Histogram,
    requests: RwLock<HashMap<RouteKey, Histogram>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            events_stored: Counter::default(),
            events_repeated: Counter::default(),
            ingest_rejected: Default::default(),
            batch_events: Histogram::new(&BATCH_EVENTS_BUCKETS),
            requests: RwLock::default(),
        }
    }
}

impl Metrics {
    /// An ingest request was acknowledged: `events` in it, `created` of them new.
    pub fn ingest_accepted(&self, events: usize, created: usize) {
        self.events_stored.add(created as u64);
        self.events_repeated
            .add((events - created.min(events)) as u64);
        self.batch_events.observe(events as f64);
    }

    pub fn ingest_rejected(&self, reason: RejectReason) {
        if let Some(slot) = RejectReason::ALL.iter().position(|r| *r == reason) {
            self.ingest_rejected[slot].add(1);
        }
    }

    pub fn rejected_count(&self, reason: RejectReason) -> u64 {
        RejectReason::ALL
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |slot| self.ingest_rejected[slot].get())
    }

    /// One answered request; `route` is the matched route template, `None`
    /// when no route matched (the 404 fallback).
    pub fn record_request(
        &self,
        route: Option<&str>,
        method: &Method,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let key = RouteKey {
            route: route.unwrap_or("unmatched").to_string(),
            method: method_label(method),
            status: status_class(status),
        };
        if route == Some(INGEST_ROUTE)
            && *method == Method::POST
            && (status.is_client_error() || status.is_server_error())
        {
            self.ingest_rejected(RejectReason::from_status(status));
        }
        let seconds = elapsed.as_secs_f64();
        if let Ok(series) = self.requests.read() {
            if let Some(histogram) = series.get(&key) {
                histogram.observe(seconds);
                return;
            }
        }
        if let Ok(mut series) = self.requests.write() {
            series
                .entry(key)
                .or_insert_with(|| Histogram::new(&REQUEST_SECONDS_BUCKETS))
                .observe(seconds);
        }
    }
}

/// Methods outside the standard set share one label value, so that a
/// client inventing methods cannot add series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The middleware (`Router::layer`) that times every request until its
/// response head is ready (a streamed download's body is not included) and
/// labels it with the route template, never the URI.
pub async fn track_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.record_request(
        route.as_deref(),
        &method,
        response.status(),
        started.elapsed(),
    );
    response
}

/// The text exposition: each family's `# HELP` and `# TYPE`, then its samples.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// `_bucket` lines (cumulative, ending with `+Inf`), `_sum` and `_count`.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], snapshot: &HistogramSnapshot) {
        let bucket_name = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, count) in snapshot.buckets.iter().enumerate() {
            cumulative += count;
            let bound = match snapshot.bounds.get(i) {
                Some(bound) => bound.to_string(),
                None => "+Inf".to_string(),
            };
            let mut with_le = labels.to_vec();
            with_le.push(("le", &bound));
            self.sample(&bucket_name, &with_le, cumulative);
        }
        self.sample(&format!("{name}_sum"), labels, snapshot.sum);
        // The count is the +Inf bucket by construction, so that the two
        // always agree even while requests are being recorded.
        self.sample(&format!("{name}_count"), labels, cumulative);
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Seconds since `then`, never negative (clocks may step back).
fn age_seconds(then: Timestamp, now: Timestamp) -> f64 {
    (now.micros() - then.micros()).max(0) as f64 / 1e6
}

/// The writer's statistics as a histogram snapshot.
fn commit_histogram(stats: &GroupCommitSnapshot) -> HistogramSnapshot {
    HistogramSnapshot {
        bounds: &COMMIT_SECONDS_BUCKETS,
        buckets: stats.commit_buckets.clone(),
        sum: stats.commit_seconds_sum,
    }
}

/// Everything `/metrics` shows, read now. Given the parts of the shared
/// state rather than the state itself, which holds `Metrics`: so that this
/// module and `state` do not use each other.
pub async fn render(
    metrics: &Metrics,
    store: &dyn Store,
    signer: Option<&CheckpointSigner>,
) -> String {
    let export_counts = match store.count_exports_by_status().await {
        Ok(counts) => Some(counts),
        Err(e) => {
            // The other families are still worth scraping; the missing
            // gauge shows the problem, and `/readyz` reports the store.
            tracing::warn!(error = %e, "cannot count export jobs for /metrics");
            None
        }
    };
    let newest_checkpoint = signer.and_then(|signer| signer.newest_checkpoint_at());
    render_with(
        metrics,
        &store.group_commit_stats().snapshot(),
        export_counts.as_deref(),
        newest_checkpoint,
        Timestamp::now(),
    )
}

/// The exposition from values already read (separate so that tests can
/// give it exact inputs).
fn render_with(
    metrics: &Metrics,
    writer: &GroupCommitSnapshot,
    export_counts: Option<&[(ExportStatus, u64)]>,
    newest_checkpoint: Option<Timestamp>,
    now: Timestamp,
) -> String {
    let mut out = Exposition::default();
    let stored = metrics.events_stored.get();
    let repeated = metrics.events_repeated.get();
    out.family(
        "auditlog_events_accepted_total",
        "counter",
        "Events acknowledged to clients (newly stored plus idempotent repeats).",
    );
    out.sample("auditlog_events_accepted_total", &[], stored + repeated);
    out.family(
        "auditlog_events_stored_total",
        "counter",
        "Events newly stored.",
    );
    out.sample("auditlog_events_stored_total", &[], stored);
    out.family(
        "auditlog_events_repeated_total",
        "counter",
        "Events acknowledged as idempotent repeats of stored events.",
    );
    out.sample("auditlog_events_repeated_total", &[], repeated);

    out.family(
        "auditlog_ingest_rejected_total",
        "counter",
        "Ingest requests answered with an error, by reason class; none of a rejected request's events is stored.",
    );
    for reason in RejectReason::ALL {
        out.sample(
            "auditlog_ingest_rejected_total",
            &[("reason", reason.as_str())],
            metrics.rejected_count(reason),
        );
    }
    out.family(
        "auditlog_ingest_batch_events",
        "histogram",
        "Events per accepted ingest request.",
    );
    out.histogram(
        "auditlog_ingest_batch_events",
        &[],
        &metrics.batch_events.snapshot(),
    );

    out.family(
        "auditlog_writer_queue_depth",
        "gauge",
        "Append requests waiting for the writer (queued or held back by a full queue).",
    );
    out.sample("auditlog_writer_queue_depth", &[], writer.waiting_requests);
    out.family(
        "auditlog_writer_commit_seconds",
        "histogram",
        "Time from gathering a group of append requests to answering them after its commit.",
    );
    out.histogram(
        "auditlog_writer_commit_seconds",
        &[],
        &commit_histogram(writer),
    );
    out.family(
        "auditlog_writer_commit_failures_total",
        "counter",
        "Group commits that failed (every request in the group answered 503, nothing stored).",
    );
    out.sample(
        "auditlog_writer_commit_failures_total",
        &[],
        writer.failed_groups,
    );

    out.family(
        "auditlog_http_request_duration_seconds",
        "histogram",
        "Time to answer a request (until the response head), by route template, method and status class.",
    );
    let series: Vec<(RouteKey, HistogramSnapshot)> = match metrics.requests.read() {
        Ok(series) => series
            .iter()
            .map(|(key, histogram)| (key.clone(), histogram.snapshot()))
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut series = series;
    series.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, snapshot) in &series {
        out.histogram(
            "auditlog_http_request_duration_seconds",
            &[
                ("route", &key.route),
                ("method", key.method),
                ("status", key.status),
            ],
            snapshot,
        );
    }

    out.family(
        "auditlog_export_jobs",
        "gauge",
        "Export jobs of every account in each status (read from the store at scrape time).",
    );
    if let Some(counts) = export_counts {
        for status in ExportStatus::ALL {
            let count: u64 = counts
                .iter()
                .filter(|(s, _)| *s == status)
                .map(|(_, n)| n)
                .sum();
            out.sample(
                "auditlog_export_jobs",
                &[("status", status.as_str())],
                count,
            );
        }
    }

    out.family(
        "auditlog_checkpoint_age_seconds",
        "gauge",
        "Seconds since the newest signed checkpoint (absent before the first); grows while nothing new is appended.",
    );
    if let Some(signed) = newest_checkpoint {
        out.sample(
            "auditlog_checkpoint_age_seconds",
            &[],
            age_seconds(signed, now),
        );
    }
    out.text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn counter_adds() {
        let counter = Counter::default();
        counter.add(2);
        counter.add(3);
        assert_eq!(counter.get(), 5);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_count_is_the_inf_bucket() {
        static BOUNDS: [f64; 3] = [1.0, 5.0, 10.0];
        let histogram = Histogram::new(&BOUNDS);
        for value in [0.5, 1.0, 3.0, 10.0, 11.0, 400.0] {
            histogram.observe(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.buckets, vec![2, 1, 1, 2]);
        assert_eq!(snapshot.sum, 425.5);
        let mut out = Exposition::default();
        out.histogram("x", &[("route", "/r")], &snapshot);
        assert_eq!(
            lines(&out.text),
            vec![
                r#"x_bucket{route="/r",le="1"} 2"#,
                r#"x_bucket{route="/r",le="5"} 3"#,
                r#"x_bucket{route="/r",le="10"} 4"#,
                r#"x_bucket{route="/r",le="+Inf"} 6"#,
                r#"x_sum{route="/r"} 425.5"#,
                r#"x_count{route="/r"} 6"#,
            ]
        );
    }

    #[test]
    fn histogram_counts_every_observation_from_many_threads() {
        let histogram = Arc::new(Histogram::new(&BATCH_EVENTS_BUCKETS));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let histogram = histogram.clone();
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        histogram.observe(2.0);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.buckets.iter().sum::<u64>(), 4_000);
        assert_eq!(snapshot.buckets[1], 4_000, "2 falls in the le=2 bucket");
        assert_eq!(snapshot.sum, 8_000.0);
    }

    #[test]
    fn reject_reasons_are_a_fixed_set() {
        let cases = [
            (400, "invalid"),
            (415, "invalid"),
            (422, "invalid"),
            (413, "too_large"),
            (401, "unauthorized"),
            (403, "unauthorized"),
            (409, "conflict"),
            (429, "rate_limited"),
            (503, "unavailable"),
            (408, "unavailable"),
            (500, "internal"),
            (404, "other"),
        ];
        for (status, reason) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(RejectReason::from_status(status).as_str(), reason);
        }
    }

    #[test]
    fn request_series_are_labelled_by_route_method_and_status_class_only() {
        let metrics = Metrics::default();
        let ms = Duration::from_millis(3);
        metrics.record_request(
            Some("/api/v1/events/{id}"),
            &Method::GET,
            StatusCode::OK,
            ms,
        );
        metrics.record_request(
            Some("/api/v1/events/{id}"),
            &Method::GET,
            StatusCode::NOT_FOUND,
            ms,
        );
        metrics.record_request(
            Some("/api/v1/events/{id}"),
            &Method::GET,
            StatusCode::OK,
            ms,
        );
        let invented = Method::from_bytes(b"BREW").unwrap();
        metrics.record_request(None, &invented, StatusCode::NOT_FOUND, ms);
        metrics.record_request(
            Some(INGEST_ROUTE),
            &Method::POST,
            StatusCode::PAYLOAD_TOO_LARGE,
            ms,
        );
        // An error of another route is not an ingest rejection.
        metrics.record_request(
            Some(INGEST_ROUTE),
            &Method::GET,
            StatusCode::BAD_REQUEST,
            ms,
        );
        assert_eq!(metrics.rejected_count(RejectReason::TooLarge), 1);
        assert_eq!(metrics.rejected_count(RejectReason::Invalid), 0);

        let text = render_with(
            &metrics,
            &GroupCommitStatsFixture::snapshot(),
            None,
            None,
            Timestamp::from_micros(0),
        );
        let counts: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("auditlog_http_request_duration_seconds_count"))
            .collect();
        assert_eq!(
            counts,
            vec![
                r#"auditlog_http_request_duration_seconds_count{route="/api/v1/events",method="GET",status="4xx"} 1"#,
                r#"auditlog_http_request_duration_seconds_count{route="/api/v1/events",method="POST",status="4xx"} 1"#,
                r#"auditlog_http_request_duration_seconds_count{route="/api/v1/events/{id}",method="GET",status="2xx"} 2"#,
                r#"auditlog_http_request_duration_seconds_count{route="/api/v1/events/{id}",method="GET",status="4xx"} 1"#,
                r#"auditlog_http_request_duration_seconds_count{route="unmatched",method="other",status="4xx"} 1"#,
            ]
        );
        assert!(text.contains(r#"auditlog_ingest_rejected_total{reason="too_large"} 1"#));
    }

    /// A writer snapshot with known values.
    struct GroupCommitStatsFixture;

    impl GroupCommitStatsFixture {
        fn snapshot() -> GroupCommitSnapshot {
            let mut commit_buckets = vec![0; COMMIT_SECONDS_BUCKETS.len() + 1];
            commit_buckets[2] = 3; // <= 5 ms
            commit_buckets[COMMIT_SECONDS_BUCKETS.len()] = 1; // > 5 s
            GroupCommitSnapshot {
                waiting_requests: 7,
                commit_buckets,
                commit_seconds_sum: 6.25,
                failed_groups: 1,
            }
        }
    }

    #[test]
    fn gauges_show_the_values_read_at_scrape_time() {
        let metrics = Metrics::default();
        metrics.ingest_accepted(10, 8);
        metrics.ingest_accepted(1, 1);
        let signed = Timestamp::from_micros(1_000_000_000);
        let now = Timestamp::from_micros(1_000_000_000 + 12_500_000);
        let text = render_with(
            &metrics,
            &GroupCommitStatsFixture::snapshot(),
            Some(&[(ExportStatus::Completed, 4), (ExportStatus::Queued, 1)]),
            Some(signed),
            now,
        );
        for expected in [
            "auditlog_writer_queue_depth 7",
            r#"auditlog_writer_commit_seconds_bucket{le="0.005"} 3"#,
            r#"auditlog_writer_commit_seconds_bucket{le="5"} 3"#,
            r#"auditlog_writer_commit_seconds_bucket{le="+Inf"} 4"#,
            "auditlog_writer_commit_seconds_count 4",
            "auditlog_writer_commit_seconds_sum 6.25",
            "auditlog_writer_commit_failures_total 1",
            r#"auditlog_export_jobs{status="queued"} 1"#,
            r#"auditlog_export_jobs{status="running"} 0"#,
            r#"auditlog_export_jobs{status="completed"} 4"#,
            r#"auditlog_export_jobs{status="failed"} 0"#,
            r#"auditlog_export_jobs{status="expired"} 0"#,
            "auditlog_checkpoint_age_seconds 12.5",
            "auditlog_events_accepted_total 11",
            "auditlog_events_stored_total 9",
            "auditlog_events_repeated_total 2",
            r#"auditlog_ingest_batch_events_bucket{le="1"} 1"#,
            r#"auditlog_ingest_batch_events_bucket{le="10"} 2"#,
            "auditlog_ingest_batch_events_count 2",
            "auditlog_ingest_batch_events_sum 11",
        ] {
            assert!(
                text.lines().any(|l| l == expected),
                "missing {expected:?} in\n{text}"
            );
        }
        // Before the first checkpoint, and when the store cannot count
        // exports, those gauges have no sample (but keep HELP and TYPE).
        let text = render_with(
            &metrics,
            &GroupCommitStatsFixture::snapshot(),
            None,
            None,
            now,
        );
        assert!(!text
            .lines()
            .any(|l| l.starts_with("auditlog_checkpoint_age_seconds")));
        assert!(!text.lines().any(|l| l.starts_with("auditlog_export_jobs")));
        assert!(text.contains("# TYPE auditlog_checkpoint_age_seconds gauge"));
        // A clock that stepped back does not make the age negative.
        assert_eq!(age_seconds(now, signed), 0.0);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
