//! The scenarios against Auditlog itself, over real HTTP to `auditlog serve`:
//! ingest, first and deep pages, histograms and exports.

use crate::error::BenchResult;
use crate::generator::{Combination, Event};
use crate::results::Recorder;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A keep-alive HTTP client (one connection per concurrent task).
pub fn client() -> BenchResult<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(600))
        .build()?)
}

/// The value of an unlabelled series in `/metrics` (a gauge, a counter or a
/// histogram's `_count` / `_sum`), if the server exposes it.
pub async fn scrape_value(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Records how many events each group commit of the server carried (so
/// far, on average): events stored ÷ commits, from `/metrics`. Every build
/// exposes both series; `auditlog_writer_lingers_total` only builds with
/// the linger.
pub async fn record_group_size(base: &str, case: &str, recorder: &Recorder) -> BenchResult<()> {
    let http = client()?;
    let stored = scrape_value(&http, base, "auditlog_events_stored_total").await;
    let commits = scrape_value(&http, base, "auditlog_writer_commit_seconds_count").await;
    if let (Some(stored), Some(commits)) = (stored, commits.filter(|c| *c > 0.0)) {
        recorder.record(
            "ingest",
            case,
            "auditlog",
            "events_per_commit",
            stored / commits,
        )?;
        recorder.record("ingest", case, "auditlog", "commits", commits)?;
    }
    if let Some(lingers) = scrape_value(&http, base, "auditlog_writer_lingers_total").await {
        recorder.record("ingest", case, "auditlog", "lingers", lingers)?;
    }
    Ok(())
}

/// The request bodies for `events`: per account, in order, `batch` events
/// per body (`batch == 1` sends bare event objects).
pub fn bodies(events: &[Event], batch: usize) -> Vec<(usize, Vec<u8>)> {
    let mut open: [Vec<&Event>; 3] = Default::default();
    let mut out = Vec::with_capacity(events.len() / batch + 3);
    let finish = |account: usize, group: &mut Vec<&Event>, out: &mut Vec<(usize, Vec<u8>)>| {
        if group.is_empty() {
            return;
        }
        let body = if batch == 1 {
            group[0].json_bytes()
        } else {
            let items: Vec<Value> = group.iter().map(|e| e.to_json()).collect();
            serde_json::to_vec(&json!({ "events": items })).unwrap_or_default()
        };
        out.push((account, body));
        group.clear();
    };
    for event in events {
        let group = &mut open[event.account];
        group.push(event);
        if group.len() == batch {
            finish(event.account, group, &mut out);
        }
    }
    for (account, group) in open.iter_mut().enumerate() {
        finish(account, group, &mut out);
    }
    out
}

/// Sends every body from `clients` concurrent keep-alive clients; returns the
/// wall time from the first request to the last durable answer.
pub async fn send_all(
    base: &str,
    keys: &[String],
    bodies: Vec<(usize, Vec<u8>)>,
    clients: usize,
) -> BenchResult<Duration> {
    send_all_counting(base, keys, bodies, clients, Arc::new(AtomicUsize::new(0))).await
}

/// [`send_all`], adding one to `answered` per body answered 201 (so that a
/// caller can measure the ingest rate over part of the run).
pub async fn send_all_counting(
    base: &str,
    keys: &[String],
    bodies: Vec<(usize, Vec<u8>)>,
    clients: usize,
    answered: Arc<AtomicUsize>,
) -> BenchResult<Duration> {
    let http = client()?;
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{base}/api/v1/events");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, bodies, next, url) = (http.clone(), bodies.clone(), next.clone(), url.clone());
        let answered = answered.clone();
        let keys = keys.to_vec();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((account, body)) = bodies.get(i) else {
                    return Ok::<(), String>(());
                };
                let response = http
                    .post(&url)
                    .bearer_auth(&keys[*account])
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = response.status();
                if status.as_u16() != 201 {
                    let text = response.text().await.unwrap_or_default();
                    return Err(format!("ingest answered {status}: {text}"));
                }
                response.bytes().await.map_err(|e| e.to_string())?;
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

pub(crate) async fn get(http: &reqwest::Client, url: &str, key: &str) -> BenchResult<Vec<u8>> {
    let response = http.get(url).bearer_auth(key).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        return Err(format!(
            "GET {url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    Ok(body.to_vec())
}

/// Times `repeat` sequential GETs of `url` on one keep-alive connection,
/// after a warm-up.
pub(crate) async fn time_gets(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    repeat: usize,
) -> BenchResult<Vec<Duration>> {
    for _ in 0..repeat.clamp(1, 10) {
        get(http, url, key).await?;
    }
    let mut samples = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let started = Instant::now();
        get(http, url, key).await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// First page of 50 for each combination, then page 200 by cursor.
pub async fn pages(
    base: &str,
    key: &str,
    combinations: &[Combination],
    repeat: usize,
    recorder: &Recorder,
) -> BenchResult<()> {
    let http = client()?;
    for combination in combinations {
        let url = format!(
            "{base}/api/v1/events?{}&limit=50",
            combination.query_string()
        );
        let first: Value = serde_json::from_slice(&get(&http, &url, key).await?)?;
        if first["events"].as_array().is_none_or(|e| e.is_empty()) {
            return Err(format!("{} returned no events", combination.name).into());
        }
        let mut samples = time_gets(&http, &url, key, repeat).await?;
        recorder.latencies("page", combination.name, "auditlog", &mut samples)?;
    }
    // Walk 199 pages by cursor to find the cursor of page 200.
    let mut cursor: Option<String> = None;
    for _ in 0..199 {
        let url = match &cursor {
            Some(c) => format!(
                "{base}/api/v1/events?limit=50&cursor={}",
                crate::generator::percent_encode(c)
            ),
            None => format!("{base}/api/v1/events?limit=50"),
        };
        let page: Value = serde_json::from_slice(&get(&http, &url, key).await?)?;
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            return Err("fewer than 200 pages to walk; load more events".into());
        }
    }
    let url = format!(
        "{base}/api/v1/events?limit=50&cursor={}",
        crate::generator::percent_encode(cursor.as_deref().unwrap_or_default())
    );
    let mut samples = time_gets(&http, &url, key, repeat).await?;
    recorder.latencies("page", "page 200 by cursor", "auditlog", &mut samples)
}

/// The per-day histogram (whose `total` is the count) of each combination.
pub async fn histograms(
    base: &str,
    key: &str,
    combinations: &[Combination],
    repeat: usize,
    recorder: &Recorder,
) -> BenchResult<()> {
    let http = client()?;
    for combination in combinations {
        let url = format!(
            "{base}/api/v1/events/histogram?{}&interval=day",
            combination.query_string()
        );
        let answer: Value = serde_json::from_slice(&get(&http, &url, key).await?)?;
        let total = answer["total"].as_f64().unwrap_or(f64::NAN);
        recorder.record("count", combination.name, "auditlog", "total", total)?;
        let mut samples = time_gets(&http, &url, key, repeat).await?;
        recorder.record(
            "count",
            combination.name,
            "auditlog",
            "histogram_ms",
            crate::results::percentile_ms(&mut samples, 0.5),
        )?;
    }
    Ok(())
}

/// One CSV export through `POST /api/v1/exports`, polled until completed,
/// then downloaded. Returns (rows, bytes, seconds to completion).
pub async fn export(
    base: &str,
    key: &str,
    filters: Value,
) -> BenchResult<(u64, u64, Duration, Duration)> {
    let http = client()?;
    let started = Instant::now();
    let response = http
        .post(format!("{base}/api/v1/exports"))
        .bearer_auth(key)
        .json(&json!({"format": "csv", "filters": filters}))
        .send()
        .await?;
    let status = response.status();
    let created: Value = response.json().await?;
    if status.as_u16() != 202 {
        return Err(format!("POST /api/v1/exports answered {status}: {created}").into());
    }
    let id = match &created["export"]["id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(format!("the export answer has no id: {created}").into()),
    };
    let export = loop {
        let body = get(&http, &format!("{base}/api/v1/exports/{id}"), key).await?;
        let answer: Value = serde_json::from_slice(&body)?;
        match answer["export"]["status"].as_str() {
            Some("completed") => break answer["export"].clone(),
            Some("failed") | Some("expired") => {
                return Err(format!("export {id} ended as {}", answer["export"]).into())
            }
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    let to_completion = started.elapsed();
    let download_started = Instant::now();
    let file = get(&http, &format!("{base}/api/v1/exports/{id}/download"), key).await?;
    let download = download_started.elapsed();
    let rows = export["row_count"].as_u64().unwrap_or(0);
    let size = export["size_bytes"].as_u64().unwrap_or(file.len() as u64);
    if size != file.len() as u64 {
        return Err(format!("export size_bytes {size} but downloaded {}", file.len()).into());
    }
    Ok((rows, size, to_completion, download))
}

/// Whether this server has the exports API (it landed on its own branch).
pub async fn has_exports(base: &str, key: &str) -> bool {
    let Ok(http) = client() else { return false };
    match http
        .get(format!("{base}/api/v1/exports"))
        .bearer_auth(key)
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}
