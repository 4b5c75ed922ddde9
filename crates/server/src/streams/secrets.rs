//! Stream secrets: the `whsec_` secret of a webhook, generated or checked,
//! and sealed at rest with ChaCha20-Poly1305 under a key kept outside the
//! database (a file in the data directory by default, shared by every
//! server of one database), so that a copy of the database alone does not
//! reveal them. The API never returns a secret after it was created.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::path::Path;

/// How a Standard Webhooks secret starts.
pub const PREFIX: &str = "whsec_";
/// The bytes of a generated secret.
const GENERATED_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

/// The key that seals stream secrets.
#[derive(Clone)]
pub struct SecretKey(Key);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Key::from(bytes))
    }

    /// A fresh random key (tests; a server loads its key from a file).
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        crate::tokens::fill_random(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Reads the key at `path` (64 hex digits), creating it (mode 0600) if
    /// the file does not exist yet.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(text.trim())
                .map_err(|e| format!("the stream secret key {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(format!(
                "cannot read the stream secret key {}: {e}",
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
        Ok(Self::from_bytes(bytes))
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

    /// `nonce ‖ ciphertext` of `plain`.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, String> {
        self.seal_for(b"", plain)
    }

    /// [`seal`](Self::seal) bound to `purpose` (authenticated, not
    /// encrypted): it opens only with the same purpose, so a value sealed
    /// for one use (a user's TOTP secret, say) cannot be moved to another.
    pub fn seal_for(&self, purpose: &[u8], plain: &[u8]) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_BYTES];
        crate::tokens::fill_random(&mut nonce);
        let payload = Payload {
            msg: plain,
            aad: purpose,
        };
        let sealed = ChaCha20Poly1305::new(&self.0)
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| "cannot seal the secret".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The secret [`seal`](Self::seal) sealed; an error when it was sealed
    /// under another key or altered.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, String> {
        self.open_for(b"", sealed)
    }

    /// What [`seal_for`](Self::seal_for) sealed for `purpose`.
    pub fn open_for(&self, purpose: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < NONCE_BYTES {
            return Err("a sealed stream secret is too short".into());
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        let payload = Payload {
            msg: body,
            aad: purpose,
        };
        ChaCha20Poly1305::new(&self.0)
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| {
                "a stream secret cannot be opened: it was sealed under another key \
                 (check the stream_secret_key_file setting) or altered"
                    .to_string()
            })
    }
}

/// A new random secret, `whsec_` + standard base64 of 32 random bytes.
pub fn generate() -> String {
    let mut bytes = [0u8; GENERATED_BYTES];
    crate::tokens::fill_random(&mut bytes);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// The HMAC key of a secret: the base64-decoded bytes after `whsec_`
/// (Standard Webhooks). The error says what is wrong.
pub fn hmac_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix(PREFIX)
        .ok_or_else(|| format!("a webhook secret starts with {PREFIX}"))?;
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| format!("a webhook secret is {PREFIX} followed by standard base64"))?;
    if !(24..=64).contains(&bytes.len()) {
        return Err(format!(
            "a webhook secret holds 24 to 64 bytes after {PREFIX}; this one holds {}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_under_their_key() {
        let key = SecretKey::random();
        let sealed = key.seal(b"whsec_abc").unwrap();
        assert!(
            !sealed.windows(9).any(|w| w == b"whsec_abc"),
            "not in clear"
        );
        assert_eq!(key.open(&sealed).unwrap(), b"whsec_abc");
        assert_ne!(
            key.seal(b"whsec_abc").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
        assert!(SecretKey::random().open(&sealed).is_err());
        let mut altered = sealed.clone();
        altered[15] ^= 1;
        assert!(key.open(&altered).is_err());
        assert!(key.open(&sealed[..5]).is_err());
        assert_eq!(format!("{key:?}"), "SecretKey([redacted])");
        // Bound to a purpose: opens only for it.
        let bound = key.seal_for(b"user 1", b"x").unwrap();
        assert_eq!(key.open_for(b"user 1", &bound).unwrap(), b"x");
        assert!(key.open_for(b"user 2", &bound).is_err());
        assert!(key.open(&bound).is_err());
    }

    #[test]
    fn the_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/stream-secret-key");
        let key = SecretKey::load_or_create(&path).unwrap();
        let again = SecretKey::load_or_create(&path).unwrap();
        let sealed = key.seal(b"x").unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "nothex\n").unwrap();
        let e = SecretKey::load_or_create(&path).unwrap_err();
        assert!(e.contains("64 hexadecimal digits"), "{e}");
    }

    #[test]
    fn secrets_are_generated_and_checked() {
        let secret = generate();
        assert_eq!(hmac_key(&secret).unwrap().len(), GENERATED_BYTES);
        assert!(hmac_key("abc").unwrap_err().contains("starts with whsec_"));
        assert!(hmac_key("whsec_%%%").unwrap_err().contains("base64"));
        assert!(hmac_key("whsec_AAAA")
            .unwrap_err()
            .contains("24 to 64 bytes"));
    }
}
