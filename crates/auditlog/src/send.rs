//! `auditlog send`: loads a file of JSON Lines events (one `POST
//! /api/v1/events` event object per line) into a server through its API, in
//! batches with bounded concurrency, and reports what was stored, what was
//! already there and which lines were rejected, and why.
//!
//! Rerunning after an interruption is safe: every line is sent with an id
//! (its own, or one derived from the namespace, its number and its bytes,
//! `event_id`), so the server stores each event once and answers the
//! repeats with `created` false.
//!
//! - `lines`: reading, checking and batching lines; `event_id`: the derived
//!   ids; `post`: one batch to the API with retries; `summary`: the tally
//!   and the report.

mod event_id;
mod lines;
mod post;
mod summary;

use crate::cli::SendCommand;
use crate::error::CliResult;
use anyhow::{anyhow, bail, Context};
use event_id::Namespace;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lines::{BatchReader, Chunk};
use post::{Poster, RetryPolicy};
use std::io::{BufRead, BufReader, IsTerminal};
use std::time::Duration;
use summary::Summary;
use tokio::task::JoinSet;

pub use summary::LinesRejected;

/// How long one request may take before it counts as failed (and is
/// retried): well above the server's own request timeout (30 s by default),
/// which answers 503 first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The input: where the lines come from and what they are called.
struct Input {
    reader: Box<dyn BufRead + Send>,
    /// The file's size, for the progress bar (none for standard input).
    size: Option<u64>,
    name: String,
    namespace: Namespace,
}

pub async fn run(command: SendCommand) -> CliResult {
    let events_url = events_url(&command.url)?;
    if command.key.trim().is_empty() {
        bail!("--key is empty: give an API key with the ingest scope");
    }
    let input = open(&command)?;
    let poster = Poster::new(
        events_url,
        command.key.trim(),
        RetryPolicy {
            max_retries: command.max_retries,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
        },
        REQUEST_TIMEOUT,
        crate::https::client_builder(command.ca_file.as_deref())?,
    )
    .context("cannot set up the HTTP client")?;
    let namespace = input.namespace.as_str().to_string();
    let name = input.name.clone();
    let progress = progress_bar(input.size);
    let mut summary = Summary::default();
    let stopped = send_all(input, &command, poster, &mut summary, &progress).await;
    progress.finish_and_clear();
    print!("{}", summary.render(&name, &namespace));
    if let Err(e) = stopped {
        return Err(e.context(format!(
            "stopped before the end of {name}; what was stored stays stored: run the same command again to send the rest (nothing is stored twice)"
        )));
    }
    summary.verdict()?;
    Ok(())
}

/// `…/api/v1/events` of the server at `base` (http:// or https://).
fn events_url(base: &str) -> CliResult<String> {
    Ok(format!("{}/api/v1/events", crate::https::base_url(base)?))
}

/// Opens the file (or standard input) and settles the namespace.
fn open(command: &SendCommand) -> CliResult<Input> {
    let given = command
        .namespace
        .as_deref()
        .map(Namespace::given)
        .transpose()?;
    if command.file.as_os_str() == "-" {
        let namespace = given.ok_or_else(|| {
            anyhow!("reading standard input needs --namespace: there is no file path to keep this input's derived ids apart from another's (pick a name that is unique to this data, and the same when you send it again)")
        })?;
        return Ok(Input {
            reader: Box::new(BufReader::new(std::io::stdin())),
            size: None,
            name: "standard input".into(),
            namespace,
        });
    }
    let path = &command.file;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let canonical = std::fs::canonicalize(path)
        .with_context(|| format!("cannot resolve the path of {}", path.display()))?;
    let size = file.metadata().ok().map(|m| m.len());
    Ok(Input {
        reader: Box::new(BufReader::with_capacity(1 << 20, file)),
        size,
        name: path.display().to_string(),
        namespace: given.unwrap_or_else(|| Namespace::for_file(&canonical, command.key.trim())),
    })
}

/// Reads the input on a thread of its own (file or pipe reads block) and
/// sends its batches, at most `--concurrency` at once. Returns the first
/// error that stops the run; `summary` holds what was settled until then.
async fn send_all(
    input: Input,
    command: &SendCommand,
    poster: Poster,
    summary: &mut Summary,
    progress: &ProgressBar,
) -> CliResult {
    let concurrency = usize::from(command.concurrency.max(1));
    // A few batches read ahead, no more: memory stays bounded however
    // large the file.
    let (sender, mut chunks) = tokio::sync::mpsc::channel::<std::io::Result<Chunk>>(concurrency);
    let batch_size = usize::from(command.batch_size);
    let name = input.name.clone();
    let reader = std::thread::spawn(move || {
        let mut reader = BatchReader::new(input.reader, input.namespace, batch_size);
        loop {
            let next = reader.next_chunk().transpose();
            let Some(next) = next else { return };
            let failed = next.is_err();
            // A closed channel: the run stopped; stop reading.
            if sender.blocking_send(next).is_err() || failed {
                return;
            }
        }
    });
    let mut tasks = JoinSet::new();
    let result = async {
        while let Some(chunk) = chunks.recv().await {
            let chunk = chunk.with_context(|| format!("cannot read {name}"))?;
            summary.lines += (chunk.events.len() + chunk.rejected.len()) as u64;
            summary.rejected.extend(chunk.rejected);
            if chunk.events.is_empty() {
                progress.inc(chunk.bytes_read);
                continue;
            }
            while tasks.len() >= concurrency {
                settle(tasks.join_next().await, summary, progress)?;
            }
            let poster = poster.clone();
            let (events, bytes_read) = (chunk.events, chunk.bytes_read);
            tasks.spawn(async move { (bytes_read, poster.send(events).await) });
        }
        while let Some(done) = tasks.join_next().await {
            settle(Some(done), summary, progress)?;
        }
        Ok(())
    }
    .await;
    // On an error: stop the batches in flight and the reader (its channel closes).
    tasks.abort_all();
    drop(chunks);
    let _ = reader.join();
    result
}

type Settled = (u64, Result<post::Outcome, post::PostError>);

fn settle(
    done: Option<Result<Settled, tokio::task::JoinError>>,
    summary: &mut Summary,
    progress: &ProgressBar,
) -> CliResult {
    let Some(done) = done else { return Ok(()) };
    let (bytes_read, outcome) = done.context("a batch's task failed")?;
    summary.add(outcome?);
    progress.inc(bytes_read);
    progress.set_message(summary.progress());
    Ok(())
}

/// A bar over the file's bytes on a terminal (a spinner for standard
/// input); nothing when standard error is not a terminal.
fn progress_bar(size: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match size {
        Some(size) => (
            ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr()),
            "{bar:30} {percent:>3}% {msg} ({elapsed} elapsed, {eta} left)",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "{spinner} {msg} ({elapsed})",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
