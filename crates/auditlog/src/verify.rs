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
//! the store only through the storage traits.

use crate::error::{CliError, CliResult};
use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::merkle::{self, MemoryHashes};
use auditlog_core::note::NoteVerifier;
use auditlog_core::{leaf, StoredEvent};
use auditlog_store::{Account, IndexedColumns, Store, StoreError, StoredCheckpoint};
use std::io::{IsTerminal, Write};

/// Events read per page.
const PAGE: usize = 2_000;

/// A progress line on standard error, only when it is a terminal.
struct Progress {
    enabled: bool,
}

impl Progress {
    fn show(&self, account: &str, done: u64, total: u64) {
        if self.enabled {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[Kverifying {account}: {done}/{total} events");
            let _ = err.flush();
        }
    }

    fn clear(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

/// What one account's check found.
enum Outcome {
    Intact { events: u64, checkpoints: usize },
    Bad(String),
}

pub async fn run(store: &dyn Store, verifier: Option<&NoteVerifier>) -> CliResult {
    let progress = Progress {
        enabled: std::io::stderr().is_terminal(),
    };
    let accounts = store.accounts().await?;
    let (mut events, mut checkpoints, mut bad) = (0u64, 0usize, 0usize);
    for account in &accounts {
        let outcome = verify_account(store, account, verifier, &progress).await;
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
        return Err(CliError::Verify(format!(
            "{bad} of {} accounts failed verification: the store was altered (see above)",
            accounts.len()
        )));
    }
    println!(
        "intact: {} accounts, {events} events, {checkpoints} signed checkpoints verified",
        accounts.len()
    );
    Ok(())
}

async fn verify_account(
    store: &dyn Store,
    account: &Account,
    verifier: Option<&NoteVerifier>,
    progress: &Progress,
) -> CliResult<Outcome> {
    let total = store.last_seq(account.id).await?;
    let checkpoints = store.checkpoints(account.id).await?;
    if let Some(problem) = check_signatures(account, &checkpoints, verifier) {
        return Ok(Outcome::Bad(problem));
    }

    let mut tree = MemoryHashes::default();
    let mut expected = 1u64;
    loop {
        let page = store.scan_events(account.id, expected - 1, PAGE).await?;
        if page.is_empty() {
            break;
        }
        let first_leaf = tree.leaf_count();
        for scanned in &page {
            let seq = scanned.columns.seq;
            if seq != expected {
                return Ok(Outcome::Bad(if seq > expected {
                    format!("event seq {expected} is missing: seq jumps from {} to {seq} (an event was removed)", expected - 1)
                } else {
                    format!(
                        "event seq {seq} (id {:?}) appears more than once (an event was inserted)",
                        scanned.columns.event_id
                    )
                }));
            }
            let name = format!("event seq {seq} (id {:?})", scanned.columns.event_id);
            let stored = match StoredEvent::from_leaf_bytes(&scanned.leaf_bytes) {
                Ok(stored) => stored,
                Err(e) => {
                    return Ok(Outcome::Bad(format!(
                        "{name}: its leaf bytes are unreadable ({e}): they were edited"
                    )))
                }
            };
            if stored.seq != seq {
                return Ok(Outcome::Bad(format!(
                    "{name}: its leaf bytes are those of seq {} (events were swapped or renumbered)",
                    stored.seq
                )));
            }
            if stored.account != account.name {
                return Ok(Outcome::Bad(format!(
                    "{name}: its leaf bytes belong to account {:?} (an event was moved or inserted)",
                    stored.account
                )));
            }
            let hash = leaf::leaf_hash(&scanned.leaf_bytes);
            if scanned.stored_leaf_hash != hash {
                return Ok(Outcome::Bad(format!(
                    "{name}: its leaf bytes do not hash to the stored leaf hash (the leaf bytes were edited)"
                )));
            }
            if let Some(column) = scanned
                .columns
                .first_difference(&IndexedColumns::of(&stored))
            {
                return Ok(Outcome::Bad(format!(
                    "{name}: column {column} differs from the leaf bytes (the column or the leaf bytes were edited)"
                )));
            }
            tree.append_leaf(hash)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            expected += 1;
        }
        if let Some(problem) = compare_tree_hashes(store, account, &tree, first_leaf).await? {
            return Ok(Outcome::Bad(problem));
        }
        progress.show(&account.name, expected - 1, total);
    }
    let size = expected - 1;
    let rows = store.event_row_count(account.id).await?;
    if rows != size {
        return Ok(Outcome::Bad(format!(
            "the account has {rows} event rows but only seqs 1 to {size} form its log: {} rows were inserted outside it (a duplicate or out-of-range seq)",
            rows.saturating_sub(size)
        )));
    }
    let stored_count = store.stored_hash_count(account.id).await?;
    if stored_count != merkle::stored_hash_count(size as i64) {
        return Ok(Outcome::Bad(format!(
            "the Merkle tree holds {stored_count} hashes but {size} events need {}: its leaves and hashes disagree",
            merkle::stored_hash_count(size as i64)
        )));
    }
    if let Some(problem) = check_checkpoints(&checkpoints, &tree, size) {
        return Ok(Outcome::Bad(problem));
    }
    Ok(Outcome::Intact {
        events: size,
        checkpoints: checkpoints.len(),
    })
}

fn check_signatures(
    account: &Account,
    checkpoints: &[StoredCheckpoint],
    verifier: Option<&NoteVerifier>,
) -> Option<String> {
    if checkpoints.is_empty() {
        return None;
    }
    let Some(verifier) = verifier else {
        return Some("it has signed checkpoints but no verifier key was given (--key) or found (signing key file)".into());
    };
    for stored in checkpoints {
        let checkpoint = match Checkpoint::open(&stored.note, verifier) {
            Ok(c) => c,
            Err(e) => {
                return Some(format!(
                    "checkpoint of size {}: {e} (the checkpoint was replaced or altered)",
                    stored.size
                ))
            }
        };
        if !checkpoint.origin.ends_with(&format!("/{}", account.name)) {
            return Some(format!(
                "checkpoint of size {}: its origin {:?} is not this account's log (the checkpoint was replaced)",
                stored.size, checkpoint.origin
            ));
        }
        if checkpoint.size != stored.size || checkpoint.root != stored.root {
            return Some(format!(
                "checkpoint of size {}: its signed note says size {} and another root (the checkpoint was replaced)",
                stored.size, checkpoint.size
            ));
        }
    }
    None
}

/// Compares the stored tree hashes written for leaves `first_leaf..` with
/// the rebuilt ones, naming the event whose append wrote the first that differs.
async fn compare_tree_hashes(
    store: &dyn Store,
    account: &Account,
    tree: &MemoryHashes,
    first_leaf: i64,
) -> CliResult<Option<String>> {
    let last_leaf = tree.leaf_count();
    let start = merkle::stored_hash_index(0, first_leaf);
    let end = merkle::stored_hash_count(last_leaf);
    let indexes: Vec<i64> = (start..end).collect();
    let stored = match store.read_hashes(account.id, &indexes).await {
        Ok(stored) => Some(stored),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    for leaf_index in first_leaf..last_leaf {
        let from = merkle::stored_hash_index(0, leaf_index);
        let to = merkle::stored_hash_count(leaf_index + 1);
        let rebuilt = &tree.0[from as usize..to as usize];
        let same = match &stored {
            Some(stored) => &stored[(from - start) as usize..(to - start) as usize] == rebuilt,
            None => {
                let own: Vec<i64> = (from..to).collect();
                match store.read_hashes(account.id, &own).await {
                    Ok(hashes) => hashes == rebuilt,
                    Err(StoreError::NotFound(_)) => {
                        return Ok(Some(format!(
                            "event seq {}: its Merkle tree hashes are missing (the event was inserted outside the log)",
                            leaf_index + 1
                        )))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if !same {
            return Ok(Some(format!(
                "event seq {}: its leaf is not the one in the account's Merkle tree (the event or the tree was altered)",
                leaf_index + 1
            )));
        }
    }
    Ok(None)
}

fn check_checkpoints(
    checkpoints: &[StoredCheckpoint],
    tree: &MemoryHashes,
    size: u64,
) -> Option<String> {
    let mut previous: Option<&StoredCheckpoint> = None;
    for checkpoint in checkpoints {
        if checkpoint.size > size {
            return Some(format!(
                "event seq {} is missing: a checkpoint of size {} was signed but only {size} events remain (the newest events were removed)",
                size + 1,
                checkpoint.size
            ));
        }
        let root = match merkle::tree_hash(checkpoint.size as i64, tree) {
            Ok(root) => root,
            Err(e) => return Some(format!("checkpoint of size {}: {e}", checkpoint.size)),
        };
        if root != checkpoint.root {
            let from = previous.map_or(1, |p| p.size + 1);
            return Some(format!(
                "checkpoint of size {}: the events rebuild another root; an event with seq from {from} to {} was altered since it was signed",
                checkpoint.size, checkpoint.size
            ));
        }
        if let Some(previous) = previous {
            let consistent = merkle::prove_tree(checkpoint.size as i64, previous.size as i64, tree)
                .and_then(|proof| {
                    merkle::check_tree(
                        &proof,
                        checkpoint.size as i64,
                        &checkpoint.root,
                        previous.size as i64,
                        &previous.root,
                    )
                });
            if consistent.is_err() {
                return Some(format!(
                    "checkpoints of sizes {} and {} are not consistent with each other",
                    previous.size, checkpoint.size
                ));
            }
        }
        previous = Some(checkpoint);
    }
    None
}
