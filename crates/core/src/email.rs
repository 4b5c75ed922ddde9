//! Console users' email addresses, as stored and compared: trimmed and
//! lowercase, so that `Ada@Example.com ` and `ada@example.com` are one user.

use crate::FieldError;

/// Longest address accepted, in bytes.
pub const MAX_EMAIL_BYTES: usize = 200;

/// An email address that has passed its rules: trimmed, lowercase, with an
/// `@`, at most [`MAX_EMAIL_BYTES`]. The field is private, so no other code
/// can build one around [`Email::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let email = text.trim().to_ascii_lowercase();
        if !email.contains('@') || email.len() > MAX_EMAIL_BYTES {
            return Err(FieldError::new(
                "email",
                "invalid_email",
                format!("{email:?} is not an email address"),
            ));
        }
        Ok(Self(email))
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lowercased_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_ref(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "   ",
            &format!("{}@x", "a".repeat(MAX_EMAIL_BYTES)),
        ] {
            let error = Email::parse(bad).unwrap_err();
            assert_eq!(
                (error.field.as_str(), error.rule),
                ("email", "invalid_email")
            );
        }
    }
}
