//! Conformance cases of the root log role (`root_log`): every backend
//! appends a root leaf with each checkpoint, in order, builds the tree the
//! core builds from those leaves, keeps root checkpoints and cosignatures,
//! and gives the submitter's lease to one holder at a time.

use crate::root_log::{
    root_consistency_proof, root_inclusion_proof, root_leaf_hash, root_tree_root,
};
use crate::{RootLeaf, Store, StoreError, StoredCheckpoint, StoredCosignature};
use auditlog_core::merkle::{self, MemoryHashes};
use auditlog_core::Timestamp;

const BASE: i64 = 1_764_000_000_000_000;

fn account_checkpoint(account: &str, size: u64) -> StoredCheckpoint {
    StoredCheckpoint {
        size,
        root: [size as u8; 32],
        note: format!("log/{account}\n{size}\nroot{size}=\n\n— log sig{size}\n"),
        created_at: Timestamp::from_micros(BASE + size as i64),
    }
}

pub async fn root_leaves_follow_checkpoints_and_prove(store: &dyn Store) {
    let a = store.create_account("conf-root-a").await.unwrap();
    let b = store.create_account("conf-root-b").await.unwrap();
    // Other cases may have run on this store: their leaves come first.
    let base = store.root_size().await.unwrap();
    assert_eq!(store.backfill_root_log().await.unwrap(), 0);
    let order = [
        (&a, "a", 3),
        (&b, "b", 1),
        (&a, "a", 5),
        (&b, "b", 4),
        (&a, "a", 9),
    ];
    let mut memory = MemoryHashes::default();
    let earlier: Vec<i64> = (0..base as i64)
        .map(|i| merkle::stored_hash_index(0, i))
        .collect();
    for leaf in store.read_root_hashes(&earlier).await.unwrap() {
        memory.append_leaf(leaf).unwrap();
    }
    for (account, name, size) in order {
        let checkpoint = account_checkpoint(name, size);
        store.add_checkpoint(account.id, &checkpoint).await.unwrap();
        memory
            .append_leaf(root_leaf_hash(&checkpoint.note))
            .unwrap();
    }
    // A checkpoint kept already appends nothing.
    assert!(matches!(
        store
            .add_checkpoint(a.id, &account_checkpoint("a", 5))
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(store.root_size().await.unwrap(), base + 5);
    assert_eq!(
        root_leaf_hash(&account_checkpoint("a", 3).note),
        merkle::leaf_hash(b"log/a\n3\nroot3=\n")
    );
    assert_eq!(
        store.root_leaf_of(a.id, 5).await.unwrap(),
        Some(RootLeaf {
            index: base + 2,
            size: 5
        })
    );
    assert_eq!(store.root_leaf_of(a.id, 4).await.unwrap(), None);
    assert_eq!(
        store.latest_root_leaf(a.id, base + 4).await.unwrap(),
        Some(RootLeaf {
            index: base + 2,
            size: 5
        })
    );
    assert_eq!(
        store.latest_root_leaf(b.id, base + 2).await.unwrap(),
        Some(RootLeaf {
            index: base + 1,
            size: 1
        })
    );
    assert_eq!(store.latest_root_leaf(b.id, base + 1).await.unwrap(), None);
    let total = base + 5;
    for size in base.max(1)..=total {
        let root = root_tree_root(store, size).await.unwrap();
        assert_eq!(root, merkle::tree_hash(size as i64, &memory).unwrap());
        for index in 0..size {
            let proof = root_inclusion_proof(store, size, index).await.unwrap();
            merkle::check_record(
                &proof,
                size as i64,
                &root,
                index as i64,
                &memory.leaf_hash_at(index),
            )
            .unwrap();
        }
        if size > 1 {
            let proof = root_consistency_proof(store, size - 1, total)
                .await
                .unwrap();
            let older = merkle::tree_hash(size as i64 - 1, &memory).unwrap();
            let newest = merkle::tree_hash(total as i64, &memory).unwrap();
            merkle::check_tree(&proof, total as i64, &newest, size as i64 - 1, &older).unwrap();
        }
    }
    assert!(root_tree_root(store, total + 1).await.is_err());
    // A root log that has leaves is not backfilled.
    assert_eq!(store.backfill_root_log().await.unwrap(), 0);

    // Root checkpoints and their cosignatures.
    assert_eq!(store.latest_root_checkpoint().await.unwrap(), None);
    let root = |size: u64| StoredCheckpoint {
        size,
        root: [100 + size as u8; 32],
        note: format!("log\n{size}\nr=\n\n— log s\n"),
        created_at: Timestamp::from_micros(BASE + 100 + size as i64),
    };
    for size in [2, 5] {
        store.add_root_checkpoint(&root(size)).await.unwrap();
    }
    assert!(matches!(
        store.add_root_checkpoint(&root(5)).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(store.latest_root_checkpoint().await.unwrap(), Some(root(5)));
    assert_eq!(store.root_checkpoint_at(2).await.unwrap(), Some(root(2)));
    assert_eq!(store.root_checkpoint_at(3).await.unwrap(), None);
    let cosignature = |size: u64, witness: &str, timestamp: u64| StoredCosignature {
        size,
        witness: witness.to_string(),
        line: format!("— {witness} sig{timestamp}\n"),
        timestamp,
    };
    for c in [
        cosignature(2, "w1", 1),
        cosignature(2, "w2", 2),
        cosignature(5, "w1", 3),
    ] {
        store.add_cosignature(&c).await.unwrap();
    }
    // A second cosignature by the same witness is ignored: the first stays.
    store
        .add_cosignature(&cosignature(5, "w1", 99))
        .await
        .unwrap();
    assert_eq!(
        store.cosignatures(5).await.unwrap(),
        vec![cosignature(5, "w1", 3)]
    );
    assert_eq!(
        store.cosignatures(2).await.unwrap(),
        vec![cosignature(2, "w1", 1), cosignature(2, "w2", 2)]
    );
    let mut sizes = store.cosigned_sizes().await.unwrap();
    sizes.sort();
    assert_eq!(sizes, vec![("w1".to_string(), 5), ("w2".to_string(), 2)]);
    let keys = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let latest = |witnesses: Vec<String>, quorum| async move {
        store
            .latest_cosigned_root(&witnesses, quorum)
            .await
            .unwrap()
    };
    assert_eq!(latest(keys(&["w1", "w2"]), 1).await, Some(5));
    assert_eq!(latest(keys(&["w1", "w2"]), 2).await, Some(2));
    assert_eq!(latest(keys(&["w2", "w3"]), 2).await, None);
    assert_eq!(latest(keys(&["w1", "w2"]), 3).await, None);
    assert_eq!(latest(keys(&[]), 0).await, Some(5));
}

pub async fn the_root_submitter_lease_has_one_holder(store: &dyn Store) {
    let at = |s: i64| Timestamp::from_micros(BASE + s * 1_000_000);
    assert!(store
        .claim_root_submitter("one", at(0), at(15))
        .await
        .unwrap());
    assert!(!store
        .claim_root_submitter("two", at(1), at(16))
        .await
        .unwrap());
    // The holder renews.
    assert!(store
        .claim_root_submitter("one", at(10), at(25))
        .await
        .unwrap());
    assert!(!store
        .claim_root_submitter("two", at(20), at(35))
        .await
        .unwrap());
    // A lease that ran out is taken over.
    assert!(store
        .claim_root_submitter("two", at(26), at(41))
        .await
        .unwrap());
    assert!(!store
        .claim_root_submitter("one", at(27), at(42))
        .await
        .unwrap());
    // Released by someone else: nothing happens; by its holder: free at once.
    store.release_root_submitter("one").await.unwrap();
    assert!(!store
        .claim_root_submitter("one", at(28), at(43))
        .await
        .unwrap());
    store.release_root_submitter("two").await.unwrap();
    assert!(store
        .claim_root_submitter("one", at(29), at(44))
        .await
        .unwrap());
}
