//! The domain of Auditlog, with no I/O: what an event is and which rules it
//! obeys (`event`), the per-account taxonomy (`taxonomy`), instants with
//! microsecond precision (`timestamp`), the canonical encoding that fixes an
//! event's leaf bytes for the Merkle tree (`canonical`, `leaf`; `leaf_v2` for
//! leaves that commit to personal values instead of holding them), and the query
//! filters and cursors that every storage backend translates (`filter`), and
//! tamper evidence: the Merkle tree (`merkle`), signed notes (`note`) and
//! checkpoints (`checkpoint`), and offline-verifiable export bundles (`bundle`,
//! in a minimal `tar`).
//!
//! Every value that reaches a store has been checked here once, in its type,
//! so that the layers above and below can rely on it.

pub mod account;
pub mod bundle;
pub mod canonical;
pub mod checkpoint;
pub mod error;
pub mod error_chain;
pub mod event;
pub mod filter;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod leaf;
pub mod leaf_v2;
pub mod merkle;
pub mod note;
#[cfg(test)]
mod properties;
pub mod tar;
pub mod taxonomy;
pub mod timestamp;

pub use error::FieldError;
pub use error_chain::ErrorChain;
pub use event::{NewEvent, StoredEvent};
pub use filter::{Cursor, EventFilter, Interval};
pub use taxonomy::Taxonomy;
pub use timestamp::Timestamp;
