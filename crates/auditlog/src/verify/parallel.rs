//! Checks a page of events on every core: the page is cut into one run per
//! thread, each run checked in order, and the first problem of the earliest
//! run reported, so the report names the same entry a single thread would.

use super::entry::check_entry;
use auditlog_core::merkle::Hash;
use auditlog_store::ScannedEvent;

/// The leaf hashes of `page` in order, whose first event must have seq
/// `first_seq`; or the report of its first bad entry.
pub(super) fn check_page(
    account: &str,
    first_seq: u64,
    page: &[ScannedEvent],
    threads: usize,
) -> Result<Vec<Hash>, String> {
    let run = page.len().div_ceil(threads.max(1)).max(1);
    let check_run = |index: usize, events: &[ScannedEvent]| -> Result<Vec<Hash>, String> {
        let first = first_seq + (index * run) as u64;
        events
            .iter()
            .enumerate()
            .map(|(i, event)| check_entry(account, first + i as u64, event))
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
