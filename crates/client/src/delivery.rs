//! Delivering a list of events: in requests of at most 1,000 events and
//! ~9 MiB, retried with backoff on connection errors, timeouts, 408, 429
//! and 5xx; on a 422 or 409 the events the server names by index are taken
//! out (each reported with its id and the server's reason) and the rest is
//! sent again, so one bad event never holds back or sinks its batch.

use crate::error::{Rejection, SendError};
use crate::event::Event;
use crate::retry::RetryPolicy;
use crate::transport::{Answer, Transport};
use crate::wire::{ConflictDetails, ErrorBody, FieldError, IngestAnswer, InvalidEvent, Receipt};
use tokio::sync::watch;
use tokio::time::Instant;

/// Most events in one request (the server's limit).
pub const MAX_REQUEST_EVENTS: usize = 1_000;
/// Most bytes of events in one request: under the server's 10 MiB with room
/// for the envelope.
pub const MAX_REQUEST_BYTES: usize = 9 * 1024 * 1024;

/// When to stop retrying: a fixed deadline, a deadline that a shutdown may
/// set later, or both (the earlier wins).
#[derive(Debug, Clone, Default)]
pub(crate) struct Stop {
    pub deadline: Option<Instant>,
    pub shutdown: Option<watch::Receiver<Option<Instant>>>,
}

impl Stop {
    fn at(&self) -> Option<Instant> {
        let shutdown = self.shutdown.as_ref().and_then(|rx| *rx.borrow());
        match (self.deadline, shutdown) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Resolves when the stop time passes (never, if there is none).
    async fn reached(&mut self) {
        loop {
            let at = self.at();
            let sleep = async {
                match at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let changed = async {
                match self.shutdown.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => return,
                still_open = changed => if !still_open {
                    // The batcher is gone; only the fixed deadline is left.
                    self.shutdown = None;
                },
            }
        }
    }
}

/// What became of each event of a delivery, by its index in the list.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub receipts: Vec<(usize, Receipt)>,
    pub rejected: Vec<(usize, Rejection)>,
    /// Events neither stored nor refused, because of `failure`.
    pub unsent: Vec<usize>,
    pub failure: Option<SendError>,
}

/// Delivers `events` until each is stored or refused, or until `stop`.
pub(crate) async fn deliver(
    transport: &Transport,
    policy: &RetryPolicy,
    events: &[Event],
    stop: &mut Stop,
) -> Outcome {
    let encoded: Vec<Vec<u8>> = events.iter().map(Event::to_json).collect();
    let mut remaining: Vec<usize> = (0..events.len()).collect();
    let mut outcome = Outcome::default();
    let started = Instant::now();
    let (mut attempts, mut failures_in_row) = (0u32, 0u32);
    let mut max_events = MAX_REQUEST_EVENTS;
    let mut last = String::new();
    while !remaining.is_empty() {
        let chunk = chunk_len(&remaining, &encoded, max_events);
        let body = request_body(&remaining[..chunk], &encoded);
        attempts += 1;
        let answer = tokio::select! {
            answer = transport.post_events(body) => answer,
            () = stop.reached() => {
                if last.is_empty() {
                    last = "stopped while a request was unanswered".into();
                }
                outcome.failure = Some(gave_up(attempts, started, &last));
                break;
            }
        };
        let retry_after = match answer {
            Err(e) => {
                last = describe(&e);
                None
            }
            Ok(answer) => match answer.status {
                200 | 201 => match serde_json::from_slice::<IngestAnswer>(&answer.body) {
                    Ok(read) if read.events.len() == chunk => {
                        for (index, receipt) in remaining.drain(..chunk).zip(read.events) {
                            outcome.receipts.push((index, receipt));
                        }
                        failures_in_row = 0;
                        continue;
                    }
                    _ => {
                        outcome.failure = Some(SendError::Protocol(format!(
                            "a {} answer without one receipt per event: {}",
                            answer.status,
                            excerpt(&answer.body)
                        )));
                        break;
                    }
                },
                408 | 429 | 500 | 502 | 503 | 504 => {
                    last = error_text(&answer);
                    answer.retry_after
                }
                413 if chunk > 1 => {
                    // Too large together: send halves (never more than the server took).
                    max_events = (chunk / 2).max(1);
                    continue;
                }
                400 | 409 | 413 | 415 | 422 => {
                    let named = named_indexes(&answer, chunk);
                    // Nothing named (or a refusal of the whole request): every
                    // event of the request is refused with the server's words.
                    let refused: Vec<(usize, Vec<FieldError>)> = if named.is_empty() {
                        (0..chunk).map(|i| (i, Vec::new())).collect()
                    } else {
                        named
                    };
                    let body = error_body(&answer);
                    let mut taken = Vec::new();
                    for (local, errors) in refused {
                        let index = remaining[local];
                        let reason = errors
                            .first()
                            .map(|e| format!("{}: {}", e.field, e.message))
                            .or_else(|| body.as_ref().map(|b| b.error.message.clone()))
                            .unwrap_or_else(|| excerpt(&answer.body));
                        outcome.rejected.push((
                            index,
                            Rejection {
                                id: events[index].id.clone(),
                                status: answer.status,
                                code: body
                                    .as_ref()
                                    .map_or_else(|| "unknown".into(), |b| b.error.code.clone()),
                                reason,
                                errors,
                                server_time: answer.date,
                                event: events[index].clone(),
                            },
                        ));
                        taken.push(local);
                    }
                    let mut local = 0;
                    remaining.retain(|_| {
                        local += 1;
                        !taken.contains(&(local - 1))
                    });
                    continue;
                }
                _ => {
                    let (code, message) = match error_body(&answer) {
                        Some(b) => (b.error.code, b.error.message),
                        None => ("unknown".into(), excerpt(&answer.body)),
                    };
                    outcome.failure = Some(SendError::Refused {
                        status: answer.status,
                        code,
                        message,
                    });
                    break;
                }
            },
        };
        failures_in_row += 1;
        let delay = policy.delay(failures_in_row, retry_after);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.reached() => {
                outcome.failure = Some(gave_up(attempts, started, &last));
                break;
            }
        }
    }
    if outcome.failure.is_none() && !remaining.is_empty() {
        outcome.failure = Some(gave_up(attempts, started, &last));
    }
    outcome.unsent = remaining;
    outcome
}

fn gave_up(attempts: u32, started: Instant, last: &str) -> SendError {
    SendError::GaveUp {
        attempts,
        elapsed: started.elapsed(),
        last: last.to_string(),
    }
}

/// How many of `remaining` go in the next request.
fn chunk_len(remaining: &[usize], encoded: &[Vec<u8>], max_events: usize) -> usize {
    let mut bytes = 0;
    let mut count = 0;
    for &index in remaining.iter().take(max_events) {
        bytes += encoded[index].len() + 1;
        if count > 0 && bytes > MAX_REQUEST_BYTES {
            break;
        }
        count += 1;
    }
    count
}

/// `{"events":[…]}` from the events' JSON, encoded once per delivery.
fn request_body(indexes: &[usize], encoded: &[Vec<u8>]) -> Vec<u8> {
    let size: usize = indexes.iter().map(|&i| encoded[i].len() + 1).sum();
    let mut body = Vec::with_capacity(size + 12);
    body.extend_from_slice(b"{\"events\":[");
    for (n, &index) in indexes.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&encoded[index]);
    }
    body.extend_from_slice(b"]}");
    body
}

fn error_body(answer: &Answer) -> Option<ErrorBody> {
    serde_json::from_slice(&answer.body).ok()
}

/// The events of a request that a 422 or 409 names, by index in the request,
/// with the rules each broke.
fn named_indexes(answer: &Answer, chunk: usize) -> Vec<(usize, Vec<FieldError>)> {
    let Some(details) = error_body(answer).and_then(|b| b.error.details) else {
        return Vec::new();
    };
    let mut named: Vec<(usize, Vec<FieldError>)> = match answer.status {
        422 => serde_json::from_value::<Vec<InvalidEvent>>(details)
            .map(|list| list.into_iter().map(|e| (e.index, e.errors)).collect())
            .unwrap_or_default(),
        409 => serde_json::from_value::<ConflictDetails>(details)
            .map(|c| vec![(c.index, Vec::new())])
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    named.retain(|(index, _)| *index < chunk);
    named.sort_by_key(|(index, _)| *index);
    named.dedup_by_key(|(index, _)| *index);
    named
}

fn error_text(answer: &Answer) -> String {
    match error_body(answer) {
        Some(b) => format!("{} {}: {}", answer.status, b.error.code, b.error.message),
        None => format!("{}: {}", answer.status, excerpt(&answer.body)),
    }
}

/// The start of a body that is not the API's JSON, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(200).collect()
}

/// A transport error with its causes (reqwest's own text is terse).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
