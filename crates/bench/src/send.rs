//! `auditlog send` measured beside the HTTP batch ingest of the same events
//! in the same run: the dataset written as JSON Lines (without ids, so that
//! `send` derives them), loaded into a fresh one-account store by the bench's
//! own HTTP client (batches of 500, 4 clients) and by `auditlog send`
//! (batches of 500, 4 in flight); then a `send` SIGKILLed halfway and run
//! again, which must leave exactly every event once.

use crate::auditlog;
use crate::error::BenchResult;
use crate::generator::Event;
use crate::results::Recorder;
use crate::server::{self, Server};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SEND_HTTP: &str = "HTTP batches of 500, 4 clients, one account";
pub const SEND_CLI: &str = "auditlog send, batches of 500, 4 in flight";
pub const SEND_RERUN: &str = "auditlog send again after SIGKILL halfway";

/// The one account every store of this scenario holds.
const ACCOUNT: &str = "acme";

/// Writes each event as `POST /api/v1/events` takes it, without its `id`,
/// one per line; returns the bytes written.
pub fn write_jsonl(events: &[Event], path: &Path) -> BenchResult<u64> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut bytes = 0;
    for event in events {
        let mut json = event.to_json();
        if let Some(object) = json.as_object_mut() {
            object.remove("id");
        }
        let line = serde_json::to_vec(&json)?;
        out.write_all(&line)?;
        out.write_all(b"\n")?;
        bytes += line.len() as u64 + 1;
    }
    out.flush()?;
    Ok(bytes)
}

pub async fn run(
    bin: &Path,
    work_dir: &Path,
    events: &[Event],
    recorder: &Recorder,
) -> BenchResult<()> {
    let total = events.len() as u64;
    let file = work_dir.join("events.jsonl");
    let bytes = write_jsonl(events, &file)?;
    eprintln!("wrote {} ({bytes} bytes)", file.display());

    // The bench's own client, the events in memory as ready bodies.
    let (server, key, dir) = fresh(bin, work_dir, "send-http")?;
    let bodies = auditlog::bodies(events, 500);
    let keys = vec![key.clone(); 3];
    let elapsed = auditlog::send_all(&server.base, &keys, bodies, 4).await?;
    check_count(&server.base, &key, total).await?;
    record_rate(recorder, SEND_HTTP, total, elapsed)?;
    finish(server, &dir)?;

    // `auditlog send`, reading the file.
    let (server, key, dir) = fresh(bin, work_dir, "send-cli")?;
    let started = Instant::now();
    let summary = summary_of(send_command(bin, &server.base, &key, &file).output()?)?;
    let elapsed = started.elapsed();
    if count(&summary, "stored")? != total {
        return Err(format!("auditlog send did not store every event:\n{summary}").into());
    }
    check_count(&server.base, &key, total).await?;
    record_rate(recorder, SEND_CLI, total, elapsed)?;
    finish(server, &dir)?;

    // Killed halfway, then run again.
    let (server, key, dir) = fresh(bin, work_dir, "send-rerun")?;
    let mut child: Child = send_command(bin, &server.base, &key, &file)
        .stdout(Stdio::null())
        .spawn()?;
    let at_kill = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stored = stored_count(&server.base, &key).await?;
        if stored >= total / 2 {
            child.kill()?;
            child.wait()?;
            break stored_count(&server.base, &key).await?;
        }
        if child.try_wait()?.is_some() {
            return Err("auditlog send ended before it could be interrupted".into());
        }
    };
    let started = Instant::now();
    let summary = summary_of(send_command(bin, &server.base, &key, &file).output()?)?;
    let elapsed = started.elapsed();
    let after = stored_count(&server.base, &key).await?;
    let present = count(&summary, "already present")?;
    eprintln!("{summary}");
    recorder.record(
        "send",
        SEND_RERUN,
        "auditlog",
        "events_at_kill",
        at_kill as f64,
    )?;
    recorder.record(
        "send",
        SEND_RERUN,
        "auditlog",
        "already_present",
        present as f64,
    )?;
    recorder.record("send", SEND_RERUN, "auditlog", "events_after", after as f64)?;
    recorder.record(
        "send",
        SEND_RERUN,
        "auditlog",
        "events_per_s",
        total as f64 / elapsed.as_secs_f64(),
    )?;
    if after != total || count(&summary, "stored")? + present != total {
        return Err(format!("after the rerun {after} events, not {total}:\n{summary}").into());
    }
    finish(server, &dir)?;
    std::fs::remove_file(&file)?;
    Ok(())
}

/// A new store under `work_dir/name` with one account and key, served.
fn fresh(bin: &Path, work_dir: &Path, name: &str) -> BenchResult<(Server, String, PathBuf)> {
    let dir = work_dir.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let key = server::account_with_key(bin, &dir, ACCOUNT)?;
    let server = Server::start(bin, &dir)?;
    Ok((server, key, dir))
}

fn finish(server: Server, dir: &Path) -> BenchResult<()> {
    server.stop()?;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

fn send_command(bin: &Path, base: &str, key: &str, file: &Path) -> Command {
    let mut command = Command::new(bin);
    command
        .args([
            "send",
            "--url",
            base,
            "--batch-size",
            "500",
            "--concurrency",
            "4",
        ])
        .arg(file)
        // The key through the environment, out of the process list.
        .env("AUDITLOG_KEY", key)
        .env("AUDITLOG_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    command
}

fn summary_of(output: Output) -> BenchResult<String> {
    let summary = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!("auditlog send failed ({}):\n{summary}", output.status).into());
    }
    Ok(summary)
}

/// The number after `<label>: ` in `send`'s summary.
fn count(summary: &str, label: &str) -> BenchResult<u64> {
    summary
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{label}: ")))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no {label:?} in the summary:\n{summary}").into())
}

fn record_rate(recorder: &Recorder, case: &str, total: u64, elapsed: Duration) -> BenchResult<()> {
    recorder.record("send", case, "auditlog", "events", total as f64)?;
    recorder.record(
        "send",
        case,
        "auditlog",
        "events_per_s",
        total as f64 / elapsed.as_secs_f64(),
    )
}

/// The account's events, counted by the API (the histogram's total).
async fn stored_count(base: &str, key: &str) -> BenchResult<u64> {
    let http = auditlog::client()?;
    let body: serde_json::Value = http
        .get(format!("{base}/api/v1/events/histogram?interval=week"))
        .bearer_auth(key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    body["total"]
        .as_u64()
        .ok_or_else(|| format!("no total in the histogram: {body}").into())
}

async fn check_count(base: &str, key: &str, total: u64) -> BenchResult<()> {
    let stored = stored_count(base, key).await?;
    if stored != total {
        return Err(format!("the store holds {stored} events, not {total}").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::Dataset;

    #[test]
    fn the_file_has_one_event_per_line_without_ids() {
        let events: Vec<Event> = Dataset::new(7).events(50).collect();
        let dir = std::env::temp_dir().join(format!("bench-send-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let bytes = write_jsonl(&events, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(bytes, text.len() as u64);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 50);
        for (line, event) in lines.iter().zip(&events) {
            let mut expected = event.to_json();
            expected.as_object_mut().unwrap().remove("id");
            assert_eq!(*line, expected);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
