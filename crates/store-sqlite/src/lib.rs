//! The embedded backend: one SQLite file (`auditlog.db`) in the data
//! directory, in WAL mode with synchronous=FULL, and beside it
//! `stream-progress.db`, log streams' delivery progress (`stream_progress`).
//! No rusqlite type leaves this crate.
//!
//! # Layout
//!
//! - This root: `SqliteStore`, opening the file (migrations, backfills), the
//!   pool of read connections on blocking threads, and the appending,
//!   reading and directory roles.
//! - `writer`: the single writer thread with group commit; `checkpointer`:
//!   WAL checkpoints on a thread of their own, beside the writer's commits.
//! - `log_key`: the event log's row key; `event_log`: the ids of values
//!   and actors its rows hold (migration 0010), shared by the writer and
//!   the migration.
//! - `query`: filters resolved into the log's ids and translated to index
//!   searches; `rollups`: per-day counts that answer coarse histograms;
//!   `word_index`: the full-text index; `word_blocks`: the per-block time
//!   summary that free text's counts and pages read (migration 0024).
//! - `schema`: connection settings; `migrate`: migrations (`migrations/`,
//!   only ever added); `layout_migration`: migration 0010, which verifies every
//!   event of the old table before it moves it into the event log; `sql`:
//!   driver errors and rows mapped into the store's types.
//! - `removal`: event bodies removed under a covering record (migration
//!   0012); `tombstones`: what readers see of them; `holds`: legal holds.
//! - `console`, `exports`, `tree`, `root_log`, `transfer`: the sessions and
//!   facets, the export queue, tree hashes and checkpoints, the root log of
//!   checkpoints (migration 0011), and `copy`'s source and target, each
//!   implemented for `SqliteStore`; `personal_paths`: the declared
//!   personal `details` paths (migration 0019; `declared_paths` reads
//!   them, also for the writer).
//! - `streams` and `stream_progress`: log streams, their configuration here
//!   and their delivery progress in the side database `stream-progress.db`
//!   (migration 0022), off this file's write lock.

mod api_keys;
mod block_kinds;
mod checkpointer;
mod console;
mod declared_paths;
mod decode_aside;
mod erasure;
mod event_log;
mod exports;
mod holds;
mod layout_migration;
mod leaf_store;
mod migrate;
mod object_cache;
mod personal_paths;
mod personal_rows;
mod personal_store;
mod query;
pub use query::WordsDrive;
mod removal;
mod retention;
mod rollups;
mod root_log;
mod root_tree;
mod schema;
mod sql;
mod stream_progress;
pub use stream_progress::PROGRESS_FILE;
mod streams;
mod taxonomies;
mod tombstones;
mod transfer;
mod tree;
mod two_factor;
mod users;
mod word_blocks;
mod word_index;
mod write_gate;
mod writer;

use async_trait::async_trait;
use auditlog_core::leaf_v2::Source;
use auditlog_core::{Cursor, EventFilter, Interval, NewEvent, Taxonomy, Timestamp};
use auditlog_store::group_commit::AppendQueue;
use auditlog_store::leaf_codec::DictionaryCache;
use auditlog_store::{
    Account, AccountId, ApiKeyGrant, ApiKeyInfo, Bucket, Directory, EventAppender, EventReader,
    EventRecord, NewApiKey, Page, Receipt, Result, Role, Store, StoreError, User, WriteHealth,
};
use object_cache::ObjectCache;
use rusqlite::{params, Connection, OptionalExtension};
use sql::{
    account_from_row, is_unique_violation, now_micros, open_connection, open_writer_connection,
    sql_error, to_account, LeafDecoder,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "auditlog.db";

pub struct SqliteStore {
    path: PathBuf,
    appends: AppendQueue,
    /// How the writer's last transaction went; the writer updates it.
    write_health: Arc<Mutex<WriteHealth>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    idle_readers: Arc<Mutex<Vec<Connection>>>,
    /// The leaf dictionaries readers have loaded (`leaf_codec`).
    dictionaries: Arc<DictionaryCache>,
    /// The personal objects pages and exports have read (`object_cache`).
    objects: Arc<ObjectCache>,
    /// Turns at the write lock between the writer thread and the rest.
    gate: Arc<write_gate::WriteGate>,
    /// When free text's matches drive pages and counts (`query`).
    words_drive: query::WordsDrive,
    /// Log streams' delivery progress: `stream-progress.db`, off the
    /// event store's write lock (`stream_progress`).
    progress: Arc<stream_progress::ProgressDb>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`, applies migrations
    /// and starts the writer thread. Must run inside a Tokio runtime.
    pub fn open(data_dir: &Path) -> Result<Self> {
        Self::open_with(data_dir, |_| Ok(()))
    }

    /// [`open`](Self::open), with `prepare_writer` applied to the writer's
    /// connection before it starts (tests cap the database size with it, to
    /// make the disk "full" without a small file system).
    fn open_with(
        data_dir: &Path,
        prepare_writer: impl FnOnce(&Connection) -> rusqlite::Result<()>,
    ) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::unavailable_caused_by(
                format!("cannot create data directory {}", data_dir.display()),
                e,
            )
        })?;
        let path = data_dir.join(DB_FILE);
        let mut conn = open_writer_connection(&path)?;
        migrate::migrate(&mut conn)?;
        rollups::recount_stale(&mut conn)?;
        word_blocks::summarise_stale(&mut conn)?;
        root_tree::backfill(&mut conn)?;
        prepare_writer(&conn).map_err(sql_error)?;
        let progress = Arc::new(stream_progress::ProgressDb::open(data_dir)?);
        let (appends, receiver) = AppendQueue::new();
        let write_health = Arc::new(Mutex::new(WriteHealth::Ok));
        let gate = Arc::new(write_gate::WriteGate::default());
        let writer = writer::Writer::new(conn, path.clone(), write_health.clone(), gate.clone());
        let thread = std::thread::Builder::new()
            .name("auditlog-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::internal_caused_by("cannot start the writer thread", e))?;
        Ok(Self {
            path,
            appends,
            write_health,
            writer_thread: Mutex::new(Some(thread)),
            idle_readers: Arc::new(Mutex::new(Vec::new())),
            dictionaries: Arc::new(DictionaryCache::default()),
            objects: Arc::new(ObjectCache::default()),
            gate,
            words_drive: query::WordsDrive::default(),
            progress,
        })
    }

    /// Sets when free text's matches drive pages and counts instead of
    /// the other terms' indexes (tests check both ways on small stores).
    #[doc(hidden)]
    pub fn set_words_drive(&mut self, drive: query::WordsDrive) {
        self.words_drive = drive;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled connection on a blocking thread.
    async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let pool = self.idle_readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = pool
                .lock()
                .map_err(|_| StoreError::internal("reader pool poisoned"))?
                .pop();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => {
                    let conn = open_connection(&path)?;
                    write_gate::make_reader(&conn)?;
                    conn
                }
            };
            let result = f(&mut conn);
            // A connection left inside a transaction (its rollback failed
            // after an I/O error) would hold locks and stale state: closing
            // it rolls back, and the next caller opens a fresh one.
            if conn.is_autocommit() {
                if let Ok(mut idle) = pool.lock() {
                    if idle.len() < 16 {
                        idle.push(conn);
                    }
                }
            }
            result
        })
        .await
        .map_err(|e| StoreError::internal_caused_by("a storage task failed", e))?
    }

    /// [`with_conn`](Self::with_conn) for every write of a pooled
    /// connection (sessions, keys, exports, retention and erasure jobs,
    /// log streams' claims, checkpoints, ...): it takes its turn at the
    /// write gate first, so that it does not starve behind the writer
    /// thread under full ingest, and only here may the connection write
    /// (pooled connections are `query_only` otherwise).
    async fn with_write_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let gate = self.gate.clone();
        self.with_conn(move |conn| write_gate::write_in_turn(&gate, conn, f))
            .await
    }

    /// Explains the statements a query of `filter` runs (first page, a
    /// later page, the histogram's count): one line per plan step, each
    /// statement's after the line `statement N`. Used by the test that
    /// forbids scans of the log. Empty when the filter matches nothing.
    pub async fn explain_query(
        &self,
        account: AccountId,
        filter: &EventFilter,
    ) -> Result<Vec<String>> {
        let filter = filter.clone();
        self.with_conn(move |conn| {
            let Some(filter) = query::resolve(conn, account, &filter)? else {
                return Ok(Vec::new());
            };
            let mut lines = Vec::new();
            for (n, statement) in query::explained_statements(&filter).into_iter().enumerate() {
                lines.push(format!("statement {n}: {}", statement.sql));
                let mut stmt = conn
                    .prepare(&format!("EXPLAIN QUERY PLAN {}", statement.sql))
                    .map_err(sql_error)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(statement.params), |r| {
                        r.get::<_, String>(3)
                    })
                    .map_err(sql_error)?;
                for row in rows {
                    lines.push(row.map_err(sql_error)?);
                }
            }
            Ok(lines)
        })
        .await
    }
}

#[async_trait]
impl EventAppender for SqliteStore {
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
impl EventReader for SqliteStore {
    async fn query(
        &self,
        account: AccountId,
        filter: &EventFilter,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<Page> {
        let filter = filter.clone();
        let dictionaries = self.dictionaries.clone();
        let objects = self.objects.clone();
        let drive = self.words_drive;
        self.with_conn(move |conn| {
            // One read transaction, so that the snapshot and the page agree.
            let tx = conn.transaction().map_err(sql_error)?;
            let snapshot_seq = match cursor {
                Some(c) => c.snapshot_seq,
                None => event_log::last_seq(&tx, account)?,
            };
            let Some(filter) = query::resolve(&tx, account, &filter)? else {
                return Ok(Page {
                    events: Vec::new(),
                    next_cursor: None,
                });
            };
            let leaves = LeafDecoder {
                cache: &dictionaries,
                conn: &tx,
                objects: Some(&objects),
            };
            let filter = filter.with_words_drive(drive);
            let bounds = query::Bounds::page(cursor.as_ref(), snapshot_seq);
            let mut events = query::page(&tx, &filter, bounds, limit + 1, &leaves)?;
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
        })
        .await
    }

    async fn get(&self, account: AccountId, id: &str) -> Result<Option<EventRecord>> {
        let id = id.to_string();
        let dictionaries = self.dictionaries.clone();
        self.with_conn(move |conn| {
            let leaves = LeafDecoder {
                cache: &dictionaries,
                conn,
                objects: None,
            };
            query::find_by_id(conn, account, &id, &leaves)
        })
        .await
    }

    async fn histogram(
        &self,
        account: AccountId,
        filter: &EventFilter,
        interval: Interval,
    ) -> Result<Vec<Bucket>> {
        let filter = filter.clone();
        let dictionaries = self.dictionaries.clone();
        let drive = self.words_drive;
        self.with_conn(move |conn| {
            if rollups::applies(&filter, interval) {
                rollups::histogram(conn, &dictionaries, account, &filter, interval)
            } else {
                // One snapshot: `q`'s dictionary ids and the rows agree.
                let tx = conn.transaction().map_err(sql_error)?;
                let leaves = LeafDecoder {
                    cache: &dictionaries,
                    conn: &tx,
                    objects: None,
                };
                match query::resolve(&tx, account, &filter)? {
                    Some(filter) => {
                        query::histogram(&tx, &filter.with_words_drive(drive), interval, &leaves)
                    }
                    None => Ok(Vec::new()),
                }
            }
        })
        .await
    }

    async fn last_seq(&self, account: AccountId) -> Result<u64> {
        self.with_conn(move |conn| event_log::last_seq(conn, account))
            .await
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
        let filter = filter.clone();
        let dictionaries = self.dictionaries.clone();
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(sql_error)?;
            let Some(filter) = query::resolve(&tx, account, &filter)? else {
                return Ok(Vec::new());
            };
            let leaves = LeafDecoder {
                cache: &dictionaries,
                conn: &tx,
                objects: None,
            };
            query::seq_window(&tx, &filter, after_seq, through_seq, &leaves)
        })
        .await
    }
}

#[async_trait]
impl Directory for SqliteStore {
    async fn create_account(&self, name: &str) -> Result<Account> {
        auditlog_core::account::check_account_name(name)
            .map_err(|e| StoreError::internal_caused_by("invalid account name", e))?;
        let name = name.to_string();
        self.with_write_conn(move |conn| {
            let taxonomy = Taxonomy::default();
            let text = serde_json::to_string(&taxonomy)
                .map_err(|e| StoreError::internal_caused_by("cannot encode the taxonomy", e))?;
            match conn.execute(
                "INSERT INTO accounts (name, taxonomy, created_at) VALUES (?1, ?2, ?3)",
                params![name, text, now_micros()],
            ) {
                Ok(_) => Ok(Account {
                    id: conn.last_insert_rowid(),
                    name,
                    taxonomy,
                }),
                Err(e) if is_unique_violation(&e) => {
                    Err(StoreError::AlreadyExists(format!("account {name:?}")))
                }
                Err(e) => Err(sql_error(e)),
            }
        })
        .await
    }

    async fn account_by_name(&self, name: &str) -> Result<Option<Account>> {
        let name = name.to_string();
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT id, name, taxonomy FROM accounts WHERE name = ?1",
                [name],
                account_from_row,
            )
            .optional()
            .map_err(sql_error)?
            .map(to_account)
            .transpose()
        })
        .await
    }

    async fn account_by_id(&self, id: AccountId) -> Result<Option<Account>> {
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT id, name, taxonomy FROM accounts WHERE id = ?1",
                [id],
                account_from_row,
            )
            .optional()
            .map_err(sql_error)?
            .map(to_account)
            .transpose()
        })
        .await
    }

    async fn accounts(&self) -> Result<Vec<Account>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare("SELECT id, name, taxonomy FROM accounts ORDER BY id")
                .map_err(sql_error)?;
            let rows = stmt.query_map([], account_from_row).map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error).and_then(to_account))
                .collect()
        })
        .await
    }

    async fn create_named_api_key(&self, key: NewApiKey) -> Result<ApiKeyInfo> {
        self.with_write_conn(move |conn| api_keys::create(conn, &key))
            .await
    }

    async fn api_key_by_hash(&self, key_hash: [u8; 32]) -> Result<Option<ApiKeyGrant>> {
        self.with_conn(move |conn| api_keys::by_hash(conn, key_hash, Timestamp::now()))
            .await
    }

    async fn list_api_keys(&self, account: AccountId) -> Result<Vec<ApiKeyInfo>> {
        self.with_conn(move |conn| api_keys::list(conn, account))
            .await
    }

    async fn revoke_api_key(
        &self,
        account: AccountId,
        public_id: &str,
        now: Timestamp,
    ) -> Result<Option<ApiKeyInfo>> {
        let public_id = public_id.to_string();
        self.with_write_conn(move |conn| api_keys::revoke(conn, account, &public_id, now))
            .await
    }

    async fn touch_api_key(&self, key_id: i64, minute: Timestamp) -> Result<()> {
        self.with_write_conn(move |conn| api_keys::touch(conn, key_id, minute))
            .await
    }

    async fn create_user(
        &self,
        account: AccountId,
        email: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User> {
        let (email, password_hash) = (email.to_string(), password_hash.to_string());
        self.with_write_conn(move |conn| {
            match conn.execute(
                "INSERT INTO users (account_id, email, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![account, email, password_hash, role.as_str(), now_micros()],
            ) {
                Ok(_) => Ok(User { id: conn.last_insert_rowid(), account_id: account, email, password_hash, role }),
                Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!("user {email:?}"))),
                Err(e) => Err(sql_error(e)),
            }
        })
        .await
    }

    async fn user_by_email(&self, account: AccountId, email: &str) -> Result<Option<User>> {
        let email = email.to_string();
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT id, email, password_hash, role FROM users WHERE account_id = ?1 AND email = ?2",
                params![account, email],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?)),
            )
            .optional()
            .map_err(sql_error)?
            .map(|(id, email, password_hash, role)| {
                let role = Role::parse(&role).ok_or_else(|| StoreError::internal(format!("unknown role {role:?}")))?;
                Ok(User { id, account_id: account, email, password_hash, role })
            })
            .transpose()
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.with_conn(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(sql_error)
        })
        .await
    }

    fn write_health(&self) -> WriteHealth {
        WriteHealth::current(&self.write_health)
    }

    async fn shutdown(&self) {
        // Closing the queue lets the writer finish what is queued and stop.
        self.appends.close();
        let thread = self.writer_thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

#[cfg(test)]
mod actor_kind_rollups_tests;
#[cfg(test)]
mod migration_tests;
#[cfg(test)]
mod rollups_tests;
#[cfg(test)]
mod stream_progress_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod word_blocks_tests;
