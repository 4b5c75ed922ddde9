//! PostgreSQL as the source or the target of `auditlog copy`. Imported
//! events take the same sequencer lock as appends, so a copy into a database
//! that servers already use cannot interleave with their appends.

use crate::sql::{
    is_unique_violation, load_dictionaries, pg_error, to_record, RECORD_COLUMNS, RECORD_DICTIONARY,
};
use crate::tree_appends::TreeAppends;
use crate::writer::{to_hash, LogIds, Rows};
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::{leaf, RecordError};
use auditlog_core::{Taxonomy, Timestamp};
use auditlog_store::log_key::bound_key;
use auditlog_store::transfer::{ApiKeyRecord, TransferSource, TransferTarget, UserRecord};
use auditlog_store::{Account, AccountId, EventRecord, Result, Role, Scope, StoreError};

#[async_trait]
impl TransferSource for PgStore {
    async fn api_keys(&self, account: AccountId) -> Result<Vec<ApiKeyRecord>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT key_hash, scopes, public_id, name, prefix, expires_at, created_by, revoked_at, created_at \
                 FROM api_keys WHERE account_id = $1 ORDER BY id",
                &[&account],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|row| {
                let scopes: String = row.get(1);
                Ok(ApiKeyRecord {
                    key_hash: to_hash(row.get(0))?,
                    scopes: scopes.split(',').filter_map(Scope::parse).collect(),
                    public_id: row.get(2),
                    name: row.get(3),
                    prefix: row.get(4),
                    expires_at: row.get::<_, Option<i64>>(5).map(Timestamp::from_micros),
                    created_by: row.get(6),
                    created_at: Timestamp::from_micros(row.get(8)),
                    revoked_at: row.get::<_, Option<i64>>(7).map(Timestamp::from_micros),
                })
            })
            .collect()
    }

    async fn users(&self, account: AccountId) -> Result<Vec<UserRecord>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT email, password_hash, role, created_at, disabled_at, password_changed_at, id \
                 FROM users WHERE account_id = $1 ORDER BY id",
                &[&account],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|row| {
                let role: String = row.get(2);
                Ok(UserRecord {
                    id: row.get(6),
                    email: row.get(0),
                    password_hash: row.get(1),
                    role: Role::parse(&role)
                        .ok_or_else(|| StoreError::internal(format!("unknown role {role:?}")))?,
                    created_at: Timestamp::from_micros(row.get(3)),
                    disabled_at: row.get::<_, Option<i64>>(4).map(Timestamp::from_micros),
                    password_changed_at: row.get::<_, Option<i64>>(5).map(Timestamp::from_micros),
                })
            })
            .collect()
    }

    async fn events_after(
        &self,
        account: AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM event_log l \
                     WHERE l.key > $1 AND l.key <= $2 ORDER BY l.key LIMIT $3"
                ),
                &[
                    &bound_key(account, after_seq),
                    &bound_key(account, u64::MAX),
                    &(limit as i64),
                ],
            )
            .await
            .map_err(pg_error)?;
        load_dictionaries(&**client, &self.dictionaries, &rows, RECORD_DICTIONARY).await?;
        rows.iter()
            .map(|row| to_record(row, &self.dictionaries))
            .collect()
    }
}

#[async_trait]
impl TransferTarget for PgStore {
    async fn import_api_key(&self, account: AccountId, key: &ApiKeyRecord) -> Result<()> {
        let scopes = key
            .scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let client = self.client().await?;
        let written = client
            .execute(
                "INSERT INTO api_keys (account_id, key_hash, scopes, created_at, public_id, name, \
                                       prefix, expires_at, created_by, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (key_hash) DO UPDATE \
                 SET revoked_at = COALESCE(api_keys.revoked_at, EXCLUDED.revoked_at) \
                 WHERE api_keys.account_id = EXCLUDED.account_id \
                   AND api_keys.public_id = EXCLUDED.public_id",
                &[
                    &account,
                    &&key.key_hash[..],
                    &scopes,
                    &key.created_at.micros(),
                    &key.public_id,
                    &key.name,
                    &key.prefix,
                    &key.expires_at.map(|t| t.micros()),
                    &key.created_by,
                    &key.revoked_at.map(|t| t.micros()),
                ],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists(format!("API key {}", key.public_id))
                } else {
                    pg_error(e)
                }
            })?;
        if written == 0 {
            // The hash is there under another account or public id.
            return Err(StoreError::AlreadyExists(format!(
                "API key {} (another key with its hash is in the target)",
                key.public_id
            )));
        }
        Ok(())
    }

    async fn import_user(&self, account: AccountId, user: &UserRecord) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let row = tx
            .query_one(
                "INSERT INTO users (account_id, email, password_hash, role, created_at, \
                                    disabled_at, password_changed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (account_id, email) DO UPDATE \
                 SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, \
                     password_changed_at = EXCLUDED.password_changed_at, \
                     disabled_at = COALESCE(users.disabled_at, EXCLUDED.disabled_at) \
                 RETURNING id, disabled_at",
                &[
                    &account,
                    &user.email,
                    &user.password_hash,
                    &user.role.as_str(),
                    &user.created_at.micros(),
                    &user.disabled_at.map(|t| t.micros()),
                    &user.password_changed_at.map(|t| t.micros()),
                ],
            )
            .await
            .map_err(pg_error)?;
        if row.get::<_, Option<i64>>(1).is_some() {
            crate::users::end_sessions(&tx, row.get(0)).await?;
        }
        tx.commit().await.map_err(pg_error)
    }

    async fn import_taxonomy(&self, account: AccountId, taxonomy: &Taxonomy) -> Result<()> {
        let text = serde_json::to_string(taxonomy)
            .map_err(|e| StoreError::internal_caused_by("cannot encode the taxonomy", e))?;
        let client = self.client().await?;
        let written = client
            .execute(
                "UPDATE accounts SET taxonomy = $2 WHERE id = $1",
                &[&account, &text],
            )
            .await
            .map_err(pg_error)?;
        if written == 0 {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        Ok(())
    }

    async fn import_events(&self, account: &Account, events: Vec<EventRecord>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let row = tx
            .query_opt(
                "SELECT last_seq FROM account_sequencers WHERE account_id = $1 FOR UPDATE",
                &[&account.id],
            )
            .await
            .map_err(pg_error)?
            .ok_or_else(|| StoreError::NotFound(format!("account {:?}", account.name)))?;
        let mut last_seq = row.get::<_, i64>(0) as u64;
        let mut rows = Rows::default();
        let mut tree = TreeAppends::default();
        for record in events {
            let refuse = |why: String| {
                StoreError::internal(format!(
                    "cannot import event seq {} into account {:?}: {why}",
                    record.seq, account.name
                ))
            };
            if record.seq != last_seq + 1 {
                return Err(refuse(format!(
                    "the account's next seq is {}",
                    last_seq + 1
                )));
            }
            if leaf::leaf_hash(&record.leaf_bytes) != record.leaf_hash {
                return Err(refuse("its hash is not the hash of its leaf bytes".into()));
            }
            let unreadable = |e: RecordError| {
                StoreError::internal_caused_by(
                    format!(
                        "cannot import event seq {} into account {:?}: its leaf bytes and personal values do not read back",
                        record.seq, account.name
                    ),
                    e,
                )
            };
            // A version 2 leaf must be opened by its personal values (which
            // also proves it canonical); a version 1 leaf must be canonical.
            record.stored().check().map_err(unreadable)?;
            let stored = record.stored().stored_event().map_err(unreadable)?;
            if stored.seq() != record.seq || stored.account() != account.name {
                return Err(refuse(format!(
                    "its leaf names seq {} of account {:?}",
                    stored.seq(),
                    stored.account()
                )));
            }
            if record.personal.is_none() && stored.leaf_bytes() != record.leaf_bytes {
                return Err(refuse("its leaf bytes are not canonical".into()));
            }
            tree.add_leaf(&tx, account.id, record.seq as i64 - 1, record.leaf_hash)
                .await?;
            rows.push(
                account.id,
                &stored,
                (None, record.leaf_bytes),
                record.personal,
            )?;
            last_seq = record.seq;
        }
        rows.insert(&tx, &mut LogIds::default()).await?;
        tree.insert(&tx).await?;
        tx.execute(
            "UPDATE account_sequencers SET last_seq = $2 WHERE account_id = $1",
            &[&account.id, &(last_seq as i64)],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)
    }
}
