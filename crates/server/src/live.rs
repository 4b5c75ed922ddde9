//! The live tail: each account's new events pushed to watchers as
//! Server-Sent Events (`GET /api/v1/events/stream` and the console's Live
//! switch), in seq order, each with its `seq` as the SSE `id`, so that a
//! client reconnecting with `Last-Event-ID` resumes with no gap and no
//! repeat.
//!
//! How a stream learns of new events: the append path of this server calls
//! [`LiveTail::appended`] after the commit, which wakes every stream of the
//! account at once (a `watch` per account, so a burst of appends is one
//! wake-up, never a queue); as a fallback each stream also reads the
//! account's highest seq every [`POLL_INTERVAL`], which catches events
//! appended by other servers on the same PostgreSQL database and by
//! Auditlog's own background work.
//!
//! The first message is an `id` without `data`: the position the stream
//! starts after, so that a client disconnected before any event arrives
//! still resumes without a gap (an `EventSource` fires no event for it but
//! keeps the id). A keep-alive carries such an `id` too when events were
//! passed over by the filter since the last one sent.
//!
//! What a stream holds: its position (the highest seq examined, matching or
//! not) and at most one window of [`WINDOW_SEQS`] seqs read from the store,
//! turned into one chunk of the answer. The next window is read only once
//! the client has taken that chunk (the body is pulled by the connection),
//! so a slow reader costs one window of memory, never the log.
//!
//! How many: at most [`Limits::max_live_streams`] streams per server (503
//! `too_many_streams` beyond) and [`MAX_STREAMS_PER_ACCOUNT`] per account
//! (429), so one account cannot take every place. Streams end when the
//! server begins to shut down, so that they do not hold up its drain.

use crate::error::ApiError;
use crate::limits::Limits;
use auditlog_core::EventFilter;
use auditlog_store::{AccountId, EventRecord, Store};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Seqs read from the store at once: the bound on a stream's memory (a
/// window of events, each at most 64 KiB, typically well under 1 KiB).
pub const WINDOW_SEQS: u64 = 128;
/// How often a waiting stream reads the account's highest seq, to see
/// events that this server's append path did not announce.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The keep-alive comment's interval when the connection allows it.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Most concurrent streams of one account on one server.
pub const MAX_STREAMS_PER_ACCOUNT: usize = 32;
/// How long a refused client is told to wait.
const RETRY_AFTER_SECONDS: u32 = 5;
/// How long a stream waits before reading again after a storage error.
const RETRY_AFTER_STORE_ERROR: Duration = Duration::from_secs(1);

/// The shared state of every live stream of this server.
#[derive(Clone)]
pub struct LiveTail {
    inner: Arc<Inner>,
}

struct Inner {
    watchers: Mutex<Watchers>,
    max_streams: usize,
    keep_alive: Duration,
    /// Turned to true when the server begins to shut down.
    closing: watch::Sender<bool>,
}

#[derive(Default)]
struct Watchers {
    accounts: HashMap<AccountId, AccountWatch>,
    total: usize,
}

struct AccountWatch {
    /// The highest seq this server appended for the account, announced after commit.
    appended: watch::Sender<u64>,
    streams: usize,
}

impl Default for LiveTail {
    fn default() -> Self {
        Self::new(&Limits::default())
    }
}

impl LiveTail {
    pub fn new(limits: &Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                watchers: Mutex::default(),
                max_streams: limits.max_live_streams,
                keep_alive: keep_alive_for(limits),
                closing: watch::Sender::new(false),
            }),
        }
    }

    /// Announces that `account`'s events up to `seq` are committed: wakes
    /// its streams. Cheap when nobody watches the account.
    pub fn appended(&self, account: AccountId, seq: u64) {
        let Ok(watchers) = self.inner.watchers.lock() else {
            return;
        };
        if let Some(watch) = watchers.accounts.get(&account) {
            watch.appended.send_if_modified(|known| {
                let newer = seq > *known;
                if newer {
                    *known = seq;
                }
                newer
            });
        }
    }

    /// Ends every stream (at their next wake-up, which this causes).
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Streams open now (for tests and metrics).
    pub fn open_streams(&self) -> usize {
        self.inner.watchers.lock().map(|w| w.total).unwrap_or(0)
    }

    /// A place for one more stream of `account`, or the refusal to answer.
    fn subscribe(&self, account: AccountId) -> Result<Subscription, ApiError> {
        let mut watchers = self
            .inner
            .watchers
            .lock()
            .map_err(|_| ApiError::internal("live tail", "the watchers' lock is poisoned"))?;
        if watchers.total >= self.inner.max_streams {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                format!(
                    "this server already serves its maximum of {} live streams (setting \
                     max_live_streams); retry later",
                    self.inner.max_streams
                ),
            )
            .with_retry_after(RETRY_AFTER_SECONDS));
        }
        let watch = watchers
            .accounts
            .entry(account)
            .or_insert_with(|| AccountWatch {
                appended: watch::Sender::new(0),
                streams: 0,
            });
        if watch.streams >= MAX_STREAMS_PER_ACCOUNT {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "this account already has {MAX_STREAMS_PER_ACCOUNT} live streams open on \
                     this server; close one or retry later"
                ),
            )
            .with_retry_after(RETRY_AFTER_SECONDS));
        }
        watch.streams += 1;
        let appended = watch.appended.subscribe();
        watchers.total += 1;
        Ok(Subscription {
            live: self.clone(),
            account,
            appended,
            closing: self.inner.closing.subscribe(),
        })
    }
}

/// The keep-alive interval: 15 s, or less when the connection's idle
/// timeout (twice the request timeout) is shorter, so that a quiet stream
/// is never closed as idle.
fn keep_alive_for(limits: &Limits) -> Duration {
    KEEP_ALIVE.min(limits.connection_idle_timeout() / 3)
}

/// One stream's place: given back when the stream ends.
struct Subscription {
    live: LiveTail,
    account: AccountId,
    appended: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Ok(mut watchers) = self.live.inner.watchers.lock() else {
            return;
        };
        watchers.total = watchers.total.saturating_sub(1);
        if let Some(watch) = watchers.accounts.get_mut(&self.account) {
            watch.streams = watch.streams.saturating_sub(1);
            if watch.streams == 0 {
                watchers.accounts.remove(&self.account);
            }
        }
    }
}

/// Turns one stored event into the `data` of its SSE message: one line,
/// without newlines (the API's JSON, or the console's row of HTML).
pub type Render = Arc<dyn Fn(&EventRecord) -> Result<Vec<u8>, String> + Send + Sync>;

/// Where a stream starts: after this seq.
///
/// `Last-Event-ID` (a reconnect) wins over `after_seq`; without either the
/// stream starts with the next event stored (after the highest seq now).
pub fn start_position(
    headers: &HeaderMap,
    after_seq: Option<&str>,
) -> Result<Option<u64>, ApiError> {
    if let Some(value) = headers.get("last-event-id") {
        let text = value.to_str().unwrap_or("").trim();
        // A client that never received an event may send an empty id.
        if !text.is_empty() {
            return parse_seq("Last-Event-ID", text).map(Some);
        }
    }
    after_seq.map(|t| parse_seq("after_seq", t)).transpose()
}

fn parse_seq(field: &'static str, text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|n| *n <= i64::MAX as u64)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                format!("{field} must be a seq: a whole number of 0 or more; got {text:?}"),
            )
            .with_details(json!({"field": field, "rule": "not_a_seq"}))
        })
}

/// The SSE answer for `account`'s events matching `filter` after `after`
/// (or, when `None`, after the highest seq now), each rendered by `render`.
pub async fn respond(
    live: &LiveTail,
    store: Arc<dyn Store>,
    account: AccountId,
    filter: EventFilter,
    after: Option<u64>,
    render: Render,
) -> Result<Response, ApiError> {
    let subscription = live.subscribe(account)?;
    let tip = store.last_seq(account).await?;
    let position = after.unwrap_or(tip);
    let keep_alive = live.inner.keep_alive;
    let tail = Tail {
        store,
        account,
        filter,
        render,
        position,
        sent_position: None,
        tip,
        check_tip: false,
        subscription,
        next_poll: Instant::now() + POLL_INTERVAL,
        keep_alive,
        next_keep_alive: Instant::now() + keep_alive,
    };
    let body = futures_util::stream::unfold(tail, |mut tail| async move {
        let chunk = tail.next_chunk().await?;
        Some((Ok::<Bytes, std::convert::Infallible>(chunk), tail))
    });
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies such as nginx would otherwise hold events back in a buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// One stream's state between chunks.
struct Tail {
    store: Arc<dyn Store>,
    account: AccountId,
    filter: EventFilter,
    render: Render,
    /// The highest seq examined (sent, or passed over by the filter).
    position: u64,
    /// The last `id` the client was sent; `None` before the first message.
    sent_position: Option<u64>,
    /// The highest seq known to be committed.
    tip: u64,
    /// Whether to read the highest seq from the store before waiting.
    check_tip: bool,
    subscription: Subscription,
    next_poll: Instant,
    keep_alive: Duration,
    next_keep_alive: Instant,
}

impl Tail {
    /// The next piece of the answer: a chunk of events, or a keep-alive
    /// comment; `None` ends the stream (the server is shutting down).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.sent_position.is_none() {
            // The start, as an `id` without `data`: a client that loses the
            // connection before any event resumes from here (no gap), and
            // an EventSource fires no event for it.
            self.sent_position = Some(self.position);
            return Some(Bytes::from(format!("id: {}\n\n", self.position)));
        }
        loop {
            if *self.subscription.closing.borrow() {
                return None;
            }
            if self.position < self.tip {
                let through = self.tip.min(self.position + WINDOW_SEQS);
                match self.read_window(through).await {
                    Ok(Some(chunk)) => {
                        self.next_keep_alive = Instant::now() + self.keep_alive;
                        return Some(chunk);
                    }
                    Ok(None) => continue,
                    Err(reason) => {
                        tracing::warn!(account = self.account, %reason, "live tail: cannot read events; retrying");
                        tokio::time::sleep(RETRY_AFTER_STORE_ERROR).await;
                        continue;
                    }
                }
            }
            if self.check_tip {
                self.check_tip = false;
                match self.store.last_seq(self.account).await {
                    Ok(seq) => self.tip = self.tip.max(seq),
                    Err(e) => {
                        tracing::warn!(account = self.account, reason = %auditlog_core::ErrorChain(&e), "live tail: cannot read the highest seq");
                    }
                }
                if self.position < self.tip {
                    continue;
                }
            }
            tokio::select! {
                changed = self.subscription.appended.changed() => {
                    if changed.is_ok() {
                        let announced = *self.subscription.appended.borrow_and_update();
                        self.tip = self.tip.max(announced);
                    }
                }
                _ = tokio::time::sleep_until(self.next_poll) => {
                    self.next_poll = Instant::now() + POLL_INTERVAL;
                    self.check_tip = true;
                }
                _ = tokio::time::sleep_until(self.next_keep_alive) => {
                    self.next_keep_alive = Instant::now() + self.keep_alive;
                    return Some(self.keep_alive_message());
                }
                _ = self.subscription.closing.changed() => return None,
            }
        }
    }

    /// The keep-alive comment; when events were passed over by the filter
    /// since the last `id` sent, also an `id` of the position, so that a
    /// reconnect does not examine them again.
    fn keep_alive_message(&mut self) -> Bytes {
        if self.sent_position == Some(self.position) {
            return Bytes::from_static(b": keep-alive\n\n");
        }
        self.sent_position = Some(self.position);
        Bytes::from(format!(": keep-alive\nid: {}\n\n", self.position))
    }

    /// Reads the seqs `position+1 ..= through` and moves past them; the
    /// SSE messages of those that match, if any.
    async fn read_window(&mut self, through: u64) -> Result<Option<Bytes>, String> {
        let records = self
            .store
            .events_in_seq_range(self.account, &self.filter, self.position, through)
            .await
            .map_err(|e| auditlog_core::ErrorChain(&e).to_string())?;
        let mut out = Vec::with_capacity(records.len() * 800);
        for record in &records {
            match (self.render)(record) {
                Ok(data) => {
                    write_message(&mut out, record.seq, &data);
                    self.sent_position = Some(record.seq);
                }
                // A stored event that cannot be shown (the console's row of
                // a leaf it cannot read) is left out rather than stopping
                // the stream on it for ever; the API's JSON never fails.
                Err(reason) => tracing::error!(
                    account = self.account,
                    seq = record.seq,
                    %reason,
                    "live tail: cannot render an event; left out of the stream"
                ),
            }
        }
        self.position = through;
        Ok((!out.is_empty()).then(|| Bytes::from(out)))
    }
}

/// One SSE message: `id` the seq, `data` one line.
fn write_message(out: &mut Vec<u8>, seq: u64, data: &[u8]) {
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // The API's JSON has no raw line breaks (they are escaped in strings),
    // and the console's rows are rendered on one line; a line break would
    // end the field, so any left is replaced rather than trusted.
    out.extend(
        data.iter()
            .map(|b| if matches!(b, b'\n' | b'\r') { b' ' } else { *b }),
    );
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_seq_as_id_and_one_data_line() {
        let mut out = Vec::new();
        write_message(&mut out, 42, b"{\"a\":1}");
        write_message(&mut out, 43, b"<tr>\n<td>x</td></tr>");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id: 42\ndata: {\"a\":1}\n\nid: 43\ndata: <tr> <td>x</td></tr>\n\n"
        );
    }

    #[test]
    fn last_event_id_wins_over_after_seq() {
        let mut headers = HeaderMap::new();
        assert_eq!(start_position(&headers, None).unwrap(), None);
        assert_eq!(start_position(&headers, Some("7")).unwrap(), Some(7));
        headers.insert("last-event-id", HeaderValue::from_static("12"));
        assert_eq!(start_position(&headers, Some("7")).unwrap(), Some(12));
        headers.insert("last-event-id", HeaderValue::from_static(""));
        assert_eq!(start_position(&headers, Some("7")).unwrap(), Some(7));
        headers.insert("last-event-id", HeaderValue::from_static("-1"));
        let e = start_position(&headers, None).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("Last-Event-ID"), "{}", e.message);
        let e = start_position(&HeaderMap::new(), Some("x")).unwrap_err();
        assert!(e.message.contains("after_seq"), "{}", e.message);
    }

    #[test]
    fn places_are_capped_per_server_and_per_account_and_given_back() {
        let limits = Limits {
            max_live_streams: MAX_STREAMS_PER_ACCOUNT + 2,
            ..Limits::default()
        };
        let live = LiveTail::new(&limits);
        let mut held: Vec<Subscription> = (0..MAX_STREAMS_PER_ACCOUNT)
            .map(|_| live.subscribe(1).unwrap())
            .collect();
        let refused = live.subscribe(1).err().unwrap();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        held.push(live.subscribe(2).unwrap());
        held.push(live.subscribe(3).unwrap());
        let refused = live.subscribe(4).err().unwrap();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.retry_after, Some(RETRY_AFTER_SECONDS));
        held.clear();
        assert_eq!(live.open_streams(), 0);
        assert!(live.inner.watchers.lock().unwrap().accounts.is_empty());
        live.subscribe(4).unwrap();
    }

    #[test]
    fn an_announcement_wakes_the_accounts_streams_only() {
        let live = LiveTail::default();
        let mut one = live.subscribe(1).unwrap();
        let mut two = live.subscribe(2).unwrap();
        live.appended(1, 5);
        live.appended(1, 3); // an older announcement changes nothing
        live.appended(9, 1); // nobody watches account 9
        assert!(one.appended.has_changed().unwrap());
        assert_eq!(*one.appended.borrow_and_update(), 5);
        assert!(!two.appended.has_changed().unwrap());
        live.close();
        assert!(*two.closing.borrow_and_update());
    }

    #[test]
    fn keep_alives_come_before_an_idle_connection_is_closed() {
        assert_eq!(keep_alive_for(&Limits::default()), KEEP_ALIVE);
        let short = Limits {
            request_timeout: Duration::from_secs(3),
            ..Limits::default()
        };
        assert_eq!(keep_alive_for(&short), Duration::from_secs(2));
    }
}
