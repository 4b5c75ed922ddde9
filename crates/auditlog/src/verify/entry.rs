//! The checks of one stored event, on its own: its place in the sequence,
//! its leaf against the indexed columns and the stored leaf hash. Nothing
//! here depends on another event, so pages are checked on several threads.

use super::leaf_columns::LeafColumns;
use auditlog_core::leaf;
use auditlog_core::merkle::Hash;
use auditlog_store::ScannedEvent;

/// The event's leaf hash, or the report of what is wrong with it. `expected`
/// is the seq the event must have at its place in the scan.
pub(super) fn check_entry(
    account: &str,
    expected: u64,
    scanned: &ScannedEvent,
) -> Result<Hash, String> {
    let seq = scanned.columns.seq;
    if seq != expected {
        return Err(if seq > expected {
            format!(
                "event seq {expected} is missing: seq jumps from {} to {seq} (an event was removed)",
                expected - 1
            )
        } else {
            format!(
                "event seq {seq} (id {:?}) appears more than once (an event was inserted)",
                scanned.columns.event_id
            )
        });
    }
    let name = || format!("event seq {seq} (id {:?})", scanned.columns.event_id);
    let leaf = LeafColumns::parse(&scanned.leaf_bytes).map_err(|e| {
        format!(
            "{}: its leaf bytes are unreadable ({e}): they were edited",
            name()
        )
    })?;
    if leaf.seq() != seq {
        return Err(format!(
            "{}: its leaf bytes are those of seq {} (events were swapped or renumbered)",
            name(),
            leaf.seq()
        ));
    }
    if leaf.account() != account {
        return Err(format!(
            "{}: its leaf bytes belong to account {:?} (an event was moved or inserted)",
            name(),
            leaf.account()
        ));
    }
    let hash = leaf::leaf_hash(&scanned.leaf_bytes);
    if scanned.stored_leaf_hash != hash {
        return Err(format!(
            "{}: its leaf bytes do not hash to the stored leaf hash (the leaf bytes were edited)",
            name()
        ));
    }
    if let Some(column) = leaf.first_difference(&scanned.columns) {
        return Err(format!(
            "{}: column {column} differs from the leaf bytes (the column or the leaf bytes were edited)",
            name()
        ));
    }
    Ok(hash)
}
