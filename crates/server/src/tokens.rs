//! Secrets and their hashes: API keys (256-bit random secrets shown once
//! and stored only as SHA-256: a fast hash suits high-entropy secrets and
//! keeps lookups O(1)), passwords (argon2id PHC strings), and the random
//! tokens of sessions and error references. A leaf module: the error type,
//! the authenticating extractor (`auth`), the console and the binary all
//! use it, and it uses none of them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Prefix of every API key, so that secret scanners and people recognise one.
pub const KEY_PREFIX: &str = "alk_";

/// `bytes` random bytes as URL-safe base64.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS random source failing is not recoverable; there is no safe fallback for secrets.
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(buf)
}

/// Fills `buf` with random bytes from the operating system.
pub fn fill_random(buf: &mut [u8]) {
    // The OS random source failing is not recoverable; there is no safe fallback for secrets.
    getrandom::fill(buf).expect("the operating system's random source failed");
}

/// A new API key secret.
pub fn new_api_key() -> String {
    format!("{KEY_PREFIX}{}", random_token(32))
}

pub fn hash_api_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordHashError {
    #[error("the OS random source failed")]
    Random(#[source] getrandom::Error),
    /// argon2's error is not a `std::error::Error` in this build, so its
    /// words are kept in the message.
    #[error("cannot hash the password: {0}")]
    Hash(argon2::password_hash::Error),
}

/// An argon2id hash of `password` in PHC form.
pub fn hash_password(password: &str) -> Result<String, PasswordHashError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(PasswordHashError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(PasswordHashError::Hash)?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(PasswordHashError::Hash)
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc)
        .map(|hash| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_stably() {
        let (a, b) = (new_api_key(), new_api_key());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() > 40);
        assert_eq!(hash_api_key(&a), hash_api_key(&a));
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong", &phc));
        assert!(!verify_password("x", "not a hash"));
    }
}
