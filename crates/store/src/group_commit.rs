//! The queue in front of a backend's single appender. Append requests that
//! arrive while a commit is in flight are gathered into the next transaction
//! (group commit), so one durable flush serves many clients; each request is
//! answered only after its group's commit. The backends differ only in how
//! they write a group, so the queue, the gathering and the answering live here.
//!
//! The queue records its depth, each group's commit latency and the failed
//! groups through the `metrics` facade, under the names below; the server
//! installs the recorder that renders them (and gives the histogram its
//! buckets), so the store knows nothing of how they are exposed.

use crate::{Account, Receipt, Result, StoreError};
use auditlog_core::{ErrorChain, NewEvent};
use std::sync::Mutex;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the appender; senders wait when it is full (back-pressure).
pub const QUEUE_DEPTH: usize = 4_096;
/// Largest number of events one transaction gathers; bounds commit latency.
pub const MAX_GROUP_EVENTS: usize = 20_000;

/// What one request gets once its group commits.
pub type Outcome = Result<Vec<Receipt>>;

pub struct AppendRequest {
    pub account: Account,
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
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        (
            Self {
                sender: Mutex::new(Some(sender)),
            },
            GroupReceiver { receiver },
        )
    }

    /// Enqueues `events` and waits until their group has committed (or failed).
    pub async fn append(&self, account: &Account, events: Vec<NewEvent>) -> Outcome {
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

impl GroupReceiver {
    /// The next group, waiting on a blocking thread; `None` once the queue is closed and drained.
    pub fn blocking_next_group(&mut self) -> Option<Group> {
        let first = self.receiver.blocking_recv()?;
        Some(self.gather(first))
    }

    /// The next group; `None` once the queue is closed and drained.
    pub async fn next_group(&mut self) -> Option<Group> {
        let first = self.receiver.recv().await?;
        Some(self.gather(first))
    }

    /// Adds whatever is already queued to `first`, up to `MAX_GROUP_EVENTS`.
    fn gather(&mut self, first: AppendRequest) -> Group {
        let mut group_size = first.events.len();
        let mut requests = vec![first];
        while group_size < MAX_GROUP_EVENTS {
            match self.receiver.try_recv() {
                Ok(next) => {
                    group_size += next.events.len();
                    requests.push(next);
                }
                Err(_) => break,
            }
        }
        left_queue(requests.len());
        Group {
            requests,
            gathered_at: Instant::now(),
        }
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
                        .append(&account(), sample_events(2, &format!("r{i}")))
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
            tokio::spawn(async move { queue.append(&account(), sample_events(1, "s")).await })
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
                    events: sample_events(1, &format!("f{i}")),
                    reply,
                })
                .unwrap();
        }
        let late = account();
        let held_back = queue.append(&late, sample_events(1, "late"));
        let timed_out = tokio::time::timeout(Duration::from_millis(20), held_back).await;
        assert!(timed_out.is_err(), "the full queue holds the request back");
        let recorded = Recorded::default().read(&snapshotter).depth;
        assert_eq!(recorded, 0.0);
    }
}
