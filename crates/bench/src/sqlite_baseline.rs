//! The SQLite baseline: the plain indexed table a competent team would write
//! (WAL, synchronous=FULL, one B-tree index per filter column), fed the same
//! events, queried in-process, exported with the `sqlite3 -csv` shell.

use crate::error::BenchResult;
use crate::generator::{Combination, Event};
use crate::results::{percentile_ms, Recorder};
use rusqlite::{params, Connection};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

const SCHEMA: &str = "
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    account     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    time        INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    action      TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_name  TEXT,
    actor_email TEXT,
    project     TEXT,
    app         TEXT,
    version     TEXT,
    target_id   TEXT,
    target_name TEXT,
    details     TEXT,
    ip          TEXT,
    user_agent  TEXT,
    request_id  TEXT
);
CREATE INDEX events_time ON events (account, time DESC);
CREATE INDEX events_type ON events (account, event_type, time DESC);
CREATE INDEX events_action ON events (account, action, time DESC);
CREATE INDEX events_actor ON events (account, actor_id, time DESC);
CREATE INDEX events_project ON events (account, project, time DESC);
CREATE INDEX events_target ON events (account, target_id, time DESC);
";

pub(crate) const INSERT: &str = "INSERT INTO events (account, event_id, time, event_type, action, actor_id, \
    actor_name, actor_email, project, app, version, target_id, target_name, details, ip, user_agent, \
    request_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

/// The CSV columns, in the order of SPEC's Auditlog export.
pub const CSV_COLUMNS: &str = "time, id, event_type, action, project, app, version, actor_id, \
    actor_name, actor_email, target_id, target_name, details, ip, user_agent, event_id";

pub(crate) fn open(path: &Path) -> BenchResult<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(120))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "cache_size", -64_000)?;
    Ok(conn)
}

/// A new, empty database with the table and its indexes.
pub fn create(path: &Path) -> BenchResult<Connection> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let conn = open(path)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

pub(crate) fn insert(
    stmt: &mut rusqlite::CachedStatement<'_>,
    e: &Event,
) -> rusqlite::Result<usize> {
    stmt.execute(params![
        e.account_name(),
        e.id,
        e.time_micros,
        e.event_type,
        e.action,
        e.actor_id,
        e.actor_name,
        e.actor_email,
        e.project,
        e.app,
        e.version,
        e.target_id,
        e.target_name,
        e.details,
        e.ip,
        e.user_agent,
        e.request_id,
    ])
}

/// One INSERT per event, each its own transaction, from one connection.
pub fn load_rows(path: &Path, events: &[Event]) -> BenchResult<Duration> {
    let conn = create(path)?;
    let mut stmt = conn.prepare_cached(INSERT)?;
    let started = Instant::now();
    for e in events {
        insert(&mut stmt, e)?;
    }
    Ok(started.elapsed())
}

/// One INSERT per event from `clients` threads, each with its own connection;
/// SQLite serialises them on its write lock.
pub fn load_rows_concurrently(
    path: &Path,
    events: &[Event],
    clients: usize,
) -> BenchResult<Duration> {
    drop(create(path)?);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                scope.spawn(move || -> BenchResult<()> {
                    let conn = open(path)?;
                    let mut stmt = conn.prepare_cached(INSERT)?;
                    for e in events.iter().skip(client).step_by(clients) {
                        insert(&mut stmt, e)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle.join().map_err(|_| "a loader thread panicked")??;
        }
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    Ok(started.elapsed())
}

/// `batch` INSERTs per transaction (all of them in one when `batch` ≥ len).
pub fn load_batches(path: &Path, events: &[Event], batch: usize) -> BenchResult<Duration> {
    let mut conn = create(path)?;
    let started = Instant::now();
    for chunk in events.chunks(batch) {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(INSERT)?;
            for e in chunk {
                insert(&mut stmt, e)?;
            }
        }
        tx.commit()?;
    }
    Ok(started.elapsed())
}

/// The WHERE clause of a combination on account `acme`, with its parameters.
fn where_clause(combination: &Combination) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut sql = "account = ?".to_string();
    let mut values = vec![Value::Text("acme".into())];
    for (column, value) in combination.text_conditions() {
        sql.push_str(&format!(" AND {column} = ?"));
        values.push(Value::Text(value));
    }
    if let Some(from) = combination.from {
        sql.push_str(" AND time >= ?");
        values.push(Value::Integer(from));
    }
    if let Some(to) = combination.to {
        sql.push_str(" AND time <= ?");
        values.push(Value::Integer(to));
    }
    (sql, values)
}

/// Runs a page query and reads every column of every row.
fn page(
    conn: &Connection,
    sql: &str,
    values: &[rusqlite::types::Value],
) -> BenchResult<(usize, Option<(i64, i64)>)> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
    let mut count = 0;
    let mut last = None;
    while let Some(row) = rows.next()? {
        let mut owned = Vec::with_capacity(18);
        for i in 0..18 {
            owned.push(row.get::<_, rusqlite::types::Value>(i)?);
        }
        last = Some((row.get::<_, i64>(3)?, row.get::<_, i64>(0)?));
        count += 1;
    }
    Ok((count, last))
}

fn time_page(
    conn: &Connection,
    sql: &str,
    values: &[rusqlite::types::Value],
    repeat: usize,
) -> BenchResult<Vec<Duration>> {
    for _ in 0..repeat.clamp(1, 10) {
        page(conn, sql, values)?;
    }
    let mut samples = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let started = Instant::now();
        page(conn, sql, values)?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// First pages, the deep page by keyset, counts and per-day histograms.
pub fn queries(
    path: &Path,
    combinations: &[Combination],
    repeat: usize,
    count_repeat: usize,
    recorder: &Recorder,
) -> BenchResult<()> {
    let conn = open(path)?;
    for combination in combinations {
        let (clause, values) = where_clause(combination);
        let sql =
            format!("SELECT * FROM events WHERE {clause} ORDER BY time DESC, id DESC LIMIT 50");
        let mut samples = time_page(&conn, &sql, &values, repeat)?;
        recorder.latencies("page", combination.name, "sqlite", &mut samples)?;

        let count_sql = format!("SELECT count(*) FROM events WHERE {clause}");
        let day_sql = format!(
            "SELECT time / 86400000000 AS day, count(*) FROM events WHERE {clause} GROUP BY day ORDER BY day"
        );
        let mut total = 0i64;
        let mut count_samples = Vec::new();
        let mut day_samples = Vec::new();
        for _ in 0..count_repeat {
            let started = Instant::now();
            total = conn.query_row(&count_sql, rusqlite::params_from_iter(&values), |r| {
                r.get(0)
            })?;
            count_samples.push(started.elapsed());
            let started = Instant::now();
            let mut stmt = conn.prepare_cached(&day_sql)?;
            let days: Vec<(i64, i64)> = stmt
                .query_map(rusqlite::params_from_iter(&values), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            day_samples.push(started.elapsed());
            if days.iter().map(|d| d.1).sum::<i64>() != total {
                return Err("per-day counts do not add up to count(*)".into());
            }
        }
        recorder.record("count", combination.name, "sqlite", "total", total as f64)?;
        recorder.record(
            "count",
            combination.name,
            "sqlite",
            "count_ms",
            percentile_ms(&mut count_samples, 0.5),
        )?;
        recorder.record(
            "count",
            combination.name,
            "sqlite",
            "histogram_ms",
            percentile_ms(&mut day_samples, 0.5),
        )?;
    }
    // Page 200 by keyset: walk 199 pages, then time the 200th.
    let first = "SELECT * FROM events WHERE account = 'acme' ORDER BY time DESC, id DESC LIMIT 50";
    let next = "SELECT * FROM events WHERE account = 'acme' AND (time, id) < (?1, ?2) ORDER BY time DESC, id DESC LIMIT 50";
    let (_, mut last) = page(&conn, first, &[])?;
    for _ in 1..199 {
        let (time, id) = last.ok_or("fewer than 200 pages")?;
        last = page(&conn, next, &[time.into(), id.into()])?.1;
    }
    let (time, id) = last.ok_or("fewer than 200 pages")?;
    let mut samples = time_page(&conn, next, &[time.into(), id.into()], repeat)?;
    recorder.latencies("page", "page 200 by cursor", "sqlite", &mut samples)
}

/// `sqlite3 -csv -header` of the account (or one project), newest first.
/// Returns (bytes, elapsed).
pub fn export_csv(path: &Path, project: Option<&str>) -> BenchResult<(u64, Duration)> {
    let filter = match project {
        Some(p) => format!(" AND project = '{}'", p.replace('\'', "''")),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {CSV_COLUMNS} FROM events WHERE account = 'acme'{filter} ORDER BY time DESC, id DESC;"
    );
    let started = Instant::now();
    let mut child = std::process::Command::new("sqlite3")
        .args(["-csv", "-header"])
        .arg(path)
        .arg(&sql)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run sqlite3 (is it installed?): {e}"))?;
    let mut out = child.stdout.take().ok_or("no stdout from sqlite3")?;
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = out.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
    }
    if !child.wait()?.success() {
        return Err("sqlite3 export failed".into());
    }
    Ok((bytes, started.elapsed()))
}

/// Bytes of the database after a checkpoint, so that the WAL is folded in.
pub fn bytes_on_disk(path: &Path) -> BenchResult<(u64, u64)> {
    let conn = open(path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let rows: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
    drop(conn);
    let size = std::fs::metadata(path)?.len();
    Ok((size, rows as u64))
}
