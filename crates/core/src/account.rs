//! Account names: the tenant's handle in URLs, checkpoints (`<log>/<account>`)
//! and the CLI, so they are restricted to a portable alphabet.

use crate::FieldError;

/// Checks an account name: 1–64 characters of lowercase letters, digits, `-` and `_`,
/// starting with a letter or digit.
pub fn check_account_name(name: &str) -> Result<(), FieldError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "account",
            "invalid_account_name",
            format!("account name {name:?} must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        assert!(check_account_name("demo").is_ok());
        assert!(check_account_name("acme-2_eu").is_ok());
        for bad in ["", "Demo", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_account_name(bad).is_err(), "{bad}");
        }
    }
}
