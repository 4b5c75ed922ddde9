//! The export worker's settings and the duration form the command line
//! accepts for them (`7d`, `12h`, `30m`, `45s`, or plain seconds).

use std::path::PathBuf;
use std::time::Duration;

/// Exports running at once, per server.
pub const DEFAULT_CONCURRENCY: usize = 2;
/// How long a completed export can be downloaded.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a worker holds a job without renewing; a job whose server died
/// is taken over this long after its last renewal.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Where export files are written. Every server sharing one database
    /// must share this directory, since any of them may serve a download.
    pub dir: PathBuf,
    pub concurrency: usize,
    pub expiry: Duration,
    pub lease: Duration,
    /// Test-only: a pause after each page, so that a test can catch an
    /// export while it runs. Zero in normal operation.
    pub page_delay: Duration,
}

impl ExportSettings {
    /// Default settings with files under `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            concurrency: DEFAULT_CONCURRENCY,
            expiry: DEFAULT_EXPIRY,
            lease: DEFAULT_LEASE,
            page_delay: Duration::ZERO,
        }
    }
}

/// A duration setting that does not read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration; write it as 7d, 12h, 30m, 45s or a number of seconds")]
    NotADuration(String),
    #[error("{text:?} has an unknown unit {unit:?}; use d, h, m or s")]
    UnknownUnit { text: String, unit: String },
    #[error("{0:?} is too long")]
    TooLong(String),
}

/// Parses `7d`, `12h`, `30m`, `45s` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| DurationError::NotADuration(text.to_string()))?;
    let unit_seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(DurationError::UnknownUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            })
        }
    };
    number
        .checked_mul(unit_seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| DurationError::TooLong(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_form() {
        assert_eq!(parse_duration("7d"), Ok(DEFAULT_EXPIRY));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(matches!(
            parse_duration("7w"),
            Err(DurationError::UnknownUnit { unit, .. }) if unit == "w"
        ));
        assert!(parse_duration("7w")
            .unwrap_err()
            .to_string()
            .contains("unit"));
        assert!(matches!(
            parse_duration("99999999999999999d"),
            Err(DurationError::TooLong(_))
        ));
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("").is_err());
    }
}
