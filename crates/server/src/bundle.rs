//! Writes a verifiable export bundle (format in `auditlog_core::bundle`) of
//! one account's events matching a filter, with an inclusion proof for each
//! against a signed checkpoint, and that checkpoint's inclusion proof in the
//! latest root checkpoint that has its witnesses' quorum, with its
//! cosignatures (SPEC "Witnesses"). The export worker calls
//! [`write_bundle`]; `auditlog verify-export` checks the result offline.
//!
//! Witnessing trails signing by a few seconds (the account checkpoint is
//! signed within a second, the root checkpoint over it in the next round,
//! then the witnesses answer), so the writer waits (up to [`ROOT_WAIT`]) for
//! a witnessed root checkpoint that covers the export; if none comes (the
//! witnesses are down) the bundle is written without one and says so, and
//! `verify-export --witness` refuses it.
//!
//! After a key rotation the retained checkpoints were signed with the old
//! key. A bundle is signed with the current key only: a retained note the
//! current key did not sign is signed again with it, after its root was
//! recomputed from the stored tree (the same statement, never another one),
//! and a root checkpoint keeps its cosignatures, which are over its body.

use crate::root_log::{CosignedRoot, RootLog, Witnessed};
use crate::signer::{CheckpointSigner, SignError};
use auditlog_core::bundle::{self, BundleEntry, BundleHeader, BundleRoot};
use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::note::NoteError;
use auditlog_core::{ErrorChain, EventFilter};
use auditlog_store::root_log::root_tree_root;
use auditlog_store::{tree, Account, Store, StoreError, StoredCheckpoint};
use std::time::{Duration, Instant};

/// Events fetched per page while collecting the bundle.
const PAGE: usize = 1_000;
/// The longest the writer waits for a root checkpoint with its quorum that
/// covers the export (the export worker waits at most half its lease).
pub const ROOT_WAIT: Duration = Duration::from_secs(30);
const ROOT_POLL: Duration = Duration::from_millis(250);

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
    #[error("the retained {what} of size {size} does not match the stored tree, so it is not signed again with the current key")]
    RetainedRoot { what: &'static str, size: u64 },
}

/// Builds the bundle of the events of `account` that match `filter` and
/// have `seq <= up_to_seq` (the tree size when the export was requested;
/// `None` = everything now), newest first. With a root log the proofs lead
/// to the account checkpoint that the latest witnessed root checkpoint
/// covers (waiting up to `root_wait` for one); otherwise, or if none comes,
/// to the latest signed checkpoint, signed now if none covers `up_to_seq`.
pub async fn write_bundle(
    store: &dyn Store,
    signer: &CheckpointSigner,
    root_log: Option<&RootLog>,
    root_wait: Duration,
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
    let witnessed = match root_log {
        Some(root_log) => wait_for_root(root_log, account, up_to_seq, root_wait).await?,
        None => None,
    };
    let checkpoint = match &witnessed {
        Some(witnessed) => witnessed.account_checkpoint.clone(),
        None => checkpoint,
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
    let (body, checkpoint_note) = current_key_note(store, signer, account, &checkpoint).await?;
    let root_note = match &witnessed {
        Some(witnessed) => Some(current_key_root_note(store, signer, &witnessed.root).await?),
        None => None,
    };
    let root = witnessed
        .as_ref()
        .zip(root_note.as_deref())
        .map(|(witnessed, note)| BundleRoot {
            note,
            tree_size: witnessed.root.checkpoint.size,
            leaf_index: witnessed.leaf_index,
            hashes: &witnessed.hashes,
        });
    let header = BundleHeader {
        account: &account.name,
        checkpoint_note: &checkpoint_note,
        checkpoint: &body,
        filters: filter.to_json(),
        created_unix: (auditlog_core::Timestamp::now().micros() / 1_000_000).max(0) as u64,
        root,
    };
    let bytes =
        bundle::build(&header, &entries, signer.note_signer()).map_err(BundleError::Build)?;
    Ok(WrittenBundle {
        bytes,
        entries: entries.len(),
        tree_size: checkpoint.size,
    })
}

/// The account checkpoint of at least `up_to_seq` that the latest root
/// checkpoint with its quorum covers, waiting up to `wait` for one.
async fn wait_for_root(
    root_log: &RootLog,
    account: &Account,
    up_to_seq: u64,
    wait: Duration,
) -> Result<Option<Witnessed>, BundleError> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(witnessed) = root_log.witnessed(account.id, up_to_seq).await? {
            return Ok(Some(witnessed));
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                account = %account.name,
                seq = up_to_seq,
                waited = ?wait,
                "no root checkpoint with its witnesses' quorum covers the export yet; the bundle is written without one"
            );
            return Ok(None);
        }
        tokio::time::sleep(ROOT_POLL).await;
    }
}

/// The retained checkpoint's body and a note of it signed by the current
/// key: the stored note if the current key signed it, else the body signed
/// again once its root is confirmed against the stored tree.
async fn current_key_note(
    store: &dyn Store,
    signer: &CheckpointSigner,
    account: &Account,
    checkpoint: &StoredCheckpoint,
) -> Result<(Checkpoint, String), BundleError> {
    if let Ok(body) = Checkpoint::open(&checkpoint.note, &signer.verifier()) {
        return Ok((body, checkpoint.note.clone()));
    }
    let body = signed_body(&checkpoint.note, checkpoint.size)?;
    let root = tree::tree_root(store, account.id, checkpoint.size).await?;
    if body.size != checkpoint.size || body.root != root || body.root != checkpoint.root {
        return Err(BundleError::RetainedRoot {
            what: "checkpoint",
            size: checkpoint.size,
        });
    }
    let note = resign(signer, &body, checkpoint.size)?;
    Ok((body, note))
}

/// The root checkpoint note with its cosignature lines, its log signature
/// by the current key (signed again as for [`current_key_note`]).
async fn current_key_root_note(
    store: &dyn Store,
    signer: &CheckpointSigner,
    root: &CosignedRoot,
) -> Result<String, BundleError> {
    let stored = &root.checkpoint;
    if Checkpoint::open(&stored.note, &signer.verifier()).is_ok() {
        return Ok(root.note.clone());
    }
    let body = signed_body(&stored.note, stored.size)?;
    let tree_root = root_tree_root(store, stored.size).await?;
    if body.size != stored.size || body.root != tree_root || body.root != stored.root {
        return Err(BundleError::RetainedRoot {
            what: "root checkpoint",
            size: stored.size,
        });
    }
    let cosignatures = root.note.get(stored.note.len()..).unwrap_or_default();
    Ok(format!(
        "{}{cosignatures}",
        resign(signer, &body, stored.size)?
    ))
}

/// The checkpoint a stored note states (its text before the signatures).
fn signed_body(note: &str, size: u64) -> Result<Checkpoint, BundleError> {
    let text = note.find("\n\n").map(|end| &note[..=end]).unwrap_or(note);
    Checkpoint::parse(text).map_err(|cause| BundleError::RetainedCheckpoint { size, cause })
}

fn resign(signer: &CheckpointSigner, body: &Checkpoint, size: u64) -> Result<String, BundleError> {
    tracing::debug!(size, origin = %body.origin, "a retained checkpoint signed by an earlier key is signed again with the current one for a bundle");
    body.sign(signer.note_signer()).map_err(|cause| {
        tracing::warn!(error = %ErrorChain(&cause), "cannot sign a retained checkpoint again");
        BundleError::RetainedCheckpoint { size, cause }
    })
}
