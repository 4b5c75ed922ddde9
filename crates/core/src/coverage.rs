//! Which removed bodies are authorised: an event's body (its leaf bytes,
//! columns and personal values) may be missing from a store only where a
//! **later** `Auditlog Retention` or `Auditlog Erasure` record of the same
//! account says so. Such a record lists the seqs it covers in
//! `details.covers`, as inclusive ranges `[[first, last], …]` sorted and
//! disjoint; a pruning covers the one range it pruned (held events and
//! Auditlog's own records inside it keep their bodies), an erasure the seqs
//! it erased.
//!
//! The record is itself an event of the log, so its leaf is hashed into the
//! tree: `auditlog verify` reads coverage only from record leaves (a store's
//! own list of records is a hint of where to look, never trusted), and the
//! databases refuse to remove a body unless a covering record is stored
//! (their triggers and functions keep their own copy of the ranges).

use crate::leaf_view::LeafView;
use serde_json::Value;

/// The event type of the record each pruning appends (action `Prune`).
pub const RETENTION_EVENT_TYPE: &str = crate::taxonomy::RETENTION;
/// The event type of the record each erasure appends (action `Erase`).
pub const ERASURE_EVENT_TYPE: &str = crate::taxonomy::ERASURE;
/// The member of a record's `details` that lists the seqs it covers.
pub const COVERS_KEY: &str = "covers";

/// Whether events of this type may cover removed bodies (and so are never
/// pruned themselves).
pub fn is_removal_record(event_type: &str) -> bool {
    event_type == RETENTION_EVENT_TYPE || event_type == ERASURE_EVENT_TYPE
}

/// Seqs `first..=last` (first ≥ 1, first ≤ last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqRange {
    pub first: u64,
    pub last: u64,
}

impl SeqRange {
    /// `None` unless `1 <= first <= last`.
    pub fn new(first: u64, last: u64) -> Option<Self> {
        (first >= 1 && first <= last).then_some(Self { first, last })
    }

    pub fn contains(&self, seq: u64) -> bool {
        (self.first..=self.last).contains(&seq)
    }

    /// How many seqs the range holds.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true (a range holds at least one seq); for clippy's pairing
    /// with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The value of `details.covers` for `ranges`: `[[first, last], …]`,
/// sorted and merged, so that equal coverage is equal JSON.
pub fn covers_json(ranges: &[SeqRange]) -> Value {
    let merged = merge(ranges.to_vec());
    Value::Array(
        merged
            .iter()
            .map(|r| Value::Array(vec![r.first.into(), r.last.into()]))
            .collect(),
    )
}

/// The most bytes of `details.covers` JSON one record carries. An event's
/// leaf is at most 65,535 bytes (SPEC "Event"), so one erasure of a subject
/// with thousands of scattered events (one range each, ~18 bytes) cannot
/// fit in one record; half the cap leaves room for the record's other
/// fields and the leaf's framing.
pub const RECORD_COVERS_BYTES: usize = 32 * 1024;

/// `ranges` (sorted, disjoint) split into the parts that successive records
/// each list in `details.covers`, in seq order, each part's JSON at most
/// `max_bytes` (a part always holds at least one range). The same ranges
/// always split the same way, so a record appended again after a crash is
/// the same record.
pub fn split_for_records(ranges: &[SeqRange], max_bytes: usize) -> Vec<Vec<SeqRange>> {
    let merged = merge(ranges.to_vec());
    let mut parts: Vec<Vec<SeqRange>> = Vec::new();
    let mut current: Vec<SeqRange> = Vec::new();
    // `[]` plus, per range, `[first,last]` and a separating comma.
    let mut bytes = 2;
    for range in merged {
        let cost = range.first.to_string().len() + range.last.to_string().len() + 4;
        if !current.is_empty() && bytes + cost > max_bytes {
            parts.push(std::mem::take(&mut current));
            bytes = 2;
        }
        bytes += cost;
        current.push(range);
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// `ranges` from seqs in any order, one range per run of consecutive seqs:
/// what an erasure of scattered seqs lists.
pub fn ranges_of_seqs(seqs: impl IntoIterator<Item = u64>) -> Vec<SeqRange> {
    let mut seqs: Vec<u64> = seqs.into_iter().filter(|s| *s >= 1).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let mut ranges: Vec<SeqRange> = Vec::new();
    for seq in seqs {
        match ranges.last_mut() {
            Some(last) if last.last + 1 == seq => last.last = seq,
            _ => ranges.push(SeqRange {
                first: seq,
                last: seq,
            }),
        }
    }
    ranges
}

/// The ranges a record lists in its `details.covers`, or `None` when the
/// value is not a list of `[first, last]` pairs with `1 <= first <= last`.
pub fn parse_covers(details: &Value) -> Option<Vec<SeqRange>> {
    let list = details.get(COVERS_KEY)?.as_array()?;
    list.iter()
        .map(|pair| {
            let pair = pair.as_array()?;
            match pair.as_slice() {
                [first, last] => SeqRange::new(first.as_u64()?, last.as_u64()?),
                _ => None,
            }
        })
        .collect()
}

/// The seq a record has and the ranges it covers, from its leaf bytes;
/// `None` when the leaf is not a removal record (another type, or no
/// readable `covers`). Seqs at or after the record's own are never covered:
/// a record can only authorise the removal of what came before it.
pub fn record_coverage(leaf_bytes: &[u8]) -> Option<(u64, Vec<SeqRange>)> {
    let view = LeafView::parse(leaf_bytes).ok()?;
    if !is_removal_record(view.event_type()) {
        return None;
    }
    let details: Value = serde_json::from_str(view.details_json()?).ok()?;
    let record_seq = view.seq();
    let ranges = parse_covers(&details)?
        .into_iter()
        .filter_map(|r| SeqRange::new(r.first, r.last.min(record_seq.saturating_sub(1))))
        .collect();
    Some((record_seq, ranges))
}

/// The seqs of one account whose bodies may be missing: the union of what
/// its removal records cover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Sorted, disjoint, not adjacent.
    ranges: Vec<SeqRange>,
}

impl Coverage {
    /// The coverage of `ranges` (any order, overlaps allowed).
    pub fn from_ranges(ranges: Vec<SeqRange>) -> Self {
        Self {
            ranges: merge(ranges),
        }
    }

    /// Adds what the record in `leaf_bytes` covers; false (and nothing
    /// added) when it is not a removal record.
    pub fn add_record(&mut self, leaf_bytes: &[u8]) -> bool {
        match record_coverage(leaf_bytes) {
            Some((_, ranges)) => {
                let mut all = std::mem::take(&mut self.ranges);
                all.extend(ranges);
                self.ranges = merge(all);
                true
            }
            None => false,
        }
    }

    pub fn covers(&self, seq: u64) -> bool {
        let after = self.ranges.partition_point(|r| r.last < seq);
        self.ranges.get(after).is_some_and(|r| r.contains(seq))
    }

    pub fn ranges(&self) -> &[SeqRange] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

fn merge(mut ranges: Vec<SeqRange>) -> Vec<SeqRange> {
    ranges.sort_unstable();
    let mut merged: Vec<SeqRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.first <= last.last.saturating_add(1) => {
                last.last = last.last.max(range.last);
            }
            _ => merged.push(range),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewEvent, StoredEvent, Taxonomy, Timestamp};
    use serde_json::json;

    fn record(event_type: &str, action: &str, seq: u64, details: Value) -> Vec<u8> {
        let now = Timestamp::parse("now", "2026-12-06T10:00:00Z").unwrap();
        let body = json!({"event_type": event_type, "action": action,
                          "actor": {"id": "auditlog"}, "details": details});
        let event = NewEvent::parse(&body, &Taxonomy::default().with_own_types(), now).unwrap();
        StoredEvent::new("acme", seq, now, event).leaf_bytes()
    }

    #[test]
    fn split_for_records_keeps_every_part_within_its_bytes_and_loses_no_seq() {
        // 5,000 scattered seqs: one range each, like a subject's events.
        let ranges = ranges_of_seqs((1..=5_000u64).map(|i| i * 2 + 100_000));
        let parts = split_for_records(&ranges, 4_096);
        assert!(parts.len() > 1, "{} parts", parts.len());
        for part in &parts {
            assert!(!part.is_empty());
            let json = serde_json::to_string(&covers_json(part)).unwrap();
            assert!(json.len() <= 4_096, "a part of {} bytes", json.len());
        }
        let joined: Vec<SeqRange> = parts.concat();
        assert_eq!(joined, ranges, "the parts, in order, are the ranges");
        // A range too big for the limit alone still goes (in a part of its own).
        let one = vec![SeqRange::new(1, 2).unwrap()];
        assert_eq!(split_for_records(&one, 3), vec![one.clone()]);
        assert!(split_for_records(&[], 4_096).is_empty());
        // The real limit: 20,000 scattered seqs in the hundred millions fit
        // in parts whose record stays far under the leaf cap.
        let big = ranges_of_seqs((1..=20_000u64).map(|i| i * 3 + 123_000_000));
        for part in split_for_records(&big, RECORD_COVERS_BYTES) {
            let json = serde_json::to_string(&covers_json(&part)).unwrap();
            assert!(json.len() <= RECORD_COVERS_BYTES);
        }
    }

    #[test]
    fn a_record_covers_only_what_it_lists_and_only_before_itself() {
        let leaf = record(
            RETENTION_EVENT_TYPE,
            "Prune",
            20,
            json!({"covers": [[1, 5], [8, 30]]}),
        );
        let (seq, ranges) = record_coverage(&leaf).unwrap();
        assert_eq!(seq, 20);
        assert_eq!(
            ranges,
            vec![SeqRange::new(1, 5).unwrap(), SeqRange::new(8, 19).unwrap()]
        );
        let mut coverage = Coverage::default();
        assert!(coverage.add_record(&leaf));
        for (seq, covered) in [(1, true), (5, true), (6, false), (8, true), (19, true)] {
            assert_eq!(coverage.covers(seq), covered, "{seq}");
        }
        assert!(!coverage.covers(20) && !coverage.covers(0) && !coverage.covers(25));
    }

    #[test]
    fn other_events_and_malformed_lists_cover_nothing() {
        let other = record("Test Case", "Create", 9, json!({"covers": [[1, 5]]}));
        assert_eq!(record_coverage(&other), None);
        for bad in [
            json!({"covers": [[0, 5]]}),
            json!({"covers": [[5, 1]]}),
            json!({"covers": [[1]]}),
            json!({"covers": "1-5"}),
            json!({"range": [1, 5]}),
        ] {
            let leaf = record(ERASURE_EVENT_TYPE, "Erase", 9, bad.clone());
            assert_eq!(record_coverage(&leaf), None, "{bad}");
        }
    }

    #[test]
    fn scattered_seqs_become_runs_and_runs_merge() {
        let ranges = ranges_of_seqs([7, 3, 4, 5, 9, 4, 10]);
        assert_eq!(covers_json(&ranges), json!([[3, 5], [7, 7], [9, 10]]));
        let coverage = Coverage::from_ranges(vec![
            SeqRange::new(4, 6).unwrap(),
            SeqRange::new(1, 3).unwrap(),
            SeqRange::new(10, 12).unwrap(),
        ]);
        assert_eq!(
            coverage.ranges(),
            &[SeqRange::new(1, 6).unwrap(), SeqRange::new(10, 12).unwrap()]
        );
    }
}
