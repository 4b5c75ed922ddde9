//! The one appender of this process: a task that gathers the append requests
//! arriving while a commit is in flight into the next transaction (group
//! commit), so one WAL flush serves many clients; each request is answered
//! only after COMMIT returns.
//!
//! Several processes may append to one account at once. Each transaction
//! first locks the sequencer rows of its accounts `FOR UPDATE`, in account id
//! order (so two writers never deadlock), and only then looks for existing
//! ids and assigns seqs: the lock serialises appenders per account, and an
//! aborted transaction gives its seqs back because `last_seq` moves in the
//! same transaction as the inserts. The tree hashes of the new leaves are
//! computed under the same lock and written in the same transaction.
//!
//! The per-day rollups (migration 0022) are added by the event log's
//! statement-level trigger on the one multi-row INSERT of each group
//! ([`Rows::insert`]): one upsert per distinct rollup row and group commit,
//! in key order, under the same sequencer locks, so writers of one account
//! never interleave their rollup updates.

use crate::declared_paths;
use crate::leaf_store::LeafStore;
use crate::sql::{pg_error, pool_error};
use crate::tombstones;
use crate::tree_appends::TreeAppends;
use auditlog_core::{leaf, StoredEvent, StoredRecord, Timestamp};
use auditlog_store::append_plan::{plan_request, KnownEvent, Planned};
use auditlog_store::group_commit::{answer, AppendRequest, GroupReceiver, Outcome};
use auditlog_store::key_hash64;
use auditlog_store::log_key::{log_key, seq_of, SEQ_BITS, SEQ_MASK};
use auditlog_store::sealing::{seal_request, SealedEvent};
use auditlog_store::{Receipt, Result, StoreError, WriteHealth};
use deadpool_postgres::Pool;
use deadpool_postgres::Transaction;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Runs until the queue is closed, then returns after the last commit. A
/// failed group (its transaction rolled back by the server, or its
/// connection lost) is answered 503 and its connection is closed rather
/// than returned to the pool: a connection the server terminated may not
/// look closed yet, and the pool's fast recycling would hand it to the next
/// reader, whose request would then fail too. The next group starts afresh
/// on a new connection.
pub async fn run(pool: Pool, mut requests: GroupReceiver, health: Arc<Mutex<WriteHealth>>) {
    let mut leaves = LeafStore::default();
    let mut ids = LogIds::default();
    while let Some(group) = requests.next_group().await {
        let written = match pool.get().await.map_err(pool_error) {
            Ok(mut client) => {
                let written = write_group(&mut client, &mut leaves, &mut ids, &group).await;
                if written.is_err() {
                    drop(deadpool_postgres::Object::take(client));
                }
                written
            }
            Err(e) => Err(e),
        };
        if written.is_err() {
            leaves.forget();
            ids = LogIds::default();
        }
        WriteHealth::record(&health, &written);
        answer(group, written);
    }
}

/// A stored event as far as idempotency needs it.
type Known = KnownEvent;

/// The rows of one multi-row INSERT, column by column (for `unnest`). The
/// dictionary and actor ids are resolved when the rows are inserted
/// ([`LogIds`]), all of a group at once.
#[derive(Default)]
pub(crate) struct Rows {
    key: Vec<i64>,
    time: Vec<i64>,
    received_at: Vec<i64>,
    id_hash: Vec<i64>,
    target_hash: Vec<Option<i64>>,
    leaf: Vec<Vec<u8>>,
    leaf_dict: Vec<Option<i64>>,
    /// The search words (`word_index::column_text`).
    words: Vec<Option<String>>,
    /// Per row: its account, `[event type, action]`, `[project, app,
    /// version]` (`None` when all three are absent) and actor.
    kind: Vec<(i64, String)>,
    place: Vec<Option<(i64, String)>>,
    actor: Vec<(i64, String)>,
    /// The name and email of each actor's latest event in these rows.
    actor_names: HashMap<ActorKey, Contact>,
    /// `event_personal` rows: the personal values of version 2 leaves.
    personal_account_id: Vec<i64>,
    personal_seq: Vec<i64>,
    personal: Vec<Vec<u8>>,
}

impl Rows {
    pub(crate) fn push(
        &mut self,
        account_id: i64,
        stored: &StoredEvent,
        (dictionary, stored_leaf): (Option<i64>, Vec<u8>),
        personal: Option<Vec<u8>>,
    ) -> Result<()> {
        let event = stored.event();
        if let Some(personal) = personal {
            self.personal_account_id.push(account_id);
            self.personal_seq.push(stored.seq() as i64);
            self.personal.push(personal);
        }
        self.key.push(log_key(account_id, stored.seq())?);
        self.time.push(event.time().micros());
        self.received_at.push(stored.received_at().micros());
        self.id_hash.push(key_hash64(event.id()));
        self.target_hash
            .push(event.target().and_then(|t| t.id.as_deref()).map(key_hash64));
        self.leaf.push(stored_leaf);
        self.leaf_dict.push(dictionary);
        self.words.push(crate::word_index::column_text(event));
        self.kind.push((
            account_id,
            json_array(&[Some(event.event_type()), Some(event.action())])?,
        ));
        let place = [event.project(), event.app(), event.version()];
        self.place.push(if place.iter().all(Option::is_none) {
            None
        } else {
            Some((account_id, json_array(&place)?))
        });
        let actor = event.actor();
        self.actor.push((account_id, actor.id.clone()));
        self.actor_names.insert(
            (account_id, actor.id.clone()),
            (actor.name.clone(), actor.email.clone()),
        );
        Ok(())
    }

    /// An erased event as `auditlog copy` imports it ([`push`](Self::push)
    /// of the event as served once erased): no personal values (its erased
    /// form is stored once its record's coverage is), and its actor, the
    /// pseudonym, without the `"[erased]"` name and email.
    pub(crate) fn push_erased(
        &mut self,
        account_id: i64,
        stored: &StoredEvent,
        leaf: (Option<i64>, Vec<u8>),
    ) -> Result<()> {
        self.push(account_id, stored, leaf, None)?;
        let actor = stored.event().actor();
        self.actor_names
            .insert((account_id, actor.id.clone()), (None, None));
        Ok(())
    }

    pub(crate) async fn insert(&self, tx: &Transaction<'_>, ids: &mut LogIds) -> Result<()> {
        if self.key.is_empty() {
            return Ok(());
        }
        ids.resolve(tx, self).await?;
        let kind = self
            .kind
            .iter()
            .map(|k| ids.value(VALUE_KIND, k))
            .collect::<Result<Vec<i64>>>()?;
        let place = self
            .place
            .iter()
            .map(|p| p.as_ref().map(|p| ids.value(VALUE_PLACE, p)).transpose())
            .collect::<Result<Vec<Option<i64>>>>()?;
        let actor = self
            .actor
            .iter()
            .map(|a| ids.actor(a))
            .collect::<Result<Vec<i64>>>()?;
        let statement = tx
            .prepare_cached(
                "INSERT INTO event_log (key, time, received_at, kind, place, actor, id_hash, \
                 target_hash, leaf_dict, leaf, words) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], \
                 $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bytea[], \
                 $11::text[])",
            )
            .await
            .map_err(pg_error)?;
        tx.execute(
            &statement,
            &[
                &self.key,
                &self.time,
                &self.received_at,
                &kind,
                &place,
                &actor,
                &self.id_hash,
                &self.target_hash,
                &self.leaf_dict,
                &self.leaf,
                &self.words,
            ],
        )
        .await
        .map_err(pg_error)?;
        if !self.personal.is_empty() {
            let statement = tx
                .prepare_cached(
                    "INSERT INTO event_personal (account_id, seq, personal) \
                     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])",
                )
                .await
                .map_err(pg_error)?;
            tx.execute(
                &statement,
                &[
                    &self.personal_account_id,
                    &self.personal_seq,
                    &self.personal,
                ],
            )
            .await
            .map_err(pg_error)?;
        }
        Ok(())
    }
}

/// An actor of an account: (account id, actor id).
type ActorKey = (i64, String);
/// An actor's name and email.
type Contact = (Option<String>, Option<String>);

/// `log_values.kind` of an event type and action, and of a project, app and version.
const VALUE_KIND: i16 = 1;
const VALUE_PLACE: i16 = 2;

/// The JSON array `log_values.value` holds (compared as `jsonb`).
fn json_array(values: &[Option<&str>]) -> Result<String> {
    serde_json::to_string(values)
        .map_err(|e| StoreError::internal_caused_by("cannot encode a log value", e))
}

/// The dictionary and actor ids this writer has read or created. Ids never
/// change once committed, so another server's appends cannot make them
/// stale; after a rolled-back transaction (whose new ids vanished) the
/// writer starts a new cache.
#[derive(Default)]
pub(crate) struct LogIds {
    values: HashMap<(i16, i64, String), i64>,
    /// Each actor's id, name and email as last written or read here.
    actors: HashMap<ActorKey, (i64, Contact)>,
    /// `erasure_generation` when `actors` was last valid.
    generation: Option<i64>,
}

impl LogIds {
    fn value(&self, kind: i16, (account, value): &(i64, String)) -> Result<i64> {
        self.values
            .get(&(kind, *account, value.clone()))
            .copied()
            .ok_or_else(|| StoreError::internal(format!("log value {value} was not resolved")))
    }

    fn actor(&self, key: &(i64, String)) -> Result<i64> {
        self.actors
            .get(key)
            .map(|a| a.0)
            .ok_or_else(|| StoreError::internal(format!("actor {:?} was not resolved", key.1)))
    }

    /// Reads or creates the ids that `rows` need and this cache lacks, and
    /// records the latest name and email of each actor that changed.
    async fn resolve(&mut self, tx: &Transaction<'_>, rows: &Rows) -> Result<()> {
        let mut missing: Vec<(i16, i64, String)> = rows
            .kind
            .iter()
            .map(|(a, v)| (VALUE_KIND, *a, v.clone()))
            .chain(
                rows.place
                    .iter()
                    .flatten()
                    .map(|(a, v)| (VALUE_PLACE, *a, v.clone())),
            )
            .filter(|key| !self.values.contains_key(key))
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            let kinds: Vec<i16> = missing.iter().map(|m| m.0).collect();
            let accounts: Vec<i64> = missing.iter().map(|m| m.1).collect();
            let values: Vec<&str> = missing.iter().map(|m| m.2.as_str()).collect();
            tx.execute(
                "INSERT INTO log_values (account_id, kind, value) \
                 SELECT a, k, v::jsonb FROM unnest($1::bigint[], $2::smallint[], $3::text[]) AS u(a, k, v) \
                 ON CONFLICT DO NOTHING",
                &[&accounts, &kinds, &values],
            )
            .await
            .map_err(pg_error)?;
            let found = tx
                .query(
                    "SELECT u.i, l.id FROM unnest($1::bigint[], $2::smallint[], $3::text[]) \
                     WITH ORDINALITY AS u(a, k, v, i) \
                     JOIN log_values l ON l.account_id = u.a AND l.kind = u.k AND l.value = u.v::jsonb",
                    &[&accounts, &kinds, &values],
                )
                .await
                .map_err(pg_error)?;
            for row in found {
                let i = row.get::<_, i64>(0) as usize - 1;
                if let Some(key) = missing.get(i) {
                    self.values.insert(key.clone(), row.get(1));
                }
            }
        }
        // Actors this cache lacks, or whose name or email changed.
        let mut changed: Vec<(&ActorKey, &Contact)> = rows
            .actor_names
            .iter()
            .filter(|(key, (name, email))| {
                self.actors
                    .get(*key)
                    .is_none_or(|(_, (n, e))| n != name || e != email)
            })
            .collect();
        if !changed.is_empty() {
            changed.sort();
            let accounts: Vec<i64> = changed.iter().map(|c| c.0 .0).collect();
            let actor_ids: Vec<&str> = changed.iter().map(|c| c.0 .1.as_str()).collect();
            let names: Vec<Option<&str>> = changed.iter().map(|c| c.1 .0.as_deref()).collect();
            let emails: Vec<Option<&str>> = changed.iter().map(|c| c.1 .1.as_deref()).collect();
            let found = tx
                .query(
                    "INSERT INTO actors (account_id, actor_id, name, email) \
                     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) \
                     ON CONFLICT (account_id, actor_id) \
                     DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email \
                     RETURNING account_id, actor_id, id, name, email",
                    &[&accounts, &actor_ids, &names, &emails],
                )
                .await
                .map_err(pg_error)?;
            for row in found {
                self.actors.insert(
                    (row.get(0), row.get(1)),
                    (row.get(2), (row.get(3), row.get(4))),
                );
            }
        }
        Ok(())
    }
}

/// Writes every request of the group in one transaction. A request that
/// conflicts gets its own error and writes nothing; the others go on.
async fn write_group(
    client: &mut deadpool_postgres::Object,
    leaves: &mut LeafStore,
    ids: &mut LogIds,
    group: &[AppendRequest],
) -> Result<Vec<Outcome>> {
    let tx = client.transaction().await.map_err(pg_error)?;
    let received_at = Timestamp::now();

    let mut account_ids: Vec<i64> = group.iter().map(|r| r.account.id).collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    // Rows come back, and are locked, in account id order.
    let locked = tx
        .query(
            "SELECT account_id, last_seq FROM account_sequencers \
             WHERE account_id = ANY($1) ORDER BY account_id FOR UPDATE",
            &[&account_ids],
        )
        .await
        .map_err(pg_error)?;
    let mut next_seq: HashMap<i64, u64> = HashMap::new();
    for row in locked {
        next_seq.insert(row.get(0), row.get::<_, i64>(1) as u64 + 1);
    }
    // An erasure renames actor rows (holding the sequencer lock, so this
    // reads its generation once it committed): cached actor ids are dropped
    // when one has run since they were read.
    let generation: i64 = tx
        .query_one("SELECT generation FROM erasure_generation", &[])
        .await
        .map_err(pg_error)?
        .get(0);
    if ids.generation != Some(generation) {
        ids.actors.clear();
        ids.generation = Some(generation);
    }

    let declared = declared_paths::read(&tx, &account_ids).await?;
    let known = find_known(&tx, leaves, group).await?;
    let mut known = known;
    let mut rows = Rows::default();
    let mut tree = TreeAppends::default();
    let mut outcomes = Vec::with_capacity(group.len());
    for request in group {
        let account_id = request.account.id;
        let Some(&first_seq) = next_seq.get(&account_id) else {
            outcomes.push(Err(StoreError::NotFound(format!(
                "account {:?}",
                request.account.name
            ))));
            continue;
        };
        let plan = plan_request(&request.events, first_seq, |id| {
            Ok(known.get(&(account_id, id.to_string())).cloned())
        });
        // Sealed before anything of the request is written, so that an
        // event too large for a log entry fails only its own request.
        let sealed = plan.and_then(|plan| {
            let sealed = seal_request(
                &request.account,
                &request.source,
                received_at,
                &request.events,
                &plan,
                declared.get(&account_id).map_or(&[][..], Vec::as_slice),
            )?;
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
        let mut receipts: Vec<Receipt> = Vec::with_capacity(plan.len());
        let mut assigned = first_seq;
        for ((event, planned), sealed) in request.events.iter().zip(plan).zip(sealed) {
            let receipt = match (planned, sealed) {
                (Planned::Existing(receipt), _) => receipt,
                (Planned::SameAs(earlier), _) => receipts[earlier].clone(),
                (Planned::New(_), None) => {
                    return Err(StoreError::internal("a new event was not sealed"))
                }
                (Planned::New(seq), Some(sealed)) => {
                    let stored = StoredEvent::new(
                        request.account.name.clone(),
                        seq,
                        received_at,
                        event.clone(),
                    );
                    let SealedEvent {
                        leaf_bytes,
                        hash,
                        personal,
                        ..
                    } = sealed;
                    known.insert(
                        (account_id, event.id().to_string()),
                        Known {
                            seq,
                            leaf_bytes: leaf_bytes.clone(),
                            hash,
                            personal: Some(personal.clone()),
                            removed: false,
                        },
                    );
                    let stored_leaf = leaves.encode(&tx, account_id, leaf_bytes).await?;
                    rows.push(account_id, &stored, stored_leaf, Some(personal))?;
                    tree.add_leaf(&tx, account_id, seq as i64 - 1, hash).await?;
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
    rows.insert(&tx, ids).await?;
    tree.insert(&tx).await?;
    let (accounts, last): (Vec<i64>, Vec<i64>) = next_seq
        .iter()
        .map(|(id, next)| (*id, *next as i64 - 1))
        .unzip();
    tx.execute(
        "UPDATE account_sequencers s SET last_seq = v.last_seq \
         FROM unnest($1::bigint[], $2::bigint[]) AS v(account_id, last_seq) \
         WHERE s.account_id = v.account_id AND s.last_seq <> v.last_seq",
        &[&accounts, &last],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)?;
    Ok(outcomes)
}

/// The stored events whose ids the group mentions, read under the sequencer
/// locks so that no other process can add one until this transaction ends.
async fn find_known(
    tx: &Transaction<'_>,
    leaves: &LeafStore,
    group: &[AppendRequest],
) -> Result<HashMap<(i64, String), Known>> {
    let mut wanted: HashMap<i64, Vec<String>> = HashMap::new();
    for request in group {
        wanted
            .entry(request.account.id)
            .or_default()
            .extend(request.events.iter().map(|e| e.id().to_string()));
    }
    let mut known = HashMap::new();
    for (account_id, ids) in wanted {
        let hashes: Vec<i64> = ids.iter().map(|id| key_hash64(id)).collect();
        let rows = tx
            .query(
                &format!(
                    "SELECT l.key, l.leaf, p.personal, l.leaf_dict FROM event_log l \
                     LEFT JOIN event_personal p ON p.account_id = $1 AND p.seq = l.key & {SEQ_MASK} \
                     WHERE (l.key >> {SEQ_BITS}) = $1 AND l.id_hash = ANY($2)"
                ),
                &[&account_id, &hashes],
            )
            .await
            .map_err(pg_error)?;
        leaves.prepare_decoding(tx, &rows, 3).await?;
        for row in rows {
            let leaf_bytes = leaves.decode(row.get(3), row.get(1))?;
            let personal: Option<Vec<u8>> = row.get(2);
            // An erased event keeps its id but not the values a resend
            // would be compared with: a repeat, as a removed body is.
            let erased = personal
                .as_deref()
                .is_some_and(auditlog_core::leaf_v2::erased::is_erased_form);
            let seq = seq_of(row.get(0));
            // The hash found the row; the leaf says which id it holds.
            let id = StoredRecord::new(&leaf_bytes, personal.as_deref())
                .stored_event()
                .map_err(|e| {
                    StoreError::internal_caused_by(
                        format!("event seq {seq} has unreadable leaf bytes"),
                        e,
                    )
                })?
                .event()
                .id()
                .to_string();
            known.insert(
                (account_id, id),
                Known {
                    seq,
                    hash: leaf::leaf_hash(&leaf_bytes),
                    leaf_bytes,
                    personal,
                    removed: erased,
                },
            );
        }
        // A removed body keeps its id: a resend of it is a repeat.
        let missing: Vec<String> = ids
            .into_iter()
            .filter(|id| !known.contains_key(&(account_id, id.clone())))
            .collect();
        if !missing.is_empty() {
            for (id, tombstone) in tombstones::find_tombstones(&**tx, account_id, &missing).await? {
                known.insert(
                    (account_id, id),
                    Known::removed(tombstone.seq, tombstone.leaf_hash),
                );
            }
        }
    }
    Ok(known)
}

pub use auditlog_store::append_plan::hash_from_bytes as to_hash;
