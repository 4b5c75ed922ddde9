//! Removing event bodies under a covering record (pruning, erasure): the
//! only way anything of a stored event leaves a store.
//!
//! A body is the event's leaf bytes, its indexed columns and its personal
//! values. Removing it keeps the event's leaf hash (the tree's hashes are
//! never touched), its seq and its id: each removed event leaves a
//! **tombstone** (`removed_events`: its key, the hash and text of its id,
//! the record that covers it), so that a resent id stays idempotent and
//! `GET /events/{id}` can answer 410.
//!
//! Every removal names a covering record: an `Auditlog Retention` or
//! `Auditlog Erasure` event with a higher seq whose `details.covers` lists
//! the seq (`auditlog_core::coverage`). The store keeps a copy of those
//! ranges (`removal_coverage`, added by [`Removals::add_coverage`] once the
//! record is stored), and the database itself refuses a removal that no
//! stored record covers: a trigger on SQLite, on PostgreSQL a trigger and a
//! `SECURITY DEFINER` function, the service role having no DELETE grant.
//! `auditlog verify` trusts neither copy: it reads coverage from the
//! records' leaves, which the tree commits to.

use crate::{AccountId, Result};
use async_trait::async_trait;
use auditlog_core::coverage::SeqRange;

/// One event whose body is to be removed: its seq and its id (kept in the
/// tombstone; the database checks it against the id hash of the row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedBody {
    pub seq: u64,
    pub event_id: String,
}

/// Why bodies are removed: the record that covers them is a pruning
/// (`Auditlog Retention`) or an erasure (`Auditlog Erasure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalKind {
    Pruned,
    Erased,
}

impl RemovalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalKind::Pruned => "pruned",
            RemovalKind::Erased => "erased",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pruned" => Some(RemovalKind::Pruned),
            "erased" => Some(RemovalKind::Erased),
            _ => None,
        }
    }
}

/// An event whose body was removed, found by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    pub seq: u64,
    /// The record (`Auditlog Retention` or `Auditlog Erasure`) whose
    /// removal it was.
    pub record_seq: u64,
    /// Pruned or erased: the API answers 410 with this code.
    pub kind: RemovalKind,
    pub leaf_hash: [u8; 32],
}

#[async_trait]
pub trait Removals: Send + Sync {
    /// Stores the database's copy of what the record at `record_seq`
    /// covers (the ranges of its `details.covers`). The record must be
    /// stored and be an `Auditlog Retention` or `Auditlog Erasure` event
    /// with a higher seq than every range (else `Internal`). Adding the
    /// same ranges again is harmless (a resumed job does).
    async fn add_coverage(
        &self,
        account: AccountId,
        record_seq: u64,
        ranges: &[SeqRange],
    ) -> Result<()>;

    /// The seqs of the account's records that `add_coverage` was given,
    /// ascending: where `verify` looks for coverage (it reads the records'
    /// leaves themselves).
    async fn coverage_records(&self, account: AccountId) -> Result<Vec<u64>>;

    /// Removes the bodies of `events` (leaf, columns, personal values,
    /// full-text entries, rollup counts) in one transaction, leaving a
    /// tombstone of each, under the record at `record_seq`, which must
    /// cover each seq (else the database refuses and nothing is removed).
    /// Events already removed are skipped. Returns how many were removed.
    async fn remove_bodies(
        &self,
        account: AccountId,
        record_seq: u64,
        kind: RemovalKind,
        events: &[RemovedBody],
    ) -> Result<u64>;

    /// The tombstone of the removed event with this id, if there is one.
    async fn tombstone(&self, account: AccountId, id: &str) -> Result<Option<Tombstone>>;

    /// How many events of the account have lost their bodies.
    async fn removed_count(&self, account: AccountId) -> Result<u64>;

    /// How many events of `range` lost their bodies under the record at
    /// `record_seq`: what a resumed job counts as already done, since a
    /// kill between a batch's removal and its progress leaves the progress
    /// behind (and the batch, run again, skips what was removed).
    async fn removed_under(
        &self,
        account: AccountId,
        record_seq: u64,
        range: SeqRange,
    ) -> Result<u64>;

    /// Gives the space that removed bodies left behind back, without
    /// stopping appends for long (the pruner calls it after each pruning):
    /// on SQLite an incremental vacuum in small steps (the file shrinks)
    /// and a WAL checkpoint; on PostgreSQL a plain `VACUUM` of the body
    /// tables (their space is reused by new rows; the files keep their
    /// size). Returns the store's size before and after, where known.
    async fn reclaim_space(&self) -> Result<SpaceReport> {
        Ok(SpaceReport::default())
    }

    /// Rewrites the store to return every free page at once (`auditlog
    /// retention vacuum`): on SQLite `VACUUM` with `auto_vacuum =
    /// INCREMENTAL` (how a store created before incremental vacuum is
    /// converted: it takes a while, needs free disk space of the file's
    /// size and holds appends back while it runs); on PostgreSQL `VACUUM
    /// (FULL)` of the body tables (an exclusive lock; the table owner only).
    async fn compact(&self) -> Result<SpaceReport> {
        Ok(SpaceReport::default())
    }
}

/// A store's size on disk around [`Removals::reclaim_space`] or
/// [`Removals::compact`] (`None`: the backend cannot tell).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpaceReport {
    pub bytes_before: Option<u64>,
    pub bytes_after: Option<u64>,
    /// SQLite: whether the file frees pages incrementally (`auto_vacuum =
    /// INCREMENTAL`); `false` for a store created before that, which
    /// `compact` converts. Always `true` on PostgreSQL.
    pub incremental: bool,
}
