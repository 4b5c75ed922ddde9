//! The account's Merkle tree (RFC 9162 hashing), in the stored-hash layout of
//! Go's `golang.org/x/mod/sumdb/tlog`: every leaf append persists the leaf
//! hash plus the hash of each subtree that leaf completes, at dense indexes
//! given by [`stored_hash_index`]. Any root, inclusion proof or consistency
//! proof then needs at most O(log n) stored hashes, which a backend hands in
//! through [`HashReader`]. No I/O here: backends only persist and read hashes.
//!
//! The functions follow tlog's algorithms one for one (so that its proofs and
//! ours are interchangeable, which the Go interop test checks); where tlog
//! panics on "impossible" index math, these return [`MerkleError::Internal`].
//! One deliberate difference: the empty tree's root is SHA-256 of nothing, as
//! RFC 9162 §2.1.1 defines it, not tlog's all-zero hash.

use sha2::{Digest, Sha256};

mod frontier;
pub use frontier::TreeFrontier;

/// A SHA-256 hash: a leaf, an interior node or a root.
pub type Hash = [u8; 32];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// Sizes or indexes that describe no proof (a leaf past the tree's end, a
    /// consistency proof from a larger tree, …).
    #[error("invalid proof request: {0}")]
    InvalidInput(String),
    /// The proof does not lead to the expected root.
    #[error("the proof does not match the root")]
    ProofFailed,
    /// The hash store could not answer.
    #[error("cannot read stored hashes: {0}")]
    Read(String),
    #[error("internal tree arithmetic error: {0}")]
    Internal(&'static str),
}

/// Reads stored hashes by their [`stored_hash_index`]. Must return exactly
/// one hash per index, in the order asked, or an error.
pub trait HashReader {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, MerkleError>;
}

/// A reader over every stored hash of a tree held in memory, index = position.
/// Used to rebuild a tree from its leaves (verify, bundles, tests).
#[derive(Debug, Default, Clone)]
pub struct MemoryHashes(pub Vec<Hash>);

impl HashReader for MemoryHashes {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, MerkleError> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.0.get(i).copied())
                    .ok_or_else(|| MerkleError::Read(format!("no stored hash at index {i}")))
            })
            .collect()
    }
}

impl MemoryHashes {
    /// Appends leaf `n` (which must be the next one) and its completed subtrees.
    pub fn append_leaf(&mut self, leaf_hash: Hash) -> Result<(), MerkleError> {
        let n = self.leaf_count();
        let new = stored_hashes_for_record(n, leaf_hash, self)?;
        self.0.extend(new);
        Ok(())
    }

    /// The leaf hash of leaf `n`, or zeros if there is none.
    pub fn leaf_hash_at(&self, n: u64) -> Hash {
        self.0
            .get(stored_hash_index(0, n as i64) as usize)
            .copied()
            .unwrap_or_default()
    }

    /// How many leaves the stored hashes hold.
    pub fn leaf_count(&self) -> i64 {
        leaf_count_of_stored(self.0.len() as i64)
    }
}

/// A reader over hashes fetched ahead of time (for async stores: ask which
/// indexes a computation needs, fetch them, then compute).
#[derive(Debug, Default, Clone)]
pub struct PrefetchedHashes(pub std::collections::HashMap<i64, Hash>);

impl HashReader for PrefetchedHashes {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, MerkleError> {
        indexes
            .iter()
            .map(|i| {
                self.0
                    .get(i)
                    .copied()
                    .ok_or_else(|| MerkleError::Read(format!("hash {i} was not fetched")))
            })
            .collect()
    }
}

/// SHA-256(0x00 ‖ leaf bytes).
pub fn leaf_hash(leaf_bytes: &[u8]) -> Hash {
    crate::leaf::leaf_hash(leaf_bytes)
}

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 1;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    Sha256::digest(buf).into()
}

/// The root of the empty tree: SHA-256 of the empty string (RFC 9162).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// k, the largest power of two smaller than n, and log2(k). n must be ≥ 2.
fn maxpow2(n: i64) -> (i64, u32) {
    let mut level = 0u32;
    while (1i64 << (level + 1)) < n {
        level += 1;
    }
    (1i64 << level, level)
}

/// The dense position at which the hash of the `n`th node of `level` is
/// stored (level 0 = leaves). Level L's nth hash comes right after level
/// L+1's (2n+1)th, so each leaf's completed subtrees follow it directly.
pub fn stored_hash_index(level: u32, n: i64) -> i64 {
    let mut n = n;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    let mut index = 0i64;
    while n > 0 {
        index += n;
        n >>= 1;
    }
    index + level as i64
}

/// How many hashes a tree of `n` leaves has stored.
pub fn stored_hash_count(n: i64) -> i64 {
    if n <= 0 {
        return 0;
    }
    let mut count = stored_hash_index(0, n - 1) + 1;
    let mut i = (n - 1) as u64;
    while i & 1 != 0 {
        count += 1;
        i >>= 1;
    }
    count
}

/// How many whole leaves `stored` hashes hold (the inverse of
/// [`stored_hash_count`], rounding down).
pub fn leaf_count_of_stored(stored: i64) -> i64 {
    let (mut lo, mut hi) = (0i64, stored.max(0));
    while lo < hi {
        let mid = lo + (hi - lo + 1) / 2;
        if stored_hash_count(mid) <= stored {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The hashes to persist, starting at `stored_hash_index(0, n)`, when leaf
/// `n` with hash `leaf_hash` is appended: the leaf hash, then one hash per
/// subtree it completes. Reads up to log2(n) earlier hashes.
pub fn stored_hashes_for_record(
    n: i64,
    leaf_hash: Hash,
    reader: &dyn HashReader,
) -> Result<Vec<Hash>, MerkleError> {
    if n < 0 {
        return Err(MerkleError::InvalidInput(format!("leaf index {n} < 0")));
    }
    let completed = (n as u64 + 1).trailing_zeros();
    let indexes: Vec<i64> = (0..completed)
        .rev()
        .map(|level| stored_hash_index(level, (n >> level) - 1))
        .collect();
    let old = read_exact(reader, &indexes)?;
    let mut hashes = Vec::with_capacity(1 + completed as usize);
    let mut hash = leaf_hash;
    hashes.push(hash);
    for level in 0..completed as usize {
        hash = node_hash(&old[completed as usize - 1 - level], &hash);
        hashes.push(hash);
    }
    Ok(hashes)
}

fn read_exact(reader: &dyn HashReader, indexes: &[i64]) -> Result<Vec<Hash>, MerkleError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader.read_hashes(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(MerkleError::Read(format!(
            "asked for {} hashes, got {}",
            indexes.len(),
            hashes.len()
        )));
    }
    Ok(hashes)
}

/// The stored indexes [`tree_hash`] reads for a tree of `n` leaves.
pub fn tree_hash_indexes(n: i64) -> Vec<i64> {
    let mut need = Vec::new();
    if n > 0 {
        sub_tree_index(0, n, &mut need);
    }
    need
}

/// The root of the tree of the first `n` leaves, from at most 1 + log2(n)
/// stored hashes.
pub fn tree_hash(n: i64, reader: &dyn HashReader) -> Result<Hash, MerkleError> {
    if n < 0 {
        return Err(MerkleError::InvalidInput(format!("tree size {n} < 0")));
    }
    if n == 0 {
        return Ok(empty_root());
    }
    let hashes = read_exact(reader, &tree_hash_indexes(n))?;
    let (hash, rest) = sub_tree_hash(0, n, &hashes)?;
    if !rest.is_empty() {
        return Err(MerkleError::Internal("tree_hash left hashes over"));
    }
    Ok(hash)
}

/// Appends the indexes of the perfect subtrees that make up leaves [lo, hi).
fn sub_tree_index(mut lo: i64, hi: i64, need: &mut Vec<i64>) {
    while lo < hi {
        let (k, level) = maxpow2(hi - lo + 1);
        need.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
}

/// Folds the perfect-subtree hashes of [lo, hi) (from `sub_tree_index`) into
/// the subtree's hash; returns the hashes left over.
fn sub_tree_hash(mut lo: i64, hi: i64, hashes: &[Hash]) -> Result<(Hash, &[Hash]), MerkleError> {
    let mut count = 0usize;
    while lo < hi {
        let (k, _) = maxpow2(hi - lo + 1);
        if lo & (k - 1) != 0 {
            return Err(MerkleError::Internal("sub_tree_hash: unaligned subtree"));
        }
        count += 1;
        lo += k;
    }
    if count == 0 || hashes.len() < count {
        return Err(MerkleError::Internal("sub_tree_hash: too few hashes"));
    }
    let mut hash = hashes[count - 1];
    for i in (0..count - 1).rev() {
        hash = node_hash(&hashes[i], &hash);
    }
    Ok((hash, &hashes[count..]))
}

/// The stored indexes [`prove_record`] reads.
pub fn record_proof_indexes(t: i64, n: i64) -> Result<Vec<i64>, MerkleError> {
    if t < 0 || n < 0 || n >= t {
        return Err(MerkleError::InvalidInput(format!(
            "leaf {n} is not in a tree of size {t}"
        )));
    }
    let mut need = Vec::new();
    leaf_proof_index(0, t, n, &mut need);
    Ok(need)
}

/// The inclusion proof (RFC 9162 audit path, leaf side first) that the tree
/// of size `t` holds leaf `n`.
pub fn prove_record(t: i64, n: i64, reader: &dyn HashReader) -> Result<Vec<Hash>, MerkleError> {
    let indexes = record_proof_indexes(t, n)?;
    let hashes = read_exact(reader, &indexes)?;
    let (proof, rest) = leaf_proof(0, t, n, &hashes)?;
    if !rest.is_empty() {
        return Err(MerkleError::Internal("prove_record left hashes over"));
    }
    Ok(proof)
}

fn leaf_proof_index(lo: i64, hi: i64, n: i64, need: &mut Vec<i64>) {
    if lo + 1 == hi {
        return;
    }
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        leaf_proof_index(lo, lo + k, n, need);
        sub_tree_index(lo + k, hi, need);
    } else {
        sub_tree_index(lo, lo + k, need);
        leaf_proof_index(lo + k, hi, n, need);
    }
}

fn leaf_proof(
    lo: i64,
    hi: i64,
    n: i64,
    hashes: &[Hash],
) -> Result<(Vec<Hash>, &[Hash]), MerkleError> {
    if !(lo <= n && n < hi) {
        return Err(MerkleError::Internal("leaf_proof: leaf outside range"));
    }
    if lo + 1 == hi {
        return Ok((Vec::new(), hashes));
    }
    let (k, _) = maxpow2(hi - lo);
    let (mut proof, sibling, rest) = if n < lo + k {
        let (proof, rest) = leaf_proof(lo, lo + k, n, hashes)?;
        let (sibling, rest) = sub_tree_hash(lo + k, hi, rest)?;
        (proof, sibling, rest)
    } else {
        let (sibling, rest) = sub_tree_hash(lo, lo + k, hashes)?;
        let (proof, rest) = leaf_proof(lo + k, hi, n, rest)?;
        (proof, sibling, rest)
    };
    proof.push(sibling);
    Ok((proof, rest))
}

/// Checks that `proof` shows leaf `n` with hash `leaf` in the tree of size
/// `t` whose root is `root`.
pub fn check_record(
    proof: &[Hash],
    t: i64,
    root: &Hash,
    n: i64,
    leaf: &Hash,
) -> Result<(), MerkleError> {
    if t < 0 || n < 0 || n >= t {
        return Err(MerkleError::InvalidInput(format!(
            "leaf {n} is not in a tree of size {t}"
        )));
    }
    if run_record_proof(proof, 0, t, n, leaf)? == *root {
        Ok(())
    } else {
        Err(MerkleError::ProofFailed)
    }
}

fn run_record_proof(
    proof: &[Hash],
    lo: i64,
    hi: i64,
    n: i64,
    leaf: &Hash,
) -> Result<Hash, MerkleError> {
    if lo + 1 == hi {
        // The proof must not carry unneeded hashes.
        return if proof.is_empty() {
            Ok(*leaf)
        } else {
            Err(MerkleError::ProofFailed)
        };
    }
    let Some((last, rest)) = proof.split_last() else {
        return Err(MerkleError::ProofFailed);
    };
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        let left = run_record_proof(rest, lo, lo + k, n, leaf)?;
        Ok(node_hash(&left, last))
    } else {
        let right = run_record_proof(rest, lo + k, hi, n, leaf)?;
        Ok(node_hash(last, &right))
    }
}

/// The stored indexes [`prove_tree`] reads.
pub fn tree_proof_indexes(t: i64, n: i64) -> Result<Vec<i64>, MerkleError> {
    if t < 1 || n < 1 || n > t {
        return Err(MerkleError::InvalidInput(format!(
            "no consistency proof from size {n} to size {t}: need 1 <= from <= to"
        )));
    }
    let mut need = Vec::new();
    tree_proof_index(0, t, n, &mut need);
    Ok(need)
}

/// The consistency proof (RFC 9162) that the tree of size `t` extends the
/// tree of size `n`.
pub fn prove_tree(t: i64, n: i64, reader: &dyn HashReader) -> Result<Vec<Hash>, MerkleError> {
    let indexes = tree_proof_indexes(t, n)?;
    let hashes = read_exact(reader, &indexes)?;
    let (proof, rest) = tree_proof(0, t, n, &hashes)?;
    if !rest.is_empty() {
        return Err(MerkleError::Internal("prove_tree left hashes over"));
    }
    Ok(proof)
}

fn tree_proof_index(lo: i64, hi: i64, n: i64, need: &mut Vec<i64>) {
    if n == hi {
        if lo != 0 {
            sub_tree_index(lo, hi, need);
        }
        return;
    }
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        tree_proof_index(lo, lo + k, n, need);
        sub_tree_index(lo + k, hi, need);
    } else {
        sub_tree_index(lo, lo + k, need);
        tree_proof_index(lo + k, hi, n, need);
    }
}

fn tree_proof(
    lo: i64,
    hi: i64,
    n: i64,
    hashes: &[Hash],
) -> Result<(Vec<Hash>, &[Hash]), MerkleError> {
    if !(lo < n && n <= hi) {
        return Err(MerkleError::Internal("tree_proof: size outside range"));
    }
    if n == hi {
        if lo == 0 {
            // The old tree itself: the verifier knows its root.
            return Ok((Vec::new(), hashes));
        }
        let (hash, rest) = sub_tree_hash(lo, hi, hashes)?;
        return Ok((vec![hash], rest));
    }
    let (k, _) = maxpow2(hi - lo);
    let (mut proof, sibling, rest) = if n <= lo + k {
        let (proof, rest) = tree_proof(lo, lo + k, n, hashes)?;
        let (sibling, rest) = sub_tree_hash(lo + k, hi, rest)?;
        (proof, sibling, rest)
    } else {
        let (sibling, rest) = sub_tree_hash(lo, lo + k, hashes)?;
        let (proof, rest) = tree_proof(lo + k, hi, n, rest)?;
        (proof, sibling, rest)
    };
    proof.push(sibling);
    Ok((proof, rest))
}

/// Checks that `proof` shows the tree of size `t` with root `root` extends
/// the tree of size `n` with root `old_root`.
pub fn check_tree(
    proof: &[Hash],
    t: i64,
    root: &Hash,
    n: i64,
    old_root: &Hash,
) -> Result<(), MerkleError> {
    if t < 1 || n < 1 || n > t {
        return Err(MerkleError::InvalidInput(format!(
            "no consistency proof from size {n} to size {t}: need 1 <= from <= to"
        )));
    }
    let (old, new) = run_tree_proof(proof, 0, t, n, old_root)?;
    if old == *old_root && new == *root {
        Ok(())
    } else {
        Err(MerkleError::ProofFailed)
    }
}

fn run_tree_proof(
    proof: &[Hash],
    lo: i64,
    hi: i64,
    n: i64,
    old: &Hash,
) -> Result<(Hash, Hash), MerkleError> {
    if n == hi {
        if lo == 0 {
            return if proof.is_empty() {
                Ok((*old, *old))
            } else {
                Err(MerkleError::ProofFailed)
            };
        }
        return match proof {
            [only] => Ok((*only, *only)),
            _ => Err(MerkleError::ProofFailed),
        };
    }
    let Some((last, rest)) = proof.split_last() else {
        return Err(MerkleError::ProofFailed);
    };
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        let (old_hash, new_hash) = run_tree_proof(rest, lo, lo + k, n, old)?;
        Ok((old_hash, node_hash(&new_hash, last)))
    } else {
        let (old_hash, new_hash) = run_tree_proof(rest, lo + k, hi, n, old)?;
        Ok((node_hash(last, &old_hash), node_hash(last, &new_hash)))
    }
}

#[cfg(test)]
mod tests;
