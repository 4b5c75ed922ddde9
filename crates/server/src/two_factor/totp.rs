//! TOTP (RFC 6238) as authenticator apps use it: HMAC-SHA1, 30-second time
//! steps counted from the Unix epoch, 6 digits, the secret shown as base32
//! (RFC 4648, no padding) and in an `otpauth://` URI. A code is accepted
//! in its own step or one step either side (clock drift), and never in a
//! step at or before the last one accepted for the user: the caller stores
//! that step atomically, so a code cannot be used twice, on any server.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Seconds per time step (RFC 6238's default, what every app uses).
pub const STEP_SECONDS: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Bytes of a generated secret: 160 bits, RFC 4226's recommendation.
pub const SECRET_BYTES: usize = 20;
/// Steps accepted either side of the current one.
const DRIFT_STEPS: u64 = 1;

/// The HOTP value (RFC 4226 §5.3) of `secret` at `counter`, `digits` long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// The time step of Unix time `seconds`.
pub fn step_at(seconds: u64) -> u64 {
    seconds / STEP_SECONDS
}

/// The code of `secret` at Unix time `seconds`, zero-padded.
pub fn code_at(secret: &[u8], seconds: u64) -> String {
    format!(
        "{:0width$}",
        hotp(secret, step_at(seconds), DIGITS),
        width = DIGITS as usize
    )
}

/// The step whose code `code` is, within the drift window around Unix time
/// `seconds`, if it is later than `after_step` (the last step accepted).
/// `code` may contain spaces; anything but six digits matches nothing.
pub fn matching_step(
    secret: &[u8],
    code: &str,
    seconds: u64,
    after_step: Option<u64>,
) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u32 = code.parse().ok()?;
    let now = step_at(seconds);
    let mut found = None;
    for step in now.saturating_sub(DRIFT_STEPS)..=now + DRIFT_STEPS {
        // Compare every candidate, so the time taken does not say which matched.
        let matches = hotp(secret, step, DIGITS) == value;
        if matches && after_step.is_none_or(|last| step > last) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Percent-encodes a URI component (RFC 3986 unreserved kept).
fn encode_component(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The `otpauth://totp/…` URI an app reads from the QR code: issuer
/// `Auditlog`, the account and email as the label.
pub fn otpauth_uri(secret: &[u8], account: &str, email: &str) -> String {
    format!(
        "otpauth://totp/Auditlog:{}?secret={}&issuer=Auditlog&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        encode_component(&format!("{account} {email}")),
        base32(secret),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, the SHA-1 rows: the seed is the ASCII of
    /// "12345678901234567890", codes are 8 digits.
    #[test]
    fn rfc_6238_test_vectors() {
        let seed = b"12345678901234567890";
        for (time, expected) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(seed, step_at(time), 8), expected, "T = {time}");
        }
        // The same with 6 digits: the last six of each.
        assert_eq!(code_at(seed, 59), "287082");
        assert_eq!(code_at(seed, 1111111109), "081804");
    }

    /// RFC 4226 Appendix D: HOTP of the same seed, counters 0 to 9.
    #[test]
    fn rfc_4226_test_vectors() {
        let seed = b"12345678901234567890";
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, value) in expected.iter().enumerate() {
            assert_eq!(hotp(seed, counter as u64, 6), *value, "counter {counter}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_neighbours_but_never_twice() {
        let seed = b"12345678901234567890";
        let now = 1_111_111_111;
        let code = code_at(seed, now);
        let step = step_at(now);
        assert_eq!(matching_step(seed, &code, now, None), Some(step));
        assert_eq!(
            matching_step(seed, &format!("{} {}", &code[..3], &code[3..]), now, None),
            Some(step),
            "spaces are ignored"
        );
        // Drift of one step either way.
        assert_eq!(matching_step(seed, &code, now + 30, None), Some(step));
        assert_eq!(matching_step(seed, &code, now - 30, None), Some(step));
        assert_eq!(matching_step(seed, &code, now + 90, None), None);
        // Not again once its step was accepted, nor an older step's.
        assert_eq!(matching_step(seed, &code, now, Some(step)), None);
        assert_eq!(matching_step(seed, &code, now, Some(step - 1)), Some(step));
        for bad in ["", "12345", "1234567", "abcdef", "12 34 5x"] {
            assert_eq!(matching_step(seed, bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_is_rfc_4648_without_padding() {
        // RFC 4648 §10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(plain.as_bytes()), encoded);
        }
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn the_uri_names_the_issuer_and_encodes_the_label() {
        let uri = otpauth_uri(b"12345678901234567890", "acme", "ada@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Auditlog:acme%20ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Auditlog&algorithm=SHA1&digits=6&period=30"
        );
    }
}
