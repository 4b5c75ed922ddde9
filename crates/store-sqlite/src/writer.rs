//! The one writer: a dedicated thread that owns the only connection that
//! appends events. It takes whole groups from the shared group-commit queue
//! (`auditlog_store::group_commit`), writes each in one transaction, and
//! answers its requests only after the commit is durable.
//!
//! A transaction that fails (a full disk, an I/O error, in any statement or
//! at COMMIT) is rolled back as a whole: its requests are answered 503 and
//! nothing of them, neither events nor tree hashes, is stored; seqs are
//! taken from the table inside each transaction, so none is lost. The
//! thread lives on, and the next group is tried afresh, so that ingest
//! recovers by itself once space returns.

use crate::checkpointer::{self, Checkpoints, WalPolicy};
use crate::declared_paths;
use crate::event_log::{self, LogIds, KIND_EVENT, KIND_PLACE};
use crate::leaf_store::LeafStore;
use crate::personal_store::PersonalStore;
use crate::query;
use crate::rollups;
use crate::sql::{open_writer_connection, sql_error};
use crate::tombstones;
use crate::word_blocks;
use crate::word_index;
use crate::write_gate::WriteGate;
use auditlog_core::leaf_v2::DetailsPath;
use auditlog_core::merkle::{self, Hash, HashReader, MerkleError};
use auditlog_core::Timestamp;
use auditlog_store::append_plan::{plan_request, KnownEvent, Planned};
use auditlog_store::group_commit::{answer, AppendRequest, GroupReceiver, Outcome};
use auditlog_store::sealing::{seal_request, SealedEvent};
use auditlog_store::search_plan::index_words;
use auditlog_store::{key_hash64, Receipt, Result, StoreError, WriteHealth};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The writer thread's state: its connection (reopened after a failure
/// that left it unusable) and where it reports how the last group went.
pub struct Writer {
    conn: Option<Connection>,
    path: PathBuf,
    health: Arc<Mutex<WriteHealth>>,
    leaves: LeafStore,
    personal_values: PersonalStore,
    ids: LogIds,
    /// `erasure_generation` when the caches were last valid.
    erasure_generation: Option<i64>,
    gate: Arc<WriteGate>,
    /// WAL checkpoints, run beside the writer rather than in its commits.
    checkpoints: Checkpoints,
}

impl Writer {
    pub fn new(
        conn: Connection,
        path: PathBuf,
        health: Arc<Mutex<WriteHealth>>,
        gate: Arc<WriteGate>,
    ) -> Self {
        tune(&conn);
        let checkpoints = Checkpoints::start(&path, WalPolicy::default());
        Self {
            conn: Some(conn),
            checkpoints,
            path,
            health,
            leaves: LeafStore::default(),
            personal_values: PersonalStore::default(),
            ids: LogIds::default(),
            erasure_generation: None,
            gate,
        }
    }

    /// Runs until every sender is dropped, then returns after the last commit.
    pub fn run(mut self, mut requests: GroupReceiver) {
        while let Some(group) = requests.blocking_next_group() {
            let written = self.write(&group);
            WriteHealth::record(&self.health, &written);
            let committed = written.is_ok();
            answer(group, written);
            // After the answers: a checkpoint the writer runs itself (at
            // the WAL's restart threshold) delays the next group, not these.
            if let (true, Some(conn)) = (committed, &self.conn) {
                self.checkpoints.after_commit(conn);
            }
        }
    }

    fn write(&mut self, group: &[AppendRequest]) -> Result<Vec<Outcome>> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                let conn = open_writer_connection(&self.path)?;
                tune(&conn);
                conn
            }
        };
        let conn = self.conn.insert(conn);
        let mut state = GroupState {
            leaves: &mut self.leaves,
            personal_values: &mut self.personal_values,
            ids: &mut self.ids,
            erasure_generation: &mut self.erasure_generation,
        };
        // Occasional writers waiting for the lock go first (`write_gate`).
        let turn = self.gate.writer();
        let written = write_group(conn, &mut state, group);
        drop(turn);
        if written.is_err() {
            self.leaves.forget();
            self.personal_values.forget();
            self.ids.forget();
            self.erasure_generation = None;
            self.leave_failed_transaction();
        }
        written
    }

    /// After a failed group: the transaction was rolled back when it was
    /// dropped (or by SQLite itself). If the connection is somehow still
    /// inside it, every later BEGIN would fail; roll back once more, and
    /// failing that, close it (closing rolls back) so the next group opens
    /// a fresh one.
    fn leave_failed_transaction(&mut self) {
        let Some(conn) = &self.conn else { return };
        if conn.is_autocommit() {
            return;
        }
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::warn!(error = %e, "cannot roll back the writer's failed transaction");
        }
        if !conn.is_autocommit() {
            tracing::warn!("the writer's connection is stuck in a transaction; reopening it");
            self.conn = None;
        }
    }
}

/// The writer connection's own settings.
fn tune(conn: &Connection) {
    // Checkpoints run beside the writer (`checkpointer`), not in its commits.
    checkpointer::watch_commits(conn);
}

/// What the writer remembers across groups, lent to one group's transaction.
struct GroupState<'w> {
    leaves: &'w mut LeafStore,
    personal_values: &'w mut PersonalStore,
    ids: &'w mut LogIds,
    erasure_generation: &'w mut Option<i64>,
}

/// Writes every request of the group in one transaction. A request that
/// conflicts gets its own error and writes nothing; the others go on.
fn write_group(
    conn: &mut Connection,
    state: &mut GroupState<'_>,
    group: &[AppendRequest],
) -> Result<Vec<Outcome>> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    // An erasure renames actors and deletes personal objects: the cached
    // ids are dropped when one has run since they were read.
    let generation: i64 = tx
        .prepare_cached("SELECT generation FROM erasure_generation")
        .map_err(sql_error)?
        .query_row([], |r| r.get(0))
        .map_err(sql_error)?;
    if *state.erasure_generation != Some(generation) {
        state.ids.forget();
        state.personal_values.forget();
        *state.erasure_generation = Some(generation);
    }
    let received_at = Timestamp::now();
    let mut next_seq: HashMap<i64, u64> = HashMap::new();
    let mut outcomes = Vec::with_capacity(group.len());
    let mut day_counts = rollups::DayCounts::default();
    let mut blocks = word_blocks::GroupBlocks::default();
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO event_log (key, time, received_at, kind, place, actor, id_hash, \
                 target_hash, leaf_dict, leaf) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(sql_error)?;
        for request in group {
            let account_id = request.account.id;
            let seq = match next_seq.get(&account_id) {
                Some(seq) => *seq,
                None => event_log::last_seq(&tx, account_id)? + 1,
            };
            // First decide, without writing, what each event is: new, an
            // idempotent repeat, or a conflict that fails the whole request.
            let plan = plan_request(&request.events, seq, |id| {
                let decoder = state.leaves.decoder(&tx);
                match query::find_by_id(&tx, account_id, id, &decoder)? {
                    Some(record) => Ok(Some(KnownEvent {
                        seq: record.seq,
                        hash: record.leaf_hash,
                        // An erased event keeps its id but not the values a
                        // resend would be compared with: a repeat, as a
                        // removed body is.
                        removed: record.stored().is_erased(),
                        leaf_bytes: record.leaf_bytes,
                        personal: record.personal,
                    })),
                    // A removed body keeps its id: the resend is a repeat.
                    None => Ok(tombstones::find_tombstone(&tx, account_id, id)?
                        .map(|t| KnownEvent::removed(t.seq, t.leaf_hash))),
                }
            });
            // Then seal every new event, still without writing, so that one
            // too large for a log entry fails only its own request.
            let declared = declared_paths::read(&tx, account_id)?;
            let sealed = plan.and_then(|plan| {
                let sealed = prepare_request(request, &plan, received_at, &declared)?;
                Ok((plan, sealed))
            });
            let (plan, sealed) = match sealed {
                Ok(planned) => planned,
                Err(refused @ (StoreError::Conflict { .. } | StoreError::TooLarge { .. })) => {
                    outcomes.push(Err(refused));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut assigned = seq;
            let mut receipts: Vec<Receipt> = Vec::with_capacity(plan.len());
            for ((event, planned), sealed) in request.events.iter().zip(plan).zip(sealed) {
                let receipt = match (planned, sealed) {
                    (Planned::Existing(receipt), _) => receipt,
                    (Planned::SameAs(earlier), _) => receipts[earlier].clone(),
                    (Planned::New(_), None) => {
                        return Err(StoreError::internal("a new event was not sealed"))
                    }
                    (Planned::New(seq), Some(prepared)) => {
                        let Prepared {
                            sealed:
                                SealedEvent {
                                    leaf_bytes,
                                    hash,
                                    personal,
                                    ..
                                },
                            words,
                        } = prepared;
                        let (dictionary, stored) =
                            state.leaves.encode(&tx, account_id, leaf_bytes)?;
                        let kind = state.ids.value_id(
                            &tx,
                            account_id,
                            KIND_EVENT,
                            &event_log::event_value(event.event_type(), event.action()),
                        )?;
                        let place = match event_log::place_value(
                            event.project(),
                            event.app(),
                            event.version(),
                        ) {
                            Some(value) => {
                                Some(state.ids.value_id(&tx, account_id, KIND_PLACE, &value)?)
                            }
                            None => None,
                        };
                        let actor = state.ids.actor_id(&tx, account_id, event.actor(), true)?;
                        let key = event_log::log_key(account_id, seq)?;
                        insert
                            .execute(params![
                                key,
                                event.time().micros(),
                                received_at.micros(),
                                kind,
                                place,
                                actor,
                                key_hash64(event.id()),
                                event.target().and_then(|t| t.id.as_deref()).map(key_hash64),
                                dictionary,
                                stored,
                            ])
                            .map_err(sql_error)?;
                        // Searchable from the same commit as the event.
                        word_index::insert_words(&tx, key, &words)?;
                        state
                            .personal_values
                            .insert(&tx, account_id, seq, &personal)?;
                        append_tree_hashes(&tx, account_id, seq as i64 - 1, hash)?;
                        day_counts.add(account_id, event, actor, kind);
                        blocks.add(account_id, seq, event.time().micros(), kind);
                        assigned = seq + 1;
                        Receipt {
                            id: event.id().to_string(),
                            seq,
                            hash,
                            created: true,
                        }
                    }
                };
                receipts.push(receipt);
            }
            next_seq.insert(account_id, assigned);
            outcomes.push(Ok(receipts));
        }
    }
    // Each object's uses once per group (migration 0027), after every
    // event's statements.
    state.personal_values.write_uses(&tx)?;
    day_counts.write(&tx)?;
    // The block time summary of free text (migration 0024).
    blocks.write(&tx)?;
    tx.commit().map_err(sql_error)?;
    Ok(outcomes)
}

/// A new event made ready for its row outside the database: its sealed
/// leaf and the words the full-text index gets.
struct Prepared {
    sealed: SealedEvent,
    words: Vec<String>,
}

/// Requests of at least this many events are prepared on two threads.
const PREPARED_IN_PARALLEL_FROM: usize = 64;

/// Seals every event `plan` marks new and lists its words (`None` for the
/// others, in request order). Neither reads the database, and together
/// they were a fifth of the writer thread's time (BENCHMARKS.md, "WAL
/// checkpoints off the writer's commit path"), so a large request's second
/// half is prepared on a scoped thread while the writer does the first.
/// The first error in request order is the one returned, as one thread
/// would have returned it.
fn prepare_request(
    request: &AppendRequest,
    plan: &[Planned],
    received_at: Timestamp,
    declared: &[DetailsPath],
) -> Result<Vec<Option<Prepared>>> {
    let prepare =
        |range: std::ops::Range<usize>| prepare_range(request, plan, received_at, declared, range);
    let len = plan.len().min(request.events.len());
    if len < PREPARED_IN_PARALLEL_FROM {
        return prepare(0..len);
    }
    let middle = len / 2;
    std::thread::scope(|scope| {
        let second = scope.spawn(|| prepare(middle..len));
        let mut prepared = prepare(0..middle)?;
        let second = second
            .join()
            .map_err(|_| StoreError::internal("a thread sealing events panicked"))??;
        prepared.extend(second);
        Ok(prepared)
    })
}

fn prepare_range(
    request: &AppendRequest,
    plan: &[Planned],
    received_at: Timestamp,
    declared: &[DetailsPath],
    range: std::ops::Range<usize>,
) -> Result<Vec<Option<Prepared>>> {
    let events = &request.events[range.clone()];
    let sealed = seal_request(
        &request.account,
        &request.source,
        received_at,
        events,
        &plan[range.clone()],
        declared,
    )
    .map_err(|e| match e {
        // Its index is the event's in the whole request.
        StoreError::TooLarge {
            index,
            id,
            bytes,
            limit,
        } => StoreError::TooLarge {
            index: index + range.start,
            id,
            bytes,
            limit,
        },
        other => other,
    })?;
    Ok(sealed
        .into_iter()
        .zip(events)
        .map(|(sealed, event)| {
            sealed.map(|sealed| Prepared {
                sealed,
                words: index_words(event),
            })
        })
        .collect())
}

/// Persists the tree hashes that leaf `leaf_index` adds: its hash and those of
/// the subtrees it completes. Runs inside the events' transaction, whose
/// reads see the hashes written earlier in the same group.
pub(crate) fn append_tree_hashes(
    conn: &Connection,
    account_id: i64,
    leaf_index: i64,
    leaf_hash: Hash,
) -> Result<()> {
    let reader = ConnHashes { conn, account_id };
    let hashes = merkle::stored_hashes_for_record(leaf_index, leaf_hash, &reader)
        .map_err(|e| StoreError::internal_caused_by(format!("tree of account {account_id}"), e))?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO tree_hashes (account_id, hash_index, hash) VALUES (?1, ?2, ?3)",
        )
        .map_err(sql_error)?;
    let first = merkle::stored_hash_index(0, leaf_index);
    for (offset, hash) in hashes.iter().enumerate() {
        insert
            .execute(params![account_id, first + offset as i64, &hash[..]])
            .map_err(sql_error)?;
    }
    Ok(())
}

/// Reads one account's stored hashes through a connection (or transaction).
pub(crate) struct ConnHashes<'c> {
    pub conn: &'c Connection,
    pub account_id: i64,
}

impl HashReader for ConnHashes<'_> {
    fn read_hashes(&self, indexes: &[i64]) -> std::result::Result<Vec<Hash>, MerkleError> {
        let read_error = |e: rusqlite::Error| MerkleError::Read(e.to_string());
        let mut select = self
            .conn
            .prepare_cached(
                "SELECT hash FROM tree_hashes WHERE account_id = ?1 AND hash_index = ?2",
            )
            .map_err(read_error)?;
        indexes
            .iter()
            .map(|&index| {
                let bytes: Option<Vec<u8>> = select
                    .query_row(params![self.account_id, index], |r| r.get(0))
                    .optional()
                    .map_err(read_error)?;
                let bytes = bytes
                    .ok_or_else(|| MerkleError::Read(format!("no stored hash at index {index}")))?;
                bytes
                    .try_into()
                    .map_err(|_| MerkleError::Read(format!("stored hash {index} is not 32 bytes")))
            })
            .collect()
    }
}

pub use auditlog_store::append_plan::hash_from_bytes as to_hash;
