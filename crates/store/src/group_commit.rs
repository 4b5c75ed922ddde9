//! The queue in front of a backend's single appender. Append requests that
//! arrive while a commit is in flight are gathered into the next transaction
//! (group commit), so one durable flush serves many clients; each request is
//! answered only after its group's commit. The backends differ only in how
//! they write a group, so the queue, the gathering and the answering live here.
//!
//! The queue also keeps [`GroupCommitStats`] (queue depth, commit latency),
//! plain atomics that the server reads when `/metrics` is scraped: the store
//! knows nothing of how they are exposed.

use crate::{Account, Receipt, Result, StoreError};
use auditlog_core::NewEvent;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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

/// Upper bounds (seconds) of the commit-latency buckets: from a fast
/// SSD's fsync (~1 ms) to a disk that is struggling (seconds).
pub const COMMIT_SECONDS_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// What the queue has seen, for monitoring. Only atomics, so that recording
/// costs the append path nothing measurable and a reader never blocks it.
#[derive(Debug, Default)]
pub struct GroupCommitStats {
    /// Requests enqueued (or waiting to enter a full queue) and not yet
    /// taken into a group.
    waiting_requests: AtomicU64,
    /// Groups per commit-latency bucket; the last slot counts groups slower
    /// than every bound.
    commit_buckets: [AtomicU64; COMMIT_SECONDS_BUCKETS.len() + 1],
    commit_nanos_sum: AtomicU64,
    /// Groups whose transaction failed (every request answered 503).
    failed_groups: AtomicU64,
}

/// A copy of [`GroupCommitStats`] at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupCommitSnapshot {
    pub waiting_requests: u64,
    /// Groups whose commit took at most `COMMIT_SECONDS_BUCKETS[i]` (and
    /// more than the bound before), then the slower ones: not cumulative.
    pub commit_buckets: Vec<u64>,
    pub commit_seconds_sum: f64,
    pub failed_groups: u64,
}

impl GroupCommitStats {
    pub fn snapshot(&self) -> GroupCommitSnapshot {
        GroupCommitSnapshot {
            waiting_requests: self.waiting_requests.load(Ordering::Relaxed),
            commit_buckets: self
                .commit_buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            commit_seconds_sum: self.commit_nanos_sum.load(Ordering::Relaxed) as f64 / 1e9,
            failed_groups: self.failed_groups.load(Ordering::Relaxed),
        }
    }

    fn record_commit(&self, elapsed: Duration, failed: bool) {
        let seconds = elapsed.as_secs_f64();
        let bucket = COMMIT_SECONDS_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(COMMIT_SECONDS_BUCKETS.len());
        self.commit_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.commit_nanos_sum.fetch_add(nanos, Ordering::Relaxed);
        if failed {
            self.failed_groups.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn left_queue(&self, requests: u64) {
        self.waiting_requests.fetch_sub(requests, Ordering::Relaxed);
    }
}

/// One request counted in the queue depth from before it is sent (so that
/// requests held back by a full queue show too) until the receiver takes
/// it. If the send fails, or the caller gives up while held back (its
/// future is dropped), the guard takes the request out of the count.
struct Waiting<'a> {
    stats: &'a GroupCommitStats,
    delivered: bool,
}

impl<'a> Waiting<'a> {
    fn enter(stats: &'a GroupCommitStats) -> Self {
        stats.waiting_requests.fetch_add(1, Ordering::Relaxed);
        Self {
            stats,
            delivered: false,
        }
    }

    /// The receiver has it now and subtracts it when gathering.
    fn delivered(mut self) {
        self.delivered = true;
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.delivered {
            self.stats.left_queue(1);
        }
    }
}

/// The sending side, held by the store: `append` enqueues and waits.
pub struct AppendQueue {
    sender: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    stats: Arc<GroupCommitStats>,
}

/// The receiving side, owned by the appender: yields whole groups.
pub struct GroupReceiver {
    receiver: mpsc::Receiver<AppendRequest>,
    stats: Arc<GroupCommitStats>,
}

/// Requests written in one transaction. Derefs to the requests, so that a
/// backend writes `&group` as a slice; [`answer`] takes it back whole to
/// time the commit.
pub struct Group {
    requests: Vec<AppendRequest>,
    gathered_at: Instant,
    stats: Arc<GroupCommitStats>,
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
        let stats = Arc::new(GroupCommitStats::default());
        (
            Self {
                sender: Mutex::new(Some(sender)),
                stats: stats.clone(),
            },
            GroupReceiver { receiver, stats },
        )
    }

    /// Queue depth and commit latency so far.
    pub fn stats(&self) -> &GroupCommitStats {
        &self.stats
    }

    /// Enqueues `events` and waits until their group has committed (or failed).
    pub async fn append(&self, account: &Account, events: Vec<NewEvent>) -> Outcome {
        let sender = self
            .sender
            .lock()
            .map_err(|_| StoreError::Internal("writer handle poisoned".into()))?
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the server is shutting down".into()))?;
        let (reply, answer) = oneshot::channel();
        let waiting = Waiting::enter(&self.stats);
        sender
            .send(AppendRequest {
                account: account.clone(),
                events,
                reply,
            })
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        waiting.delivered();
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer stopped before answering".into()))?
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
        self.stats.left_queue(requests.len() as u64);
        Group {
            requests,
            gathered_at: Instant::now(),
            stats: self.stats.clone(),
        }
    }
}

/// Answers every request of a group: its own outcome after a commit, or, if
/// the group's transaction failed, 503 for all (nothing in it was stored).
/// The time since the group was gathered is its commit latency.
pub fn answer(group: Group, written: Result<Vec<Outcome>>) {
    group
        .stats
        .record_commit(group.gathered_at.elapsed(), written.is_err());
    let group = group.requests;
    let outcomes = match written {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::error!(error = %e, requests = group.len(), "group commit failed; nothing in it was stored");
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
    use crate::samples::sample_events;
    use auditlog_core::Taxonomy;

    fn account() -> Account {
        Account {
            id: 1,
            name: "acme".into(),
            taxonomy: Taxonomy::default(),
        }
    }

    /// Queued requests show in the depth until gathered; every answered
    /// group is one commit-latency observation; failed groups are counted.
    #[tokio::test]
    async fn stats_follow_the_queue_and_the_commits() {
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
        while queue.stats().snapshot().waiting_requests < 3 {
            tokio::task::yield_now().await;
        }
        let group = receiver.next_group().await.unwrap();
        assert_eq!(group.len(), 3, "the three queued requests form one group");
        assert_eq!(queue.stats().snapshot().waiting_requests, 0);
        answer(group, Err(StoreError::Unavailable("disk full".into())));
        for waiter in waiters {
            assert!(matches!(
                waiter.await.unwrap(),
                Err(StoreError::Unavailable(_))
            ));
        }
        let second = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.append(&account(), sample_events(1, "s")).await })
        };
        let group = receiver.next_group().await.unwrap();
        answer(group, Ok(vec![Ok(Vec::new())]));
        assert_eq!(second.await.unwrap().unwrap(), Vec::new());

        let snapshot = queue.stats().snapshot();
        assert_eq!(
            snapshot.commit_buckets.len(),
            COMMIT_SECONDS_BUCKETS.len() + 1
        );
        assert_eq!(snapshot.commit_buckets.iter().sum::<u64>(), 2);
        assert_eq!(snapshot.failed_groups, 1);
        assert!(snapshot.commit_seconds_sum >= 0.0);
        assert_eq!(snapshot.waiting_requests, 0);
    }

    /// A caller that gives up while held back by a full queue leaves the depth.
    #[tokio::test]
    async fn an_abandoned_send_leaves_the_depth() {
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
        assert_eq!(queue.stats().snapshot().waiting_requests, 0);
    }

    #[test]
    fn commit_latencies_land_in_their_bucket() {
        let stats = GroupCommitStats::default();
        stats.record_commit(Duration::from_micros(500), false);
        stats.record_commit(Duration::from_millis(1), false);
        stats.record_commit(Duration::from_millis(30), false);
        stats.record_commit(Duration::from_secs(9), true);
        let snapshot = stats.snapshot();
        let mut expected = vec![0; COMMIT_SECONDS_BUCKETS.len() + 1];
        expected[0] = 2; // <= 1 ms, the bound itself included
        expected[5] = 1; // <= 50 ms
        expected[COMMIT_SECONDS_BUCKETS.len()] = 1; // slower than 5 s
        assert_eq!(snapshot.commit_buckets, expected);
        assert!((snapshot.commit_seconds_sum - 9.0315).abs() < 1e-9);
        assert_eq!(snapshot.failed_groups, 1);
    }
}
