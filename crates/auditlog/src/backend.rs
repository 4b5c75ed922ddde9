//! Picks the storage backend, once: PostgreSQL for a `postgres://` URL,
//! otherwise the embedded store in a data directory. Everything after this
//! works against the storage traits.

use crate::config::Config;
use crate::error::CliResult;
use anyhow::{bail, Context};
use auditlog_store::Store;
use auditlog_store_postgres::PgStore;
use auditlog_store_sqlite::SqliteStore;
use std::sync::Arc;

/// Picks the backend once, from the configuration: PostgreSQL when a
/// database URL is given, otherwise the embedded store in the data directory.
pub async fn open_store(config: &Config) -> CliResult<Arc<dyn Store>> {
    match &config.database_url {
        Some(url) => open_location(url.expose()).await,
        None => Ok(Arc::new(open_data_dir(&config.data_dir)?)),
    }
}

/// Opens a store named by a `postgres://` URL or a data directory path.
pub async fn open_location(location: &str) -> CliResult<Arc<dyn Store>> {
    if auditlog_store_postgres::is_postgres_url(location) {
        return Ok(Arc::new(connect(location).await?));
    }
    if let Some((scheme, _)) = location.split_once("://") {
        bail!(
            "unsupported database URL scheme {scheme:?}: use postgres://user@host:port/database, \
             or a data directory path for the embedded store"
        );
    }
    Ok(Arc::new(open_data_dir(std::path::Path::new(location))?))
}

/// The embedded store in `dir`, created when missing.
pub fn open_data_dir(dir: &std::path::Path) -> CliResult<SqliteStore> {
    SqliteStore::open(dir)
        .with_context(|| format!("cannot open the embedded store in {}", dir.display()))
}

/// The PostgreSQL store at `url`. The URL may hold a password, so the error
/// names only the host part.
pub async fn connect(url: &str) -> CliResult<PgStore> {
    let host = url.rsplit_once('@').map_or(url, |(_, host)| host);
    PgStore::connect(url)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {host}"))
}
