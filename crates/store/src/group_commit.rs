//! The queue in front of a backend's single appender. Append requests that
//! arrive while a commit is in flight are gathered into the next transaction
//! (group commit), so one durable flush serves many clients; each request is
//! answered only after its group's commit. The backends differ only in how
//! they write a group, so the queue, the gathering and the answering live here.

use crate::{Account, Receipt, Result, StoreError};
use auditlog_core::NewEvent;
use std::sync::Mutex;
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

/// The sending side, held by the store: `append` enqueues and waits.
pub struct AppendQueue {
    sender: Mutex<Option<mpsc::Sender<AppendRequest>>>,
}

/// The receiving side, owned by the appender: yields whole groups.
pub struct GroupReceiver(mpsc::Receiver<AppendRequest>);

impl AppendQueue {
    pub fn new() -> (Self, GroupReceiver) {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        (
            Self {
                sender: Mutex::new(Some(sender)),
            },
            GroupReceiver(receiver),
        )
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
        sender
            .send(AppendRequest {
                account: account.clone(),
                events,
                reply,
            })
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
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
    pub fn blocking_next_group(&mut self) -> Option<Vec<AppendRequest>> {
        let first = self.0.blocking_recv()?;
        Some(self.gather(first))
    }

    /// The next group; `None` once the queue is closed and drained.
    pub async fn next_group(&mut self) -> Option<Vec<AppendRequest>> {
        let first = self.0.recv().await?;
        Some(self.gather(first))
    }

    /// Adds whatever is already queued to `first`, up to `MAX_GROUP_EVENTS`.
    fn gather(&mut self, first: AppendRequest) -> Vec<AppendRequest> {
        let mut group_size = first.events.len();
        let mut group = vec![first];
        while group_size < MAX_GROUP_EVENTS {
            match self.0.try_recv() {
                Ok(next) => {
                    group_size += next.events.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        group
    }
}

/// Answers every request of a group: its own outcome after a commit, or, if
/// the group's transaction failed, 503 for all (nothing in it was stored).
pub fn answer(group: Vec<AppendRequest>, written: Result<Vec<Outcome>>) {
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
