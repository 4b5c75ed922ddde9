//! The delivery worker: one per server. It claims every stream that
//! delivers and that nobody holds (a lease in the store), and runs one
//! runner per claimed stream, which reads the store by seq windows (never
//! the whole log), sends each window's matching events as one batch, and
//! moves the cursor only once the destination accepted it.
//!
//! Failures are retried with exponential backoff and jitter (the
//! destination's `Retry-After` on 429 and 503); after `failing_after` of
//! failures the stream shows `failing` and keeps its place; 410 disables it.
//! A runner renews its lease a few times per lease period; a server that
//! dies stops renewing, and another server's worker takes the stream over
//! once the lease has run out, resending the persisted batch (same id).

use super::hec;
use super::http;
use super::secrets::hmac_key;
use super::syslog::{self, Connection};
use super::webhook::{self, Answer};
use super::StreamSettings;
use auditlog_core::{EventFilter, Timestamp};
use auditlog_store::{Account, BatchRecord, Delivery, EventRecord, LogStream, Store, StreamStatus};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::rustls::ClientConfig;

/// How often the worker looks for streams to take, and a caught-up runner
/// for new events.
const POLL: Duration = Duration::from_millis(250);
/// How often a Splunk HEC batch's acknowledgement is asked for.
const ACK_POLL: Duration = Duration::from_millis(250);
/// How often a syslog window is checked for its acknowledgement by the
/// receiver's TCP.
const CONFIRM_POLL: Duration = Duration::from_millis(20);
/// Where the send queue cannot be read (not Linux): how long a syslog
/// window must have been written, the connection still open, to count as
/// accepted.
const SETTLE: Duration = Duration::from_secs(1);
/// How long a new syslog connection over TLS must have stayed open before
/// its first window counts as accepted: a TLS receiver that refuses the
/// client (mutual TLS) closes the connection only after the handshake,
/// once its TCP has acknowledged what was written.
const FRESH_CONNECTION: Duration = Duration::from_secs(1);
/// Seqs examined per syslog batch (each written as it is read).
const SYSLOG_BATCH_SEQS: u64 = 500;
/// A syslog window holds at most this many batches' seqs.
const WINDOW_BATCHES: u64 = 10;

/// Starts the worker; it stops (releasing its streams) when `stopped` turns true.
pub fn spawn(
    store: Arc<dyn Store>,
    settings: StreamSettings,
    stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(store, Arc::new(settings), stopped))
}

async fn run(
    store: Arc<dyn Store>,
    settings: Arc<StreamSettings>,
    mut stopped: watch::Receiver<bool>,
) {
    let worker = format!("streams-{}", crate::tokens::random_token(6));
    let lags = Arc::new(Lags::default());
    let mut runners = JoinSet::new();
    loop {
        if *stopped.borrow() {
            break;
        }
        // Take every stream that is free now.
        loop {
            let now = Timestamp::now();
            let until = later(now, settings.lease);
            match store.claim_stream(&worker, now, until).await {
                Ok(Some(stream)) => {
                    runners.spawn(run_stream(
                        lags.clone(),
                        store.clone(),
                        settings.clone(),
                        worker.clone(),
                        stream,
                        stopped.clone(),
                    ));
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(reason = %auditlog_core::ErrorChain(&e), "log streams: cannot claim");
                    break;
                }
            }
        }
        while runners.try_join_next().is_some() {}
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stopped.changed() => {}
        }
    }
    while runners.join_next().await.is_some() {}
}

fn later(now: Timestamp, by: Duration) -> Timestamp {
    Timestamp::from_micros(now.micros() + by.as_micros() as i64)
}

/// What a runner does next.
enum Step {
    Continue,
    Stop,
}

async fn run_stream(
    lags: Arc<Lags>,
    store: Arc<dyn Store>,
    settings: Arc<StreamSettings>,
    worker: String,
    stream: LogStream,
    mut stopped: watch::Receiver<bool>,
) {
    let id = stream.id;
    let settings_batch_seqs = settings.batch_seqs.max(1);
    let mut runner = Runner {
        lags: lags.clone(),
        store: store.clone(),
        settings,
        worker: worker.clone(),
        stream,
        retry: 0,
        next_renewal: tokio::time::Instant::now(),
        syslog: None,
        ahead: None,
        window: settings_batch_seqs,
        client_tls: None,
        max_bytes: None,
    };
    loop {
        if *stopped.borrow() {
            break;
        }
        match runner.step(&mut stopped).await {
            Ok(Step::Continue) => {}
            Ok(Step::Stop) => break,
            Err(reason) => {
                tracing::warn!(stream = id, %reason, "log stream: retrying after a failure");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stopped.changed() => {}
                }
            }
        }
    }
    lags.forget(id);
    let _ = store.release_stream(id, &worker).await;
}

/// Each runner's last lag, for the largest-lag gauge.
#[derive(Default)]
struct Lags(std::sync::Mutex<std::collections::HashMap<i64, u64>>);

impl Lags {
    fn record(&self, stream: i64, lag: u64) {
        if let Ok(mut lags) = self.0.lock() {
            lags.insert(stream, lag);
            crate::metrics::stream_lag_max(lags.values().copied().max().unwrap_or(0));
        }
    }

    fn forget(&self, stream: i64) {
        if let Ok(mut lags) = self.0.lock() {
            lags.remove(&stream);
            crate::metrics::stream_lag_max(lags.values().copied().max().unwrap_or(0));
        }
    }
}

struct Runner {
    lags: Arc<Lags>,
    store: Arc<dyn Store>,
    settings: Arc<StreamSettings>,
    worker: String,
    stream: LogStream,
    /// Failed attempts in a row (for the backoff).
    retry: u32,
    next_renewal: tokio::time::Instant,
    /// A syslog stream's connection and the window sent on it.
    syslog: Option<Window>,
    /// The window after the batch in flight, read and rendered meanwhile.
    ahead: Option<Prepared>,
    /// Seqs read per window: `batch_seqs` at most, fewer where that many
    /// events would not fit one batch's bytes (`Prepared::next_window`).
    window: u64,
    /// The TLS setup presenting the stream's client certificate, for the
    /// sealed key and certificate it was built from.
    client_tls: Option<(Vec<u8>, String, Arc<ClientConfig>)>,
    /// The batch bytes this destination takes, learnt from its 413 answers
    /// (smaller than `max_batch_bytes`).
    max_bytes: Option<usize>,
}

/// What a syslog runner sent since the last point it knows was accepted
/// (the cursor): seqs `base + 1 ..= sent_through`, resent after any reconnect.
struct Window {
    connection: Connection,
    /// The URL connected to (a new one means a new connection).
    url: String,
    /// The cursor the window starts after.
    base: u64,
    sent_through: u64,
    /// Events in the window.
    events: u64,
    /// When the window was last written to.
    sent_at: tokio::time::Instant,
    /// When the connection was opened.
    opened_at: tokio::time::Instant,
}

/// One event, rendered for its stream into a buffer shared by its batch.
struct Rendered {
    seq: u64,
    /// Where the event in the stream's format (JSON) lies in the buffer.
    body: std::ops::Range<usize>,
    /// The event as the API returns it (`Null` when not needed).
    event: Value,
}

/// The events of `records` in `format`, one after the other in the
/// buffer returned; `parse` also keeps each as the API's JSON tree (Splunk
/// HEC and syslog need fields of it).
fn render(
    records: &[EventRecord],
    format: &str,
    parse: bool,
) -> Result<(Vec<u8>, Vec<Rendered>), String> {
    let mut text = Vec::with_capacity(text_capacity(records, usize::MAX));
    let mut rendered = Vec::with_capacity(records.len());
    for record in records {
        let start = text.len();
        let event = render_into(record, format, parse, &mut text)?;
        rendered.push(Rendered {
            seq: record.seq,
            body: start..text.len(),
            event,
        });
    }
    Ok((text, rendered))
}

/// Room for the rendered `records` (the served JSON adds the opened
/// personal values and about 100 bytes to a leaf), at most `limit`.
fn text_capacity(records: &[EventRecord], limit: usize) -> usize {
    records
        .iter()
        .map(|r| r.leaf_bytes.len() + r.personal.as_ref().map_or(0, Vec::len) + 128)
        .sum::<usize>()
        .min(limit)
}

/// Appends one event in `format` to `out` (no buffer of its own: a batch
/// is rendered straight into its body); answers the API's JSON tree of it
/// when `parse` or the format needs it, else `Null`.
fn render_into(
    record: &EventRecord,
    format: &str,
    parse: bool,
    out: &mut Vec<u8>,
) -> Result<Value, String> {
    let start = out.len();
    // The event as the API serves it, spliced from the stored bytes (no
    // `Value` tree per event where it can be).
    record
        .stored()
        .write_served_json(&record.leaf_hash, out)
        .map_err(|e| {
            format!(
                "event seq {}: {}",
                record.seq,
                auditlog_core::ErrorChain(&e)
            )
        })?;
    if format == "native" && !parse {
        return Ok(Value::Null);
    }
    let event: Value = serde_json::from_slice(&out[start..])
        .map_err(|e| format!("event seq {}: not JSON: {e}", record.seq))?;
    if format == "ocsf" {
        out.truncate(start);
        serde_json::to_writer(&mut *out, &super::ocsf::event(&event))
            .map_err(|e| format!("event seq {}: {e}", record.seq))?;
    }
    Ok(event)
}

/// One window of a webhook or HEC stream read and rendered: seqs
/// `first ..= last` examined, `rendered` the events its filter kept.
struct Prepared {
    first: u64,
    last: u64,
    /// The events' JSON: `[`, the events separated by commas, `]` (a
    /// webhook's body as it is sent).
    text: Vec<u8>,
    rendered: Vec<Rendered>,
    /// The batch body's bytes (with each event's overhead).
    bytes: usize,
}

impl Prepared {
    /// Seqs to read for the next window so that its body comes near
    /// `max_bytes` (a tenth more, so that most windows are cut at the
    /// limit rather than short of it), learnt from this window's bytes per
    /// seq examined; at most `batch_seqs`.
    fn next_window(&self, max_bytes: usize, batch_seqs: u64) -> u64 {
        let seqs = (self.last + 1).saturating_sub(self.first) as u128;
        if self.bytes <= 2 || seqs == 0 {
            return batch_seqs;
        }
        let want = (max_bytes as u128 * seqs * 11).div_ceil(self.bytes as u128 * 10);
        u64::try_from(want).unwrap_or(u64::MAX).clamp(1, batch_seqs)
    }
}

/// Reads and renders windows of one stream, apart from its runner, so that
/// the next window can be read while a batch is in flight.
#[derive(Clone)]
struct Reader {
    store: Arc<dyn Store>,
    account: i64,
    filter: EventFilter,
    format: &'static str,
    /// Splunk HEC needs each event's JSON tree (its `time`).
    parse: bool,
    batch_seqs: u64,
    max_bytes: usize,
    /// Bytes a batch adds to each event's JSON (a comma; an HEC envelope).
    overhead: usize,
}

impl Reader {
    /// Seqs `first ..= last`, rendered on the blocking pool. With `cut`,
    /// the window ends early where its body would exceed the batch's
    /// bytes (never before its first event); a persisted window is read
    /// again whole.
    async fn read(self, first: u64, last: u64, cut: bool) -> Result<Prepared, String> {
        let records = self
            .store
            .events_in_seq_range(self.account, &self.filter, first - 1, last)
            .await
            .map_err(|e| auditlog_core::ErrorChain(&e).to_string())?;
        let layout = Layout {
            format: self.format,
            parse: self.parse,
            max_bytes: self.max_bytes,
            overhead: self.overhead,
        };
        tokio::task::spawn_blocking(move || layout.render(&records, first, last, cut))
            .await
            .map_err(|e| format!("rendering a batch failed: {e}"))?
    }

    /// The window after seq `after`, if anything was stored after it.
    async fn ahead(self, after: u64) -> Result<Option<Prepared>, String> {
        let tip = self
            .store
            .last_seq(self.account)
            .await
            .map_err(|e| auditlog_core::ErrorChain(&e).to_string())?;
        if tip <= after {
            return Ok(None);
        }
        let last = tip.min(after + self.batch_seqs);
        self.read(after + 1, last, true).await.map(Some)
    }
}

/// How a webhook or HEC window is rendered (a [`Reader`]'s settings).
struct Layout {
    format: &'static str,
    parse: bool,
    max_bytes: usize,
    overhead: usize,
}

impl Layout {
    /// `records` of seqs `first ..= last` rendered one by one, straight
    /// into the batch's body, and with `cut` no further than the batch's
    /// bytes (never before the first event): the window is read a little
    /// larger than a batch (`Prepared::next_window`), and what lies past the
    /// cut is the next window's.
    fn render(
        &self,
        records: &[EventRecord],
        first: u64,
        last: u64,
        cut: bool,
    ) -> Result<Prepared, String> {
        let mut text = Vec::with_capacity(text_capacity(records, self.max_bytes) + 2);
        text.push(b'[');
        let mut rendered: Vec<Rendered> = Vec::with_capacity(records.len());
        let mut last = last;
        let mut bytes = 2;
        for record in records {
            let before = text.len();
            if !rendered.is_empty() {
                text.push(b',');
            }
            let start = text.len();
            let event = render_into(record, self.format, self.parse, &mut text)?;
            let more = text.len() - start + self.overhead;
            if cut && !rendered.is_empty() && bytes + more > self.max_bytes {
                text.truncate(before);
                last = record.seq - 1;
                break;
            }
            bytes += more;
            rendered.push(Rendered {
                seq: record.seq,
                body: start..text.len(),
                event,
            });
        }
        text.push(b']');
        Ok(Prepared {
            first,
            last,
            text,
            rendered,
            bytes,
        })
    }
}

/// How a Splunk HEC attempt ended.
enum Sent {
    Answer(Answer),
    /// Stopped waiting for the acknowledgement (stopped, or the stream changed).
    Interrupted(Step),
}

impl Runner {
    async fn step(&mut self, stopped: &mut watch::Receiver<bool>) -> Result<Step, String> {
        if tokio::time::Instant::now() >= self.next_renewal && !self.renew().await? {
            return Ok(Step::Stop);
        }
        let store_error = |e: auditlog_store::StoreError| auditlog_core::ErrorChain(&e).to_string();
        let account = self
            .store
            .account_by_id(self.stream.account_id)
            .await
            .map_err(store_error)?
            .ok_or("the stream's account is gone")?;
        let filter = EventFilter::from_json(&self.stream.filters, &account.taxonomy)
            .map_err(|e| format!("the stream's filters: {e}"))?;
        if self.stream.kind == "syslog" {
            return self.syslog_step(&account, &filter, stopped).await;
        }
        let mut reader = self.reader(&account, &filter);
        let mut prepared = match self.stream.pending {
            // The batch in flight: read ahead while the one before it was
            // sent, or read again (after a failure, or a takeover).
            Some((first, last)) => match self.ahead.take() {
                Some(ahead) if (ahead.first, ahead.last) == (first, last) => ahead,
                _ => reader.clone().read(first, last, false).await?,
            },
            None => {
                let tip = self.store.last_seq(account.id).await.map_err(store_error)?;
                self.lags
                    .record(self.stream.id, tip.saturating_sub(self.stream.cursor));
                if tip <= self.stream.cursor {
                    wait(POLL, stopped).await;
                    return Ok(Step::Continue);
                }
                let last = tip.min(self.stream.cursor + reader.batch_seqs);
                let prepared = reader
                    .clone()
                    .read(self.stream.cursor + 1, last, true)
                    .await?;
                if !prepared.rendered.is_empty() {
                    if !self
                        .store
                        .begin_batch(self.stream.id, &self.worker, prepared.first, prepared.last)
                        .await
                        .map_err(store_error)?
                    {
                        return Ok(Step::Stop);
                    }
                    self.stream.pending = Some((prepared.first, prepared.last));
                }
                prepared
            }
        };
        let (first, last) = (prepared.first, prepared.last);
        self.window = prepared.next_window(reader.max_bytes, self.settings.batch_seqs.max(1));
        reader.batch_seqs = self.window;
        if prepared.rendered.is_empty() {
            // Nothing matched: the window was examined, the cursor moves on.
            let delivery = Delivery::Accepted {
                from: self.stream.cursor,
                through: last,
                batch: None,
                next: None,
            };
            return self.recorded(delivery, Timestamp::now(), last).await;
        }
        // While this batch is in flight, the next window is read and
        // rendered (on the blocking pool), so that its bounds can begin with
        // this batch's acceptance, in the same commit.
        let ahead = tokio::spawn(reader.ahead(last));
        let rendered = &prepared.rendered;
        let kind = super::kind_label(&self.stream.kind);
        let format = super::format_label(&self.stream.format);
        let tls = self.stream_tls()?;
        // The request body's bytes (for a 413's message).
        let mut body_bytes = 0;
        let answer = match kind {
            "splunk_hec" => match self
                .send_hec(&prepared, tls.as_ref(), &mut body_bytes, stopped)
                .await?
            {
                Sent::Answer(answer) => answer,
                Sent::Interrupted(step) => {
                    ahead.abort();
                    return Ok(step);
                }
            },
            _ => {
                // The window was rendered as this body.
                let body = std::mem::take(&mut prepared.text);
                let secret = self.settings.secret_key.open(&self.stream.sealed_secret)?;
                let secret =
                    String::from_utf8(secret).map_err(|_| "the stream's secret is not text")?;
                let key = hmac_key(&secret)?;
                let id = webhook::webhook_id(self.stream.id, first, last);
                body_bytes = body.len();
                webhook::send(
                    &self.stream.url,
                    &self.settings.allow,
                    tls.as_ref(),
                    &id,
                    &key,
                    body,
                    self.settings.request_timeout,
                )
                .await
            }
        };
        let events = rendered.len() as u64;
        let attempts = self.stream.attempts + 1;
        let batch = |status: &str, response: String| BatchRecord {
            first_seq: first,
            last_seq: last,
            events,
            attempts,
            status: status.to_string(),
            response,
            at: Timestamp::now(),
        };
        match answer {
            Answer::Accepted(response) => {
                crate::metrics::stream_delivered(kind, format, events);
                self.retry = 0;
                // The window read ahead begins in the acceptance's commit.
                let ahead = match ahead.await {
                    Ok(Ok(ahead)) => ahead,
                    Ok(Err(reason)) => {
                        tracing::debug!(stream = self.stream.id, %reason, "log stream: reading ahead failed");
                        None
                    }
                    Err(_) => None,
                };
                let delivery = Delivery::Accepted {
                    from: self.stream.cursor,
                    through: last,
                    batch: Some(batch("delivered", response)),
                    next: ahead.as_ref().map(|a| (a.first, a.last)),
                };
                let step = self.recorded(delivery, Timestamp::now(), last).await;
                if self.stream.pending.is_some() {
                    self.ahead = ahead;
                }
                step
            }
            Answer::Gone(response) => {
                ahead.abort();
                crate::metrics::stream_failed(kind, "gone");
                let delivery = Delivery::Failed {
                    batch: batch("failed", response.clone()),
                    status: StreamStatus::Disabled,
                    error: format!("the destination answered {response}: the stream is disabled"),
                };
                self.store
                    .record_delivery(self.stream.id, &self.worker, delivery, Timestamp::now())
                    .await
                    .map_err(store_error)?;
                Ok(Step::Stop)
            }
            Answer::Retry {
                reason,
                cause: "too_large",
                ..
            } => {
                ahead.abort();
                crate::metrics::stream_failed(kind, "too_large");
                let batch = batch("failed", reason.clone());
                self.too_large(batch, rendered, body_bytes, stopped).await
            }
            Answer::Retry {
                reason,
                cause,
                after,
            } => {
                ahead.abort();
                crate::metrics::stream_failed(kind, cause);
                let batch = batch("failed", reason.clone());
                self.failed(batch, reason, after, stopped).await
            }
        }
    }

    /// The destination answered 413 to a batch of `rendered` events
    /// (`body_bytes` long): a batch of several is split, its first half
    /// sent next, at once (the rest follows in order), and later batches
    /// are kept under this size; a single event refused is an error the
    /// stream shows (`failing`, naming 413 and the size), retried after the
    /// backoff in case the receiver's limit is raised.
    async fn too_large(
        &mut self,
        batch: BatchRecord,
        rendered: &[Rendered],
        body_bytes: usize,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<Step, String> {
        let first = batch.first_seq;
        let limit = (body_bytes / 2).max(1);
        self.max_bytes = Some(self.max_bytes.map_or(limit, |m| m.min(limit)));
        if rendered.len() < 2 {
            let seq = rendered.first().map_or(first, |r| r.seq);
            let error = format!(
                "the destination answered 413 (Payload Too Large) to a single event, seq {seq}, \
                 in a request body of {body_bytes} bytes: it cannot be split further; raise the \
                 receiver's body size limit (or replay from seq {})",
                seq + 1
            );
            let delivery = Delivery::Failed {
                batch,
                status: StreamStatus::Failing,
                error,
            };
            if !self
                .store
                .record_delivery(self.stream.id, &self.worker, delivery, Timestamp::now())
                .await
                .map_err(|e| auditlog_core::ErrorChain(&e).to_string())?
            {
                return Ok(Step::Stop);
            }
            self.stream.status = StreamStatus::Failing;
            self.stream.attempts += 1;
            self.retry += 1;
            wait(self.settings.backoff(self.retry), stopped).await;
            return Ok(Step::Continue);
        }
        // The first half: up to the seq before the second half's first event.
        let last = rendered[rendered.len() / 2].seq - 1;
        let error = format!(
            "the destination answered 413 (Payload Too Large) to {} events in {body_bytes} bytes; \
             sending seqs {first}..={last} first",
            rendered.len()
        );
        let delivery = Delivery::Failed {
            batch,
            status: StreamStatus::Active,
            error,
        };
        let store_error = |e: auditlog_store::StoreError| auditlog_core::ErrorChain(&e).to_string();
        if !self
            .store
            .record_delivery(self.stream.id, &self.worker, delivery, Timestamp::now())
            .await
            .map_err(store_error)?
            || !self
                .store
                .begin_batch(self.stream.id, &self.worker, first, last)
                .await
                .map_err(store_error)?
        {
            return Ok(Step::Stop);
        }
        self.stream.pending = Some((first, last));
        self.stream.attempts = 0;
        self.ahead = None;
        Ok(Step::Continue)
    }

    /// The TLS setup of the stream: the server's, or one presenting the
    /// stream's client certificate (built once per key and certificate).
    fn stream_tls(&mut self) -> Result<Option<Arc<ClientConfig>>, String> {
        let (Some(certificate), Some(sealed)) = (
            super::client_cert::certificate(&self.stream),
            &self.stream.sealed_client_key,
        ) else {
            return Ok(self.settings.tls.clone());
        };
        if let Some((key, cert, config)) = &self.client_tls {
            if key == sealed && cert == certificate {
                return Ok(Some(config.clone()));
            }
        }
        let config = super::client_cert::tls(&self.settings, &self.stream)?
            .ok_or("TLS is not set up on this server")?;
        self.client_tls = Some((sealed.clone(), certificate.to_string(), config.clone()));
        Ok(Some(config))
    }

    /// The stream's reader for `account` (its own) and `filter`.
    fn reader(&self, account: &Account, filter: &EventFilter) -> Reader {
        let hec = self.stream.kind == "splunk_hec";
        Reader {
            store: self.store.clone(),
            account: account.id,
            filter: filter.clone(),
            format: super::format_label(&self.stream.format),
            parse: hec,
            batch_seqs: self.window,
            max_bytes: self
                .max_bytes
                .unwrap_or(self.settings.max_batch_bytes)
                .min(self.settings.max_batch_bytes),
            overhead: if hec {
                hec::ENVELOPE_BYTES + hec::option_bytes(&self.stream)
            } else {
                1
            },
        }
    }

    /// Records a failed attempt (the stream turns `failing` after
    /// `failing_after` of failures) and waits before the next: `after`
    /// when the destination said, else the backoff.
    async fn failed(
        &mut self,
        batch: BatchRecord,
        reason: String,
        after: Option<Duration>,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<Step, String> {
        let now = Timestamp::now();
        let since = self.stream.failing_since.unwrap_or(now);
        let failing =
            now.micros() - since.micros() >= self.settings.failing_after.as_micros() as i64;
        let attempts = batch.attempts;
        let delivery = Delivery::Failed {
            batch,
            status: if failing {
                StreamStatus::Failing
            } else {
                StreamStatus::Active
            },
            error: reason,
        };
        if !self
            .store
            .record_delivery(self.stream.id, &self.worker, delivery, now)
            .await
            .map_err(|e| auditlog_core::ErrorChain(&e).to_string())?
        {
            return Ok(Step::Stop);
        }
        self.stream.attempts = attempts;
        self.stream.failing_since = Some(since);
        self.retry += 1;
        let wait_for = after.unwrap_or_else(|| self.settings.backoff(self.retry));
        wait(wait_for, stopped).await;
        Ok(Step::Continue)
    }

    /// Sends one batch to a Splunk HEC endpoint and, when it answers with
    /// an `ackId`, waits for that id's acknowledgement: only then is the
    /// batch accepted.
    async fn send_hec(
        &mut self,
        prepared: &Prepared,
        tls: http::Tls<'_>,
        body_bytes: &mut usize,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<Sent, String> {
        let (first, last) = (prepared.first, prepared.last);
        let (rendered, text) = (&prepared.rendered, &prepared.text);
        let token = self.settings.secret_key.open(&self.stream.sealed_secret)?;
        let token = String::from_utf8(token).map_err(|_| "the stream's token is not text")?;
        let (index, sourcetype) = hec::envelope_fields(&self.stream);
        let mut body = Vec::with_capacity(text.len() + rendered.len() * 96);
        for event in rendered {
            let time = event
                .event
                .get("time")
                .and_then(Value::as_str)
                .and_then(|t| Timestamp::parse("time", t).ok())
                .unwrap_or_else(Timestamp::now);
            hec::write_envelope(
                time.micros(),
                index.as_deref(),
                &sourcetype,
                &text[event.body.clone()],
                &mut body,
            );
        }
        *body_bytes = body.len();
        let channel = hec::channel(self.stream.id);
        let url = self.stream.url.clone();
        let timeout = self.settings.request_timeout;
        let (summary, ack) = match hec::send(
            &url,
            &self.settings.allow,
            tls,
            &token,
            &channel,
            body,
            timeout,
        )
        .await
        {
            hec::Sent::Not(answer) => return Ok(Sent::Answer(answer)),
            hec::Sent::Taken { summary, ack: None } => {
                return Ok(Sent::Answer(Answer::Accepted(summary)))
            }
            hec::Sent::Taken {
                summary,
                ack: Some(ack),
            } => (summary, ack),
        };
        let started = tokio::time::Instant::now();
        loop {
            wait(ACK_POLL, stopped).await;
            if *stopped.borrow() {
                return Ok(Sent::Interrupted(Step::Stop));
            }
            if tokio::time::Instant::now() >= self.next_renewal {
                if !self.renew().await? {
                    return Ok(Sent::Interrupted(Step::Stop));
                }
                if self.stream.pending != Some((first, last)) {
                    // Replayed meanwhile: start again from the new cursor.
                    return Ok(Sent::Interrupted(Step::Continue));
                }
            }
            let acknowledged = hec::acknowledged(
                &url,
                &self.settings.allow,
                tls,
                &token,
                &channel,
                ack,
                timeout,
            )
            .await;
            match acknowledged {
                Ok(true) => {
                    return Ok(Sent::Answer(Answer::Accepted(format!(
                        "{summary} (ackId {ack} acknowledged)"
                    ))))
                }
                Ok(false) if started.elapsed() < self.settings.ack_timeout => {}
                Ok(false) => {
                    return Ok(Sent::Answer(Answer::Retry {
                        reason: format!(
                            "ackId {ack} was not acknowledged within {:?}; sending the batch again",
                            self.settings.ack_timeout
                        ),
                        cause: "unacknowledged",
                        after: Some(Duration::ZERO),
                    }))
                }
                Err(answer) => return Ok(Sent::Answer(answer)),
            }
        }
    }

    /// One step of a syslog stream: (re)connect, confirm the window the
    /// receiver's TCP acknowledged, send the next batch into the window.
    async fn syslog_step(
        &mut self,
        account: &Account,
        filter: &EventFilter,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<Step, String> {
        let store_error = |e: auditlog_store::StoreError| auditlog_core::ErrorChain(&e).to_string();
        let cursor = self.stream.cursor;
        if self
            .syslog
            .as_ref()
            .is_some_and(|w| w.url != self.stream.url)
        {
            // An admin changed the destination: connect there, from the cursor.
            self.syslog = None;
        }
        if let Some(window) = &mut self.syslog {
            if window.base != cursor {
                // A replay (or a confirmation): the window starts at the cursor.
                window.base = cursor;
                window.sent_through = cursor;
                window.events = 0;
            }
        }
        let window = match &mut self.syslog {
            Some(window) => window,
            None => {
                let url = syslog::parse_url(&self.stream.url)?;
                let tls = self
                    .stream_tls()?
                    .ok_or("TLS is not set up on this server")?;
                match Connection::open(
                    &url,
                    &self.settings.allow,
                    &tls,
                    self.settings.request_timeout,
                )
                .await
                {
                    // After a reconnect the whole window is sent again.
                    Ok(connection) => self.syslog.insert(Window {
                        connection,
                        url: self.stream.url.clone(),
                        base: cursor,
                        sent_through: cursor,
                        events: 0,
                        sent_at: tokio::time::Instant::now(),
                        opened_at: tokio::time::Instant::now(),
                    }),
                    Err(reason) => return self.syslog_failed(reason, 0, stopped).await,
                }
            }
        };
        if window.sent_through > window.base {
            if let Some(reason) = window.connection.broken().await {
                let events = window.events;
                self.syslog = None;
                return self.syslog_failed(reason, events, stopped).await;
            }
            let acknowledged = window
                .connection
                .all_acknowledged()
                .unwrap_or_else(|| window.sent_at.elapsed() >= SETTLE)
                && (matches!(window.connection, Connection::Tcp(_))
                    || window.opened_at.elapsed() >= FRESH_CONNECTION);
            if acknowledged {
                let (through, events) = (window.sent_through, window.events);
                crate::metrics::stream_delivered(
                    "syslog",
                    super::format_label(&self.stream.format),
                    events,
                );
                self.retry = 0;
                let delivery = Delivery::Accepted {
                    from: cursor,
                    through,
                    next: None,
                    batch: Some(BatchRecord {
                        first_seq: cursor + 1,
                        last_seq: through,
                        events,
                        attempts: self.stream.attempts + 1,
                        status: "delivered".into(),
                        response: format!(
                            "{events} messages written; the receiver's TCP acknowledged every byte"
                        ),
                        at: Timestamp::now(),
                    }),
                };
                return self.recorded(delivery, Timestamp::now(), through).await;
            }
        }
        let tip = self.store.last_seq(account.id).await.map_err(store_error)?;
        self.lags.record(self.stream.id, tip.saturating_sub(cursor));
        let window_seqs = SYSLOG_BATCH_SEQS * WINDOW_BATCHES;
        if tip > window.sent_through && window.sent_through - window.base < window_seqs {
            let after = window.sent_through;
            let last = tip.min(after + SYSLOG_BATCH_SEQS);
            let records = self
                .store
                .events_in_seq_range(account.id, filter, after, last)
                .await
                .map_err(store_error)?;
            if records.is_empty() && after == window.base {
                // Nothing matched and nothing is in flight: examined.
                let delivery = Delivery::Accepted {
                    from: cursor,
                    through: last,
                    batch: None,
                    next: None,
                };
                return self.recorded(delivery, Timestamp::now(), last).await;
            }
            let format = super::format_label(&self.stream.format);
            let mut bytes = Vec::new();
            let (text, rendered) = render(&records, format, true)?;
            for event in &rendered {
                syslog::frame(&event.event, &text[event.body.clone()], &mut bytes);
            }
            if !self
                .store
                .begin_batch(self.stream.id, &self.worker, cursor + 1, last)
                .await
                .map_err(store_error)?
            {
                return Ok(Step::Stop);
            }
            self.stream.pending = Some((cursor + 1, last));
            let sent = window
                .connection
                .send(&bytes, self.settings.request_timeout)
                .await;
            window.sent_through = last;
            window.events += records.len() as u64;
            window.sent_at = tokio::time::Instant::now();
            if let Err(reason) = sent {
                let events = window.events;
                self.syslog = None;
                return self.syslog_failed(reason, events, stopped).await;
            }
            return Ok(Step::Continue);
        }
        let waiting = window.sent_through > window.base;
        wait(if waiting { CONFIRM_POLL } else { POLL }, stopped).await;
        Ok(Step::Continue)
    }

    /// A syslog connection failed: the window (from the cursor on) is
    /// sent again on the next connection, after the backoff.
    async fn syslog_failed(
        &mut self,
        reason: String,
        events: u64,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<Step, String> {
        crate::metrics::stream_failed("syslog", "connection");
        let (first, last) = self
            .stream
            .pending
            .unwrap_or((self.stream.cursor + 1, self.stream.cursor + 1));
        let batch = BatchRecord {
            first_seq: first,
            last_seq: last,
            events,
            attempts: self.stream.attempts + 1,
            status: "failed".into(),
            response: reason.clone(),
            at: Timestamp::now(),
        };
        self.failed(batch, reason, None, stopped).await
    }

    /// Records an accepted window; on a cursor that moved meanwhile (a
    /// replay), reads the stream again.
    async fn recorded(
        &mut self,
        delivery: Delivery,
        now: Timestamp,
        last: u64,
    ) -> Result<Step, String> {
        let next = match &delivery {
            Delivery::Accepted { next, .. } => *next,
            Delivery::Failed { .. } => None,
        };
        let stored = self
            .store
            .record_delivery(self.stream.id, &self.worker, delivery, now)
            .await
            .map_err(|e| auditlog_core::ErrorChain(&e).to_string())?;
        if stored {
            self.stream.cursor = last;
            self.stream.pending = next;
            self.stream.attempts = 0;
            self.stream.failing_since = None;
            Ok(Step::Continue)
        } else if self.renew().await? {
            Ok(Step::Continue)
        } else {
            Ok(Step::Stop)
        }
    }

    /// Renews the lease and takes in what an admin changed; false when the
    /// stream is no longer this runner's to deliver.
    async fn renew(&mut self) -> Result<bool, String> {
        let until = later(Timestamp::now(), self.settings.lease);
        let renewed = self
            .store
            .renew_stream(self.stream.id, &self.worker, until)
            .await
            .map_err(|e| auditlog_core::ErrorChain(&e).to_string())?;
        self.next_renewal = tokio::time::Instant::now() + self.settings.lease / 3;
        match renewed {
            Some(stream) if stream.status.delivers() => {
                if stream.cursor != self.stream.cursor || stream.pending != self.stream.pending {
                    self.retry = 0;
                }
                self.stream = stream;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// Sleeps `duration`, or less when the worker stops.
async fn wait(duration: Duration, stopped: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = stopped.changed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(first: u64, last: u64, bytes: usize) -> Prepared {
        Prepared {
            first,
            last,
            text: b"[]".to_vec(),
            rendered: Vec::new(),
            bytes,
        }
    }

    /// Version 1 and version 2 records (one with a `details` commitment,
    /// which the splice leaves to the `Map` path), seqs 1 to 6.
    fn records() -> Vec<EventRecord> {
        use auditlog_core::leaf_v2::{seal, DetailsPath, OsSalts, Source};
        use auditlog_core::{leaf, NewEvent, StoredEvent, Taxonomy};
        let now = Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap();
        (1..=6u64)
            .map(|seq| {
                let body = serde_json::json!({
                    "id": format!("e-{seq}"), "time": "2026-11-25T14:03:07.123456Z",
                    "event_type": "Test Case", "action": "Update",
                    "actor": {"id": format!("u-{seq}"), "name": "Ada \"the\" Lovelace é😀"},
                    "target": {"id": "TC-1", "name": "ünïcode\n"},
                    "details": {"n": seq, "list": [1, {"a": null}], "text": "x".repeat(seq as usize * 40)},
                    "context": {"ip": "203.0.113.7", "request_id": "r-1"}
                });
                let event = StoredEvent::new(
                    "acme",
                    seq,
                    now,
                    NewEvent::parse(&body, &Taxonomy::default(), now).unwrap(),
                );
                if seq % 3 == 0 {
                    return EventRecord {
                        seq,
                        time: now,
                        leaf_hash: event.leaf_hash(),
                        leaf_bytes: event.leaf_bytes(),
                        personal: None,
                    };
                }
                let paths: Vec<DetailsPath> = if seq == 4 {
                    vec![DetailsPath::parse("details.list").unwrap()]
                } else {
                    Vec::new()
                };
                let sealed = seal(&event, &Source::System, &paths, &mut OsSalts).unwrap();
                EventRecord {
                    seq,
                    time: now,
                    leaf_hash: leaf::leaf_hash(&sealed.leaf_bytes),
                    leaf_bytes: sealed.leaf_bytes.clone(),
                    personal: Some(sealed.personal),
                }
            })
            .collect()
    }

    /// The event as the API serves it (`StoredRecord::write_api_json`).
    fn api(record: &EventRecord) -> Vec<u8> {
        record.stored().api_json(&record.leaf_hash).unwrap()
    }

    fn layout(format: &'static str, parse: bool, max_bytes: usize, overhead: usize) -> Layout {
        Layout {
            format,
            parse,
            max_bytes,
            overhead,
        }
    }

    #[test]
    fn a_window_is_rendered_as_the_webhook_body_of_the_apis_json() {
        let records = records();
        let whole = layout("native", false, 1 << 20, 1)
            .render(&records, 1, 8, true)
            .unwrap();
        let mut expected = b"[".to_vec();
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                expected.push(b',');
            }
            expected.extend_from_slice(&api(record));
        }
        expected.push(b']');
        assert_eq!(
            String::from_utf8(whole.text.clone()).unwrap(),
            String::from_utf8(expected.clone()).unwrap()
        );
        assert_eq!((whole.first, whole.last), (1, 8), "nothing cut");
        assert_eq!(whole.bytes, expected.len() + 1, "with a comma per event");
        for (rendered, record) in whole.rendered.iter().zip(&records) {
            assert_eq!(rendered.seq, record.seq);
            assert_eq!(whole.text[rendered.body.clone()], api(record)[..]);
            assert_eq!(rendered.event, Value::Null);
        }
        // Cut where the body would pass the limit: the events before it,
        // and the window ends at the seq before the first left out.
        // (`bytes` counts `[`, `]` and a comma for each event, the first too.)
        let limit = whole.rendered[3].body.start + 1;
        let cut = layout("native", false, limit, 1)
            .render(&records, 1, 8, true)
            .unwrap();
        assert_eq!(cut.last, 3);
        assert_eq!(cut.rendered.len(), 3);
        let kept: Value = serde_json::from_slice(&cut.text).unwrap();
        let first_three: Value = serde_json::from_slice(
            &expected[..whole.rendered[2].body.end]
                .iter()
                .chain(b"]")
                .copied()
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        assert_eq!(kept, first_three);
        // A persisted window is rendered whole; one event larger than the
        // limit is never cut away.
        let again = layout("native", false, 10, 1)
            .render(&records, 1, 8, false)
            .unwrap();
        assert_eq!(again.text, whole.text);
        let one = layout("native", false, 10, 1)
            .render(&records, 1, 8, true)
            .unwrap();
        assert_eq!((one.last, one.rendered.len()), (1, 1));
    }

    #[test]
    fn parsed_and_ocsf_windows_keep_each_events_tree() {
        let records = records();
        let hec = layout("native", true, 1 << 20, 90)
            .render(&records, 1, 6, true)
            .unwrap();
        let ocsf = layout("ocsf", false, 1 << 20, 1)
            .render(&records, 1, 6, true)
            .unwrap();
        let (text, syslog) = render(&records, "native", true).unwrap();
        for (i, record) in records.iter().enumerate() {
            let served: Value = serde_json::from_slice(&api(record)).unwrap();
            assert_eq!(hec.rendered[i].event, served);
            assert_eq!(hec.text[hec.rendered[i].body.clone()], api(record)[..]);
            assert_eq!(syslog[i].event, served);
            assert_eq!(text[syslog[i].body.clone()], api(record)[..]);
            let mapped: Value =
                serde_json::from_slice(&ocsf.text[ocsf.rendered[i].body.clone()]).unwrap();
            assert_eq!(mapped, super::super::ocsf::event(&served));
        }
        let array: Vec<Value> = serde_json::from_slice(&ocsf.text).unwrap();
        assert_eq!(array.len(), records.len());
    }

    #[test]
    fn the_next_window_is_sized_from_the_bytes_per_seq_of_the_last() {
        let mib = 1 << 20;
        // 1,000 seqs filled the batch: the next reads a tenth more.
        assert_eq!(prepared(1, 1_000, mib).next_window(mib, 5_000), 1_100);
        // Half full: twice as many seqs (and a tenth), within batch_seqs.
        assert_eq!(prepared(11, 1_010, mib / 2).next_window(mib, 5_000), 2_200);
        assert_eq!(prepared(1, 1_000, mib / 8).next_window(mib, 5_000), 5_000);
        // Nothing matched, or nothing examined: the most.
        assert_eq!(prepared(1, 1_000, 2).next_window(mib, 5_000), 5_000);
        assert_eq!(prepared(5, 4, 0).next_window(mib, 5_000), 5_000);
        // One event larger than a batch: one seq, never none.
        assert_eq!(prepared(7, 7, 3 * mib).next_window(mib, 5_000), 1);
    }
}
