//! Exports: the background worker (`worker`) that turns export jobs into
//! files, the file writing it shares with `auditlog export` (`file`,
//! `format`, with `details_json` for the `details` cell, and
//! `format_oracle`, the previous row writer the tests compare with), the
//! audit events of exports and downloads (`audit`), the settings
//! (`settings`) and why an export fails (`error`).

pub mod audit;
pub mod details_json;
pub mod error;
pub mod file;
pub mod format;
#[cfg(any(test, feature = "fuzzing"))]
pub mod format_oracle;
pub mod settings;
pub mod worker;

pub use settings::{parse_duration, DurationError, ExportSettings};

use std::sync::Arc;
use tokio::sync::Notify;

/// What the API needs of the export machinery: where files live, and a way
/// to wake the worker when a job is queued.
#[derive(Clone)]
pub struct Exports {
    pub settings: ExportSettings,
    pub wakeup: Arc<Notify>,
}

impl Exports {
    pub fn new(settings: ExportSettings) -> Self {
        Self {
            settings,
            wakeup: Arc::new(Notify::new()),
        }
    }
}
