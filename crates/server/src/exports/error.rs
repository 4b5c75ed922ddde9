//! `ExportError`: why an export could not be written. Its message, with its
//! causes (`ErrorChain`), is what the failed job records for the user, so
//! each says what to do where there is something to do.

use crate::bundle::BundleError;
use auditlog_store::StoreError;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the account failed")]
    ReadAccount(#[source] StoreError),
    #[error("the export's account no longer exists")]
    AccountGone,
    #[error("the export's filters are no longer valid")]
    Filters(#[source] auditlog_core::filter::FilterError),
    #[error("cannot create the export directory {}; check its permissions", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        cause: io::Error,
    },
    #[error("cannot create {}; check free space and permissions of the export directory", path.display())]
    CreateFile {
        path: PathBuf,
        #[source]
        cause: io::Error,
    },
    #[error("reading the events failed")]
    ReadEvents(#[source] StoreError),
    #[error("writing {} failed{}", path.display(), full_disk_hint(cause))]
    Write {
        path: PathBuf,
        #[source]
        cause: io::Error,
    },
    #[error("completing {} failed{}", path.display(), full_disk_hint(cause))]
    Complete {
        path: PathBuf,
        #[source]
        cause: io::Error,
    },
    #[error("the export task failed")]
    Task(#[source] tokio::task::JoinError),
    #[error("this server has no signing key, so it cannot make bundle exports")]
    NoSigningKey,
    #[error("building the bundle failed")]
    Bundle(#[source] BundleError),
    #[error("cannot write {}; check free space and permissions of the export directory", path.display())]
    WriteBundle {
        path: PathBuf,
        #[source]
        cause: io::Error,
    },
}

/// Words for the export's `error` that tell the reader what to do about a
/// full disk; the partial file is already gone.
fn full_disk_hint(e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::StorageFull {
        "; the export directory's disk is full: free space there and start the export again"
    } else {
        ""
    }
}
