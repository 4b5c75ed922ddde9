//! Account names: the tenant's handle in URLs, checkpoints (`<log>/<account>`)
//! and the CLI, so they are restricted to a portable alphabet.

use crate::FieldError;

/// An account name that has passed its rules: 1–64 characters of lowercase
/// letters, digits, `-` and `_`, starting with a letter or digit. The field
/// is private, so no other code can build one around [`AccountName::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountName(String);

impl AccountName {
    pub fn parse(name: &str) -> Result<Self, FieldError> {
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
            Ok(Self(name.to_string()))
        } else {
            Err(FieldError::new(
                "account",
                "invalid_account_name",
                format!("account name {name:?} must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"),
            ))
        }
    }
}

impl AsRef<str> for AccountName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AccountName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks an account name by [`AccountName::parse`]'s rules, for the stores,
/// which are handed names as text.
pub fn check_account_name(name: &str) -> Result<(), FieldError> {
    AccountName::parse(name).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        assert_eq!(AccountName::parse("demo").unwrap().as_ref(), "demo");
        assert!(check_account_name("demo").is_ok());
        assert!(check_account_name("acme-2_eu").is_ok());
        for bad in ["", "Demo", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_account_name(bad).is_err(), "{bad}");
        }
    }
}
