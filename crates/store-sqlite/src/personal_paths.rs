//! The account's declared personal `details` paths (migration 0019), as
//! the API reads and replaces them; the writer reads them with
//! `declared_paths::read`.

use crate::declared_paths::read;
use crate::sql::sql_error;
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::leaf_v2::DetailsPath;
use auditlog_core::Timestamp;
use auditlog_store::personal_paths::encode;
use auditlog_store::{AccountId, PersonalPaths, Result};
use rusqlite::params;

#[async_trait]
impl PersonalPaths for SqliteStore {
    async fn personal_paths(&self, account: AccountId) -> Result<Vec<DetailsPath>> {
        self.with_conn(move |conn| read(conn, account)).await
    }

    async fn set_personal_paths(
        &self,
        account: AccountId,
        paths: &[DetailsPath],
    ) -> Result<Vec<DetailsPath>> {
        let stored = encode(paths)?;
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let old = read(&tx, account)?;
            tx.execute(
                "INSERT INTO personal_paths (account_id, paths, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (account_id) DO UPDATE SET paths = excluded.paths, \
                 updated_at = excluded.updated_at",
                params![account, stored, Timestamp::now().micros()],
            )
            .map_err(sql_error)?;
            tx.commit().map_err(sql_error)?;
            Ok(old)
        })
        .await
    }
}
