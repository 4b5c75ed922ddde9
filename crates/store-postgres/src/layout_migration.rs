//! Migration 0010 (the event log) checks before it moves: every event of the
//! old `events` table is checked with `auditlog verify`'s checks of one
//! event (`auditlog_store::entry_check`, shared with the embedded store's
//! migration) — its
//! seq in order, its leaf bytes (decompressed) against the stored leaf hash
//! and the tree's, its personal values against the leaf's commitments, and
//! every indexed column against the leaf — and the database is refused,
//! naming the account and the seq, at the first event that fails. The
//! migration's SQL then derives the new layout from those columns, so it
//! must never read a tampered one. Runs in the migration's transaction:
//! a refusal leaves the database as it was.

use auditlog_core::coverage::Coverage;
use auditlog_core::merkle::stored_hash_index;
use auditlog_store::entry_check::check_entry;
use auditlog_store::leaf_codec::DictionaryCache;
use auditlog_store::{IndexedColumns, KeyColumn, ScannedEvent};
use std::collections::HashMap;
use std::io::IsTerminal;
use tokio_postgres::Transaction;

/// Events read per query.
const PAGE: i64 = 5_000;

/// Why the migration did not run.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    #[error(
        "migration 0010 (the event log) refused this database: account {account:?}: {why}; \
         nothing was changed. Run `auditlog verify` for the full report, and restore the events from a copy \
         (`auditlog copy`) or a backup"
    )]
    Tampered { account: String, why: String },
    /// A migration step written in Rust failed (migration 0013 reads every
    /// stored event to write its words).
    #[error(transparent)]
    Store(#[from] auditlog_store::StoreError),
}

/// Checks every event of the old table; `Ok` when all pass (or there is no
/// old table).
pub async fn check_events(tx: &Transaction<'_>) -> Result<(), MigrationError> {
    let old: bool = tx
        .query_one("SELECT to_regclass('events') IS NOT NULL", &[])
        .await?
        .get(0);
    if !old {
        return Ok(());
    }
    let total: i64 = tx
        .query_one("SELECT COUNT(*) FROM events", &[])
        .await?
        .get(0);
    let progress = std::io::stderr().is_terminal() && total > 0;
    let accounts = tx
        .query(
            "SELECT a.id, a.name, s.last_seq FROM accounts a \
             JOIN account_sequencers s ON s.account_id = a.id ORDER BY a.id",
            &[],
        )
        .await?;
    let dictionaries = DictionaryCache::default();
    let mut checked: i64 = 0;
    for account in accounts {
        let (id, name, last_seq): (i64, String, i64) =
            (account.get(0), account.get(1), account.get(2));
        let refuse = |why: String| MigrationError::Tampered {
            account: name.clone(),
            why,
        };
        let mut expected: u64 = 1;
        loop {
            let rows = tx
                .query(
                    "SELECT e.seq, e.event_id, e.time, e.event_type, e.action, e.actor_id, e.project, \
                     e.app, e.version, e.target_id, e.received_at, e.leaf, e.leaf_hash, p.personal, e.leaf_dict \
                     FROM events e LEFT JOIN event_personal p ON p.account_id = e.account_id AND p.seq = e.seq \
                     WHERE e.account_id = $1 AND e.seq >= $2 ORDER BY e.seq LIMIT $3",
                    &[&id, &(expected as i64), &PAGE],
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            let missing =
                dictionaries.missing(rows.iter().filter_map(|r| r.get::<_, Option<i64>>(14)));
            if !missing.is_empty() {
                for row in tx
                    .query(
                        "SELECT id, dictionary FROM leaf_dictionaries WHERE id = ANY($1)",
                        &[&missing],
                    )
                    .await?
                {
                    // A dictionary that does not load fails the leaves that name it.
                    let _ = dictionaries.insert(row.get(0), row.get::<_, &[u8]>(1));
                }
            }
            let indexes: Vec<i64> = rows
                .iter()
                .map(|r| stored_hash_index(0, r.get::<_, i64>(0) - 1))
                .collect();
            let tree: HashMap<i64, Vec<u8>> = tx
                .query(
                    "SELECT hash_index, hash FROM tree_hashes WHERE account_id = $1 AND hash_index = ANY($2)",
                    &[&id, &indexes],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for (row, index) in rows.iter().zip(indexes) {
                let seq = row.get::<_, i64>(0) as u64;
                let stored: Vec<u8> = row.get(11);
                // A leaf that does not decompress is checked as stored: it
                // does not read as a leaf, and the check names it.
                let leaf_bytes = match row.get::<_, Option<i64>>(14) {
                    None => stored,
                    dictionary => dictionaries
                        .decode(dictionary, stored.clone(), |id| {
                            Err(auditlog_store::StoreError::internal(format!(
                                "dictionary {id} does not exist"
                            )))
                        })
                        .unwrap_or(stored),
                };
                let scanned = ScannedEvent {
                    columns: IndexedColumns {
                        seq,
                        event_id: KeyColumn::Text(row.get(1)),
                        time: row.get(2),
                        event_type: row.get(3),
                        action: row.get(4),
                        actor_id: row.get(5),
                        project: row.get(6),
                        app: row.get(7),
                        version: row.get(8),
                        target_id: row.get::<_, Option<String>>(9).map(KeyColumn::Text),
                        received_at: row.get(10),
                    },
                    leaf_bytes,
                    stored_leaf_hash: Some(row.get(12)),
                    personal: row.get(13),
                    dangling: None,
                    body_removed: false,
                };
                // The checks of `auditlog verify`, event by event.
                let hash = check_entry(&name, expected, &scanned, &Coverage::default())
                    .map_err(|finding| refuse(finding.to_string()))?;
                if tree.get(&index).map(Vec::as_slice) != Some(&hash[..]) {
                    return Err(refuse(format!(
                        "event seq {seq}: its leaf hash is not the tree's hash of that leaf \
                         (the leaf bytes and their hash were edited)"
                    )));
                }
                expected = seq + 1;
                checked += 1;
            }
            if progress {
                eprint!("\rmigration 0010: checked {checked} of {total} events");
            }
        }
        if expected - 1 != last_seq as u64 {
            return Err(refuse(format!(
                "event seq {expected} is missing: the account's sequencer says {last_seq} events, \
                 the table holds {}",
                expected - 1
            )));
        }
    }
    if progress {
        eprintln!(
            "\rmigration 0010: checked {checked} of {total} events; moving them to the event log"
        );
    }
    if checked != total {
        return Err(MigrationError::Tampered {
            account: "(none)".into(),
            why: format!("{} events belong to no account's sequence", total - checked),
        });
    }
    Ok(())
}
