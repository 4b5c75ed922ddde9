//! The tamper-evidence role of a store: the stored hashes of each account's
//! Merkle tree (written by the backend's append path, in the same
//! transaction as the events), the retained signed checkpoints, and a raw
//! scan that `auditlog verify` uses to compare leaf bytes with the columns
//! queries read. The tree arithmetic itself lives in `auditlog_core::merkle`;
//! the helpers at the bottom combine it with any backend.

use crate::{AccountId, Result, StoreError};
use async_trait::async_trait;
use auditlog_core::merkle::{self, Hash, MerkleError, PrefetchedHashes};
use auditlog_core::{leaf, StoredEvent, Timestamp};

/// A signed checkpoint as retained by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: Hash,
    /// The whole signed note, exactly as signed.
    pub note: String,
    pub created_at: Timestamp,
}

/// A 64-bit hash of a key's text (an event id, a target id): what the
/// embedded store indexes instead of the text, a non-unique key that every
/// reader confirms against the value in the leaf before it answers. The
/// first 8 bytes of SHA-256 (as the leaf hash computes it), so that no
/// one can choose keys that collide with someone else's more often than
/// chance.
pub fn key_hash64(text: &str) -> i64 {
    let hash = leaf::leaf_hash(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    i64::from_be_bytes(first)
}

/// A key column as a backend keeps it: its text, or only its
/// [`key_hash64`] (the embedded store since migration 0010).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyColumn {
    Text(String),
    Hash(i64),
}

impl KeyColumn {
    /// Whether the column holds `value`: the same text, or its hash.
    pub fn holds(&self, value: &str) -> bool {
        match self {
            KeyColumn::Text(text) => text == value,
            KeyColumn::Hash(hash) => *hash == key_hash64(value),
        }
    }

    /// Whether two columns hold the same key (a text and a hash agree
    /// when the hash is the text's).
    pub fn same_as(&self, other: &KeyColumn) -> bool {
        match (self, other) {
            (KeyColumn::Text(a), KeyColumn::Text(b)) => a == b,
            (KeyColumn::Hash(a), KeyColumn::Hash(b)) => a == b,
            (KeyColumn::Text(text), hash) | (hash, KeyColumn::Text(text)) => hash.holds(text),
        }
    }

    /// The text, if the column keeps it.
    pub fn text(&self) -> Option<&str> {
        match self {
            KeyColumn::Text(text) => Some(text),
            KeyColumn::Hash(_) => None,
        }
    }
}

/// The copies of leaf fields that a backend keeps in its own columns so that
/// queries can filter on them. `verify` checks that they agree with the leaf.
/// A backend that keeps a value in a dictionary gives it here as the text
/// its dictionary holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedColumns {
    pub seq: u64,
    pub event_id: KeyColumn,
    pub time: i64,
    pub event_type: String,
    pub action: String,
    pub actor_id: String,
    pub project: Option<String>,
    pub app: Option<String>,
    pub version: Option<String>,
    pub target_id: Option<KeyColumn>,
    pub received_at: i64,
}

impl IndexedColumns {
    /// What the columns must hold for this stored event.
    pub fn of(event: &StoredEvent) -> Self {
        let e = event.event();
        Self {
            seq: event.seq(),
            event_id: KeyColumn::Text(e.id().to_string()),
            time: e.time().micros(),
            event_type: e.event_type().to_string(),
            action: e.action().to_string(),
            actor_id: e.actor().id.clone(),
            project: e.project().map(str::to_string),
            app: e.app().map(str::to_string),
            version: e.version().map(str::to_string),
            target_id: e.target().and_then(|t| t.id.clone()).map(KeyColumn::Text),
            received_at: event.received_at().micros(),
        }
    }

    /// The name of the first column that differs from `expected`, if any.
    pub fn first_difference(&self, expected: &IndexedColumns) -> Option<&'static str> {
        let target_same = match (&self.target_id, &expected.target_id) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same_as(b),
            _ => false,
        };
        let checks: [(&'static str, bool); 11] = [
            ("seq", self.seq == expected.seq),
            ("event_id", self.event_id.same_as(&expected.event_id)),
            ("time", self.time == expected.time),
            ("event_type", self.event_type == expected.event_type),
            ("action", self.action == expected.action),
            ("actor_id", self.actor_id == expected.actor_id),
            ("project", self.project == expected.project),
            ("app", self.app == expected.app),
            ("version", self.version == expected.version),
            ("target_id", target_same),
            ("received_at", self.received_at == expected.received_at),
        ];
        checks.iter().find(|(_, same)| !same).map(|(name, _)| *name)
    }
}

/// One stored event exactly as the backend holds it, for verification.
#[derive(Debug, Clone)]
pub struct ScannedEvent {
    pub columns: IndexedColumns,
    pub leaf_bytes: Vec<u8>,
    /// The leaf hash the backend stored for the leaf: beside it
    /// (PostgreSQL), or only in the tree's hashes (the embedded store since
    /// migration 0010: the tree hash at the leaf's index); `None` when there
    /// is none (a row inserted outside the tree).
    pub stored_leaf_hash: Option<Vec<u8>>,
    /// The personal values stored beside a version 2 leaf.
    pub personal: Option<Vec<u8>>,
    /// A column whose stored id names no value of the account's (an edited
    /// store: the embedded store keeps some columns as ids of per-account
    /// values); verify reports it as a column that differs from the leaf.
    pub dangling: Option<&'static str>,
    /// The body was removed (a tombstone, `removal`): `leaf_bytes` and
    /// `personal` are empty, `columns` hold only the seq and the event id;
    /// `stored_leaf_hash` is still the tree's.
    pub body_removed: bool,
}

impl ScannedEvent {
    /// A tombstone as a scan reports it.
    pub fn removed(seq: u64, event_id: KeyColumn, stored_leaf_hash: Option<Vec<u8>>) -> Self {
        ScannedEvent {
            columns: IndexedColumns {
                seq,
                event_id,
                time: 0,
                event_type: String::new(),
                action: String::new(),
                actor_id: String::new(),
                project: None,
                app: None,
                version: None,
                target_id: None,
                received_at: 0,
            },
            leaf_bytes: Vec::new(),
            stored_leaf_hash,
            personal: None,
            dangling: None,
            body_removed: true,
        }
    }
}

/// The first `limit` of two seq-ordered scans (a backend's rows and its
/// tombstones), in seq order (each list holds
/// at most `limit`, so the first `limit` of both are among them).
pub fn merge_scans(
    rows: Vec<ScannedEvent>,
    tombstones: Vec<ScannedEvent>,
    limit: usize,
) -> Vec<ScannedEvent> {
    if tombstones.is_empty() {
        return rows;
    }
    let mut merged = Vec::with_capacity(limit.min(rows.len() + tombstones.len()));
    let (mut rows, mut tombstones) = (
        rows.into_iter().peekable(),
        tombstones.into_iter().peekable(),
    );
    while merged.len() < limit {
        let take_row = match (rows.peek(), tombstones.peek()) {
            (Some(row), Some(tomb)) => row.columns.seq <= tomb.columns.seq,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_row {
            rows.next()
        } else {
            tombstones.next()
        };
        merged.extend(next);
    }
    merged
}

#[async_trait]
pub trait TreeStore: Send + Sync {
    /// The stored tree hashes at `indexes` (see `merkle::stored_hash_index`),
    /// in order. `NotFound` if any is missing.
    async fn read_hashes(&self, account: AccountId, indexes: &[i64]) -> Result<Vec<Hash>>;

    /// The stored tree hashes at indexes `start..end`, in order; `NotFound`
    /// if any is missing. What `verify` reads for each page of events; a
    /// backend overrides it with one range read where that is cheaper than
    /// looking up each index.
    async fn read_hash_range(&self, account: AccountId, start: i64, end: i64) -> Result<Vec<Hash>> {
        let indexes: Vec<i64> = (start..end).collect();
        self.read_hashes(account, &indexes).await
    }

    /// How many tree hashes the account has stored (for verification).
    async fn stored_hash_count(&self, account: AccountId) -> Result<i64>;

    /// Retains a signed checkpoint and, in the same transaction, appends it
    /// to the root log (`root_log`). `AlreadyExists` if one of that size is
    /// kept (and nothing is appended).
    async fn add_checkpoint(&self, account: AccountId, checkpoint: &StoredCheckpoint)
        -> Result<()>;

    /// The checkpoint with the largest size.
    async fn latest_checkpoint(&self, account: AccountId) -> Result<Option<StoredCheckpoint>>;

    /// The checkpoint of exactly `size`.
    async fn checkpoint_at(
        &self,
        account: AccountId,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>>;

    /// Every retained checkpoint, smallest size first.
    async fn checkpoints(&self, account: AccountId) -> Result<Vec<StoredCheckpoint>>;

    /// How many event rows the account has, counted without regard to seq,
    /// so that `verify` notices rows outside the 1..=n sequence (duplicates);
    /// tombstones of removed bodies count as rows.
    async fn event_row_count(&self, account: AccountId) -> Result<u64>;

    /// Up to `limit` events with `seq > after_seq`, by seq, raw as stored;
    /// an event whose body was removed comes as its tombstone
    /// ([`ScannedEvent::removed`]).
    async fn scan_events(
        &self,
        account: AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<ScannedEvent>>;
}

fn merkle_error(e: MerkleError) -> StoreError {
    match e {
        MerkleError::InvalidInput(m) => StoreError::NotFound(m),
        other => StoreError::internal_caused_by("the stored tree is inconsistent", other),
    }
}

async fn prefetch(
    store: &dyn TreeStore,
    account: AccountId,
    indexes: Vec<i64>,
) -> Result<PrefetchedHashes> {
    let hashes = store.read_hashes(account, &indexes).await?;
    Ok(PrefetchedHashes(indexes.into_iter().zip(hashes).collect()))
}

/// The root of the account's tree at `size`, from O(log size) stored hashes.
pub async fn tree_root(store: &dyn TreeStore, account: AccountId, size: u64) -> Result<Hash> {
    let size = size as i64;
    let hashes = prefetch(store, account, merkle::tree_hash_indexes(size)).await?;
    merkle::tree_hash(size, &hashes).map_err(merkle_error)
}

/// The inclusion proof of leaf `index` in the tree of `size`.
pub async fn inclusion_proof(
    store: &dyn TreeStore,
    account: AccountId,
    size: u64,
    index: u64,
) -> Result<Vec<Hash>> {
    let (size, index) = (size as i64, index as i64);
    let indexes = merkle::record_proof_indexes(size, index).map_err(merkle_error)?;
    let hashes = prefetch(store, account, indexes).await?;
    merkle::prove_record(size, index, &hashes).map_err(merkle_error)
}

/// The consistency proof from the tree of `from` leaves to the tree of `to`.
pub async fn consistency_proof(
    store: &dyn TreeStore,
    account: AccountId,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>> {
    let (from, to) = (from as i64, to as i64);
    let indexes = merkle::tree_proof_indexes(to, from).map_err(merkle_error)?;
    let hashes = prefetch(store, account, indexes).await?;
    merkle::prove_tree(to, from, &hashes).map_err(merkle_error)
}
