//! The queue in front of a backend's single appender. Append requests that
//! arrive while a commit is in flight are gathered into the next transaction
//! (group commit), so one durable flush serves many clients; each request is
//! answered only after its group's commit. The backends differ only in how
//! they write a group, so the queue, the gathering and the answering live here.
//!
//! **Linger.** Under load, each group would otherwise hold only what
//! arrived during the previous commit, while the clients answered by that
//! commit are still on their way back; every commit dirties about the same
//! index pages however few events it carries. So when the next group's
//! first request was already waiting as the previous commit ended (another
//! request arrived during it: the writer is busy), the receiver waits for
//! more before it starts the transaction: a quarter of the previous
//! commit's time, at most [`DEFAULT_LINGER`]. So the wait scales with what
//! a commit costs on this disk (microseconds on a fast one) and adds at
//! most a quarter to a commit's latency. A request that finds the writer
//! idle never waits: it starts a group at once.
//!
//! The queue records its depth, each group's commit latency and size, the
//! lingers taken and the failed groups through the `metrics` facade, under
//! the names below; the server installs the recorder that renders them (and
//! gives the histograms their buckets), so the store knows nothing of how
//! they are exposed.

use crate::{Account, Receipt, Result, StoreError};
use auditlog_core::leaf_v2::Source;
use auditlog_core::{ErrorChain, NewEvent};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the appender; senders wait when it is full (back-pressure).
pub const QUEUE_DEPTH: usize = 4_096;
/// Largest number of events one transaction gathers; bounds commit latency.
pub const MAX_GROUP_EVENTS: usize = 20_000;
/// The longest a busy writer waits for more requests before it commits a
/// group (it waits [`LINGER_SHARE`] of the previous commit's time, up to
/// this): long enough for clients answered by the previous commit to send
/// again, even on a loaded machine whose commits take tens of milliseconds.
pub const DEFAULT_LINGER: Duration = Duration::from_micros(4_000);
/// The share of the previous commit's time that a busy writer waits.
pub const LINGER_SHARE: u32 = 4;
/// How often the blocking receiver looks at the queue while it lingers.
const LINGER_POLL: Duration = Duration::from_micros(50);

/// What one request gets once its group commits.
pub type Outcome = Result<Vec<Receipt>>;

pub struct AppendRequest {
    pub account: Account,
    /// Who made the server store these events (`source` of leaf v2).
    pub source: Source,
    pub events: Vec<NewEvent>,
    reply: oneshot::Sender<Outcome>,
}

/// Gauge: requests enqueued (or waiting to enter a full queue) and not yet
/// taken into a group.
pub const QUEUE_DEPTH_METRIC: &str = "auditlog_writer_queue_depth";
/// Histogram: seconds from gathering a group to answering it after its commit.
pub const COMMIT_SECONDS_METRIC: &str = "auditlog_writer_commit_seconds";
/// Counter: groups whose transaction failed (every request answered 503).
pub const COMMIT_FAILURES_METRIC: &str = "auditlog_writer_commit_failures_total";
/// Histogram: events per group commit.
pub const GROUP_EVENTS_METRIC: &str = "auditlog_writer_group_events";
/// Counter: groups for which the busy writer waited for more requests.
pub const LINGERS_METRIC: &str = "auditlog_writer_lingers_total";

/// Upper bounds of the group-size buckets: one event (an idle writer) up to
/// [`MAX_GROUP_EVENTS`].
pub const GROUP_EVENTS_BUCKETS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 500.0, 2_000.0, 5_000.0, 20_000.0,
];

/// Upper bounds (seconds) of the commit-latency buckets: from a fast
/// SSD's fsync (~1 ms) to a disk that is struggling (seconds).
pub const COMMIT_SECONDS_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

fn left_queue(requests: usize) {
    metrics::gauge!(QUEUE_DEPTH_METRIC).decrement(requests as f64);
}

/// One request counted in the queue depth from before it is sent (so that
/// requests held back by a full queue show too) until the receiver takes
/// it. If the send fails, or the caller gives up while held back (its
/// future is dropped), the guard takes the request out of the count.
struct Waiting {
    delivered: bool,
}

impl Waiting {
    fn enter() -> Self {
        metrics::gauge!(QUEUE_DEPTH_METRIC).increment(1.0);
        Self { delivered: false }
    }

    /// The receiver has it now and subtracts it when gathering.
    fn delivered(mut self) {
        self.delivered = true;
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.delivered {
            left_queue(1);
        }
    }
}

/// The sending side, held by the store: `append` enqueues and waits.
pub struct AppendQueue {
    sender: Mutex<Option<mpsc::Sender<AppendRequest>>>,
}

/// The receiving side, owned by the appender: yields whole groups.
pub struct GroupReceiver {
    receiver: mpsc::Receiver<AppendRequest>,
    linger: Duration,
    /// Whether a group has been handed out: before the first there was no
    /// previous commit for a request to arrive during.
    started: bool,
    lingers: u64,
    /// When the last group was handed out: the next call is after its
    /// commit, so the time between is what a commit costs.
    last_group: Option<Instant>,
    last_group_async: Option<tokio::time::Instant>,
}

/// Requests written in one transaction. Derefs to the requests, so that a
/// backend writes `&group` as a slice; [`answer`] takes it back whole to
/// time the commit.
pub struct Group {
    requests: Vec<AppendRequest>,
    gathered_at: Instant,
}

impl std::ops::Deref for Group {
    type Target = [AppendRequest];

    fn deref(&self) -> &[AppendRequest] {
        &self.requests
    }
}

impl AppendQueue {
    pub fn new() -> (Self, GroupReceiver) {
        Self::with_linger(DEFAULT_LINGER)
    }

    /// A queue whose busy receiver waits at most `linger` for more requests
    /// (zero: never).
    pub fn with_linger(linger: Duration) -> (Self, GroupReceiver) {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        (
            Self {
                sender: Mutex::new(Some(sender)),
            },
            GroupReceiver {
                receiver,
                linger,
                started: false,
                lingers: 0,
                last_group: None,
                last_group_async: None,
            },
        )
    }

    /// Enqueues `events` and waits until their group has committed (or failed).
    pub async fn append(
        &self,
        account: &Account,
        source: &Source,
        events: Vec<NewEvent>,
    ) -> Outcome {
        let sender = self
            .sender
            .lock()
            .map_err(|_| StoreError::internal("writer handle poisoned"))?
            .clone()
            .ok_or_else(|| StoreError::unavailable("the server is shutting down"))?;
        let (reply, answer) = oneshot::channel();
        let waiting = Waiting::enter();
        sender
            .send(AppendRequest {
                account: account.clone(),
                source: source.clone(),
                events,
                reply,
            })
            .await
            .map_err(|_| StoreError::unavailable("the writer has stopped"))?;
        waiting.delivered();
        answer
            .await
            .map_err(|_| StoreError::unavailable("the writer stopped before answering"))?
    }

    /// Refuses new appends; the appender finishes what is queued, then stops.
    pub fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
    }
}

/// A group being gathered.
struct Gathering {
    requests: Vec<AppendRequest>,
    events: usize,
}

impl Gathering {
    fn new(first: AppendRequest) -> Self {
        Self {
            events: first.events.len(),
            requests: vec![first],
        }
    }

    fn full(&self) -> bool {
        self.events >= MAX_GROUP_EVENTS
    }

    fn push(&mut self, request: AppendRequest) {
        self.events += request.events.len();
        self.requests.push(request);
    }

    /// Adds whatever is already queued, up to `MAX_GROUP_EVENTS`; false
    /// once the queue is closed.
    fn drain(&mut self, receiver: &mut mpsc::Receiver<AppendRequest>) -> bool {
        while !self.full() {
            match receiver.try_recv() {
                Ok(next) => self.push(next),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    fn finish(self) -> Group {
        left_queue(self.requests.len());
        metrics::histogram!(GROUP_EVENTS_METRIC).record(self.events as f64);
        Group {
            requests: self.requests,
            gathered_at: Instant::now(),
        }
    }
}

impl GroupReceiver {
    /// The next group, waiting on a blocking thread; `None` once the queue is closed and drained.
    pub fn blocking_next_group(&mut self) -> Option<Group> {
        let (mut group, busy) = match self.waiting()? {
            Some(first) => self.start(first, true),
            None => {
                let first = self.receiver.blocking_recv()?;
                self.start(first, false)
            }
        };
        let open = group.drain(&mut self.receiver);
        let commit = self.last_group.map(|at| at.elapsed()).unwrap_or_default();
        let linger = self.linger_after(commit);
        if open && self.lingers_for(busy, linger, &group) {
            // No timed wait on a tokio channel from a plain thread: look
            // again every LINGER_POLL (the writer thread has nothing else to do).
            let deadline = Instant::now() + linger;
            while !group.full() {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                std::thread::sleep((deadline - now).min(LINGER_POLL));
                if !group.drain(&mut self.receiver) {
                    break;
                }
            }
        }
        self.last_group = Some(Instant::now());
        Some(group.finish())
    }

    /// The next group; `None` once the queue is closed and drained. (The
    /// runtime's timer has a 1 ms resolution, so here a linger below that
    /// lasts until the next millisecond tick.)
    pub async fn next_group(&mut self) -> Option<Group> {
        let (mut group, busy) = match self.waiting()? {
            Some(first) => self.start(first, true),
            None => {
                let first = self.receiver.recv().await?;
                self.start(first, false)
            }
        };
        let open = group.drain(&mut self.receiver);
        let commit = self
            .last_group_async
            .map(|at| at.elapsed())
            .unwrap_or_default();
        let linger = self.linger_after(commit);
        if open && self.lingers_for(busy, linger, &group) {
            let deadline = tokio::time::Instant::now() + linger;
            while !group.full() {
                match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                    Ok(Some(next)) => {
                        group.push(next);
                        if !group.drain(&mut self.receiver) {
                            break;
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        self.last_group_async = Some(tokio::time::Instant::now());
        Some(group.finish())
    }

    /// A request that is already queued (`Some(None)` if none); `None` once
    /// the queue is closed and drained.
    fn waiting(&mut self) -> Option<Option<AppendRequest>> {
        match self.receiver.try_recv() {
            Ok(first) => Some(Some(first)),
            Err(TryRecvError::Empty) => Some(None),
            Err(TryRecvError::Disconnected) => None,
        }
    }

    /// Starts a group with `first`; the writer is busy if it was already
    /// waiting when the previous group was done (so it arrived during that
    /// group's commit).
    fn start(&mut self, first: AppendRequest, waiting: bool) -> (Gathering, bool) {
        let busy = self.started && waiting;
        self.started = true;
        (Gathering::new(first), busy)
    }

    /// How long to wait after a commit that took `commit`.
    fn linger_after(&self, commit: Duration) -> Duration {
        (commit / LINGER_SHARE).min(self.linger)
    }

    /// Whether to wait for more: only a busy writer, with room in the group.
    fn lingers_for(&mut self, busy: bool, linger: Duration, group: &Gathering) -> bool {
        let linger = busy && !linger.is_zero() && !group.full();
        if linger {
            self.lingers += 1;
            metrics::counter!(LINGERS_METRIC).increment(1);
        }
        linger
    }

    /// How many groups this receiver lingered for.
    pub fn lingers(&self) -> u64 {
        self.lingers
    }
}

/// Answers every request of a group: its own outcome after a commit, or, if
/// the group's transaction failed, 503 for all (nothing in it was stored).
/// The time since the group was gathered is its commit latency.
pub fn answer(group: Group, written: Result<Vec<Outcome>>) {
    metrics::histogram!(COMMIT_SECONDS_METRIC).record(group.gathered_at.elapsed().as_secs_f64());
    if written.is_err() {
        metrics::counter!(COMMIT_FAILURES_METRIC).increment(1);
    }
    let group = group.requests;
    let outcomes = match written {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::error!(error = %ErrorChain(&e), requests = group.len(), "group commit failed; nothing in it was stored");
            group
                .iter()
                .map(|_| Err(e.for_rolled_back_request()))
                .collect()
        }
    };
    for (request, outcome) in group.into_iter().zip(outcomes) {
        // A client that went away no longer needs its answer.
        let _ = request.reply.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::{Taxonomy, Timestamp};
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use std::sync::Arc;
    use std::time::Duration;

    /// `n` valid events; the queue never looks inside them. (Not the
    /// conformance suite's samples: that module is built only with the
    /// `test-support` feature, which this crate's own tests do not turn on.)
    fn sample_events(n: usize, id_prefix: &str) -> Vec<NewEvent> {
        (0..n)
            .map(|i| {
                let event = serde_json::json!({
                    "id": format!("{id_prefix}{i}"),
                    "event_type": "Test Case",
                    "action": "Update",
                    "actor": {"id": "u-1"},
                    "target": {"id": "T-1"},
                });
                NewEvent::parse(&event, &Taxonomy::default(), Timestamp::from_micros(0))
                    .expect("a valid event")
            })
            .collect()
    }

    fn account() -> Account {
        Account {
            id: 1,
            name: "acme".into(),
            taxonomy: Taxonomy::default(),
        }
    }

    /// What the queue recorded so far. The debugging recorder's snapshots
    /// take the values out (they reset to zero), so each read adds to these.
    #[derive(Default)]
    struct Recorded {
        depth: f64,
        latencies: Vec<f64>,
        failures: u64,
    }

    impl Recorded {
        fn read(&mut self, snapshotter: &Snapshotter) -> &Self {
            for (key, _, _, value) in snapshotter.snapshot().into_vec() {
                match (key.key().name(), value) {
                    (QUEUE_DEPTH_METRIC, DebugValue::Gauge(v)) => self.depth += v.into_inner(),
                    (COMMIT_SECONDS_METRIC, DebugValue::Histogram(v)) => {
                        self.latencies.extend(v.into_iter().map(|s| s.into_inner()))
                    }
                    (COMMIT_FAILURES_METRIC, DebugValue::Counter(v)) => self.failures += v,
                    _ => {}
                }
            }
            self
        }
    }

    /// Queued requests show in the depth until gathered; every answered
    /// group is one commit-latency observation; failed groups are counted.
    /// The recorder is this test's own (the tasks run on this thread), so
    /// other tests appending at the same time do not show in it.
    #[tokio::test(flavor = "current_thread")]
    async fn the_queue_records_its_depth_and_commits() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let (queue, mut receiver) = AppendQueue::new();
        let queue = Arc::new(queue);
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    queue
                        .append(
                            &account(),
                            &Source::System,
                            sample_events(2, &format!("r{i}")),
                        )
                        .await
                })
            })
            .collect();
        let mut recorded = Recorded::default();
        while recorded.read(&snapshotter).depth < 3.0 {
            tokio::task::yield_now().await;
        }
        let group = receiver.next_group().await.unwrap();
        assert_eq!(group.len(), 3, "the three queued requests form one group");
        assert_eq!(recorded.read(&snapshotter).depth, 0.0);
        answer(group, Err(StoreError::unavailable("disk full")));
        for waiter in waiters {
            assert!(matches!(
                waiter.await.unwrap(),
                Err(StoreError::Unavailable { .. })
            ));
        }
        let second = {
            let queue = queue.clone();
            tokio::spawn(async move {
                queue
                    .append(&account(), &Source::System, sample_events(1, "s"))
                    .await
            })
        };
        let group = receiver.next_group().await.unwrap();
        answer(group, Ok(vec![Ok(Vec::new())]));
        assert_eq!(second.await.unwrap().unwrap(), Vec::new());

        let recorded = recorded.read(&snapshotter);
        assert_eq!(recorded.depth, 0.0);
        assert_eq!(recorded.latencies.len(), 2, "one latency per group");
        assert!(recorded.latencies.iter().all(|s| (0.0..60.0).contains(s)));
        assert_eq!(recorded.failures, 1);
    }

    /// Sends one request and returns the task waiting for its answer.
    fn send(queue: &Arc<AppendQueue>, prefix: &str) -> tokio::task::JoinHandle<Outcome> {
        let queue = queue.clone();
        let prefix = prefix.to_string();
        tokio::spawn(async move {
            queue
                .append(&account(), &Source::System, sample_events(1, &prefix))
                .await
        })
    }

    /// Lets every other task of this (current-thread) runtime run until it waits.
    async fn settle() {
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    }

    /// On a paused clock time moves only when every task waits for a timer,
    /// so a linger shows as time passed and as a counted linger, and an
    /// idle request's group is gathered with the clock standing still.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn an_idle_request_never_waits_and_a_busy_writer_lingers() {
        let linger = Duration::from_millis(5);
        let (queue, mut receiver) = AppendQueue::with_linger(linger);
        let queue = Arc::new(queue);

        // The very first request: nothing committed before it.
        let first = send(&queue, "a");
        settle().await;
        let started = tokio::time::Instant::now();
        let group = receiver.next_group().await.unwrap();
        assert_eq!((group.len(), receiver.lingers()), (1, 0));
        assert_eq!(tokio::time::Instant::now(), started, "no time passed");
        answer(group, Ok(vec![Ok(Vec::new())]));
        first.await.unwrap().unwrap();

        // After a commit, a request that finds the writer waiting is not held.
        let waiting = tokio::spawn(async move {
            let group = receiver.next_group().await.unwrap();
            (group, receiver)
        });
        settle().await;
        let started = tokio::time::Instant::now();
        let idle = send(&queue, "b");
        let (group, mut receiver) = waiting.await.unwrap();
        assert_eq!((group.len(), receiver.lingers()), (1, 0));
        assert_eq!(tokio::time::Instant::now(), started, "no time passed");
        answer(group, Ok(vec![Ok(Vec::new())]));
        idle.await.unwrap().unwrap();

        // Two requests arrived while the writer was busy: it waits, and a
        // request that comes during the wait joins their group.
        let busy = [send(&queue, "c"), send(&queue, "d")];
        settle().await;
        // The previous group's commit took 40 ms: a quarter is more than the 5 ms cap.
        tokio::time::advance(Duration::from_millis(40)).await;
        let late = {
            let queue = queue.clone();
            tokio::spawn(async move {
                tokio::time::sleep(linger / 2).await;
                queue
                    .append(&account(), &Source::System, sample_events(1, "e"))
                    .await
            })
        };
        let started = tokio::time::Instant::now();
        let group = receiver.next_group().await.unwrap();
        let waited = started.elapsed();
        assert_eq!((group.len(), receiver.lingers()), (3, 1));
        // The whole linger (the timer rounds up to its next millisecond tick), no more.
        assert!(
            waited >= linger && waited <= linger + Duration::from_millis(1),
            "{waited:?}"
        );
        answer(
            group,
            Ok(vec![Ok(Vec::new()), Ok(Vec::new()), Ok(Vec::new())]),
        );
        for task in busy {
            task.await.unwrap().unwrap();
        }
        late.await.unwrap().unwrap();
    }

    /// The writer thread's receiver takes the same decisions (counted, not timed).
    #[test]
    fn the_blocking_receiver_lingers_only_when_busy() {
        // Its own worker thread sends the requests while this one waits.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (queue, mut receiver) = AppendQueue::with_linger(Duration::from_micros(200));
        let queue = Arc::new(queue);
        let reply = |group: Group| {
            let n = group.len();
            answer(group, Ok((0..n).map(|_| Ok(Vec::new())).collect()));
        };
        // Queued before the first group: not busy (nothing was committed).
        let first = runtime.spawn({
            let queue = queue.clone();
            async move {
                queue
                    .append(&account(), &Source::System, sample_events(1, "a"))
                    .await
            }
        });
        let thread = std::thread::spawn(move || {
            let group = receiver.blocking_next_group().unwrap();
            let lingers_first = receiver.lingers();
            reply(group);
            (receiver, lingers_first)
        });
        let (mut receiver, lingers_first) = thread.join().unwrap();
        runtime.block_on(first).unwrap().unwrap();
        assert_eq!(lingers_first, 0);
        // Queued while "committing": busy, so the receiver lingers once.
        let queued: Vec<_> = ["b", "c"]
            .iter()
            .map(|prefix| {
                let queue = queue.clone();
                let prefix = prefix.to_string();
                runtime.spawn(async move {
                    queue
                        .append(&account(), &Source::System, sample_events(1, &prefix))
                        .await
                })
            })
            .collect();
        let thread = std::thread::spawn(move || {
            // Both requests are in the queue before the group starts.
            while receiver.receiver.len() < 2 {
                std::thread::yield_now();
            }
            let group = receiver.blocking_next_group().unwrap();
            let size = group.len();
            reply(group);
            (receiver.lingers(), size)
        });
        let (lingers, size) = thread.join().unwrap();
        assert_eq!((lingers, size), (1, 2));
        for task in queued {
            runtime.block_on(task).unwrap().unwrap();
        }
    }

    /// A caller that gives up while held back by a full queue leaves the depth.
    #[tokio::test(flavor = "current_thread")]
    async fn an_abandoned_send_leaves_the_depth() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let (queue, _receiver) = AppendQueue::new();
        for i in 0..QUEUE_DEPTH {
            // Fill the channel: these sends complete at once (nobody receives).
            let sender = queue.sender.lock().unwrap().clone().unwrap();
            let (reply, _answer) = oneshot::channel();
            sender
                .try_send(AppendRequest {
                    account: account(),
                    source: Source::System,
                    events: sample_events(1, &format!("f{i}")),
                    reply,
                })
                .unwrap();
        }
        let late = account();
        let held_back = queue.append(&late, &Source::System, sample_events(1, "late"));
        let timed_out = tokio::time::timeout(Duration::from_millis(20), held_back).await;
        assert!(timed_out.is_err(), "the full queue holds the request back");
        let recorded = Recorded::default().read(&snapshotter).depth;
        assert_eq!(recorded, 0.0);
    }
}
