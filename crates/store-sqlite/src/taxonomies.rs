//! Editing an account's taxonomy: read, apply, write back in one immediate
//! transaction (the database's write lock), so concurrent edits serialise.

use crate::sql::{sql_error, to_account};
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::taxonomy::TaxonomyEdit;
use auditlog_store::{AccountId, EditOutcome, Result, StoreError, Taxonomies};
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl Taxonomies for SqliteStore {
    async fn edit_taxonomy(&self, account: AccountId, edit: &TaxonomyEdit) -> Result<EditOutcome> {
        let edit = edit.clone();
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let row = tx
                .query_row(
                    "SELECT id, name, taxonomy FROM accounts WHERE id = ?1",
                    [account],
                    crate::sql::account_from_row,
                )
                .optional()
                .map_err(sql_error)?
                .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
            let current = to_account(row)?;
            let outcome = current.taxonomy.apply(&edit);
            if let Ok(Some((next, _))) = &outcome {
                let text = serde_json::to_string(next)
                    .map_err(|e| StoreError::internal_caused_by("cannot encode the taxonomy", e))?;
                tx.execute(
                    "UPDATE accounts SET taxonomy = ?2 WHERE id = ?1",
                    params![account, text],
                )
                .map_err(sql_error)?;
                tx.commit().map_err(sql_error)?;
            }
            Ok(outcome)
        })
        .await
    }
}
