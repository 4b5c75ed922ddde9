//! The signed checkpoints of an account: each signature, and each root
//! against the tree rebuilt from the events. The roots are taken while the
//! tree is rebuilt (`RootsAtSizes`), since the rebuilt tree is never held
//! whole.

use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::merkle::{self, Hash, PrefetchedHashes, TreeFrontier};
use auditlog_core::note::NoteVerifier;
use auditlog_store::{Account, AccountId, Store, StoreError, StoredCheckpoint};
use std::collections::BTreeMap;

/// A report if any checkpoint is not genuinely this account's. After a key
/// rotation each checkpoint must be signed by one of `verifiers`.
pub(super) fn check_signatures(
    account: &Account,
    checkpoints: &[StoredCheckpoint],
    verifiers: &[NoteVerifier],
) -> Option<String> {
    if checkpoints.is_empty() {
        return None;
    }
    if verifiers.is_empty() {
        return Some("it has signed checkpoints but no verifier key was given (--key) or found (signing key file)".into());
    }
    for stored in checkpoints {
        let mut opened = Err(None);
        for verifier in verifiers {
            match Checkpoint::open(&stored.note, verifier) {
                Ok(c) => {
                    opened = Ok(c);
                    break;
                }
                Err(e) => {
                    if let Err(first @ None) = &mut opened {
                        *first = Some(e);
                    }
                }
            }
        }
        let checkpoint = match opened {
            Ok(c) => c,
            Err(e) => {
                let e = e.map(|e| e.to_string()).unwrap_or_default();
                let keys = if verifiers.len() > 1 {
                    " by any of the keys given"
                } else {
                    ""
                };
                return Some(format!(
                    "checkpoint of size {}: {e}{keys} (the checkpoint was replaced or altered, or signed by a key not given with --key)",
                    stored.size
                ));
            }
        };
        if !checkpoint.origin.ends_with(&format!("/{}", account.name)) {
            return Some(format!(
                "checkpoint of size {}: its origin {:?} is not this account's log (the checkpoint was replaced)",
                stored.size, checkpoint.origin
            ));
        }
        if checkpoint.size != stored.size || checkpoint.root != stored.root {
            return Some(format!(
                "checkpoint of size {}: its signed note says size {} and another root (the checkpoint was replaced)",
                stored.size, checkpoint.size
            ));
        }
    }
    None
}

/// The rebuilt tree's root at each checkpoint's size, noted as the tree
/// passes that size.
#[derive(Debug, Default)]
pub(super) struct RootsAtSizes {
    /// Sizes still to pass, the largest first (popped from the end).
    pending: Vec<u64>,
    roots: BTreeMap<u64, Hash>,
}

impl RootsAtSizes {
    pub(super) fn for_checkpoints(checkpoints: &[StoredCheckpoint]) -> Self {
        let mut pending: Vec<u64> = checkpoints.iter().map(|c| c.size).collect();
        pending.sort_unstable_by(|a, b| b.cmp(a));
        pending.dedup();
        Self {
            pending,
            roots: BTreeMap::new(),
        }
    }

    /// Call after every append (and once before the first).
    pub(super) fn note(&mut self, tree: &TreeFrontier) {
        let size = tree.leaf_count() as u64;
        while let Some(&next) = self.pending.last() {
            if next > size {
                break;
            }
            if next == size {
                self.roots.insert(size, tree.root());
            }
            self.pending.pop();
        }
    }
}

/// A report if a checkpoint covers events that are gone, signs another root
/// than the events rebuild, or is not consistent with the one before it.
/// Runs after the tree of `size` leaves was rebuilt and its stored hashes
/// compared, so the consistency proofs are read from stored hashes that are
/// known to be the rebuilt ones.
pub(super) async fn check_roots(
    store: &dyn Store,
    account: AccountId,
    checkpoints: &[StoredCheckpoint],
    roots: &RootsAtSizes,
    size: u64,
) -> Result<Option<String>, StoreError> {
    let mut previous: Option<&StoredCheckpoint> = None;
    for checkpoint in checkpoints {
        if checkpoint.size > size {
            return Ok(Some(format!(
                "event seq {} is missing: a checkpoint of size {} was signed but only {size} events remain (the newest events were removed)",
                size + 1,
                checkpoint.size
            )));
        }
        if roots.roots.get(&checkpoint.size) != Some(&checkpoint.root) {
            let from = previous.map_or(1, |p| p.size + 1);
            return Ok(Some(format!(
                "checkpoint of size {}: the events rebuild another root; an event with seq from {from} to {} was altered since it was signed",
                checkpoint.size, checkpoint.size
            )));
        }
        if let Some(previous) = previous {
            if !consistent(store, account, previous, checkpoint).await? {
                return Ok(Some(format!(
                    "checkpoints of sizes {} and {} are not consistent with each other",
                    previous.size, checkpoint.size
                )));
            }
        }
        previous = Some(checkpoint);
    }
    Ok(None)
}

/// Whether the consistency proof between two checkpoints holds.
async fn consistent(
    store: &dyn Store,
    account: AccountId,
    old: &StoredCheckpoint,
    new: &StoredCheckpoint,
) -> Result<bool, StoreError> {
    let (old_size, new_size) = (old.size as i64, new.size as i64);
    let Ok(indexes) = merkle::tree_proof_indexes(new_size, old_size) else {
        return Ok(false);
    };
    let hashes = store.read_hashes(account, &indexes).await?;
    let hashes = PrefetchedHashes(indexes.into_iter().zip(hashes).collect());
    Ok(merkle::prove_tree(new_size, old_size, &hashes)
        .and_then(|proof| merkle::check_tree(&proof, new_size, &new.root, old_size, &old.root))
        .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::leaf;

    #[test]
    fn notes_the_root_at_each_checkpoint_size() {
        let checkpoint = |size| StoredCheckpoint {
            size,
            root: [0; 32],
            note: String::new(),
            created_at: auditlog_core::Timestamp::from_micros(0),
        };
        let mut roots =
            RootsAtSizes::for_checkpoints(&[checkpoint(0), checkpoint(3), checkpoint(5)]);
        let mut tree = TreeFrontier::default();
        let mut full = merkle::MemoryHashes::default();
        roots.note(&tree);
        for i in 0..6u8 {
            let hash = leaf::leaf_hash(&[i]);
            tree.append(hash, &mut Vec::new());
            full.append_leaf(hash).unwrap();
            roots.note(&tree);
        }
        assert_eq!(roots.roots.len(), 3);
        for size in [0, 3, 5] {
            assert_eq!(
                roots.roots[&size],
                merkle::tree_hash(size as i64, &full).unwrap()
            );
        }
        assert!(roots.pending.is_empty());
    }
}
