//! C2SP tlog cosignatures v1 (<https://c2sp.org/tlog-cosignature>) with
//! Ed25519: a witness's statement that, as of a time, the checkpoint is the
//! largest consistent tree it has seen for that origin.
//!
//! A cosignature is one more signature line on the checkpoint's note:
//! `— <witness name> base64(key id ‖ u64 timestamp ‖ Ed25519 signature)`,
//! the timestamp big-endian, in seconds since the epoch. What is signed is
//! `cosignature/v1\ntime <timestamp>\n` followed by the whole checkpoint body
//! (extension lines included, signature lines not). The key id is the first
//! four bytes of SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key): algorithm byte
//! 0x04 keeps a cosigner key apart from a note-signing key (0x01), so a
//! verifier never takes one for the other.

use crate::note::{
    check_key_id, check_name, check_text, key_id_for, private_key_text, split_key_of,
    split_private_key, split_signed, NoteError, SIGNATURE_PREFIX,
};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};

/// The algorithm byte of `cosignature/v1` Ed25519 keys (C2SP signed-note).
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
const ALG_NAME: &str = "an Ed25519 cosignature/v1 key (0x04)";
/// The largest timestamp a cosignature may carry (2^63 − 1).
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;
/// Bytes after the key id: the timestamp and the signature.
const TIMESTAMPED_SIGNATURE_LEN: usize = 8 + 64;

/// The message a cosigner signs for checkpoint `body` at `timestamp`.
pub fn signed_message(body: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// A witness's private key: cosigns checkpoints. Its `Debug` leaves the key out.
#[derive(Clone)]
pub struct CosignatureSigner {
    name: String,
    id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for CosignatureSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosignatureSigner")
            .field("name", &self.name)
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl CosignatureSigner {
    /// A signer from a 32-byte Ed25519 seed (the caller draws it from the OS).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let id = key_id_for(name, ALG_COSIGNATURE_V1, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key id>+<base64(0x04 ‖ seed)>`: the
    /// signer-key text of signed notes, with the cosignature algorithm byte.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, seed) = split_private_key(text, "cosigner", ALG_COSIGNATURE_V1, ALG_NAME)?;
        let signer = Self::from_seed(name, seed)?;
        check_key_id(id, signer.id)?;
        Ok(signer)
    }

    /// The secret text form that [`CosignatureSigner::parse`] reads.
    pub fn to_secret_text(&self) -> String {
        private_key_text(&self.name, self.id, ALG_COSIGNATURE_V1, self.key.as_bytes())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The cosignature line (ending in a newline) on checkpoint `body` (the
    /// note's text, without its signatures) at `timestamp`.
    pub fn cosign(&self, body: &str, timestamp: u64) -> Result<String, NoteError> {
        check_text(body)?;
        if timestamp > MAX_TIMESTAMP {
            return Err(NoteError::MalformedNote(format!(
                "timestamp {timestamp} exceeds 2^63 - 1"
            )));
        }
        let signature = self.key.sign(signed_message(body, timestamp).as_bytes());
        let mut blob = self.id.to_be_bytes().to_vec();
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(blob)
        ))
    }
}

/// A witness's public key, `<name>+<hex key id>+<base64(0x04 ‖ public key)>`:
/// checks its cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses a cosigner verifier key. A note-signing key (algorithm 0x01)
    /// is refused: it names another signature scheme.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, key) = split_key_of(text.trim(), ALG_COSIGNATURE_V1, ALG_NAME)?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| NoteError::MalformedKey("an Ed25519 public key has 32 bytes".into()))?;
        if key_id_for(name, ALG_COSIGNATURE_V1, &key) != id {
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
        let mut key = vec![ALG_COSIGNATURE_V1];
        key.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, BASE64.encode(key))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks this witness's cosignature on a signed checkpoint (a note that
    /// carries the log's signature and cosignature lines) and returns its
    /// timestamp. Lines by other keys are ignored; a line by this key that
    /// does not verify is an error even if another one does.
    pub fn verify_note(&self, note: &str) -> Result<u64, NoteError> {
        let (body, lines) = split_signed(note)?;
        let mut found = None;
        for line in lines {
            if line.name != self.name || line.id != self.id {
                continue;
            }
            found = Some(self.check(body, &line.signature)?);
        }
        found.ok_or_else(|| NoteError::NoSignatureByKey {
            name: self.name.clone(),
            id: self.id,
        })
    }

    /// Checks one cosignature line (as a witness answers `add-checkpoint`)
    /// on checkpoint `body` and returns its timestamp.
    pub fn verify_line(&self, body: &str, line: &str) -> Result<u64, NoteError> {
        let note = format!("{body}\n{}\n", line.trim_end_matches('\n'));
        self.verify_note(&note)
    }

    /// Checks `timestamp ‖ signature` (what follows the key id) on `body`.
    fn check(&self, body: &str, blob: &[u8]) -> Result<u64, NoteError> {
        let bad = || NoteError::BadSignature {
            name: self.name.clone(),
            id: self.id,
        };
        if blob.len() != TIMESTAMPED_SIGNATURE_LEN {
            return Err(bad());
        }
        let (timestamp, signature) = blob.split_at(8);
        let timestamp = u64::from_be_bytes(timestamp.try_into().map_err(|_| bad())?);
        if timestamp > MAX_TIMESTAMP {
            return Err(bad());
        }
        let signature = ed25519_dalek::Signature::from_slice(signature).map_err(|_| bad())?;
        self.key
            .verify(signed_message(body, timestamp).as_bytes(), &signature)
            .map_err(|_| bad())?;
        Ok(timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::NoteSigner;

    const BODY: &str = "example.com/log\n12\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n";

    fn witness() -> CosignatureSigner {
        CosignatureSigner::from_seed("witness.example/w1", [5; 32]).unwrap()
    }

    #[test]
    fn cosigns_and_verifies_and_keys_round_trip() {
        let w = witness();
        let line = w.cosign(BODY, 1_679_315_147).unwrap();
        assert!(line.starts_with("\u{2014} witness.example/w1 "));
        assert!(line.ends_with('\n'));
        assert_eq!(
            w.verifier().verify_line(BODY, &line).unwrap(),
            1_679_315_147
        );
        let again = CosignatureSigner::parse(&w.to_secret_text()).unwrap();
        assert_eq!(again.verifier(), w.verifier());
        assert_eq!(
            CosignatureVerifier::parse(&w.verifier().to_text()).unwrap(),
            w.verifier()
        );
        assert!(!format!("{w:?}").contains(&w.to_secret_text()[25..]));
        // The key id follows C2SP: SHA-256(name ‖ "\n" ‖ 0x04 ‖ key)[:4].
        let text = w.verifier().to_text();
        let public = BASE64.decode(text.splitn(3, '+').nth(2).unwrap()).unwrap();
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"witness.example/w1\n\x04");
        hasher.update(&public[1..]);
        let digest = hasher.finalize();
        assert_eq!(public[0], 0x04);
        assert_eq!(&text.split('+').nth(1).unwrap(), &hex(&digest[..4]));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The signed message is exactly the C2SP one, so that any Ed25519
    /// library checks the signature with the public key alone.
    #[test]
    fn signs_the_c2sp_message() {
        let w = witness();
        let line = w.cosign(BODY, 7).unwrap();
        let blob = BASE64
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        assert_eq!(blob.len(), 4 + 8 + 64);
        assert_eq!(&blob[4..12], &7u64.to_be_bytes());
        let signature = ed25519_dalek::Signature::from_slice(&blob[12..]).unwrap();
        let message = format!("cosignature/v1\ntime 7\n{BODY}");
        assert_eq!(signed_message(BODY, 7), message);
        let public = SigningKey::from_bytes(&[5; 32]).verifying_key();
        public.verify(message.as_bytes(), &signature).unwrap();
    }

    #[test]
    fn verifies_within_a_note_beside_the_log_signature() {
        let log = NoteSigner::from_seed("example.com/log", [1; 32]).unwrap();
        let note = log.sign(BODY).unwrap();
        let w = witness();
        let cosigned = format!("{note}{}", w.cosign(BODY, 99).unwrap());
        assert_eq!(w.verifier().verify_note(&cosigned).unwrap(), 99);
        // The log's own verifier ignores the cosignature, and the other way round.
        assert_eq!(log.verifier().open(&cosigned).unwrap(), BODY);
        assert!(matches!(
            w.verifier().verify_note(&note),
            Err(NoteError::NoSignatureByKey { .. })
        ));
        // Another witness's cosignature does not count for this one.
        let other = CosignatureSigner::from_seed("witness.example/w1", [6; 32]).unwrap();
        let by_other = format!("{note}{}", other.cosign(BODY, 99).unwrap());
        assert!(matches!(
            w.verifier().verify_note(&by_other),
            Err(NoteError::NoSignatureByKey { .. })
        ));
    }

    #[test]
    fn altered_bodies_timestamps_and_wrong_key_kinds_fail() {
        let w = witness();
        let line = w.cosign(BODY, 100).unwrap();
        let altered = BODY.replace("12", "13");
        assert!(matches!(
            w.verifier().verify_line(&altered, &line),
            Err(NoteError::BadSignature { .. })
        ));
        // Changing the timestamp bytes breaks the signature.
        let encoded = line.trim_end().rsplit(' ').next().unwrap();
        let mut blob = BASE64.decode(encoded).unwrap();
        blob[11] ^= 1;
        let forged = line.replace(encoded, &BASE64.encode(&blob));
        assert!(matches!(
            w.verifier().verify_line(BODY, &forged),
            Err(NoteError::BadSignature { .. })
        ));
        // A truncated cosignature (a plain note signature's length) fails.
        blob.truncate(4 + 64);
        let short = line.replace(encoded, &BASE64.encode(&blob));
        assert!(w.verifier().verify_line(BODY, &short).is_err());
        // A note-signing key is not a cosigner key, and the other way round.
        let log = NoteSigner::from_seed("witness.example/w1", [5; 32]).unwrap();
        let err = CosignatureVerifier::parse(&log.verifier().to_text()).unwrap_err();
        assert!(err.to_string().contains("0x04"), "{err}");
        assert!(crate::note::NoteVerifier::parse(&w.verifier().to_text()).is_err());
        assert!(CosignatureSigner::parse(&log.to_secret_text()).is_err());
        assert!(w.cosign(BODY, MAX_TIMESTAMP + 1).is_err());
        assert!(w.cosign("no newline", 1).is_err());
    }
}
