//! `bench search`: issue 14's targets for the embedded store, beside a
//! plain SQLite table with the same indexes and a contentless FTS5 table of
//! the same words, both loaded in the same run from the same events.
//!
//! The events are the seed-shaped events of `generator` with their free
//! text drawn from a Zipf vocabulary (`Dataset::with_vocabulary`), so that
//! words matching any number of events exist; the words measured are
//! picked from the loaded data (nearest to 1,000, 10,000, 100,000 and
//! 1,000,000 events of the big account, and its most frequent vocabulary
//! word) and printed with their counts.
//!
//! Stages, all in `<work-dir>/search`:
//!
//! 1. **load** (skipped when `manifest.json` says the same events and seed
//!    are loaded): `auditlog serve` fed every event over HTTP (batches of
//!    500, 4 clients, generated as they are sent so that 10M events need no
//!    memory), then the plain table and its FTS5 table, counting each
//!    word's events on the way;
//! 2. **cost**: the full-text index's share of ingest, in rounds that
//!    alternate a fresh store with the index and one whose `event_words`
//!    is replaced by a view that discards its inserts (the words are still
//!    computed: their CPU is measured apart, in process), and the same for
//!    the plain table; then the index's bytes per event (`dbstat`) in both
//!    10M stores;
//! 3. **queries**: `key:value` queries from the seed filters (negation, OR
//!    lists) and the words, alone and with `type:` and `time:`: first page
//!    over HTTP (p50/p95/p99), the day histogram (its `total` is the count),
//!    and the same on the plain table in process; each count is checked
//!    against the plain table's.
//!
//! Every figure goes to `results.jsonl` (sections `search-*`), and
//! `search.md` gets the table with the targets.

use crate::auditlog;
use crate::error::BenchResult;
use crate::generator::{Dataset, Event, ACCOUNTS, DAY_MICROS, START_MICROS};
use crate::results::{percentile_ms, Recorder};
use crate::server::{self, Server};
use crate::sqlite_baseline;
use auditlog_core::Timestamp;
use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `bench search` is told on the command line.
pub struct Options {
    pub bin: PathBuf,
    /// `<work-dir>/search`.
    pub dir: PathBuf,
    pub events: usize,
    pub seed: u64,
    /// Events per store of each cost round (0 skips the cost stage).
    pub cost_events: usize,
    pub cost_rounds: usize,
    pub repeat: usize,
    pub count_repeat: usize,
    /// Load again even when the manifest says the events are loaded.
    pub reload: bool,
}

/// The plain table's full-text index: the same words, the same tokenizer
/// and options as the store's `event_words` (migration 0014).
const PLAIN_FTS: &str = "CREATE VIRTUAL TABLE events_fts USING fts5(words, content = '', \
    contentless_delete = 1, tokenize = 'ascii');
INSERT INTO events_fts (events_fts, rank) VALUES ('secure-delete', 1);";

/// Replaces the store's full-text index with a view that accepts the
/// writer's inserts and keeps nothing: the store without the index.
const NO_WORD_INDEX: &str = "DROP TABLE event_words;
CREATE VIEW event_words (rowid, words) AS SELECT NULL, NULL WHERE 0;
CREATE TRIGGER event_words_discard INSTEAD OF INSERT ON event_words BEGIN SELECT 1; END;";

pub async fn run(options: &Options, recorder: &Recorder) -> BenchResult<()> {
    std::fs::create_dir_all(&options.dir)?;
    // Lives as long as the process: the loader's thread borrows it.
    let dataset: &'static Dataset =
        Box::leak(Box::new(Dataset::new(options.seed).with_vocabulary()));
    let manifest = match read_manifest(options)? {
        Some(m) if !options.reload => {
            eprintln!("search: reusing the {} loaded events", m.events);
            m
        }
        _ => load(options, dataset, recorder).await?,
    };
    for w in &manifest.words {
        println!("word {:12} {:>10} events of acme", w.0, w.1);
    }
    if options.cost_events > 0 {
        cost(options, dataset, recorder).await?;
    }
    disk(options, &manifest, recorder)?;
    let cases = cases(dataset, &manifest);
    queries(options, &manifest, &cases, recorder).await?;
    let results = crate::results::load(&options.dir.join("..").join("results.jsonl"))?;
    let text = summary(&results, &cases, &manifest);
    std::fs::write(options.dir.join("search.md"), &text)?;
    println!("{text}");
    Ok(())
}

struct Manifest {
    events: usize,
    keys: Vec<String>,
    /// The measured words and the big account's events holding each.
    words: Vec<(String, u64)>,
}

fn manifest_path(options: &Options) -> PathBuf {
    options.dir.join("manifest.json")
}

fn read_manifest(options: &Options) -> BenchResult<Option<Manifest>> {
    let Ok(text) = std::fs::read_to_string(manifest_path(options)) else {
        return Ok(None);
    };
    let value: Value = serde_json::from_str(&text)?;
    if value["events"].as_u64() != Some(options.events as u64)
        || value["seed"].as_u64() != Some(options.seed)
    {
        return Ok(None);
    }
    let keys = value["keys"]
        .as_array()
        .ok_or("search manifest without keys")?
        .iter()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let words = value["words"]
        .as_array()
        .ok_or("search manifest without words")?
        .iter()
        .filter_map(|w| Some((w["word"].as_str()?.to_string(), w["events"].as_u64()?)))
        .collect();
    Ok(Some(Manifest {
        events: options.events,
        keys,
        words,
    }))
}

fn store_dir(options: &Options) -> PathBuf {
    options.dir.join("auditlog")
}

fn plain_path(options: &Options) -> PathBuf {
    options.dir.join("plain.db")
}

/// A new store with the three accounts, one key each.
fn fresh_store(bin: &Path, dir: &Path) -> BenchResult<Vec<String>> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    ACCOUNTS
        .iter()
        .map(|(name, ..)| server::account_with_key(bin, dir, name))
        .collect()
}

/// The words free text searches in `event` (SPEC "Search": the actor's
/// name and email, the target's id and name, project, app, version and
/// every string inside `details`), each once, sorted: what the store
/// indexes (`search_plan::index_words`).
pub fn event_words(event: &Event) -> Vec<String> {
    fn strings<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
        match value {
            Value::String(s) => out.push(s),
            Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
            Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let details: Value = serde_json::from_str(&event.details).unwrap_or(Value::Null);
    let mut values: Vec<&str> = vec![&event.actor_name, &event.actor_email];
    for v in [
        &event.target_id,
        &event.target_name,
        &event.project,
        &event.app,
        &event.version,
    ]
    .into_iter()
    .flatten()
    {
        values.push(v);
    }
    if let Value::Object(map) = &details {
        map.values().for_each(|v| strings(v, &mut values));
    }
    let mut words: Vec<String> = values
        .into_iter()
        .flat_map(auditlog_core::search::words::words)
        .collect();
    words.sort_unstable();
    words.dedup();
    words
}

/// Request bodies of 500 events of one account each, in the order the
/// generator makes them (as `auditlog::bodies`), made as they are taken.
struct Bodies<I> {
    events: I,
    open: [Vec<Value>; 3],
    ready: std::collections::VecDeque<(usize, Vec<u8>)>,
}

impl<I: Iterator<Item = Event>> Iterator for Bodies<I> {
    type Item = (usize, Vec<u8>);

    fn next(&mut self) -> Option<(usize, Vec<u8>)> {
        while self.ready.is_empty() {
            match self.events.next() {
                Some(event) => {
                    let account = event.account;
                    self.open[account].push(event.to_json());
                    if self.open[account].len() == 500 {
                        let items = std::mem::take(&mut self.open[account]);
                        self.ready.push_back((account, body(items)));
                    }
                }
                None => {
                    for (account, items) in self.open.iter_mut().enumerate() {
                        if !items.is_empty() {
                            self.ready.push_back((account, body(std::mem::take(items))));
                        }
                    }
                    break;
                }
            }
        }
        self.ready.pop_front()
    }
}

fn body(items: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({ "events": items })).unwrap_or_default()
}

/// Sends every body of `events` from 4 clients while a thread makes them.
async fn send_streamed(
    base: &str,
    keys: &[String],
    events: impl Iterator<Item = Event> + Send + 'static,
) -> BenchResult<Duration> {
    let (tx, rx) = tokio::sync::mpsc::channel::<(usize, Vec<u8>)>(32);
    let producer = std::thread::spawn(move || {
        let bodies = Bodies {
            events,
            open: Default::default(),
            ready: Default::default(),
        };
        for (i, body) in bodies.enumerate() {
            if i > 0 && i % 2_000 == 0 {
                eprintln!("  sent {}k events", i / 2);
            }
            if tx.blocking_send(body).is_err() {
                return;
            }
        }
    });
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let http = auditlog::client()?;
    let url = format!("{base}/api/v1/events");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (rx, http, url, keys) = (rx.clone(), http.clone(), url.clone(), keys.to_vec());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some((account, body)) = next else {
                    return Ok::<(), String>(());
                };
                let response = http
                    .post(&url)
                    .bearer_auth(&keys[account])
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if status.as_u16() != 201 {
                    return Err(format!("ingest answered {status}: {text}"));
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    producer.join().map_err(|_| "the body maker panicked")?;
    Ok(elapsed)
}

async fn load(
    options: &Options,
    dataset: &'static Dataset,
    recorder: &Recorder,
) -> BenchResult<Manifest> {
    let _ = std::fs::remove_file(manifest_path(options));
    let dir = store_dir(options);
    let keys = fresh_store(&options.bin, &dir)?;
    let server = Server::start(&options.bin, &dir)?;
    eprintln!(
        "search: loading {} events into Auditlog and, at the same time, the plain table",
        options.events
    );
    // The plain table loads on a thread of its own while Auditlog ingests
    // (neither load rate is a target; the index's cost is measured apart,
    // by the cost stage), counting each word's events of the big account.
    let plain = plain_path(options);
    let events = options.events;
    let plain_load = std::thread::spawn(move || load_plain(&plain, dataset, events));
    let elapsed = send_streamed(&server.base, &keys, dataset.events(options.events)).await?;
    server.stop()?;
    recorder.record(
        "search-load",
        "HTTP batches of 500, 4 clients (generated while sent; the plain table loading beside)",
        "auditlog",
        "events_per_s",
        options.events as f64 / elapsed.as_secs_f64(),
    )?;
    let (counts, plain_elapsed) = plain_load
        .join()
        .map_err(|_| "the plain table's loader panicked")?
        .map_err(|e| e.to_string())?;
    recorder.record(
        "search-load",
        "50,000-row transactions, with the FTS5 table (Auditlog loading beside)",
        "sqlite",
        "events_per_s",
        options.events as f64 / plain_elapsed.as_secs_f64(),
    )?;
    let words = pick_words(dataset, &counts);
    let manifest = Manifest {
        events: options.events,
        keys,
        words,
    };
    let words_json: Vec<Value> = manifest
        .words
        .iter()
        .map(|(w, n)| json!({"word": w, "events": n}))
        .collect();
    std::fs::write(
        manifest_path(options),
        serde_json::to_vec_pretty(&json!({
            "events": options.events, "seed": options.seed,
            "keys": manifest.keys, "words": words_json,
        }))?,
    )?;
    Ok(manifest)
}

/// Loads the plain table and its FTS5 table (transactions of 50,000
/// rows) and counts the big account's events holding each word.
fn load_plain(
    path: &Path,
    dataset: &Dataset,
    count: usize,
) -> Result<(HashMap<String, u64>, Duration), String> {
    let run = || -> BenchResult<(HashMap<String, u64>, Duration)> {
        let mut counts: HashMap<String, u64> = HashMap::new();
        let started = Instant::now();
        let mut conn = sqlite_baseline::create(path)?;
        conn.execute_batch(PLAIN_FTS)?;
        let mut events = dataset.events(count).peekable();
        while events.peek().is_some() {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(sqlite_baseline::INSERT)?;
                let mut fts =
                    tx.prepare_cached("INSERT INTO events_fts (rowid, words) VALUES (?, ?)")?;
                for event in events.by_ref().take(50_000) {
                    sqlite_baseline::insert(&mut insert, &event)?;
                    let words = event_words(&event);
                    fts.execute(rusqlite::params![tx.last_insert_rowid(), words.join(" ")])?;
                    if event.account == 0 {
                        for word in words {
                            *counts.entry(word).or_default() += 1;
                        }
                    }
                }
            }
            tx.commit()?;
        }
        Ok((counts, started.elapsed()))
    };
    run().map_err(|e| e.to_string())
}

/// The vocabulary words of the big account in the least events from
/// 1,000 up, the nearest to 10,000, in the most events up to 100,000 (the
/// targets' range) and nearest to 1,000,000, and its most frequent one.
fn pick_words(dataset: &Dataset, counts: &HashMap<String, u64>) -> Vec<(String, u64)> {
    let vocabulary: Vec<(&str, u64)> = dataset
        .vocabulary()
        .map(|v| v.words.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|w| Some((w.as_str(), *counts.get(w)?)))
        .collect();
    let nearest = |target: f64| {
        vocabulary.iter().min_by(|a, b| {
            let da = (a.1 as f64 / target).ln().abs();
            let db = (b.1 as f64 / target).ln().abs();
            da.total_cmp(&db)
        })
    };
    let picks = [
        vocabulary
            .iter()
            .filter(|(_, n)| *n >= 1_000)
            .min_by_key(|(_, n)| *n),
        nearest(10_000.0),
        vocabulary
            .iter()
            .filter(|(_, n)| *n <= 100_000)
            .max_by_key(|(_, n)| *n),
        nearest(1_000_000.0),
        vocabulary.iter().max_by_key(|(_, n)| *n),
    ];
    let mut out: Vec<(String, u64)> = Vec::new();
    for (word, n) in picks.into_iter().flatten() {
        if !out.iter().any(|(w, _)| w == word) {
            out.push((word.to_string(), *n));
        }
    }
    out
}

/// The full-text index's cost to ingest: rounds alternating a fresh store
/// with it and one without it (the same request bodies), and the plain
/// table with and without its FTS5 table; plus the words' CPU in process.
async fn cost(options: &Options, dataset: &Dataset, recorder: &Recorder) -> BenchResult<()> {
    let events: Vec<Event> = dataset.events(options.cost_events).collect();
    let bodies = auditlog::bodies(&events, 500);
    let mut with = Duration::ZERO;
    let mut without = Duration::ZERO;
    let mut plain_with = Duration::ZERO;
    let mut plain_without = Duration::ZERO;
    for round in 0..options.cost_rounds.max(1) {
        for indexed in [true, false] {
            let dir = options.dir.join("cost-store");
            let keys = fresh_store(&options.bin, &dir)?;
            if !indexed {
                let conn = Connection::open(dir.join("auditlog.db"))?;
                conn.execute_batch(NO_WORD_INDEX)?;
            }
            let server = Server::start(&options.bin, &dir)?;
            let elapsed = auditlog::send_all(&server.base, &keys, bodies.clone(), 4).await?;
            server.stop()?;
            std::fs::remove_dir_all(&dir)?;
            eprintln!(
                "cost round {round}: auditlog {} the index: {:.0} events/s",
                if indexed { "with" } else { "without" },
                events.len() as f64 / elapsed.as_secs_f64()
            );
            *(if indexed { &mut with } else { &mut without }) += elapsed;

            let path = options.dir.join("cost-plain.db");
            let started = Instant::now();
            let mut conn = sqlite_baseline::create(&path)?;
            if indexed {
                conn.execute_batch(PLAIN_FTS)?;
            }
            for chunk in events.chunks(500) {
                let tx = conn.transaction()?;
                {
                    let mut insert = tx.prepare_cached(sqlite_baseline::INSERT)?;
                    for event in chunk {
                        sqlite_baseline::insert(&mut insert, event)?;
                        if indexed {
                            tx.prepare_cached(
                                "INSERT INTO events_fts (rowid, words) VALUES (?, ?)",
                            )?
                            .execute(rusqlite::params![
                                tx.last_insert_rowid(),
                                event_words(event).join(" ")
                            ])?;
                        }
                    }
                }
                tx.commit()?;
            }
            drop(conn);
            *(if indexed {
                &mut plain_with
            } else {
                &mut plain_without
            }) += started.elapsed();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
    let n = (events.len() * options.cost_rounds.max(1)) as f64;
    let case = "HTTP batches of 500, 4 clients, fresh store";
    recorder.record(
        "search-cost",
        case,
        "auditlog",
        "events",
        events.len() as f64,
    )?;
    recorder.record(
        "search-cost",
        case,
        "auditlog",
        "with_index_events_per_s",
        n / with.as_secs_f64(),
    )?;
    recorder.record(
        "search-cost",
        case,
        "auditlog",
        "without_index_events_per_s",
        n / without.as_secs_f64(),
    )?;
    recorder.record(
        "search-cost",
        case,
        "auditlog",
        "cost_pct",
        100.0 * (1.0 - without.as_secs_f64() / with.as_secs_f64()),
    )?;
    let case = "500-row transactions";
    recorder.record(
        "search-cost",
        case,
        "sqlite",
        "with_index_events_per_s",
        n / plain_with.as_secs_f64(),
    )?;
    recorder.record(
        "search-cost",
        case,
        "sqlite",
        "without_index_events_per_s",
        n / plain_without.as_secs_f64(),
    )?;
    recorder.record(
        "search-cost",
        case,
        "sqlite",
        "cost_pct",
        100.0 * (1.0 - plain_without.as_secs_f64() / plain_with.as_secs_f64()),
    )?;
    // The words themselves (computed by the store without the index too):
    // core's tokenizer over the same values, one thread.
    let started = Instant::now();
    let mut total = 0usize;
    for event in &events {
        total += event_words(event).len();
    }
    recorder.record(
        "search-cost",
        "words of one event (tokenizer, in process)",
        "auditlog",
        "us_per_event",
        started.elapsed().as_secs_f64() * 1e6 / events.len() as f64,
    )?;
    recorder.record(
        "search-cost",
        "words of one event (tokenizer, in process)",
        "auditlog",
        "words_per_event",
        total as f64 / events.len() as f64,
    )?;
    Ok(())
}

/// Bytes of the tables whose names start with `prefix` (`dbstat`, read by
/// the `sqlite3` shell after a checkpoint).
fn table_bytes(db: &Path, prefix: &str) -> BenchResult<u64> {
    {
        let conn = Connection::open(db)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    let sql = format!("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE '{prefix}%';");
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(&sql)
        .output()
        .map_err(|e| format!("cannot run sqlite3 (is it installed?): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sqlite3 dbstat failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

fn disk(options: &Options, manifest: &Manifest, recorder: &Recorder) -> BenchResult<()> {
    let n = manifest.events.max(1) as f64;
    let store = store_dir(options).join("auditlog.db");
    let index = table_bytes(&store, "event_words")?;
    recorder.record(
        "search-disk",
        "full-text index, bytes per event",
        "auditlog",
        "bytes_per_event",
        index as f64 / n,
    )?;
    recorder.record(
        "search-disk",
        "whole store, bytes per event",
        "auditlog",
        "bytes_per_event",
        server::dir_bytes(&store_dir(options)) as f64 / n,
    )?;
    // What counts read beside the index: the block summary (times and
    // kinds) and the per-day counts by actor and kind.
    for (table, what) in [
        ("word_blocks", "block summary"),
        ("actor_kind_rollups", "actor and kind rollups"),
    ] {
        recorder.record(
            "search-disk",
            &format!("{what}, bytes per event"),
            "auditlog",
            "bytes_per_event",
            table_bytes(&store, table)? as f64 / n,
        )?;
    }
    let rows: i64 = Connection::open(&store)?.query_row(
        "SELECT COUNT(*) FROM actor_kind_rollups",
        [],
        |r| r.get(0),
    )?;
    recorder.record(
        "search-disk",
        "actor and kind rollups, rows per event",
        "auditlog",
        "rows_per_event",
        rows as f64 / n,
    )?;
    let plain = plain_path(options);
    recorder.record(
        "search-disk",
        "full-text index, bytes per event",
        "sqlite",
        "bytes_per_event",
        table_bytes(&plain, "events_fts")? as f64 / n,
    )?;
    recorder.record(
        "search-disk",
        "whole store, bytes per event",
        "sqlite",
        "bytes_per_event",
        std::fs::metadata(&plain)?.len() as f64 / n,
    )?;
    Ok(())
}

/// What a case is held to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// First page p95 ≤ 2 ms, count and histogram ≤ 50 ms.
    KeyValue,
    /// First page p95 ≤ 10 ms, count ≤ 100 ms (a word in 1k–100k events).
    Word,
    /// A word in millions of events: measured, no target.
    None,
}

/// One query: `q` for Auditlog, the same as SQL on the plain table.
struct Case {
    name: String,
    q: String,
    target: Target,
    /// Conditions ANDed with `account = 'acme'`.
    sql: String,
    params: Vec<Sql>,
}

fn date(micros: i64) -> String {
    Timestamp::from_micros(micros).to_rfc3339()[..10].to_string()
}

const FTS: &str = "id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)";

fn cases(dataset: &Dataset, manifest: &Manifest) -> Vec<Case> {
    let acme = &dataset.accounts[0];
    let (u1, u2, u3) = (&acme.users[0].id, &acme.users[1].id, &acme.users[2].id);
    let (p1, p2) = (&acme.projects[0].name, &acme.projects[1].name);
    // The seed's week (days 180–186) and a half year (days 90–272).
    let week = (
        START_MICROS + 180 * DAY_MICROS,
        START_MICROS + 187 * DAY_MICROS - 1,
    );
    let week_q = format!("time:{}..{}", date(week.0), date(week.1));
    let half = (
        START_MICROS + 90 * DAY_MICROS,
        START_MICROS + 273 * DAY_MICROS - 1,
    );
    let half_q = format!("time:{}..{}", date(half.0), date(half.1));
    let t = |s: &str| Sql::Text(s.to_string());
    let quote = |s: &str| {
        if s.contains(' ') {
            format!("\"{s}\"")
        } else {
            s.to_string()
        }
    };
    let kv = |name: &str, q: String, sql: &str, params: Vec<Sql>| Case {
        name: name.to_string(),
        q,
        target: Target::KeyValue,
        sql: sql.to_string(),
        params,
    };
    let mut out = vec![
        kv(
            "type",
            "type:\"Test Case\"".into(),
            "event_type = ?",
            vec![t("Test Case")],
        ),
        kv(
            "action",
            "action:Update".into(),
            "action = ?",
            vec![t("Update")],
        ),
        kv("user", format!("user:{u1}"), "actor_id = ?", vec![t(u1)]),
        kv(
            "project",
            format!("project:{}", quote(p1)),
            "project = ?",
            vec![t(p1)],
        ),
        kv(
            "one week",
            week_q.clone(),
            "time BETWEEN ? AND ?",
            vec![Sql::Integer(week.0), Sql::Integer(week.1)],
        ),
        kv(
            "type+action+project",
            format!("type:\"Test Case\" action:Update project:{}", quote(p1)),
            "event_type = ? AND action = ? AND project = ?",
            vec![t("Test Case"), t("Update"), t(p1)],
        ),
        kv(
            "user+week",
            format!("user:{u1} {week_q}"),
            "actor_id = ? AND time BETWEEN ? AND ?",
            vec![t(u1), Sql::Integer(week.0), Sql::Integer(week.1)],
        ),
        kv(
            "entity history",
            format!("target:{}", Dataset::entity_id("TC", 0, 0)),
            "target_id = ?",
            vec![t(&Dataset::entity_id("TC", 0, 0))],
        ),
        kv(
            "-type",
            "-type:Authentication".into(),
            "event_type <> ?",
            vec![t("Authentication")],
        ),
        kv(
            "user OR list",
            format!("user:{u1},{u2},{u3}"),
            "actor_id IN (?, ?, ?)",
            vec![t(u1), t(u2), t(u3)],
        ),
        kv(
            "project OR + action OR",
            format!("project:{},{} action:Create,Delete", quote(p1), quote(p2)),
            "project IN (?, ?) AND action IN (?, ?)",
            vec![t(p1), t(p2), t("Create"), t("Delete")],
        ),
        kv(
            "type -action -user",
            format!("type:\"Test Case\" -action:Update -user:{u1}"),
            "event_type = ? AND action <> ? AND actor_id <> ?",
            vec![t("Test Case"), t("Update"), t(u1)],
        ),
        kv(
            "-project+week",
            format!("-project:{} {week_q}", quote(p1)),
            "(project IS NULL OR project <> ?) AND time BETWEEN ? AND ?",
            vec![t(p1), Sql::Integer(week.0), Sql::Integer(week.1)],
        ),
        kv(
            "actions OR -users OR+week",
            format!("action:Login,Logout -user:{u1},{u2} {week_q}"),
            "action IN (?, ?) AND actor_id NOT IN (?, ?) AND time BETWEEN ? AND ?",
            vec![
                t("Login"),
                t("Logout"),
                t(u1),
                t(u2),
                Sql::Integer(week.0),
                Sql::Integer(week.1),
            ],
        ),
    ];
    for (word, n) in &manifest.words {
        let target = if (1_000..=100_000).contains(n) {
            Target::Word
        } else {
            Target::None
        };
        let fts = format!("\"{word}\"");
        out.push(Case {
            name: format!("word {word} ({n})"),
            q: word.clone(),
            target,
            sql: FTS.into(),
            params: vec![t(&fts)],
        });
        out.push(Case {
            name: format!("word {word} +type+half year"),
            q: format!("{word} type:\"Test Case\" {half_q}"),
            target,
            sql: format!("{FTS} AND event_type = ? AND time BETWEEN ? AND ?"),
            params: vec![
                t(&fts),
                t("Test Case"),
                Sql::Integer(half.0),
                Sql::Integer(half.1),
            ],
        });
    }
    out
}

async fn queries(
    options: &Options,
    manifest: &Manifest,
    cases: &[Case],
    recorder: &Recorder,
) -> BenchResult<()> {
    let key = manifest.keys.first().ok_or("no key in the manifest")?;
    let server = Server::start(&options.bin, &store_dir(options))?;
    let http = auditlog::client()?;
    let base = &server.base;
    let plain = sqlite_baseline::open(&plain_path(options))?;
    for case in cases {
        let q = crate::generator::percent_encode(&case.q);
        let page_url = format!("{base}/api/v1/events?q={q}&limit=50");
        let histogram_url = format!("{base}/api/v1/events/histogram?q={q}&interval=day");
        eprintln!("search: {} ({})", case.name, case.q);
        let mut samples = auditlog::time_gets(&http, &page_url, key, options.repeat).await?;
        recorder.latencies("search-page", &case.name, "auditlog", &mut samples)?;
        let answer: Value =
            serde_json::from_slice(&auditlog::get(&http, &histogram_url, key).await?)?;
        let total = answer["total"]
            .as_u64()
            .ok_or("a histogram without total")?;
        let mut samples = Vec::new();
        for _ in 0..options.count_repeat.max(1) {
            let started = Instant::now();
            auditlog::get(&http, &histogram_url, key).await?;
            samples.push(started.elapsed());
        }
        recorder.record(
            "search-count",
            &case.name,
            "auditlog",
            "total",
            total as f64,
        )?;
        recorder.record(
            "search-count",
            &case.name,
            "auditlog",
            "histogram_ms",
            percentile_ms(&mut samples, 0.5),
        )?;

        let (mut page, count, mut counts, mut days) = plain_case(&plain, case, options)?;
        recorder.latencies("search-page", &case.name, "sqlite", &mut page)?;
        recorder.record("search-count", &case.name, "sqlite", "total", count as f64)?;
        recorder.record(
            "search-count",
            &case.name,
            "sqlite",
            "count_ms",
            percentile_ms(&mut counts, 0.5),
        )?;
        recorder.record(
            "search-count",
            &case.name,
            "sqlite",
            "histogram_ms",
            percentile_ms(&mut days, 0.5),
        )?;
        if count != total {
            // Auditlog's own entries (the account's key, made by `key
            // create`) are events of the account that the plain table does
            // not have; anything more is a wrong answer.
            eprintln!(
                "search: {}: Auditlog counts {total} events, the plain table {count}",
                case.name
            );
            if total.abs_diff(count) > 2 {
                return Err(format!(
                    "{}: Auditlog counts {total} events, the plain table {count}",
                    case.name
                )
                .into());
            }
        }
    }
    server.stop()?;
    Ok(())
}

/// The plain table's first page (every column of 50 rows), count and day
/// histogram of `case`.
#[allow(clippy::type_complexity)]
fn plain_case(
    conn: &Connection,
    case: &Case,
    options: &Options,
) -> BenchResult<(Vec<Duration>, u64, Vec<Duration>, Vec<Duration>)> {
    let clause = format!("account = 'acme' AND {}", case.sql);
    let page_sql =
        format!("SELECT * FROM events WHERE {clause} ORDER BY time DESC, id DESC LIMIT 50");
    let read_page = || -> BenchResult<usize> {
        let mut stmt = conn.prepare_cached(&page_sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(&case.params))?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            for i in 0..18 {
                row.get::<_, Sql>(i)?;
            }
            n += 1;
        }
        Ok(n)
    };
    for _ in 0..options.repeat.clamp(1, 10) {
        read_page()?;
    }
    let mut page = Vec::with_capacity(options.repeat);
    for _ in 0..options.repeat {
        let started = Instant::now();
        read_page()?;
        page.push(started.elapsed());
    }
    let count_sql = format!("SELECT count(*) FROM events WHERE {clause}");
    let day_sql = format!(
        "SELECT time / 86400000000 AS day, count(*) FROM events WHERE {clause} GROUP BY day"
    );
    let mut count = 0i64;
    let (mut counts, mut days) = (Vec::new(), Vec::new());
    for _ in 0..options.count_repeat.max(1) {
        let started = Instant::now();
        count = conn.query_row(&count_sql, rusqlite::params_from_iter(&case.params), |r| {
            r.get(0)
        })?;
        counts.push(started.elapsed());
        let started = Instant::now();
        let mut stmt = conn.prepare_cached(&day_sql)?;
        let sum: i64 = stmt
            .query_map(rusqlite::params_from_iter(&case.params), |r| {
                r.get::<_, i64>(1)
            })?
            .sum::<rusqlite::Result<i64>>()?;
        days.push(started.elapsed());
        if sum != count {
            return Err(format!("{}: the plain day counts do not add up", case.name).into());
        }
    }
    Ok((page, count as u64, counts, days))
}

/// The Markdown table of every case with its target and verdict.
fn summary(results: &[Value], cases: &[Case], manifest: &Manifest) -> String {
    let get = |section: &str, case: &str, system: &str, metric: &str| {
        results
            .iter()
            .rev()
            .find(|r| {
                r["section"] == section
                    && r["case"] == case
                    && r["system"] == system
                    && r["metric"] == metric
            })
            .and_then(|r| r["value"].as_f64())
    };
    let f = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
    let verdict = |v: Option<f64>, limit: f64| match v {
        Some(v) if v <= limit => "met",
        Some(_) => "**missed**",
        None => "–",
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Search at {} events (words: {})\n",
        manifest.events,
        manifest
            .words
            .iter()
            .map(|(w, n)| format!("`{w}` {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "| query | matches | page p95 ms (plain) | target | count+histogram ms (plain count / histogram) | target |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for case in cases {
        let name = case.name.as_str();
        let p95 = get("search-page", name, "auditlog", "p95_ms");
        let hist = get("search-count", name, "auditlog", "histogram_ms");
        let (page_limit, count_limit) = match case.target {
            Target::KeyValue => (Some(2.0), Some(50.0)),
            Target::Word => (Some(10.0), Some(100.0)),
            Target::None => (None, None),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} ({}) | {} | {} ({} / {}) | {} |",
            case.q,
            get("search-count", name, "auditlog", "total")
                .map_or("–".into(), |v| format!("{v:.0}")),
            f(p95),
            f(get("search-page", name, "sqlite", "p95_ms")),
            page_limit.map_or("–", |l| verdict(p95, l)),
            f(hist),
            f(get("search-count", name, "sqlite", "count_ms")),
            f(get("search-count", name, "sqlite", "histogram_ms")),
            count_limit.map_or("–", |l| verdict(hist, l)),
        );
    }
    let cost = get(
        "search-cost",
        "HTTP batches of 500, 4 clients, fresh store",
        "auditlog",
        "cost_pct",
    );
    let bytes = get(
        "search-disk",
        "full-text index, bytes per event",
        "auditlog",
        "bytes_per_event",
    );
    let _ = writeln!(
        out,
        "\nfull-text index: ingest cost {} % (target ≤ 20: {}; plain table {} %), {} bytes per event (target ≤ 150: {}; plain table {})",
        f(cost),
        verdict(cost, 20.0),
        f(get("search-cost", "500-row transactions", "sqlite", "cost_pct")),
        f(bytes),
        verdict(bytes, 150.0),
        f(get(
            "search-disk",
            "full-text index, bytes per event",
            "sqlite",
            "bytes_per_event"
        )),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_gives_words_in_every_range_of_matches() {
        let dataset = Dataset::new(42).with_vocabulary();
        let n = 20_000;
        let mut counts: HashMap<String, u64> = HashMap::new();
        for event in dataset.events(n) {
            let size = event.json_bytes().len();
            assert!((400..=700).contains(&size), "{size} bytes");
            for word in event_words(&event) {
                *counts.entry(word).or_default() += 1;
            }
        }
        // Zipf: some word is in most events, hundreds are in 0.05–1 % of
        // them (10M events: 5,000–100,000), and thousands occur at all.
        let in_range = |lo: f64, hi: f64| {
            counts
                .values()
                .filter(|c| (lo..=hi).contains(&(**c as f64 / n as f64)))
                .count()
        };
        assert!(in_range(0.5, 1.0) >= 1);
        assert!(in_range(0.0005, 0.01) > 300, "{}", in_range(0.0005, 0.01));
        assert!(counts.len() > 10_000, "{} words", counts.len());
        // The word in the least events from 1,000 up is near 1,000; the
        // larger targets pick the most frequent words at this size.
        let picked = pick_words(&dataset, &counts);
        assert!(picked.len() >= 2, "{picked:?}");
        assert!((1_000..=1_400).contains(&picked[0].1), "{picked:?}");
    }

    #[test]
    fn event_words_are_the_words_the_store_indexes() {
        // The store indexes the words of `free_text_values_of` of the
        // event as ingest parses it (`search_plan::index_words`); the
        // plain table's FTS5 table and the word counts must hold the same.
        let now = Timestamp::from_micros(START_MICROS + 400 * DAY_MICROS);
        for event in Dataset::new(7).with_vocabulary().events(300) {
            let parsed = auditlog_core::NewEvent::parse(
                &event.to_json(),
                &auditlog_core::Taxonomy::default(),
                now,
            )
            .unwrap();
            let mut expected: Vec<String> = auditlog_core::search::free_text_values_of(&parsed)
                .into_iter()
                .flat_map(auditlog_core::search::words::words)
                .collect();
            expected.sort_unstable();
            expected.dedup();
            assert_eq!(event_words(&event), expected);
        }
    }
}
