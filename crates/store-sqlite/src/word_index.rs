//! The full-text index (migration 0014, docs/SEARCH.md): the words of each
//! event in `event_words`, a contentless FTS5 table keyed by the log's key,
//! written in the appending transaction (so an event is searchable when its
//! 201 is sent) and, by the migration, for the events stored before it.
//!
//! Removal (pruning and erasure remove an event's body, issue 16): the
//! entry is deleted by its key ([`remove_event`], which contentless_delete
//! allows and secure-delete overwrites in place). An erasure that kept the
//! row with its personal values replaced would run [`index_event`] again on
//! the erased event to put back the words that remain; the words to remove
//! are recomputable from the event itself (`search_plan::index_words`).

use crate::sql::{event_record, sql_error, to_record, LeafDecoder, RECORD_COLUMNS};
use auditlog_core::NewEvent;
use auditlog_store::leaf_codec::DictionaryCache;
use auditlog_store::search_plan::index_words;
use auditlog_store::{Result, StoreError};
use rusqlite::{params, Connection};

/// Indexes `event` under the log key `key` (in the caller's transaction).
pub fn index_event(conn: &Connection, key: i64, event: &NewEvent) -> Result<()> {
    insert_words(conn, key, &index_words(event))
}

/// Indexes `words` (`search_plan::index_words`) under the log key `key`:
/// what an erased event is searchable by once its entry was removed.
pub fn insert_words(conn: &Connection, key: i64, words: &[String]) -> Result<()> {
    if words.is_empty() {
        return Ok(());
    }
    conn.prepare_cached("INSERT INTO event_words (rowid, words) VALUES (?1, ?2)")
        .map_err(sql_error)?
        .execute(params![key, words.join(" ")])
        .map_err(sql_error)?;
    Ok(())
}

/// Removes the entry of the event with log key `key` (a removed body:
/// pruning or erasure), so that none of its words stays searchable.
pub fn remove_event(conn: &Connection, key: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM event_words WHERE rowid = ?1")
        .map_err(sql_error)?
        .execute([key])
        .map_err(sql_error)?;
    Ok(())
}

/// Migration 0014: the table, then the words of every event already
/// stored (each read as the API serves it: personal values included).
pub fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(include_str!("../migrations/0014_event_words.sql"))
        .map_err(sql_error)?;
    let cache = DictionaryCache::default();
    let leaves = LeafDecoder {
        cache: &cache,
        conn,
        objects: None,
    };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM event_log ORDER BY key"
        ))
        .map_err(sql_error)?;
    let mut rows = stmt.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let row = event_record(row).map_err(sql_error)?;
        let key = row.0;
        let record = to_record(row, &leaves)?;
        let stored = record.stored().stored_event().map_err(|e| {
            StoreError::internal_caused_by(
                format!("event seq {} cannot be read to index its words", record.seq),
                e,
            )
        })?;
        index_event(conn, key, stored.event())?;
    }
    Ok(())
}
