//! PostgreSQL as the source or the target of `auditlog copy`. Imported
//! events take the same sequencer lock as appends, so a copy into a database
//! that servers already use cannot interleave with their appends.

use crate::sql::{pg_error, to_record, to_user};
use crate::tree_appends::TreeAppends;
use crate::writer::{to_hash, Rows};
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::{leaf, StoredEvent};
use auditlog_store::transfer::{ApiKeyRecord, TransferSource, TransferTarget};
use auditlog_store::{Account, AccountId, EventRecord, Result, Scope, StoreError, User};

#[async_trait]
impl TransferSource for PgStore {
    async fn api_keys(&self, account: AccountId) -> Result<Vec<ApiKeyRecord>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT key_hash, scopes FROM api_keys WHERE account_id = $1 ORDER BY id",
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
                })
            })
            .collect()
    }

    async fn users(&self, account: AccountId) -> Result<Vec<User>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, email, password_hash, role FROM users WHERE account_id = $1 ORDER BY id",
                &[&account],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(|r| to_user(account, r)).collect()
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
                "SELECT seq, time, leaf, leaf_hash FROM events \
                 WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&account, &(after_seq as i64), &(limit as i64)],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(to_record).collect()
    }
}

#[async_trait]
impl TransferTarget for PgStore {
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
            let stored = StoredEvent::from_leaf_bytes(&record.leaf_bytes).map_err(|e| {
                StoreError::internal_caused_by(
                    format!(
                        "cannot import event seq {} into account {:?}: its leaf bytes do not read back",
                        record.seq, account.name
                    ),
                    e,
                )
            })?;
            if stored.seq() != record.seq || stored.account() != account.name {
                return Err(refuse(format!(
                    "its leaf names seq {} of account {:?}",
                    stored.seq(),
                    stored.account()
                )));
            }
            if stored.leaf_bytes() != record.leaf_bytes {
                return Err(refuse("its leaf bytes are not canonical".into()));
            }
            tree.add_leaf(&tx, account.id, record.seq as i64 - 1, record.leaf_hash)
                .await?;
            rows.push(account.id, &stored, record.leaf_bytes, record.leaf_hash);
            last_seq = record.seq;
        }
        rows.insert(&tx).await?;
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
