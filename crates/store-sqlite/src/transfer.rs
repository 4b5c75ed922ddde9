//! The embedded store as the source of `auditlog copy`: everything it holds,
//! read out unchanged.

use crate::event_log;
use crate::sql::{event_record, sql_error, to_record, LeafDecoder, RECORD_COLUMNS};
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::merkle::stored_hash_index;
use auditlog_core::Timestamp;
use auditlog_store::log_key::seq_of;
use auditlog_store::transfer::{ApiKeyRecord, RemovedRecord, TransferSource, UserRecord};
use auditlog_store::{
    AccountId, EventRecord, RemovalKind, Result, Role, Scope, StoreError, TreeStore,
};
use rusqlite::params;

#[async_trait]
impl TransferSource for SqliteStore {
    async fn api_keys(&self, account: AccountId) -> Result<Vec<ApiKeyRecord>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT key_hash, scopes, public_id, name, prefix, expires_at, created_by, revoked_at, created_at \
                     FROM api_keys WHERE account_id = ?1 ORDER BY id",
                )
                .map_err(sql_error)?;
            let rows = stmt
                .query_map([account], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        (
                            r.get::<_, String>(4)?,
                            r.get::<_, Option<i64>>(5)?,
                            r.get::<_, String>(6)?,
                            r.get::<_, Option<i64>>(7)?,
                            r.get::<_, i64>(8)?,
                        ),
                    ))
                })
                .map_err(sql_error)?;
            let mut keys = Vec::new();
            for row in rows {
                let (hash, scopes, public_id, name, (prefix, expires_at, created_by, revoked_at, created_at)) =
                    row.map_err(sql_error)?;
                keys.push(ApiKeyRecord {
                    key_hash: crate::writer::to_hash(&hash)?,
                    scopes: scopes.split(',').filter_map(Scope::parse).collect(),
                    public_id,
                    name,
                    prefix,
                    expires_at: expires_at.map(Timestamp::from_micros),
                    created_by,
                    created_at: Timestamp::from_micros(created_at),
                    revoked_at: revoked_at.map(Timestamp::from_micros),
                });
            }
            Ok(keys)
        })
        .await
    }

    async fn users(&self, account: AccountId) -> Result<Vec<UserRecord>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT email, password_hash, role, created_at, disabled_at, password_changed_at, id \
                     FROM users WHERE account_id = ?1 ORDER BY id",
                )
                .map_err(sql_error)?;
            let rows = stmt
                .query_map([account], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, i64>(6)?,
                    ))
                })
                .map_err(sql_error)?;
            let mut users = Vec::new();
            for row in rows {
                let (email, password_hash, role, created_at, disabled_at, password_changed_at, id) =
                    row.map_err(sql_error)?;
                let role = Role::parse(&role)
                    .ok_or_else(|| StoreError::internal(format!("unknown role {role:?}")))?;
                users.push(UserRecord {
                    id,
                    email,
                    password_hash,
                    role,
                    created_at: Timestamp::from_micros(created_at),
                    disabled_at: disabled_at.map(Timestamp::from_micros),
                    password_changed_at: password_changed_at.map(Timestamp::from_micros),
                });
            }
            Ok(users)
        })
        .await
    }

    async fn events_after(
        &self,
        account: AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>> {
        let dictionaries = self.dictionaries.clone();
        self.with_conn(move |conn| {
            let (_, last) = event_log::account_keys(account);
            let first = event_log::bound_key(account, after_seq.saturating_add(1));
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {RECORD_COLUMNS} FROM event_log \
                     WHERE key BETWEEN ?1 AND ?2 ORDER BY key LIMIT ?3"
                ))
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![first, last, limit as i64], event_record)
                .map_err(sql_error)?;
            let leaves = LeafDecoder {
                cache: &dictionaries,
                conn,
                objects: None,
            };
            rows.map(|row| {
                row.map_err(sql_error)
                    .and_then(|row| to_record(row, &leaves))
            })
            .collect()
        })
        .await
    }

    async fn removed_after(
        &self,
        account: AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<RemovedRecord>> {
        let rows = self
            .with_conn(move |conn| {
                let (_, last) = event_log::account_keys(account);
                let first = event_log::bound_key(account, after_seq.saturating_add(1));
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT key, event_id, record_seq, kind FROM removed_events \
                         WHERE key BETWEEN ?1 AND ?2 ORDER BY key LIMIT ?3",
                    )
                    .map_err(sql_error)?;
                let rows = stmt
                    .query_map(params![first, last, limit as i64], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    })
                    .map_err(sql_error)?;
                rows.map(|r| r.map_err(sql_error))
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        let indexes: Vec<i64> = rows
            .iter()
            .map(|r| stored_hash_index(0, seq_of(r.0) as i64 - 1))
            .collect();
        let hashes = self.read_hashes(account, &indexes).await?;
        rows.into_iter()
            .zip(hashes)
            .map(|((key, event_id, record_seq, kind), leaf_hash)| {
                let seq = seq_of(key);
                Ok(RemovedRecord {
                    seq,
                    event_id,
                    record_seq: record_seq as u64,
                    kind: RemovalKind::parse(&kind).ok_or_else(|| {
                        StoreError::internal(format!("removed event seq {seq} has kind {kind:?}"))
                    })?,
                    leaf_hash,
                })
            })
            .collect()
    }

    async fn erased_after(
        &self,
        account: AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, personal FROM event_personal WHERE account_id = ?1 AND seq > ?2 \
                     AND substr(personal, 1, 10) = CAST('{\"erased\":' AS BLOB) \
                     ORDER BY seq LIMIT ?3",
                )
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![account, after_seq as i64, limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
                })
                .map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error)).collect()
        })
        .await
    }
}
