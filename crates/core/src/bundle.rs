//! Verifiable export bundles: a tar archive that anyone holding the log's
//! verifier key can check offline, without trusting the server that made it.
//!
//! | file | holds |
//! |---|---|
//! | `entries.jsonl` | the exact leaf bytes of each exported event, one per line |
//! | `personal.jsonl` | per entry, same order: the personal values stored beside a version 2 leaf (`leaf_v2::personal`: the plain values and the salts that open its commitments), `null` for version 1 |
//! | `proofs.jsonl` | per entry, same order: `{"leaf_index", "hashes": [base64…]}` |
//! | `checkpoint` | the signed checkpoint of the tree size the proofs are for |
//! | `manifest.json` | format, account, origin, tree size, filters, entry count, sha256 and size of every file above |
//! | `manifest.sig` | a signed note binding the manifest's sha256, so that dropping an entry (and fixing the counts) is detected too |
//!
//! Leaf bytes are canonical JSON, which never holds a raw newline, so one
//! line is exactly one leaf (and so are personal values).
//!
//! Format `auditlog-bundle/2` adds `personal.jsonl`; bundles of format 1
//! (version 1 leaves only) keep verifying.

use crate::checkpoint::Checkpoint;
use crate::merkle::{self, Hash};
use crate::note::{NoteError, NoteSigner, NoteVerifier};
use crate::record::{RecordError, StoredRecord};
use crate::tar::{self, TarError};
use crate::{leaf, EventFilter, Taxonomy};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const FORMAT: &str = "auditlog-bundle/2";
/// Bundles written before leaf version 2: no `personal.jsonl`.
const FORMAT_1: &str = "auditlog-bundle/1";
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
    let manifest = json!({
        "format": FORMAT,
        "account": header.account,
        "origin": header.checkpoint.origin,
        "tree_size": header.checkpoint.size,
        "filters": header.filters,
        "entry_count": entries.len(),
        "order": "newest first",
        "files": {
            "entries.jsonl": file_entry(&entries_file),
            "personal.jsonl": file_entry(&personal_file),
            "proofs.jsonl": file_entry(&proofs_file),
            "checkpoint": file_entry(checkpoint_file),
        }
    });
    let manifest_file = serde_json::to_vec_pretty(&manifest).map_err(BuildError::Manifest)?;
    let manifest_sig = signer
        .sign(&manifest_note_text(
            &header.checkpoint.origin,
            header.checkpoint.size,
            &manifest_file,
        ))
        .map_err(BuildError::Sign)?;
    let files: [(&str, &[u8]); 6] = [
        ("manifest.json", &manifest_file),
        ("manifest.sig", manifest_sig.as_bytes()),
        ("checkpoint", checkpoint_file),
        ("entries.jsonl", &entries_file),
        ("personal.jsonl", &personal_file),
        ("proofs.jsonl", &proofs_file),
    ];
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
}

/// Checks a bundle offline against a pinned verifier key. The error says
/// what is wrong and, for an entry, which one (1-based line and seq).
pub fn verify(archive: &[u8], verifier: &NoteVerifier) -> Result<BundleReport, VerifyError> {
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

    let checkpoint =
        Checkpoint::open(text("checkpoint")?, verifier).map_err(VerifyError::Checkpoint)?;
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

    // The manifest, bound by the log's signature, fixes counts and files.
    let signed = verifier
        .open(text("manifest.sig")?)
        .map_err(VerifyError::ManifestSignature)?;
    if signed != manifest_note_text(&checkpoint.origin, checkpoint.size, manifest_bytes) {
        return Err(Altered(
            "manifest.json was altered: it does not match its signature in manifest.sig".into(),
        ));
    }
    if manifest["format"] != FORMAT && !format_1 {
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
    let signed_files: &[&str] = if format_1 {
        &["entries.jsonl", "proofs.jsonl", "checkpoint"]
    } else {
        &[
            "entries.jsonl",
            "personal.jsonl",
            "proofs.jsonl",
            "checkpoint",
        ]
    };
    for &name in signed_files {
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
    })
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
        let header = BundleHeader {
            account: "acme",
            checkpoint_note: &note,
            checkpoint: &checkpoint,
            filters: json!({"action": ["Delete"]}),
            created_unix: 0,
        };
        build(&header, &entries, signer).unwrap()
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
