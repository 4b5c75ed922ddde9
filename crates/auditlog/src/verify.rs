//! `auditlog verify`: checks, without trusting anything the store says about
//! itself, that no entry was changed, removed, reordered or slipped in. Per
//! account it walks every event by seq and
//! - checks that seqs run 1, 2, 3, … without gaps or repeats,
//! - reads each leaf back and compares it with the columns queries filter on,
//! - recomputes each leaf hash and rebuilds the Merkle tree from them,
//!   comparing every stored tree hash with the rebuilt one,
//! - checks every retained checkpoint's signature, its root against the
//!   rebuilt tree, and the consistency between successive checkpoints.
//!
//! It stops an account at its first problem and names the entry. It reads
//! the store only through the storage traits. The modules:
//! - `account`: one account's walk, page by page, reading ahead while a
//!   page is checked, with the rebuilt tree kept as its right edge only;
//! - `parallel`: a page's events checked on every core, each with
//!   `auditlog_store::entry_check` (the checks of one event, shared with the
//!   embedded store's migration);
//! - `checkpoints`: signatures, roots at checkpoint sizes, consistency;
//! - `progress`: the progress line on a terminal.

mod account;
mod checkpoints;
mod parallel;
mod progress;

use crate::error::CliResult;
use account::Outcome;
use anyhow::bail;
use auditlog_core::note::NoteVerifier;
use auditlog_store::Store;
use progress::Progress;

pub async fn run(store: &dyn Store, verifiers: &[NoteVerifier]) -> CliResult {
    let progress = Progress::on_terminal();
    let accounts = store.accounts().await?;
    let (mut events, mut checkpoints, mut bad) = (0u64, 0usize, 0usize);
    for account in &accounts {
        let outcome = account::verify_account(store, account, verifiers, &progress).await;
        progress.clear();
        match outcome? {
            Outcome::Intact {
                events: e,
                checkpoints: c,
            } => {
                events += e;
                checkpoints += c;
                println!("ok    {}: {e} events, {c} checkpoints", account.name);
            }
            Outcome::Bad(problem) => {
                bad += 1;
                println!("FAIL  {}: {problem}", account.name);
            }
        }
    }
    if bad > 0 {
        bail!(
            "{bad} of {} accounts failed verification: the store was altered (see above)",
            accounts.len()
        );
    }
    println!(
        "intact: {} accounts, {events} events, {checkpoints} signed checkpoints verified",
        accounts.len()
    );
    Ok(())
}
