//! The pseudonym of an erased subject: `erased:` + the first 16 bytes (hex)
//! of HMAC-SHA256 under a key kept outside the database (a file in the data
//! directory by default, shared by every server of one database, and read
//! by `auditlog erase`), over the account's name and the subject's actor id.
//! The same subject gets the same pseudonym in all of its events (and in
//! later erasures), so "the same person did these 40 things" stays visible;
//! without the key, a copy of the database cannot test a guessed id against
//! it.

use auditlog_core::leaf_v2::erased::PSEUDONYM_PREFIX;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

#[derive(Clone)]
pub struct PseudonymKey([u8; 32]);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey([redacted])")
    }
}

impl PseudonymKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key (tests; a server loads its key from a file).
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        crate::tokens::fill_random(&mut bytes);
        Self(bytes)
    }

    /// The pseudonym of `subject` in `account`.
    pub fn pseudonym(&self, account: &str, subject: &str) -> String {
        // HMAC takes a key of any length; `new_from_slice` cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(account.as_bytes());
        mac.update(&[0]);
        mac.update(subject.as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{PSEUDONYM_PREFIX}{hex}")
    }

    /// Reads the key at `path` (64 hex digits), creating it (mode 0600) if
    /// the file does not exist yet.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(text.trim())
                .map_err(|e| format!("the erasure key {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(format!(
                "cannot read the erasure key {}: {e}",
                path.display()
            )),
        }
    }

    fn parse(hex: &str) -> Result<Self, String> {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("must hold 64 hexadecimal digits (32 bytes)".into());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| "must hold 64 hexadecimal digits (32 bytes)".to_string())?;
        }
        Ok(Self(bytes))
    }

    fn create(path: &Path) -> Result<Self, String> {
        use std::io::Write;
        let key = Self::random();
        let hex: String = key.0.iter().map(|b| format!("{b:02x}")).collect();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        // create_new: two servers starting at once must not overwrite each other's key.
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(format!("{hex}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_or_create(path),
            Err(e) => Err(format!("cannot create {}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_has_one_pseudonym_per_key_and_account() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("erasure-key");
        let key = PseudonymKey::load_or_create(&path).unwrap();
        let again = PseudonymKey::load_or_create(&path).unwrap();
        let p = key.pseudonym("acme", "u-17");
        assert_eq!(p, again.pseudonym("acme", "u-17"));
        assert!(
            p.starts_with("erased:") && p.len() == "erased:".len() + 32,
            "{p}"
        );
        assert!(!p.contains("u-17"));
        assert_ne!(p, key.pseudonym("acme", "u-18"));
        assert_ne!(p, key.pseudonym("other", "u-17"));
        assert_ne!(p, PseudonymKey::random().pseudonym("acme", "u-17"));
        std::fs::write(&path, "not hex").unwrap();
        assert!(PseudonymKey::load_or_create(&path)
            .unwrap_err()
            .contains("64 hexadecimal digits"));
    }
}
