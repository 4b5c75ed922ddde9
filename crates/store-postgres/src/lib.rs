//! The PostgreSQL backend, for teams that run several stateless `auditlog
//! serve` processes on one database. No tokio-postgres type leaves this
//! crate. Connections are plain TCP or unix sockets: TLS is not part of
//! this build.
//!
//! # Layout
//!
//! - This root: `PgStore`, connecting (a pool; migrations under an advisory
//!   lock), and the appending, reading and directory roles.
//! - `writer`: one group-committing task per process; across processes a
//!   per-account sequencer row locked `FOR UPDATE` keeps seqs gapless.
//! - `tree_appends`: the tree hashes an append adds, in the events'
//!   transaction; `tree`: proofs' hashes and checkpoints.
//! - `query`: filters translated to SQL; `schema`: the migrations; `sql`:
//!   driver errors and rows mapped into the store's types.
//! - `console`, `exports`, `transfer`: sessions and facets, the export queue
//!   (claims with `FOR UPDATE SKIP LOCKED`), and `copy`'s source and target.
//! - `removal`, `holds`: bodies removed under a covering record (only through
//!   `auditlog_remove_body`) and legal holds (migration 0011); `tombstones`:
//!   what readers see of removed bodies.
//! - `personal_paths`: the declared personal `details` paths (migration
//!   0018; `declared_paths` reads them, also for the writer).
//! - `rollups`: day and week histograms read from the per-day counts
//!   (migration 0022, kept by the event log's triggers).
//! - `word_index`: the full-text index's words (migration 0013), written by
//!   the writer, read by `query`, replaced by erasure.
//! - `test_support`: throwaway databases for tests.

mod api_keys;
mod console;
mod declared_paths;
mod erasure;
mod exports;
mod holds;
mod index_counts;
mod layout_migration;
mod leaf_store;
mod personal_paths;
mod query;
mod removal;
mod retention;
mod rollups;
mod root_log;
mod schema;
mod sql;
mod streams;
mod taxonomies;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
mod tombstones;
mod transfer;
mod tree;
mod tree_appends;
mod two_factor;
mod users;
mod word_index;
mod writer;

use async_trait::async_trait;
use auditlog_core::leaf_v2::Source;
use auditlog_core::{Cursor, EventFilter, Interval, NewEvent, Taxonomy, Timestamp};
use auditlog_store::group_commit::AppendQueue;
use auditlog_store::leaf_codec::DictionaryCache;
use auditlog_store::log_key::SEQ_BITS;
use auditlog_store::{
    Account, AccountId, ApiKeyGrant, ApiKeyInfo, Bucket, Directory, EventAppender, EventReader,
    EventRecord, NewApiKey, Page, Receipt, Result, Role, Store, StoreError, User, WriteHealth,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use sql::{
    is_unique_violation, load_dictionaries, now_micros, pg_error, pool_error, to_account,
    to_record, to_user, RECORD_COLUMNS, RECORD_DICTIONARY,
};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, NoTls};

/// Connections per process: the writer's one plus readers.
const POOL_SIZE: usize = 16;

pub struct PgStore {
    pool: Pool,
    appends: AppendQueue,
    writer_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// How the writer's last transaction went; the writer updates it.
    write_health: Arc<Mutex<WriteHealth>>,
    /// The leaf dictionaries readers have loaded (`leaf_codec`).
    dictionaries: Arc<DictionaryCache>,
}

/// Whether `url` names a PostgreSQL database (rather than a data directory).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl PgStore {
    /// Connects to `url`, applies migrations and starts the writer task.
    pub async fn connect(url: &str) -> Result<Self> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::unavailable_caused_by("the database URL is not valid", e))?;
        // An unreachable host should fail a start or a request, not hang it.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::internal_caused_by("cannot build the connection pool", e))?;
        {
            let mut client = pool.get().await.map_err(pool_error)?;
            let applied = schema::migrate(&mut client).await.map_err(|e| match e {
                layout_migration::MigrationError::Tampered { .. } => {
                    StoreError::internal(e.to_string())
                }
                layout_migration::MigrationError::Database(e)
                    if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) =>
                {
                    StoreError::unavailable_caused_by(
                        "this database lacks migrations and this role may not apply them; \
                         start Auditlog once as the tables' owner (see docs/POSTGRES.md)",
                        e,
                    )
                }
                layout_migration::MigrationError::Database(e) => pg_error(e),
                layout_migration::MigrationError::Store(e) => e,
            })?;
            if applied > 0 {
                tracing::info!(applied, "applied database migrations");
            }
        }
        let (appends, receiver) = AppendQueue::new();
        let write_health = Arc::new(Mutex::new(WriteHealth::Ok));
        let task = tokio::spawn(writer::run(pool.clone(), receiver, write_health.clone()));
        let store = Self {
            pool,
            appends,
            writer_task: Mutex::new(Some(task)),
            write_health,
            dictionaries: Arc::new(DictionaryCache::default()),
        };
        // A database signed before the root log existed: its accounts'
        // latest checkpoints become the first root leaves.
        use auditlog_store::RootLogStore;
        let backfilled = store.backfill_root_log().await?;
        if backfilled > 0 {
            tracing::info!(
                backfilled,
                "appended the accounts' latest checkpoints to the new root log"
            );
        }
        Ok(store)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Explains the page query of `filter` (the plan's lines). Used by the
    /// test that forbids scans of the events table.
    pub async fn explain_page_query(
        &self,
        account: AccountId,
        filter: &EventFilter,
    ) -> Result<Vec<String>> {
        let client = self.client().await?;
        let ids = query::resolve(&**client, account, filter).await?;
        let clause = query::where_clause(account, filter, &ids);
        let sql = format!("EXPLAIN {}", query::page_sql(&clause));
        let limit = 51_i64;
        let mut params = clause.refs();
        params.push(&limit);
        let rows = client.query(&sql, &params).await.map_err(pg_error)?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    /// Explains the histogram query of `filter` (counts), as
    /// [`explain_page_query`](Self::explain_page_query) does pages.
    pub async fn explain_histogram_query(
        &self,
        account: AccountId,
        filter: &EventFilter,
        interval: Interval,
    ) -> Result<Vec<String>> {
        let client = self.client().await?;
        let ids = query::resolve(&**client, account, filter).await?;
        let clause = query::where_clause(account, filter, &ids);
        let sql = format!("EXPLAIN {}", query::histogram_sql(&clause, interval));
        let rows = client.query(&sql, &clause.refs()).await.map_err(pg_error)?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    /// Replaces the search words of the event `seq` of `account` with the
    /// words of `event` (`word_index`): erasure's way to remove an event's
    /// personal words while its other words stay searchable (pass the
    /// event as it is served once erased). False when the event has no row
    /// (its body was removed, and its words with it).
    pub async fn replace_event_words(
        &self,
        account: AccountId,
        seq: u64,
        event: &NewEvent,
    ) -> Result<bool> {
        let client = self.client().await?;
        word_index::replace_event_words(&**client, account, seq, event).await
    }

    /// Runs raw SQL (several statements); for tests and maintenance tools.
    pub async fn execute_raw(&self, sql: &str) -> Result<()> {
        let client = self.client().await?;
        client.batch_execute(sql).await.map_err(pg_error)
    }

    /// Runs one raw query and returns its rows as text (`None` for NULL);
    /// for tests and maintenance tools.
    pub async fn query_raw_text(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let client = self.client().await?;
        let messages = client.simple_query(sql).await.map_err(pg_error)?;
        Ok(messages
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }
}

#[async_trait]
impl EventAppender for PgStore {
    async fn append_from(
        &self,
        account: &Account,
        source: &Source,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Receipt>> {
        self.appends.append(account, source, events).await
    }
}

#[async_trait]
impl EventReader for PgStore {
    async fn query(
        &self,
        account: AccountId,
        filter: &EventFilter,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<Page> {
        let mut client = self.client().await?;
        // One snapshot, so that the snapshot seq and the page agree.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let snapshot_seq = match cursor {
            Some(c) => c.snapshot_seq,
            None => {
                let row = tx
                    .query_opt(
                        "SELECT last_seq FROM account_sequencers WHERE account_id = $1",
                        &[&account],
                    )
                    .await
                    .map_err(pg_error)?;
                row.map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0)
            }
        };
        let ids = query::resolve(&*tx, account, filter).await?;
        query::plan_each_query(&*tx, filter).await?;
        // Rows the leaf confirms are read in batches until a page (and one
        // more, to know whether another follows) is confirmed or the rows
        // run out; each batch continues after the last row read.
        let confirms = ids.confirms(filter);
        let batch = if confirms {
            (limit + 1).max(256)
        } else {
            limit + 1
        };
        let mut events: Vec<EventRecord> = Vec::new();
        let mut after = cursor;
        loop {
            let mut clause = query::where_clause(account, filter, &ids);
            if let Some(c) = &after {
                clause.after_cursor(c);
            }
            let sql = query::page_sql(&clause);
            let fetch = batch as i64;
            let mut params = clause.refs();
            params.push(&fetch);
            let statement = tx.prepare_cached(&sql).await.map_err(pg_error)?;
            let rows = tx.query(&statement, &params).await.map_err(pg_error)?;
            load_dictionaries(&*tx, &self.dictionaries, &rows, RECORD_DICTIONARY).await?;
            let mut read = rows
                .iter()
                .map(|row| to_record(row, &self.dictionaries))
                .collect::<Result<Vec<_>>>()?;
            let exhausted = read.len() < batch;
            after = read.last().map(|last| Cursor {
                time: last.time,
                seq: last.seq,
                snapshot_seq,
            });
            index_counts::confirm(&mut read, filter, &ids)?;
            events.extend(read);
            if !confirms || exhausted || events.len() > limit {
                break;
            }
        }
        tx.commit().await.map_err(pg_error)?;
        // Events newer than the snapshot (first page) are left for a new walk.
        events.retain(|e| e.seq <= snapshot_seq);
        let next_cursor = if events.len() > limit {
            events.truncate(limit);
            events.last().map(|last| Cursor {
                time: last.time,
                seq: last.seq,
                snapshot_seq,
            })
        } else {
            None
        };
        Ok(Page {
            events,
            next_cursor,
        })
    }

    async fn get(&self, account: AccountId, id: &str) -> Result<Option<EventRecord>> {
        let client = self.client().await?;
        // The id's hash finds the row; the leaf confirms it.
        let row = client
            .query_opt(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM event_log l \
                     WHERE (l.key >> {SEQ_BITS}) = $1 AND l.id_hash = $2"
                ),
                &[&account, &auditlog_store::key_hash64(id)],
            )
            .await
            .map_err(pg_error)?;
        let Some(row) = row else { return Ok(None) };
        load_dictionaries(
            &**client,
            &self.dictionaries,
            std::slice::from_ref(&row),
            RECORD_DICTIONARY,
        )
        .await?;
        let record = to_record(&row, &self.dictionaries)?;
        let stored = record.stored().stored_event().map_err(|e| {
            StoreError::internal_caused_by(
                format!("event seq {} has unreadable leaf bytes", record.seq),
                e,
            )
        })?;
        Ok((stored.event().id() == id).then_some(record))
    }

    async fn histogram(
        &self,
        account: AccountId,
        filter: &EventFilter,
        interval: Interval,
    ) -> Result<Vec<Bucket>> {
        let mut client = self.client().await?;
        // One snapshot: `q`'s dictionary ids, the rollups and the rows agree.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let buckets = if rollups::applies(filter, interval) {
            rollups::histogram(&tx, &self.dictionaries, account, filter, interval).await?
        } else {
            index_counts::index_histogram(&tx, &self.dictionaries, account, filter, interval)
                .await?
        };
        tx.commit().await.map_err(pg_error)?;
        Ok(buckets)
    }

    async fn last_seq(&self, account: AccountId) -> Result<u64> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT last_seq FROM account_sequencers WHERE account_id = $1",
                &[&account],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0))
    }

    async fn events_in_seq_range(
        &self,
        account: AccountId,
        filter: &EventFilter,
        after_seq: u64,
        through_seq: u64,
    ) -> Result<Vec<EventRecord>> {
        if through_seq <= after_seq {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let client = &tx;
        let ids = query::resolve(&*tx, account, filter).await?;
        query::plan_each_query(&*tx, filter).await?;
        let mut clause = query::where_clause(account, filter, &ids);
        clause.seq_window(after_seq, through_seq);
        let sql = query::seq_range_sql(&clause);
        let statement = client.prepare_cached(&sql).await.map_err(pg_error)?;
        let rows = client
            .query(&statement, &clause.refs())
            .await
            .map_err(pg_error)?;
        load_dictionaries(&**client, &self.dictionaries, &rows, RECORD_DICTIONARY).await?;
        let mut events = rows
            .iter()
            .map(|row| to_record(row, &self.dictionaries))
            .collect::<Result<Vec<_>>>()?;
        index_counts::confirm(&mut events, filter, &ids)?;
        Ok(events)
    }
}

#[async_trait]
impl Directory for PgStore {
    async fn create_account(&self, name: &str) -> Result<Account> {
        auditlog_core::account::check_account_name(name)
            .map_err(|e| StoreError::internal_caused_by("invalid account name", e))?;
        let taxonomy = Taxonomy::default();
        let text = serde_json::to_string(&taxonomy)
            .map_err(|e| StoreError::internal_caused_by("cannot encode the taxonomy", e))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let id: i64 = match tx
            .query_one(
                "INSERT INTO accounts (name, taxonomy, created_at) VALUES ($1, $2, $3) RETURNING id",
                &[&name, &text, &now_micros()],
            )
            .await
        {
            Ok(row) => row.get(0),
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!("account {name:?}")))
            }
            Err(e) => return Err(pg_error(e)),
        };
        // The sequencer row exists from the start, so appenders only ever lock it.
        tx.execute(
            "INSERT INTO account_sequencers (account_id, last_seq) VALUES ($1, 0)",
            &[&id],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(Account {
            id,
            name: name.to_string(),
            taxonomy,
        })
    }

    async fn account_by_name(&self, name: &str) -> Result<Option<Account>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT id, name, taxonomy FROM accounts WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_account).transpose()
    }

    async fn account_by_id(&self, id: AccountId) -> Result<Option<Account>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT id, name, taxonomy FROM accounts WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_account).transpose()
    }

    async fn accounts(&self) -> Result<Vec<Account>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT id, name, taxonomy FROM accounts ORDER BY id", &[])
            .await
            .map_err(pg_error)?;
        rows.iter().map(to_account).collect()
    }

    async fn create_named_api_key(&self, key: NewApiKey) -> Result<ApiKeyInfo> {
        let client = self.client().await?;
        api_keys::create(&client, &key).await
    }

    async fn api_key_by_hash(&self, key_hash: [u8; 32]) -> Result<Option<ApiKeyGrant>> {
        let client = self.client().await?;
        api_keys::by_hash(&client, key_hash, Timestamp::now()).await
    }

    async fn list_api_keys(&self, account: AccountId) -> Result<Vec<ApiKeyInfo>> {
        let client = self.client().await?;
        api_keys::list(&client, account).await
    }

    async fn revoke_api_key(
        &self,
        account: AccountId,
        public_id: &str,
        now: Timestamp,
    ) -> Result<Option<ApiKeyInfo>> {
        let client = self.client().await?;
        api_keys::revoke(&client, account, public_id, now).await
    }

    async fn touch_api_key(&self, key_id: i64, minute: Timestamp) -> Result<()> {
        let client = self.client().await?;
        api_keys::touch(&client, key_id, minute).await
    }

    async fn create_user(
        &self,
        account: AccountId,
        email: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User> {
        let client = self.client().await?;
        match client
            .query_one(
                "INSERT INTO users (account_id, email, password_hash, role, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &account,
                    &email,
                    &password_hash,
                    &role.as_str(),
                    &now_micros(),
                ],
            )
            .await
        {
            Ok(row) => Ok(User {
                id: row.get(0),
                account_id: account,
                email: email.to_string(),
                password_hash: password_hash.to_string(),
                role,
            }),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::AlreadyExists(format!("user {email:?}")))
            }
            Err(e) => Err(pg_error(e)),
        }
    }

    async fn user_by_email(&self, account: AccountId, email: &str) -> Result<Option<User>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT id, email, password_hash, role FROM users WHERE account_id = $1 AND email = $2",
                &[&account, &email],
            )
            .await
            .map_err(pg_error)?;
        row.map(|r| to_user(account, &r)).transpose()
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<()> {
        let client = self.client().await?;
        client.execute("SELECT 1", &[]).await.map_err(pg_error)?;
        Ok(())
    }

    fn write_health(&self) -> WriteHealth {
        WriteHealth::current(&self.write_health)
    }

    async fn shutdown(&self) {
        // Closing the queue lets the writer finish what is queued and stop.
        self.appends.close();
        let task = self.writer_task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        self.pool.close();
    }
}

#[cfg(test)]
mod migration_tests;
#[cfg(test)]
mod rollups_tests;
#[cfg(test)]
mod tests;
