//! The checks of one stored event, on its own: its place in the sequence,
//! its leaf against the indexed columns and the stored leaf hash. Nothing
//! here depends on another event, so `auditlog verify` checks pages on
//! several threads; the embedded store's migration to its event log
//! (migration 0010) runs the same checks on every event before it moves it.

mod leaf_columns;

use crate::tree::{KeyColumn, ScannedEvent};
use auditlog_core::coverage::Coverage;
use auditlog_core::leaf_view::LeafView;
use auditlog_core::merkle::Hash;
use auditlog_core::{leaf, RecordError, StoredRecord};
pub use leaf_columns::{LeafColumns, UnreadableLeaf};

/// What is wrong with one stored event, worded for the report, which names
/// the entry and says what kind of change explains it.
#[derive(Debug, thiserror::Error)]
pub enum EntryFinding {
    #[error(
        "event seq {expected} is missing: seq jumps from {} to {found} (an event was removed)",
        expected - 1
    )]
    Missing { expected: u64, found: u64 },
    #[error("event seq {seq} (id {id:?}) appears more than once (an event was inserted)")]
    Repeated { seq: u64, id: String },
    #[error(
        "event seq {seq} (id {id:?}): its leaf bytes are unreadable ({cause}): they were edited"
    )]
    Unreadable {
        seq: u64,
        id: String,
        #[source]
        cause: UnreadableLeaf,
    },
    #[error(
        "event seq {seq} (id {id:?}): its leaf bytes are those of seq {leaf_seq} (events were swapped or renumbered)"
    )]
    Renumbered { seq: u64, id: String, leaf_seq: u64 },
    #[error(
        "event seq {seq} (id {id:?}): its leaf bytes belong to account {leaf_account:?} (an event was moved or inserted)"
    )]
    OtherAccount {
        seq: u64,
        id: String,
        leaf_account: String,
    },
    #[error(
        "event seq {seq} (id {id:?}): its leaf bytes do not hash to the stored leaf hash (the leaf bytes were edited)"
    )]
    HashDiffers { seq: u64, id: String },
    #[error(
        "event seq {seq} (id {id:?}): {cause} (the personal values were edited, removed or added)"
    )]
    Personal {
        seq: u64,
        id: String,
        cause: RecordError,
    },
    #[error(
        "event seq {seq} (id {id:?}): its body is missing and no later Auditlog Retention or Auditlog Erasure record covers it (it was removed outside retention and erasure)"
    )]
    BodyMissing { seq: u64, id: String },
    #[error(
        "event seq {seq} (id {id:?}): the leaf is version 2 but no personal values are stored beside it, and no later Auditlog Erasure or Auditlog Retention record covers it (they were removed outside erasure)"
    )]
    PersonalMissing { seq: u64, id: String },
    #[error(
        "event seq {seq} (id {id:?}): column {column} differs from the leaf bytes (the column or the leaf bytes were edited)"
    )]
    ColumnDiffers {
        seq: u64,
        id: String,
        column: &'static str,
    },
}

/// The event's leaf hash, or what is wrong with it. `expected` is the seq
/// the event must have at its place in the scan. `coverage` holds the seqs
/// whose bodies or personal values a later removal record authorises to be
/// missing (`auditlog_core::coverage`, read from the records' leaves); for
/// a removed body the leaf hash is the tree's, which the rebuilt tree and
/// the signed checkpoints still check.
pub fn check_entry(
    account: &str,
    expected: u64,
    scanned: &ScannedEvent,
    coverage: &Coverage,
) -> Result<Hash, EntryFinding> {
    let seq = scanned.columns.seq;
    let id = || shown_id(scanned);
    if seq > expected {
        return Err(EntryFinding::Missing {
            expected,
            found: seq,
        });
    }
    if seq < expected {
        return Err(EntryFinding::Repeated { seq, id: id() });
    }
    if scanned.body_removed {
        if !coverage.covers(seq) {
            return Err(EntryFinding::BodyMissing { seq, id: id() });
        }
        return match scanned.stored_leaf_hash.as_deref().map(Hash::try_from) {
            Some(Ok(hash)) => Ok(hash),
            // No tree hash to stand for the leaf: the tree lost it too.
            _ => Err(EntryFinding::HashDiffers { seq, id: id() }),
        };
    }
    let leaf =
        LeafColumns::parse(&scanned.leaf_bytes, scanned.personal.as_deref()).map_err(|cause| {
            EntryFinding::Unreadable {
                seq,
                id: id(),
                cause,
            }
        })?;
    if leaf.seq() != seq {
        return Err(EntryFinding::Renumbered {
            seq,
            id: id(),
            leaf_seq: leaf.seq(),
        });
    }
    if leaf.account() != account {
        return Err(EntryFinding::OtherAccount {
            seq,
            id: id(),
            leaf_account: leaf.account().to_string(),
        });
    }
    let hash = leaf::leaf_hash(&scanned.leaf_bytes);
    // Without a stored leaf hash (a row outside the tree), the comparison
    // of the rebuilt tree with the stored one names the entry.
    if let Some(stored) = &scanned.stored_leaf_hash {
        if stored[..] != hash[..] {
            return Err(EntryFinding::HashDiffers { seq, id: id() });
        }
    }
    // A version 2 leaf's personal values must open its commitments (what
    // the API serves is what the log committed to); a version 1 leaf has
    // none. They may be missing only where a removal record covers the seq
    // (an erasure): then the actor's column holds no value the leaf has.
    let erased = leaf.view().is_version_2()
        && scanned
            .personal
            .as_deref()
            .is_none_or(auditlog_core::leaf_v2::erased::is_erased_form);
    if erased && !coverage.covers(seq) {
        return Err(EntryFinding::PersonalMissing { seq, id: id() });
    }
    if !erased {
        StoredRecord::new(&scanned.leaf_bytes, scanned.personal.as_deref())
            .check_with_view(leaf.view())
            .map_err(|cause| EntryFinding::Personal {
                seq,
                id: id(),
                cause,
            })?;
    }
    let difference = if erased {
        // The leaf holds no actor id to compare: every other column still is.
        let mut columns = scanned.columns.clone();
        columns.actor_id = leaf.view().actor_id().to_string();
        scanned
            .dangling
            .filter(|column| *column != "actor_id")
            .or_else(|| leaf.first_difference(&columns))
    } else {
        scanned
            .dangling
            .or_else(|| leaf.first_difference(&scanned.columns))
    };
    if let Some(column) = difference {
        return Err(EntryFinding::ColumnDiffers {
            seq,
            id: id(),
            column,
        });
    }
    Ok(hash)
}

/// The event's id for a report: the column's text, or (for a backend that
/// keeps only its hash) the id in the leaf, when the leaf reads.
fn shown_id(scanned: &ScannedEvent) -> String {
    match &scanned.columns.event_id {
        KeyColumn::Text(text) => text.clone(),
        KeyColumn::Hash(hash) => LeafView::parse(&scanned.leaf_bytes)
            .map(|view| view.id().to_string())
            .unwrap_or_else(|_| format!("unknown, hash {hash:016x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_names_the_missing_seq_and_where_it_jumps() {
        let finding = EntryFinding::Missing {
            expected: 5,
            found: 7,
        };
        assert_eq!(
            finding.to_string(),
            "event seq 5 is missing: seq jumps from 4 to 7 (an event was removed)"
        );
    }
}
