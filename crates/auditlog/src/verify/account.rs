//! One account's walk: its events by seq, a page at a time. While one page
//! is checked on every core (`parallel`), the next page and the page's
//! stored tree hashes are read; then the page's leaf hashes are appended to
//! the rebuilt tree, whose new hashes are compared with the stored ones.
//! Memory stays bounded by the page size: the rebuilt tree is only its right
//! edge (`TreeFrontier`), and checkpoint roots are noted as it grows.

use super::checkpoints::{self, RootsAtSizes};
use super::parallel::check_page;
use super::progress::Progress;
use auditlog_core::coverage::Coverage;
use auditlog_core::merkle::{self, Hash, TreeFrontier};
use auditlog_core::note::NoteVerifier;
use auditlog_store::{Account, AccountId, Store, StoreError};
use std::sync::Arc;

/// Events read and checked per page: large enough to keep every core busy
/// between reads, small enough that two pages in flight stay a few MB.
const PAGE: usize = 8_192;

/// The rebuilt tree and what is noted while it grows; moved to the checking
/// thread and back with each page.
struct Rebuild {
    tree: TreeFrontier,
    roots: RootsAtSizes,
}

/// What one account's check found.
pub(super) enum Outcome {
    Intact { events: u64, checkpoints: usize },
    Bad(String),
}

pub(super) async fn verify_account(
    store: &dyn Store,
    account: &Account,
    verifiers: &[NoteVerifier],
    progress: &Progress,
) -> Result<Outcome, StoreError> {
    let total = store.last_seq(account.id).await?;
    let checkpoints = store.checkpoints(account.id).await?;
    if let Some(problem) = checkpoints::check_signatures(account, &checkpoints, verifiers) {
        return Ok(Outcome::Bad(problem));
    }
    let coverage = Arc::new(removal_coverage(store, account).await?);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let name: Arc<str> = account.name.as_str().into();
    let mut rebuild = Rebuild {
        tree: TreeFrontier::default(),
        roots: RootsAtSizes::for_checkpoints(&checkpoints),
    };
    rebuild.roots.note(&rebuild.tree);

    let mut page = store.scan_events(account.id, 0, PAGE).await?;
    while let Some(last) = page.last() {
        let after = last.columns.seq;
        let first_leaf = rebuild.tree.leaf_count();
        let last_leaf = first_leaf + page.len() as i64;
        let (start, end) = (
            merkle::stored_hash_index(0, first_leaf),
            merkle::stored_hash_count(last_leaf),
        );
        let name = name.clone();
        let coverage = coverage.clone();
        let checking = tokio::task::spawn_blocking(move || {
            let first_seq = first_leaf as u64 + 1;
            let result = check_page(&name, first_seq, &page, threads, &coverage).map(|hashes| {
                let mut rebuilt = Vec::with_capacity((end - start) as usize);
                for hash in hashes {
                    rebuild.tree.append(hash, &mut rebuilt);
                    rebuild.roots.note(&rebuild.tree);
                }
                rebuilt
            });
            (rebuild, result)
        });
        let (next, stored, checked) = tokio::join!(
            store.scan_events(account.id, after, PAGE),
            store.read_hash_range(account.id, start, end),
            checking,
        );
        let (returned, result) =
            checked.map_err(|e| StoreError::internal_caused_by("a verification task failed", e))?;
        rebuild = returned;
        let rebuilt = match result {
            Ok(rebuilt) => rebuilt,
            Err(finding) => return Ok(Outcome::Bad(finding.to_string())),
        };
        let stored = match stored {
            Ok(stored) => Some(stored),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        if let Some(problem) =
            compare_tree_hashes(store, account.id, stored, &rebuilt, first_leaf, last_leaf).await?
        {
            return Ok(Outcome::Bad(problem));
        }
        progress.show(&account.name, last_leaf as u64, total);
        page = next?;
    }

    let size = rebuild.tree.leaf_count() as u64;
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
    if let Some(problem) =
        checkpoints::check_roots(store, account.id, &checkpoints, &rebuild.roots, size).await?
    {
        return Ok(Outcome::Bad(problem));
    }
    Ok(Outcome::Intact {
        events: size,
        checkpoints: checkpoints.len(),
    })
}

/// The seqs whose bodies may be missing: what the account's removal
/// records (`Auditlog Retention`, `Auditlog Erasure`) cover, read from
/// their leaves. The store's list of records only says where to look: a
/// record it names that is not one covers nothing, and each record's leaf
/// is checked against the tree like every other when the walk reaches it.
async fn removal_coverage(store: &dyn Store, account: &Account) -> Result<Coverage, StoreError> {
    let mut coverage = Coverage::default();
    for record_seq in store.coverage_records(account.id).await? {
        let scanned = store
            .scan_events(account.id, record_seq.saturating_sub(1), 1)
            .await?;
        if let Some(record) = scanned
            .first()
            .filter(|e| e.columns.seq == record_seq && !e.body_removed)
        {
            coverage.add_record(&record.leaf_bytes);
        }
    }
    Ok(coverage)
}

/// Compares the tree hashes rebuilt for leaves `first_leaf..last_leaf`
/// (`rebuilt`, from the first leaf's hash on) with the stored ones, naming
/// the event whose append wrote the first that differs. `stored` is `None`
/// when some were missing; then each leaf's own are read to name the first.
async fn compare_tree_hashes(
    store: &dyn Store,
    account: AccountId,
    stored: Option<Vec<Hash>>,
    rebuilt: &[Hash],
    first_leaf: i64,
    last_leaf: i64,
) -> Result<Option<String>, StoreError> {
    let start = merkle::stored_hash_index(0, first_leaf);
    for leaf_index in first_leaf..last_leaf {
        let from = (merkle::stored_hash_index(0, leaf_index) - start) as usize;
        let to = (merkle::stored_hash_count(leaf_index + 1) - start) as usize;
        let own = &rebuilt[from..to];
        let same = match &stored {
            Some(stored) => &stored[from..to] == own,
            None => match store
                .read_hash_range(account, start + from as i64, start + to as i64)
                .await
            {
                Ok(hashes) => hashes == own,
                Err(StoreError::NotFound(_)) => {
                    return Ok(Some(format!(
                        "event seq {}: its Merkle tree hashes are missing (the event was inserted outside the log)",
                        leaf_index + 1
                    )))
                }
                Err(e) => return Err(e),
            },
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
