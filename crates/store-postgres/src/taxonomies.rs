//! Editing an account's taxonomy: read with the account's row locked
//! (`FOR UPDATE`), apply, write back, so that edits made at once on two
//! servers serialise.

use crate::sql::{pg_error, to_account};
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::taxonomy::TaxonomyEdit;
use auditlog_store::{AccountId, EditOutcome, Result, StoreError, Taxonomies};

#[async_trait]
impl Taxonomies for PgStore {
    async fn edit_taxonomy(&self, account: AccountId, edit: &TaxonomyEdit) -> Result<EditOutcome> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let row = tx
            .query_opt(
                "SELECT id, name, taxonomy FROM accounts WHERE id = $1 FOR UPDATE",
                &[&account],
            )
            .await
            .map_err(pg_error)?
            .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
        let current = to_account(&row)?;
        let outcome = current.taxonomy.apply(edit);
        if let Ok(Some((next, _))) = &outcome {
            let text = serde_json::to_string(next)
                .map_err(|e| StoreError::internal_caused_by("cannot encode the taxonomy", e))?;
            tx.execute(
                "UPDATE accounts SET taxonomy = $2 WHERE id = $1",
                &[&account, &text],
            )
            .await
            .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
        }
        Ok(outcome)
    }
}
