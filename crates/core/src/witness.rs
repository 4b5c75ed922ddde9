//! The C2SP witness protocol's `add-checkpoint` (<https://c2sp.org/tlog-witness>)
//! as pure functions: the request's form, and the witness's decision on it
//! given the log keys it trusts and the latest checkpoint it cosigned for
//! the origin. The witness server (the `auditlog-witness` crate) adds only
//! HTTP, the durable state and the clock; the log's submitter builds its
//! requests with [`AddCheckpoint::body`].
//!
//! A request body is `old <size>\n`, up to 63 lines of base64 consistency
//! proof hashes, an empty line, then the signed checkpoint. The checks, in
//! the order the spec lists them: origin known (else 404), a valid signature
//! by a key trusted for it (else 403), old size not above the checkpoint's
//! (else 400), old size equal to the latest cosigned size (else 409 with
//! that size as `text/x.tlog.size`), the proof valid (else 422), and at an
//! unchanged size the same root (else 409). A malformed body is a 400.

use crate::checkpoint::Checkpoint;
use crate::cosignature::CosignatureSigner;
use crate::merkle::{check_tree, Hash};
use crate::note::{split_signed, NoteError, NoteVerifier};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// At most this many consistency proof lines in a request (a proof in a
/// tree of up to 2^63 leaves never needs more).
pub const MAX_PROOF_LINES: usize = 63;
/// The content type of a 409's body: the witness's size and a newline.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// The size and root of the latest checkpoint a witness cosigned for an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WitnessedHead {
    pub size: u64,
    pub root: Hash,
}

/// Why a witness does not cosign, with the HTTP status the protocol gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the body is not an `add-checkpoint` request.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 400: the old size is larger than the checkpoint's.
    #[error("the old size {old} is larger than the checkpoint's size {size}")]
    OldSizeTooLarge { old: u64, size: u64 },
    /// 404: this witness is not configured for the origin.
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// 403: no signature by a key trusted for the origin verifies.
    #[error("the checkpoint carries no valid signature by a key trusted for {origin:?}")]
    NotSigned { origin: String },
    /// 409: the old size is not the size this witness last cosigned.
    #[error("the old size {old} is not the size this witness last cosigned ({latest})")]
    SizeConflict { old: u64, latest: u64 },
    /// 409: same size as the latest cosigned checkpoint, another root: a fork.
    #[error("a checkpoint of size {size} with another root was already cosigned")]
    RootConflict { size: u64 },
    /// 422: the consistency proof does not verify.
    #[error("the consistency proof does not verify: {0}")]
    ProofFailed(String),
}

impl Refusal {
    /// The HTTP status code of this refusal.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) | Refusal::OldSizeTooLarge { .. } => 400,
            Refusal::NotSigned { .. } => 403,
            Refusal::UnknownOrigin(_) => 404,
            Refusal::SizeConflict { .. } | Refusal::RootConflict { .. } => 409,
            Refusal::ProofFailed(_) => 422,
        }
    }

    /// The size a 409 carries in its `text/x.tlog.size` body.
    pub fn latest_size(&self) -> Option<u64> {
        match self {
            Refusal::SizeConflict { latest, .. } => Some(*latest),
            Refusal::RootConflict { size } => Some(*size),
            _ => None,
        }
    }

    /// A refusal that may be evidence of log misbehaviour (a validly signed
    /// checkpoint inconsistent with one already cosigned), worth keeping.
    pub fn is_evidence(&self) -> bool {
        matches!(self, Refusal::RootConflict { .. } | Refusal::ProofFailed(_))
    }
}

/// A parsed `add-checkpoint` request. Its signatures are not checked yet:
/// [`AddCheckpoint::evaluate`] does that with the origin's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    old_size: u64,
    proof: Vec<Hash>,
    /// The signed checkpoint as sent.
    note: String,
    /// Its text (the checkpoint body, extension lines included).
    body: String,
    checkpoint: Checkpoint,
}

/// A decimal without sign or leading zeros (`0` itself allowed).
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

impl AddCheckpoint {
    /// The request body for `old_size`, `proof` and a signed checkpoint `note`.
    pub fn body(old_size: u64, proof: &[Hash], note: &str) -> String {
        let mut body = format!("old {old_size}\n");
        for hash in proof {
            body.push_str(&BASE64.encode(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(note);
        body
    }

    /// Parses a request body; any deviation from the form is a 400.
    pub fn parse(body: &[u8]) -> Result<Self, Refusal> {
        let bad = |why: String| Refusal::Malformed(why);
        let body = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8".into()))?;
        let (first, mut rest) = body
            .split_once('\n')
            .ok_or_else(|| bad("no old size line".into()))?;
        let old_size = first
            .strip_prefix("old ")
            .and_then(parse_decimal)
            .ok_or_else(|| {
                bad(format!(
                    "the first line {first:?} is not `old <size>` with a decimal size"
                ))
            })?;
        let mut proof = Vec::new();
        loop {
            let (line, after) = rest
                .split_once('\n')
                .ok_or_else(|| bad("no empty line between the proof and the checkpoint".into()))?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad(format!(
                    "more than {MAX_PROOF_LINES} consistency proof lines"
                )));
            }
            let hash = BASE64
                .decode(line)
                .ok()
                .and_then(|hash| Hash::try_from(hash).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "consistency proof line {} is not a base64 SHA-256 hash",
                        proof.len() + 1
                    ))
                })?;
            proof.push(hash);
        }
        let note = rest;
        let (text, _) = split_signed(note)
            .map_err(|e| bad(format!("the checkpoint is not a signed note: {e}")))?;
        let checkpoint = Checkpoint::parse(text).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            old_size,
            proof,
            note: note.to_string(),
            body: text.to_string(),
            checkpoint,
        })
    }

    /// The checkpoint's origin, to find its keys and the witness's state.
    pub fn origin(&self) -> &str {
        &self.checkpoint.origin
    }

    pub fn old_size(&self) -> u64 {
        self.old_size
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The signed checkpoint as the log sent it.
    pub fn note(&self) -> &str {
        &self.note
    }

    /// The witness's decision. `keys`: the verifier keys trusted for the
    /// origin (`None` if the origin is unknown); `latest`: what this witness
    /// last cosigned for it (`None` if never). The caller holds its state
    /// for the origin from this call until it has stored the result, so
    /// that two requests never both pass against the same old state.
    pub fn evaluate(
        &self,
        keys: Option<&[NoteVerifier]>,
        latest: Option<&WitnessedHead>,
    ) -> Result<Accepted, Refusal> {
        let keys = keys.ok_or_else(|| Refusal::UnknownOrigin(self.origin().to_string()))?;
        let mut signed = false;
        for key in keys {
            match key.open(&self.note) {
                Ok(_) => signed = true,
                Err(NoteError::MalformedNote(why)) => return Err(Refusal::Malformed(why)),
                Err(_) => {}
            }
        }
        if !signed {
            return Err(Refusal::NotSigned {
                origin: self.origin().to_string(),
            });
        }
        let (old, size, root) = (self.old_size, self.checkpoint.size, self.checkpoint.root);
        if old > size {
            return Err(Refusal::OldSizeTooLarge { old, size });
        }
        let latest_size = latest.map_or(0, |head| head.size);
        if old != latest_size {
            return Err(Refusal::SizeConflict {
                old,
                latest: latest_size,
            });
        }
        let head = WitnessedHead { size, root };
        let unchanged = latest == Some(&head);
        if old == size {
            // Nothing new, or a fork: the same size with another root.
            if let Some(latest) = latest.filter(|latest| latest.root != root) {
                return Err(Refusal::RootConflict { size: latest.size });
            }
            if !self.proof.is_empty() {
                return Err(Refusal::ProofFailed(
                    "a proof between equal sizes must be empty".into(),
                ));
            }
        } else if old == 0 {
            // Every tree extends the empty one.
            if !self.proof.is_empty() {
                return Err(Refusal::ProofFailed(
                    "a proof from size 0 must be empty".into(),
                ));
            }
        } else {
            let old_root = latest.map(|head| head.root).unwrap_or_default();
            let too_large = || Refusal::Malformed("the tree size is too large".into());
            let size = i64::try_from(size).map_err(|_| too_large())?;
            let old = i64::try_from(old).map_err(|_| too_large())?;
            check_tree(&self.proof, size, &root, old, &old_root)
                .map_err(|e| Refusal::ProofFailed(e.to_string()))?;
        }
        Ok(Accepted {
            head,
            body: self.body.clone(),
            unchanged,
        })
    }
}

/// A checkpoint the witness may cosign, once it has stored [`Accepted::head`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    head: WitnessedHead,
    body: String,
    unchanged: bool,
}

impl Accepted {
    /// The new latest head for the origin, to store before cosigning.
    pub fn head(&self) -> WitnessedHead {
        self.head
    }

    /// True when the head is the one already stored (nothing to write).
    pub fn is_unchanged(&self) -> bool {
        self.unchanged
    }

    /// The response body: this witness's cosignature line at `timestamp`.
    pub fn cosign(&self, signer: &CosignatureSigner, timestamp: u64) -> Result<String, NoteError> {
        signer.cosign(&self.body, timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::CosignatureSigner;
    use crate::merkle::{leaf_hash, prove_tree, tree_hash, MemoryHashes};
    use crate::note::NoteSigner;

    const ORIGIN: &str = "example.com/log";

    fn log_key() -> NoteSigner {
        NoteSigner::from_seed(ORIGIN, [1; 32]).unwrap()
    }

    /// A tree of `n` leaves "leaf 0", "leaf 1", … (the `tag` changes them).
    fn tree(n: usize, tag: &str) -> MemoryHashes {
        let mut tree = MemoryHashes::default();
        for i in 0..n {
            tree.append_leaf(leaf_hash(format!("{tag} {i}").as_bytes()))
                .unwrap();
        }
        tree
    }

    fn checkpoint(tree: &MemoryHashes) -> Checkpoint {
        let size = tree.leaf_count();
        Checkpoint {
            origin: ORIGIN.into(),
            size: size as u64,
            root: if size == 0 {
                crate::merkle::empty_root()
            } else {
                tree_hash(size, tree).unwrap()
            },
        }
    }

    fn request(old: u64, tree: &MemoryHashes, signer: &NoteSigner) -> Vec<u8> {
        let new = tree.leaf_count();
        let proof = if old == 0 || old as i64 >= new {
            Vec::new()
        } else {
            prove_tree(new, old as i64, tree).unwrap()
        };
        let note = checkpoint(tree).sign(signer).unwrap();
        AddCheckpoint::body(old, &proof, &note).into_bytes()
    }

    fn head(tree: &MemoryHashes) -> WitnessedHead {
        let c = checkpoint(tree);
        WitnessedHead {
            size: c.size,
            root: c.root,
        }
    }

    fn decide(body: &[u8], latest: Option<&WitnessedHead>) -> Result<Accepted, Refusal> {
        let keys = [log_key().verifier()];
        let request = AddCheckpoint::parse(body)?;
        let known = (request.origin() == ORIGIN).then_some(&keys[..]);
        request.evaluate(known, latest)
    }

    #[test]
    fn the_first_checkpoint_and_consistent_ones_are_accepted_and_cosigned() {
        let t5 = tree(5, "leaf");
        let accepted = decide(&request(0, &t5, &log_key()), None).unwrap();
        assert_eq!(accepted.head(), head(&t5));
        assert!(!accepted.is_unchanged());
        let witness = CosignatureSigner::from_seed("w", [2; 32]).unwrap();
        let line = accepted.cosign(&witness, 42).unwrap();
        let body = checkpoint(&t5).body();
        assert_eq!(witness.verifier().verify_line(&body, &line).unwrap(), 42);

        for (old, new) in [(5, 6), (5, 8), (5, 13), (1, 2), (7, 8), (8, 16)] {
            let old_tree = tree(old, "leaf");
            let new_tree = tree(new, "leaf");
            let accepted = decide(
                &request(old as u64, &new_tree, &log_key()),
                Some(&head(&old_tree)),
            )
            .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
            assert_eq!(accepted.head(), head(&new_tree));
        }
        // The same checkpoint again: cosigned, nothing to store.
        let again = decide(&request(5, &t5, &log_key()), Some(&head(&t5))).unwrap();
        assert!(again.is_unchanged());
    }

    #[test]
    fn every_refusal_has_its_status() {
        let t5 = tree(5, "leaf");
        let t8 = tree(8, "leaf");
        let latest = head(&t5);
        let cases: Vec<(&str, Vec<u8>, Option<WitnessedHead>, u16)> = vec![
            (
                "unknown origin",
                {
                    let other = NoteSigner::from_seed("other.example/log", [1; 32]).unwrap();
                    let c = Checkpoint {
                        origin: "other.example/log".into(),
                        ..checkpoint(&t8)
                    };
                    AddCheckpoint::body(0, &[], &c.sign(&other).unwrap()).into_bytes()
                },
                None,
                404,
            ),
            (
                "unknown key",
                request(5, &t8, &NoteSigner::from_seed(ORIGIN, [9; 32]).unwrap()),
                Some(latest),
                403,
            ),
            (
                "bad signature",
                {
                    let body = String::from_utf8(request(5, &t8, &log_key())).unwrap();
                    let size_line = format!("\n{}\n", t8.leaf_count());
                    body.replacen(&size_line, "\n9\n", 1).into_bytes()
                },
                Some(latest),
                403,
            ),
            (
                "old size larger than new",
                request(8, &t5, &log_key()),
                Some(head(&t8)),
                400,
            ),
            (
                "old size not the witness's",
                request(4, &t8, &log_key()),
                Some(latest),
                409,
            ),
            (
                "old size 0 after a cosignature",
                request(0, &t8, &log_key()),
                Some(latest),
                409,
            ),
            (
                "old size from a witness that saw nothing",
                request(5, &t8, &log_key()),
                None,
                409,
            ),
            (
                "a fork at the same size",
                request(5, &tree(5, "forked"), &log_key()),
                Some(latest),
                409,
            ),
            (
                "a proof from another tree",
                {
                    let forked = tree(8, "forked");
                    let note = checkpoint(&t8).sign(&log_key()).unwrap();
                    let proof = prove_tree(8, 5, &forked).unwrap();
                    AddCheckpoint::body(5, &proof, &note).into_bytes()
                },
                Some(latest),
                422,
            ),
            (
                "a fork that grew",
                request(5, &tree(8, "forked"), &log_key()),
                Some(latest),
                422,
            ),
            (
                "a proof from size 0",
                {
                    let note = checkpoint(&t8).sign(&log_key()).unwrap();
                    AddCheckpoint::body(0, &[[0; 32]], &note).into_bytes()
                },
                None,
                422,
            ),
            (
                "a proof between equal sizes",
                {
                    let note = checkpoint(&t5).sign(&log_key()).unwrap();
                    AddCheckpoint::body(5, &[[0; 32]], &note).into_bytes()
                },
                Some(latest),
                422,
            ),
            (
                "a truncated proof",
                {
                    let note = checkpoint(&t8).sign(&log_key()).unwrap();
                    let mut proof = prove_tree(8, 5, &t8).unwrap();
                    proof.pop();
                    AddCheckpoint::body(5, &proof, &note).into_bytes()
                },
                Some(latest),
                422,
            ),
        ];
        for (name, body, latest, status) in cases {
            let refusal = decide(&body, latest.as_ref()).expect_err(name);
            assert_eq!(refusal.status(), status, "{name}: {refusal}");
            if status == 409 {
                assert_eq!(
                    refusal.latest_size(),
                    Some(latest.map_or(0, |h| h.size)),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn malformed_bodies_are_400() {
        let t8 = tree(8, "leaf");
        let good = String::from_utf8(request(5, &t8, &log_key())).unwrap();
        let note = checkpoint(&t8).sign(&log_key()).unwrap();
        let hash_line = format!("{}\n", BASE64.encode([7u8; 32]));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "64 proof lines",
                format!("old 5\n{}\n{note}", hash_line.repeat(64)).into_bytes(),
            ),
            (
                "bad base64",
                good.replacen("old 5\n", "old 5\n!!!notbase64\n", 1)
                    .into_bytes(),
            ),
            (
                "a short hash",
                good.replacen("old 5\n", "old 5\nAAAA\n", 1).into_bytes(),
            ),
            ("no old line", good.replacen("old 5\n", "", 1).into_bytes()),
            (
                "a leading zero",
                good.replacen("old 5\n", "old 05\n", 1).into_bytes(),
            ),
            (
                "a negative size",
                good.replacen("old 5\n", "old -5\n", 1).into_bytes(),
            ),
            (
                "two spaces",
                good.replacen("old 5\n", "old  5\n", 1).into_bytes(),
            ),
            (
                "no empty line",
                format!("old 0\n{note}").replace("\n\n", "\n").into_bytes(),
            ),
            ("no checkpoint", b"old 0\n\n".to_vec()),
            (
                "an unsigned checkpoint",
                format!("old 0\n\n{}", checkpoint(&t8).body()).into_bytes(),
            ),
            (
                "a checkpoint without root",
                format!(
                    "old 0\n\n{}",
                    log_key().sign(&format!("{ORIGIN}\n8\n")).unwrap()
                )
                .into_bytes(),
            ),
            ("not UTF-8", vec![b'o', b'l', b'd', b' ', 0xff, b'\n']),
            ("empty", Vec::new()),
            ("CRLF", good.replace('\n', "\r\n").into_bytes()),
        ];
        for (name, body) in cases {
            let refusal = decide(&body, None).expect_err(name);
            assert_eq!(refusal.status(), 400, "{name}: {refusal}");
            assert!(
                matches!(refusal, Refusal::Malformed(_)),
                "{name}: {refusal}"
            );
        }
        // 63 lines is the limit, not a malformation (the proof is just wrong).
        let at_limit = format!("old 5\n{}\n{note}", hash_line.repeat(63));
        let latest = head(&tree(5, "leaf"));
        assert_eq!(
            decide(at_limit.as_bytes(), Some(&latest))
                .unwrap_err()
                .status(),
            422
        );
    }

    #[test]
    fn round_trips_and_keeps_extra_signatures() {
        let t8 = tree(8, "leaf");
        let proof = prove_tree(8, 5, &t8).unwrap();
        let mut note = checkpoint(&t8).sign(&log_key()).unwrap();
        // A second signature by a key the witness does not know is ignored.
        let other = NoteSigner::from_seed("someone-else", [3; 32]).unwrap();
        let extra = other.sign(&checkpoint(&t8).body()).unwrap();
        note.push_str(extra.rsplit("\n\n").next().unwrap());
        let parsed =
            AddCheckpoint::parse(AddCheckpoint::body(5, &proof, &note).as_bytes()).unwrap();
        assert_eq!(parsed.old_size(), 5);
        assert_eq!(parsed.note(), note);
        assert_eq!(parsed.checkpoint(), &checkpoint(&t8));
        assert!(decide(
            AddCheckpoint::body(5, &proof, &note).as_bytes(),
            Some(&head(&tree(5, "leaf")))
        )
        .is_ok());
    }
}
