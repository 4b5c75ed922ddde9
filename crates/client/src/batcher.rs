//! [`Batcher`]: events added from anywhere in the application are gathered
//! into batches and delivered by one background task, so that the caller's
//! request path never waits for the audit log (unless it asks to).
//!
//! - A batch is sent when it holds `max_batch_events` events or
//!   `max_batch_bytes` bytes, when its oldest event has waited
//!   `flush_interval`, or on [`Batcher::flush`] / [`Batcher::shutdown`].
//! - The buffer is bounded (`max_buffered_events`, counting events until the
//!   server has answered for them). When it is full, [`WhenFull::Wait`]
//!   makes `add` wait for room; [`WhenFull::FailFast`] makes it return
//!   [`AddError::Full`] with the event, at once.
//! - Delivery retries through outages with backoff (see [`crate::RetryPolicy`])
//!   until the server answers or the shutdown deadline passes; events the
//!   server refuses are reported by id (through the [`Pending`] that `add`
//!   returns and the `on_rejected` callback) and the rest of their batch is stored.
//! - With a spool directory, every accepted event is in a file before `add`
//!   returns, and batches left by a crash are sent first on the next start.

use crate::client::Client;
use crate::delivery::Stop;
use crate::error::{Rejection, SendError};
use crate::event::Event;
use crate::spool::{LeftBatch, Segment, Spool, SpoolRecovery};
use crate::wire::Receipt;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Notify};
use tokio::time::Instant;

/// What `add` does when the buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait until delivered events make room (back-pressure on the caller).
    Wait,
    /// Return [`AddError::Full`] with the event at once.
    FailFast,
}

/// Why `add` did not take an event; the event is handed back.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("the batcher's buffer is full ({capacity} events await delivery)")]
    Full { event: Box<Event>, capacity: usize },
    #[error("the batcher is shut down")]
    Closed(Box<Event>),
    #[error("the event could not be written to the spool: {source}")]
    Spool {
        event: Box<Event>,
        #[source]
        source: std::io::Error,
    },
    /// `add_synced` only: the event is queued and will be sent, but the
    /// spool file could not be flushed to disk, so a power loss may lose it.
    #[error("event {id} is queued, but the spool could not be flushed to disk: {source}")]
    Sync {
        id: String,
        #[source]
        source: std::io::Error,
    },
}

/// Why `flush` or `shutdown` returned before everything was delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlushError {
    #[error("{pending} events were not delivered before the deadline{}", if *.spooled { "; they stay in the spool and are sent on the next start" } else { "" })]
    Deadline { pending: usize, spooled: bool },
}

/// Could not start a batcher.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the spool directory {dir} cannot be used: {source}")]
    Spool {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatcherStats {
    /// Stored (or found already stored) by the server.
    pub delivered: u64,
    /// Refused by the server, each reported.
    pub rejected: u64,
    /// Given up on (shutdown deadline, or a refusal of the whole request
    /// such as a revoked key); with a spool they are sent on the next start.
    pub failed: u64,
    /// HTTP requests' worth of batches sent.
    pub batches: u64,
}

type RejectionCallback = Arc<dyn Fn(&Rejection) + Send + Sync>;

/// Settings of a [`Batcher`]; see [`Batcher::builder`].
#[must_use]
pub struct BatcherBuilder {
    client: Client,
    max_batch_events: usize,
    max_batch_bytes: usize,
    flush_interval: Duration,
    max_buffered_events: usize,
    when_full: WhenFull,
    spool_dir: Option<PathBuf>,
    on_rejected: Option<RejectionCallback>,
}

impl BatcherBuilder {
    /// Events per batch, 1 to 1,000 (default 500).
    pub fn max_batch_events(mut self, n: usize) -> Self {
        self.max_batch_events = n;
        self
    }

    /// Bytes of event JSON per batch (default 1 MiB, at most 9 MiB).
    pub fn max_batch_bytes(mut self, n: usize) -> Self {
        self.max_batch_bytes = n;
        self
    }

    /// The longest an event waits for its batch to fill (default 1 s).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Events accepted and not yet answered for, at most (default 10,000).
    pub fn max_buffered_events(mut self, n: usize) -> Self {
        self.max_buffered_events = n;
        self
    }

    /// What `add` does when the buffer is full (default [`WhenFull::Wait`]).
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.when_full = policy;
        self
    }

    /// Keeps every accepted, undelivered batch in a file in `dir` (see
    /// the crate docs, "Spool"); only one batcher may use a directory at a
    /// time (a second one gets [`StartError::Spool`]).
    pub fn spool(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// Called for every refused event, including those resent from the spool.
    pub fn on_rejected(mut self, callback: impl Fn(&Rejection) + Send + Sync + 'static) -> Self {
        self.on_rejected = Some(Arc::new(callback));
        self
    }

    /// Starts the background task (on the current Tokio runtime), first
    /// queueing whatever the spool holds.
    pub fn start(self) -> Result<Batcher, StartError> {
        if !(1..=crate::delivery::MAX_REQUEST_EVENTS).contains(&self.max_batch_events) {
            return Err(StartError::Config(format!(
                "max_batch_events must be 1 to 1000; got {}",
                self.max_batch_events
            )));
        }
        if !(1..=crate::delivery::MAX_REQUEST_BYTES).contains(&self.max_batch_bytes) {
            return Err(StartError::Config(format!(
                "max_batch_bytes must be 1 to {}; got {}",
                crate::delivery::MAX_REQUEST_BYTES,
                self.max_batch_bytes
            )));
        }
        if self.max_buffered_events == 0 {
            return Err(StartError::Config(
                "max_buffered_events must be at least 1".into(),
            ));
        }
        let mut state = State::default();
        let mut recovery = SpoolRecovery::default();
        if let Some(dir) = &self.spool_dir {
            let spool_error = |source| StartError::Spool {
                dir: dir.clone(),
                source,
            };
            let (spool, left, found) = Spool::open(dir).map_err(spool_error)?;
            recovery = found;
            for LeftBatch { segment, events } in left {
                if events.is_empty() {
                    segment.remove().map_err(spool_error)?;
                    continue;
                }
                state.buffered += events.len();
                let number = state.next_batch;
                state.next_batch += 1;
                state.sealed.push_back(Batch {
                    number,
                    bytes: 0,
                    opened: Instant::now(),
                    tickets: events.iter().map(|_| None).collect(),
                    events,
                    segment: Some(segment),
                });
            }
            state.spool = Some(spool);
        }
        let (stop_tx, stop_rx) = watch::channel(None);
        let (finished_tx, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            work: Notify::new(),
            room: Notify::new(),
            finished: finished_tx,
            stop_at: stop_tx,
            stats: Stats::default(),
            settings: Settings {
                max_batch_events: self.max_batch_events,
                max_batch_bytes: self.max_batch_bytes,
                flush_interval: self.flush_interval,
                max_buffered_events: self.max_buffered_events,
                when_full: self.when_full,
                spooled: self.spool_dir.is_some(),
            },
            on_rejected: self.on_rejected,
        });
        let worker = tokio::spawn(run(self.client, shared.clone(), stop_rx));
        Ok(Batcher {
            shared,
            worker: Mutex::new(Some(worker)),
            recovery,
        })
    }
}

/// Gathers events into batches and delivers them in the background.
pub struct Batcher {
    shared: Arc<Shared>,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    recovery: SpoolRecovery,
}

/// The answer for one added event: await [`Pending::receipt`] for its
/// receipt or its refusal, or drop it (the event is delivered all the same).
#[derive(Debug)]
pub struct Pending {
    id: String,
    answer: oneshot::Receiver<Result<Receipt, SendError>>,
}

impl Pending {
    /// The event's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits until the server has stored or refused the event.
    pub async fn receipt(self) -> Result<Receipt, SendError> {
        self.answer.await.unwrap_or_else(|_| {
            Err(SendError::GaveUp {
                attempts: 0,
                elapsed: Duration::ZERO,
                last: "the batcher stopped before the event was answered".into(),
            })
        })
    }
}

struct Settings {
    max_batch_events: usize,
    max_batch_bytes: usize,
    flush_interval: Duration,
    max_buffered_events: usize,
    when_full: WhenFull,
    spooled: bool,
}

#[derive(Default)]
struct Stats {
    delivered: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    batches: AtomicU64,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the worker: a batch was sealed, or the batcher closed.
    work: Notify,
    /// Wakes adders waiting for room.
    room: Notify,
    /// Every batch numbered below this has been answered for (or given up).
    finished: watch::Sender<u64>,
    /// When to stop retrying: set by `shutdown`.
    stop_at: watch::Sender<Option<Instant>>,
    stats: Stats,
    settings: Settings,
    on_rejected: Option<RejectionCallback>,
}

#[derive(Default)]
struct State {
    /// The batch `add` appends to.
    open: Option<Batch>,
    /// Full or timed-out batches, oldest first, for the worker.
    sealed: VecDeque<Batch>,
    /// Events accepted and not yet answered for.
    buffered: usize,
    closed: bool,
    next_batch: u64,
    spool: Option<Spool>,
}

struct Batch {
    number: u64,
    events: Vec<Event>,
    tickets: Vec<Option<oneshot::Sender<Result<Receipt, SendError>>>>,
    bytes: usize,
    opened: Instant,
    segment: Option<Segment>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; go on.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves the open batch to the worker's queue.
    fn seal(&self, state: &mut State) {
        if let Some(batch) = state.open.take() {
            state.sealed.push_back(batch);
            self.work.notify_one();
        }
    }
}

impl Batcher {
    /// A batcher over `client` with the default settings; see [`BatcherBuilder`].
    pub fn builder(client: Client) -> BatcherBuilder {
        BatcherBuilder {
            client,
            max_batch_events: 500,
            max_batch_bytes: 1024 * 1024,
            flush_interval: Duration::from_secs(1),
            max_buffered_events: 10_000,
            when_full: WhenFull::Wait,
            spool_dir: None,
            on_rejected: None,
        }
    }

    /// What the spool held when this batcher started (queued to send first).
    pub fn recovered(&self) -> SpoolRecovery {
        self.recovery
    }

    pub fn stats(&self) -> BatcherStats {
        let s = &self.shared.stats;
        BatcherStats {
            delivered: s.delivered.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
        }
    }

    /// Accepts an event for delivery. With a spool, it is in the spool file
    /// (safe from a crash of this process) when this returns.
    pub async fn add(&self, event: Event) -> Result<Pending, AddError> {
        self.add_inner(event, false).await
    }

    /// Like [`Batcher::add`], and with a spool the file is also `fdatasync`ed
    /// before this returns: the event survives a power loss. Slower: one
    /// disk flush per call (concurrent calls share none of theirs).
    pub async fn add_synced(&self, event: Event) -> Result<Pending, AddError> {
        self.add_inner(event, true).await
    }

    async fn add_inner(&self, event: Event, sync: bool) -> Result<Pending, AddError> {
        let shared = &self.shared;
        let settings = &shared.settings;
        let json = event.to_json();
        let (pending, file) = loop {
            let room = shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut state = shared.lock();
                if state.closed {
                    return Err(AddError::Closed(Box::new(event)));
                }
                if state.buffered < settings.max_buffered_events {
                    break self.append(&mut state, event, &json)?;
                }
                if settings.when_full == WhenFull::FailFast {
                    return Err(AddError::Full {
                        event: Box::new(event),
                        capacity: settings.max_buffered_events,
                    });
                }
            }
            room.await;
        };
        if let (true, Some(file)) = (sync, file) {
            let synced = tokio::task::spawn_blocking(move || file.sync_data()).await;
            let synced = synced.unwrap_or_else(|e| Err(std::io::Error::other(e)));
            if let Err(source) = synced {
                // The event is queued all the same; the caller learns that
                // the guarantee it asked for does not hold.
                return Err(AddError::Sync {
                    id: pending.id,
                    source,
                });
            }
        }
        Ok(pending)
    }

    /// Appends to the open batch under the lock; returns the caller's
    /// handle and the spool file, to sync outside the lock.
    fn append(
        &self,
        state: &mut State,
        event: Event,
        json: &[u8],
    ) -> Result<(Pending, Option<Arc<std::fs::File>>), AddError> {
        let shared = &self.shared;
        let settings = &shared.settings;
        let too_big = state.open.as_ref().is_some_and(|b| {
            !b.events.is_empty() && b.bytes + json.len() > settings.max_batch_bytes
        });
        if too_big {
            shared.seal(state);
        }
        if state.open.is_none() {
            let segment = match state.spool.as_mut().map(Spool::new_segment).transpose() {
                Ok(segment) => segment,
                Err(source) => {
                    return Err(AddError::Spool {
                        event: Box::new(event),
                        source,
                    })
                }
            };
            let number = state.next_batch;
            state.next_batch += 1;
            state.open = Some(Batch {
                number,
                events: Vec::new(),
                tickets: Vec::new(),
                bytes: 0,
                opened: Instant::now(),
                segment,
            });
            // The worker times the new batch's interval from now.
            shared.work.notify_one();
        }
        let Some(batch) = state.open.as_mut() else {
            unreachable!("a batch was opened above")
        };
        let file = match &batch.segment {
            Some(segment) => match segment.append(json) {
                Ok(()) => Some(segment.file()),
                Err(source) => {
                    return Err(AddError::Spool {
                        event: Box::new(event),
                        source,
                    })
                }
            },
            None => None,
        };
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            id: event.id.clone(),
            answer: rx,
        };
        batch.bytes += json.len();
        batch.tickets.push(Some(tx));
        batch.events.push(event);
        state.buffered += 1;
        let full = batch.events.len() >= settings.max_batch_events
            || batch.bytes >= settings.max_batch_bytes;
        if full {
            shared.seal(state);
        }
        Ok((pending, file))
    }

    /// Sends what is buffered now and waits until the server has answered
    /// for all of it (stored, or refused and reported), at most `timeout`.
    /// Retries go on after a timeout; only [`Batcher::shutdown`] stops them.
    pub async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let target = {
            let mut state = self.shared.lock();
            self.shared.seal(&mut state);
            state.next_batch
        };
        self.wait_finished(target, Instant::now() + timeout).await
    }

    async fn wait_finished(&self, target: u64, deadline: Instant) -> Result<(), FlushError> {
        let mut finished = self.shared.finished.subscribe();
        let reached = tokio::time::timeout_at(deadline, finished.wait_for(|&n| n >= target)).await;
        match reached {
            Ok(_) => Ok(()),
            Err(_) => Err(FlushError::Deadline {
                pending: self.shared.lock().buffered,
                spooled: self.shared.settings.spooled,
            }),
        }
    }

    /// Stops accepting events, delivers what is buffered within `timeout`
    /// and stops the background task. Events still undelivered at the
    /// deadline are reported to their callers (and stay in the spool).
    pub async fn shutdown(&self, timeout: Duration) -> Result<(), FlushError> {
        let deadline = Instant::now() + timeout;
        {
            let mut state = self.shared.lock();
            state.closed = true;
            self.shared.seal(&mut state);
        }
        self.shared.room.notify_waiters();
        self.shared.work.notify_one();
        self.shared.stop_at.send_replace(Some(deadline));
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(worker) = worker {
            // The worker stops retrying at the deadline and then only
            // reports what is left, which takes no network time.
            let _ = worker.await;
        }
        let failed_at_end = self.shared.lock().buffered;
        let failed = self.stats().failed as usize + failed_at_end;
        if failed > 0 {
            return Err(FlushError::Deadline {
                pending: failed,
                spooled: self.shared.settings.spooled,
            });
        }
        Ok(())
    }
}

impl Drop for Batcher {
    /// Without `shutdown`, the task still delivers what was added (with no
    /// deadline) and then ends.
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        self.shared.seal(&mut state);
        drop(state);
        self.shared.work.notify_one();
    }
}

/// The background task: takes sealed batches (sealing the open one when its
/// interval is up) and delivers them one at a time, oldest first.
async fn run(client: Client, shared: Arc<Shared>, stop_rx: watch::Receiver<Option<Instant>>) {
    let mut stop = Stop {
        deadline: None,
        shutdown: Some(stop_rx),
    };
    loop {
        let batch = loop {
            let wake_at = {
                let mut state = shared.lock();
                if let Some(batch) = state.sealed.pop_front() {
                    break Some(batch);
                }
                match &state.open {
                    Some(open) if open.opened.elapsed() >= shared.settings.flush_interval => {
                        shared.seal(&mut state);
                        continue;
                    }
                    Some(open) => Some(open.opened + shared.settings.flush_interval),
                    None if state.closed => break None,
                    None => None,
                }
            };
            let notified = shared.work.notified();
            match wake_at {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at, notified).await;
                }
                None => notified.await,
            }
        };
        let Some(batch) = batch else { return };
        deliver_batch(&client, &shared, batch, &mut stop).await;
    }
}

async fn deliver_batch(client: &Client, shared: &Shared, mut batch: Batch, stop: &mut Stop) {
    let outcome = client.deliver(&batch.events, stop).await;
    let stats = &shared.stats;
    stats.batches.fetch_add(1, Ordering::Relaxed);
    for (index, receipt) in outcome.receipts {
        stats.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(ticket) = batch.tickets[index].take() {
            let _ = ticket.send(Ok(receipt));
        }
    }
    for (index, rejection) in outcome.rejected {
        stats.rejected.fetch_add(1, Ordering::Relaxed);
        if let Some(callback) = &shared.on_rejected {
            callback(&rejection);
        }
        if let Some(ticket) = batch.tickets[index].take() {
            let _ = ticket.send(Err(SendError::Rejected(Box::new(rejection))));
        }
    }
    let unsent = outcome.unsent.len();
    if let Some(failure) = outcome.failure {
        for index in outcome.unsent {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            if let Some(ticket) = batch.tickets[index].take() {
                let _ = ticket.send(Err(failure.clone()));
            }
        }
    }
    if unsent == 0 {
        if let Some(segment) = batch.segment.take() {
            // Failing to remove it only means a resend (idempotent) later.
            let _ = segment.remove();
        }
    }
    let mut state = shared.lock();
    state.buffered -= batch.events.len();
    drop(state);
    shared.finished.send_replace(batch.number + 1);
    shared.room.notify_waiters();
}
