//! Where the salts of leaf v2's commitments come from. Injected, so that the
//! product draws them from the operating system and tests from a fixed
//! sequence (reproducible leaves).

use super::LeafV2Error;

/// Bytes of one salt (SPEC: a fresh 16-byte random salt per commitment).
pub const SALT_BYTES: usize = 16;

/// One commitment's salt.
pub type Salt = [u8; SALT_BYTES];

/// Hands out one salt per commitment.
pub trait SaltSource {
    fn next_salt(&mut self) -> Result<Salt, LeafV2Error>;
}

/// The product's salts: the operating system's random source. A salt that
/// could be guessed would let anyone test a guessed personal value against a
/// commitment after erasure, so nothing weaker will do.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsSalts;

impl SaltSource for OsSalts {
    fn next_salt(&mut self) -> Result<Salt, LeafV2Error> {
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt).map_err(LeafV2Error::Randomness)?;
        Ok(salt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_gives_a_different_salt_each_time() {
        let mut salts = OsSalts;
        let first = salts.next_salt().unwrap();
        let second = salts.next_salt().unwrap();
        assert_ne!(first, second);
    }
}
