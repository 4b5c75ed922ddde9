#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - `event`: [`Event`] and its builder, [`changes_between`] (old/new pairs).
//! - `client`: [`Client`]: `send`, `send_batch`, `verify_receipt`.
//! - `batcher`: [`Batcher`], the background batches with a bounded buffer.
//! - `spool`: the batch files that carry undelivered events across a crash.
//! - `delivery`: one list of events to the server: requests of ≤ 1,000,
//!   retries, refused events taken out by index and reported.
//! - `retry`: [`RetryPolicy`] (backoff with jitter) and `Retry-After`.
//! - `transport`: one HTTP exchange (status, `Retry-After`, `Date`, body).
//! - `verify`: receipts against inclusion proofs and a pinned key.
//! - `wire`: the server's answers; `error`: [`SendError`], [`Rejection`].

mod batcher;
mod client;
mod delivery;
mod error;
mod event;
mod retry;
mod spool;
mod transport;
mod verify;
mod wire;

pub use batcher::{
    AddError, Batcher, BatcherBuilder, BatcherStats, FlushError, Pending, StartError, WhenFull,
};
pub use client::{BatchResult, Client, ClientBuilder};
pub use error::{Rejection, SendError};
pub use event::{changes_between, Actor, BuildError, Change, Context, Event, EventBuilder, Target};
pub use retry::RetryPolicy;
pub use spool::SpoolRecovery;
pub use verify::{VerifiedReceipt, VerifierKey, VerifyError};
pub use wire::{FieldError, Receipt};

/// Re-exported so that callers can build [`EventBuilder::time`] values
/// without naming the `time` crate's version themselves.
pub use time::OffsetDateTime;

#[cfg(test)]
mod tests {
    /// The README's example is `examples/quickstart.rs`, which `cargo test`
    /// builds: the two must not drift apart.
    #[test]
    fn the_readme_example_is_the_quickstart_example() {
        let readme = include_str!("../README.md");
        let example = include_str!("../examples/quickstart.rs");
        let start = readme.find("```rust,no_run\n").map(|i| i + 15);
        let code = start.and_then(|s| readme[s..].find("```").map(|e| &readme[s..s + e]));
        let code = code.expect("a rust block in the README");
        assert!(
            example.ends_with(code),
            "examples/quickstart.rs differs from the README's example"
        );
    }
}
