//! C2SP tlog checkpoints (<https://c2sp.org/tlog-checkpoint>): the signed
//! statement "the tree `<origin>` has `size` leaves and this root", carried
//! in a signed note. The origin of an account's log is `<log name>/<account>`.

use crate::merkle::Hash;
use crate::note::{NoteError, NoteSigner, NoteVerifier};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// The log name used in origins when none is configured.
pub const DEFAULT_LOG_NAME: &str = "auditlog";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// The origin line of an account's tree.
pub fn origin(log_name: &str, account: &str) -> String {
    format!("{log_name}/{account}")
}

impl Checkpoint {
    /// The note text: origin, size and base64 root, one per line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Parses a checkpoint body (extension lines after the root are allowed).
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::MalformedNote(format!("not a checkpoint: {why}"));
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size = lines.next().ok_or_else(|| bad("no size line"))?;
        // Decimal without sign or leading zeros, as C2SP requires.
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad("the size is not a decimal number"));
        }
        let size: u64 = size.parse().map_err(|_| bad("the size is too large"))?;
        let root = lines.next().ok_or_else(|| bad("no root line"))?;
        let root: Hash = BASE64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("the root is not a base64 SHA-256 hash"))?;
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
        })
    }

    pub fn sign(&self, signer: &NoteSigner) -> Result<String, NoteError> {
        signer.sign(&self.body())
    }

    /// Checks the signature of a signed checkpoint and parses it.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Self, NoteError> {
        Self::parse(verifier.open(note)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_signed_note() {
        let signer = NoteSigner::from_seed("auditlog", [3; 32]).unwrap();
        let checkpoint = Checkpoint {
            origin: origin("auditlog", "acme"),
            size: 12,
            root: [9; 32],
        };
        let note = checkpoint.sign(&signer).unwrap();
        assert!(note.starts_with("auditlog/acme\n12\nCQkJ"));
        assert_eq!(
            Checkpoint::open(&note, &signer.verifier()).unwrap(),
            checkpoint
        );
        for bad in ["x\n", "x\n-1\nAA==\n", "x\n01\nAA==\n", "x\n1\nAA==\n"] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }
}
