//! The root log (SPEC "Witnesses"): one tree per server, origin `<log
//! name>`, whose leaves are the account checkpoints the server signs, in
//! signing order. Witnesses are configured for this one origin, so a
//! standard witness covers every account, present and future; an account
//! checkpoint is witnessed through its inclusion proof in a cosigned root
//! checkpoint.
//!
//! **Root leaf format**: the leaf bytes are the account checkpoint's body
//! exactly as signed — `<log name>/<account>\n<size>\n<base64 root>\n` —
//! and its leaf hash is SHA-256(0x00 ‖ those bytes) as in every tree here.
//! A verifier holding a signed account checkpoint rebuilds its leaf from
//! the note's text alone. The signature is left out: the root checkpoint
//! that covers the leaf is signed by the same log, and a key rotation then
//! changes no leaf.
//!
//! This module checks what a verifier or monitor is handed (pure); the
//! store keeps the root tree and the signer appends to it.

use crate::checkpoint::Checkpoint;
use crate::cosignature::CosignatureVerifier;
use crate::merkle::{check_record, leaf_hash, Hash, MerkleError};
use crate::note::{NoteError, NoteVerifier};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootLogError {
    #[error("the root checkpoint: {0}")]
    Note(#[from] NoteError),
    #[error("the root checkpoint's origin is {found:?}, not the log name {expected:?}")]
    Origin { found: String, expected: String },
    #[error("the root checkpoint has {have} valid cosignature(s) of the {quorum} required ({})", if cosigners.is_empty() { "none by the named witnesses".to_string() } else { format!("by {}", cosigners.join(", ")) })]
    Quorum {
        have: usize,
        quorum: usize,
        cosigners: Vec<String>,
    },
    #[error("the root leaf is not an account checkpoint of this log: {0}")]
    Leaf(String),
    #[error(
        "the account checkpoint is not leaf {index} of the root checkpoint of size {size}: {cause}"
    )]
    NotCovered {
        index: u64,
        size: u64,
        #[source]
        cause: MerkleError,
    },
}

/// The leaf bytes of an account checkpoint in the root log.
pub fn leaf_bytes(account_checkpoint: &Checkpoint) -> Vec<u8> {
    account_checkpoint.body().into_bytes()
}

/// The account checkpoint a root leaf holds; its origin must be
/// `<log_name>/<account>`.
pub fn parse_leaf(log_name: &str, bytes: &[u8]) -> Result<Checkpoint, RootLogError> {
    let text = std::str::from_utf8(bytes).map_err(|_| RootLogError::Leaf("not UTF-8".into()))?;
    let checkpoint = Checkpoint::parse(text).map_err(|e| RootLogError::Leaf(e.to_string()))?;
    // Exactly the three lines: the leaf is rebuilt from them, byte for byte.
    if checkpoint.body() != text {
        return Err(RootLogError::Leaf(
            "not exactly origin, size and root lines".into(),
        ));
    }
    let account = checkpoint
        .origin
        .strip_prefix(log_name)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|account| !account.is_empty());
    if account.is_none() {
        return Err(RootLogError::Leaf(format!(
            "origin {:?} is not {log_name}/<account>",
            checkpoint.origin
        )));
    }
    Ok(checkpoint)
}

/// A root checkpoint whose signature and quorum were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignedRoot {
    pub checkpoint: Checkpoint,
    /// The witnesses whose cosignature verified, with its timestamp.
    pub cosigners: Vec<(String, u64)>,
}

/// Checks a root checkpoint note: the log's signature (origin `log_name`)
/// and valid cosignatures by at least `quorum` of `witnesses` (a witness
/// listed twice counts once; cosignatures by others are ignored).
pub fn open_cosigned(
    note: &str,
    log_name: &str,
    log: &NoteVerifier,
    witnesses: &[CosignatureVerifier],
    quorum: usize,
) -> Result<CosignedRoot, RootLogError> {
    let checkpoint = Checkpoint::open(note, log)?;
    if checkpoint.origin != log_name {
        return Err(RootLogError::Origin {
            found: checkpoint.origin,
            expected: log_name.to_string(),
        });
    }
    let mut cosigners: Vec<(String, u64)> = Vec::new();
    let mut counted: Vec<&CosignatureVerifier> = Vec::new();
    for witness in witnesses {
        if counted.contains(&witness) {
            continue;
        }
        counted.push(witness);
        if let Ok(timestamp) = witness.verify_note(note) {
            cosigners.push((witness.name().to_string(), timestamp));
        }
    }
    if cosigners.len() < quorum {
        return Err(RootLogError::Quorum {
            have: cosigners.len(),
            quorum,
            cosigners: cosigners.into_iter().map(|(name, _)| name).collect(),
        });
    }
    Ok(CosignedRoot {
        checkpoint,
        cosigners,
    })
}

/// Checks that `account` is leaf `index` of the root tree `root`, by the
/// inclusion proof `proof`.
pub fn check_covered(
    account: &Checkpoint,
    index: u64,
    proof: &[Hash],
    root: &Checkpoint,
) -> Result<(), RootLogError> {
    let not_covered = |cause| RootLogError::NotCovered {
        index,
        size: root.size,
        cause,
    };
    let too_large = || not_covered(MerkleError::InvalidInput("size too large".into()));
    let size = i64::try_from(root.size).map_err(|_| too_large())?;
    let at = i64::try_from(index).map_err(|_| too_large())?;
    check_record(
        proof,
        size,
        &root.root,
        at,
        &leaf_hash(&leaf_bytes(account)),
    )
    .map_err(not_covered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::CosignatureSigner;
    use crate::merkle::{prove_record, tree_hash, MemoryHashes};
    use crate::note::NoteSigner;

    fn account(name: &str, size: u64, fill: u8) -> Checkpoint {
        Checkpoint {
            origin: format!("auditlog/{name}"),
            size,
            root: [fill; 32],
        }
    }

    /// A root tree over `leaves`, its checkpoint signed by the log.
    fn root_tree(leaves: &[Checkpoint]) -> (MemoryHashes, Checkpoint) {
        let mut tree = MemoryHashes::default();
        for leaf in leaves {
            tree.append_leaf(leaf_hash(&leaf_bytes(leaf))).unwrap();
        }
        let root = Checkpoint {
            origin: "auditlog".into(),
            size: leaves.len() as u64,
            root: tree_hash(tree.leaf_count(), &tree).unwrap(),
        };
        (tree, root)
    }

    #[test]
    fn leaves_are_the_checkpoint_bodies_and_parse_back() {
        let acme = account("acme", 12, 9);
        assert_eq!(
            leaf_bytes(&acme),
            b"auditlog/acme\n12\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n"
        );
        assert_eq!(parse_leaf("auditlog", &leaf_bytes(&acme)).unwrap(), acme);
        for bad in [
            &b"other/acme\n12\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n"[..],
            b"auditlog\n12\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            b"auditlog/acme\n12\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\nextension\n",
            b"auditlog/acme\n12\n",
            b"\xff",
        ] {
            assert!(parse_leaf("auditlog", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_account_checkpoint_is_covered_by_its_inclusion_proof() {
        let leaves = [
            account("acme", 1, 1),
            account("globex", 4, 2),
            account("acme", 3, 3),
            account("initech", 7, 4),
            account("acme", 9, 5),
        ];
        let (tree, root) = root_tree(&leaves);
        for (index, leaf) in leaves.iter().enumerate() {
            let proof = prove_record(5, index as i64, &tree).unwrap();
            check_covered(leaf, index as u64, &proof, &root).unwrap();
            // At another index, or another checkpoint at this one: refused.
            let other = (index + 1) % leaves.len();
            assert!(check_covered(leaf, other as u64, &proof, &root).is_err());
            assert!(check_covered(&account("acme", 99, 9), index as u64, &proof, &root).is_err());
        }
    }

    #[test]
    fn the_quorum_counts_distinct_valid_cosigners() {
        let log = NoteSigner::from_seed("auditlog", [1; 32]).unwrap();
        let (_, root) = root_tree(&[account("acme", 1, 1)]);
        let witnesses: Vec<CosignatureSigner> = (0..3)
            .map(|i| CosignatureSigner::from_seed(&format!("w{i}"), [10 + i; 32]).unwrap())
            .collect();
        let verifiers: Vec<CosignatureVerifier> = witnesses.iter().map(|w| w.verifier()).collect();
        let mut note = root.sign(&log).unwrap();
        let open = |note: &str, list: &[CosignatureVerifier], quorum| {
            open_cosigned(note, "auditlog", &log.verifier(), list, quorum)
        };
        assert_eq!(open(&note, &verifiers, 0).unwrap().checkpoint, root);
        let err = open(&note, &verifiers, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the root checkpoint has 0 valid cosignature(s) of the 1 required (none by the named witnesses)"
        );
        note.push_str(&witnesses[0].cosign(&root.body(), 100).unwrap());
        note.push_str(&witnesses[2].cosign(&root.body(), 200).unwrap());
        let opened = open(&note, &verifiers, 2).unwrap();
        assert_eq!(
            opened.cosigners,
            [("w0".to_string(), 100), ("w2".to_string(), 200)]
        );
        // The same witness named twice counts once.
        let twice = [verifiers[0].clone(), verifiers[0].clone()];
        assert!(matches!(
            open(&note, &twice, 2),
            Err(RootLogError::Quorum { have: 1, .. })
        ));
        assert!(open(&note, &verifiers, 3).is_err());
        // A cosignature on another checkpoint does not count.
        let (_, other) = root_tree(&[account("acme", 2, 2)]);
        let mut forged = root.sign(&log).unwrap();
        forged.push_str(&witnesses[1].cosign(&other.body(), 5).unwrap());
        assert!(open(&forged, &verifiers, 1).is_err());
        // An account checkpoint is no root checkpoint.
        let account_note = account("acme", 1, 1).sign(&log).unwrap();
        assert!(matches!(
            open(&account_note, &verifiers, 0),
            Err(RootLogError::Origin { .. })
        ));
    }
}
