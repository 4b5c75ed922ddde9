//! The right edge of a Merkle tree that is being built leaf by leaf: the
//! roots of its perfect subtrees, one per set bit of the leaf count (at most
//! 64 hashes). Enough to append the next leaf, to produce exactly the hashes
//! [`super::stored_hashes_for_record`] persists for it, and to give the root
//! at the current size, so that `verify` can rebuild and compare a tree of
//! any size in constant memory instead of holding every hash
//! ([`super::MemoryHashes`] grows by ~64 bytes per leaf).

use super::{empty_root, node_hash, Hash};

#[derive(Debug, Default, Clone)]
pub struct TreeFrontier {
    leaves: i64,
    /// Perfect subtree roots, the leftmost (largest) first.
    subtrees: Vec<Hash>,
}

impl TreeFrontier {
    /// How many leaves have been appended.
    pub fn leaf_count(&self) -> i64 {
        self.leaves
    }

    /// Appends the next leaf and pushes to `stored` the hashes the stored
    /// layout holds for it, in index order: the leaf hash, then the root of
    /// each subtree the leaf completes, smallest first.
    pub fn append(&mut self, leaf_hash: Hash, stored: &mut Vec<Hash>) {
        let completed = (self.leaves as u64 + 1).trailing_zeros();
        let mut hash = leaf_hash;
        stored.push(hash);
        for _ in 0..completed {
            // A completed subtree's left sibling is always the smallest
            // subtree on the edge, so the pop cannot come up empty.
            let left = self.subtrees.pop().unwrap_or_default();
            hash = node_hash(&left, &hash);
            stored.push(hash);
        }
        self.subtrees.push(hash);
        self.leaves += 1;
    }

    /// The RFC 9162 root of the tree of every leaf appended so far.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev();
        match subtrees.next() {
            None => empty_root(),
            Some(smallest) => subtrees.fold(*smallest, |right, left| node_hash(left, &right)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{leaf_hash, stored_hash_count, tree_hash, MemoryHashes};
    use super::*;

    #[test]
    fn agrees_with_the_stored_layout_and_the_roots_at_every_size() {
        let mut full = MemoryHashes::default();
        let mut frontier = TreeFrontier::default();
        let mut stored = Vec::new();
        assert_eq!(frontier.root(), empty_root());
        for n in 0..300i64 {
            let leaf = leaf_hash(format!("leaf {n}").as_bytes());
            full.append_leaf(leaf).unwrap();
            frontier.append(leaf, &mut stored);
            assert_eq!(stored, full.0, "stored hashes after {} leaves", n + 1);
            assert_eq!(stored.len() as i64, stored_hash_count(n + 1));
            assert_eq!(
                frontier.root(),
                tree_hash(n + 1, &full).unwrap(),
                "root at {}",
                n + 1
            );
            assert_eq!(frontier.leaf_count(), n + 1);
            assert!(frontier.subtrees.len() <= 64);
        }
    }
}
