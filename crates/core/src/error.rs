//! The validation error shared by every check in this crate: which field broke
//! which rule, in words a client developer can act on.

use serde::Serialize;

/// One broken rule of one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's path in the request, such as `actor.id` or `from`.
    pub field: String,
    /// A stable snake_case name of the rule, such as `required` or `too_long`.
    pub rule: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}
