//! Checks a page of events on every core: the page is cut into one run per
//! thread, each run checked in order, and the first problem of the earliest
//! run reported, so the report names the same entry a single thread would.

use auditlog_core::coverage::Coverage;
use auditlog_core::merkle::Hash;
use auditlog_store::entry_check::{check_entry, EntryFinding};
use auditlog_store::ScannedEvent;

/// The leaf hashes of `page` in order, whose first event must have seq
/// `first_seq`; or what is wrong with its first bad entry. `coverage`: the
/// seqs whose bodies removal records allow to be missing.
pub(super) fn check_page(
    account: &str,
    first_seq: u64,
    page: &[ScannedEvent],
    threads: usize,
    coverage: &Coverage,
) -> Result<Vec<Hash>, EntryFinding> {
    let run = page.len().div_ceil(threads.max(1)).max(1);
    let check_run = |index: usize, events: &[ScannedEvent]| -> Result<Vec<Hash>, EntryFinding> {
        let first = first_seq + (index * run) as u64;
        events
            .iter()
            .enumerate()
            .map(|(i, event)| check_entry(account, first + i as u64, event, coverage))
            .collect()
    };
    std::thread::scope(|scope| {
        let mut runs = page.chunks(run).enumerate();
        // The calling thread takes the first run instead of idling.
        let own = runs.next();
        let others: Vec<_> = runs
            .map(|(index, events)| scope.spawn(move || check_run(index, events)))
            .collect();
        let mut hashes = Vec::with_capacity(page.len());
        if let Some((index, events)) = own {
            hashes.extend(check_run(index, events)?);
        }
        for other in others {
            // A panic in a check is a bug, not a finding: pass it on.
            let result = other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            hashes.extend(result?);
        }
        Ok(hashes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::{leaf, NewEvent, StoredEvent, Taxonomy, Timestamp};
    use auditlog_store::IndexedColumns;
    use serde_json::json;

    fn page(count: u64) -> Vec<ScannedEvent> {
        let now = Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap();
        (1..=count)
            .map(|seq| {
                let body = json!({"id": format!("e-{seq}"), "event_type": "Element", "action": "Create", "actor": {"id": "u"}});
                let event = StoredEvent::new(
                    "acme",
                    seq,
                    now,
                    NewEvent::parse(&body, &Taxonomy::default(), now).unwrap(),
                );
                let leaf_bytes = event.leaf_bytes();
                ScannedEvent {
                    columns: IndexedColumns::of(&event),
                    stored_leaf_hash: Some(leaf::leaf_hash(&leaf_bytes).to_vec()),
                    leaf_bytes,
                    personal: None,
                    dangling: None,
                    body_removed: false,
                }
            })
            .collect()
    }

    #[test]
    fn every_thread_count_gives_the_same_hashes_in_order() {
        let none = Coverage::default();
        let events = page(11);
        let one = check_page("acme", 1, &events, 1, &none).unwrap();
        let want: Vec<Hash> = events
            .iter()
            .map(|e| leaf::leaf_hash(&e.leaf_bytes))
            .collect();
        assert_eq!(one, want);
        for threads in [2, 3, 4, 16] {
            assert_eq!(
                check_page("acme", 1, &events, threads, &none).unwrap(),
                want,
                "{threads}"
            );
        }
    }

    #[test]
    fn the_earliest_problem_is_named_whichever_thread_finds_it() {
        let none = Coverage::default();
        let mut events = page(12);
        // Problems in the first and the last run of four.
        events[2].columns.action = "Delete".into();
        events[10].stored_leaf_hash = Some(vec![0; 32]);
        for threads in [1, 2, 4] {
            let problem = check_page("acme", 1, &events, threads, &none)
                .unwrap_err()
                .to_string();
            assert!(problem.starts_with("event seq 3 "), "{threads}: {problem}");
            assert!(problem.contains("column action"), "{problem}");
        }
        // Runs start at the right seq: a page that begins at seq 5.
        let later = &page(12)[4..];
        assert_eq!(check_page("acme", 5, later, 3, &none).unwrap().len(), 8);
        let problem = check_page("acme", 6, later, 3, &none)
            .unwrap_err()
            .to_string();
        assert!(problem.contains("appears more than once"), "{problem}");
    }

    #[test]
    fn a_removed_body_passes_only_where_a_removal_record_covers_it() {
        use auditlog_core::coverage::SeqRange;
        use auditlog_store::KeyColumn;
        let mut events = page(6);
        let hash = |e: &ScannedEvent| e.stored_leaf_hash.clone();
        events[1] = ScannedEvent::removed(2, KeyColumn::Text("e-2".into()), hash(&events[1]));
        events[2] = ScannedEvent::removed(3, KeyColumn::Text("e-3".into()), hash(&events[2]));
        let want: Vec<Hash> = page(6)
            .iter()
            .map(|e| leaf::leaf_hash(&e.leaf_bytes))
            .collect();
        let covered = Coverage::from_ranges(vec![SeqRange::new(2, 3).unwrap()]);
        assert_eq!(check_page("acme", 1, &events, 2, &covered).unwrap(), want);
        let partly = Coverage::from_ranges(vec![SeqRange::new(2, 2).unwrap()]);
        let problem = check_page("acme", 1, &events, 2, &partly)
            .unwrap_err()
            .to_string();
        assert!(
            problem.starts_with("event seq 3 (id \"e-3\"): its body is missing"),
            "{problem}"
        );
        let none = Coverage::default();
        let problem = check_page("acme", 1, &events, 1, &none)
            .unwrap_err()
            .to_string();
        assert!(problem.starts_with("event seq 2 "), "{problem}");
        // A removed body without its tree hash is not accepted either.
        events[1].stored_leaf_hash = None;
        assert!(check_page("acme", 1, &events, 1, &covered).is_err());
    }
}
