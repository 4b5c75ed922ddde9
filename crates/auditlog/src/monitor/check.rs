//! The checks themselves, without I/O: a signed checkpoint against the
//! pinned key and origin, how two verified checkpoints relate, a
//! consistency proof between them and an event's inclusion proof. All
//! hashing and proof arithmetic is core's (`note`, `checkpoint`, `merkle`),
//! the same code the server proves with.

use super::alarm::{Alarm, AlarmKind};
use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::merkle::{self, Hash};
use auditlog_core::note::NoteVerifier;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// A checkpoint whose signature by the pinned key and whose origin were
/// checked, with the signed note it came from (kept as evidence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub checkpoint: Checkpoint,
    pub note: String,
}

impl Verified {
    pub fn size(&self) -> u64 {
        self.checkpoint.size
    }

    /// `size N root <base64>`, for reports.
    pub fn describe(&self) -> String {
        format!(
            "size {} root {}",
            self.checkpoint.size,
            BASE64.encode(self.checkpoint.root)
        )
    }
}

/// Checks `note` (from `source`, for the report) against the pinned keys
/// (several after a key rotation: any one of them may have signed it) and
/// the account's origin.
pub fn open(
    note: &str,
    verifiers: &[NoteVerifier],
    origin: &str,
    source: &str,
) -> Result<Verified, Alarm> {
    let mut opened = None;
    let mut first_error = None;
    for verifier in verifiers {
        match Checkpoint::open(note, verifier) {
            Ok(checkpoint) => {
                opened = Some(checkpoint);
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let checkpoint = opened.ok_or_else(|| {
        let keys: Vec<String> = verifiers.iter().map(NoteVerifier::to_text).collect();
        let why = first_error.map(|e| e.to_string()).unwrap_or_default();
        Alarm::new(
            AlarmKind::BadSignature,
            format!(
                "the {source} does not verify with --vkey {}: {why} (is --vkey this log's key?)",
                keys.join(" or ")
            ),
        )
        .with(source, note)
    })?;
    if checkpoint.origin != origin {
        return Err(Alarm::new(
            AlarmKind::BadSignature,
            format!(
                "the {source} is for origin {:?}, not {origin:?} (check --account)",
                checkpoint.origin
            ),
        )
        .with(source, note));
    }
    Ok(Verified {
        checkpoint,
        note: note.to_string(),
    })
}

/// How a newly served checkpoint relates to one verified before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The same tree.
    Same,
    /// Larger: a consistency proof from `from` to `to` must show it extends it.
    Grown { from: u64, to: u64 },
}

/// Compares the remembered checkpoint with the served one: smaller is a
/// rollback, the same size with another root a fork.
pub fn step(remembered: &Verified, served: &Verified) -> Result<Step, Alarm> {
    let (old, new) = (&remembered.checkpoint, &served.checkpoint);
    let both = |alarm: Alarm| {
        alarm
            .with(
                format!("remembered checkpoint ({})", remembered.describe()),
                &remembered.note,
            )
            .with(
                format!("served checkpoint ({})", served.describe()),
                &served.note,
            )
    };
    if new.size < old.size {
        return Err(both(Alarm::new(
            AlarmKind::Rollback,
            format!(
                "the log now serves size {}, smaller than size {} it signed before",
                new.size, old.size
            ),
        )));
    }
    if new.size == old.size {
        return if new.root == old.root {
            Ok(Step::Same)
        } else {
            Err(both(Alarm::new(
                AlarmKind::Fork,
                format!(
                    "two checkpoints of size {} with different roots: {} and {}",
                    old.size,
                    BASE64.encode(old.root),
                    BASE64.encode(new.root)
                ),
            )))
        };
    }
    Ok(Step::Grown {
        from: old.size,
        to: new.size,
    })
}

/// Checks the consistency proof `hashes` (base64, as served) that `larger`
/// extends `smaller`.
pub fn consistency(smaller: &Verified, larger: &Verified, hashes: &[String]) -> Result<(), Alarm> {
    let (old, new) = (&smaller.checkpoint, &larger.checkpoint);
    let bad = |why: String| {
        Alarm::new(
            AlarmKind::BadProof,
            format!(
                "size {} does not provably extend size {}: {why}",
                new.size, old.size
            ),
        )
        .with(
            format!("smaller checkpoint ({})", smaller.describe()),
            &smaller.note,
        )
        .with(
            format!("larger checkpoint ({})", larger.describe()),
            &larger.note,
        )
    };
    if old.size == 0 {
        // The empty tree is a prefix of every tree; only its root is fixed.
        return if old.root == merkle::empty_root() {
            Ok(())
        } else {
            Err(bad("the empty tree has another root".into()))
        };
    }
    let proof = decode_hashes(hashes).map_err(bad)?;
    let (to, from) = sizes(new.size, old.size).map_err(bad)?;
    merkle::check_tree(&proof, to, &new.root, from, &old.root)
        .map_err(|e| bad(format!("the consistency proof fails: {e}")))
}

/// An event's inclusion proof, as `GET /api/v1/events/{id}/proof` serves it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct InclusionProof {
    pub leaf: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub hashes: Vec<String>,
    pub checkpoint: String,
}

/// Checks that `proof` shows the event `id` in the tree of `checkpoint`
/// (already opened from `proof.checkpoint`): the leaf is that event's, and
/// the path leads from its hash to the signed root.
pub fn inclusion(id: &str, proof: &InclusionProof, checkpoint: &Verified) -> Result<(), Alarm> {
    let bad = |why: String| {
        Alarm::new(
            AlarmKind::BadProof,
            format!("the inclusion proof of event {id:?} fails: {why}"),
        )
        .with(
            format!("its checkpoint ({})", checkpoint.describe()),
            &checkpoint.note,
        )
    };
    if proof.tree_size != checkpoint.size() {
        return Err(bad(format!(
            "it is for size {} but its checkpoint has size {}",
            proof.tree_size,
            checkpoint.size()
        )));
    }
    let leaf = BASE64
        .decode(&proof.leaf)
        .map_err(|_| bad("the leaf is not base64".into()))?;
    // The leaf must be this event's, or a proof of any other event would do.
    let leaf_id = serde_json::from_slice::<serde_json::Value>(&leaf)
        .ok()
        .and_then(|leaf| leaf.get("id").and_then(|v| v.as_str()).map(str::to_string));
    if leaf_id.as_deref() != Some(id) {
        return Err(bad(format!("the leaf is event {leaf_id:?}, not {id:?}")));
    }
    let path = decode_hashes(&proof.hashes).map_err(bad)?;
    let (size, index) = sizes(proof.tree_size, proof.leaf_index).map_err(bad)?;
    merkle::check_record(
        &path,
        size,
        &checkpoint.checkpoint.root,
        index,
        &merkle::leaf_hash(&leaf),
    )
    .map_err(|e| bad(format!("leaf {index} of size {size}: {e}")))
}

fn decode_hashes(hashes: &[String]) -> Result<Vec<Hash>, String> {
    hashes
        .iter()
        .map(|h| {
            BASE64
                .decode(h)
                .ok()
                .and_then(|h| Hash::try_from(h).ok())
                .ok_or_else(|| format!("{h:?} is not a base64 SHA-256 hash"))
        })
        .collect()
}

/// Tree sizes as core's merkle functions take them.
fn sizes(a: u64, b: u64) -> Result<(i64, i64), String> {
    let convert = |n: u64| i64::try_from(n).map_err(|_| format!("size {n} is too large"));
    Ok((convert(a)?, convert(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::merkle::MemoryHashes;
    use auditlog_core::note::NoteSigner;

    const ORIGIN: &str = "auditlog/acme";

    fn tree(leaves: usize) -> MemoryHashes {
        let mut hashes = MemoryHashes(Vec::new());
        for i in 0..leaves {
            let leaf = format!(r#"{{"id":"e{i}"}}"#);
            hashes
                .append_leaf(merkle::leaf_hash(leaf.as_bytes()))
                .unwrap();
        }
        hashes
    }

    fn signed(signer: &NoteSigner, size: u64, root: Hash) -> Verified {
        let checkpoint = Checkpoint {
            origin: ORIGIN.into(),
            size,
            root,
        };
        let note = checkpoint.sign(signer).unwrap();
        open(&note, &[signer.verifier()], ORIGIN, "test").unwrap()
    }

    fn at(signer: &NoteSigner, hashes: &MemoryHashes, size: i64) -> Verified {
        signed(
            signer,
            size as u64,
            merkle::tree_hash(size, hashes).unwrap(),
        )
    }

    fn encoded(hashes: &[Hash]) -> Vec<String> {
        hashes.iter().map(|h| BASE64.encode(h)).collect()
    }

    #[test]
    fn growth_with_a_good_proof_passes_and_a_bad_proof_is_caught() {
        let signer = NoteSigner::from_seed("auditlog", [1; 32]).unwrap();
        let hashes = tree(7);
        let (old, new) = (at(&signer, &hashes, 3), at(&signer, &hashes, 7));
        assert_eq!(step(&old, &new).unwrap(), Step::Grown { from: 3, to: 7 });
        assert_eq!(step(&new, &new).unwrap(), Step::Same);
        let proof = merkle::prove_tree(7, 3, &hashes).unwrap();
        consistency(&old, &new, &encoded(&proof)).unwrap();
        let mut wrong = proof.clone();
        wrong[0][0] ^= 1;
        let alarm = consistency(&old, &new, &encoded(&wrong)).unwrap_err();
        assert_eq!(alarm.kind, AlarmKind::BadProof);
        assert_eq!(alarm.evidence.len(), 2);
    }

    #[test]
    fn rollback_and_fork_name_both_checkpoints() {
        let signer = NoteSigner::from_seed("auditlog", [1; 32]).unwrap();
        let hashes = tree(5);
        let (small, big) = (at(&signer, &hashes, 2), at(&signer, &hashes, 5));
        let rollback = step(&big, &small).unwrap_err();
        assert_eq!(rollback.kind, AlarmKind::Rollback);
        assert!(rollback.summary.contains("size 2") && rollback.summary.contains("size 5"));
        let forked = signed(&signer, 5, [7; 32]);
        let fork = step(&big, &forked).unwrap_err();
        assert_eq!(fork.kind, AlarmKind::Fork);
        assert_eq!(fork.evidence[0].note, big.note);
        assert_eq!(fork.evidence[1].note, forked.note);
    }

    #[test]
    fn another_key_or_origin_is_refused() {
        let signer = NoteSigner::from_seed("auditlog", [1; 32]).unwrap();
        let other = NoteSigner::from_seed("auditlog", [2; 32]).unwrap();
        let note = Checkpoint {
            origin: ORIGIN.into(),
            size: 1,
            root: [0; 32],
        }
        .sign(&signer)
        .unwrap();
        let alarm = open(&note, &[other.verifier()], ORIGIN, "served checkpoint").unwrap_err();
        assert_eq!(alarm.kind, AlarmKind::BadSignature);
        let alarm = open(&note, &[signer.verifier()], "auditlog/other", "x").unwrap_err();
        assert!(alarm.summary.contains("auditlog/other"), "{alarm}");
    }

    #[test]
    fn inclusion_checks_the_path_and_the_event_id() {
        let signer = NoteSigner::from_seed("auditlog", [1; 32]).unwrap();
        let hashes = tree(6);
        let checkpoint = at(&signer, &hashes, 6);
        let path = merkle::prove_record(6, 4, &hashes).unwrap();
        let proof = InclusionProof {
            leaf: BASE64.encode(r#"{"id":"e4"}"#),
            leaf_index: 4,
            tree_size: 6,
            hashes: encoded(&path),
            checkpoint: checkpoint.note.clone(),
        };
        inclusion("e4", &proof, &checkpoint).unwrap();
        let alarm = inclusion("e5", &proof, &checkpoint).unwrap_err();
        assert!(alarm.summary.contains("not \"e5\""), "{alarm}");
        let moved = InclusionProof {
            leaf_index: 3,
            ..proof.clone()
        };
        assert!(inclusion("e4", &moved, &checkpoint).is_err());
    }
}
