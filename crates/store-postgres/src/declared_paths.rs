//! Reading the declared personal `details` paths of a group's accounts
//! (migration 0018: one row per account that declared any), for the writer,
//! which reads them in the group's transaction so that a declaration
//! applies from the next event, and for the `PersonalPaths` role.

use crate::sql::pg_error;
use auditlog_core::leaf_v2::DetailsPath;
use auditlog_store::personal_paths::decode;
use auditlog_store::{AccountId, Result};
use deadpool_postgres::GenericClient;
use std::collections::HashMap;

/// The declared paths of each of `accounts` that declared any.
pub async fn read<C: GenericClient + Sync>(
    client: &C,
    accounts: &[AccountId],
) -> Result<HashMap<AccountId, Vec<DetailsPath>>> {
    let rows = client
        .query(
            "SELECT account_id, paths FROM personal_paths WHERE account_id = ANY($1)",
            &[&accounts],
        )
        .await
        .map_err(pg_error)?;
    rows.iter()
        .map(|row| Ok((row.get::<_, i64>(0), decode(row.get::<_, &str>(1))?)))
        .collect()
}
