//! `streams`: log stream delivery to a local webhook receiver (on
//! 127.0.0.1, in this process: it counts each batch's events and checks
//! that every account's seqs arrive in order, without checking signatures),
//! and what delivering costs ingest. On fresh stores:
//!
//! 1. the dataset ingested alone (HTTP batches of 500, 4 clients): the
//!    baseline ingest rate;
//! 2. a fresh store with one webhook stream per account (three, from seq 1),
//!    the dataset ingested at full rate while they deliver: ingest's rate
//!    then, and delivery's (events delivered ÷ the time from the first
//!    request until the last event arrived);
//! 3. on that loaded store, three new streams from seq 1 with no ingest:
//!    the backlog drained (events ÷ time to the last arrival), and the
//!    largest account's stream alone (one stream's rate);
//! 4. the streams deleted, the dataset ingested again (new ids) at full
//!    rate: for 20 s with no stream (ingest's rate then), then three new
//!    streams from seq 1 drain the stored backlog while ingest goes on:
//!    ingest's rate during the drain (the same run's figure, so the cost to
//!    ingest of delivering at full speed) and the drain's (the dataset's
//!    events ÷ time to their last arrival).
//!
//! Each store is removed afterwards. `--stream-phases` picks phases (3 and 4
//! need the store phase 2 loads: without 2 it is loaded with no stream). Each
//! phase's start is printed with the server's pid (for `perf record -p`).

use crate::auditlog;
use crate::error::BenchResult;
use crate::generator::{self, Event};
use crate::results::Recorder;
use crate::server::{self, Server};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SECTION: &str = "streams";
pub const INGEST_ALONE: &str = "ingest alone (batches of 500, 4 clients)";
pub const INGEST_DELIVERING: &str = "ingest while 3 streams deliver";
pub const DELIVERY_DURING_INGEST: &str = "delivery during that ingest (3 streams)";
pub const DELIVERY_BACKLOG: &str = "delivery of the stored backlog (3 streams)";
pub const DELIVERY_ONE_STREAM: &str = "delivery of the stored backlog (largest account, 1 stream)";
pub const INGEST_BEFORE_DRAIN: &str = "ingest on the loaded store, no stream (20 s)";
pub const INGEST_DURING_DRAIN: &str =
    "ingest on the loaded store while 3 streams drain the backlog";
pub const DELIVERY_BACKLOG_INGESTING: &str =
    "delivery of the stored backlog (3 streams) with ingest at full rate meanwhile";

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// Events per account name.
    events: HashMap<String, u64>,
    /// The highest seq per stream (the URL's query) and account, to check the order.
    last_seq: HashMap<(String, String), u64>,
    /// When each account's count last grew.
    last_arrival: HashMap<String, Instant>,
    batches: u64,
    out_of_order: u64,
    /// Batch ids seen: a batch sent again (the same `webhook-id`, after a
    /// failure to record its acceptance) is counted once, its events as
    /// duplicates.
    ids: std::collections::HashSet<String>,
    duplicates: u64,
}

/// What the receiver reads of each event (the rest is skipped unparsed,
/// so that the receiver, in this process on the same cores as the server,
/// costs less than a full parse into `Value`s).
#[derive(serde::Deserialize)]
struct Seen1<'a> {
    #[serde(borrow)]
    account: std::borrow::Cow<'a, str>,
    seq: u64,
    #[serde(borrow)]
    event_type: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
}

/// The ids of the events ingested while the backlog drains (phase 4) end with this.
const MEANWHILE_SUFFIX: &str = "-meanwhile";

#[derive(Clone)]
struct Receiver {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    async fn start() -> BenchResult<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |query: axum::extract::RawQuery,
                      headers: axum::http::HeaderMap,
                      body: axum::body::Bytes| {
                    let seen = shared.clone();
                    let stream = query.0.unwrap_or_default();
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    async move {
                        let Ok(events) = serde_json::from_slice::<Vec<Seen1<'_>>>(&body) else {
                            return (axum::http::StatusCode::BAD_REQUEST, "not a JSON array");
                        };
                        let now = Instant::now();
                        if let Ok(mut guard) = seen.lock() {
                            let seen = &mut *guard;
                            seen.batches += 1;
                            if !seen.ids.insert(id) {
                                seen.duplicates += events.len() as u64;
                                return (axum::http::StatusCode::OK, "ok");
                            }
                            // A batch is one stream's, so one account's: the
                            // bookkeeping is per run of one account's events,
                            // not per event (this receiver shares the cores).
                            let mut start = 0;
                            while start < events.len() {
                                let account = &events[start].account;
                                let end = events[start..]
                                    .iter()
                                    .position(|e| e.account != *account)
                                    .map_or(events.len(), |n| start + n);
                                let run = &events[start..end];
                                start = end;
                                let last = seen
                                    .last_seq
                                    .entry((stream.clone(), account.to_string()))
                                    .or_insert(0);
                                let mut counted = 0;
                                for event in run {
                                    if event.seq <= *last {
                                        seen.out_of_order += 1;
                                    }
                                    *last = event.seq;
                                    // The streams' own `Auditlog Log Stream` events are not the
                                    // dataset's, nor are those ingested meanwhile (phase 4).
                                    if event.event_type != OWN_TYPE
                                        && !event.id.ends_with(MEANWHILE_SUFFIX)
                                    {
                                        counted += 1;
                                    }
                                }
                                if counted > 0 {
                                    *seen.events.entry(account.to_string()).or_insert(0) += counted;
                                    seen.last_arrival.insert(account.to_string(), now);
                                }
                            }
                        }
                        (axum::http::StatusCode::OK, "ok")
                    }
                },
            ),
        );
        // Room for any batch body the server may send (axum's default
        // limit is 2 MB).
        let app = app.layer(axum::extract::DefaultBodyLimit::max(64 << 20));
        let url = format!("http://{}/hook", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { url, seen })
    }

    fn total(&self) -> u64 {
        self.seen
            .lock()
            .map(|s| s.events.values().sum())
            .unwrap_or(0)
    }

    /// Waits until `want` events arrived (at most `limit`); the instant of
    /// the last arrival of each account.
    async fn wait_for(&self, want: u64, limit: Duration) -> BenchResult<HashMap<String, Instant>> {
        let deadline = Instant::now() + limit;
        while self.total() < want {
            if Instant::now() > deadline {
                return Err(format!(
                    "only {} of {want} events delivered within {limit:?}",
                    self.total()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen = self.seen.lock().map_err(|_| "receiver state poisoned")?;
        if seen.out_of_order > 0 {
            return Err(format!("{} events arrived out of order", seen.out_of_order).into());
        }
        Ok(seen.last_arrival.clone())
    }

    fn reset(&self) {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Seen::default();
        }
    }

    fn batches(&self) -> u64 {
        self.seen.lock().map(|s| s.batches).unwrap_or(0)
    }

    fn duplicates(&self) -> u64 {
        self.seen.lock().map(|s| s.duplicates).unwrap_or(0)
    }
}

/// A fresh store with the generator's accounts; (ingest+read keys, admin keys).
fn fresh(bin: &Path, dir: &Path) -> BenchResult<(Vec<String>, Vec<String>)> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let mut keys = Vec::new();
    let mut admins = Vec::new();
    for (name, ..) in generator::ACCOUNTS {
        keys.push(server::account_with_key(bin, dir, name)?);
        let out = server::cli(
            bin,
            dir,
            &["key", "create", "--account", name, "--scope", "admin"],
        )?;
        admins.push(
            out.lines()
                .map(str::trim)
                .find(|l| l.starts_with("alk_"))
                .ok_or("no admin key in the output of key create")?
                .to_string(),
        );
    }
    Ok((keys, admins))
}

/// One stream per account from seq 1, each to `url?stream=<phase>-<n>`.
async fn create_streams(base: &str, admins: &[String], url: &str, phase: u32) -> BenchResult<()> {
    let http = reqwest::Client::new();
    for (n, admin) in admins.iter().enumerate() {
        let response = http
            .post(format!("{base}/api/v1/streams"))
            .bearer_auth(admin)
            .json(&json!({"kind": "webhook", "url": format!("{url}?stream={phase}-{n}"), "from_seq": 1}))
            .send()
            .await?;
        if response.status().as_u16() != 201 {
            return Err(format!(
                "creating a stream: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            )
            .into());
        }
    }
    Ok(())
}

const OWN_TYPE: &str = "Auditlog Log Stream";

const SERVE_ARGS: [&str; 2] = ["--stream-allow-private", "127.0.0.1/32"];

pub async fn run(
    bin: &Path,
    work_dir: &Path,
    events: &[Event],
    phases: &[u32],
    recorder: &Recorder,
) -> BenchResult<()> {
    let phase = |p: u32| phases.contains(&p);
    let n = events.len() as u64;
    let rate = |count: u64, elapsed: Duration| count as f64 / elapsed.as_secs_f64();
    let limit = Duration::from_secs(1_800);
    let dir = work_dir.join("auditlog-streams");

    // 1. Ingest alone.
    let mut alone = None;
    if phase(1) {
        let (keys, _) = fresh(bin, &dir)?;
        let server = Server::start_with(bin, &dir, &SERVE_ARGS)?;
        eprintln!("streams: phase 1, ingest alone (server pid {})", server.pid);
        let elapsed =
            auditlog::send_all(&server.base, &keys, auditlog::bodies(events, 500), 4).await?;
        let rate = rate(n, elapsed);
        recorder.record(SECTION, INGEST_ALONE, "auditlog", "events_per_s", rate)?;
        alone = Some(rate);
        server.stop()?;
    }
    if !(phase(2) || phase(3) || phase(4)) {
        std::fs::remove_dir_all(&dir)?;
        return Ok(());
    }

    // 2. Ingest while three streams deliver (the store phases 3 and 4 use).
    let (keys, admins) = fresh(bin, &dir)?;
    let receiver = Receiver::start().await?;
    let server = Server::start_with(bin, &dir, &SERVE_ARGS)?;
    eprintln!(
        "streams: phase 2, ingest{} (server pid {})",
        if phase(2) {
            " while 3 streams deliver"
        } else {
            " (no stream)"
        },
        server.pid
    );
    if phase(2) {
        create_streams(&server.base, &admins, &receiver.url, 2).await?;
    }
    let started = Instant::now();
    let elapsed = auditlog::send_all(&server.base, &keys, auditlog::bodies(events, 500), 4).await?;
    if phase(2) {
        let with = rate(n, elapsed);
        let ingested_after = started.elapsed();
        let last = receiver.wait_for(n, limit).await?;
        let done = last.values().max().copied().unwrap_or_else(Instant::now);
        let delivered = done.duration_since(started);
        recorder.record(SECTION, INGEST_DELIVERING, "auditlog", "events_per_s", with)?;
        if let Some(alone) = alone {
            recorder.record(
                SECTION,
                INGEST_DELIVERING,
                "auditlog",
                "ingest_cost_pct",
                (1.0 - with / alone) * 100.0,
            )?;
        }
        recorder.record(
            SECTION,
            DELIVERY_DURING_INGEST,
            "auditlog",
            "events_per_s",
            rate(n, delivered),
        )?;
        recorder.record(
            SECTION,
            DELIVERY_DURING_INGEST,
            "auditlog",
            "lag_after_ingest_s",
            delivered.saturating_sub(ingested_after).as_secs_f64(),
        )?;
        recorder.record(
            SECTION,
            DELIVERY_DURING_INGEST,
            "auditlog",
            "events_per_batch",
            n as f64 / receiver.batches().max(1) as f64,
        )?;
        recorder.record(
            SECTION,
            DELIVERY_DURING_INGEST,
            "auditlog",
            "duplicates",
            receiver.duplicates() as f64,
        )?;
    }

    // 3. The stored backlog, no ingest: three new streams from seq 1.
    if phase(3) {
        eprintln!(
            "streams: phase 3, the backlog drained (server pid {})",
            server.pid
        );
        receiver.reset();
        let started = Instant::now();
        create_streams(&server.base, &admins, &receiver.url, 3).await?;
        let last = receiver.wait_for(n, limit).await?;
        let done = last.values().max().copied().unwrap_or_else(Instant::now);
        recorder.record(
            SECTION,
            DELIVERY_BACKLOG,
            "auditlog",
            "events_per_s",
            rate(n, done.duration_since(started)),
        )?;
        // The largest account's stream on its own figures.
        let (largest, count) = receiver
            .seen
            .lock()
            .map_err(|_| "receiver state poisoned")?
            .events
            .iter()
            .max_by_key(|(_, c)| **c)
            .map(|(a, c)| (a.clone(), *c))
            .ok_or("nothing delivered")?;
        if let Some(at) = last.get(&largest) {
            recorder.record(
                SECTION,
                DELIVERY_ONE_STREAM,
                "auditlog",
                "events_per_s",
                rate(count, at.duration_since(started)),
            )?;
        }
        recorder.record(
            SECTION,
            DELIVERY_BACKLOG,
            "auditlog",
            "duplicates",
            receiver.duplicates() as f64,
        )?;
        recorder.record(
            SECTION,
            DELIVERY_BACKLOG,
            "auditlog",
            "peak_rss_mib",
            server.memory_kib("VmHWM").unwrap_or(0) as f64 / 1024.0,
        )?;
    }
    // 4. The backlog drained while ingest runs at full rate.
    if phase(4) {
        delete_streams(&server.base, &admins).await?;
        receiver.reset();
        let again: Vec<Event> = events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.id.push_str(MEANWHILE_SUFFIX);
                e
            })
            .collect();
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let bodies = auditlog::bodies(&again, 500);
        let total_bodies = bodies.len();
        let ingest = {
            let (base, keys, answered) = (server.base.clone(), keys.clone(), answered.clone());
            tokio::spawn(async move {
                auditlog::send_all_counting(&base, &keys, bodies, 4, answered)
                    .await
                    .map_err(|e| e.to_string())
            })
        };
        let sample = || {
            (
                Instant::now(),
                answered.load(std::sync::atomic::Ordering::Relaxed),
            )
        };
        // Ingest alone first (once it runs: the first answers arrive).
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (t0, b0) = sample();
        tokio::time::sleep(Duration::from_secs(20)).await;
        let (t1, b1) = sample();
        eprintln!(
            "streams: phase 4, the backlog drained with ingest meanwhile (server pid {})",
            server.pid
        );
        create_streams(&server.base, &admins, &receiver.url, 4).await?;
        let last = receiver.wait_for(n, limit).await?;
        let done = last.values().max().copied().unwrap_or_else(Instant::now);
        let (t2, b2) = sample();
        if b2 >= total_bodies {
            return Err("ingest ended before the backlog was drained: use more events".into());
        }
        // Every body counted here held 500 events (only each account's last is shorter).
        let per_s = |bodies: usize, from: Instant, to: Instant| {
            (bodies * 500) as f64 / to.duration_since(from).as_secs_f64()
        };
        let before = per_s(b1 - b0, t0, t1);
        let during = per_s(b2 - b1, t1, t2);
        recorder.record(
            SECTION,
            INGEST_BEFORE_DRAIN,
            "auditlog",
            "events_per_s",
            before,
        )?;
        recorder.record(
            SECTION,
            INGEST_DURING_DRAIN,
            "auditlog",
            "events_per_s",
            during,
        )?;
        recorder.record(
            SECTION,
            INGEST_DURING_DRAIN,
            "auditlog",
            "ingest_cost_pct",
            (1.0 - during / before) * 100.0,
        )?;
        recorder.record(
            SECTION,
            DELIVERY_BACKLOG_INGESTING,
            "auditlog",
            "events_per_s",
            rate(n, done.duration_since(t1)),
        )?;
        recorder.record(
            SECTION,
            DELIVERY_BACKLOG_INGESTING,
            "auditlog",
            "events_per_batch",
            n as f64 / receiver.batches().max(1) as f64,
        )?;
        recorder.record(
            SECTION,
            DELIVERY_BACKLOG_INGESTING,
            "auditlog",
            "duplicates",
            receiver.duplicates() as f64,
        )?;
        ingest.await.map_err(|e| e.to_string())??;
    }
    server.stop()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Deletes every stream of the admins' accounts.
async fn delete_streams(base: &str, admins: &[String]) -> BenchResult<()> {
    let http = reqwest::Client::new();
    for admin in admins {
        let list: Value = http
            .get(format!("{base}/api/v1/streams"))
            .bearer_auth(admin)
            .send()
            .await?
            .json()
            .await?;
        let streams = list["streams"].as_array().cloned().unwrap_or_default();
        for stream in streams {
            let id = stream["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| stream["id"].to_string());
            let response = http
                .delete(format!("{base}/api/v1/streams/{id}"))
                .bearer_auth(admin)
                .send()
                .await?;
            if !response.status().is_success() {
                return Err(format!("deleting stream {id}: {}", response.status()).into());
            }
        }
    }
    Ok(())
}
