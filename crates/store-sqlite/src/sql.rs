//! Between rusqlite and the store's types: driver errors mapped into
//! `StoreError`, configured connections, and rows read into accounts and
//! event records. A leaf below the store and its writer, which both use it.

use crate::object_cache::ObjectCache;
use crate::schema;
use auditlog_core::{leaf, Taxonomy, Timestamp};
use auditlog_store::leaf_codec::DictionaryCache;
use auditlog_store::log_key;
use auditlog_store::{Account, EventRecord, Result, StoreError};
use rusqlite::{Connection, OptionalExtension};
use std::path::Path;

/// Maps a driver error into the store's error, keeping it as the cause. A
/// full disk, I/O errors and contention are conditions a retry may outlive
/// (nothing was written: SQLite rolled the statement or transaction back);
/// anything else is a fault.
pub(crate) fn sql_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let code = match &e {
        rusqlite::Error::SqliteFailure(f, _) => Some((f.code, f.extended_code)),
        _ => None,
    };
    match code {
        Some((ErrorCode::DiskFull, _)) => {
            StoreError::full_caused_by("the data directory's disk has no room", e)
        }
        // Growing the WAL index (`-shm`) fails when the file system has
        // no room left; SQLite reports it as an I/O error.
        Some((ErrorCode::SystemIoFailure, extended))
            if extended == rusqlite::ffi::SQLITE_IOERR_SHMSIZE =>
        {
            StoreError::full_caused_by("the data directory's disk has no room", e)
        }
        // A file system that went read-only after errors, or a file that
        // cannot be opened or written, is storage failing, not a bug.
        Some((ErrorCode::SystemIoFailure | ErrorCode::ReadOnly | ErrorCode::CannotOpen, _)) => {
            StoreError::unavailable_caused_by("the database file cannot be read or written", e)
        }
        Some((ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked, _)) => {
            StoreError::unavailable_caused_by("the database is busy", e)
        }
        _ => StoreError::internal_caused_by("the database refused a statement", e),
    }
}

/// A reader's connection (the pool's).
pub(crate) fn open_connection(path: &Path) -> Result<Connection> {
    open_configured(path, false)
}

/// The writer's connection.
pub(crate) fn open_writer_connection(path: &Path) -> Result<Connection> {
    open_configured(path, true)
}

pub(crate) fn open_configured(path: &Path, writer: bool) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError::unavailable_caused_by(format!("cannot open {}", path.display()), e)
    })?;
    if writer {
        // Before `configure`: switching to WAL writes the file's header,
        // after which the vacuum mode can no longer be chosen.
        schema::incremental_vacuum_if_new(&conn).map_err(sql_error)?;
    }
    schema::configure(&conn, writer).map_err(sql_error)?;
    Ok(conn)
}

pub(crate) fn now_micros() -> i64 {
    Timestamp::now().micros()
}

pub(crate) fn account_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

pub(crate) fn to_account((id, name, taxonomy): (i64, String, String)) -> Result<Account> {
    let taxonomy: Taxonomy = serde_json::from_str(&taxonomy).map_err(|e| {
        StoreError::internal_caused_by(format!("account {name} has an unreadable taxonomy"), e)
    })?;
    Ok(Account { id, name, taxonomy })
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// The personal values of the `event_log` row in scope (unaliased), in the
/// form `auditlog_core::leaf_v2::personal` gives them: from
/// `event_openings` and the personal object it names (rebuilt byte for byte:
/// every piece is stored as canonical JSON, and the members come in sorted
/// order), or from `event_personal` for events stored before migration 0009.
/// (`key >> 40` and `key & 1099511627775` are the row's account and seq:
/// `log_key::SEQ_BITS`.)
macro_rules! personal_of_log_row {
    () => {
        "COALESCE(\
         (SELECT CAST('{\"details\":' || COALESCE(CAST(s.details AS TEXT), '{}') || ',\"openings\":' \
                 || CAST(s.openings AS TEXT) || ',\"personal\":' || CAST(o.object AS TEXT) || '}' AS BLOB) \
          FROM event_openings s JOIN personal_objects o ON o.id = s.object_id \
          WHERE s.account_id = event_log.key >> 40 AND s.seq = event_log.key & 1099511627775), \
         (SELECT personal FROM event_personal p \
          WHERE p.account_id = event_log.key >> 40 AND p.seq = event_log.key & 1099511627775))"
    };
}
pub(crate) use personal_of_log_row;

/// The columns [`event_record`] reads, from `event_log` (unaliased): the
/// personal values of a version 2 leaf come from their own table.
pub(crate) const RECORD_COLUMNS: &str =
    concat!("key, time, leaf_dict, leaf, ", personal_of_log_row!());

/// A row read with [`RECORD_COLUMNS`]: key, time, dictionary, stored leaf,
/// personal values.
pub(crate) type RecordRow = (i64, i64, Option<i64>, Vec<u8>, Option<Vec<u8>>);

pub(crate) fn event_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

/// The record of a row read with [`RECORD_COLUMNS`], its leaf decompressed
/// and hashed (the log keeps the leaf hash only in the tree's hashes; a
/// leaf hash is the hash of these exact bytes, which verify checks against
/// the tree).
pub(crate) fn to_record(row: RecordRow, leaves: &LeafDecoder<'_>) -> Result<EventRecord> {
    record_from(row, |dictionary, stored| leaves.decode(dictionary, stored))
}

/// [`to_record`] on a thread without the connection: the row's dictionary
/// must be loaded already ([`LeafDecoder::preload`]).
pub(crate) fn to_record_preloaded(row: RecordRow, cache: &DictionaryCache) -> Result<EventRecord> {
    record_from(row, |dictionary, stored| {
        cache.decode(dictionary, stored, |id| {
            Err(StoreError::internal(format!(
                "leaf dictionary {id} was not loaded before the leaves were decoded"
            )))
        })
    })
}

fn record_from(
    (key, time, dictionary, stored, personal): RecordRow,
    decode: impl FnOnce(Option<i64>, Vec<u8>) -> Result<Vec<u8>>,
) -> Result<EventRecord> {
    let leaf_bytes = decode(dictionary, stored)?;
    Ok(EventRecord {
        seq: log_key::seq_of(key),
        time: Timestamp::from_micros(time),
        leaf_hash: leaf::leaf_hash(&leaf_bytes),
        leaf_bytes,
        personal,
    })
}

/// Turns stored leaves into their exact bytes, loading the dictionaries
/// they name through `conn` (once per store: `cache` keeps them).
pub(crate) struct LeafDecoder<'c> {
    pub cache: &'c DictionaryCache,
    pub conn: &'c Connection,
    /// The personal objects the store keeps across transactions, for the
    /// rows' personal values (`personal_rows`); `None`: each read reads
    /// its own.
    pub objects: Option<&'c ObjectCache>,
}

impl LeafDecoder<'_> {
    pub(crate) fn decode(&self, dictionary: Option<i64>, stored: Vec<u8>) -> Result<Vec<u8>> {
        self.cache.decode(dictionary, stored, |id| self.load(id))
    }

    /// Loads the dictionaries of `ids` that the cache does not hold yet, so
    /// that another thread can decode with the cache alone.
    pub(crate) fn preload(&self, ids: impl IntoIterator<Item = i64>) -> Result<()> {
        for id in self.cache.missing(ids) {
            self.cache.insert(id, &self.load(id)?)?;
        }
        Ok(())
    }

    fn load(&self, id: i64) -> Result<Vec<u8>> {
        self.conn
            .query_row(
                "SELECT dictionary FROM leaf_dictionaries WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_error)?
            .ok_or_else(|| {
                StoreError::internal(format!(
                    "a stored leaf names dictionary {id}, which does not exist (it was removed)"
                ))
            })
    }
}

/// A stored value's bytes whatever type someone gave it: SQLite lets a
/// BLOB column hold text or numbers, and verify must report such a row at
/// its seq (its bytes do not read as a leaf, or do not hash as stored)
/// rather than fail the whole scan on a type error. `None` for NULL.
pub(crate) fn any_bytes(value: rusqlite::types::ValueRef<'_>) -> Option<Vec<u8>> {
    any_slice(value).map(std::borrow::Cow::into_owned)
}

/// [`any_bytes`] without a copy where the value is a BLOB or text.
pub(crate) fn any_slice(
    value: rusqlite::types::ValueRef<'_>,
) -> Option<std::borrow::Cow<'_, [u8]>> {
    use rusqlite::types::ValueRef;
    use std::borrow::Cow;
    match value {
        ValueRef::Null => None,
        ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Some(Cow::Borrowed(bytes)),
        ValueRef::Integer(n) => Some(Cow::Owned(n.to_string().into_bytes())),
        ValueRef::Real(x) => Some(Cow::Owned(x.to_string().into_bytes())),
    }
}
