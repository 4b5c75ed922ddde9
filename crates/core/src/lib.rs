//! The domain of Auditlog, with no I/O. Every value that reaches a store has
//! been checked here once, in its type, so that the layers above and below
//! can rely on it.
//!
//! # Layout
//!
//! - `event`: what an event is and the rules it obeys (`NewEvent::parse`),
//!   and the stored event with its leaf bytes; their fields are private, and
//!   `event::builder` (`NewEventBuilder`, tests and the `test-support`
//!   feature only) builds events by hand.
//! - `account`: account names (`AccountName`); `email`: console users'
//!   addresses (`Email`).
//! - `taxonomy`: an account's event types and actions, spelled canonically.
//! - `timestamp`: instants in microseconds, UTC.
//! - `filter`: query filters, cursors and histogram intervals that every
//!   backend translates, with the reference `matches`.
//! - `canonical`, `leaf`: the canonical JSON encoding that fixes an event's
//!   leaf bytes, and the Merkle leaf hash; `leaf_v2`: leaves that commit to
//!   personal values instead of holding them; `leaf_view`: a borrowed read
//!   of version 1 leaf bytes (no JSON tree), for `verify` and exports.
//! - `coverage`: which seqs an `Auditlog Retention` or `Auditlog Erasure`
//!   record covers (the only removed bodies `verify` and the stores accept).
//! - `merkle`: the RFC 9162 tree over stored hashes (roots and proofs).
//! - `note`, `checkpoint`: signed notes and the C2SP checkpoints they carry.
//! - `cosignature`: witnesses' C2SP `cosignature/v1` lines on checkpoints;
//!   `witness`: the C2SP `add-checkpoint` request and a witness's decision;
//!   `submission`: what a witness's answer means for the log's submitter;
//!   `root_log`: the root log's leaf format, inclusion of account
//!   checkpoints and the cosignature quorum of a root checkpoint.
//! - `tiles`: C2SP tlog-tiles paths, which stored hashes a tile holds, and
//!   the entry bundles' encoding.
//! - `search`: the query language of `q` (parser, canonical printer, the
//!   free-text tokenizer, time zones) with the reference `Query::matches`.
//! - `bundle`, `tar`: offline-verifiable export bundles, in a minimal tar.
//! - `error`: `FieldError`, naming the field and the rule broken.
//! - `error_chain`: `ErrorChain`, an error shown with its causes.
//! - `fuzzing`, `properties`: the properties the fuzz targets and the
//!   property tests check (tests and the `fuzzing` feature only).

pub mod account;
pub mod bundle;
pub mod canonical;
pub mod checkpoint;
pub mod cosignature;
pub mod coverage;
pub mod email;
pub mod error;
pub mod error_chain;
pub mod event;
pub mod filter;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod leaf;
pub mod leaf_v2;
pub mod leaf_view;
pub mod merkle;
pub mod note;
#[cfg(test)]
mod properties;
pub mod record;
pub mod root_log;
pub mod search;
pub mod submission;
pub mod tar;
pub mod taxonomy;
pub mod tiles;
pub mod timestamp;
pub mod witness;
pub mod zoned_buckets;

pub use account::AccountName;
pub use email::Email;
pub use error::FieldError;
pub use error_chain::ErrorChain;
pub use event::{NewEvent, StoredEvent};
pub use filter::{Cursor, EventFilter, Interval};
pub use record::{RecordError, StoredRecord};
pub use taxonomy::Taxonomy;
pub use timestamp::Timestamp;
