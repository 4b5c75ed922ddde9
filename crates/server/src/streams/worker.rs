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

use super::secrets::hmac_key;
use super::webhook::{self, Answer};
use super::StreamSettings;
use auditlog_core::{EventFilter, Timestamp};
use auditlog_store::{BatchRecord, Delivery, LogStream, Store, StreamStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How often the worker looks for streams to take, and a caught-up runner
/// for new events.
const POLL: Duration = Duration::from_millis(250);

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
    let mut runner = Runner {
        lags: lags.clone(),
        store: store.clone(),
        settings,
        worker: worker.clone(),
        stream,
        retry: 0,
        next_renewal: tokio::time::Instant::now(),
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
            .map_err(|e| format!("the stream's filters: {}", e.message))?;
        let (first, last) = match self.stream.pending {
            Some(bounds) => bounds,
            None => {
                let tip = self.store.last_seq(account.id).await.map_err(store_error)?;
                self.lags
                    .record(self.stream.id, tip.saturating_sub(self.stream.cursor));
                if tip <= self.stream.cursor {
                    wait(POLL, stopped).await;
                    return Ok(Step::Continue);
                }
                let last = tip.min(self.stream.cursor + self.settings.batch_seqs);
                (self.stream.cursor + 1, last)
            }
        };
        let records = self
            .store
            .events_in_seq_range(account.id, &filter, first - 1, last)
            .await
            .map_err(store_error)?;
        let now = Timestamp::now();
        if records.is_empty() {
            // Nothing matched: the window was examined, the cursor moves on.
            let delivery = Delivery::Accepted {
                from: self.stream.cursor,
                through: last,
                batch: None,
            };
            return self.recorded(delivery, now, last).await;
        }
        if self.stream.pending.is_none() {
            if !self
                .store
                .begin_batch(self.stream.id, &self.worker, first, last)
                .await
                .map_err(store_error)?
            {
                return Ok(Step::Stop);
            }
            self.stream.pending = Some((first, last));
        }
        let mut body = Vec::with_capacity(records.len() * 800 + 2);
        body.push(b'[');
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            // The events as the API serves them (the store's own rendering).
            record
                .stored()
                .write_api_json(&record.leaf_hash, &mut body)
                .map_err(|e| {
                    format!(
                        "event seq {}: {}",
                        record.seq,
                        auditlog_core::ErrorChain(&e)
                    )
                })?;
        }
        body.push(b']');
        let secret = self.settings.secret_key.open(&self.stream.sealed_secret)?;
        let secret = String::from_utf8(secret).map_err(|_| "the stream's secret is not text")?;
        let key = hmac_key(&secret)?;
        let id = webhook::webhook_id(self.stream.id, first, last);
        let answer = webhook::send(
            &self.stream.url,
            &self.settings.allow,
            &id,
            &key,
            body,
            self.settings.request_timeout,
        )
        .await;
        let attempts = self.stream.attempts + 1;
        let batch = |status: &str, response: String| BatchRecord {
            first_seq: first,
            last_seq: last,
            events: records.len() as u64,
            attempts,
            status: status.to_string(),
            response,
            at: Timestamp::now(),
        };
        match answer {
            Answer::Accepted(response) => {
                crate::metrics::stream_delivered("webhook", "native", records.len() as u64);
                self.retry = 0;
                let delivery = Delivery::Accepted {
                    from: self.stream.cursor,
                    through: last,
                    batch: Some(batch("delivered", response)),
                };
                self.recorded(delivery, Timestamp::now(), last).await
            }
            Answer::Gone(response) => {
                crate::metrics::stream_failed("webhook", "gone");
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
                cause,
                after,
            } => {
                crate::metrics::stream_failed("webhook", cause);
                let now = Timestamp::now();
                let since = self.stream.failing_since.unwrap_or(now);
                let failing =
                    now.micros() - since.micros() >= self.settings.failing_after.as_micros() as i64;
                let delivery = Delivery::Failed {
                    batch: batch("failed", reason.clone()),
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
                    .map_err(store_error)?
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
        }
    }

    /// Records an accepted window; on a cursor that moved meanwhile (a
    /// replay), reads the stream again.
    async fn recorded(
        &mut self,
        delivery: Delivery,
        now: Timestamp,
        last: u64,
    ) -> Result<Step, String> {
        let stored = self
            .store
            .record_delivery(self.stream.id, &self.worker, delivery, now)
            .await
            .map_err(|e| auditlog_core::ErrorChain(&e).to_string())?;
        if stored {
            self.stream.cursor = last;
            self.stream.pending = None;
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
