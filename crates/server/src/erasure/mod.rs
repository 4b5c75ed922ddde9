//! Erasure (SPEC "Retention, legal holds, erasure"; docs/ERASURE.md): a
//! data subject's personal values removed from the live database while
//! every proof stays valid.
//!
//! - `key`: the key of the pseudonym (`erased:` + a keyed hash of the
//!   subject's actor id, the same for all of the subject's events), kept in
//!   a file outside the database;
//! - `job`: one erasure, run from its stored state: its `Auditlog Erasure`
//!   record appended (idempotently), its coverage stored, events erased
//!   batch by batch, held ones left until their hold is released;
//! - `worker`: the background loop that runs unfinished erasures, taking
//!   each with a lease so that one server at a time works on it.

pub mod job;
pub mod key;
pub mod worker;

pub use key::PseudonymKey;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The eraser's settings.
#[derive(Debug, Clone)]
pub struct ErasureSettings {
    pub key: PseudonymKey,
    /// How often unfinished (waiting) erasures are looked at, besides when
    /// one is requested or a hold is released.
    pub interval: Duration,
    /// How long a job's lease lasts without renewal.
    pub lease: Duration,
    /// Events erased per transaction.
    pub batch: usize,
    /// Where export files are (files that may hold erased values are
    /// deleted).
    pub export_dir: PathBuf,
    /// Wakes the worker: a new erasure, a released hold.
    pub wakeup: Arc<Notify>,
}

impl ErasureSettings {
    pub fn new(key: PseudonymKey, export_dir: PathBuf) -> Self {
        Self {
            key,
            interval: Duration::from_secs(15),
            lease: Duration::from_secs(20),
            batch: 500,
            export_dir,
            wakeup: Arc::new(Notify::new()),
        }
    }
}
