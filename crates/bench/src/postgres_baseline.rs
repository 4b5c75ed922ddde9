//! The PostgreSQL baseline: the table a competent team would write (bigserial
//! id, timestamptz, text columns, jsonb details, B-tree indexes on
//! (account, time desc) and (account, X, time desc)), in its own database
//! that this benchmark creates and drops, fed the same events over localhost.

use crate::error::BenchResult;
use crate::generator::{Combination, Event};
use crate::results::{percentile_ms, Recorder};
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

pub const DATABASE: &str = "auditlog_bench";

const COLUMNS: &str = "account, event_id, time, event_type, action, actor_id, actor_name, \
    actor_email, project, app, version, target_id, target_name, details, ip, user_agent, request_id";

fn schema(table: &str) -> String {
    format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (
            id          bigserial PRIMARY KEY,
            account     text NOT NULL,
            event_id    text NOT NULL,
            time        timestamptz NOT NULL,
            event_type  text NOT NULL,
            action      text NOT NULL,
            actor_id    text NOT NULL,
            actor_name  text,
            actor_email text,
            project     text,
            app         text,
            version     text,
            target_id   text,
            target_name text,
            details     jsonb,
            ip          text,
            user_agent  text,
            request_id  text
         );
         CREATE INDEX {table}_time ON {table} (account, time DESC);
         CREATE INDEX {table}_type ON {table} (account, event_type, time DESC);
         CREATE INDEX {table}_action ON {table} (account, action, time DESC);
         CREATE INDEX {table}_actor ON {table} (account, actor_id, time DESC);
         CREATE INDEX {table}_project ON {table} (account, project, time DESC);
         CREATE INDEX {table}_target ON {table} (account, target_id, time DESC);"
    )
}

/// Connects to `url` plus `dbname`, driving the connection on a task.
pub async fn connect(url: &str, dbname: &str) -> BenchResult<Client> {
    let (client, connection) =
        tokio_postgres::connect(&format!("{url} dbname={dbname}"), NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("postgres connection error: {e}");
        }
    });
    Ok(client)
}

/// Drops and creates the benchmark's own database.
pub async fn recreate_database(url: &str) -> BenchResult<()> {
    let admin = connect(url, "postgres").await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
        .await?;
    Ok(())
}

pub async fn drop_database(url: &str) -> BenchResult<()> {
    let admin = connect(url, "postgres").await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .await?;
    Ok(())
}

/// The durability settings in force, for the report.
pub async fn settings(url: &str) -> BenchResult<String> {
    let client = connect(url, "postgres").await?;
    let mut out = Vec::new();
    for name in [
        "server_version",
        "fsync",
        "synchronous_commit",
        "shared_buffers",
        "wal_level",
    ] {
        let row = client.query_one(&format!("SHOW {name}"), &[]).await?;
        out.push(format!("{name}={}", row.get::<_, String>(0)));
    }
    Ok(out.join(" "))
}

pub async fn create_table(client: &Client, table: &str) -> BenchResult<()> {
    client.batch_execute(&schema(table)).await?;
    Ok(())
}

fn insert_sql(table: &str, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({COLUMNS}) VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        let b = row * 17;
        // Times and details travel as text and are cast by the server.
        sql.push_str(&format!(
            "(${},${},${}::text::timestamptz,${},${},${},${},${},${},${},${},${},${},${}::text::jsonb,${},${},${})",
            b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11, b + 12,
            b + 13, b + 14, b + 15, b + 16, b + 17
        ));
    }
    sql
}

/// An event's 17 values as owned text, in `COLUMNS` order.
fn values(e: &Event) -> [Option<String>; 17] {
    [
        Some(e.account_name().to_string()),
        Some(e.id.clone()),
        Some(e.time_rfc3339()),
        Some(e.event_type.to_string()),
        Some(e.action.to_string()),
        Some(e.actor_id.clone()),
        Some(e.actor_name.clone()),
        Some(e.actor_email.clone()),
        e.project.clone(),
        e.app.clone(),
        e.version.clone(),
        e.target_id.clone(),
        e.target_name.clone(),
        Some(e.details.clone()),
        Some(e.ip.clone()),
        Some(e.user_agent.to_string()),
        Some(e.request_id.clone()),
    ]
}

/// One INSERT per event (autocommit: one durable transaction each) from
/// `clients` connections.
pub async fn load_rows(
    url: &str,
    table: &str,
    events: &[Event],
    clients: usize,
) -> BenchResult<Duration> {
    let setup = connect(url, DATABASE).await?;
    create_table(&setup, table).await?;
    let rows: Vec<[Option<String>; 17]> = events.iter().map(values).collect();
    let rows = std::sync::Arc::new(rows);
    let mut connections = Vec::new();
    for _ in 0..clients {
        connections.push(connect(url, DATABASE).await?);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, client) in connections.into_iter().enumerate() {
        let rows = rows.clone();
        let sql = insert_sql(table, 1);
        tasks.push(tokio::spawn(async move {
            let stmt = client.prepare(&sql).await.map_err(|e| e.to_string())?;
            for row in rows.iter().skip(index).step_by(clients) {
                let params: Vec<&(dyn ToSql + Sync)> =
                    row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                client
                    .execute(&stmt, &params)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

/// Multi-row INSERTs of `batch` rows, each its own transaction, one client.
pub async fn load_batches(
    url: &str,
    table: &str,
    events: &[Event],
    batch: usize,
) -> BenchResult<Duration> {
    let client = connect(url, DATABASE).await?;
    create_table(&client, table).await?;
    let rows: Vec<[Option<String>; 17]> = events.iter().map(values).collect();
    let full = client.prepare(&insert_sql(table, batch)).await?;
    let started = Instant::now();
    for chunk in rows.chunks(batch) {
        let params: Vec<&(dyn ToSql + Sync)> = chunk
            .iter()
            .flat_map(|row| row.iter().map(|v| v as &(dyn ToSql + Sync)))
            .collect();
        if chunk.len() == batch {
            client.execute(&full, &params).await?;
        } else {
            client
                .execute(&insert_sql(table, chunk.len()), &params)
                .await?;
        }
    }
    Ok(started.elapsed())
}

fn csv_field(out: &mut Vec<u8>, value: Option<&str>) {
    if let Some(v) = value {
        out.push(b'"');
        for b in v.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    }
}

/// COPY … FROM STDIN (CSV) of every event, in one transaction.
pub async fn load_copy(url: &str, table: &str, events: &[Event]) -> BenchResult<Duration> {
    let client = connect(url, DATABASE).await?;
    create_table(&client, table).await?;
    // Formatted before the clock starts, like the HTTP bodies of Auditlog.
    let mut chunks = Vec::new();
    let mut chunk = Vec::with_capacity(1 << 20);
    for e in events {
        for (i, v) in values(e).iter().enumerate() {
            if i > 0 {
                chunk.push(b',');
            }
            csv_field(&mut chunk, v.as_deref());
        }
        chunk.push(b'\n');
        if chunk.len() >= 1 << 20 {
            chunks.push(std::mem::replace(&mut chunk, Vec::with_capacity(1 << 20)));
        }
    }
    chunks.push(chunk);
    let started = Instant::now();
    let sink = client
        .copy_in::<_, bytes::Bytes>(&format!(
            "COPY {table} ({COLUMNS}) FROM STDIN WITH (FORMAT csv)"
        ))
        .await?;
    futures_util::pin_mut!(sink);
    for chunk in chunks {
        sink.send(bytes::Bytes::from(chunk)).await?;
    }
    sink.finish().await?;
    Ok(started.elapsed())
}

fn where_clause(combination: &Combination) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = "account = $1".to_string();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new("acme".to_string())];
    for (column, value) in combination.text_conditions() {
        params.push(Box::new(value));
        sql.push_str(&format!(" AND {column} = ${}", params.len()));
    }
    for (bound, op) in [(combination.from, ">="), (combination.to, "<=")] {
        if let Some(micros) = bound {
            params.push(Box::new(micros));
            sql.push_str(&format!(
                " AND time {op} 'epoch'::timestamptz + ${}::bigint * interval '1 microsecond'",
                params.len()
            ));
        }
    }
    (sql, params)
}

/// Reads every text column of every row, as a client building a page would.
async fn page(
    client: &Client,
    stmt: &tokio_postgres::Statement,
    params: &[&(dyn ToSql + Sync)],
) -> BenchResult<Option<(i64, i64)>> {
    let rows = client.query(stmt, params).await?;
    let mut last = None;
    for row in &rows {
        for i in 0..row.len() {
            if let Ok(Some(text)) = row.try_get::<_, Option<&str>>(i) {
                std::hint::black_box(text);
            }
        }
        last = Some((
            row.try_get::<_, i64>("time_us")?,
            row.try_get::<_, i64>("id")?,
        ));
    }
    Ok(last)
}

async fn time_page(
    client: &Client,
    stmt: &tokio_postgres::Statement,
    params: &[&(dyn ToSql + Sync)],
    repeat: usize,
) -> BenchResult<Vec<Duration>> {
    for _ in 0..repeat.clamp(1, 10) {
        page(client, stmt, params).await?;
    }
    let mut samples = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let started = Instant::now();
        page(client, stmt, params).await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// The columns a page returns: all of them, plus the time as micros for the keyset.
const PAGE_COLUMNS: &str =
    "*, (extract(epoch from time) * 1000000)::bigint AS time_us, details::text AS details_text";

/// First pages, the deep page by keyset, counts and per-day histograms.
pub async fn queries(
    url: &str,
    combinations: &[Combination],
    repeat: usize,
    count_repeat: usize,
    recorder: &Recorder,
) -> BenchResult<()> {
    let client = connect(url, DATABASE).await?;
    client.batch_execute("ANALYZE events").await?;
    for combination in combinations {
        let (clause, boxed) = where_clause(combination);
        let params: Vec<&(dyn ToSql + Sync)> = boxed
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let stmt = client
            .prepare(&format!(
                "SELECT {PAGE_COLUMNS} FROM events WHERE {clause} ORDER BY time DESC, id DESC LIMIT 50"
            ))
            .await?;
        let mut samples = time_page(&client, &stmt, &params, repeat).await?;
        recorder.latencies("page", combination.name, "postgres", &mut samples)?;

        let count = client
            .prepare(&format!("SELECT count(*) FROM events WHERE {clause}"))
            .await?;
        let days = client
            .prepare(&format!(
                "SELECT date_trunc('day', time AT TIME ZONE 'UTC') AS day, count(*) FROM events \
                 WHERE {clause} GROUP BY day ORDER BY day"
            ))
            .await?;
        let mut total = 0i64;
        let (mut count_samples, mut day_samples) = (Vec::new(), Vec::new());
        for _ in 0..count_repeat {
            let started = Instant::now();
            total = client.query_one(&count, &params).await?.get(0);
            count_samples.push(started.elapsed());
            let started = Instant::now();
            let rows = client.query(&days, &params).await?;
            day_samples.push(started.elapsed());
            if rows.iter().map(|r| r.get::<_, i64>(1)).sum::<i64>() != total {
                return Err("per-day counts do not add up to count(*)".into());
            }
        }
        recorder.record("count", combination.name, "postgres", "total", total as f64)?;
        recorder.record(
            "count",
            combination.name,
            "postgres",
            "count_ms",
            percentile_ms(&mut count_samples, 0.5),
        )?;
        recorder.record(
            "count",
            combination.name,
            "postgres",
            "histogram_ms",
            percentile_ms(&mut day_samples, 0.5),
        )?;
    }
    let first = client
        .prepare(&format!(
            "SELECT {PAGE_COLUMNS} FROM events WHERE account = 'acme' ORDER BY time DESC, id DESC LIMIT 50"
        ))
        .await?;
    let next = client
        .prepare(&format!(
            "SELECT {PAGE_COLUMNS} FROM events WHERE account = 'acme' \
             AND (time, id) < ('epoch'::timestamptz + $1::bigint * interval '1 microsecond', $2) \
             ORDER BY time DESC, id DESC LIMIT 50"
        ))
        .await?;
    let mut last = page(&client, &first, &[]).await?;
    for _ in 1..199 {
        let (time, id) = last.ok_or("fewer than 200 pages")?;
        last = page(&client, &next, &[&time, &id]).await?;
    }
    let (time, id) = last.ok_or("fewer than 200 pages")?;
    let mut samples = time_page(&client, &next, &[&time, &id], repeat).await?;
    recorder.latencies("page", "page 200 by cursor", "postgres", &mut samples)
}

/// `COPY (SELECT …) TO STDOUT WITH CSV` of the account or one project.
/// Returns (bytes, elapsed).
pub async fn export_csv(url: &str, project: Option<&str>) -> BenchResult<(u64, Duration)> {
    let client = connect(url, DATABASE).await?;
    let filter = match project {
        Some(p) => format!(" AND project = '{}'", p.replace('\'', "''")),
        None => String::new(),
    };
    let sql = format!(
        "COPY (SELECT {} FROM events WHERE account = 'acme'{filter} ORDER BY time DESC, id DESC) \
         TO STDOUT WITH CSV HEADER",
        crate::sqlite_baseline::CSV_COLUMNS
    );
    let started = Instant::now();
    let stream = client.copy_out(&sql).await?;
    futures_util::pin_mut!(stream);
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        bytes += chunk?.len() as u64;
    }
    Ok((bytes, started.elapsed()))
}

/// Table + indexes + TOAST, and the row count.
pub async fn bytes_on_disk(url: &str) -> BenchResult<(u64, u64)> {
    let client = connect(url, DATABASE).await?;
    client.batch_execute("VACUUM ANALYZE events").await?;
    let size: i64 = client
        .query_one("SELECT pg_total_relation_size('events')", &[])
        .await?
        .get(0);
    let rows: i64 = client
        .query_one("SELECT count(*) FROM events", &[])
        .await?
        .get(0);
    Ok((size as u64, rows as u64))
}
