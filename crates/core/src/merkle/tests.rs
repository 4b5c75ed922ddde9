use super::*;
use crate::leaf::to_hex;
use ct_merkle::consistency::ConsistencyProof;
use ct_merkle::inclusion::InclusionProof;
use ct_merkle::CtMerkleTree;

/// A small deterministic generator, so the "random" indexes are reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, bound: i64) -> i64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % bound as u64) as i64
    }
}

fn leaf(i: i64) -> Vec<u8> {
    format!("{{\"seq\":{}}}", i + 1).into_bytes()
}

/// RFC 9162 §2.1.1 MTH, written straight from the definition.
fn reference_root(leaves: &[Vec<u8>]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaf_hash(&leaves[0]),
        n => {
            let (k, _) = maxpow2(n as i64);
            let k = k as usize;
            node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

fn flatten(proof: &[Hash]) -> Vec<u8> {
    proof.iter().flat_map(|h| h.iter().copied()).collect()
}

#[test]
fn roots_and_proofs_equal_ct_merkle_for_every_size_up_to_1000() {
    let mut ours = MemoryHashes::default();
    let mut theirs: CtMerkleTree<sha2::Sha256, Vec<u8>> = CtMerkleTree::new();
    let mut roots = vec![empty_root()];
    let mut random = SplitMix(42);
    for t in 1..=1000i64 {
        ours.append_leaf(leaf_hash(&leaf(t - 1))).unwrap();
        theirs.push(leaf(t - 1));
        assert_eq!(ours.leaf_count(), t);
        assert_eq!(ours.0.len() as i64, stored_hash_count(t));
        let root = tree_hash(t, &ours).unwrap();
        let their_root = theirs.root();
        assert_eq!(&root[..], &their_root.as_bytes()[..], "root of size {t}");
        roots.push(root);

        // Random leaves, plus the first and the last.
        for n in [0, t - 1, random.below(t), random.below(t)] {
            let proof = prove_record(t, n, &ours).unwrap();
            let theirs_proof = theirs.prove_inclusion(n as usize);
            assert_eq!(
                flatten(&proof),
                theirs_proof.as_bytes(),
                "inclusion {n} in {t}"
            );
            check_record(&proof, t, &root, n, &leaf_hash(&leaf(n))).unwrap();
            // Our proof verifies with their verifier, too.
            their_root
                .verify_inclusion(
                    &leaf(n),
                    n as usize,
                    &InclusionProof::from_bytes(flatten(&proof)),
                )
                .unwrap();
        }

        // Random earlier sizes, plus 1 and t itself.
        for m in [1, t, 1 + random.below(t), 1 + random.below(t)] {
            let proof = prove_tree(t, m, &ours).unwrap();
            let theirs_proof = theirs.prove_consistency(m as usize);
            assert_eq!(
                flatten(&proof),
                theirs_proof.as_bytes(),
                "consistency {m} -> {t}"
            );
            check_tree(&proof, t, &root, m, &roots[m as usize]).unwrap();
            let old =
                ct_merkle::RootHash::<sha2::Sha256>::new(roots[m as usize].into(), m as usize);
            their_root
                .verify_consistency(&old, &ConsistencyProof::from_bytes(flatten(&proof)))
                .unwrap();
        }
    }
}

#[test]
fn roots_equal_the_rfc_definition() {
    let leaves: Vec<Vec<u8>> = (0..70).map(leaf).collect();
    let mut ours = MemoryHashes::default();
    for (n, bytes) in leaves.iter().enumerate() {
        ours.append_leaf(leaf_hash(bytes)).unwrap();
        let t = n as i64 + 1;
        assert_eq!(tree_hash(t, &ours).unwrap(), reference_root(&leaves[..=n]));
    }
    assert_eq!(tree_hash(0, &ours).unwrap(), reference_root(&[]));
}

/// The eight-leaf test tree of RFC 6962's reference implementation (used by
/// Certificate Transparency and Go's tlog tests), with its published roots.
#[test]
fn rfc_6962_test_vectors() {
    let leaves: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let mut ours = MemoryHashes::default();
    for (i, bytes) in leaves.iter().enumerate() {
        ours.append_leaf(leaf_hash(bytes)).unwrap();
        assert_eq!(to_hex(&tree_hash(i as i64 + 1, &ours).unwrap()), roots[i]);
    }
    assert_eq!(
        to_hex(&empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn edge_cases_size_one_equal_sizes_and_powers_of_two() {
    let mut ours = MemoryHashes::default();
    for i in 0..64 {
        ours.append_leaf(leaf_hash(&leaf(i))).unwrap();
    }
    // Size 1: the root is the leaf hash and the proof is empty.
    assert_eq!(tree_hash(1, &ours).unwrap(), leaf_hash(&leaf(0)));
    assert!(prove_record(1, 0, &ours).unwrap().is_empty());
    assert!(prove_tree(1, 1, &ours).unwrap().is_empty());
    // Equal sizes: the consistency proof is empty, and only the same root passes.
    for t in [1, 2, 5, 64] {
        let root = tree_hash(t, &ours).unwrap();
        assert!(prove_tree(t, t, &ours).unwrap().is_empty());
        check_tree(&[], t, &root, t, &root).unwrap();
        let other = tree_hash(t - 1, &ours).unwrap();
        assert_eq!(
            check_tree(&[], t, &root, t, &other),
            Err(MerkleError::ProofFailed)
        );
    }
    // A power-of-two old tree is a subtree of the new one: its root is not sent.
    for m in [1, 2, 4, 8, 16, 32] {
        let proof = prove_tree(64, m, &ours).unwrap();
        let old = tree_hash(m, &ours).unwrap();
        assert!(!proof.contains(&old), "old root {m} must be left out");
        check_tree(&proof, 64, &tree_hash(64, &ours).unwrap(), m, &old).unwrap();
    }
    // Power-of-two sizes have a perfect tree: the proof length is log2(t).
    for (t, depth) in [(2, 1), (4, 2), (32, 5), (64, 6)] {
        assert_eq!(prove_record(t, t - 1, &ours).unwrap().len(), depth);
    }
}

#[test]
fn bad_inputs_and_altered_proofs_are_rejected() {
    let mut ours = MemoryHashes::default();
    for i in 0..10 {
        ours.append_leaf(leaf_hash(&leaf(i))).unwrap();
    }
    let root = tree_hash(10, &ours).unwrap();
    assert!(matches!(
        prove_record(10, 10, &ours),
        Err(MerkleError::InvalidInput(_))
    ));
    assert!(matches!(
        prove_tree(5, 6, &ours),
        Err(MerkleError::InvalidInput(_))
    ));
    assert!(matches!(
        prove_tree(5, 0, &ours),
        Err(MerkleError::InvalidInput(_))
    ));
    assert!(matches!(tree_hash(11, &ours), Err(MerkleError::Read(_))));
    let mut proof = prove_record(10, 3, &ours).unwrap();
    // The right leaf at the wrong index, the wrong leaf, a changed or extra hash.
    assert!(check_record(&proof, 10, &root, 2, &leaf_hash(&leaf(3))).is_err());
    assert!(check_record(&proof, 10, &root, 3, &leaf_hash(&leaf(4))).is_err());
    proof.push(root);
    assert!(check_record(&proof, 10, &root, 3, &leaf_hash(&leaf(3))).is_err());
    proof.pop();
    proof[0][0] ^= 1;
    assert!(check_record(&proof, 10, &root, 3, &leaf_hash(&leaf(3))).is_err());
    let mut consistency = prove_tree(10, 7, &ours).unwrap();
    let old = tree_hash(7, &ours).unwrap();
    check_tree(&consistency, 10, &root, 7, &old).unwrap();
    consistency[1][5] ^= 1;
    assert!(check_tree(&consistency, 10, &root, 7, &old).is_err());
}

#[test]
fn stored_hash_index_layout_matches_tlog() {
    // tlog's documented layout: leaves interleaved with completed subtrees.
    assert_eq!(stored_hash_index(0, 0), 0);
    assert_eq!(stored_hash_index(0, 1), 1);
    assert_eq!(stored_hash_index(1, 0), 2);
    assert_eq!(stored_hash_index(0, 2), 3);
    assert_eq!(stored_hash_index(0, 3), 4);
    assert_eq!(stored_hash_index(1, 1), 5);
    assert_eq!(stored_hash_index(2, 0), 6);
    assert_eq!(stored_hash_count(4), 7);
}
