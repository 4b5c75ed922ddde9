//! A C2SP transparency-log witness (<https://c2sp.org/tlog-witness>), run as
//! `auditlog witness serve`: it cosigns a log's checkpoint only if it is
//! consistent with every checkpoint it cosigned before for that origin, and
//! it remembers the latest one durably, so that not even a crash lets it
//! cosign two inconsistent checkpoints. The protocol's rules and the
//! cosignature format are pure functions in `auditlog_core::witness` and
//! `auditlog_core::cosignature`; this crate adds the files and HTTP.
//!
//! # Layout
//!
//! - `logs`: the `--logs` file, the logs this witness cosigns and their keys.
//! - `key_file`: the witness's own key on disk.
//! - `state`: the latest cosigned size and root per origin, one file each,
//!   replaced atomically and durably; a lock keeps a second process out.
//! - `server`: `POST /add-checkpoint`, the check and the store done under
//!   one lock so that two requests never both pass against the same state.
//! - `submitter`: the log's end: sends a checkpoint to a witness and
//!   follows its answer (resend when it is behind, alarm when the log's
//!   history contradicts it).

pub mod key_file;
pub mod logs;
pub mod server;
pub mod state;
pub mod submitter;

pub use logs::Logs;
pub use server::{router, serve, Witness};
pub use state::StateDir;
pub use submitter::{submit, Submitted, WitnessEndpoint};
