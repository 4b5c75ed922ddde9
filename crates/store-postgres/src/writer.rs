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

use crate::leaf_store::LeafStore;
use crate::sql::{pg_error, pool_error};
use crate::tree_appends::TreeAppends;
use auditlog_core::{StoredEvent, Timestamp};
use auditlog_store::append_plan::{plan_request, KnownEvent, Planned};
use auditlog_store::group_commit::{answer, AppendRequest, GroupReceiver, Outcome};
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
    while let Some(group) = requests.next_group().await {
        let written = match pool.get().await.map_err(pool_error) {
            Ok(mut client) => {
                let written = write_group(&mut client, &mut leaves, &group).await;
                if written.is_err() {
                    drop(deadpool_postgres::Object::take(client));
                }
                written
            }
            Err(e) => Err(e),
        };
        if written.is_err() {
            leaves.forget();
        }
        WriteHealth::record(&health, &written);
        answer(group, written);
    }
}

/// A stored event as far as idempotency needs it.
type Known = KnownEvent;

/// The rows of one multi-row INSERT, column by column (for `unnest`).
#[derive(Default)]
pub(crate) struct Rows {
    account_id: Vec<i64>,
    seq: Vec<i64>,
    time: Vec<i64>,
    event_id: Vec<String>,
    event_type: Vec<String>,
    action: Vec<String>,
    actor_id: Vec<String>,
    project: Vec<Option<String>>,
    app: Vec<Option<String>>,
    version: Vec<Option<String>>,
    target_id: Vec<Option<String>>,
    received_at: Vec<i64>,
    leaf: Vec<Vec<u8>>,
    leaf_hash: Vec<Vec<u8>>,
    leaf_dict: Vec<Option<i64>>,
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
        hash: [u8; 32],
        personal: Option<Vec<u8>>,
    ) {
        let event = stored.event();
        if let Some(personal) = personal {
            self.personal_account_id.push(account_id);
            self.personal_seq.push(stored.seq() as i64);
            self.personal.push(personal);
        }
        self.account_id.push(account_id);
        self.seq.push(stored.seq() as i64);
        self.time.push(event.time().micros());
        self.event_id.push(event.id().to_string());
        self.event_type.push(event.event_type().to_string());
        self.action.push(event.action().to_string());
        self.actor_id.push(event.actor().id.clone());
        self.project.push(event.project().map(str::to_string));
        self.app.push(event.app().map(str::to_string));
        self.version.push(event.version().map(str::to_string));
        self.target_id
            .push(event.target().and_then(|t| t.id.clone()));
        self.received_at.push(stored.received_at().micros());
        self.leaf.push(stored_leaf);
        self.leaf_hash.push(hash.to_vec());
        self.leaf_dict.push(dictionary);
    }

    pub(crate) async fn insert(&self, tx: &Transaction<'_>) -> Result<()> {
        if self.seq.is_empty() {
            return Ok(());
        }
        let statement = tx
            .prepare_cached(
                "INSERT INTO events (account_id, seq, time, event_id, event_type, action, actor_id, project, \
                 app, version, target_id, received_at, leaf, leaf_hash, leaf_dict) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], \
                 $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], \
                 $13::bytea[], $14::bytea[], $15::bigint[])",
            )
            .await
            .map_err(pg_error)?;
        tx.execute(
            &statement,
            &[
                &self.account_id,
                &self.seq,
                &self.time,
                &self.event_id,
                &self.event_type,
                &self.action,
                &self.actor_id,
                &self.project,
                &self.app,
                &self.version,
                &self.target_id,
                &self.received_at,
                &self.leaf,
                &self.leaf_hash,
                &self.leaf_dict,
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

/// Writes every request of the group in one transaction. A request that
/// conflicts gets its own error and writes nothing; the others go on.
async fn write_group(
    client: &mut deadpool_postgres::Object,
    leaves: &mut LeafStore,
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
                        },
                    );
                    let stored_leaf = leaves.encode(&tx, account_id, leaf_bytes).await?;
                    rows.push(account_id, &stored, stored_leaf, hash, Some(personal));
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
    rows.insert(&tx).await?;
    tree.insert(&tx).await?;
    let (ids, last): (Vec<i64>, Vec<i64>) = next_seq
        .iter()
        .map(|(id, next)| (*id, *next as i64 - 1))
        .unzip();
    tx.execute(
        "UPDATE account_sequencers s SET last_seq = v.last_seq \
         FROM unnest($1::bigint[], $2::bigint[]) AS v(account_id, last_seq) \
         WHERE s.account_id = v.account_id AND s.last_seq <> v.last_seq",
        &[&ids, &last],
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
        let rows = tx
            .query(
                "SELECT e.event_id, e.seq, e.leaf, e.leaf_hash, p.personal, e.leaf_dict FROM events e \
                 LEFT JOIN event_personal p ON p.account_id = e.account_id AND p.seq = e.seq \
                 WHERE e.account_id = $1 AND e.event_id = ANY($2)",
                &[&account_id, &ids],
            )
            .await
            .map_err(pg_error)?;
        leaves.prepare_decoding(tx, &rows, 5).await?;
        for row in rows {
            let hash: Vec<u8> = row.get(3);
            known.insert(
                (account_id, row.get::<_, String>(0)),
                Known {
                    seq: row.get::<_, i64>(1) as u64,
                    leaf_bytes: leaves.decode(row.get(5), row.get(2))?,
                    hash: to_hash(&hash)?,
                    personal: row.get(4),
                },
            );
        }
    }
    Ok(known)
}

pub use auditlog_store::append_plan::hash_from_bytes as to_hash;
