//! `erasure`: the time to erase one data subject (issue 16) in an existing
//! embedded store, e.g. a copy of the 10M-event store `bench search` loads
//! (`--data-dir`; the store is changed, so pass a copy):
//!
//! 1. the actor of the big account (`acme`) whose event count is nearest
//!    10,000, read from the store itself (one grouped count over the
//!    account's actors, before the server starts);
//! 2. the server started on the store, an admin key made for the account;
//! 3. `POST /api/v1/erasures` for that subject, then `GET` every 250 ms
//!    until the job is `done`: the events erased, the wall time from the
//!    POST to `done`, events erased per second, and the bytes on disk
//!    (database file and WAL) before and after (once they stop changing).

use crate::error::BenchResult;
use crate::results::Recorder;
use crate::server::{self, Server};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

pub const SECTION: &str = "erasure";
pub const ERASE: &str = "erasing one subject's events (nearest 10,000 of account acme)";
pub const DISK_BEFORE: &str = "bytes on disk before the erasure";
pub const DISK_AFTER: &str = "bytes on disk after the erasure";

/// The account whose subject is erased, and the events it should have.
const ACCOUNT: &str = "acme";
const TARGET_EVENTS: u64 = 10_000;

fn db_bytes(dir: &Path) -> u64 {
    ["auditlog.db", "auditlog.db-wal"]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Waits until the bytes on disk stop changing (3 equal readings a second
/// apart), at most 30 s (a server's own checkpoints may keep the WAL
/// moving): the last reading.
async fn settled_bytes(dir: &Path) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = db_bytes(dir);
    let mut same = 0;
    while same < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = db_bytes(dir);
        if now == last {
            same += 1;
        } else {
            same = 0;
            last = now;
        }
    }
    last
}

/// Each actor of `account` with its number of stored events.
pub fn actor_counts(dir: &Path, account: &str) -> BenchResult<Vec<(String, u64)>> {
    let db = dir.join("auditlog.db");
    if !db.is_file() {
        return Err(format!("no embedded store at {}", db.display()).into());
    }
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare(
        "SELECT a.actor_id, c.n FROM ( \
           SELECT actor, COUNT(*) AS n FROM event_log \
           WHERE actor IN (SELECT a.id FROM actors a JOIN accounts t ON t.id = a.account_id \
                           WHERE t.name = ?1) \
           GROUP BY actor) c JOIN actors a ON a.id = c.actor",
    )?;
    let rows = stmt.query_map([account], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The actor whose count is nearest `target` (ties: the smaller id).
pub fn nearest(counts: &[(String, u64)], target: u64) -> Option<(String, u64)> {
    counts
        .iter()
        .filter(|(id, _)| !id.starts_with("erased:"))
        .min_by(|a, b| {
            a.1.abs_diff(target)
                .cmp(&b.1.abs_diff(target))
                .then_with(|| a.0.cmp(&b.0))
        })
        .cloned()
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

pub async fn run(bin: &Path, dir: &Path, recorder: &Recorder) -> BenchResult<()> {
    let started = Instant::now();
    let counts = actor_counts(dir, ACCOUNT)?;
    let (subject, expected) = nearest(&counts, TARGET_EVENTS)
        .ok_or_else(|| format!("account {ACCOUNT} has no actors in {}", dir.display()))?;
    eprintln!(
        "subject {subject}: {expected} events of {} actors (counted in {:.1} s)",
        counts.len(),
        started.elapsed().as_secs_f64()
    );
    let out = server::cli(
        bin,
        dir,
        &["key", "create", "--account", ACCOUNT, "--scope", "admin"],
    )?;
    let admin = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("alk_"))
        .ok_or("no admin key in the output of key create")?
        .to_string();
    let server = Server::start(bin, dir)?;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let before = settled_bytes(dir).await;

    let posted = Instant::now();
    let created = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/api/v1/erasures"),
        &admin,
        Some(json!({ "subject": subject })),
    )
    .await?;
    let id = created["erasure"]["id"].clone();
    let deadline = Instant::now() + Duration::from_secs(7_200);
    let done = loop {
        let view = call(
            &http,
            reqwest::Method::GET,
            format!("{base}/api/v1/erasures/{id}"),
            &admin,
            None,
        )
        .await?;
        let erasure = &view["erasure"];
        match erasure["status"].as_str() {
            Some("done") => break erasure.clone(),
            Some("waiting") => {
                return Err(format!("erasure {id} waits for a legal hold: {erasure}").into())
            }
            _ => {}
        }
        if Instant::now() > deadline {
            return Err(format!("erasure {id} did not finish within 2 hours").into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let wall = posted.elapsed();
    let erased = done["erased"].as_u64().unwrap_or(0);
    let after = settled_bytes(dir).await;
    drop(server);
    eprintln!(
        "erased {erased} events of {subject} in {:.2} s; {before} -> {after} bytes",
        wall.as_secs_f64()
    );
    if erased != expected {
        eprintln!(
            "note: the store counted {expected} events of the subject, the job erased {erased}"
        );
    }
    recorder.record(SECTION, ERASE, "auditlog", "erased", erased as f64)?;
    recorder.record(SECTION, ERASE, "auditlog", "seconds", wall.as_secs_f64())?;
    recorder.record(
        SECTION,
        ERASE,
        "auditlog",
        "events_per_s",
        erased as f64 / wall.as_secs_f64().max(1e-3),
    )?;
    recorder.record(
        SECTION,
        DISK_BEFORE,
        "auditlog",
        "mib",
        before as f64 / 1_048_576.0,
    )?;
    recorder.record(
        SECTION,
        DISK_AFTER,
        "auditlog",
        "mib",
        after as f64 / 1_048_576.0,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_count_wins_and_pseudonyms_are_left_out() {
        let counts = vec![
            ("u-a".to_string(), 9_000),
            ("u-b".to_string(), 10_400),
            ("erased:x".to_string(), 10_000),
            ("u-c".to_string(), 12_000),
        ];
        assert_eq!(nearest(&counts, 10_000), Some(("u-b".into(), 10_400)));
        assert_eq!(nearest(&[], 10_000), None);
    }
}
