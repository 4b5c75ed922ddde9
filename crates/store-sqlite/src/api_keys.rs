//! The `api_keys` table: creating, listing and revoking keys, the query
//! that authenticates (which refuses revoked and expired keys itself), and
//! the minute-granular note of a key's last use.

use crate::sql::{sql_error, to_account};
use auditlog_core::Timestamp;
use auditlog_store::{AccountId, ApiKeyGrant, ApiKeyInfo, NewApiKey, Result, Scope};
use rusqlite::{params, Connection, OptionalExtension};

const INFO_COLUMNS: &str =
    "id, public_id, prefix, name, scopes, expires_at, created_by, created_at, last_used_at, revoked_at";

fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_scopes(text: &str) -> Vec<Scope> {
    text.split(',').filter_map(Scope::parse).collect()
}

fn info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyInfo> {
    let at = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(Timestamp::from_micros))
    };
    Ok(ApiKeyInfo {
        id: r.get(0)?,
        public_id: r.get(1)?,
        prefix: r.get(2)?,
        name: r.get(3)?,
        scopes: parse_scopes(&r.get::<_, String>(4)?),
        expires_at: at(5)?,
        created_by: r.get(6)?,
        created_at: Timestamp::from_micros(r.get(7)?),
        last_used_at: at(8)?,
        revoked_at: at(9)?,
    })
}

fn by_id(conn: &Connection, id: i64) -> Result<ApiKeyInfo> {
    conn.query_row(
        &format!("SELECT {INFO_COLUMNS} FROM api_keys WHERE id = ?1"),
        [id],
        info_from_row,
    )
    .map_err(sql_error)
}

pub fn create(conn: &Connection, key: &NewApiKey) -> Result<ApiKeyInfo> {
    conn.execute(
        "INSERT INTO api_keys (account_id, key_hash, scopes, created_at, public_id, name, prefix, \
                               expires_at, created_by) \
         VALUES (?1, ?2, ?3, ?4, 'key_' || lower(hex(randomblob(8))), ?5, ?6, ?7, ?8)",
        params![
            key.account_id,
            &key.key_hash[..],
            scopes_text(&key.scopes),
            key.created_at.micros(),
            key.name,
            key.prefix,
            key.expires_at.map(|t| t.micros()),
            key.created_by,
        ],
    )
    .map_err(sql_error)?;
    by_id(conn, conn.last_insert_rowid())
}

pub fn by_hash(
    conn: &Connection,
    key_hash: [u8; 32],
    now: Timestamp,
) -> Result<Option<ApiKeyGrant>> {
    let row = conn
        .query_row(
            "SELECT k.id, k.scopes, a.id, a.name, a.taxonomy, k.public_id, k.name, k.expires_at \
             FROM api_keys k JOIN accounts a ON a.id = k.account_id \
             WHERE k.key_hash = ?1 AND k.revoked_at IS NULL \
               AND (k.expires_at IS NULL OR k.expires_at > ?2)",
            params![&key_hash[..], now.micros()],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    (r.get(2)?, r.get(3)?, r.get(4)?),
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                ))
            },
        )
        .optional()
        .map_err(sql_error)?;
    let Some((key_id, scopes, account, public_id, name, expires_at)) = row else {
        return Ok(None);
    };
    Ok(Some(ApiKeyGrant {
        key_id,
        public_id,
        name,
        account: to_account(account)?,
        scopes: parse_scopes(&scopes),
        expires_at: expires_at.map(Timestamp::from_micros),
    }))
}

pub fn list(conn: &Connection, account: AccountId) -> Result<Vec<ApiKeyInfo>> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {INFO_COLUMNS} FROM api_keys WHERE account_id = ?1 ORDER BY id"
        ))
        .map_err(sql_error)?;
    let rows = stmt
        .query_map([account], info_from_row)
        .map_err(sql_error)?;
    rows.map(|r| r.map_err(sql_error)).collect()
}

pub fn revoke(
    conn: &Connection,
    account: AccountId,
    public_id: &str,
    now: Timestamp,
) -> Result<Option<ApiKeyInfo>> {
    let id: Option<i64> = conn
        .query_row(
            "SELECT id FROM api_keys WHERE account_id = ?1 AND public_id = ?2",
            params![account, public_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_error)?;
    let Some(id) = id else { return Ok(None) };
    conn.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now.micros()],
    )
    .map_err(sql_error)?;
    by_id(conn, id).map(Some)
}

pub fn touch(conn: &Connection, key_id: i64, minute: Timestamp) -> Result<()> {
    conn.execute(
        "UPDATE api_keys SET last_used_at = ?2 \
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
        params![key_id, minute.micros()],
    )
    .map_err(sql_error)?;
    Ok(())
}
