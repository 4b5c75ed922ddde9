//! Verifiable export bundles: a tar archive that anyone holding the log's
//! verifier key can check offline, without trusting the server that made it.
//!
//! | file | holds |
//! |---|---|
//! | `entries.jsonl` | the exact leaf bytes of each exported event, one per line |
//! | `personal.jsonl` | per entry, same order: the personal values stored beside a version 2 leaf (`leaf_v2::personal`: the plain values and the salts that open its commitments), `null` for version 1 |
//! | `proofs.jsonl` | per entry, same order: `{"leaf_index", "hashes": [base64…]}` |
//! | `checkpoint` | the signed checkpoint of the tree size the proofs are for |
//! | `root-proof.json` | `{"leaf_index", "tree_size", "hashes": [base64…]}`: the inclusion proof of `checkpoint` (its body is the leaf) in the root log, when a root checkpoint covers it |
//! | `root-checkpoint` | that root checkpoint (origin `<log name>`), signed by the log, followed by the witnesses' cosignature lines |
//! | `manifest.json` | format, account, origin, tree size, filters, entry count, `root` (`{"tree_size", "leaf_index"}` or `null`), sha256 and size of every file above but `root-checkpoint` |
//! | `manifest.sig` | a signed note binding the manifest's sha256, so that dropping an entry (and fixing the counts) is detected too |
//!
//! Leaf bytes are canonical JSON, which never holds a raw newline, so one
//! line is exactly one leaf (and so are personal values).
//!
//! `root-checkpoint` is the one file the manifest does not hash: its text is
//! bound by the log's own signature and its size by the manifest, and each
//! cosignature is a signature of its own, so cosignatures gathered later
//! (`GET /api/v1/root-checkpoint?size=N`) can be added to a bundle.
//!
//! Format `auditlog-bundle/2` added `personal.jsonl`, format
//! `auditlog-bundle/3` the root files (SPEC "Witnesses"); bundles of formats
//! 1 (version 1 leaves only) and 2 keep verifying, and show no root.

use crate::checkpoint::Checkpoint;
use crate::cosignature::CosignatureVerifier;
use crate::merkle::{self, Hash};
use crate::note::{NoteError, NoteSigner, NoteVerifier};
use crate::record::{RecordError, StoredRecord};
use crate::root_log::{self, RootLogError};
use crate::tar::{self, TarError};
use crate::{leaf, EventFilter, Taxonomy};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const FORMAT: &str = "auditlog-bundle/3";
/// Bundles written before leaf version 2: no `personal.jsonl`.
const FORMAT_1: &str = "auditlog-bundle/1";
/// Bundles written before the root log: no root files.
const FORMAT_2: &str = "auditlog-bundle/2";
const ROOT_PROOF: &str = "root-proof.json";
const ROOT_CHECKPOINT: &str = "root-checkpoint";
/// The first line of the manifest signature's text; no checkpoint starts so.
const MANIFEST_NOTE_HEADER: &str = "auditlog export bundle manifest";

/// One exported event with its inclusion proof.
pub struct BundleEntry {
    pub leaf_bytes: Vec<u8>,
    /// The personal values beside a version 2 leaf; `None` for version 1.
    pub personal: Option<Vec<u8>>,
    pub leaf_index: u64,
    pub proof: Vec<Hash>,
}

/// Everything a bundle states besides its entries.
pub struct BundleHeader<'a> {
    pub account: &'a str,
    /// The signed checkpoint note the proofs lead to.
    pub checkpoint_note: &'a str,
    pub checkpoint: &'a Checkpoint,
    pub filters: Value,
    /// Seconds since the epoch, for the tar headers.
    pub created_unix: u64,
    /// The checkpoint's inclusion in a root checkpoint, when one covers it.
    pub root: Option<BundleRoot<'a>>,
}

/// The account checkpoint's place in the root log (SPEC "Witnesses").
pub struct BundleRoot<'a> {
    /// The root checkpoint note signed by the log, with the cosignature
    /// lines after its signature.
    pub note: &'a str,
    pub tree_size: u64,
    /// The account checkpoint's leaf index in the root log.
    pub leaf_index: u64,
    pub hashes: &'a [Hash],
}

/// What a verifier demands of the root checkpoint: valid cosignatures by at
/// least `quorum` of `witnesses` (pinned out of band).
pub struct WitnessPolicy<'a> {
    pub witnesses: &'a [CosignatureVerifier],
    pub quorum: usize,
}

/// Why a bundle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot encode the manifest")]
    Manifest(#[source] serde_json::Error),
    #[error("cannot sign the manifest")]
    Sign(#[source] NoteError),
    #[error("cannot write the archive")]
    Archive(#[source] TarError),
}

/// Why a bundle does not verify: what is wrong and, for an entry, which one
/// (1-based line and seq).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the archive cannot be read")]
    Archive(#[source] TarError),
    #[error("the bundle has no {0}")]
    Missing(String),
    #[error("{0} is not UTF-8")]
    NotUtf8(String),
    #[error("the checkpoint does not verify")]
    Checkpoint(#[source] NoteError),
    #[error("the root checkpoint in root-checkpoint does not verify")]
    RootCheckpoint(#[source] RootLogError),
    #[error("the account checkpoint is not in the root log as root-proof.json says (root-proof.json or root-checkpoint was altered)")]
    RootProof(#[source] RootLogError),
    #[error("too few of the named witnesses cosigned the root checkpoint of size {size} that covers the bundle (without a valid cosignature: {})", missing.join(", "))]
    Quorum {
        size: u64,
        missing: Vec<String>,
        #[source]
        cause: RootLogError,
    },
    #[error("the bundle carries no root checkpoint, so no witness cosignature: {0}")]
    NoRoot(String),
    #[error("manifest.json is not JSON")]
    ManifestNotJson(#[source] serde_json::Error),
    #[error("entry {line} cannot be read")]
    Entry {
        line: usize,
        #[source]
        cause: RecordError,
    },
    #[error("proof {line} is not JSON")]
    ProofNotJson {
        line: usize,
        #[source]
        cause: serde_json::Error,
    },
    #[error("manifest.sig does not verify")]
    ManifestSignature(#[source] NoteError),
    /// A finding with no underlying error: what differs from what was signed.
    #[error("{0}")]
    Altered(String),
}

fn sha256_hex(bytes: &[u8]) -> String {
    leaf::to_hex(&Sha256::digest(bytes))
}

/// Builds the archive. `signer` signs the manifest with the log's key.
pub fn build(
    header: &BundleHeader<'_>,
    entries: &[BundleEntry],
    signer: &NoteSigner,
) -> Result<Vec<u8>, BuildError> {
    let mut entries_file = Vec::new();
    let mut personal_file = Vec::new();
    let mut proofs_file = Vec::new();
    for entry in entries {
        entries_file.extend_from_slice(&entry.leaf_bytes);
        entries_file.push(b'\n');
        match &entry.personal {
            Some(personal) => personal_file.extend_from_slice(personal),
            None => personal_file.extend_from_slice(b"null"),
        }
        personal_file.push(b'\n');
        let hashes: Vec<String> = entry.proof.iter().map(|h| BASE64.encode(h)).collect();
        let line = json!({"leaf_index": entry.leaf_index, "hashes": hashes});
        proofs_file.extend_from_slice(line.to_string().as_bytes());
        proofs_file.push(b'\n');
    }
    let checkpoint_file = header.checkpoint_note.as_bytes();
    let file_entry = |bytes: &[u8]| json!({"sha256": sha256_hex(bytes), "bytes": bytes.len()});
    let mut files = json!({
        "entries.jsonl": file_entry(&entries_file),
        "personal.jsonl": file_entry(&personal_file),
        "proofs.jsonl": file_entry(&proofs_file),
        "checkpoint": file_entry(checkpoint_file),
    });
    let root_proof_file = header.root.as_ref().map(|root| {
        let hashes: Vec<String> = root.hashes.iter().map(|h| BASE64.encode(h)).collect();
        let proof =
            json!({"leaf_index": root.leaf_index, "tree_size": root.tree_size, "hashes": hashes});
        format!("{proof}\n").into_bytes()
    });
    if let Some(bytes) = &root_proof_file {
        files[ROOT_PROOF] = file_entry(bytes);
    }
    let manifest = json!({
        "format": FORMAT,
        "account": header.account,
        "origin": header.checkpoint.origin,
        "tree_size": header.checkpoint.size,
        "filters": header.filters,
        "entry_count": entries.len(),
        "order": "newest first",
        "root": header.root.as_ref().map(|root| json!({"tree_size": root.tree_size, "leaf_index": root.leaf_index})),
        "files": files,
    });
    let manifest_file = serde_json::to_vec_pretty(&manifest).map_err(BuildError::Manifest)?;
    let manifest_sig = signer
        .sign(&manifest_note_text(
            &header.checkpoint.origin,
            header.checkpoint.size,
            &manifest_file,
        ))
        .map_err(BuildError::Sign)?;
    let mut files: Vec<(&str, &[u8])> = vec![
        ("manifest.json", &manifest_file),
        ("manifest.sig", manifest_sig.as_bytes()),
        ("checkpoint", checkpoint_file),
        ("entries.jsonl", &entries_file),
        ("personal.jsonl", &personal_file),
        ("proofs.jsonl", &proofs_file),
    ];
    if let (Some(root), Some(proof)) = (&header.root, &root_proof_file) {
        files.push((ROOT_PROOF, proof));
        files.push((ROOT_CHECKPOINT, root.note.as_bytes()));
    }
    tar::write_files(files, header.created_unix).map_err(BuildError::Archive)
}

fn manifest_note_text(origin: &str, size: u64, manifest: &[u8]) -> String {
    format!(
        "{MANIFEST_NOTE_HEADER}\n{origin}\n{size}\nsha256 {}\n",
        sha256_hex(manifest)
    )
}

/// What a bundle that verified holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    pub origin: String,
    pub tree_size: u64,
    pub entries: usize,
    /// Whether every entry was also checked against the stated filters.
    pub filters_checked: bool,
    /// The verifier key that signed the checkpoint.
    pub key: String,
    /// The root checkpoint covering the checkpoint, when the bundle has one.
    pub root: Option<RootReport>,
}

/// The root checkpoint a bundle carries, as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootReport {
    pub tree_size: u64,
    pub leaf_index: u64,
    /// The named witnesses whose cosignature verified (none without a
    /// [`WitnessPolicy`]).
    pub cosigners: Vec<String>,
}

/// Checks a bundle offline against a pinned verifier key. The error says
/// what is wrong and, for an entry, which one (1-based line and seq).
pub fn verify(archive: &[u8], verifier: &NoteVerifier) -> Result<BundleReport, VerifyError> {
    verify_with(archive, std::slice::from_ref(verifier), None)
}

/// Opens `note` with the first of `verifiers` that signed it (a log that
/// rotated its key has several); the error is the first key's.
fn open_any(note: &str, verifiers: &[NoteVerifier]) -> Result<(Checkpoint, usize), NoteError> {
    let mut first = None;
    for (i, verifier) in verifiers.iter().enumerate() {
        match Checkpoint::open(note, verifier) {
            Ok(checkpoint) => return Ok((checkpoint, i)),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or_else(|| NoteError::MalformedKey("no verifier key given".into())))
}

/// Checks a bundle offline against the log's pinned verifier keys (any of
/// them may have signed each note: the log's key may have been rotated) and,
/// with `witnesses`, demands that the bundle's checkpoint be covered by a
/// root checkpoint that `quorum` of those witnesses cosigned.
pub fn verify_with(
    archive: &[u8],
    verifiers: &[NoteVerifier],
    witnesses: Option<&WitnessPolicy<'_>>,
) -> Result<BundleReport, VerifyError> {
    use VerifyError::Altered;
    let files = tar::read_files(archive).map_err(VerifyError::Archive)?;
    let file = |name: &str| -> Result<&[u8], VerifyError> {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, bytes)| bytes.as_slice())
            .ok_or_else(|| VerifyError::Missing(name.to_string()))
    };
    let text = |name: &str| -> Result<&str, VerifyError> {
        std::str::from_utf8(file(name)?).map_err(|_| VerifyError::NotUtf8(name.to_string()))
    };

    let (checkpoint, signed_by) =
        open_any(text("checkpoint")?, verifiers).map_err(VerifyError::Checkpoint)?;
    let manifest_bytes = file("manifest.json")?;
    let manifest: Value =
        serde_json::from_slice(manifest_bytes).map_err(VerifyError::ManifestNotJson)?;
    let account = manifest["account"]
        .as_str()
        .ok_or_else(|| Altered("manifest.json lacks the account".into()))?;

    // Every entry: its proof leads from its exact bytes to the signed root.
    let entries: Vec<&[u8]> = split_lines(file("entries.jsonl")?);
    let proofs: Vec<&[u8]> = split_lines(file("proofs.jsonl")?);
    if entries.len() != proofs.len() {
        return Err(Altered(format!(
            "entries.jsonl has {} entries but proofs.jsonl has {} proofs",
            entries.len(),
            proofs.len()
        )));
    }
    let format_1 = manifest["format"] == FORMAT_1;
    let personal: Vec<Option<&[u8]>> = if format_1 {
        vec![None; entries.len()]
    } else {
        split_lines(file("personal.jsonl")?)
            .into_iter()
            .map(|line| (line != b"null").then_some(line))
            .collect()
    };
    if personal.len() != entries.len() {
        return Err(Altered(format!(
            "entries.jsonl has {} entries but personal.jsonl has {} lines",
            entries.len(),
            personal.len()
        )));
    }
    let filter = EventFilter::from_json(&manifest["filters"], &Taxonomy::default()).ok();
    for (i, ((entry, proof_line), personal)) in
        entries.iter().zip(&proofs).zip(&personal).enumerate()
    {
        let line = i + 1;
        // A version 2 entry's personal values must open its commitments
        // exactly (so that the plain values shown are the committed ones).
        let record = StoredRecord::new(entry, *personal);
        let event = record
            .check()
            .and_then(|()| record.stored_event())
            .map_err(|cause| VerifyError::Entry { line, cause })?;
        let name = format!(
            "entry {line} (seq {}, id {:?})",
            event.seq(),
            event.event().id()
        );
        let proof: Value = serde_json::from_slice(proof_line)
            .map_err(|cause| VerifyError::ProofNotJson { line, cause })?;
        let index = proof["leaf_index"]
            .as_u64()
            .ok_or_else(|| Altered(format!("proof {line} lacks leaf_index")))?;
        if event.seq() == 0 || index != event.seq() - 1 {
            return Err(Altered(format!(
                "{name}: its proof is for leaf index {index}, not seq - 1"
            )));
        }
        if event.account() != account {
            return Err(Altered(format!(
                "{name}: belongs to account {:?}, not {account:?}",
                event.account()
            )));
        }
        let hashes = proof["hashes"]
            .as_array()
            .ok_or_else(|| Altered(format!("proof {line} lacks hashes")))?
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(|s| BASE64.decode(s).ok())
                    .and_then(|b| <Hash>::try_from(b).ok())
                    .ok_or_else(|| Altered(format!("proof {line} holds a malformed hash")))
            })
            .collect::<Result<Vec<Hash>, VerifyError>>()?;
        merkle::check_record(
            &hashes,
            checkpoint.size as i64,
            &checkpoint.root,
            index as i64,
            &leaf::leaf_hash(entry),
        )
        .map_err(|_| {
            Altered(format!(
                "{name}: not in the signed tree of size {}: its bytes were altered or its proof is wrong",
                checkpoint.size
            ))
        })?;
        if let Some(filter) = &filter {
            if !filter.matches(event.event()) {
                return Err(Altered(format!(
                    "{name}: does not match the bundle's filters"
                )));
            }
        }
    }

    let format_2 = manifest["format"] == FORMAT_2;
    let root = if format_1 || format_2 {
        None
    } else {
        check_root(
            &file,
            &text,
            &manifest,
            account,
            &checkpoint,
            verifiers,
            witnesses,
        )?
    };
    if root.is_none() {
        if let Some(policy) = witnesses.filter(|p| p.quorum > 0) {
            return Err(VerifyError::NoRoot(if format_1 || format_2 {
                format!(
                    "its format {} predates the root log; {} witness cosignature(s) cannot be shown",
                    manifest["format"], policy.quorum
                )
            } else {
                "no root checkpoint had been cosigned over its checkpoint when it was written; export again later".into()
            }));
        }
    }

    // The manifest, bound by the log's signature, fixes counts and files.
    let manifest_sig = text("manifest.sig")?;
    let mut signed = Err(NoteError::MalformedKey("no verifier key given".into()));
    for verifier in verifiers {
        signed = verifier.open(manifest_sig);
        if signed.is_ok() {
            break;
        }
    }
    let signed = signed.map_err(VerifyError::ManifestSignature)?;
    if signed != manifest_note_text(&checkpoint.origin, checkpoint.size, manifest_bytes) {
        return Err(Altered(
            "manifest.json was altered: it does not match its signature in manifest.sig".into(),
        ));
    }
    if manifest["format"] != FORMAT && !format_1 && !format_2 {
        return Err(Altered(format!(
            "manifest format is {}, expected {FORMAT}",
            manifest["format"]
        )));
    }
    if manifest["origin"] != checkpoint.origin.as_str() || manifest["tree_size"] != checkpoint.size
    {
        return Err(Altered(
            "manifest.json names another tree than the checkpoint".into(),
        ));
    }
    if manifest["entry_count"] != entries.len() {
        return Err(Altered(format!(
            "the bundle holds {} entries but its signed manifest lists {}: entries were removed or added",
            entries.len(),
            manifest["entry_count"]
        )));
    }
    let mut signed_files: Vec<&str> = if format_1 {
        vec!["entries.jsonl", "proofs.jsonl", "checkpoint"]
    } else {
        vec![
            "entries.jsonl",
            "personal.jsonl",
            "proofs.jsonl",
            "checkpoint",
        ]
    };
    if root.is_some() {
        signed_files.push(ROOT_PROOF);
    }
    for name in signed_files {
        let bytes = file(name)?;
        if manifest["files"][name]["sha256"] != sha256_hex(bytes) {
            return Err(Altered(format!(
                "{name} does not match the sha256 in the signed manifest"
            )));
        }
    }
    Ok(BundleReport {
        origin: checkpoint.origin,
        tree_size: checkpoint.size,
        entries: entries.len(),
        filters_checked: filter.is_some(),
        key: verifiers[signed_by].to_text(),
        root,
    })
}

/// Checks the root files of a format 3 bundle, if its manifest names a root:
/// the root checkpoint's signature by one of `verifiers` (origin: the log
/// name, the account checkpoint's origin without `/<account>`), the quorum
/// of `witnesses`, and the account checkpoint's inclusion in it.
fn check_root<'f>(
    file: &dyn Fn(&str) -> Result<&'f [u8], VerifyError>,
    text: &dyn Fn(&str) -> Result<&'f str, VerifyError>,
    manifest: &Value,
    account: &str,
    checkpoint: &Checkpoint,
    verifiers: &[NoteVerifier],
    witnesses: Option<&WitnessPolicy<'_>>,
) -> Result<Option<RootReport>, VerifyError> {
    use VerifyError::Altered;
    let stated = &manifest["root"];
    if stated.is_null() {
        return Ok(None);
    }
    let (Some(tree_size), Some(leaf_index)) =
        (stated["tree_size"].as_u64(), stated["leaf_index"].as_u64())
    else {
        return Err(Altered(
            "manifest.json's root lacks tree_size or leaf_index".into(),
        ));
    };
    let proof: Value = serde_json::from_slice(file(ROOT_PROOF)?)
        .map_err(|_| Altered(format!("{ROOT_PROOF} is not JSON")))?;
    if proof["tree_size"] != tree_size || proof["leaf_index"] != leaf_index {
        return Err(Altered(format!(
            "{ROOT_PROOF} is for another leaf or tree than manifest.json's root"
        )));
    }
    let hashes = proof["hashes"]
        .as_array()
        .ok_or_else(|| Altered(format!("{ROOT_PROOF} lacks hashes")))?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|s| BASE64.decode(s).ok())
                .and_then(|b| <Hash>::try_from(b).ok())
                .ok_or_else(|| Altered(format!("{ROOT_PROOF} holds a malformed hash")))
        })
        .collect::<Result<Vec<Hash>, VerifyError>>()?;
    let log_name = checkpoint
        .origin
        .strip_suffix(account)
        .and_then(|rest| rest.strip_suffix('/'))
        .ok_or_else(|| {
            Altered(format!(
                "the checkpoint's origin {:?} is not <log name>/{account}",
                checkpoint.origin
            ))
        })?;
    let note = text(ROOT_CHECKPOINT)?;
    // The log's signature first (by whichever pinned key signed it), then
    // the cosignatures.
    let mut opened = Err(RootLogError::Note(NoteError::MalformedKey(
        "no verifier key given".into(),
    )));
    for verifier in verifiers {
        opened = root_log::open_cosigned(note, log_name, verifier, &[], 0);
        if opened.is_ok() {
            break;
        }
    }
    let opened = opened.map_err(VerifyError::RootCheckpoint)?;
    let root = opened.checkpoint;
    if root.size != tree_size {
        return Err(Altered(format!(
            "root-checkpoint has size {} but manifest.json's root says {tree_size}",
            root.size
        )));
    }
    root_log::check_covered(checkpoint, leaf_index, &hashes, &root)
        .map_err(VerifyError::RootProof)?;
    let mut cosigners = Vec::new();
    if let Some(policy) = witnesses {
        let mut counted: Vec<&CosignatureVerifier> = Vec::new();
        let mut missing = Vec::new();
        for witness in policy.witnesses {
            if counted.contains(&witness) {
                continue;
            }
            counted.push(witness);
            match witness.verify_note(note) {
                Ok(_) => cosigners.push(witness.name().to_string()),
                Err(_) => missing.push(witness.name().to_string()),
            }
        }
        if cosigners.len() < policy.quorum {
            return Err(VerifyError::Quorum {
                size: root.size,
                missing,
                cause: RootLogError::Quorum {
                    have: cosigners.len(),
                    quorum: policy.quorum,
                    cosigners,
                },
            });
        }
    }
    Ok(Some(RootReport {
        tree_size,
        leaf_index,
        cosigners,
    }))
}

fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|&b| b == b'\n').collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::CosignatureSigner;
    use crate::leaf_v2::{seal, OsSalts, Source};
    use crate::merkle::MemoryHashes;
    use crate::ErrorChain;
    use crate::{NewEvent, StoredEvent, Timestamp};

    /// Leaves of both versions: version 2 (with personal values) at even seqs.
    fn events(n: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let now = Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap();
        (1..=n)
            .map(|seq| {
                let kind = if seq % 3 == 0 { "Delete" } else { "Create" };
                let value = json!({"id": format!("e{seq}"), "event_type": "Element", "action": kind,
                                   "actor": {"id": "u", "name": "Ada Lovelace"}});
                let event = NewEvent::parse(&value, &Taxonomy::default(), now).unwrap();
                let stored = StoredEvent::new("acme", seq, now, event);
                if seq % 2 == 0 {
                    let sealed = seal(&stored, &Source::System, &[], &mut OsSalts).unwrap();
                    (sealed.leaf_bytes, Some(sealed.personal))
                } else {
                    (stored.leaf_bytes(), None)
                }
            })
            .collect()
    }

    /// A bundle of the `Delete` events of a 20-event log, newest first.
    fn bundle(signer: &NoteSigner) -> Vec<u8> {
        bundle_with(signer, None)
    }

    /// The same, its checkpoint covered by a root checkpoint (leaf 2 of 4)
    /// that `cosigners` cosigned, when given.
    fn bundle_with(signer: &NoteSigner, cosigners: Option<&[CosignatureSigner]>) -> Vec<u8> {
        let leaves = events(20);
        let mut tree = MemoryHashes::default();
        for (l, _) in &leaves {
            tree.append_leaf(leaf::leaf_hash(l)).unwrap();
        }
        let checkpoint = Checkpoint {
            origin: "auditlog/acme".into(),
            size: 20,
            root: merkle::tree_hash(20, &tree).unwrap(),
        };
        let note = checkpoint.sign(signer).unwrap();
        let entries: Vec<BundleEntry> = (0..20u64)
            .rev()
            .filter(|i| (i + 1) % 3 == 0)
            .map(|i| BundleEntry {
                leaf_bytes: leaves[i as usize].0.clone(),
                personal: leaves[i as usize].1.clone(),
                leaf_index: i,
                proof: merkle::prove_record(20, i as i64, &tree).unwrap(),
            })
            .collect();
        let mut root_tree = MemoryHashes::default();
        let leaves = [
            root_log::leaf_bytes(&Checkpoint {
                origin: "auditlog/globex".into(),
                size: 3,
                root: [3; 32],
            }),
            root_log::leaf_bytes(&Checkpoint {
                size: 12,
                root: [1; 32],
                ..checkpoint.clone()
            }),
            root_log::leaf_bytes(&checkpoint),
            root_log::leaf_bytes(&Checkpoint {
                origin: "auditlog/initech".into(),
                size: 1,
                root: [4; 32],
            }),
        ];
        for leaf in &leaves {
            root_tree.append_leaf(merkle::leaf_hash(leaf)).unwrap();
        }
        let root = Checkpoint {
            origin: "auditlog".into(),
            size: 4,
            root: merkle::tree_hash(4, &root_tree).unwrap(),
        };
        let mut root_note = root.sign(signer).unwrap();
        for (i, cosigner) in cosigners.unwrap_or_default().iter().enumerate() {
            root_note.push_str(
                &cosigner
                    .cosign(&root.body(), 1_700_000_000 + i as u64)
                    .unwrap(),
            );
        }
        let root_hashes = merkle::prove_record(4, 2, &root_tree).unwrap();
        let header = BundleHeader {
            account: "acme",
            checkpoint_note: &note,
            checkpoint: &checkpoint,
            filters: json!({"action": ["Delete"]}),
            created_unix: 0,
            root: cosigners.map(|_| BundleRoot {
                note: &root_note,
                tree_size: 4,
                leaf_index: 2,
                hashes: &root_hashes,
            }),
        };
        build(&header, &entries, signer).unwrap()
    }

    fn witnesses() -> Vec<CosignatureSigner> {
        (0..3)
            .map(|i| CosignatureSigner::from_seed(&format!("w{i}.example"), [40 + i; 32]).unwrap())
            .collect()
    }

    /// Verified with the witnesses `named` (indexes into [`witnesses`]).
    fn verify_witnessed(
        archive: &[u8],
        signer: &NoteSigner,
        named: &[usize],
        quorum: usize,
    ) -> Result<BundleReport, VerifyError> {
        let all = witnesses();
        let keys: Vec<CosignatureVerifier> = named.iter().map(|&i| all[i].verifier()).collect();
        let policy = WitnessPolicy {
            witnesses: &keys,
            quorum,
        };
        verify_with(archive, &[signer.verifier()], Some(&policy))
    }

    #[test]
    fn a_bundle_with_its_quorum_of_cosignatures_verifies_and_too_few_fail() {
        let signer = NoteSigner::from_seed("auditlog", [5; 32]).unwrap();
        let all = witnesses();
        let archive = bundle_with(&signer, Some(&all[..2]));
        let report = verify_witnessed(&archive, &signer, &[0, 1, 2], 2).unwrap();
        let root = report.root.unwrap();
        assert_eq!((root.tree_size, root.leaf_index), (4, 2));
        assert_eq!(root.cosigners, ["w0.example", "w1.example"]);
        // Without witnesses the root is still checked, and shown.
        let plain = verify(&archive, &signer.verifier()).unwrap();
        assert_eq!(plain.root.unwrap().tree_size, 4);

        // Three demanded, two cosigned: refused, naming the one missing.
        let error = verify_witnessed(&archive, &signer, &[0, 1, 2], 3).unwrap_err();
        let chain = ErrorChain(&error).to_string();
        assert!(
            matches!(&error, VerifyError::Quorum { size: 4, missing, .. } if missing == &["w2.example"]),
            "{chain}"
        );
        assert!(
            chain.contains("2 valid cosignature(s) of the 3 required"),
            "{chain}"
        );
        // Two demanded of witnesses of which only one cosigned.
        let error = verify_witnessed(&archive, &signer, &[1, 2], 2).unwrap_err();
        assert!(matches!(error, VerifyError::Quorum { .. }), "{error}");
        // A cosignature line dropped: one is too few.
        let one = replace(&archive, ROOT_CHECKPOINT, |bytes| {
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            let mut lines: Vec<&str> = text.lines().collect();
            lines.pop();
            format!("{}\n", lines.join("\n")).into_bytes()
        });
        verify_witnessed(&one, &signer, &[0, 1, 2], 1).unwrap();
        assert!(matches!(
            verify_witnessed(&one, &signer, &[0, 1, 2], 2),
            Err(VerifyError::Quorum { .. })
        ));
        // Cosignatures gathered later may be added: the third one counts.
        let three = replace(&archive, ROOT_CHECKPOINT, |bytes| {
            let mut text = String::from_utf8(bytes.to_vec()).unwrap();
            let body = "auditlog\n4\n";
            let root_line = text.lines().nth(2).unwrap().to_string();
            text.push_str(&all[2].cosign(&format!("{body}{root_line}\n"), 5).unwrap());
            text.into_bytes()
        });
        verify_witnessed(&three, &signer, &[0, 1, 2], 3).unwrap();
    }

    #[test]
    fn an_altered_root_proof_or_root_checkpoint_fails() {
        let signer = NoteSigner::from_seed("auditlog", [5; 32]).unwrap();
        let archive = bundle_with(&signer, Some(&witnesses()));
        let proof = replace(&archive, ROOT_PROOF, |bytes| {
            let mut proof: Value = serde_json::from_slice(bytes).unwrap();
            proof["hashes"][0] = json!(BASE64.encode([9u8; 32]));
            format!("{proof}\n").into_bytes()
        });
        let error = verify_witnessed(&proof, &signer, &[0, 1, 2], 2).unwrap_err();
        assert!(matches!(error, VerifyError::RootProof(_)), "{error}");
        let elsewhere = replace(&archive, ROOT_PROOF, |bytes| {
            String::from_utf8(bytes.to_vec())
                .unwrap()
                .replace("\"leaf_index\":2", "\"leaf_index\":1")
                .into_bytes()
        });
        let error = verify(&elsewhere, &signer.verifier()).unwrap_err();
        assert!(error.to_string().contains("another leaf"), "{error}");
        let root = replace(&archive, ROOT_CHECKPOINT, |bytes| {
            String::from_utf8(bytes.to_vec())
                .unwrap()
                .replacen("auditlog\n4\n", "auditlog\n5\n", 1)
                .into_bytes()
        });
        let error = verify(&root, &signer.verifier()).unwrap_err();
        assert!(matches!(error, VerifyError::RootCheckpoint(_)), "{error}");
    }

    /// A bundle without a root (format 3 written before the witnesses
    /// cosigned, or format 2) verifies, but not when witnesses are demanded.
    #[test]
    fn bundles_without_a_root_fail_only_when_witnesses_are_demanded() {
        let signer = NoteSigner::from_seed("auditlog", [5; 32]).unwrap();
        let archive = bundle(&signer);
        assert!(verify(&archive, &signer.verifier()).unwrap().root.is_none());
        verify_witnessed(&archive, &signer, &[0], 0).unwrap();
        let error = verify_witnessed(&archive, &signer, &[0, 1], 1).unwrap_err();
        assert!(error.to_string().contains("export again later"), "{error}");

        // An older format 2 bundle (its manifest re-signed as it was then).
        let files = tar::read_files(&archive).unwrap();
        let manifest = &files.iter().find(|(n, _)| n == "manifest.json").unwrap().1;
        let mut manifest: Value = serde_json::from_slice(manifest).unwrap();
        manifest["format"] = json!(FORMAT_2);
        manifest.as_object_mut().unwrap().remove("root");
        let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
        let sig = signer
            .sign(&manifest_note_text("auditlog/acme", 20, &manifest))
            .unwrap();
        let old = replace(
            &replace(&archive, "manifest.json", |_| manifest.clone()),
            "manifest.sig",
            |_| sig.clone().into_bytes(),
        );
        let report = verify(&old, &signer.verifier()).unwrap();
        assert_eq!((report.entries, report.root), (6, None));
        let error = verify_witnessed(&old, &signer, &[0], 1).unwrap_err();
        assert!(
            error.to_string().contains("predates the root log"),
            "{error}"
        );
    }

    /// After a key rotation a verifier pins both keys: a bundle signed by
    /// either verifies, and says which key signed it.
    #[test]
    fn any_of_several_pinned_keys_may_have_signed() {
        let old = NoteSigner::from_seed("auditlog", [5; 32]).unwrap();
        let new = NoteSigner::from_seed("auditlog", [6; 32]).unwrap();
        let both = [old.verifier(), new.verifier()];
        for signer in [&old, &new] {
            let archive = bundle_with(signer, Some(&witnesses()));
            let report = verify_with(&archive, &both, None).unwrap();
            assert_eq!(report.key, signer.verifier().to_text());
        }
        let archive = bundle(&old);
        assert!(verify(&archive, &new.verifier()).is_err());
    }

    /// Rebuilds the archive with one file replaced.
    fn replace(archive: &[u8], name: &str, f: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let files: Vec<(String, Vec<u8>)> = tar::read_files(archive)
            .unwrap()
            .into_iter()
            .map(|(n, bytes)| {
                let bytes = if n == name { f(&bytes) } else { bytes };
                (n, bytes)
            })
            .collect();
        tar::write_files(files.iter().map(|(n, b)| (n.as_str(), b.as_slice())), 0).unwrap()
    }

    #[test]
    fn a_filtered_bundle_verifies_offline() {
        let signer = NoteSigner::from_seed("auditlog", [5; 32]).unwrap();
        let report = verify(&bundle(&signer), &signer.verifier()).unwrap();
        assert_eq!(report.entries, 6);
        assert_eq!(report.tree_size, 20);
        assert!(report.filters_checked);
        let other = NoteSigner::from_seed("auditlog", [6; 32]).unwrap();
        assert!(verify(&bundle(&signer), &other.verifier()).is_err());
    }

    #[test]
    fn one_changed_byte_in_any_entry_fails() {
        let signer = NoteSigner::from_seed("auditlog", [5; 32]).unwrap();
        let archive = bundle(&signer);
        let files = tar::read_files(&archive).unwrap();
        let entries = &files.iter().find(|(n, _)| n == "entries.jsonl").unwrap().1;
        let lines = split_lines(entries).len();
        for line in 0..lines {
            // Change a byte inside a string value ("u" -> "v" in the actor id).
            let tampered = replace(&archive, "entries.jsonl", |bytes| {
                let mut lines: Vec<Vec<u8>> =
                    split_lines(bytes).iter().map(|l| l.to_vec()).collect();
                let at = lines[line]
                    .windows(5)
                    .position(|w| w == b"\"id\":")
                    .unwrap()
                    + 6;
                lines[line][at] ^= 1;
                lines
                    .iter()
                    .flat_map(|l| l.iter().copied().chain([b'\n']))
                    .collect()
            });
            let error = verify(&tampered, &signer.verifier())
                .unwrap_err()
                .to_string();
            assert!(error.contains(&format!("entry {}", line + 1)), "{error}");
        }
    }

    /// The plain values beside a version 2 entry are the committed ones: an
    /// altered name is caught at its entry, before any manifest check.
    #[test]
    fn an_altered_personal_value_fails_naming_its_entry() {
        let signer = NoteSigner::from_seed("auditlog", [5; 32]).unwrap();
        let archive = bundle(&signer);
        let files = tar::read_files(&archive).unwrap();
        let personal = &files.iter().find(|(n, _)| n == "personal.jsonl").unwrap().1;
        let lines = split_lines(personal);
        let v2_line = lines.iter().position(|l| *l != b"null").unwrap();
        let tampered = replace(&archive, "personal.jsonl", |bytes| {
            String::from_utf8(bytes.to_vec())
                .unwrap()
                .replacen("Ada Lovelace", "Eve Mallory", 1)
                .into_bytes()
        });
        let error = ErrorChain(&verify(&tampered, &signer.verifier()).unwrap_err()).to_string();
        assert!(
            error.contains(&format!("entry {} cannot be read", v2_line + 1))
                && error.contains("do not open its commitments"),
            "{error}"
        );
    }

    #[test]
    fn a_dropped_entry_fails_even_with_its_proof_dropped() {
        let signer = NoteSigner::from_seed("auditlog", [5; 32]).unwrap();
        let archive = bundle(&signer);
        let drop_line = |bytes: &[u8]| -> Vec<u8> {
            split_lines(bytes)
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 2)
                .flat_map(|(_, l)| l.iter().copied().chain([b'\n']))
                .collect()
        };
        let only_entry = replace(&archive, "entries.jsonl", drop_line);
        assert!(verify(&only_entry, &signer.verifier()).is_err());
        let both = replace(
            &replace(
                &replace(&archive, "entries.jsonl", drop_line),
                "proofs.jsonl",
                drop_line,
            ),
            "personal.jsonl",
            drop_line,
        );
        let error = verify(&both, &signer.verifier()).unwrap_err().to_string();
        assert!(error.contains("entries were removed"), "{error}");
        // Fixing the manifest's count breaks its signature.
        let forged = replace(&both, "manifest.json", |bytes| {
            String::from_utf8(bytes.to_vec())
                .unwrap()
                .replace("\"entry_count\": 6", "\"entry_count\": 5")
                .into_bytes()
        });
        let error = verify(&forged, &signer.verifier()).unwrap_err().to_string();
        assert!(error.contains("manifest.json was altered"), "{error}");
    }
}
