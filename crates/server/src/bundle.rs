//! Writes a verifiable export bundle (format in `auditlog_core::bundle`) of
//! one account's events matching a filter, with an inclusion proof for each
//! against a signed checkpoint. The export worker calls [`write_bundle`];
//! `auditlog verify-export` checks the result offline.

use crate::signer::{CheckpointSigner, SignError};
use auditlog_core::bundle::{self, BundleEntry, BundleHeader};
use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::note::NoteError;
use auditlog_core::EventFilter;
use auditlog_store::{tree, Account, Store, StoreError};

/// Events fetched per page while collecting the bundle.
const PAGE: usize = 1_000;

/// A bundle ready to be stored or served.
pub struct WrittenBundle {
    pub bytes: Vec<u8>,
    pub entries: usize,
    /// The size of the signed tree the proofs lead to.
    pub tree_size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("the account has no events, so there is no tree to prove against")]
    NoEvents,
    #[error("no signed checkpoint covers seq {0}")]
    NoCheckpoint(u64),
    #[error("the retained checkpoint of size {size} does not verify")]
    RetainedCheckpoint {
        size: u64,
        #[source]
        cause: NoteError,
    },
    #[error("cannot build the bundle")]
    Build(#[source] bundle::BuildError),
}

/// Builds the bundle of the events of `account` that match `filter` and
/// have `seq <= up_to_seq` (the tree size when the export was requested;
/// `None` = everything now), newest first. The proofs lead to the latest
/// signed checkpoint, signed now if none covers `up_to_seq` yet.
pub async fn write_bundle(
    store: &dyn Store,
    signer: &CheckpointSigner,
    account: &Account,
    filter: &EventFilter,
    up_to_seq: Option<u64>,
) -> Result<WrittenBundle, BundleError> {
    let up_to_seq = match up_to_seq {
        Some(seq) => seq,
        None => store.last_seq(account.id).await?,
    };
    let checkpoint = match store.latest_checkpoint(account.id).await? {
        Some(latest) if latest.size >= up_to_seq => Some(latest),
        _ => signer.sign_if_grown(account).await?,
    };
    let checkpoint = match checkpoint {
        Some(c) if c.size >= up_to_seq => c,
        _ if up_to_seq == 0 => return Err(BundleError::NoEvents),
        _ => return Err(BundleError::NoCheckpoint(up_to_seq)),
    };
    let mut entries = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.query(account.id, filter, cursor, PAGE).await?;
        for record in page.events.into_iter().filter(|r| r.seq <= up_to_seq) {
            let leaf_index = record.seq - 1;
            let proof =
                tree::inclusion_proof(store, account.id, checkpoint.size, leaf_index).await?;
            entries.push(BundleEntry {
                leaf_bytes: record.leaf_bytes,
                personal: record.personal,
                leaf_index,
                proof,
            });
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    // The origin as signed (the log name may have been configured differently then).
    let body = Checkpoint::open(&checkpoint.note, &signer.verifier()).map_err(|cause| {
        BundleError::RetainedCheckpoint {
            size: checkpoint.size,
            cause,
        }
    })?;
    let header = BundleHeader {
        account: &account.name,
        checkpoint_note: &checkpoint.note,
        checkpoint: &body,
        filters: filter.to_json(),
        created_unix: (auditlog_core::Timestamp::now().micros() / 1_000_000).max(0) as u64,
    };
    let bytes =
        bundle::build(&header, &entries, signer.note_signer()).map_err(BundleError::Build)?;
    Ok(WrittenBundle {
        bytes,
        entries: entries.len(),
        tree_size: checkpoint.size,
    })
}
