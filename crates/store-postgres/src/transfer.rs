//! PostgreSQL as the source or the target of `auditlog copy`. Imported
//! events take the same sequencer lock as appends, so a copy into a database
//! that servers already use cannot interleave with their appends.

use crate::sql::{
    decode_leaf, is_unique_violation, load_dictionaries, pg_error, to_record, RECORD_COLUMNS,
    RECORD_DICTIONARY,
};
use crate::tree_appends::TreeAppends;
use crate::writer::{to_hash, LogIds, Rows};
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::merkle::stored_hash_index;
use auditlog_core::{leaf, RecordError};
use auditlog_core::{Taxonomy, Timestamp};
use auditlog_store::log_key::{bound_key, seq_of};
use auditlog_store::transfer::{
    ApiKeyRecord, RemovedRecord, TransferSource, TransferTarget, UserRecord,
};
use auditlog_store::{
    key_hash64, Account, AccountId, EventRecord, RemovalKind, Result, Role, Scope, StoreError,
    TreeStore,
};

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

    async fn removed_after(
        &self,
        account: AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<RemovedRecord>> {
        let rows = {
            let client = self.client().await?;
            client
                .query(
                    "SELECT key, event_id, record_seq, kind FROM removed_events \
                     WHERE key > $1 AND key <= $2 ORDER BY key LIMIT $3",
                    &[
                        &bound_key(account, after_seq),
                        &bound_key(account, u64::MAX),
                        &(limit as i64),
                    ],
                )
                .await
                .map_err(pg_error)?
        };
        let seqs: Vec<u64> = rows.iter().map(|r| seq_of(r.get(0))).collect();
        let indexes: Vec<i64> = seqs
            .iter()
            .map(|s| stored_hash_index(0, *s as i64 - 1))
            .collect();
        let hashes = self.read_hashes(account, &indexes).await?;
        rows.iter()
            .zip(seqs)
            .zip(hashes)
            .map(|((r, seq), leaf_hash)| {
                let kind: String = r.get(3);
                Ok(RemovedRecord {
                    seq,
                    event_id: r.get(1),
                    record_seq: r.get::<_, i64>(2) as u64,
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
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT seq, personal FROM event_personal WHERE account_id = $1 AND seq > $2 \
                 AND substring(personal FROM 1 FOR 10) = convert_to('{\"erased\":', 'UTF8') \
                 ORDER BY seq LIMIT $3",
                &[&account, &(after_seq as i64), &(limit as i64)],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect())
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

    async fn import_log(
        &self,
        account: &Account,
        events: Vec<EventRecord>,
        removed: Vec<RemovedRecord>,
    ) -> Result<()> {
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
        // Both in seq order: merged, each seq must be the next.
        let mut removed = removed.into_iter().peekable();
        let mut events = events.into_iter().peekable();
        loop {
            let next_removed = removed.peek().map(|r| r.seq);
            let next_event = events.peek().map(|e| e.seq);
            let take_removed = match (next_removed, next_event) {
                (None, None) => break,
                (Some(r), Some(e)) => r < e,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            if take_removed {
                let Some(gone) = removed.next() else { break };
                if gone.seq != last_seq + 1 {
                    return Err(StoreError::internal(format!(
                        "cannot import removed event seq {} into account {:?}: the account's next seq is {}",
                        gone.seq,
                        account.name,
                        last_seq + 1
                    )));
                }
                tree.add_leaf(&tx, account.id, gone.seq as i64 - 1, gone.leaf_hash)
                    .await?;
                last_seq = gone.seq;
                continue;
            }
            let Some(record) = events.next() else { break };
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
            // also proves it canonical), or by its erased form (which only
            // names what was erased); a version 1 leaf must be canonical.
            let erased = record.stored().is_erased();
            if !erased {
                record.stored().check().map_err(unreadable)?;
            }
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
            if erased {
                // Its erased form needs the covering record, stored later.
                rows.push_erased(account.id, &stored, (None, record.leaf_bytes))?;
            } else {
                rows.push(
                    account.id,
                    &stored,
                    (None, record.leaf_bytes),
                    record.personal,
                )?;
            }
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

    async fn import_removals(
        &self,
        account: &Account,
        removed: &[RemovedRecord],
        erased: &[(u64, Vec<u8>)],
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let keys = removed
            .iter()
            .map(|r| auditlog_store::log_key::log_key(account.id, r.seq))
            .collect::<Result<Vec<i64>>>()?;
        let id_hashes: Vec<i64> = removed.iter().map(|r| key_hash64(&r.event_id)).collect();
        let ids: Vec<&str> = removed.iter().map(|r| r.event_id.as_str()).collect();
        let records: Vec<i64> = removed.iter().map(|r| r.record_seq as i64).collect();
        let kinds: Vec<&str> = removed.iter().map(|r| r.kind.as_str()).collect();
        // The triggers check each against its record's stored coverage.
        tx.execute(
            "INSERT INTO removed_events (key, id_hash, event_id, record_seq, kind) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[]) \
             ON CONFLICT (key) DO NOTHING",
            &[&keys, &id_hashes, &ids, &records, &kinds],
        )
        .await
        .map_err(pg_error)?;
        // An erased form goes beside an imported row that has no personal
        // values yet, and must open that row's leaf.
        let seqs: Vec<i64> = erased.iter().map(|(s, _)| *s as i64).collect();
        let forms: Vec<&[u8]> = erased.iter().map(|(_, f)| f.as_slice()).collect();
        let leaves = tx
            .query(
                "SELECT t.s, l.leaf, l.leaf_dict FROM unnest($2::bigint[]) AS t(s) \
                 JOIN event_log l ON l.key = ($1::bigint << 40) | t.s \
                 WHERE NOT EXISTS (SELECT 1 FROM event_personal p \
                   WHERE p.account_id = $1 AND p.seq = t.s)",
                &[&account.id, &seqs],
            )
            .await
            .map_err(pg_error)?;
        load_dictionaries(&*tx, &self.dictionaries, &leaves, 2).await?;
        let mut missing = std::collections::HashSet::new();
        for row in &leaves {
            let seq = row.get::<_, i64>(0) as u64;
            let leaf_bytes = decode_leaf(&self.dictionaries, row.get(2), row.get(1))?;
            let Some((_, form)) = erased.iter().find(|(s, _)| *s == seq) else {
                continue;
            };
            auditlog_core::StoredRecord::new(&leaf_bytes, Some(form.as_slice()))
                .served_map()
                .map_err(|e| {
                    StoreError::internal_caused_by(
                        format!(
                            "cannot import the erased form of event seq {seq} into account {:?}",
                            account.name
                        ),
                        e,
                    )
                })?;
            missing.insert(seq as i64);
        }
        let (seqs, forms): (Vec<i64>, Vec<&[u8]>) = seqs
            .into_iter()
            .zip(forms)
            .filter(|(s, _)| missing.contains(s))
            .unzip();
        tx.execute(
            "INSERT INTO event_personal (account_id, seq, personal) \
             SELECT $1, s, f FROM unnest($2::bigint[], $3::bytea[]) AS t(s, f)",
            &[&account.id, &seqs, &forms],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)
    }
}
