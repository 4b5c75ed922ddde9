//! `retention`: pruning (issue 16) on a fresh embedded store loaded with
//! the dataset, in one run:
//!
//! 1. the dataset ingested (HTTP batches of 500, 4 clients);
//! 2. **half of the store pruned with no ingest**: each account gets a
//!    webhook stream to a closed port from the middle of its seqs (it
//!    never gets further, so pruning stops there) and `retention_days = 0`;
//!    the pruning rate (bodies removed ÷ the time from the policy's PUT to
//!    the last pruning done, and ÷ the jobs' own planned → finished times),
//!    and the bytes on disk (database file and WAL) before and after, once
//!    the incremental vacuum after the pruning has stopped shrinking them;
//! 3. **ingest while pruning runs**: the dataset sent again and again (new ids) at
//!    full rate, 20 s of it measured with no pruning possible (the streams
//!    hold it back), then the streams deleted, so that the stored second
//!    halves are pruned while ingest goes on: ingest's rate during that
//!    pruning against the 20 s before, and the pruning's rate under ingest.
//!
//! The store is removed afterwards.

use crate::auditlog;
use crate::error::BenchResult;
use crate::generator::{self, Event};
use crate::results::Recorder;
use crate::server::{self, Server};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SECTION: &str = "retention";
pub const LOAD: &str = "load (batches of 500, 4 clients)";
pub const PRUNE_HALF: &str = "pruning half of the store, no ingest";
pub const DISK_BEFORE: &str = "bytes on disk before pruning half";
pub const DISK_AFTER: &str = "bytes on disk after pruning half (and its incremental vacuum)";
pub const INGEST_BEFORE: &str = "ingest on the loaded store, no pruning (20 s)";
pub const INGEST_DURING: &str = "ingest while the other half is pruned";
pub const PRUNE_INGESTING: &str = "pruning the other half while ingest runs";

const SERVE_ARGS: [&str; 6] = [
    "--stream-allow-private",
    "127.0.0.1/32",
    "--retention-min-days",
    "0",
    "--prune-interval",
    "1s",
];

/// The ids of the events sent again in phase 3 end with this and the round.
const AGAIN_SUFFIX: &str = "-again";

fn db_bytes(dir: &Path) -> u64 {
    ["auditlog.db", "auditlog.db-wal"]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum()
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> BenchResult<Value> {
    let mut request = http.request(method, &url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(format!("{url}: {status} {text}").into());
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The admin keys of the generator's accounts, in their order.
fn admin_keys(bin: &Path, dir: &Path) -> BenchResult<Vec<String>> {
    generator::ACCOUNTS
        .iter()
        .map(|(name, ..)| {
            let out = server::cli(
                bin,
                dir,
                &["key", "create", "--account", name, "--scope", "admin"],
            )?;
            out.lines()
                .map(str::trim)
                .find(|l| l.starts_with("alk_"))
                .map(str::to_string)
                .ok_or_else(|| "no admin key in the output of key create".into())
        })
        .collect()
}

/// Waits until, in every account, the first pruning with an id above
/// `after[i]` is done (later ones chase what ingest adds meanwhile);
/// returns (bodies those removed, their earliest planned_at and latest
/// finished_at, in microseconds).
async fn wait_for_prunings(
    http: &reqwest::Client,
    base: &str,
    admins: &[String],
    after: &[i64],
) -> BenchResult<(u64, i64, i64)> {
    let deadline = Instant::now() + Duration::from_secs(7_200);
    let micros = |v: &Value| {
        v.as_str()
            .and_then(|t| auditlog_core::Timestamp::parse("t", t).ok())
            .map(|t| t.micros())
    };
    loop {
        let mut removed = 0;
        let mut first_planned = i64::MAX;
        let mut last_finished = 0;
        let mut all_done = true;
        for (admin, after) in admins.iter().zip(after) {
            let view = call(
                http,
                reqwest::Method::GET,
                format!("{base}/api/v1/retention"),
                admin,
                None,
            )
            .await?;
            let prunings = view["retention"]["prunings"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let first_new = prunings
                .iter()
                .filter(|p| p["id"].as_i64().unwrap_or(0) > *after)
                .min_by_key(|p| p["id"].as_i64().unwrap_or(0));
            let Some(job) = first_new.filter(|p| p["status"] == "done") else {
                all_done = false;
                break;
            };
            removed += job["removed"].as_u64().unwrap_or(0);
            first_planned = first_planned.min(micros(&job["planned_at"]).unwrap_or(i64::MAX));
            last_finished = last_finished.max(micros(&job["finished_at"]).unwrap_or(0));
        }
        if all_done {
            return Ok((removed, first_planned, last_finished));
        }
        if Instant::now() > deadline {
            return Err("the prunings did not finish within 2 hours".into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The newest pruning's id per account (0: none yet).
async fn newest_jobs(
    http: &reqwest::Client,
    base: &str,
    admins: &[String],
) -> BenchResult<Vec<i64>> {
    let mut ids = Vec::new();
    for admin in admins {
        let view = call(
            http,
            reqwest::Method::GET,
            format!("{base}/api/v1/retention"),
            admin,
            None,
        )
        .await?;
        ids.push(view["retention"]["prunings"][0]["id"].as_i64().unwrap_or(0));
    }
    Ok(ids)
}

/// Waits until the store's bytes on disk stop changing (3 equal readings
/// a second apart); returns them and when they stopped.
async fn settled_bytes(dir: &Path) -> (u64, Instant) {
    let mut last = db_bytes(dir);
    let mut at = Instant::now();
    let mut same = 0;
    while same < 3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = db_bytes(dir);
        if now == last {
            same += 1;
        } else {
            same = 0;
            last = now;
            at = Instant::now();
        }
    }
    (last, at)
}

pub async fn run(
    bin: &Path,
    work_dir: &Path,
    events: &[Event],
    ingest_while_pruning: bool,
    recorder: &Recorder,
) -> BenchResult<()> {
    let n = events.len();
    let http = reqwest::Client::new();
    let dir = work_dir.join("auditlog-retention");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let keys: Vec<String> = generator::ACCOUNTS
        .iter()
        .map(|(name, ..)| server::account_with_key(bin, &dir, name))
        .collect::<BenchResult<_>>()?;
    let admins = admin_keys(bin, &dir)?;
    let server = Server::start_with(bin, &dir, &SERVE_ARGS)?;
    let base = server.base.clone();

    // 1. Load.
    let elapsed = auditlog::send_all(&base, &keys, auditlog::bodies(events, 500), 4).await?;
    recorder.record(
        SECTION,
        LOAD,
        "auditlog",
        "events_per_s",
        n as f64 / elapsed.as_secs_f64(),
    )?;
    eprintln!("loaded {n} events in {:.0} s", elapsed.as_secs_f64());

    // 2. Half of each account pruned, no ingest.
    for admin in &admins {
        let view = call(
            &http,
            reqwest::Method::GET,
            format!("{base}/api/v1/retention"),
            admin,
            None,
        )
        .await?;
        let last = view["retention"]["next"]["bounds"]["last_seq"]
            .as_u64()
            .ok_or("no last_seq in /api/v1/retention")?;
        call(
            &http,
            reqwest::Method::POST,
            format!("{base}/api/v1/streams"),
            admin,
            Some(json!({"kind": "webhook", "url": "http://127.0.0.1:9/closed", "from_seq": last / 2 + 1})),
        )
        .await?;
    }
    let (before, _) = settled_bytes(&dir).await;
    recorder.record(
        SECTION,
        DISK_BEFORE,
        "auditlog",
        "mib",
        before as f64 / 1_048_576.0,
    )?;
    let jobs_before = newest_jobs(&http, &base, &admins).await?;
    let started = Instant::now();
    for admin in &admins {
        call(
            &http,
            reqwest::Method::PUT,
            format!("{base}/api/v1/retention"),
            admin,
            Some(json!({"retention_days": 0})),
        )
        .await?;
    }
    let (removed, planned, finished) =
        wait_for_prunings(&http, &base, &admins, &jobs_before).await?;
    let wall = started.elapsed();
    let (after, settled_at) = settled_bytes(&dir).await;
    let jobs_s = (finished - planned) as f64 / 1e6;
    eprintln!(
        "pruned {removed} bodies in {:.1} s (jobs {jobs_s:.1} s); {before} -> {after} bytes",
        wall.as_secs_f64()
    );
    recorder.record(SECTION, PRUNE_HALF, "auditlog", "removed", removed as f64)?;
    recorder.record(
        SECTION,
        PRUNE_HALF,
        "auditlog",
        "events_per_s",
        removed as f64 / wall.as_secs_f64(),
    )?;
    recorder.record(
        SECTION,
        PRUNE_HALF,
        "auditlog",
        "events_per_s_jobs",
        removed as f64 / jobs_s.max(1e-3),
    )?;
    recorder.record(
        SECTION,
        DISK_AFTER,
        "auditlog",
        "mib",
        after as f64 / 1_048_576.0,
    )?;
    recorder.record(
        SECTION,
        DISK_AFTER,
        "auditlog",
        "returned_pct",
        (1.0 - after as f64 / before as f64) * 100.0,
    )?;
    recorder.record(
        SECTION,
        DISK_AFTER,
        "auditlog",
        "settled_after_s",
        settled_at.duration_since(started).as_secs_f64(),
    )?;

    if !ingest_while_pruning {
        server.stop()?;
        std::fs::remove_dir_all(&dir)?;
        return Ok(());
    }

    // 3. Ingest, first with pruning held back, then while the other halves
    // are pruned: the dataset sent again and again (new ids each round)
    // until the pruning is done, since pruning is slower than ingest.
    let answered = Arc::new(AtomicUsize::new(0));
    let ingest = {
        let (base, keys, answered) = (base.clone(), keys.clone(), answered.clone());
        let events = events.to_vec();
        tokio::spawn(async move {
            for round in 1.. {
                let again: Vec<Event> = events
                    .iter()
                    .map(|e| {
                        let mut e = e.clone();
                        e.id.push_str(&format!("{AGAIN_SUFFIX}{round}"));
                        e
                    })
                    .collect();
                let bodies = auditlog::bodies(&again, 500);
                auditlog::send_all_counting(&base, &keys, bodies, 4, answered.clone())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        })
    };
    let sample = || (Instant::now(), answered.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (t0, b0) = sample();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (t1, b1) = sample();
    let jobs_before = newest_jobs(&http, &base, &admins).await?;
    for admin in &admins {
        let list = call(
            &http,
            reqwest::Method::GET,
            format!("{base}/api/v1/streams"),
            admin,
            None,
        )
        .await?;
        for stream in list["streams"].as_array().cloned().unwrap_or_default() {
            call(
                &http,
                reqwest::Method::DELETE,
                format!("{base}/api/v1/streams/{}", stream["id"]),
                admin,
                None,
            )
            .await?;
        }
    }
    let (removed, planned, finished) =
        wait_for_prunings(&http, &base, &admins, &jobs_before).await?;
    let (t2, b2) = sample();
    if ingest.is_finished() {
        return Err(format!(
            "ingest stopped before the pruning ended: {:?}",
            ingest.await
        )
        .into());
    }
    ingest.abort();
    let per_s = |bodies: usize, from: Instant, to: Instant| {
        (bodies * 500) as f64 / to.duration_since(from).as_secs_f64()
    };
    let without = per_s(b1 - b0, t0, t1);
    let during = per_s(b2 - b1, t1, t2);
    let jobs_s = (finished - planned) as f64 / 1e6;
    eprintln!(
        "ingest {without:.0}/s before, {during:.0}/s while {removed} bodies were pruned ({:.1} s)",
        t2.duration_since(t1).as_secs_f64()
    );
    recorder.record(SECTION, INGEST_BEFORE, "auditlog", "events_per_s", without)?;
    recorder.record(SECTION, INGEST_DURING, "auditlog", "events_per_s", during)?;
    recorder.record(
        SECTION,
        INGEST_DURING,
        "auditlog",
        "ingest_cost_pct",
        (1.0 - during / without) * 100.0,
    )?;
    recorder.record(
        SECTION,
        PRUNE_INGESTING,
        "auditlog",
        "removed",
        removed as f64,
    )?;
    recorder.record(
        SECTION,
        PRUNE_INGESTING,
        "auditlog",
        "events_per_s",
        removed as f64 / t2.duration_since(t1).as_secs_f64(),
    )?;
    recorder.record(
        SECTION,
        PRUNE_INGESTING,
        "auditlog",
        "events_per_s_jobs",
        removed as f64 / jobs_s.max(1e-3),
    )?;
    server.stop()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
