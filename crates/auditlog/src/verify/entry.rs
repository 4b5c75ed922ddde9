//! The checks of one stored event, on its own: its place in the sequence,
//! its leaf against the indexed columns and the stored leaf hash. Nothing
//! here depends on another event, so pages are checked on several threads.

use super::leaf_columns::LeafColumns;
use auditlog_core::leaf;
use auditlog_core::merkle::Hash;
use auditlog_store::ScannedEvent;

/// What is wrong with an event, in words that name it: a finding of the
/// check (the store was altered), reported to the operator, not a failure
/// of the check itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding(String);

impl Finding {
    fn new(report: String) -> Self {
        Self(report)
    }

    /// The report, for `verify`'s output.
    pub(super) fn into_report(self) -> String {
        self.0
    }
}

/// The event's leaf hash, or the report of what is wrong with it. `expected`
/// is the seq the event must have at its place in the scan.
pub(super) fn check_entry(
    account: &str,
    expected: u64,
    scanned: &ScannedEvent,
) -> Result<Hash, Finding> {
    let seq = scanned.columns.seq;
    if seq != expected {
        return Err(Finding::new(if seq > expected {
            format!(
                "event seq {expected} is missing: seq jumps from {} to {seq} (an event was removed)",
                expected - 1
            )
        } else {
            format!(
                "event seq {seq} (id {:?}) appears more than once (an event was inserted)",
                scanned.columns.event_id
            )
        }));
    }
    let name = || format!("event seq {seq} (id {:?})", scanned.columns.event_id);
    let leaf = LeafColumns::parse(&scanned.leaf_bytes).map_err(|e| {
        Finding::new(format!(
            "{}: its leaf bytes are unreadable ({e}): they were edited",
            name()
        ))
    })?;
    if leaf.seq() != seq {
        return Err(Finding::new(format!(
            "{}: its leaf bytes are those of seq {} (events were swapped or renumbered)",
            name(),
            leaf.seq()
        )));
    }
    if leaf.account() != account {
        return Err(Finding::new(format!(
            "{}: its leaf bytes belong to account {:?} (an event was moved or inserted)",
            name(),
            leaf.account()
        )));
    }
    let hash = leaf::leaf_hash(&scanned.leaf_bytes);
    if scanned.stored_leaf_hash != hash {
        return Err(Finding::new(format!(
            "{}: its leaf bytes do not hash to the stored leaf hash (the leaf bytes were edited)",
            name()
        )));
    }
    if let Some(column) = leaf.first_difference(&scanned.columns) {
        return Err(Finding::new(format!(
            "{}: column {column} differs from the leaf bytes (the column or the leaf bytes were edited)",
            name()
        )));
    }
    Ok(hash)
}
