//! Retention (SPEC "Retention, legal holds, erasure"; docs/RETENTION.md):
//! the pruner removes the bodies of the longest prefix of an account's
//! seqs whose events were all received before its `retention_days` cutoff,
//! never past the lowest cursor of a log stream that is not disabled, nor
//! while an export is queued or running, and never a held event or an
//! `Auditlog Retention` / `Auditlog Erasure` record.
//!
//! - `plan`: what the next pruning of an account removes and what holds it
//!   back (also what Settings > Retention and the API show);
//! - `job`: one pruning, run from its stored state: the record appended
//!   (idempotently), its coverage stored, bodies removed batch by batch;
//! - `worker`: the background loop that plans and runs prunings, taking
//!   each job with a lease so that one server at a time works on it.

pub mod job;
pub mod plan;
pub mod policy;
pub mod worker;

use std::time::Duration;

/// The pruner's settings (from the server's configuration).
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// The smallest and largest `retention_days` an account may set.
    pub min_days: u32,
    pub max_days: u32,
    /// How often each account is looked at.
    pub interval: Duration,
    /// How long a job's lease lasts without renewal.
    pub lease: Duration,
    /// Bodies removed per transaction.
    pub batch: usize,
    /// A pause after each batch: zero, except in tests that must stop a
    /// server in the middle of a pruning (`serve`'s debug-only
    /// `--prune-test-batch-pause-ms`).
    pub batch_pause: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            min_days: 1,
            max_days: 36_500,
            interval: Duration::from_secs(3_600),
            lease: Duration::from_secs(60),
            batch: 500,
            batch_pause: Duration::ZERO,
        }
    }
}
