//! Editing an account's taxonomy (issue 18): admins add event types and
//! actions and retire them. The taxonomy is read, edited and written back
//! in one transaction that holds the account's row, so that two admins
//! editing at once on two servers never lose one edit and each audit event
//! names the exact value it replaced.

use crate::{AccountId, Result};
use async_trait::async_trait;
use auditlog_core::taxonomy::{TaxonomyChange, TaxonomyEdit};
use auditlog_core::{FieldError, Taxonomy};

/// What an edit did: the taxonomy after it and the change, `None` if it
/// changed nothing; or why it was refused (field and rule).
pub type EditOutcome = std::result::Result<Option<(Taxonomy, TaxonomyChange)>, FieldError>;

#[async_trait]
pub trait Taxonomies: Send + Sync {
    /// Applies `edit` ([`Taxonomy::apply`]) to the stored taxonomy of
    /// `account` in one transaction. `NotFound` if there is no such account.
    async fn edit_taxonomy(&self, account: AccountId, edit: &TaxonomyEdit) -> Result<EditOutcome>;
}
