//! Reading an account's declared personal `details` paths (migration 0019:
//! one row per account that declared any), for the writer, which reads
//! them in each group's transaction so that a declaration applies from the
//! next event, and for the `PersonalPaths` role.

use crate::sql::sql_error;
use auditlog_core::leaf_v2::DetailsPath;
use auditlog_store::personal_paths::decode;
use auditlog_store::{AccountId, Result};
use rusqlite::{Connection, OptionalExtension};

/// The account's declared paths, on `conn` (the writer's transaction).
pub fn read(conn: &Connection, account: AccountId) -> Result<Vec<DetailsPath>> {
    let stored: Option<String> = conn
        .prepare_cached("SELECT paths FROM personal_paths WHERE account_id = ?1")
        .and_then(|mut stmt| stmt.query_row([account], |r| r.get(0)).optional())
        .map_err(sql_error)?;
    match stored {
        Some(text) => decode(&text),
        None => Ok(Vec::new()),
    }
}
