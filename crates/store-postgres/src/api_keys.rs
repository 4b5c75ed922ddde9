//! The `api_keys` table: creating, listing and revoking keys, the query
//! that authenticates (which refuses revoked and expired keys itself), and
//! the minute-granular note of a key's last use.

use crate::sql::{pg_error, to_account};
use auditlog_core::Timestamp;
use auditlog_store::{AccountId, ApiKeyGrant, ApiKeyInfo, NewApiKey, Result, Scope};
use tokio_postgres::{Client, Row};

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

fn info_from_row(r: &Row) -> ApiKeyInfo {
    let at = |i: usize| r.get::<_, Option<i64>>(i).map(Timestamp::from_micros);
    ApiKeyInfo {
        id: r.get(0),
        public_id: r.get(1),
        prefix: r.get(2),
        name: r.get(3),
        scopes: parse_scopes(r.get(4)),
        expires_at: at(5),
        created_by: r.get(6),
        created_at: Timestamp::from_micros(r.get(7)),
        last_used_at: at(8),
        revoked_at: at(9),
    }
}

pub async fn create(client: &Client, key: &NewApiKey) -> Result<ApiKeyInfo> {
    let row = client
        .query_one(
            &format!(
                "INSERT INTO api_keys (account_id, key_hash, scopes, created_at, public_id, name, prefix, \
                                       expires_at, created_by) \
                 VALUES ($1, $2, $3, $4, 'key_' || substr(md5(random()::text || clock_timestamp()::text), 1, 16), \
                         $5, $6, $7, $8) \
                 RETURNING {INFO_COLUMNS}"
            ),
            &[
                &key.account_id,
                &&key.key_hash[..],
                &scopes_text(&key.scopes),
                &key.created_at.micros(),
                &key.name,
                &key.prefix,
                &key.expires_at.map(|t| t.micros()),
                &key.created_by,
            ],
        )
        .await
        .map_err(pg_error)?;
    Ok(info_from_row(&row))
}

pub async fn by_hash(
    client: &Client,
    key_hash: [u8; 32],
    now: Timestamp,
) -> Result<Option<ApiKeyGrant>> {
    let row = client
        .query_opt(
            "SELECT a.id, a.name, a.taxonomy, k.id, k.scopes, k.public_id, k.name, k.expires_at \
             FROM api_keys k JOIN accounts a ON a.id = k.account_id \
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL \
               AND (k.expires_at IS NULL OR k.expires_at > $2)",
            &[&&key_hash[..], &now.micros()],
        )
        .await
        .map_err(pg_error)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(ApiKeyGrant {
        key_id: row.get(3),
        public_id: row.get(5),
        name: row.get(6),
        account: to_account(&row)?,
        scopes: parse_scopes(row.get(4)),
        expires_at: row.get::<_, Option<i64>>(7).map(Timestamp::from_micros),
    }))
}

pub async fn list(client: &Client, account: AccountId) -> Result<Vec<ApiKeyInfo>> {
    let rows = client
        .query(
            &format!("SELECT {INFO_COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY id"),
            &[&account],
        )
        .await
        .map_err(pg_error)?;
    Ok(rows.iter().map(info_from_row).collect())
}

pub async fn revoke(
    client: &Client,
    account: AccountId,
    public_id: &str,
    now: Timestamp,
) -> Result<Option<ApiKeyInfo>> {
    // COALESCE keeps the first revocation time of a key revoked twice.
    let row = client
        .query_opt(
            &format!(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) \
                 WHERE account_id = $1 AND public_id = $2 RETURNING {INFO_COLUMNS}"
            ),
            &[&account, &public_id, &now.micros()],
        )
        .await
        .map_err(pg_error)?;
    Ok(row.as_ref().map(info_from_row))
}

pub async fn touch(client: &Client, key_id: i64, minute: Timestamp) -> Result<()> {
    client
        .execute(
            "UPDATE api_keys SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
            &[&key_id, &minute.micros()],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}
