//! Personal objects kept by id across an export's pages. Each row of a
//! page needs its personal object (`personal_rows`); read with the row, it
//! is one B-tree seek per row, a third of the seeks of one project's export
//! (BENCHMARKS.md, "Export: personal objects kept across pages"). The
//! benchmark's 1M events use 12,002 objects: kept, almost every row finds
//! its object here.
//!
//! Why a kept object is still right: an object never changes (its UPDATE
//! is refused) and is deleted only once no event uses it; only then can a
//! later object be given its id. Every deletion counts itself in
//! `personal_object_deletions` (migration 0028) in the deleting
//! transaction. [`ObjectCache::begin`] reads that count in the reader's
//! transaction and forgets everything when it has moved since the objects
//! were kept; a reader outside a transaction keeps nothing. (Errors are
//! SQLite's own: the caller says what it was reading.)

use rusqlite::{Connection, OptionalExtension, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Bytes of objects kept at most (about 70,000 of the benchmark's); past
/// it the cache starts again empty.
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// One object by id.
const OBJECT: &str = "SELECT object FROM personal_objects WHERE id = ?1";

/// The objects readers have read, shared by a store's connections.
#[derive(Default)]
pub(crate) struct ObjectCache {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// The count of deletions the objects were read under.
    deletions: Option<i64>,
    objects: HashMap<i64, Arc<[u8]>>,
    bytes: usize,
}

/// The objects one transaction may take from the cache: all of them when
/// the count of deletions it reads is the cache's, none outside a
/// transaction.
pub(crate) struct ObjectReads<'c> {
    cache: &'c ObjectCache,
    conn: &'c Connection,
    /// The count this transaction reads; `None`: keep nothing.
    deletions: Option<i64>,
}

impl ObjectCache {
    /// Starts reading objects in `conn`'s current transaction.
    pub(crate) fn begin<'c>(&'c self, conn: &'c Connection) -> Result<ObjectReads<'c>> {
        let deletions = if conn.is_autocommit() {
            // Each statement would be its own snapshot: nothing read here
            // is known to hold for the next one.
            None
        } else {
            Some(
                conn.prepare_cached("SELECT deleted FROM personal_object_deletions")
                    .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))?,
            )
        };
        if let Some(now) = deletions {
            let mut kept = self.lock();
            if kept.deletions != Some(now) {
                *kept = Kept {
                    deletions: Some(now),
                    ..Kept::default()
                };
            }
        }
        Ok(ObjectReads {
            cache: self,
            conn,
            deletions,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        // The map holds only copies of stored bytes: a panic elsewhere
        // while it was locked leaves nothing half-written worth refusing.
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ObjectReads<'_> {
    /// Object `id`'s stored bytes; `None` when there is no such object.
    pub(crate) fn get(&self, id: i64) -> Result<Option<Arc<[u8]>>> {
        if self.deletions.is_some() {
            let kept = self.cache.lock();
            // Kept under another count (another transaction started the
            // cache again since `begin`): not known to hold here.
            if kept.deletions == self.deletions {
                if let Some(object) = kept.objects.get(&id) {
                    return Ok(Some(object.clone()));
                }
            }
        }
        let object: Option<Vec<u8>> = self
            .conn
            .prepare_cached(OBJECT)
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())?;
        let Some(object) = object else {
            return Ok(None);
        };
        let object: Arc<[u8]> = object.into();
        if self.deletions.is_some() {
            let mut kept = self.cache.lock();
            // Another transaction may have started the cache again under a
            // newer count since `begin`: keep only under our own.
            if kept.deletions == self.deletions {
                if kept.bytes + object.len() > MAX_BYTES {
                    kept.objects.clear();
                    kept.bytes = 0;
                }
                kept.bytes += object.len();
                kept.objects.insert(id, object.clone());
            }
        }
        Ok(Some(object))
    }
}

/// The statement [`ObjectReads::get`] runs, with a parameter, for `EXPLAIN
/// QUERY PLAN` (`query::explained_statements`).
pub(crate) fn explained_statement() -> (&'static str, Vec<rusqlite::types::Value>) {
    (OBJECT, vec![rusqlite::types::Value::Integer(1)])
}
