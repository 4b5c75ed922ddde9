//! Migration 0010: the old `events` table (eleven text columns, ten text
//! indexes) moved into the event log laid out in seq order (`event_log`,
//! `log_values`, `actors`; see `migrations/0010_event_log.sql`).
//!
//! The new layout keeps ids and hashes instead of the texts queries filter
//! on, derived here from each row; so before a row is moved, it is checked
//! the way `auditlog verify` checks it (`auditlog_store::entry_check`: seq
//! in sequence, leaf readable and of this account and seq, leaf hash as
//! stored, personal values opening its commitments, every column as the
//! leaf says), and its leaf hash extends the account's rebuilt tree, whose
//! hashes must be the stored ones; at the end of an account its row count,
//! tree size and checkpoint roots must agree too. The first problem refuses
//! the whole store, naming the account and the seq: a store that fails
//! verification is never laundered into the new layout. Everything runs in
//! the one transaction of the migration, so a refused (or interrupted)
//! migration leaves the store exactly as it was.
//!
//! Events move in seq order, account by account, their stored (compressed)
//! leaf bytes unchanged; tree hashes, checkpoints, personal values and
//! dictionaries stay where they are. On a terminal, standard error shows
//! the progress.

use crate::event_log::{self, LogIds, KIND_EVENT, KIND_PLACE};
use crate::sql::{any_bytes, sql_error, LeafDecoder};
use crate::writer::{append_tree_hashes, to_hash};
use auditlog_core::coverage::Coverage;
use auditlog_core::event::Actor;
use auditlog_core::merkle::{self, TreeFrontier};
use auditlog_store::entry_check::check_entry;
use auditlog_store::leaf_codec::DictionaryCache;
use auditlog_store::{key_hash64, IndexedColumns, KeyColumn, Result, ScannedEvent, StoreError};
use rusqlite::{params, Connection};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const CREATE: &str = include_str!("../migrations/0010_event_log.sql");
const FINISH: &str = include_str!("../migrations/0010_event_log_finish.sql");

/// Why the migration refused the store.
#[derive(Debug, thiserror::Error)]
#[error("account {account:?} fails verification: {problem}")]
pub struct Refused {
    pub account: String,
    pub problem: String,
}

/// Runs migration 0010 inside `tx` (the migration's transaction).
pub(crate) fn migrate(tx: &Connection) -> Result<()> {
    let started = Instant::now();
    backfill_tree_hashes(tx)?;
    tx.execute_batch(CREATE).map_err(sql_error)?;
    let total: i64 = tx
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .map_err(sql_error)?;
    let accounts: Vec<(i64, String)> = {
        let mut stmt = tx
            .prepare("SELECT id, name FROM accounts ORDER BY id")
            .map_err(sql_error)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_error)?
    };
    if total > 0 {
        tracing::info!(
            events = total,
            "migration 0010: verifying every event and moving it into the event log"
        );
    }
    let mut progress = Progress::on_terminal(total as u64);
    let mut ids = LogIds::default();
    let dictionaries = DictionaryCache::default();
    for (account, name) in &accounts {
        move_account(tx, *account, name, &mut ids, &dictionaries, &mut progress).map_err(|e| {
            match e {
                Failure::Refused(refused) => StoreError::internal_caused_by(
                    "migration 0010 (the event log) refuses this store: it fails verification, \
                     and nothing was changed (restore it from a backup, or keep running the \
                     previous release, whose `auditlog verify` names the same entry)",
                    refused,
                ),
                Failure::Store(e) => e,
            }
        })?;
    }
    progress.clear();
    let missing: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM events WHERE account_id NOT IN (SELECT id FROM accounts)",
            [],
            |r| r.get(0),
        )
        .map_err(sql_error)?;
    if missing > 0 {
        return Err(StoreError::internal_caused_by(
            "migration 0010 (the event log) refuses this store: it fails verification, and nothing was changed",
            Refused {
                account: "(none)".into(),
                problem: format!("{missing} event rows belong to no account (they were inserted)"),
            },
        ));
    }
    tx.execute_batch(FINISH).map_err(sql_error)?;
    if total > 0 {
        tracing::info!(
            events = total,
            seconds = started.elapsed().as_secs_f64(),
            "migration 0010: every event verified and moved into the event log"
        );
    }
    Ok(())
}

enum Failure {
    Refused(Refused),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Store(sql_error(e))
    }
}

/// Checks and moves the events of one account, in seq order.
fn move_account(
    tx: &Connection,
    account: i64,
    name: &str,
    ids: &mut LogIds,
    dictionaries: &DictionaryCache,
    progress: &mut Progress,
) -> std::result::Result<(), Failure> {
    let refuse = |problem: String| {
        Failure::Refused(Refused {
            account: name.to_string(),
            problem,
        })
    };
    let leaves = LeafDecoder {
        cache: dictionaries,
        conn: tx,
        objects: None,
    };
    let mut rows = tx.prepare(
        "SELECT seq, event_id, time, event_type, action, actor_id, project, app, version, \
         target_id, received_at, leaf, leaf_hash, \
         COALESCE(\
          (SELECT CAST('{\"details\":' || COALESCE(CAST(s.details AS TEXT), '{}') || ',\"openings\":' \
                  || CAST(s.openings AS TEXT) || ',\"personal\":' || CAST(o.object AS TEXT) || '}' AS BLOB) \
           FROM event_openings s JOIN personal_objects o ON o.id = s.object_id \
           WHERE s.account_id = events.account_id AND s.seq = events.seq), \
          (SELECT personal FROM event_personal p WHERE p.account_id = events.account_id AND p.seq = events.seq)), \
         leaf_dict FROM events WHERE account_id = ?1 ORDER BY seq",
    )?;
    let mut tree_hashes = tx.prepare(
        "SELECT hash_index, hash FROM tree_hashes WHERE account_id = ?1 ORDER BY hash_index",
    )?;
    let mut insert = tx.prepare(
        "INSERT INTO event_log (key, time, received_at, kind, place, actor, id_hash, \
         target_hash, leaf_dict, leaf) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut stored_hashes = tree_hashes.query([account])?;
    let mut next_stored = 0i64;
    let mut checkpoints = checkpoint_roots(tx, account)?;
    checkpoints.reverse();
    let mut frontier = TreeFrontier::default();
    let mut rebuilt = Vec::new();
    let mut rows = rows.query([account])?;
    while let Some(row) = rows.next()? {
        let expected = frontier.leaf_count() as u64 + 1;
        let stored_leaf: Vec<u8> = any_bytes(row.get_ref(11)?).unwrap_or_default();
        let dictionary: Option<i64> = row.get(14)?;
        // A leaf that no longer decompresses is reported at its seq (its
        // stored bytes do not read as a leaf).
        let leaf_bytes = match dictionary {
            None => stored_leaf.clone(),
            Some(_) => leaves
                .decode(dictionary, stored_leaf.clone())
                .unwrap_or_else(|_| stored_leaf.clone()),
        };
        let scanned = ScannedEvent {
            columns: IndexedColumns {
                seq: row.get::<_, i64>(0)? as u64,
                event_id: KeyColumn::Text(row.get(1)?),
                time: row.get(2)?,
                event_type: row.get(3)?,
                action: row.get(4)?,
                actor_id: row.get(5)?,
                project: row.get(6)?,
                app: row.get(7)?,
                version: row.get(8)?,
                target_id: row.get::<_, Option<String>>(9)?.map(KeyColumn::Text),
                received_at: row.get(10)?,
            },
            leaf_bytes,
            stored_leaf_hash: Some(any_bytes(row.get_ref(12)?).unwrap_or_default()),
            personal: any_bytes(row.get_ref(13)?),
            dangling: None,
            body_removed: false,
        };
        let hash = check_entry(name, expected, &scanned, &Coverage::default())
            .map_err(|f| refuse(f.to_string()))?;
        rebuilt.clear();
        frontier.append(hash, &mut rebuilt);
        for hash in &rebuilt {
            let stored = match stored_hashes.next()? {
                Some(stored) => {
                    let index: i64 = stored.get(0)?;
                    let bytes = any_bytes(stored.get_ref(1)?).unwrap_or_default();
                    (index == next_stored).then_some(bytes)
                }
                None => None,
            };
            next_stored += 1;
            if stored.as_deref() != Some(&hash[..]) {
                return Err(refuse(format!(
                    "event seq {expected}: its leaf is not the one in the account's Merkle tree \
                     (the event or the tree was altered)"
                )));
            }
        }
        while let Some((size, root)) = checkpoints.last() {
            if *size != expected {
                break;
            }
            if *root != frontier.root() {
                return Err(refuse(format!(
                    "checkpoint of size {size}: its root is not the tree's at that size \
                     (the checkpoint or the events were altered)"
                )));
            }
            checkpoints.pop();
        }

        let columns = &scanned.columns;
        let kind = ids.value_id(
            tx,
            account,
            KIND_EVENT,
            &event_log::event_value(&columns.event_type, &columns.action),
        )?;
        let place = match event_log::place_value(
            columns.project.as_deref(),
            columns.app.as_deref(),
            columns.version.as_deref(),
        ) {
            Some(value) => Some(ids.value_id(tx, account, KIND_PLACE, &value)?),
            None => None,
        };
        let actor = ids.actor_id(
            tx,
            account,
            &Actor {
                id: columns.actor_id.clone(),
                name: None,
                email: None,
            },
            false,
        )?;
        let id_text = columns.event_id.text().unwrap_or_default();
        let target = columns
            .target_id
            .as_ref()
            .and_then(KeyColumn::text)
            .map(key_hash64);
        insert.execute(params![
            event_log::log_key(account, expected)?,
            columns.time,
            columns.received_at,
            kind,
            place,
            actor,
            key_hash64(id_text),
            target,
            dictionary,
            stored_leaf,
        ])?;
        progress.advance();
    }
    let size = frontier.leaf_count();
    let rows: i64 = tx.query_row(
        "SELECT COUNT(*) FROM events NOT INDEXED WHERE account_id = ?1",
        [account],
        |r| r.get(0),
    )?;
    if rows != size {
        return Err(refuse(format!(
            "the account has {rows} event rows but only seqs 1 to {size} form its log: \
             {} rows were inserted outside it (a duplicate or out-of-range seq)",
            rows.saturating_sub(size)
        )));
    }
    let stored_count: i64 = tx.query_row(
        "SELECT COUNT(*) FROM tree_hashes WHERE account_id = ?1",
        [account],
        |r| r.get(0),
    )?;
    if stored_count != merkle::stored_hash_count(size) {
        return Err(refuse(format!(
            "the Merkle tree holds {stored_count} hashes but {size} events need {}: \
             the newest events were removed, or hashes were added",
            merkle::stored_hash_count(size)
        )));
    }
    if let Some((size, _)) = checkpoints.last() {
        return Err(refuse(format!(
            "checkpoint of size {size}: the log has only {} events (the newest events were removed)",
            frontier.leaf_count()
        )));
    }
    Ok(())
}

/// The account's checkpoints (size and root), smallest first.
fn checkpoint_roots(
    tx: &Connection,
    account: i64,
) -> std::result::Result<Vec<(u64, [u8; 32])>, Failure> {
    let mut stmt =
        tx.prepare("SELECT size, root FROM checkpoints WHERE account_id = ?1 ORDER BY size")?;
    let rows = stmt.query_map([account], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut roots = Vec::new();
    for row in rows {
        let (size, root) = row?;
        roots.push((size as u64, to_hash(&root)?));
    }
    // A checkpoint of the empty tree says nothing about the events.
    roots.retain(|(size, _)| *size > 0);
    Ok(roots)
}

/// Adds the tree hashes of events stored before the tree existed (a store
/// created by a version without migration 0002), so that every event is in
/// its account's tree. Nothing is rewritten: only missing hashes are added,
/// and only to accounts with no tree at all: a tree that lacks some hashes
/// was damaged, and is refused by the checks that follow.
fn backfill_tree_hashes(tx: &Connection) -> Result<()> {
    let accounts: Vec<(i64, i64, i64)> = {
        let mut stmt = tx
            .prepare(
                "SELECT a.id, \
                 (SELECT COALESCE(MAX(seq), 0) FROM events e WHERE e.account_id = a.id), \
                 (SELECT COUNT(*) FROM tree_hashes t WHERE t.account_id = a.id) FROM accounts a",
            )
            .map_err(sql_error)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_error)?
    };
    for (account_id, last_seq, stored) in accounts {
        if stored > 0 || last_seq == 0 {
            continue;
        }
        tracing::info!(account_id, to = last_seq, "adding missing tree hashes");
        let mut leaves = tx
            .prepare("SELECT seq, leaf_hash FROM events WHERE account_id = ?1 ORDER BY seq")
            .map_err(sql_error)?;
        let rows = leaves
            .query_map([account_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(sql_error)?;
        for row in rows {
            let (seq, hash) = row.map_err(sql_error)?;
            append_tree_hashes(tx, account_id, seq - 1, to_hash(&hash)?)?;
        }
    }
    Ok(())
}

/// The progress line on standard error, when it is a terminal.
struct Progress {
    enabled: bool,
    total: u64,
    done: u64,
    shown: Instant,
}

impl Progress {
    fn on_terminal(total: u64) -> Self {
        Self {
            enabled: std::io::stderr().is_terminal() && total > 0,
            total,
            done: 0,
            shown: Instant::now(),
        }
    }

    fn advance(&mut self) {
        self.done += 1;
        if self.enabled && self.shown.elapsed() >= Duration::from_millis(250) {
            self.shown = Instant::now();
            let mut err = std::io::stderr();
            let _ = write!(
                err,
                "\r\x1b[Kmigrating the store to its event log (migration 0010): {}/{} events verified and moved",
                self.done, self.total
            );
            let _ = err.flush();
        }
    }

    fn clear(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
