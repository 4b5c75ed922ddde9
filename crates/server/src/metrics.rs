//! Prometheus metrics through the `metrics` facade: what the server records
//! while it works (`ingest_accepted`, the per-route latency middleware
//! `track_requests`), the process's recorder (`Recorder`, rendering with
//! `metrics-exporter-prometheus`), and `/metrics` (`render`), which first
//! sets the gauges that are read at scrape time: export jobs per status and
//! the age of the newest checkpoint. The store's group-commit queue records
//! its queue depth and commit latency through the same facade
//! (`auditlog_store::group_commit`); this module only describes them and
//! gives their histogram buckets.
//!
//! Every label takes values from a small fixed set (reason classes, route
//! templates, methods, status classes, export statuses), never from a
//! request: no account, key, user, event id or raw URI, so the number of
//! series stays bounded whatever clients send.

use crate::signer::CheckpointSigner;
use auditlog_core::ErrorChain;
use auditlog_core::Timestamp;
use auditlog_store::group_commit::{
    COMMIT_FAILURES_METRIC, COMMIT_SECONDS_BUCKETS, COMMIT_SECONDS_METRIC, GROUP_EVENTS_BUCKETS,
    GROUP_EVENTS_METRIC, LINGERS_METRIC, QUEUE_DEPTH_METRIC,
};
use auditlog_store::{ExportStatus, Store};
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The ingest route: its error answers are the rejected ingest requests.
pub const INGEST_ROUTE: &str = "/api/v1/events";

const EVENTS_ACCEPTED: &str = "auditlog_events_accepted_total";
const EVENTS_STORED: &str = "auditlog_events_stored_total";
const EVENTS_REPEATED: &str = "auditlog_events_repeated_total";
const INGEST_REJECTED: &str = "auditlog_ingest_rejected_total";
const INGEST_BATCH_EVENTS: &str = "auditlog_ingest_batch_events";
const REQUEST_SECONDS: &str = "auditlog_http_request_duration_seconds";
const EXPORT_JOBS: &str = "auditlog_export_jobs";
const CHECKPOINT_AGE: &str = "auditlog_checkpoint_age_seconds";
const STREAM_EVENTS_DELIVERED: &str = "auditlog_stream_events_delivered_total";
const STREAM_FAILURES: &str = "auditlog_stream_failures_total";
const STREAM_LAG_MAX: &str = "auditlog_stream_lag_max";
/// Event bodies the pruner removed (retention).
pub const PRUNED_EVENTS: &str = "auditlog_pruned_events_total";
/// Prunings the pruner finished.
pub const PRUNINGS: &str = "auditlog_prunings_total";
/// Events erased (version 2 values, version 1 bodies).
pub const ERASED_EVENTS: &str = "auditlog_erased_events_total";
/// Erasures finished.
pub const ERASURES: &str = "auditlog_erasures_total";
const WITNESS_ALARM: &str = "auditlog_witness_alarm";
const ROOT_COSIGNATURES: &str = "auditlog_root_checkpoint_cosignatures";

/// The kinds of log stream (a bounded label; `crate::streams::KINDS`).
pub const STREAM_KINDS: [&str; 3] = ["webhook", "splunk_hec", "syslog"];
/// The formats of log stream (a bounded label; `crate::streams::FORMATS`).
pub const STREAM_FORMATS: [&str; 2] = ["native", "ocsf"];

/// Why a log stream delivery failed (a bounded label).
pub const STREAM_FAILURE_REASONS: [&str; 6] = [
    "connection",
    "status",
    "rate_limited",
    "gone",
    "unacknowledged",
    "too_large",
];

/// Request latency buckets (seconds): first pages take a few milliseconds,
/// histograms over a big account and batch ingest up to seconds.
pub const REQUEST_SECONDS_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Events per ingest request: single events up to the largest batch (1,000).
pub const BATCH_EVENTS_BUCKETS: [f64; 10] =
    [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// How often histogram samples recorded between scrapes are folded into
/// their buckets, so that memory stays flat however long nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

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

/// The Prometheus recorder whose samples `/metrics` renders.
///
/// The facade's recorder is global, so the process has one: the first
/// [`Recorder::global`] installs it and every later one (every `AppState`
/// of a process, as in-process tests build many) shares it. Tests that
/// assert exact values either run the binary (a process each) or record
/// into their own [`Recorder::unregistered`] through
/// `metrics::with_local_recorder`.
#[derive(Clone)]
pub struct Recorder {
    handle: PrometheusHandle,
}

impl Recorder {
    /// The process's recorder, installed on first use.
    pub fn global() -> Self {
        static GLOBAL: OnceLock<Recorder> = OnceLock::new();
        GLOBAL.get_or_init(Self::install).clone()
    }

    fn install() -> Self {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            // Only another library installing its own recorder first can
            // cause this; the server still answers, with metrics that stay
            // at their registered zeros.
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics shows zeros");
        }
        describe_and_register();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histogram samples are folded at scrape time only");
        }
        Self { handle }
    }

    /// A recorder of its own, installed nowhere: record into it with
    /// `metrics::with_local_recorder`, then [`Recorder::render_text`].
    pub fn unregistered() -> (metrics_exporter_prometheus::PrometheusRecorder, Self) {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, describe_and_register);
        (recorder, Self { handle })
    }

    /// The exposition of what was recorded so far.
    pub fn render_text(&self) -> String {
        self.handle.render()
    }
}

/// Histogram buckets for every histogram family: without them the exporter
/// would render summaries, and today's dashboards read `_bucket` series.
fn builder() -> PrometheusBuilder {
    let buckets = |name: &str| Matcher::Full(name.to_string());
    let with_buckets = PrometheusBuilder::new()
        .set_buckets_for_metric(buckets(REQUEST_SECONDS), &REQUEST_SECONDS_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(buckets(INGEST_BATCH_EVENTS), &BATCH_EVENTS_BUCKETS))
        .and_then(|b| {
            b.set_buckets_for_metric(buckets(COMMIT_SECONDS_METRIC), &COMMIT_SECONDS_BUCKETS)
        })
        .and_then(|b| {
            b.set_buckets_for_metric(buckets(GROUP_EVENTS_METRIC), &GROUP_EVENTS_BUCKETS)
        });
    match with_buckets {
        Ok(builder) => builder,
        // Only an empty list of bounds is refused, and none of these is
        // empty (the unit tests render every histogram's buckets).
        Err(e) => {
            tracing::error!(error = %e, "histogram buckets refused; histograms render as summaries");
            PrometheusBuilder::new()
        }
    }
}

/// Describes every family (its `# HELP`) and registers the series known in
/// advance at zero, so that a fresh server already exposes them.
fn describe_and_register() {
    describe_counter!(
        EVENTS_ACCEPTED,
        "Events acknowledged to clients (newly stored plus idempotent repeats)."
    );
    describe_counter!(EVENTS_STORED, "Events newly stored.");
    describe_counter!(
        EVENTS_REPEATED,
        "Events acknowledged as idempotent repeats of stored events."
    );
    describe_counter!(
        INGEST_REJECTED,
        "Ingest requests answered with an error, by reason class; none of a rejected request's events is stored."
    );
    describe_histogram!(INGEST_BATCH_EVENTS, "Events per accepted ingest request.");
    describe_gauge!(
        QUEUE_DEPTH_METRIC,
        "Append requests waiting for the writer (queued or held back by a full queue)."
    );
    describe_histogram!(
        COMMIT_SECONDS_METRIC,
        "Time from gathering a group of append requests to answering them after its commit."
    );
    describe_counter!(
        COMMIT_FAILURES_METRIC,
        "Group commits that failed (every request in the group answered 503, nothing stored)."
    );
    describe_histogram!(GROUP_EVENTS_METRIC, "Events per group commit.");
    describe_counter!(
        LINGERS_METRIC,
        "Group commits for which the busy writer waited (at most the linger) for more requests."
    );
    describe_histogram!(
        REQUEST_SECONDS,
        "Time to answer a request (until the response head), by route template, method and status class."
    );
    describe_gauge!(
        EXPORT_JOBS,
        "Export jobs of every account in each status (read from the store at scrape time)."
    );
    describe_counter!(
        STREAM_EVENTS_DELIVERED,
        "Events log streams delivered (accepted by their destination), by kind (webhook, splunk_hec, syslog) and format (native, ocsf)."
    );
    describe_counter!(
        STREAM_FAILURES,
        "Failed log stream deliveries, by kind (webhook, splunk_hec, syslog) and reason (connection, status, rate_limited, gone, unacknowledged, too_large: a 413 answer, the batch split)."
    );
    describe_gauge!(
        STREAM_LAG_MAX,
        "The largest lag of the log streams this server delivers: seqs stored after a stream's cursor (per-stream figures are in the API)."
    );
    describe_gauge!(
        WITNESS_ALARM,
        "1 once a witness refused the root log (a rollback or a fork: see /readyz and the error log), else 0."
    );
    describe_gauge!(
        ROOT_COSIGNATURES,
        "Valid cosignatures by the configured witnesses of the latest root checkpoint (on the server that submits them)."
    );
    describe_gauge!(
        CHECKPOINT_AGE,
        "Seconds since the newest signed checkpoint (absent before the first); grows while nothing new is appended."
    );
    describe_counter!(
        PRUNED_EVENTS,
        "Event bodies removed by retention (pruned; their leaf hashes, ids and tree stay)."
    );
    describe_counter!(
        PRUNINGS,
        "Prunings finished (each appends one Auditlog Retention record)."
    );
    describe_counter!(
        ERASED_EVENTS,
        "Events erased: a version 2 event's personal values, a version 1 event's body (their leaf hashes and tree stay)."
    );
    describe_counter!(
        ERASURES,
        "Erasures finished (each recorded by one Auditlog Erasure record)."
    );
    for name in [
        PRUNED_EVENTS,
        PRUNINGS,
        ERASED_EVENTS,
        ERASURES,
        EVENTS_ACCEPTED,
        EVENTS_STORED,
        EVENTS_REPEATED,
        COMMIT_FAILURES_METRIC,
        LINGERS_METRIC,
    ] {
        counter!(name).increment(0);
    }
    for reason in RejectReason::ALL {
        counter!(INGEST_REJECTED, "reason" => reason.as_str()).increment(0);
    }
    // Registering a histogram shows it with empty buckets until the first sample.
    let _ = histogram!(INGEST_BATCH_EVENTS);
    let _ = histogram!(COMMIT_SECONDS_METRIC);
    let _ = histogram!(GROUP_EVENTS_METRIC);
    gauge!(QUEUE_DEPTH_METRIC).increment(0.0);
    for kind in STREAM_KINDS {
        for format in STREAM_FORMATS {
            counter!(STREAM_EVENTS_DELIVERED, "kind" => kind, "format" => format).increment(0);
        }
        for reason in STREAM_FAILURE_REASONS {
            counter!(STREAM_FAILURES, "kind" => kind, "reason" => reason).increment(0);
        }
    }
    gauge!(STREAM_LAG_MAX).increment(0.0);
    gauge!(WITNESS_ALARM).increment(0.0);
    gauge!(ROOT_COSIGNATURES).increment(0.0);
}

/// Whether a witness refused the root log.
pub fn witness_alarm(raised: bool) {
    gauge!(WITNESS_ALARM).set(if raised { 1.0 } else { 0.0 });
}

/// How many valid cosignatures the latest root checkpoint has.
pub fn root_cosignatures(valid: usize) {
    gauge!(ROOT_COSIGNATURES).set(valid as f64);
}

/// A log stream's batch of `events` was accepted.
pub fn stream_delivered(kind: &'static str, format: &'static str, events: u64) {
    counter!(STREAM_EVENTS_DELIVERED, "kind" => kind, "format" => format).increment(events);
}

/// A log stream's delivery failed for `reason` (one of [`STREAM_FAILURE_REASONS`]).
pub fn stream_failed(kind: &'static str, reason: &'static str) {
    counter!(STREAM_FAILURES, "kind" => kind, "reason" => reason).increment(1);
}

/// The largest lag among this server's streams now.
pub fn stream_lag_max(lag: u64) {
    gauge!(STREAM_LAG_MAX).set(lag as f64);
}

/// An ingest request was acknowledged: `events` in it, `created` of them new.
pub fn ingest_accepted(events: usize, created: usize) {
    let created = created.min(events);
    counter!(EVENTS_ACCEPTED).increment(events as u64);
    counter!(EVENTS_STORED).increment(created as u64);
    counter!(EVENTS_REPEATED).increment((events - created) as u64);
    histogram!(INGEST_BATCH_EVENTS).record(events as f64);
}

/// One answered request; `route` is the matched route template, `None`
/// when no route matched (the 404 fallback).
pub fn record_request(route: Option<&str>, method: &Method, status: StatusCode, elapsed: Duration) {
    if route == Some(INGEST_ROUTE)
        && *method == Method::POST
        && (status.is_client_error() || status.is_server_error())
    {
        let reason = RejectReason::from_status(status).as_str();
        counter!(INGEST_REJECTED, "reason" => reason).increment(1);
    }
    histogram!(
        REQUEST_SECONDS,
        "route" => route.unwrap_or("unmatched").to_string(),
        "method" => method_label(method),
        "status" => status_class(status),
    )
    .record(elapsed.as_secs_f64());
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
pub async fn track_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    record_request(
        route.as_deref(),
        &method,
        response.status(),
        started.elapsed(),
    );
    response
}

/// Seconds since `then`, never negative (clocks may step back).
fn age_seconds(then: Timestamp, now: Timestamp) -> f64 {
    (now.micros() - then.micros()).max(0) as f64 / 1e6
}

/// Sets the gauges read at scrape time, then renders everything. Given the
/// parts of the shared state rather than the state itself, which holds
/// the recorder: so that this module and `state` do not use each other.
pub async fn render(
    metrics: &Recorder,
    store: &dyn Store,
    signer: Option<&CheckpointSigner>,
) -> String {
    match store.count_exports_by_status().await {
        Ok(counts) => set_export_jobs(&counts),
        // The other families are still worth scraping; the gauge keeps its
        // last value, and `/readyz` reports the store.
        Err(e) => tracing::warn!(error = %ErrorChain(&e), "cannot count export jobs for /metrics"),
    }
    let newest_checkpoint = signer.and_then(|signer| signer.newest_checkpoint_at());
    if let Some(signed) = newest_checkpoint {
        gauge!(CHECKPOINT_AGE).set(age_seconds(signed, Timestamp::now()));
    }
    metrics.render_text()
}

/// Every status gets a sample, 0 when no job has it.
fn set_export_jobs(counts: &[(ExportStatus, u64)]) {
    for status in ExportStatus::ALL {
        let count: u64 = counts
            .iter()
            .filter(|(s, _)| *s == status)
            .map(|(_, n)| n)
            .sum();
        gauge!(EXPORT_JOBS, "status" => status.as_str()).set(count as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records with `record` into a fresh recorder of its own (so tests
    /// running at once in this process see only their own samples) and
    /// returns the exposition's lines.
    fn recorded(record: impl FnOnce()) -> Vec<String> {
        let (recorder, handle) = Recorder::unregistered();
        metrics::with_local_recorder(&recorder, record);
        handle.render_text().lines().map(str::to_owned).collect()
    }

    fn assert_has(lines: &[String], expected: &[&str]) {
        for line in expected {
            assert!(
                lines.iter().any(|l| l == line),
                "missing {line:?} in\n{}",
                lines.join("\n")
            );
        }
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
        let ms = Duration::from_millis(3);
        let lines = recorded(|| {
            let by_id = Some("/api/v1/events/{id}");
            record_request(by_id, &Method::GET, StatusCode::OK, ms);
            record_request(by_id, &Method::GET, StatusCode::NOT_FOUND, ms);
            record_request(by_id, &Method::GET, StatusCode::OK, ms);
            let invented = Method::from_bytes(b"BREW").unwrap();
            record_request(None, &invented, StatusCode::NOT_FOUND, ms);
            let ingest = Some(INGEST_ROUTE);
            record_request(ingest, &Method::POST, StatusCode::PAYLOAD_TOO_LARGE, ms);
            // An error of another method is not an ingest rejection.
            record_request(ingest, &Method::GET, StatusCode::BAD_REQUEST, ms);
        });
        let mut counts: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| l.starts_with("auditlog_http_request_duration_seconds_count"))
            .collect();
        counts.sort_unstable();
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
        assert_has(
            &lines,
            &[
                r#"auditlog_ingest_rejected_total{reason="too_large"} 1"#,
                r#"auditlog_ingest_rejected_total{reason="invalid"} 0"#,
            ],
        );
    }

    /// Histograms render as histograms (buckets, not quantiles), with
    /// today's bounds; the counters split accepted events.
    #[test]
    fn ingest_counts_and_histogram_buckets() {
        let lines = recorded(|| {
            ingest_accepted(10, 8);
            ingest_accepted(1, 1);
            histogram!(COMMIT_SECONDS_METRIC).record(0.004);
            histogram!(GROUP_EVENTS_METRIC).record(64.0);
        });
        assert_has(
            &lines,
            &[
                "# TYPE auditlog_ingest_batch_events histogram",
                "# TYPE auditlog_writer_commit_seconds histogram",
                "auditlog_events_accepted_total 11",
                "auditlog_events_stored_total 9",
                "auditlog_events_repeated_total 2",
                r#"auditlog_ingest_batch_events_bucket{le="1"} 1"#,
                r#"auditlog_ingest_batch_events_bucket{le="5"} 1"#,
                r#"auditlog_ingest_batch_events_bucket{le="10"} 2"#,
                r#"auditlog_ingest_batch_events_bucket{le="+Inf"} 2"#,
                "auditlog_ingest_batch_events_count 2",
                "auditlog_ingest_batch_events_sum 11",
                r#"auditlog_writer_commit_seconds_bucket{le="0.0025"} 0"#,
                r#"auditlog_writer_commit_seconds_bucket{le="0.005"} 1"#,
                "auditlog_writer_commit_seconds_count 1",
                "# TYPE auditlog_writer_group_events histogram",
                r#"auditlog_writer_group_events_bucket{le="32"} 0"#,
                r#"auditlog_writer_group_events_bucket{le="64"} 1"#,
                "auditlog_writer_group_events_sum 64",
                "auditlog_writer_lingers_total 0",
            ],
        );
        assert!(
            !lines.iter().any(|l| l.contains("quantile")),
            "a histogram rendered as a summary"
        );
    }

    #[test]
    fn scrape_time_gauges() {
        let lines = recorded(|| {
            set_export_jobs(&[(ExportStatus::Completed, 4), (ExportStatus::Queued, 1)]);
        });
        assert_has(
            &lines,
            &[
                r#"auditlog_export_jobs{status="queued"} 1"#,
                r#"auditlog_export_jobs{status="running"} 0"#,
                r#"auditlog_export_jobs{status="completed"} 4"#,
                r#"auditlog_export_jobs{status="failed"} 0"#,
                r#"auditlog_export_jobs{status="expired"} 0"#,
            ],
        );
        let signed = Timestamp::from_micros(1_000_000_000);
        let now = Timestamp::from_micros(1_000_000_000 + 12_500_000);
        assert_eq!(age_seconds(signed, now), 12.5);
        // A clock that stepped back does not make the age negative.
        assert_eq!(age_seconds(now, signed), 0.0);
    }
}
