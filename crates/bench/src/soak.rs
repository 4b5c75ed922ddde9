//! The soak: a paced mixed load against the real `auditlog serve` on the
//! embedded store for a long time (10 minutes by default), to show that
//! latency stays flat, nothing fails and memory does not grow without bound.
//!
//! Ingest clients send batches and single events; query clients cycle
//! through first pages, filtered first pages, cursor pages (walking deeper
//! and deeper) and per-day histograms. Every request's latency is kept;
//! every sampling period (10 s) one line goes to the samples file with, per
//! operation, the requests, errors, p50 and p99, and the server's RSS
//! (`VmRSS` of /proc/<pid>/status) and writer queue depth (from `/metrics`).
//! At the end a Markdown report holds a per-minute table and the verdict:
//! the least-squares slope of RSS over the second half against a bound.

use crate::error::BenchResult;
use crate::generator::{seed_combinations, Combination, Dataset, Event, EventIter};
use crate::results::percentile_ms;
use crate::server::Server;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one soak runs: its length, its load and its memory bound.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub duration: Duration,
    pub sample_every: Duration,
    /// Half send batches of `batch` events, half single events.
    pub ingest_clients: usize,
    pub query_clients: usize,
    /// Requests per second of each client (paced; a slow answer delays the next).
    pub rate: f64,
    pub batch: usize,
    /// Events loaded before the timed load, so that queries have pages to walk.
    pub preload: usize,
    /// Largest RSS growth over the second half, in MiB per minute, that still
    /// counts as bounded.
    pub max_rss_slope: f64,
    /// The raw samples (JSON lines) and the Markdown report.
    pub samples_path: PathBuf,
    pub report_path: PathBuf,
}

/// The kinds of request, each timed on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Operation {
    IngestBatch,
    IngestSingle,
    PageFirst,
    PageFiltered,
    PageCursor,
    Histogram,
}

impl Operation {
    const ALL: [Operation; 6] = [
        Self::IngestBatch,
        Self::IngestSingle,
        Self::PageFirst,
        Self::PageFiltered,
        Self::PageCursor,
        Self::Histogram,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::IngestBatch => "ingest_batch",
            Self::IngestSingle => "ingest_single",
            Self::PageFirst => "page_first",
            Self::PageFiltered => "page_filtered",
            Self::PageCursor => "page_cursor",
            Self::Histogram => "histogram",
        }
    }

    fn is_ingest(self) -> bool {
        matches!(self, Self::IngestBatch | Self::IngestSingle)
    }
}

/// One answered (or failed) request.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    /// Seconds since the load started, at the answer.
    at: f64,
    operation: Operation,
    latency: Duration,
    ok: bool,
    /// Events sent in it (ingest only).
    events: usize,
}

/// What the clients report to the sampler.
#[derive(Default)]
struct Log {
    outcomes: Vec<Outcome>,
    /// The first few error messages, for the operator.
    errors: Vec<String>,
}

/// One sampling period.
#[derive(Debug, Clone)]
struct Sample {
    /// Seconds since the load started, at the end of the period.
    at: f64,
    rss_mib: f64,
    /// Where the RSS is, and how many SQLite connections hold a page cache.
    memory: MemoryDetail,
    queue_depth: Option<f64>,
    /// The machine's 1-minute load average (other work shows here).
    load: Option<f64>,
}

/// What makes up the server's RSS: heap (`RssAnon`, where SQLite's page
/// caches live), mapped files (`RssFile`) and shared memory (`RssShmem`,
/// the WAL index), plus the open database connections (file descriptors on
/// the database file), each of which may cache up to its `cache_size`.
#[derive(Debug, Clone, Default)]
struct MemoryDetail {
    anon_mib: Option<f64>,
    file_mib: Option<f64>,
    shmem_mib: Option<f64>,
    db_connections: Option<usize>,
}

impl MemoryDetail {
    fn read(server: &Server) -> Self {
        let mib = |field| server.memory_kib(field).map(|kib| kib as f64 / 1024.0);
        Self {
            anon_mib: mib("RssAnon"),
            file_mib: mib("RssFile"),
            shmem_mib: mib("RssShmem"),
            db_connections: db_connections(server.pid),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "rss_anon_mib": self.anon_mib.map(|v| round(v, 1)),
            "rss_file_mib": self.file_mib.map(|v| round(v, 1)),
            "rss_shmem_mib": self.shmem_mib.map(|v| round(v, 1)),
            "db_connections": self.db_connections,
        })
    }
}

/// Open descriptors of `pid` on the embedded store's database file.
fn db_connections(pid: u32) -> Option<usize> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        entries
            .flatten()
            .filter_map(|entry| std::fs::read_link(entry.path()).ok())
            .filter(|target| target.to_string_lossy().ends_with("/auditlog.db"))
            .count(),
    )
}

/// The events the ingest clients send, in generator order.
struct EventSource {
    pending: Mutex<Pending>,
}

struct Pending {
    events: EventIter<'static>,
    /// Events drawn but not yet sent, per account: a request goes to one
    /// account (its key), while the generator interleaves accounts.
    by_account: Vec<Vec<Event>>,
}

impl EventSource {
    fn new(events: EventIter<'static>) -> Self {
        Self {
            pending: Mutex::new(Pending {
                events,
                by_account: vec![Vec::new(); crate::generator::ACCOUNTS.len()],
            }),
        }
    }

    /// The next `n` events, of every account (for the preload).
    fn take(&self, n: usize) -> Vec<Event> {
        match self.pending.lock() {
            Ok(mut pending) => pending.events.by_ref().take(n).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The next `n` events of one account, in order; fewer only when the
    /// generator runs out. Fewer than the largest `n` asked wait per account.
    fn take_batch(&self, n: usize) -> Vec<Event> {
        let Ok(mut pending) = self.pending.lock() else {
            return Vec::new();
        };
        let pending = &mut *pending;
        for event in pending.events.by_ref() {
            let queue = &mut pending.by_account[event.account];
            queue.push(event);
            if queue.len() >= n {
                return queue.drain(..n).collect();
            }
        }
        match pending.by_account.iter_mut().find(|q| !q.is_empty()) {
            Some(queue) => queue.drain(..n.min(queue.len())).collect(),
            None => Vec::new(),
        }
    }
}

/// Runs the soak against a server on a fresh store in `store_dir` (`keys`
/// in generator account order); returns whether the verdict passed.
pub async fn run(
    plan: &SoakPlan,
    dataset: &'static Dataset,
    server: &Server,
    keys: &[String],
) -> BenchResult<bool> {
    // Enough events for the preload and the fastest possible load, so that
    // the generator's times (spread over a year by count) keep increasing.
    let planned = plan.preload
        + (plan.duration.as_secs_f64() * plan.rate * plan.ingest_clients as f64 * plan.batch as f64)
            as usize
            * 2;
    let source = Arc::new(EventSource::new(dataset.events(planned.max(1))));
    preload(plan, &server.base, keys, &source).await?;

    let log = Arc::new(Mutex::new(Log::default()));
    let started = Instant::now();
    let deadline = started + plan.duration;
    let combinations = Arc::new(seed_combinations(dataset));
    let mut clients = Vec::new();
    for i in 0..plan.ingest_clients {
        let batch = if i % 2 == 0 { plan.batch } else { 1 };
        clients.push(tokio::spawn(ingest_client(
            server.base.clone(),
            keys.to_vec(),
            source.clone(),
            batch,
            pace(plan.rate),
            started,
            deadline,
            log.clone(),
        )));
    }
    for i in 0..plan.query_clients {
        clients.push(tokio::spawn(query_client(
            server.base.clone(),
            keys[0].clone(),
            combinations.clone(),
            i,
            pace(plan.rate),
            started,
            deadline,
            log.clone(),
        )));
    }

    let samples_file = std::fs::File::create(&plan.samples_path)
        .map_err(|e| format!("cannot create {}: {e}", plan.samples_path.display()))?;
    let mut samples_file = std::io::BufWriter::new(samples_file);
    let http = crate::auditlog::client()?;
    let mut samples = Vec::new();
    let mut seen = 0;
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::from_std(started + plan.sample_every),
        plan.sample_every,
    );
    loop {
        ticks.tick().await;
        let at = started.elapsed().as_secs_f64();
        let rss_mib = server
            .memory_kib("VmRSS")
            .ok_or("cannot read the server's VmRSS (did it exit?)")? as f64
            / 1024.0;
        let queue_depth =
            crate::auditlog::scrape_value(&http, &server.base, "auditlog_writer_queue_depth").await;
        let load = load_average();
        let memory = MemoryDetail::read(server);
        let window: Vec<Outcome> = match log.lock() {
            Ok(log) => log.outcomes[seen..].to_vec(),
            Err(_) => return Err("a client panicked".into()),
        };
        seen += window.len();
        let period = samples
            .last()
            .map_or(at, |last: &Sample| at - last.at)
            .max(1e-9);
        let mut line = sample_json(at, period, rss_mib, queue_depth, load, &window);
        line["memory"] = memory.to_json();
        use std::io::Write;
        writeln!(samples_file, "{line}")?;
        samples_file.flush()?;
        eprintln!(
            "{}  (heap {:.0} MiB, {} db connections)",
            sample_summary(at, period, rss_mib, &window),
            memory.anon_mib.unwrap_or(f64::NAN),
            memory.db_connections.unwrap_or(0)
        );
        samples.push(Sample {
            at,
            rss_mib,
            memory,
            queue_depth,
            load,
        });
        if Instant::now() >= deadline {
            break;
        }
    }
    for client in clients {
        client.await?;
    }
    let log = match Arc::try_unwrap(log) {
        Ok(log) => log.into_inner().map_err(|_| "a client panicked")?,
        Err(_) => return Err("clients still hold the log".into()),
    };
    let verdict = Verdict::new(plan, &samples, &log.outcomes);
    let report = report(plan, &samples, &log, &verdict);
    if let Some(parent) = plan.report_path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&plan.report_path, &report)?;
    println!("{report}");
    eprintln!("wrote {}", plan.report_path.display());
    Ok(verdict.passed())
}

fn pace(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate.max(0.001))
}

/// Loads `plan.preload` events in batches of 500 (4 clients), untimed.
async fn preload(
    plan: &SoakPlan,
    base: &str,
    keys: &[String],
    source: &EventSource,
) -> BenchResult<()> {
    if plan.preload == 0 {
        return Ok(());
    }
    let started = Instant::now();
    let events = source.take(plan.preload);
    let bodies = crate::auditlog::bodies(&events, 500);
    crate::auditlog::send_all(base, keys, bodies, 4).await?;
    eprintln!(
        "preloaded {} events in {:.1} s",
        events.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Sends one request and records its outcome; the body on success.
async fn timed(
    request: reqwest::RequestBuilder,
    operation: Operation,
    events: usize,
    started: Instant,
    log: &Mutex<Log>,
) -> Option<Vec<u8>> {
    let sent = Instant::now();
    let answer = async {
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body.to_vec())
        } else {
            Err(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ))
        }
    }
    .await;
    let outcome = Outcome {
        at: started.elapsed().as_secs_f64(),
        operation,
        latency: sent.elapsed(),
        ok: answer.is_ok(),
        events,
    };
    if let Ok(mut log) = log.lock() {
        log.outcomes.push(outcome);
        if let Err(message) = &answer {
            if log.errors.len() < 20 {
                log.errors.push(format!("{}: {message}", operation.name()));
            }
        }
    }
    answer.ok()
}

fn soak_client() -> BenchResult<reqwest::Client> {
    // A request slower than this counts as an error (the server's own
    // request timeout is 30 s).
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?)
}

#[allow(clippy::too_many_arguments)]
async fn ingest_client(
    base: String,
    keys: Vec<String>,
    source: Arc<EventSource>,
    batch: usize,
    every: Duration,
    started: Instant,
    deadline: Instant,
    log: Arc<Mutex<Log>>,
) {
    let Ok(http) = soak_client() else { return };
    let url = format!("{base}/api/v1/events");
    let operation = if batch == 1 {
        Operation::IngestSingle
    } else {
        Operation::IngestBatch
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < deadline {
        ticks.tick().await;
        let events = source.take_batch(batch);
        let Some(first) = events.first() else { return };
        let body = if batch == 1 {
            first.json_bytes()
        } else {
            let items: Vec<Value> = events.iter().map(|e| e.to_json()).collect();
            serde_json::to_vec(&json!({ "events": items })).unwrap_or_default()
        };
        let request = http
            .post(&url)
            .bearer_auth(&keys[first.account])
            .header("content-type", "application/json")
            .body(body);
        timed(request, operation, events.len(), started, &log).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn query_client(
    base: String,
    key: String,
    combinations: Arc<Vec<Combination>>,
    client: usize,
    every: Duration,
    started: Instant,
    deadline: Instant,
    log: Arc<Mutex<Log>>,
) {
    let Ok(http) = soak_client() else { return };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Each client walks its own cursor deeper on every cursor turn.
    let mut cursor: Option<String> = None;
    let mut turn = client;
    while Instant::now() < deadline {
        ticks.tick().await;
        let combination = &combinations[turn % combinations.len()];
        let (operation, path) = match turn % 4 {
            0 => (Operation::PageFirst, "/api/v1/events?limit=50".to_string()),
            1 => (
                Operation::PageFiltered,
                format!("/api/v1/events?{}&limit=50", combination.query_string()),
            ),
            2 => match &cursor {
                Some(c) => (
                    Operation::PageCursor,
                    format!(
                        "/api/v1/events?limit=50&cursor={}",
                        crate::generator::percent_encode(c)
                    ),
                ),
                None => (Operation::PageFirst, "/api/v1/events?limit=50".to_string()),
            },
            _ => (
                Operation::Histogram,
                format!(
                    "/api/v1/events/histogram?{}&interval=day",
                    combination.query_string()
                ),
            ),
        };
        turn += 1;
        let request = http.get(format!("{base}{path}")).bearer_auth(&key);
        let Some(body) = timed(request, operation, 0, started, &log).await else {
            continue;
        };
        if matches!(operation, Operation::PageCursor)
            || (operation == Operation::PageFirst && cursor.is_none())
        {
            cursor = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|page| page["next_cursor"].as_str().map(str::to_string));
        }
    }
}

/// Requests, errors, p50 and p99 (ms) of one operation's outcomes.
fn stats(outcomes: &[&Outcome]) -> (usize, usize, f64, f64) {
    let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    let errors = outcomes.iter().filter(|o| !o.ok).count();
    let p50 = percentile_ms(&mut latencies, 0.50);
    let p99 = percentile_ms(&mut latencies, 0.99);
    (outcomes.len(), errors, p50, p99)
}

fn of(window: &[Outcome], keep: impl Fn(Operation) -> bool) -> Vec<&Outcome> {
    window.iter().filter(|o| keep(o.operation)).collect()
}

/// The 1-minute load average from /proc/loadavg.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn sample_json(
    at: f64,
    period: f64,
    rss_mib: f64,
    queue_depth: Option<f64>,
    load: Option<f64>,
    window: &[Outcome],
) -> Value {
    let mut operations = serde_json::Map::new();
    for operation in Operation::ALL {
        let (requests, errors, p50, p99) = stats(&of(window, |o| o == operation));
        operations.insert(
            operation.name().into(),
            json!({"requests": requests, "errors": errors,
                   "p50_ms": finite(p50), "p99_ms": finite(p99)}),
        );
    }
    json!({
        "t_s": round(at, 1),
        "requests_per_s": round(window.len() as f64 / period, 2),
        "errors": window.iter().filter(|o| !o.ok).count(),
        "rss_mib": round(rss_mib, 1),
        "writer_queue_depth": queue_depth,
        "load_average_1m": load,
        "operations": operations,
    })
}

fn sample_summary(at: f64, period: f64, rss_mib: f64, window: &[Outcome]) -> String {
    let (_, ingest_errors, ingest_p50, ingest_p99) = stats(&of(window, Operation::is_ingest));
    let (_, query_errors, query_p50, query_p99) = stats(&of(window, |o| !o.is_ingest()));
    format!(
        "t={at:>5.0}s  {:>6.1} req/s  ingest p50 {ingest_p50:>6.1} p99 {ingest_p99:>7.1} ms  \
         query p50 {query_p50:>6.1} p99 {query_p99:>7.1} ms  errors {}  RSS {rss_mib:.1} MiB",
        window.len() as f64 / period,
        ingest_errors + query_errors
    )
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// NaN (no requests in the window) as JSON null.
fn finite(value: f64) -> Value {
    if value.is_finite() {
        json!(round(value, 2))
    } else {
        Value::Null
    }
}

/// Least-squares slope of `y` over `x`; `None` with fewer than two points.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let covariance: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let variance: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    (variance > 0.0).then(|| covariance / variance)
}

/// Whether memory stayed bounded and nothing failed.
struct Verdict {
    /// MiB per minute over the second half.
    rss_slope: Option<f64>,
    max_rss_slope: f64,
    errors: usize,
    requests: usize,
}

impl Verdict {
    fn new(plan: &SoakPlan, samples: &[Sample], outcomes: &[Outcome]) -> Self {
        let half = plan.duration.as_secs_f64() / 2.0;
        let second_half: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| s.at >= half)
            .map(|s| (s.at / 60.0, s.rss_mib))
            .collect();
        Self {
            rss_slope: slope(&second_half),
            max_rss_slope: plan.max_rss_slope,
            errors: outcomes.iter().filter(|o| !o.ok).count(),
            requests: outcomes.len(),
        }
    }

    fn memory_bounded(&self) -> bool {
        self.rss_slope.is_some_and(|s| s <= self.max_rss_slope)
    }

    fn passed(&self) -> bool {
        self.memory_bounded() && self.errors == 0 && self.requests > 0
    }

    fn text(&self) -> String {
        let memory = match self.rss_slope {
            Some(s) if s <= self.max_rss_slope => format!(
                "memory BOUNDED: RSS slope over the second half {s:+.3} MiB/min \
                 (bound {:.3} MiB/min)",
                self.max_rss_slope
            ),
            Some(s) => format!(
                "memory GROWING: RSS slope over the second half {s:+.3} MiB/min \
                 exceeds the bound of {:.3} MiB/min",
                self.max_rss_slope
            ),
            None => "memory UNKNOWN: fewer than two samples in the second half".to_string(),
        };
        let errors = if self.errors == 0 {
            format!("errors: none in {} requests", self.requests)
        } else {
            format!(
                "errors: {} of {} requests FAILED",
                self.errors, self.requests
            )
        };
        let overall = if self.passed() { "PASS" } else { "FAIL" };
        format!("{overall}: {memory}; {errors}")
    }
}

/// The Markdown report: per-minute table, per-operation totals, verdict.
fn report(plan: &SoakPlan, samples: &[Sample], log: &Log, verdict: &Verdict) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Soak: {} s, {} ingest clients (half batches of {}, half single events) and {} query \
         clients, each paced at {} requests/s; {} events preloaded; samples every {} s.\n",
        plan.duration.as_secs(),
        plan.ingest_clients,
        plan.batch,
        plan.query_clients,
        plan.rate,
        plan.preload,
        plan.sample_every.as_secs()
    );
    let _ = writeln!(
        out,
        "| minute | req/s | events/s | ingest p50 (ms) | ingest p99 | query p50 | query p99 | errors | RSS at end (MiB) | of it heap | db connections | writer queue | load avg |"
    );
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let minutes = (plan.duration.as_secs_f64() / 60.0).ceil() as usize;
    let mut by_minute: BTreeMap<usize, Vec<Outcome>> = BTreeMap::new();
    for outcome in &log.outcomes {
        let minute = ((outcome.at / 60.0) as usize).min(minutes.saturating_sub(1));
        by_minute.entry(minute).or_default().push(*outcome);
    }
    for minute in 0..minutes {
        let window = by_minute.get(&minute).map(Vec::as_slice).unwrap_or(&[]);
        let (_, ingest_errors, ingest_p50, ingest_p99) = stats(&of(window, Operation::is_ingest));
        let (_, query_errors, query_p50, query_p99) = stats(&of(window, |o| !o.is_ingest()));
        let events: usize = window.iter().filter(|o| o.ok).map(|o| o.events).sum();
        let end = ((minute + 1) * 60) as f64;
        // The last minute may be shorter than 60 s.
        let length = (plan.duration.as_secs_f64().min(end) - (minute * 60) as f64).max(1.0);
        let last = samples.iter().rev().find(|s| s.at <= end + 1.0);
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} |",
            minute + 1,
            window.len() as f64 / length,
            events as f64 / length,
            ingest_p50,
            ingest_p99,
            query_p50,
            query_p99,
            ingest_errors + query_errors,
            last.map_or("–".to_string(), |s| format!("{:.1}", s.rss_mib)),
            last.and_then(|s| s.memory.anon_mib)
                .map_or("–".to_string(), |m| format!("{m:.1}")),
            last.and_then(|s| s.memory.db_connections)
                .map_or("–".to_string(), |n| n.to_string()),
            last.and_then(|s| s.queue_depth)
                .map_or("–".to_string(), |d| format!("{d:.0}")),
            last.and_then(|s| s.load)
                .map_or("–".to_string(), |l| format!("{l:.1}")),
        );
    }
    let _ = writeln!(
        out,
        "\nWhole run, per operation (latencies in ms):\n\n| operation | requests | errors | p50 | p99 |\n|---|---:|---:|---:|---:|"
    );
    for operation in Operation::ALL {
        let (requests, errors, p50, p99) = stats(&of(&log.outcomes, |o| o == operation));
        let _ = writeln!(
            out,
            "| {} | {requests} | {errors} | {p50:.1} | {p99:.1} |",
            operation.name()
        );
    }
    if let (Some(first), Some(max), Some(last)) = (
        samples.first(),
        samples
            .iter()
            .map(|s| s.rss_mib)
            .max_by(|a, b| a.total_cmp(b)),
        samples.last(),
    ) {
        let _ = writeln!(
            out,
            "\nRSS: {:.1} MiB at the first sample, {max:.1} MiB at most, {:.1} MiB at the end.",
            first.rss_mib, last.rss_mib
        );
    }
    if !log.errors.is_empty() {
        let _ = writeln!(out, "\nFirst errors:\n");
        for error in &log.errors {
            let _ = writeln!(out, "- {error}");
        }
    }
    let _ = writeln!(out, "\n**{}**", verdict.text());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_is_the_least_squares_fit() {
        let flat = [(5.0, 100.0), (6.0, 101.0), (7.0, 99.0), (8.0, 100.0)];
        assert!(slope(&flat).unwrap().abs() < 0.5);
        let growing: Vec<(f64, f64)> = (0..10).map(|m| (m as f64, 50.0 + 2.0 * m as f64)).collect();
        assert!((slope(&growing).unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 1.0)]), None);
    }

    fn plan(max_rss_slope: f64) -> SoakPlan {
        SoakPlan {
            duration: Duration::from_secs(600),
            sample_every: Duration::from_secs(10),
            ingest_clients: 2,
            query_clients: 2,
            rate: 1.0,
            batch: 10,
            preload: 0,
            max_rss_slope,
            samples_path: PathBuf::new(),
            report_path: PathBuf::new(),
        }
    }

    fn samples(mib_per_minute: f64) -> Vec<Sample> {
        (1..=60)
            .map(|i| Sample {
                at: i as f64 * 10.0,
                rss_mib: 80.0 + mib_per_minute * i as f64 / 6.0,
                memory: MemoryDetail::default(),
                queue_depth: Some(0.0),
                load: None,
            })
            .collect()
    }

    #[test]
    fn the_verdict_fails_on_growing_memory_or_errors() {
        let ok = Outcome {
            at: 1.0,
            operation: Operation::PageFirst,
            latency: Duration::from_millis(3),
            ok: true,
            events: 0,
        };
        let failed = Outcome { ok: false, ..ok };
        let flat = Verdict::new(&plan(1.0), &samples(0.0), &[ok]);
        assert!(flat.passed(), "{}", flat.text());
        assert!(flat.text().starts_with("PASS: memory BOUNDED"));
        let growing = Verdict::new(&plan(1.0), &samples(3.0), &[ok]);
        assert!(!growing.passed());
        assert!(
            growing.text().contains("memory GROWING"),
            "{}",
            growing.text()
        );
        let erring = Verdict::new(&plan(1.0), &samples(0.0), &[ok, failed]);
        assert!(!erring.passed());
        assert!(erring.text().contains("1 of 2 requests FAILED"));
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;

    #[test]
    fn batches_hold_one_account_and_every_event_is_sent_once() {
        let dataset: &'static Dataset = Box::leak(Box::new(Dataset::new(7)));
        let source = EventSource::new(dataset.events(5_000));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..40 {
            let batch = source.take_batch(50);
            assert_eq!(batch.len(), 50);
            assert!(batch.iter().all(|e| e.account == batch[0].account));
            assert!(batch
                .windows(2)
                .all(|w| w[0].time_micros < w[1].time_micros));
            for event in batch {
                assert!(seen.insert(event.id.clone()), "{} twice", event.id);
            }
        }
        // Single events drawn meanwhile come one at a time, never twice.
        for _ in 0..200 {
            let single = source.take_batch(1);
            assert_eq!(single.len(), 1);
            assert!(seen.insert(single[0].id.clone()), "{} twice", single[0].id);
        }
    }
}
