//! The account's declared personal `details` paths (migration 0018), as
//! the API reads and replaces them; the writer reads them with
//! `declared_paths::read`.

use crate::declared_paths::read;
use crate::sql::pg_error;
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::leaf_v2::DetailsPath;
use auditlog_core::Timestamp;
use auditlog_store::personal_paths::encode;
use auditlog_store::{AccountId, PersonalPaths, Result};

#[async_trait]
impl PersonalPaths for PgStore {
    async fn personal_paths(&self, account: AccountId) -> Result<Vec<DetailsPath>> {
        let client = self.client().await?;
        Ok(read(&client, &[account])
            .await?
            .remove(&account)
            .unwrap_or_default())
    }

    async fn set_personal_paths(
        &self,
        account: AccountId,
        paths: &[DetailsPath],
    ) -> Result<Vec<DetailsPath>> {
        let stored = encode(paths)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // Locks the account's row (or its absence, by the insert) so that two
        // admins replacing at once each see the other's as the old value.
        tx.execute(
            "SELECT 1 FROM personal_paths WHERE account_id = $1 FOR UPDATE",
            &[&account],
        )
        .await
        .map_err(pg_error)?;
        let old = read(&tx, &[account])
            .await?
            .remove(&account)
            .unwrap_or_default();
        tx.execute(
            "INSERT INTO personal_paths (account_id, paths, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET paths = EXCLUDED.paths, \
             updated_at = EXCLUDED.updated_at",
            &[&account, &stored, &Timestamp::now().micros()],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(old)
    }
}
