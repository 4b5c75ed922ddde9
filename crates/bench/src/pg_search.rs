//! `pg-search`: free text on the PostgreSQL backend (issue 14, migration
//! 0013), over real HTTP to `auditlog serve --database-url`.
//!
//! - **Ingest cost**: the dataset ingested (batches of 500, 4 clients) into a
//!   fresh database by `--baseline-bin` (a build without the full-text index)
//!   and by `--auditlog-bin` (with it), alternating, `--pg-rounds` times each,
//!   in the same run; events/s of each and their ratio. Without
//!   `--baseline-bin`, "without" is `--auditlog-bin` with the GIN index
//!   dropped before ingest (so the words column is still computed and
//!   written: the index's cost alone).
//! - **Bytes**: after `VACUUM ANALYZE`, the GIN index's size and the `words`
//!   column's share of the heap, per event; and the whole `event_log`
//!   (table + indexes) of the two builds' databases.
//! - **Queries** on the database the last run with the index loaded: words of
//!   the big account chosen by how many events hold them (about 1k, 10k and
//!   100k, and the most frequent one), each alone, as a prefix, and beside
//!   `type:` and `time:`: the first page of 50 (p50/p95/p99 of `--repeat`
//!   sequential requests on one keep-alive connection) and the per-day
//!   histogram, whose `total` is the count (median of `--count-repeat`).

use crate::auditlog;
use crate::error::BenchResult;
use crate::generator::{percent_encode, Event, ACCOUNTS};
use crate::results::{percentile_ms, Recorder};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

/// The databases this scenario creates (and leaves for inspection; `clean`
/// does not know them: drop them by hand).
const WITH_INDEX: &str = "auditlog_pgsearch_with";
const WITHOUT_INDEX: &str = "auditlog_pgsearch_without";

pub struct Options<'a> {
    pub bin: &'a Path,
    pub baseline_bin: Option<&'a Path>,
    /// libpq-style settings of the server (for the admin connection).
    pub pg_url: &'a str,
    /// The same server as a URL without a database name, for `auditlog`.
    pub pg_base: &'a str,
    pub rounds: usize,
    pub repeat: usize,
    pub count_repeat: usize,
}

async fn connect(pg_url: &str, dbname: &str) -> BenchResult<Client> {
    let (client, connection) =
        tokio_postgres::connect(&format!("{pg_url} dbname={dbname}"), NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("postgres connection error: {e}");
        }
    });
    Ok(client)
}

async fn recreate(pg_url: &str, name: &str) -> BenchResult<()> {
    let admin = connect(pg_url, "postgres").await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    Ok(())
}

/// `auditlog serve` on PostgreSQL; killed if dropped.
struct PgServer {
    child: Child,
    base: String,
}

impl PgServer {
    fn start(bin: &Path, url: &str) -> BenchResult<Self> {
        let mut child = Command::new(bin)
            .args(["--database-url", url, "serve", "--listen", "127.0.0.1:0"])
            .env_remove("AUDITLOG_DATA_DIR")
            .env("AUDITLOG_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout from auditlog serve")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .ok_or("auditlog serve exited before listening")??;
            if let Some(url) = line.strip_prefix("auditlog listening on ") {
                break url.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, base })
    }

    fn stop(mut self) -> BenchResult<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(bin: &Path, url: &str, args: &[&str]) -> BenchResult<String> {
    let out = Command::new(bin)
        .args(["--database-url", url])
        .args(args)
        .env("AUDITLOG_LOG", "warn")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "auditlog {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The three accounts with a key each (ingest and read).
fn accounts(bin: &Path, url: &str) -> BenchResult<Vec<String>> {
    let mut keys = Vec::new();
    for (name, ..) in ACCOUNTS {
        cli(bin, url, &["account", "create", name])?;
        let out = cli(
            bin,
            url,
            &[
                "key",
                "create",
                "--account",
                name,
                "--scope",
                "ingest",
                "--scope",
                "read",
            ],
        )?;
        keys.push(
            out.lines()
                .map(str::trim)
                .find(|l| l.starts_with("alk_"))
                .ok_or_else(|| format!("no key in {out:?}"))?
                .to_string(),
        );
    }
    Ok(keys)
}

/// Ingests `events` into a fresh database `name` with `bin`; returns the
/// keys and events/s.
async fn ingest(
    options: &Options<'_>,
    bin: &Path,
    name: &str,
    events: &[Event],
    drop_index: bool,
) -> BenchResult<(Vec<String>, f64)> {
    recreate(options.pg_url, name).await?;
    let url = format!("{}/{name}", options.pg_base);
    let keys = accounts(bin, &url)?;
    if drop_index {
        connect(options.pg_url, name)
            .await?
            .batch_execute("DROP INDEX event_log_by_words")
            .await?;
    }
    let server = PgServer::start(bin, &url)?;
    let bodies = auditlog::bodies(events, 500);
    let elapsed = auditlog::send_all(&server.base, &keys, bodies, 4).await?;
    server.stop()?;
    Ok((keys, events.len() as f64 / elapsed.as_secs_f64()))
}

/// Bytes of `event_log` with its indexes, after `VACUUM ANALYZE`.
async fn log_bytes(client: &Client) -> BenchResult<f64> {
    client.batch_execute("VACUUM ANALYZE event_log").await?;
    let row = client
        .query_one("SELECT pg_total_relation_size('event_log')::float8", &[])
        .await?;
    Ok(row.get(0))
}

pub async fn run(options: &Options<'_>, events: &[Event], recorder: &Recorder) -> BenchResult<()> {
    // "Audit Log" is reserved for Auditlog's own entries since the
    // generator was written: those events are left out.
    let events: Vec<Event> = events
        .iter()
        .filter(|e| e.event_type != "Audit Log")
        .cloned()
        .collect();
    let events = events.as_slice();
    eprintln!("{} events without the reserved type", events.len());
    let n = events.len() as f64;
    let case = "HTTP batches of 500, 4 clients";
    let mut with_keys = Vec::new();
    let (mut with_rates, mut without_rates) = (Vec::new(), Vec::new());
    for round in 0..options.rounds.max(1) {
        {
            // Without `--baseline-bin`, the same build with the GIN index
            // dropped before ingest (the words column is still written).
            let (bin, drop_index) = match options.baseline_bin {
                Some(baseline) => (baseline, false),
                None => (options.bin, true),
            };
            let (_, rate) = ingest(options, bin, WITHOUT_INDEX, events, drop_index).await?;
            recorder.record("pgsearch", case, "without index", "events_per_s", rate)?;
            without_rates.push(rate);
            if round == 0 {
                let client = connect(options.pg_url, WITHOUT_INDEX).await?;
                let bytes = log_bytes(&client).await?;
                recorder.record(
                    "pgsearch",
                    "event_log",
                    "without index",
                    "bytes_per_event",
                    bytes / n,
                )?;
            }
        }
        let (keys, rate) = ingest(options, options.bin, WITH_INDEX, events, false).await?;
        recorder.record("pgsearch", case, "with index", "events_per_s", rate)?;
        with_rates.push(rate);
        with_keys = keys;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    {
        recorder.record(
            "pgsearch",
            case,
            "with index",
            "ingest_ratio",
            mean(&with_rates) / mean(&without_rates),
        )?;
    }
    let client = connect(options.pg_url, WITH_INDEX).await?;
    let total = log_bytes(&client).await?;
    recorder.record(
        "pgsearch",
        "event_log",
        "with index",
        "bytes_per_event",
        total / n,
    )?;
    let row = client
        .query_one(
            "SELECT pg_relation_size('event_log_by_words')::float8, \
             (SELECT COALESCE(sum(pg_column_size(words)), 0)::float8 FROM event_log), \
             (SELECT COUNT(*)::float8 FROM event_log)",
            &[],
        )
        .await?;
    let (index, column, rows): (f64, f64, f64) = (row.get(0), row.get(1), row.get(2));
    recorder.record(
        "pgsearch",
        "GIN index",
        "with index",
        "bytes_per_event",
        index / rows,
    )?;
    recorder.record(
        "pgsearch",
        "words column",
        "with index",
        "bytes_per_event",
        column / rows,
    )?;
    recorder.record(
        "pgsearch",
        "index + column",
        "with index",
        "bytes_per_event",
        (index + column) / rows,
    )?;
    queries(options, &client, &with_keys[0], recorder).await
}

/// Words of account 1 (the big one) nearest to each target frequency.
async fn pick_words(client: &Client) -> BenchResult<Vec<(String, i64)>> {
    let rows = client
        .query(
            "SELECT w, COUNT(*) FROM event_log l, unnest(string_to_array(l.words, ' ')) AS w \
             WHERE (l.key >> 40) = 1 GROUP BY w",
            &[],
        )
        .await?;
    let counts: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut picked = Vec::new();
    for target in [1_000_f64, 10_000.0, 100_000.0] {
        // Letters only (a readable word), nearest on a log scale.
        if let Some(best) = counts
            .iter()
            .filter(|(w, _)| w.len() >= 3 && w.chars().all(char::is_alphabetic))
            .min_by(|a, b| {
                let d = |c: i64| ((c as f64).ln() - target.ln()).abs();
                d(a.1).total_cmp(&d(b.1))
            })
        {
            picked.push(best.clone());
        }
    }
    if let Some(most) = counts.iter().max_by_key(|(_, c)| *c) {
        picked.push(most.clone());
    }
    Ok(picked)
}

async fn get(http: &reqwest::Client, url: &str, key: &str) -> BenchResult<Value> {
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
    Ok(serde_json::from_slice(&body)?)
}

async fn timed(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    warm: usize,
    repeat: usize,
) -> BenchResult<Vec<Duration>> {
    for _ in 0..warm {
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

async fn queries(
    options: &Options<'_>,
    client: &Client,
    key: &str,
    recorder: &Recorder,
) -> BenchResult<()> {
    let words = pick_words(client).await?;
    let url = format!("{}/{WITH_INDEX}", options.pg_base);
    let server = PgServer::start(options.bin, &url)?;
    let http = auditlog::client()?;
    // The last quarter of the generated year (2025-10-01 to the end).
    let recent = "type:\"Test Case\" time:>=2025-10-01";
    let mut cases = Vec::new();
    for (word, count) in &words {
        cases.push((format!("{word} ({count} events)"), word.clone()));
        if word.chars().count() > 4 {
            let prefix: String = word.chars().take(word.chars().count() - 2).collect();
            cases.push((
                format!("{prefix}* (prefix of {word})"),
                format!("{prefix}*"),
            ));
        }
        cases.push((format!("{word} {recent}"), format!("{word} {recent}")));
    }
    for (case, q) in cases {
        let page_url = format!(
            "{}/api/v1/events?q={}&limit=50",
            server.base,
            percent_encode(&q)
        );
        let first = get(&http, &page_url, key).await?;
        let returned = first["events"].as_array().map_or(0, Vec::len);
        recorder.record("pgsearch", &case, "first page", "events", returned as f64)?;
        let mut samples = timed(&http, &page_url, key, 10, options.repeat).await?;
        recorder.latencies("pgsearch", &case, "first page", &mut samples)?;
        let count_url = format!(
            "{}/api/v1/events/histogram?q={}&interval=day",
            server.base,
            percent_encode(&q)
        );
        let answer = get(&http, &count_url, key).await?;
        recorder.record(
            "pgsearch",
            &case,
            "count",
            "total",
            answer["total"].as_f64().unwrap_or(f64::NAN),
        )?;
        let mut samples = timed(&http, &count_url, key, 1, options.count_repeat).await?;
        recorder.record(
            "pgsearch",
            &case,
            "count",
            "median_ms",
            percentile_ms(&mut samples, 0.5),
        )?;
        recorder.record(
            "pgsearch",
            &case,
            "count",
            "max_ms",
            percentile_ms(&mut samples, 1.0),
        )?;
    }
    server.stop()
}
