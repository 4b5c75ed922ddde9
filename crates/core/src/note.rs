//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519: the
//! envelope of every checkpoint, so that existing transparency-log tools
//! (Go's `sumdb/note`, `signed_note`, …) verify what Auditlog signs.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then one line per
//! signature: `— <key name> <base64(key id ‖ signature)>`. The key id is the
//! first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key); 0x01 names
//! the Ed25519 algorithm.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

/// The algorithm byte of Ed25519 keys in C2SP.
const ALG_ED25519: u8 = 0x01;
/// The em dash that starts every signature line.
pub(crate) const SIGNATURE_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    MalformedKey(String),
    #[error("malformed note: {0}")]
    MalformedNote(String),
    #[error("the note carries no signature by key {name}+{id:08x}")]
    NoSignatureByKey { name: String, id: u32 },
    #[error("the signature by key {name}+{id:08x} does not verify: the note was altered or not signed by this key")]
    BadSignature { name: String, id: u32 },
}

/// A key name: non-empty, without spaces or `+` (C2SP).
pub(crate) fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(char::is_whitespace) || name.contains('+') {
        return Err(NoteError::MalformedKey(format!(
            "key name {name:?} must be non-empty, without spaces or '+'"
        )));
    }
    Ok(())
}

/// The C2SP key id of an Ed25519 public key under `name`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    key_id_for(name, ALG_ED25519, public_key)
}

/// The C2SP key id of a public key of algorithm `alg` under `name`:
/// SHA-256(name ‖ "\n" ‖ alg ‖ public key), first four bytes. Cosigner keys
/// (`cosignature`) use the same rule with their own algorithm byte.
pub(crate) fn key_id_for(name: &str, alg: u8, public_key: &[u8; 32]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([alg]);
    hasher.update(public_key);
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The private half: signs notes. Its `Debug` leaves the key out.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed (the caller draws it from the OS).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// Parses the signer key text `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`
    /// (the form Go's `note.NewSigner` reads).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, seed) = split_private_key(text, "signer", ALG_ED25519, "Ed25519 (0x01)")?;
        let signer = Self::from_seed(name, seed)?;
        check_key_id(id, signer.id)?;
        Ok(signer)
    }

    /// The secret text form that [`NoteSigner::parse`] reads. Keep it secret.
    pub fn to_secret_text(&self) -> String {
        private_key_text(&self.name, self.id, ALG_ED25519, self.key.as_bytes())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `text` (which must end in a newline and hold no blank line's
    /// worth of signature syntax) and returns the whole signed note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let signature = self.key.sign(text.as_bytes());
        let mut blob = self.id.to_be_bytes().to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{text}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(blob)
        ))
    }
}

/// Splits `<name>+<hex id>+<base64 key>` of an Ed25519 note key and strips
/// the algorithm byte.
/// The secret text form of a signing key: `PRIVATE+KEY+<name>+<hex id>+<base64
/// of the algorithm byte and the 32-byte seed>` (note signers and cosigners
/// differ only in the algorithm byte).
pub(crate) fn private_key_text(name: &str, id: u32, alg: u8, seed: &[u8; 32]) -> String {
    let mut key = vec![alg];
    key.extend_from_slice(seed);
    format!("PRIVATE+KEY+{name}+{id:08x}+{}", BASE64.encode(key))
}

/// Reads [`private_key_text`]'s form for algorithm `alg` (`kind` names the
/// key in errors: "signer", "cosigner"): the name, the stated key id (which
/// the caller checks against the key with [`check_key_id`]) and the seed.
pub(crate) fn split_private_key<'t>(
    text: &'t str,
    kind: &str,
    alg: u8,
    alg_name: &str,
) -> Result<(&'t str, u32, [u8; 32]), NoteError> {
    let rest = text
        .trim()
        .strip_prefix("PRIVATE+KEY+")
        .ok_or_else(|| NoteError::MalformedKey(format!("a {kind} key starts with PRIVATE+KEY+")))?;
    let (name, id, key) = split_key_of(rest, alg, alg_name)?;
    let seed: [u8; 32] = key
        .try_into()
        .map_err(|_| NoteError::MalformedKey("an Ed25519 seed has 32 bytes".into()))?;
    Ok((name, id, seed))
}

/// A key's stated id must be the one its key gives.
pub(crate) fn check_key_id(stated: u32, actual: u32) -> Result<(), NoteError> {
    if stated != actual {
        return Err(NoteError::MalformedKey(format!(
            "key id {stated:08x} does not match the key (expected {actual:08x})"
        )));
    }
    Ok(())
}

fn split_key(text: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    split_key_of(text, ALG_ED25519, "Ed25519 (0x01)")
}

/// Splits `<name>+<hex id>+<base64 key>` and strips the algorithm byte,
/// which must be `alg` (`alg_name` says which kind of key was expected).
pub(crate) fn split_key_of<'t>(
    text: &'t str,
    alg: u8,
    alg_name: &str,
) -> Result<(&'t str, u32, Vec<u8>), NoteError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::MalformedKey(
            "a key has the form <name>+<hex key id>+<base64 key>".into(),
        ));
    };
    check_name(name)?;
    if id.len() != 8 {
        return Err(NoteError::MalformedKey(format!(
            "key id {id:?} must be 8 hex digits"
        )));
    }
    let id = u32::from_str_radix(id, 16)
        .map_err(|_| NoteError::MalformedKey(format!("key id {id:?} is not hex")))?;
    let key = BASE64
        .decode(key)
        .map_err(|_| NoteError::MalformedKey("the key is not base64".into()))?;
    match key.split_first() {
        Some((&first, key)) if first == alg => Ok((name, id, key.to_vec())),
        Some((other, _)) => Err(NoteError::MalformedKey(format!(
            "algorithm {other:#04x} is not {alg_name}"
        ))),
        None => Err(NoteError::MalformedKey("the key is empty".into())),
    }
}

/// Checks that a note's text is well-formed: ends with a newline, and holds
/// no control characters other than newlines.
pub(crate) fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::MalformedNote(
            "the text must end with a newline".into(),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::MalformedNote(
            "the text holds a control character".into(),
        ));
    }
    Ok(())
}

/// The public half: checks notes. Its text form is the verifier key that
/// `/api/v1/public-key` serves and auditors pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, key) = split_key(text.trim())?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| NoteError::MalformedKey("an Ed25519 public key has 32 bytes".into()))?;
        if key_id(name, &key) != id {
            return Err(NoteError::MalformedKey(format!(
                "key id {id:08x} does not match the key"
            )));
        }
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| NoteError::MalformedKey("not a valid Ed25519 public key".into()))?;
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    pub fn to_text(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, BASE64.encode(key))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks a signed note and returns its text. It must carry a valid
    /// signature by this key; signatures by other keys are ignored.
    pub fn open<'n>(&self, note: &'n str) -> Result<&'n str, NoteError> {
        let (text, signatures) = split_signed(note)?;
        let mut found = false;
        for line in signatures {
            if line.name != self.name || line.id != self.id {
                continue;
            }
            let bad = || NoteError::BadSignature {
                name: self.name.clone(),
                id: self.id,
            };
            let signature =
                ed25519_dalek::Signature::from_slice(&line.signature).map_err(|_| bad())?;
            self.key
                .verify(text.as_bytes(), &signature)
                .map_err(|_| bad())?;
            found = true;
        }
        if found {
            Ok(text)
        } else {
            Err(NoteError::NoSignatureByKey {
                name: self.name.clone(),
                id: self.id,
            })
        }
    }
}

/// One signature line of a signed note: `— <name> base64(key id ‖ signature)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignatureLine<'n> {
    pub(crate) name: &'n str,
    pub(crate) id: u32,
    /// What follows the key id: the signature, or for a cosignature the
    /// timestamp and the signature.
    pub(crate) signature: Vec<u8>,
}

/// Splits a signed note into its text (ending in a newline, without the
/// blank line) and its signature lines, checking the envelope's form only:
/// no signature is verified here.
pub(crate) fn split_signed(note: &str) -> Result<(&str, Vec<SignatureLine<'_>>), NoteError> {
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| NoteError::MalformedNote("no blank line before the signatures".into()))?;
    let text = &note[..split + 1];
    let signatures = &note[split + 2..];
    check_text(text)?;
    if !signatures.ends_with('\n') || signatures.is_empty() {
        return Err(NoteError::MalformedNote(
            "the signature lines must end with a newline".into(),
        ));
    }
    signatures
        .lines()
        .map(|line| {
            let body = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| {
                NoteError::MalformedNote(format!(
                    "signature line {line:?} does not start with '— '"
                ))
            })?;
            let (name, blob) = body.split_once(' ').ok_or_else(|| {
                NoteError::MalformedNote(format!("signature line {line:?} lacks a signature"))
            })?;
            let blob = BASE64.decode(blob).map_err(|_| {
                NoteError::MalformedNote(format!("signature of {name} is not base64"))
            })?;
            if blob.len() < 5 {
                return Err(NoteError::MalformedNote(format!(
                    "signature of {name} is too short"
                )));
            }
            Ok(SignatureLine {
                name,
                id: u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]),
                signature: blob[4..].to_vec(),
            })
        })
        .collect::<Result<_, _>>()
        .map(|lines| (text, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::from_seed("auditlog", [7; 32]).unwrap()
    }

    #[test]
    fn signs_and_opens_and_keys_round_trip() {
        let s = signer();
        let note = s.sign("hello\nworld\n").unwrap();
        assert!(note.starts_with("hello\nworld\n\n\u{2014} auditlog "));
        assert_eq!(s.verifier().open(&note).unwrap(), "hello\nworld\n");
        let again = NoteSigner::parse(&s.to_secret_text()).unwrap();
        assert_eq!(again.verifier(), s.verifier());
        let v = NoteVerifier::parse(&s.verifier().to_text()).unwrap();
        assert_eq!(v, s.verifier());
        assert!(!format!("{s:?}").contains(&s.to_secret_text()[20..]));
    }

    #[test]
    fn altered_notes_and_other_keys_fail() {
        let s = signer();
        let note = s.sign("a\n").unwrap();
        let altered = note.replacen("a\n", "b\n", 1);
        assert!(matches!(
            s.verifier().open(&altered),
            Err(NoteError::BadSignature { .. })
        ));
        let other = NoteSigner::from_seed("auditlog", [8; 32]).unwrap();
        assert!(matches!(
            other.verifier().open(&note),
            Err(NoteError::NoSignatureByKey { .. })
        ));
        assert!(s.sign("no newline").is_err());
        assert!(NoteVerifier::parse("auditlog+00000000+AQ==").is_err());
    }

    /// The independent implementation (Cloudflare's `signed_note`) accepts
    /// our keys and notes, and we accept its notes.
    #[test]
    fn interoperates_with_the_signed_note_crate() {
        let s = signer();
        let note = s.sign("example.com/log\n3\nAAAA\n").unwrap();
        let verifier = signed_note::StandardVerifier::new(&s.verifier().to_text()).unwrap();
        let parsed = signed_note::Note::from_bytes(note.as_bytes()).unwrap();
        let list = signed_note::VerifierList::new(vec![Box::new(verifier)]);
        let (verified, _) = parsed.verify(&list).unwrap();
        assert_eq!(verified.len(), 1);
        assert_eq!(parsed.text(), b"example.com/log\n3\nAAAA\n");

        let theirs = signed_note::StandardSigner::new(&s.to_secret_text()).unwrap();
        let mut fresh = signed_note::Note::new(b"other text\n", &[]).unwrap();
        fresh.add_sigs(&[&theirs]).unwrap();
        let text = String::from_utf8(fresh.to_bytes()).unwrap();
        assert_eq!(s.verifier().open(&text).unwrap(), "other text\n");
    }
}
