//! RFC 9162 leaf hashing: the link between an event's stored bytes and the
//! account's Merkle tree.

use sha2::{Digest, Sha256};

/// SHA-256(0x00 ‖ leaf bytes).
pub fn leaf_hash(leaf_bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(leaf_bytes);
    hasher.finalize().into()
}

/// Lowercase hex, the form in which the API shows a hash.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    write_hex(bytes, &mut out);
    // Hex digits are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the lowercase hex of `bytes` to `out` (no `String` per hash).
pub fn write_hex(bytes: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 15) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_hash_prefixes_zero_byte() {
        // RFC 6962 test vector: the hash of the empty leaf.
        assert_eq!(
            to_hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }
}
