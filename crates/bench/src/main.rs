//! `bench`: reproducible benchmarks of Auditlog (the real `auditlog serve`
//! binary over HTTP) side by side with a plain SQLite table and a plain
//! PostgreSQL table, all fed the same seeded events (`generator`).
//!
//! Scenarios share a work directory: `ingest` loads Auditlog and writes the
//! keys to `manifest.json`, `baseline-load` loads the two tables, and
//! `queries`, `export`, `verify` and `disk` measure the loaded stores. Every
//! figure is appended to `<work-dir>/results.jsonl`; `report` renders them
//! as the Markdown tables of BENCHMARKS.md. `bench/run-all.sh` runs them all.
//!
//! `soak` stands apart: a paced mixed load for ten minutes against a fresh
//! store, sampled every 10 s (`soak.rs`, `bench/soak.sh`). So does `send`:
//! `auditlog send` of the dataset as JSON Lines beside the HTTP batch ingest
//! of the same events, then a SIGKILLed run and its rerun (`send.rs`);
//! `jsonl` only writes that file. And `streams`: log stream delivery to a
//! local webhook receiver and its cost to ingest (`streams.rs`). And
//! `search`: issue 14's search targets on the embedded store beside a plain
//! table with an FTS5 table, loaded in the same run (`search.rs`).
//! `retention`: pruning's rate, the bytes it returns and its cost to ingest
//! (`retention.rs`). `erasure`: one data subject's erasure in an existing
//! store given by `--data-dir` (`erasure.rs`).
//!
//! # Layout
//!
//! - This root: the command line and the scenarios' order.
//! - `generator`: the seeded events; `auditlog`, `server`: driving the real
//!   binary over HTTP; `sqlite_baseline`, `postgres_baseline`: the plain
//!   tables.
//! - `results`: figures appended to `results.jsonl`; `report`: the Markdown
//!   tables; `soak`: the ten-minute soak; `send`: `auditlog send`;
//!   `error`: what scenarios return; `search`: the search targets.

mod auditlog;
mod erasure;
mod error;
mod generator;
mod pg_search;
mod postgres_baseline;
mod report;
mod results;
mod retention;
mod search;
mod send;
mod server;
mod soak;
mod sqlite_baseline;
mod streams;

use clap::{Parser, ValueEnum};
use error::BenchResult;
use generator::{seed_combinations, Dataset, Event};
use report::*;
use results::Recorder;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Durable ingest over HTTP: batches of 500 from 4 clients (loads the
    /// full dataset), then one event per request from 64 clients.
    Ingest,
    /// The SQLite and PostgreSQL tables: one INSERT per event (1 and 64
    /// clients), 1,000-row batches, and COPY / one transaction (full dataset).
    BaselineLoad,
    /// First pages, page 200 by cursor, counts and per-day histograms.
    Queries,
    /// Auditlog's total counts and per-day histograms alone (reruns after a
    /// change to the count path, on the store `ingest` loaded).
    Counts,
    /// CSV export of the big account and of one project.
    Export,
    /// `auditlog verify` over the whole store.
    Verify,
    /// Bytes on disk per event.
    Disk,
    /// Markdown tables of every recorded figure.
    Report,
    /// Drops the PostgreSQL database and removes the stores (keeps results).
    Clean,
    /// Every scenario in order, then the report.
    All,
    /// Mixed ingest and queries from several clients for `--duration`
    /// seconds on a fresh store; fails if RSS keeps growing or requests fail.
    Soak,
    /// `auditlog send` of the dataset (JSON Lines without ids) beside HTTP
    /// batches of the same events into one account, then a run SIGKILLed
    /// halfway and rerun: exactly every event once (fresh stores, removed after).
    Send,
    /// Writes the dataset as JSON Lines (without ids) to `<work-dir>/events.jsonl`.
    Jsonl,
    /// Free text on the PostgreSQL backend (`pg_search.rs`): ingest with and
    /// without the full-text index (`--baseline-bin`), its bytes per event,
    /// first pages and counts of words matching 1k–100k events.
    PgSearch,
    /// Log stream delivery to a local webhook receiver: ingest alone, then
    /// ingest while one stream per account delivers, then the stored backlog
    /// drained by new streams (fresh stores, removed after; `streams.rs`).
    Streams,
    /// Search (issue 14): `key:value` and free-text queries over HTTP, their
    /// counts and histograms, the full-text index's ingest cost and bytes per
    /// event, beside a plain table with an FTS5 table of the same words
    /// (own stores in `<work-dir>/search`, kept for reruns; `search.rs`).
    Search,
    /// Pruning (issue 16): half of a freshly loaded store pruned with no
    /// ingest (rate, bytes on disk before and after), then the other half
    /// while ingest runs at full rate, against ingest just before
    /// (`retention.rs`; the store is removed after).
    Retention,
    /// Erasure (issue 16): in the existing embedded store at `--data-dir`
    /// (changed: pass a copy), the actor of account `acme` with the event
    /// count nearest 10,000 erased through the API: events erased, the time
    /// from the POST to `done`, events per second, bytes on disk before and
    /// after (`erasure.rs`).
    Erasure,
}

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Auditlog benchmarks against plain SQLite and PostgreSQL tables"
)]
struct Args {
    scenario: Scenario,
    /// Events in the dataset (the year is spread over them).
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Events sent one per request (64 clients) to a fresh Auditlog store.
    #[arg(long, default_value_t = 50_000)]
    single_events: usize,
    /// Events for the baselines' one-INSERT-per-transaction modes.
    #[arg(long, default_value_t = 3_000)]
    row_events: usize,
    /// Events for the baselines' 1,000-row batch mode.
    #[arg(long, default_value_t = 100_000)]
    batch_events: usize,
    /// Timed requests per first-page measurement (after a warm-up).
    #[arg(long, default_value_t = 200)]
    repeat: usize,
    /// Timed repeats per count / histogram.
    #[arg(long, default_value_t = 5)]
    count_repeat: usize,
    /// Where stores, manifest and results live.
    #[arg(long, default_value = "target/bench-work")]
    work_dir: PathBuf,
    /// The `auditlog` binary (build it with --release first).
    #[arg(long, default_value = "target/release/auditlog")]
    auditlog_bin: PathBuf,
    /// libpq-style connection settings of the PostgreSQL server (trust auth);
    /// the benchmark creates and drops its own database there.
    #[arg(long, default_value = "host=127.0.0.1 port=5432 user=postgres")]
    pg_url: String,
    /// Skip the PostgreSQL baseline (no server available).
    #[arg(long)]
    no_postgres: bool,
    /// pg-search: the PostgreSQL server as a URL without a database, for
    /// `auditlog --database-url`.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pg_base: String,
    /// pg-search: an `auditlog` binary without the full-text index, to
    /// measure ingest without it in the same run.
    #[arg(long)]
    baseline_bin: Option<PathBuf>,
    /// pg-search: ingests of each build, alternating.
    #[arg(long, default_value_t = 1)]
    pg_rounds: usize,
    /// Where `report` writes the Markdown tables.
    #[arg(long, default_value = "bench/results/latest.md")]
    out: PathBuf,
    /// Search: events per store of each cost round (with and without the
    /// full-text index); 0 skips the cost stage.
    #[arg(long, default_value_t = 500_000)]
    cost_events: usize,
    /// Search: cost rounds (each a store with the index, then one without).
    #[arg(long, default_value_t = 2)]
    cost_rounds: usize,
    /// Search: load the events again even if they are loaded.
    #[arg(long)]
    reload: bool,
    /// Soak: seconds of mixed load.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Soak: seconds between samples.
    #[arg(long, default_value_t = 10)]
    sample_every: u64,
    /// Soak: ingest clients (half send batches, half single events).
    #[arg(long, default_value_t = 4)]
    ingest_clients: usize,
    /// Soak: query clients (first pages, filtered pages, cursor pages, histograms).
    #[arg(long, default_value_t = 4)]
    query_clients: usize,
    /// Soak: requests per second of each client.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Soak: events per batch of the batch clients.
    #[arg(long, default_value_t = 50)]
    soak_batch: usize,
    /// Soak: events loaded before the timed load starts.
    #[arg(long, default_value_t = 50_000)]
    preload: usize,
    /// Soak: largest RSS slope over the second half (MiB per minute) that
    /// still counts as bounded.
    #[arg(long, default_value_t = 1.0)]
    max_rss_slope: f64,
    /// Streams: the phases to run (1 ingest alone, 2 ingest while streams
    /// deliver, 3 the backlog drained, 4 the backlog drained with ingest
    /// meanwhile). Phases 3 and 4 run on the store phase 2 loads (loaded
    /// without streams when 2 is left out).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4")]
    stream_phases: Vec<u32>,
    /// Erasure: the existing embedded store to erase a subject in (it is
    /// changed: pass a copy, e.g. of `<work-dir>/search/...` from `bench search`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Retention: stop after half of the store is pruned with no ingest
    /// (at 10M, pruning the other half under full ingest takes hours).
    #[arg(long)]
    no_ingest_while_pruning: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> BenchResult<()> {
    std::fs::create_dir_all(&args.work_dir)?;
    let recorder = Recorder::new(&args.work_dir, args.events);
    let scenarios = match args.scenario {
        Scenario::All => vec![
            Scenario::Ingest,
            Scenario::BaselineLoad,
            Scenario::Queries,
            Scenario::Export,
            Scenario::Verify,
            Scenario::Disk,
            Scenario::Report,
        ],
        one => vec![one],
    };
    let needs_events = scenarios.iter().any(|s| {
        matches!(
            s,
            Scenario::Ingest
                | Scenario::BaselineLoad
                | Scenario::Send
                | Scenario::Jsonl
                | Scenario::Streams
                | Scenario::Retention
                | Scenario::PgSearch
        )
    });
    let dataset = Dataset::new(args.seed);
    let events: Vec<Event> = if needs_events {
        let started = Instant::now();
        let events: Vec<Event> = dataset.events(args.events).collect();
        eprintln!(
            "generated {} events in {:.1} s",
            events.len(),
            started.elapsed().as_secs_f64()
        );
        events
    } else {
        Vec::new()
    };
    for scenario in scenarios {
        eprintln!("== {scenario:?}");
        match scenario {
            Scenario::Ingest => ingest(args, &events, &recorder).await?,
            Scenario::BaselineLoad => baseline_load(args, &events, &recorder).await?,
            Scenario::Queries => queries(args, &dataset, &recorder).await?,
            Scenario::Counts => counts(args, &dataset, &recorder).await?,
            Scenario::Export => export(args, &dataset, &recorder).await?,
            Scenario::Verify => verify(args, &recorder)?,
            Scenario::Disk => disk(args, &recorder).await?,
            Scenario::Report => write_report(args)?,
            Scenario::Clean => clean(args).await?,
            Scenario::Soak => soak(args).await?,
            Scenario::Send => {
                send::run(&args.auditlog_bin, &args.work_dir, &events, &recorder).await?
            }
            Scenario::Streams => {
                streams::run(
                    &args.auditlog_bin,
                    &args.work_dir,
                    &events,
                    &args.stream_phases,
                    &recorder,
                )
                .await?
            }
            Scenario::Retention => {
                retention::run(
                    &args.auditlog_bin,
                    &args.work_dir,
                    &events,
                    !args.no_ingest_while_pruning,
                    &recorder,
                )
                .await?
            }
            Scenario::Erasure => {
                let dir = args
                    .data_dir
                    .as_deref()
                    .ok_or("erasure needs --data-dir: an existing embedded store (a copy)")?;
                erasure::run(&args.auditlog_bin, dir, &recorder).await?
            }
            Scenario::PgSearch => {
                let options = pg_search::Options {
                    bin: &args.auditlog_bin,
                    baseline_bin: args.baseline_bin.as_deref(),
                    pg_url: &args.pg_url,
                    pg_base: &args.pg_base,
                    rounds: args.pg_rounds,
                    repeat: args.repeat,
                    count_repeat: args.count_repeat,
                };
                pg_search::run(&options, &events, &recorder).await?
            }
            Scenario::Jsonl => {
                let path = args.work_dir.join("events.jsonl");
                let bytes = send::write_jsonl(&events, &path)?;
                eprintln!("wrote {} ({bytes} bytes)", path.display());
            }
            Scenario::Search => {
                let options = search::Options {
                    bin: args.auditlog_bin.clone(),
                    dir: args.work_dir.join("search"),
                    events: args.events,
                    seed: args.seed,
                    cost_events: args.cost_events,
                    cost_rounds: args.cost_rounds,
                    repeat: args.repeat,
                    count_repeat: args.count_repeat,
                    reload: args.reload,
                };
                search::run(&options, &recorder).await?
            }
            Scenario::All => {}
        }
    }
    Ok(())
}

fn auditlog_dir(args: &Args) -> PathBuf {
    args.work_dir.join("auditlog")
}

fn sqlite_path(args: &Args) -> PathBuf {
    args.work_dir.join("sqlite").join("events.db")
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// Creates the three accounts (one key each, both scopes) in a new store.
fn fresh_store(args: &Args, dir: &Path) -> BenchResult<Vec<String>> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    generator::ACCOUNTS
        .iter()
        .map(|(name, ..)| server::account_with_key(&args.auditlog_bin, dir, name))
        .collect()
}

struct Manifest {
    keys: Vec<String>,
    events: u64,
}

fn read_manifest(args: &Args) -> BenchResult<Manifest> {
    let path = args.work_dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {} (run the ingest scenario first): {e}",
            path.display()
        )
    })?;
    let value: Value = serde_json::from_str(&text)?;
    let keys = value["keys"]
        .as_array()
        .ok_or("manifest without keys")?
        .iter()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    Ok(Manifest {
        keys,
        events: value["events"].as_u64().unwrap_or(0),
    })
}

async fn ingest(args: &Args, events: &[Event], recorder: &Recorder) -> BenchResult<()> {
    let dir = auditlog_dir(args);
    let keys = fresh_store(args, &dir)?;
    let server = server::Server::start(&args.auditlog_bin, &dir)?;
    let bodies = auditlog::bodies(events, 500);
    let elapsed = auditlog::send_all(&server.base, &keys, bodies, 4).await?;
    recorder.record(
        "ingest",
        INGEST_BATCH,
        "auditlog",
        "events",
        events.len() as f64,
    )?;
    recorder.record(
        "ingest",
        INGEST_BATCH,
        "auditlog",
        "events_per_s",
        rate(events.len(), elapsed),
    )?;
    recorder.record(
        "ingest",
        INGEST_BATCH,
        "auditlog",
        "peak_rss_mib",
        server.memory_kib("VmHWM").unwrap_or(0) as f64 / 1024.0,
    )?;
    auditlog::record_group_size(&server.base, INGEST_BATCH, recorder).await?;
    server.stop()?;
    std::fs::write(
        args.work_dir.join("manifest.json"),
        serde_json::to_vec_pretty(
            &json!({"seed": args.seed, "events": events.len(), "keys": keys}),
        )?,
    )?;

    let single = &events[..args.single_events.min(events.len())];
    let dir = args.work_dir.join("auditlog-single");
    let keys = fresh_store(args, &dir)?;
    let server = server::Server::start(&args.auditlog_bin, &dir)?;
    let bodies = auditlog::bodies(single, 1);
    let elapsed = auditlog::send_all(&server.base, &keys, bodies, 64).await?;
    recorder.record(
        "ingest",
        INGEST_SINGLE,
        "auditlog",
        "events",
        single.len() as f64,
    )?;
    recorder.record(
        "ingest",
        INGEST_SINGLE,
        "auditlog",
        "events_per_s",
        rate(single.len(), elapsed),
    )?;
    auditlog::record_group_size(&server.base, INGEST_SINGLE, recorder).await?;
    server.stop()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

async fn baseline_load(args: &Args, events: &[Event], recorder: &Recorder) -> BenchResult<()> {
    let rows = &events[..args.row_events.min(events.len())];
    let batches = &events[..args.batch_events.min(events.len())];
    let dir = args.work_dir.join("sqlite");
    std::fs::create_dir_all(&dir)?;
    let scratch = dir.join("load.db");
    let measure = |system: &str, case: &str, n: usize, elapsed: Duration| -> BenchResult<()> {
        recorder.record("ingest", case, system, "events", n as f64)?;
        recorder.record("ingest", case, system, "events_per_s", rate(n, elapsed))
    };
    measure(
        "sqlite",
        ROWS_1,
        rows.len(),
        sqlite_baseline::load_rows(&scratch, rows)?,
    )?;
    measure(
        "sqlite",
        ROWS_64,
        rows.len(),
        sqlite_baseline::load_rows_concurrently(&scratch, rows, 64)?,
    )?;
    measure(
        "sqlite",
        BATCHES,
        batches.len(),
        sqlite_baseline::load_batches(&scratch, batches, 1_000)?,
    )?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", scratch.display()));
    }
    measure(
        "sqlite",
        ONE_TXN,
        events.len(),
        sqlite_baseline::load_batches(&sqlite_path(args), events, events.len().max(1))?,
    )?;
    if args.no_postgres {
        return Ok(());
    }
    eprintln!(
        "postgres: {}",
        postgres_baseline::settings(&args.pg_url).await?
    );
    postgres_baseline::recreate_database(&args.pg_url).await?;
    let url = &args.pg_url;
    measure(
        "postgres",
        ROWS_1,
        rows.len(),
        postgres_baseline::load_rows(url, "events_load", rows, 1).await?,
    )?;
    measure(
        "postgres",
        ROWS_64,
        rows.len(),
        postgres_baseline::load_rows(url, "events_load", rows, 64).await?,
    )?;
    measure(
        "postgres",
        BATCHES,
        batches.len(),
        postgres_baseline::load_batches(url, "events_load", batches, 1_000).await?,
    )?;
    postgres_baseline::connect(url, postgres_baseline::DATABASE)
        .await?
        .batch_execute("DROP TABLE events_load")
        .await?;
    measure(
        "postgres",
        COPY,
        events.len(),
        postgres_baseline::load_copy(url, "events", events).await?,
    )?;
    Ok(())
}

async fn queries(args: &Args, dataset: &Dataset, recorder: &Recorder) -> BenchResult<()> {
    let combinations = seed_combinations(dataset);
    let manifest = read_manifest(args)?;
    let server = server::Server::start(&args.auditlog_bin, &auditlog_dir(args))?;
    auditlog::pages(
        &server.base,
        &manifest.keys[0],
        &combinations,
        args.repeat,
        recorder,
    )
    .await?;
    auditlog::histograms(
        &server.base,
        &manifest.keys[0],
        &combinations,
        args.count_repeat,
        recorder,
    )
    .await?;
    server.stop()?;
    sqlite_baseline::queries(
        &sqlite_path(args),
        &combinations,
        args.repeat,
        args.count_repeat,
        recorder,
    )?;
    if !args.no_postgres {
        postgres_baseline::queries(
            &args.pg_url,
            &combinations,
            args.repeat,
            args.count_repeat,
            recorder,
        )
        .await?;
    }
    Ok(())
}

async fn counts(args: &Args, dataset: &Dataset, recorder: &Recorder) -> BenchResult<()> {
    let manifest = read_manifest(args)?;
    let server = server::Server::start(&args.auditlog_bin, &auditlog_dir(args))?;
    auditlog::histograms(
        &server.base,
        &manifest.keys[0],
        &seed_combinations(dataset),
        args.count_repeat,
        recorder,
    )
    .await?;
    server.stop()?;
    Ok(())
}

async fn export(args: &Args, dataset: &Dataset, recorder: &Recorder) -> BenchResult<()> {
    let manifest = read_manifest(args)?;
    let project = dataset.accounts[0].projects[0].name.clone();
    let cases = [
        (EXPORT_ACCOUNT, json!({}), None),
        (
            EXPORT_PROJECT,
            json!({"project": [project.clone()]}),
            Some(project.as_str()),
        ),
    ];
    for (case, filters, project) in &cases {
        // A fresh server per export, so that its peak RSS is the export's.
        let server = server::Server::start(&args.auditlog_bin, &auditlog_dir(args))?;
        if !auditlog::has_exports(&server.base, &manifest.keys[0]).await {
            eprintln!("this build has no exports API yet: Auditlog export not measured");
            server.stop()?;
        } else {
            let idle = server.memory_kib("VmHWM").unwrap_or(0) as f64 / 1024.0;
            let (rows, bytes, elapsed, download) =
                auditlog::export(&server.base, &manifest.keys[0], filters.clone()).await?;
            let peak = server.memory_kib("VmHWM").unwrap_or(0) as f64 / 1024.0;
            server.stop()?;
            recorder.record("export", case, "auditlog", "rows", rows as f64)?;
            recorder.record(
                "export",
                case,
                "auditlog",
                "rows_per_s",
                rows as f64 / elapsed.as_secs_f64(),
            )?;
            recorder.record(
                "export",
                case,
                "auditlog",
                "mb_per_s",
                bytes as f64 / 1e6 / elapsed.as_secs_f64(),
            )?;
            recorder.record(
                "export",
                case,
                "auditlog",
                "download_mb_per_s",
                bytes as f64 / 1e6 / download.as_secs_f64(),
            )?;
            recorder.record("export", case, "auditlog", "idle_rss_mib", idle)?;
            recorder.record("export", case, "auditlog", "peak_rss_mib", peak)?;
        }
        let rows = count_rows(args, *project)?;
        let (bytes, elapsed) = sqlite_baseline::export_csv(&sqlite_path(args), *project)?;
        recorder.record("export", case, "sqlite", "rows", rows as f64)?;
        recorder.record(
            "export",
            case,
            "sqlite",
            "rows_per_s",
            rows as f64 / elapsed.as_secs_f64(),
        )?;
        recorder.record(
            "export",
            case,
            "sqlite",
            "mb_per_s",
            bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        )?;
        if !args.no_postgres {
            let (bytes, elapsed) = postgres_baseline::export_csv(&args.pg_url, *project).await?;
            recorder.record("export", case, "postgres", "rows", rows as f64)?;
            recorder.record(
                "export",
                case,
                "postgres",
                "rows_per_s",
                rows as f64 / elapsed.as_secs_f64(),
            )?;
            recorder.record(
                "export",
                case,
                "postgres",
                "mb_per_s",
                bytes as f64 / 1e6 / elapsed.as_secs_f64(),
            )?;
        }
    }
    let _ = manifest.events;
    Ok(())
}

/// Rows of the big account (or one of its projects) in the SQLite baseline.
fn count_rows(args: &Args, project: Option<&str>) -> BenchResult<u64> {
    let conn = rusqlite::Connection::open(sqlite_path(args))?;
    let n: i64 = match project {
        Some(p) => conn.query_row(
            "SELECT count(*) FROM events WHERE account = 'acme' AND project = ?1",
            [p],
            |r| r.get(0),
        )?,
        None => conn.query_row(
            "SELECT count(*) FROM events WHERE account = 'acme'",
            [],
            |r| r.get(0),
        )?,
    };
    Ok(n as u64)
}

fn verify(args: &Args, recorder: &Recorder) -> BenchResult<()> {
    if !server::has_subcommand(&args.auditlog_bin, "verify") {
        eprintln!("this build has no `auditlog verify` yet: not measured");
        return Ok(());
    }
    let manifest = read_manifest(args)?;
    let started = Instant::now();
    server::cli(&args.auditlog_bin, &auditlog_dir(args), &["verify"])?;
    let elapsed = started.elapsed();
    recorder.record(
        "verify",
        "whole store",
        "auditlog",
        "events",
        manifest.events as f64,
    )?;
    recorder.record(
        "verify",
        "whole store",
        "auditlog",
        "events_per_s",
        rate(manifest.events as usize, elapsed),
    )
}

async fn disk(args: &Args, recorder: &Recorder) -> BenchResult<()> {
    let manifest = read_manifest(args)?;
    let bytes = server::dir_bytes(&auditlog_dir(args));
    recorder.record(
        "disk",
        "bytes per event",
        "auditlog",
        "bytes_per_event",
        bytes as f64 / manifest.events.max(1) as f64,
    )?;
    let (bytes, rows) = sqlite_baseline::bytes_on_disk(&sqlite_path(args))?;
    recorder.record(
        "disk",
        "bytes per event",
        "sqlite",
        "bytes_per_event",
        bytes as f64 / rows.max(1) as f64,
    )?;
    if !args.no_postgres {
        let (bytes, rows) = postgres_baseline::bytes_on_disk(&args.pg_url).await?;
        recorder.record(
            "disk",
            "bytes per event",
            "postgres",
            "bytes_per_event",
            bytes as f64 / rows.max(1) as f64,
        )?;
    }
    Ok(())
}

fn write_report(args: &Args) -> BenchResult<()> {
    let records = results::load(&args.work_dir.join("results.jsonl"))?;
    let text = report::render(&records);
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, &text)?;
    println!("{text}");
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// The soak on a fresh store in `<work-dir>/soak`; samples and report
/// in the work directory (`bench/soak.sh` copies them to bench/results).
async fn soak(args: &Args) -> BenchResult<()> {
    let dir = args.work_dir.join("soak");
    let keys = fresh_store(args, &dir)?;
    let server = server::Server::start(&args.auditlog_bin, &dir)?;
    // Lives as long as the process: the clients' event iterator borrows it.
    let dataset: &'static Dataset = Box::leak(Box::new(Dataset::new(args.seed)));
    let plan = soak::SoakPlan {
        duration: Duration::from_secs(args.duration),
        sample_every: Duration::from_secs(args.sample_every.max(1)),
        ingest_clients: args.ingest_clients,
        query_clients: args.query_clients,
        rate: args.rate,
        batch: args.soak_batch.clamp(1, 1_000),
        preload: args.preload,
        max_rss_slope: args.max_rss_slope,
        samples_path: args.work_dir.join("soak-samples.jsonl"),
        report_path: args.work_dir.join("soak.md"),
    };
    let passed = soak::run(&plan, dataset, &server, &keys).await?;
    server.stop()?;
    if passed {
        Ok(())
    } else {
        Err("the soak failed its verdict (see the last line of the report)".into())
    }
}

async fn clean(args: &Args) -> BenchResult<()> {
    if !args.no_postgres {
        postgres_baseline::drop_database(&args.pg_url).await?;
    }
    for dir in [auditlog_dir(args), args.work_dir.join("sqlite")] {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
    }
    Ok(())
}
