//! `auditlog copy --from <store> --to <store>`: the path for a user who
//! outgrows one machine. Copies every account (its taxonomy, custom event
//! types included, and whether it requires two-factor sign-in), API key
//! (by hash, with its public id, expiry and revocation), console user (with
//! its password hash, role and disabled state), event (exact leaf bytes,
//! hashes and seqs; the target builds its tree from them) and signed
//! checkpoint into the target, then reads both stores back and checks the
//! copy event by event, the Merkle roots, and every checkpoint against the
//! target's tree. Already-copied records are skipped, so an interrupted
//! copy is resumed by running it again; a key revoked or a user disabled
//! in the source since is revoked or disabled by the next run, and nothing
//! revoked or disabled in either store is ever brought back. Sessions,
//! one-time sign-in links and two-factor enrolments are not copied (users
//! sign in again, and set up two-factor sign-in again). Pruned and erased
//! events travel as the source keeps them (tombstones, erased forms, the
//! records' coverage), so `auditlog verify` passes on the copy as on the
//! source.

use crate::backend::{connect, open_data_dir};
use crate::error::CliResult;
use anyhow::{anyhow, bail};
use auditlog_core::{coverage, leaf};
use auditlog_store::transfer::{TransferSource, TransferTarget};
use auditlog_store::{Account, StoreError};
use auditlog_store_postgres::is_postgres_url;
use std::io::{IsTerminal, Write};
use std::path::Path;

/// Events read and written per transaction.
const CHUNK: usize = 5_000;

pub async fn run(from: &str, to: &str) -> CliResult {
    let source = open_source(from).await?;
    let target = match open_target(to).await {
        Ok(target) => target,
        Err(e) => {
            source.shutdown().await;
            return Err(e);
        }
    };
    let result = copy_all(source.as_ref(), target.as_ref()).await;
    source.shutdown().await;
    target.shutdown().await;
    result
}

async fn open_source(location: &str) -> CliResult<Box<dyn TransferSource>> {
    if is_postgres_url(location) {
        return Ok(Box::new(connect(location).await?));
    }
    let dir = Path::new(location);
    // Opening would create an empty store; a missing source is a typo.
    if !dir.join(auditlog_store_sqlite::DB_FILE).is_file() {
        bail!(
            "--from {location:?}: no embedded store there (expected {})",
            dir.join(auditlog_store_sqlite::DB_FILE).display()
        );
    }
    Ok(Box::new(open_data_dir(dir)?))
}

async fn open_target(location: &str) -> CliResult<Box<dyn TransferTarget>> {
    if is_postgres_url(location) {
        return Ok(Box::new(connect(location).await?));
    }
    Err(anyhow!(
        "--to {location:?}: the target must be a postgres:// URL; copying into the embedded \
         store is not supported yet"
    ))
}

async fn copy_all(source: &dyn TransferSource, target: &dyn TransferTarget) -> CliResult {
    let accounts = source.accounts().await?;
    let mut progress = Progress::new();
    for account in &accounts {
        let copied = copy_account(source, target, account, &mut progress).await?;
        progress.finish(&account.name, copied);
    }
    let mut checked = 0;
    for account in &accounts {
        checked += verify_account(source, target, account).await?;
    }
    println!(
        "copied {} accounts; verified {checked} events: same seqs, leaf bytes and hashes, Merkle roots and signed checkpoints",
        accounts.len()
    );
    Ok(())
}

/// Copies one account; returns how many events it wrote now.
async fn copy_account(
    source: &dyn TransferSource,
    target: &dyn TransferTarget,
    account: &Account,
    progress: &mut Progress,
) -> CliResult<u64> {
    let copy = match target.account_by_name(&account.name).await? {
        Some(existing) => existing,
        None => target.create_account(&account.name).await?,
    };
    let total = source.last_seq(account.id).await?;
    let mut done = target.last_seq(copy.id).await?;
    if done > total {
        bail!(
            "account {:?} already has {done} events in the target, more than the source's {total}",
            account.name
        );
    }
    // The taxonomy (custom event types and actions, retired ones included)
    // follows the source while the target's events are a copy of the
    // source's first ones; a target account with events of its own is
    // another log, which copy does not merge into.
    if copy.taxonomy != account.taxonomy {
        if !same_prefix(source, target, account, &copy, done).await? {
            bail!(
                "account {:?} has a different taxonomy and other events in the target; copy refuses to merge them",
                account.name
            );
        }
        target.import_taxonomy(copy.id, &account.taxonomy).await?;
    }
    // A requirement of two-factor sign-in travels; a copy never lifts one.
    if source.two_factor_required(account.id).await? && !target.two_factor_required(copy.id).await?
    {
        target.set_two_factor_required(copy.id, true).await?;
    }
    // Keys with their public ids, expiry and revocation; users with their
    // role and disabled state (a copy revokes and disables, never undoes).
    for key in source.api_keys(account.id).await? {
        target.import_api_key(copy.id, &key).await?;
    }
    let mut enrolled = Vec::new();
    for user in source.users(account.id).await? {
        target.import_user(copy.id, &user).await?;
        let has_two_factor = source
            .two_factor(user.id)
            .await?
            .is_some_and(|r| r.confirmed_at.is_some());
        if has_two_factor && user.disabled_at.is_none() {
            enrolled.push(user.email);
        }
    }
    if !enrolled.is_empty() {
        eprintln!(
            "{}: two-factor enrolments are not copied; these users sign in with their password \
             and set up two-factor sign-in again{}: {}",
            account.name,
            if source.two_factor_required(account.id).await? {
                " (the account requires it, so they are led to it)"
            } else {
                ""
            },
            enrolled.join(", ")
        );
    }
    let mut copied = 0;
    while done < total {
        // The next stored events and tombstones: together, every seq up to
        // the lower of the two lists' ends (a full list may go on).
        let events = source.events_after(account.id, done, CHUNK).await?;
        let removed = source.removed_after(account.id, done, CHUNK).await?;
        let mut upto = total;
        for last in [
            events
                .last()
                .map(|e| e.seq)
                .filter(|_| events.len() == CHUNK),
            removed
                .last()
                .map(|r| r.seq)
                .filter(|_| removed.len() == CHUNK),
        ]
        .into_iter()
        .flatten()
        {
            upto = upto.min(last);
        }
        let events: Vec<_> = events.into_iter().filter(|e| e.seq <= upto).collect();
        let removed: Vec<_> = removed.into_iter().filter(|r| r.seq <= upto).collect();
        let last = events
            .last()
            .map(|e| e.seq)
            .max(removed.last().map(|r| r.seq));
        let Some(last) = last else {
            bail!(
                "account {:?}: the source has neither an event nor a tombstone after seq {done} \
                 (its last seq is {total})",
                account.name
            );
        };
        copied += events.len() as u64;
        target.import_log(&copy, events, removed).await?;
        done = last;
        progress.show(&account.name, done, total);
    }
    copy_removals(source, target, account, &copy).await?;
    // Signed checkpoints, exactly as signed: they cover the copied trees.
    for checkpoint in source.checkpoints(account.id).await? {
        match target.add_checkpoint(copy.id, &checkpoint).await {
            Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(copied)
}

/// Whether the target's `done` events are the source's first ones (the
/// event at seq `done` has the same leaf hash in both; every imported event
/// was checked against its predecessors' seqs when it was imported).
async fn same_prefix(
    source: &dyn TransferSource,
    target: &dyn TransferTarget,
    account: &Account,
    copy: &Account,
    done: u64,
) -> CliResult<bool> {
    if done == 0 {
        return Ok(true);
    }
    let theirs = source.events_after(account.id, done - 1, 1).await?;
    let ours = target.events_after(copy.id, done - 1, 1).await?;
    Ok(matches!((theirs.first(), ours.first()), (Some(a), Some(b)) if a.leaf_hash == b.leaf_hash))
}

/// What pruning and erasure left, once the log is copied: each removal
/// record's coverage (read from the record's own leaf, as `verify` reads
/// it), then the tombstones and the erased forms, which the target's
/// database accepts only under that coverage. Each is skipped where the
/// target has it already.
async fn copy_removals(
    source: &dyn TransferSource,
    target: &dyn TransferTarget,
    account: &Account,
    copy: &Account,
) -> CliResult {
    for record_seq in source.coverage_records(account.id).await? {
        let record = source
            .events_after(account.id, record_seq.saturating_sub(1), 1)
            .await?
            .into_iter()
            .find(|e| e.seq == record_seq);
        let ranges = record
            .as_ref()
            .and_then(|r| coverage::record_coverage(&r.leaf_bytes))
            .map(|(_, ranges)| ranges)
            .ok_or_else(|| {
                anyhow!(
                    "account {:?}: seq {record_seq} is not a readable removal record",
                    account.name
                )
            })?;
        target.add_coverage(copy.id, record_seq, &ranges).await?;
    }
    let mut after = 0;
    loop {
        let removed = source.removed_after(account.id, after, CHUNK).await?;
        let Some(last) = removed.last().map(|r| r.seq) else {
            break;
        };
        target.import_removals(copy, &removed, &[]).await?;
        after = last;
    }
    let mut after = 0;
    loop {
        let erased = source.erased_after(account.id, after, CHUNK).await?;
        let Some(last) = erased.last().map(|(seq, _)| *seq) else {
            break;
        };
        target.import_removals(copy, &[], &erased).await?;
        after = last;
    }
    Ok(())
}

/// Reads the account from both stores in seq order and compares them.
async fn verify_account(
    source: &dyn TransferSource,
    target: &dyn TransferTarget,
    account: &Account,
) -> CliResult<u64> {
    let mismatch =
        |why: String| anyhow!("verification failed for account {:?}: {why}", account.name);
    let copy = target
        .account_by_name(&account.name)
        .await?
        .ok_or_else(|| mismatch("missing from the target".into()))?;
    if copy.taxonomy != account.taxonomy {
        return Err(mismatch("the taxonomy differs".into()));
    }
    if source.two_factor_required(account.id).await? && !target.two_factor_required(copy.id).await?
    {
        return Err(mismatch(
            "two-factor sign-in is not required in the target".into(),
        ));
    }
    // The same keys by hash, with the same public id, scopes and expiry,
    // revoked where the source's are; users by email, with the same
    // password hash and role, disabled where the source's are.
    let keys = target.api_keys(copy.id).await?;
    for key in source.api_keys(account.id).await? {
        let Some(got) = keys.iter().find(|k| k.key_hash == key.key_hash) else {
            return Err(mismatch(format!("API key {} is missing", key.public_id)));
        };
        if got.public_id != key.public_id
            || got.scopes != key.scopes
            || got.expires_at != key.expires_at
            || (key.revoked_at.is_some() && got.revoked_at.is_none())
        {
            return Err(mismatch(format!("API key {} differs", key.public_id)));
        }
    }
    let users = target.users(copy.id).await?;
    for user in source.users(account.id).await? {
        match users.iter().find(|u| u.email == user.email) {
            Some(u)
                if u.password_hash == user.password_hash
                    && u.role == user.role
                    && (user.disabled_at.is_none() || u.disabled_at.is_some()) => {}
            _ => return Err(mismatch(format!("user {} differs", user.email))),
        }
    }
    let (mut after, mut checked) = (0, 0);
    loop {
        let expected = source.events_after(account.id, after, CHUNK).await?;
        let got = target.events_after(copy.id, after, CHUNK).await?;
        if expected != got {
            return Err(mismatch(format!("events after seq {after} differ")));
        }
        for event in &got {
            if leaf::leaf_hash(&event.leaf_bytes) != event.leaf_hash {
                return Err(mismatch(format!("seq {} has a wrong hash", event.seq)));
            }
        }
        match got.last() {
            Some(last) => {
                after = last.seq;
                checked += got.len() as u64;
            }
            None => break,
        }
    }
    let mut after = 0;
    loop {
        let expected = source.removed_after(account.id, after, CHUNK).await?;
        let got = target.removed_after(copy.id, after, CHUNK).await?;
        if expected != got {
            return Err(mismatch(format!(
                "the removed events after seq {after} differ"
            )));
        }
        match got.last() {
            Some(last) => after = last.seq,
            None => break,
        }
    }
    if source.coverage_records(account.id).await? != target.coverage_records(copy.id).await? {
        return Err(mismatch("the removal records' coverage differs".into()));
    }
    let size = source.last_seq(account.id).await?;
    if target.last_seq(copy.id).await? != size {
        return Err(mismatch("the number of events differs".into()));
    }
    // The target's own stored tree gives the source's root, and holds the
    // same signed checkpoints, each matching the target's tree at its size.
    if size > 0 {
        let root = auditlog_store::tree::tree_root(target, copy.id, size).await?;
        if root != auditlog_store::tree::tree_root(source, account.id, size).await? {
            return Err(mismatch("the Merkle roots differ".into()));
        }
    }
    // Every checkpoint the source signed is in the target. A server already
    // running on the target may have signed newer ones there since an
    // earlier run of the copy: those are its own, and not a difference.
    let checkpoints = source.checkpoints(account.id).await?;
    let held = target.checkpoints(copy.id).await?;
    if let Some(missing) = checkpoints.iter().find(|c| !held.contains(c)) {
        return Err(mismatch(format!(
            "the signed checkpoint of size {} is missing from the target",
            missing.size
        )));
    }
    for checkpoint in &checkpoints {
        let root = auditlog_store::tree::tree_root(target, copy.id, checkpoint.size).await?;
        if root != checkpoint.root {
            return Err(mismatch(format!(
                "the checkpoint of size {} does not match the copied tree",
                checkpoint.size
            )));
        }
    }
    Ok(checked)
}

/// Progress on standard error: one rewritten line on a terminal, one line
/// per account otherwise (logs stay readable).
struct Progress {
    terminal: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, account: &str, done: u64, total: u64) {
        if self.terminal {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r{account}: {done}/{total} events");
            let _ = err.flush();
        }
    }

    fn finish(&mut self, account: &str, copied: u64) {
        if self.terminal {
            eprintln!();
        }
        eprintln!("{account}: copied {copied} new events");
    }
}
