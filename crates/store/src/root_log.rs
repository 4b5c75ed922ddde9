//! The root log's role of a store (SPEC "Witnesses", issue 17): one tree
//! per store whose leaves are the account checkpoints signed, in the order
//! they were stored (each [`TreeStore::add_checkpoint`] appends its leaf in
//! the same transaction, so no checkpoint is ever left out and servers
//! sharing a database build one root tree), the root checkpoints signed
//! over it, the witnesses' cosignatures of those, and the lease that lets
//! one server at a time sign and submit them.
//!
//! The leaf of an account checkpoint is its body exactly as signed
//! (`auditlog_core::root_log::leaf_bytes`); a store reads it from the
//! stored note with [`root_leaf_hash`], so it needs neither the log's name
//! nor the account's.
//!
//! [`TreeStore::add_checkpoint`]: crate::TreeStore::add_checkpoint

use crate::{AccountId, Result, StoreError, StoredCheckpoint};
use async_trait::async_trait;
use auditlog_core::merkle::{self, Hash, MerkleError, PrefetchedHashes};
use auditlog_core::Timestamp;

/// One witness's cosignature of a root checkpoint, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCosignature {
    /// The root checkpoint's size.
    pub size: u64,
    /// The witness's verifier key (`<name>+<hex id>+<base64 key>`).
    pub witness: String,
    /// The signature line, ending in a newline, as the witness sent it.
    pub line: String,
    /// The cosignature's timestamp (seconds since the epoch).
    pub timestamp: u64,
}

/// The account checkpoint a root leaf holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootLeaf {
    /// Its index in the root tree.
    pub index: u64,
    /// The account checkpoint's tree size.
    pub size: u64,
}

#[async_trait]
pub trait RootLogStore: Send + Sync {
    /// How many leaves the root tree has.
    async fn root_size(&self) -> Result<u64>;

    /// The stored root tree hashes at `indexes` (`merkle::stored_hash_index`
    /// layout), in order; `NotFound` if any is missing.
    async fn read_root_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>>;

    /// Appends a root leaf for every account's latest checkpoint when the
    /// root log is empty but checkpoints exist (a store signed before the
    /// root log existed); returns how many it appended. Older checkpoints
    /// stay verifiable with the log's key alone.
    async fn backfill_root_log(&self) -> Result<u64>;

    /// The root leaf of the account's checkpoint of `size`, if appended.
    async fn root_leaf_of(&self, account: AccountId, size: u64) -> Result<Option<RootLeaf>>;

    /// The account's largest checkpoint among the first `root_size` root
    /// leaves (what a root checkpoint of that size covers).
    async fn latest_root_leaf(
        &self,
        account: AccountId,
        root_size: u64,
    ) -> Result<Option<RootLeaf>>;

    /// Retains a signed root checkpoint (`note` without cosignatures).
    /// `AlreadyExists` if one of that size is kept.
    async fn add_root_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<()>;

    async fn latest_root_checkpoint(&self) -> Result<Option<StoredCheckpoint>>;

    async fn root_checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>>;

    /// Stores a cosignature; a second one by the same witness for the same
    /// size is ignored (the first is kept).
    async fn add_cosignature(&self, cosignature: &StoredCosignature) -> Result<()>;

    /// The cosignatures of the root checkpoint of `size`, by witness key.
    async fn cosignatures(&self, size: u64) -> Result<Vec<StoredCosignature>>;

    /// Per witness key, the largest root size it cosigned.
    async fn cosigned_sizes(&self) -> Result<Vec<(String, u64)>>;

    /// The largest root checkpoint size cosigned by at least `quorum` of
    /// `witnesses` (verifier keys); with `quorum` 0, the latest root
    /// checkpoint's.
    async fn latest_cosigned_root(
        &self,
        witnesses: &[String],
        quorum: usize,
    ) -> Result<Option<u64>>;

    /// Takes or renews the root submitter's lease for `holder` until
    /// `until`, if nobody else holds one that runs past `now`. At most one
    /// holder at a time across every server of the store.
    async fn claim_root_submitter(
        &self,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool>;

    /// Gives the lease up (if `holder` has it), so that another server
    /// takes over at once.
    async fn release_root_submitter(&self, holder: &str) -> Result<()>;
}

/// The root leaf bytes of a stored account checkpoint: its note's text up
/// to the blank line before the signatures (the body as signed).
pub fn root_leaf_bytes(note: &str) -> &[u8] {
    match note.find("\n\n") {
        Some(at) => &note.as_bytes()[..=at],
        None => note.as_bytes(),
    }
}

/// The root leaf hash of a stored account checkpoint.
pub fn root_leaf_hash(note: &str) -> Hash {
    merkle::leaf_hash(root_leaf_bytes(note))
}

fn merkle_error(e: MerkleError) -> StoreError {
    match e {
        MerkleError::InvalidInput(m) => StoreError::NotFound(m),
        other => StoreError::internal_caused_by("the stored root tree is inconsistent", other),
    }
}

async fn prefetch(store: &dyn RootLogStore, indexes: Vec<i64>) -> Result<PrefetchedHashes> {
    let hashes = store.read_root_hashes(&indexes).await?;
    Ok(PrefetchedHashes(indexes.into_iter().zip(hashes).collect()))
}

/// The root tree's hash at `size`.
pub async fn root_tree_root(store: &dyn RootLogStore, size: u64) -> Result<Hash> {
    let size = size as i64;
    let hashes = prefetch(store, merkle::tree_hash_indexes(size)).await?;
    merkle::tree_hash(size, &hashes).map_err(merkle_error)
}

/// The inclusion proof of root leaf `index` in the root tree of `size`.
pub async fn root_inclusion_proof(
    store: &dyn RootLogStore,
    size: u64,
    index: u64,
) -> Result<Vec<Hash>> {
    let (size, index) = (size as i64, index as i64);
    let indexes = merkle::record_proof_indexes(size, index).map_err(merkle_error)?;
    let hashes = prefetch(store, indexes).await?;
    merkle::prove_record(size, index, &hashes).map_err(merkle_error)
}

/// The consistency proof from the root tree of `from` leaves to `to`.
pub async fn root_consistency_proof(
    store: &dyn RootLogStore,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>> {
    let (from, to) = (from as i64, to as i64);
    let indexes = merkle::tree_proof_indexes(to, from).map_err(merkle_error)?;
    let hashes = prefetch(store, indexes).await?;
    merkle::prove_tree(to, from, &hashes).map_err(merkle_error)
}

/// The stored hashes that appending leaf `index` (the tree holds `index`
/// leaves before it) adds, with their first index; `known` holds the
/// frontier (`merkle::tree_hash_indexes(index)`) and is updated.
pub fn root_hashes_for_leaf(
    index: u64,
    leaf_hash: Hash,
    known: &mut PrefetchedHashes,
) -> Result<Vec<(i64, Hash)>> {
    let index = index as i64;
    let hashes = merkle::stored_hashes_for_record(index, leaf_hash, known)
        .map_err(|e| StoreError::internal_caused_by("the stored root tree is inconsistent", e))?;
    let first = merkle::stored_hash_index(0, index);
    let added: Vec<(i64, Hash)> = hashes
        .into_iter()
        .enumerate()
        .map(|(offset, hash)| (first + offset as i64, hash))
        .collect();
    for (at, hash) in &added {
        known.0.insert(*at, *hash);
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::checkpoint::Checkpoint;
    use auditlog_core::note::NoteSigner;

    #[test]
    fn the_leaf_of_a_stored_note_is_the_checkpoint_body() {
        let signer = NoteSigner::from_seed("log", [1; 32]).unwrap();
        let checkpoint = Checkpoint {
            origin: "log/acme".into(),
            size: 3,
            root: [2; 32],
        };
        let note = checkpoint.sign(&signer).unwrap();
        assert_eq!(
            root_leaf_bytes(&note),
            auditlog_core::root_log::leaf_bytes(&checkpoint)
        );
        assert_eq!(root_leaf_bytes("log/a\n3\n"), b"log/a\n3\n");
    }

    #[test]
    fn appended_hashes_build_the_tree_the_core_builds() {
        let mut known = PrefetchedHashes::default();
        let mut memory = merkle::MemoryHashes::default();
        for i in 0..9u64 {
            let leaf = merkle::leaf_hash(&[i as u8]);
            let added = root_hashes_for_leaf(i, leaf, &mut known).unwrap();
            assert_eq!(added[0], (merkle::stored_hash_index(0, i as i64), leaf));
            memory.append_leaf(leaf).unwrap();
            let size = i as i64 + 1;
            assert_eq!(
                merkle::tree_hash(size, &known).unwrap(),
                merkle::tree_hash(size, &memory).unwrap()
            );
        }
    }
}
