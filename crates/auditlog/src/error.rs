//! The binary's error: what every command returns, and what `main` prints.

use auditlog_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(String),
    /// `verify` or `verify-export` found the data altered.
    #[error("{0}")]
    Verify(String),
}

pub type CliResult<T = ()> = Result<T, CliError>;
