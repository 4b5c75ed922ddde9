//! Checking a receipt offline: the event's leaf bytes hash to the receipt's
//! hash, the inclusion path (RFC 9162) leads from that leaf to the root of a
//! checkpoint (C2SP tlog-checkpoint), and the checkpoint carries a valid
//! Ed25519 signature (C2SP signed-note) by the pinned verifier key. Written
//! here rather than shared with the server, so that this crate needs none of
//! the server's crates and a reviewer can read the whole check in one file.

use crate::wire::{InclusionProof, Receipt};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

type Hash = [u8; 32];

/// The algorithm byte of Ed25519 keys in C2SP signed notes.
const ALG_ED25519: u8 = 0x01;

/// Why a receipt did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed verifier key: {0}")]
    BadKey(String),
    #[error("the proof could not be fetched: {0}")]
    Fetch(String),
    #[error("malformed proof: {0}")]
    Malformed(String),
    #[error("the checkpoint is not signed by the pinned key {0}")]
    Signature(String),
    #[error("the proof does not match: {0}")]
    Mismatch(String),
}

/// A pinned checkpoint verifier key, `<name>+<hex key id>+<base64(0x01 ‖ key)>`
/// (what `GET /api/v1/public-key` serves; pin it out of band).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl VerifierKey {
    pub fn parse(text: &str) -> Result<Self, VerifyError> {
        let bad = |why: &str| VerifyError::BadKey(why.to_string());
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected <name>+<hex key id>+<base64 key>"));
        };
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(bad("the name must be non-empty, without spaces"));
        }
        let id = u32::from_str_radix(id, 16)
            .ok()
            .filter(|_| id.len() == 8)
            .ok_or_else(|| bad("the key id must be 8 hex digits"))?
            .to_be_bytes();
        let key = BASE64
            .decode(key)
            .map_err(|_| bad("the key is not base64"))?;
        let Some((&ALG_ED25519, key)) = key.split_first() else {
            return Err(bad("not an Ed25519 key (algorithm byte 0x01)"));
        };
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("an Ed25519 public key has 32 bytes"))?;
        if key_id(name, &key) != id {
            return Err(bad("the key id does not match the name and key"));
        }
        let key = VerifyingKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 point"))?;
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks a signed note's signature by this key and returns its text.
    fn open<'n>(&self, note: &'n str) -> Result<&'n str, VerifyError> {
        let split = note.rfind("\n\n").ok_or_else(|| {
            VerifyError::Malformed("the checkpoint has no signature lines".into())
        })?;
        let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
        for line in signatures.lines() {
            let Some((name, blob)) = line
                .strip_prefix("\u{2014} ")
                .and_then(|l| l.split_once(' '))
            else {
                continue;
            };
            let Ok(blob) = BASE64.decode(blob) else {
                continue;
            };
            if name != self.name || blob.len() != 4 + 64 || blob[..4] != self.id {
                continue;
            }
            let signature = Signature::from_slice(&blob[4..])
                .map_err(|_| VerifyError::Malformed("a signature of the wrong length".into()))?;
            return match self.key.verify(text.as_bytes(), &signature) {
                Ok(()) => Ok(text),
                Err(_) => Err(VerifyError::Signature(format!(
                    "{}: its signature does not verify (the checkpoint was altered)",
                    self.name
                ))),
            };
        }
        Err(VerifyError::Signature(format!(
            "{}: the checkpoint carries no signature by it",
            self.name
        )))
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = VerifyError;
    fn from_str(text: &str) -> Result<Self, VerifyError> {
        Self::parse(text)
    }
}

/// The C2SP key id: the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ key).
fn key_id(name: &str, key: &[u8; 32]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([ALG_ED25519])
        .chain_update(key)
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// What a verified receipt proves: the event's exact leaf bytes are entry
/// `seq − 1` of the tree that the signed checkpoint describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    /// The checkpoint's origin, `<log name>/<account>`.
    pub origin: String,
    pub tree_size: u64,
    /// The signed root hash.
    pub root: [u8; 32],
    /// The stored event's canonical JSON, exactly as hashed.
    pub leaf: Vec<u8>,
    /// The signed checkpoint, to keep as evidence.
    pub checkpoint: String,
}

fn leaf_hash(leaf: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0])
        .chain_update(leaf)
        .finalize()
        .into()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([1])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The root that an inclusion path leads to (RFC 9162 2.1.3.2), or `None`
/// when the path has the wrong length for `index` in a tree of `size`.
fn root_from_path(index: u64, size: u64, leaf: Hash, path: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut root = leaf;
    for sibling in path {
        if snode == 0 {
            return None;
        }
        if fnode & 1 == 1 || fnode == snode {
            root = node_hash(sibling, &root);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            root = node_hash(&root, sibling);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    (snode == 0).then_some(root)
}

fn decode_hash(text: &str, what: &str) -> Result<Hash, VerifyError> {
    BASE64
        .decode(text)
        .ok()
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| VerifyError::Malformed(format!("{what} is not a base64 SHA-256 hash")))
}

/// Parses a checkpoint body: origin, size and base64 root, one per line.
fn parse_checkpoint(text: &str) -> Result<(String, u64, Hash), VerifyError> {
    let mut lines = text.split('\n');
    let bad = |why: &str| VerifyError::Malformed(format!("checkpoint: {why}"));
    let origin = lines
        .next()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| bad("no origin"))?;
    let size = lines
        .next()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| bad("no tree size"))?;
    let root = decode_hash(lines.next().ok_or_else(|| bad("no root"))?, "the root")?;
    Ok((origin.to_string(), size, root))
}

/// The whole check of one receipt against its proof and the pinned key.
pub(crate) fn check(
    receipt: &Receipt,
    proof: &InclusionProof,
    key: &VerifierKey,
) -> Result<VerifiedReceipt, VerifyError> {
    let leaf = BASE64
        .decode(&proof.leaf)
        .map_err(|_| VerifyError::Malformed("the leaf is not base64".into()))?;
    let hash = leaf_hash(&leaf);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    if hex != receipt.hash {
        return Err(VerifyError::Mismatch(format!(
            "the leaf hashes to {hex}, the receipt says {}",
            receipt.hash
        )));
    }
    let stored: serde_json::Value = serde_json::from_slice(&leaf)
        .map_err(|_| VerifyError::Malformed("the leaf is not JSON".into()))?;
    if stored["id"] != receipt.id.as_str() || stored["seq"] != receipt.seq {
        return Err(VerifyError::Mismatch(format!(
            "the leaf is event {} at seq {}, the receipt names {} at seq {}",
            stored["id"], stored["seq"], receipt.id, receipt.seq
        )));
    }
    if proof.leaf_index + 1 != receipt.seq {
        return Err(VerifyError::Mismatch(format!(
            "the proof is for leaf index {}, seq {} is index {}",
            proof.leaf_index,
            receipt.seq,
            receipt.seq.saturating_sub(1)
        )));
    }
    let (origin, size, root) = parse_checkpoint(key.open(&proof.checkpoint)?)?;
    if size != proof.tree_size {
        return Err(VerifyError::Mismatch(format!(
            "the proof is for a tree of {} entries, the checkpoint has {size}",
            proof.tree_size
        )));
    }
    let path = proof
        .hashes
        .iter()
        .map(|h| decode_hash(h, "a proof hash"))
        .collect::<Result<Vec<_>, _>>()?;
    match root_from_path(proof.leaf_index, size, hash, &path) {
        Some(computed) if computed == root => Ok(VerifiedReceipt {
            origin,
            tree_size: size,
            root,
            leaf,
            checkpoint: proof.checkpoint.clone(),
        }),
        Some(_) => Err(VerifyError::Mismatch(
            "the inclusion path does not lead to the signed root".into(),
        )),
        None => Err(VerifyError::Mismatch(format!(
            "an inclusion path of {} hashes cannot place index {} in a tree of {size}",
            path.len(),
            proof.leaf_index
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    /// RFC 9162's definitions, recursively: the reference the iterative
    /// check is compared with.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = n.next_power_of_two() / 2;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    #[test]
    fn every_path_of_small_trees_leads_to_the_root_and_no_altered_one_does() {
        let leaves: Vec<Hash> = (0..33u8).map(|i| leaf_hash(&[i])).collect();
        for size in 1..=leaves.len() {
            let tree = &leaves[..size];
            let root = mth(tree);
            for index in 0..size {
                let proof = path(index, tree);
                let (i, s) = (index as u64, size as u64);
                assert_eq!(
                    root_from_path(i, s, tree[index], &proof),
                    Some(root),
                    "{index}/{size}"
                );
                let other = leaves[(index + 1) % leaves.len()];
                assert_ne!(root_from_path(i, s, other, &proof), Some(root));
                if let Some((first, rest)) = proof.split_first() {
                    let mut flipped = *first;
                    flipped[0] ^= 1;
                    let altered: Vec<Hash> = std::iter::once(flipped)
                        .chain(rest.iter().copied())
                        .collect();
                    assert_ne!(root_from_path(i, s, tree[index], &altered), Some(root));
                    assert_ne!(root_from_path(i, s, tree[index], rest), Some(root));
                }
                assert_ne!(root_from_path(i, s + 40, tree[index], &proof), Some(root));
            }
        }
    }

    fn signer() -> (SigningKey, String) {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key().to_bytes();
        let id = key_id("test.example", &public);
        let mut blob = vec![ALG_ED25519];
        blob.extend_from_slice(&public);
        let text = format!("test.example+{}+{}", hex(&id), BASE64.encode(blob));
        (key, text)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn sign(key: &SigningKey, text: &str) -> String {
        let id = key_id("test.example", &key.verifying_key().to_bytes());
        let mut blob = id.to_vec();
        blob.extend_from_slice(&key.sign(text.as_bytes()).to_bytes());
        format!("{text}\n\u{2014} test.example {}\n", BASE64.encode(blob))
    }

    /// A three-event log, its proof for the event at seq 2, and the key.
    fn fixture() -> (Receipt, InclusionProof, VerifierKey) {
        let leaves: Vec<Vec<u8>> = (1..=3)
            .map(|seq| format!(r#"{{"id":"e{seq}","seq":{seq}}}"#).into_bytes())
            .collect();
        let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
        let (key, text) = signer();
        let note = sign(
            &key,
            &format!("test.example/acme\n3\n{}\n", BASE64.encode(mth(&hashes))),
        );
        let receipt = Receipt {
            id: "e2".into(),
            seq: 2,
            hash: hex(&hashes[1]),
            created: true,
        };
        let proof = InclusionProof {
            leaf: BASE64.encode(&leaves[1]),
            leaf_index: 1,
            tree_size: 3,
            hashes: path(1, &hashes).iter().map(|h| BASE64.encode(h)).collect(),
            checkpoint: note,
        };
        (receipt, proof, VerifierKey::parse(&text).unwrap())
    }

    #[test]
    fn a_good_receipt_verifies_and_each_kind_of_tampering_is_named() {
        let (receipt, proof, key) = fixture();
        let verified = check(&receipt, &proof, &key).unwrap();
        assert_eq!(verified.origin, "test.example/acme");
        assert_eq!(verified.tree_size, 3);
        assert_eq!(verified.leaf, br#"{"id":"e2","seq":2}"#);

        let mut wrong_hash = receipt.clone();
        wrong_hash.hash = "00".repeat(32);
        assert!(matches!(
            check(&wrong_hash, &proof, &key),
            Err(VerifyError::Mismatch(_))
        ));

        let mut altered_note = proof.clone();
        altered_note.checkpoint = altered_note.checkpoint.replacen("\n3\n", "\n4\n", 1);
        assert!(matches!(
            check(&receipt, &altered_note, &key),
            Err(VerifyError::Signature(_))
        ));

        let other_key = SigningKey::from_bytes(&[8; 32]);
        let mut foreign = proof.clone();
        let body = &proof.checkpoint[..proof.checkpoint.find("\n\n").unwrap() + 1];
        foreign.checkpoint = sign(&other_key, body);
        assert!(matches!(
            check(&receipt, &foreign, &key),
            Err(VerifyError::Signature(_))
        ));

        let mut bad_path = proof.clone();
        bad_path.hashes.reverse();
        assert!(matches!(
            check(&receipt, &bad_path, &key),
            Err(VerifyError::Mismatch(_))
        ));

        let mut other_index = proof.clone();
        other_index.leaf_index = 0;
        assert!(matches!(
            check(&receipt, &other_index, &key),
            Err(VerifyError::Mismatch(_))
        ));

        // A checkpoint for a tree of another size than the proof's.
        let mut resized = proof.clone();
        resized.tree_size = 4;
        assert!(matches!(
            check(&receipt, &resized, &key),
            Err(VerifyError::Mismatch(_))
        ));
    }

    #[test]
    fn parses_verifier_keys_and_refuses_bad_ones() {
        let (_, text) = signer();
        assert_eq!(VerifierKey::parse(&text).unwrap().name(), "test.example");
        let (name, rest) = text.split_once('+').unwrap();
        for bad in [
            "nokey".to_string(),
            format!("other+{rest}"),
            format!("{name}+0000000g+AQ=="),
            format!("{name}+{}", rest.replacen("+", "+AQ", 1)),
        ] {
            assert!(
                matches!(VerifierKey::parse(&bad), Err(VerifyError::BadKey(_))),
                "{bad}"
            );
        }
    }
}
