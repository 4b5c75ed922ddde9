//! What can go wrong, per event and per request. A refused event is never
//! dropped silently: it comes back as a [`Rejection`] naming its id, the
//! server's reason and, for a `time` too far ahead, the server's clock.

use crate::event::Event;
use crate::wire::FieldError;
use std::time::{Duration, SystemTime};

/// One event the server refused (422 invalid, 409 conflicting id, 413 too
/// large on its own, or a 400/415 of a request holding only it). The rest
/// of its batch was resent without it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The refused event's id.
    pub id: String,
    /// The HTTP status of the refusal.
    pub status: u16,
    /// The server's error code, such as `invalid_events` or `conflict`.
    pub code: String,
    /// The server's words: the event's first broken rule, or the message.
    pub reason: String,
    /// Every broken rule the server named for this event (422 only).
    pub errors: Vec<FieldError>,
    /// The server's clock (its `Date` header) when it refused the event, so
    /// that a `time` refused as too far in the future can be compared with it.
    pub server_time: Option<SystemTime>,
    /// The event itself, to fix and send again.
    pub event: Event,
}

impl Rejection {
    /// True when the server refused `time` as more than 5 minutes ahead of its clock.
    pub fn time_in_future(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.field == "time" && e.rule == "in_future")
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "event {} was refused ({} {}): {}",
            self.id, self.status, self.code, self.reason
        )?;
        if self.time_in_future() {
            if let (Some(sent), Some(server)) = (&self.event.time, self.server_time) {
                write!(
                    f,
                    " (its time {sent}; the server's clock {})",
                    httpdate::fmt_http_date(server)
                )?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Rejection {}

/// Why a request (or the rest of a batch) was not delivered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Rejected(Box<Rejection>),
    /// The server refused the request as a whole and retrying cannot help
    /// (a bad key, a missing scope, a wrong URL): fix the configuration.
    #[error("the server refused the request ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// Retries ran out of time (the retry policy's `give_up_after`, or the
    /// batcher's shutdown deadline): nothing is known to be stored. Sending
    /// the same events again is safe (same ids).
    #[error("not delivered after {attempts} attempts in {elapsed:?}; last error: {last}")]
    GaveUp {
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
    /// An answer this client cannot read (a proxy's page, another service).
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The client could not be set up (a bad URL or key).
    #[error("the client is misconfigured: {0}")]
    Config(String),
}
