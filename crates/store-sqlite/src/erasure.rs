//! [`Erasures`] on SQLite (migration 0015): erasure jobs in `erasures`; a
//! version 2 event is erased in one IMMEDIATE transaction on a pooled
//! connection (like removals): its openings, personal values and (once no
//! other event names it) its personal object deleted, the erased form put
//! in `event_personal` (the triggers of 0012 and 0015 check the covering
//! record), its full-text entry replaced. Every connection deletes with
//! `secure_delete` (`schema::configure`), and [`Erasures::reclaim_erased`]
//! checkpoints the WAL and truncates it, so that no erased byte stays in
//! the database, its WAL or its free pages.

use crate::sql::sql_error;
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::coverage::{covers_json, parse_covers};
use auditlog_core::leaf_v2::erased::is_erased_form;
use auditlog_core::Timestamp;
use auditlog_store::log_key::log_key;
use auditlog_store::{
    AccountId, ErasedEvent, Erasure, ErasureId, ErasurePlan, ErasureProgress, ErasureStatus,
    Erasures, ExportJob, Result, StoreError, SubjectEvents,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

const COLUMNS: &str = "id, account_id, status, pseudonym, requested_at, requested_by, source, \
    covers, actor_rows, record_seq, next_seq, erased, held, claimed_until, finished_at, record_seqs";

struct RawErasure {
    id: i64,
    account_id: i64,
    status: String,
    pseudonym: String,
    requested_at: i64,
    requested_by: String,
    source: String,
    covers: String,
    actor_rows: String,
    record_seq: Option<i64>,
    next_seq: i64,
    erased: i64,
    held: i64,
    claimed_until: Option<i64>,
    finished_at: Option<i64>,
    record_seqs: Option<String>,
}

fn raw(r: &Row<'_>) -> rusqlite::Result<RawErasure> {
    Ok(RawErasure {
        id: r.get(0)?,
        account_id: r.get(1)?,
        status: r.get(2)?,
        pseudonym: r.get(3)?,
        requested_at: r.get(4)?,
        requested_by: r.get(5)?,
        source: r.get(6)?,
        covers: r.get(7)?,
        actor_rows: r.get(8)?,
        record_seq: r.get(9)?,
        next_seq: r.get(10)?,
        erased: r.get(11)?,
        held: r.get(12)?,
        claimed_until: r.get(13)?,
        finished_at: r.get(14)?,
        record_seqs: r.get(15)?,
    })
}

fn to_erasure(raw: RawErasure) -> Result<Erasure> {
    let id = raw.id;
    let unreadable =
        |what: &str| StoreError::internal(format!("erasure {id} has unreadable {what}"));
    let covers: serde_json::Value =
        serde_json::from_str(&raw.covers).map_err(|_| unreadable("covers"))?;
    let covers =
        parse_covers(&serde_json::json!({"covers": covers})).ok_or_else(|| unreadable("covers"))?;
    Ok(Erasure {
        id,
        status: ErasureStatus::parse(&raw.status).ok_or_else(|| unreadable("status"))?,
        plan: ErasurePlan {
            account_id: raw.account_id,
            pseudonym: raw.pseudonym,
            requested_at: Timestamp::from_micros(raw.requested_at),
            requested_by: raw.requested_by,
            source: serde_json::from_str(&raw.source).map_err(|_| unreadable("source"))?,
            covers,
            actor_rows: serde_json::from_str(&raw.actor_rows)
                .map_err(|_| unreadable("actor rows"))?,
        },
        record_seqs: match &raw.record_seqs {
            Some(json) => serde_json::from_str(json).map_err(|_| unreadable("record seqs"))?,
            None => raw.record_seq.map(|s| s as u64).into_iter().collect(),
        },
        next_seq: raw.next_seq as u64,
        erased: raw.erased as u64,
        held: raw.held as u64,
        claimed_until: raw.claimed_until.map(Timestamp::from_micros),
        finished_at: raw.finished_at.map(Timestamp::from_micros),
    })
}

fn by_id(conn: &Connection, id: ErasureId) -> Result<Option<Erasure>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM erasures WHERE id = ?1"),
        [id],
        raw,
    )
    .optional()
    .map_err(sql_error)?
    .map(to_erasure)
    .transpose()
}

/// Tells the writer (this process's or another's) that cached actor and
/// personal object ids may be stale.
fn bump_generation(tx: &Connection) -> Result<()> {
    tx.execute(
        "UPDATE erasure_generation SET generation = generation + 1",
        [],
    )
    .map_err(sql_error)?;
    Ok(())
}

/// Erases one version 2 event inside `tx`; false when it has no stored
/// personal values to erase (already erased, a version 1 event, removed).
fn erase_one(tx: &Connection, account: i64, event: &ErasedEvent) -> Result<bool> {
    let seq = event.seq as i64;
    let key = log_key(account, event.seq)?;
    let object: Option<i64> = tx
        .prepare_cached("SELECT object_id FROM event_openings WHERE account_id = ?1 AND seq = ?2")
        .map_err(sql_error)?
        .query_row(params![account, seq], |r| r.get(0))
        .optional()
        .map_err(sql_error)?;
    let legacy: Option<Vec<u8>> = tx
        .prepare_cached("SELECT personal FROM event_personal WHERE account_id = ?1 AND seq = ?2")
        .map_err(sql_error)?
        .query_row(params![account, seq], |r| r.get(0))
        .optional()
        .map_err(sql_error)?;
    let legacy_erased = legacy.as_deref().is_some_and(is_erased_form);
    if object.is_none() && (legacy.is_none() || legacy_erased) {
        return Ok(false);
    }
    // Deletions first (each checked against the coverage by 0012's
    // triggers), then the erased form in their place (0015's trigger).
    for table in ["event_openings", "event_personal"] {
        tx.prepare_cached(&format!(
            "DELETE FROM {table} WHERE account_id = ?1 AND seq = ?2"
        ))
        .map_err(sql_error)?
        .execute(params![account, seq])
        .map_err(sql_error)?;
    }
    if let Some(object) = object {
        tx.prepare_cached(
            "DELETE FROM personal_objects WHERE id = ?1 \
             AND COALESCE((SELECT uses FROM object_uses WHERE object_id = ?1), 0) = 0",
        )
        .map_err(sql_error)?
        .execute([object])
        .map_err(sql_error)?;
    }
    tx.prepare_cached("INSERT INTO event_personal (account_id, seq, personal) VALUES (?1, ?2, ?3)")
        .map_err(sql_error)?
        .execute(params![account, seq, event.erased_form])
        .map_err(sql_error)?;
    crate::word_index::remove_event(tx, key)?;
    crate::word_index::insert_words(tx, key, &event.words)?;
    Ok(true)
}

/// Renames `actor` to `pseudonym` (without name or email) if none of its
/// events keeps personal values; true when it did.
fn retire_actor(tx: &Connection, account: i64, pseudonym: &str, actor: i64) -> Result<bool> {
    let kept: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM event_log l WHERE l.actor = ?1 AND NOT EXISTS ( \
               SELECT 1 FROM event_personal p WHERE p.account_id = ?2 \
                 AND p.seq = l.key & 1099511627775 \
                 AND substr(CAST(p.personal AS TEXT), 1, 10) = '{\"erased\":'))",
        )
        .map_err(sql_error)?
        .query_row(params![actor, account], |r| r.get(0))
        .map_err(sql_error)?;
    if kept {
        return Ok(false);
    }
    let current: Option<String> = tx
        .query_row(
            "SELECT actor_id FROM actors WHERE id = ?1 AND account_id = ?2",
            params![actor, account],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_error)?;
    let Some(current) = current else {
        return Ok(false);
    };
    if current.starts_with(pseudonym) {
        return Ok(false);
    }
    // A second row of the same subject (it acted again after an earlier
    // erasure) takes the pseudonym with the row's id after it.
    let taken: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM actors WHERE account_id = ?1 AND actor_id = ?2)",
            params![account, pseudonym],
            |r| r.get(0),
        )
        .map_err(sql_error)?;
    let name = if taken {
        format!("{pseudonym}~{actor}")
    } else {
        pseudonym.to_string()
    };
    tx.execute(
        "UPDATE actors SET actor_id = ?2, name = NULL, email = NULL WHERE id = ?1",
        params![actor, name],
    )
    .map_err(sql_error)?;
    Ok(true)
}

#[async_trait]
impl Erasures for SqliteStore {
    async fn subject_events(&self, account: AccountId, actor_id: &str) -> Result<SubjectEvents> {
        let actor_id = actor_id.to_string();
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(sql_error)?;
            let rows: Vec<i64> = {
                let mut stmt = tx
                    .prepare_cached("SELECT id FROM actors WHERE account_id = ?1 AND actor_id = ?2")
                    .map_err(sql_error)?;
                let rows = stmt
                    .query_map(params![account, actor_id], |r| r.get(0))
                    .map_err(sql_error)?;
                rows.collect::<rusqlite::Result<_>>().map_err(sql_error)?
            };
            let mut seqs = Vec::new();
            {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT key & 1099511627775 FROM event_log WHERE actor = ?1 ORDER BY key",
                    )
                    .map_err(sql_error)?;
                for row in &rows {
                    let found = stmt
                        .query_map([row], |r| r.get::<_, i64>(0))
                        .map_err(sql_error)?;
                    for seq in found {
                        seqs.push(seq.map_err(sql_error)? as u64);
                    }
                }
            }
            seqs.sort_unstable();
            Ok(SubjectEvents {
                seqs,
                actor_rows: rows,
            })
        })
        .await
    }

    async fn plan_erasure(&self, plan: &ErasurePlan, lease_until: Timestamp) -> Result<Erasure> {
        let plan = plan.clone();
        self.with_write_conn(move |conn| {
            let first = plan.covers.first().map_or(1, |r| r.first);
            conn.execute(
                "INSERT INTO erasures (account_id, status, pseudonym, requested_at, requested_by, \
                 source, covers, actor_rows, next_seq, claimed_until) \
                 VALUES (?1, 'planned', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    plan.account_id,
                    plan.pseudonym,
                    plan.requested_at.micros(),
                    plan.requested_by,
                    plan.source.to_string(),
                    covers_json(&plan.covers).to_string(),
                    serde_json::Value::from(plan.actor_rows.clone()).to_string(),
                    first as i64,
                    lease_until.micros()
                ],
            )
            .map_err(sql_error)?;
            by_id(conn, conn.last_insert_rowid())?
                .ok_or_else(|| StoreError::internal("a stored erasure does not read back"))
        })
        .await
    }

    async fn claim_erasure(
        &self,
        account: AccountId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Erasure>> {
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let id: Option<i64> = tx
                .query_row(
                    "SELECT id FROM erasures WHERE account_id = ?1 AND status <> 'done' \
                     AND (claimed_until IS NULL OR claimed_until < ?2) ORDER BY id LIMIT 1",
                    params![account, now.micros()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_error)?;
            let Some(id) = id else { return Ok(None) };
            tx.execute(
                "UPDATE erasures SET claimed_until = ?2 WHERE id = ?1",
                params![id, lease_until.micros()],
            )
            .map_err(sql_error)?;
            let job = by_id(&tx, id)?;
            tx.commit().map_err(sql_error)?;
            Ok(job)
        })
        .await
    }

    async fn update_erasure(
        &self,
        id: ErasureId,
        progress: &ErasureProgress,
        lease_until: Timestamp,
    ) -> Result<()> {
        let progress = progress.clone();
        let record_seqs = (!progress.record_seqs.is_empty())
            .then(|| serde_json::Value::from(progress.record_seqs.clone()).to_string());
        self.with_write_conn(move |conn| {
            let done = progress.status == ErasureStatus::Done;
            let released = done || progress.status == ErasureStatus::Waiting;
            conn.execute(
                "UPDATE erasures SET status = ?2, record_seq = ?3, next_seq = ?4, erased = ?5, \
                 held = ?6, claimed_until = CASE WHEN ?7 THEN NULL ELSE ?8 END, \
                 finished_at = CASE WHEN ?9 THEN ?10 ELSE finished_at END, \
                 record_seqs = ?11 WHERE id = ?1",
                params![
                    id,
                    progress.status.as_str(),
                    progress.record_seqs.first().map(|s| *s as i64),
                    progress.next_seq as i64,
                    progress.erased as i64,
                    progress.held as i64,
                    released,
                    lease_until.micros(),
                    done,
                    Timestamp::now().micros(),
                    record_seqs,
                ],
            )
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn erasures(&self, account: AccountId, limit: usize) -> Result<Vec<Erasure>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM erasures WHERE account_id = ?1 ORDER BY id DESC LIMIT ?2"
                ))
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![account, limit as i64], raw)
                .map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error).and_then(to_erasure))
                .collect()
        })
        .await
    }

    async fn erasure(&self, account: AccountId, id: ErasureId) -> Result<Option<Erasure>> {
        self.with_conn(move |conn| Ok(by_id(conn, id)?.filter(|e| e.plan.account_id == account)))
            .await
    }

    async fn erase_personal(
        &self,
        account: AccountId,
        _record_seq: u64,
        events: &[ErasedEvent],
    ) -> Result<u64> {
        let events = events.to_vec();
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let mut erased = 0;
            for event in &events {
                if erase_one(&tx, account, event)? {
                    erased += 1;
                }
            }
            if erased > 0 {
                bump_generation(&tx)?;
            }
            tx.commit().map_err(sql_error)?;
            Ok(erased)
        })
        .await
    }

    async fn retire_actors(
        &self,
        account: AccountId,
        _record_seq: u64,
        pseudonym: &str,
        actor_rows: &[i64],
    ) -> Result<u64> {
        let pseudonym = pseudonym.to_string();
        let rows = actor_rows.to_vec();
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let mut retired = 0;
            for actor in rows {
                if retire_actor(&tx, account, &pseudonym, actor)? {
                    retired += 1;
                }
            }
            if retired > 0 {
                bump_generation(&tx)?;
            }
            tx.commit().map_err(sql_error)?;
            Ok(retired)
        })
        .await
    }

    async fn reclaim_erased(&self) -> Result<()> {
        self.with_write_conn(|conn| {
            // FTS5 merges its segments on its own schedule; an optimize
            // rewrites the index into one segment, so that no page that
            // once held an erased word is left in use (the freed ones are
            // zeroed by secure_delete).
            conn.execute_batch("INSERT INTO event_words (event_words) VALUES ('optimize')")
                .map_err(sql_error)?;
            // Every page of the WAL (which holds the pages as they were
            // before each change) copied back and the file truncated; a
            // reader still on an old snapshot makes it partial (busy),
            // which the next erasure's checkpoint finishes.
            let (busy, _, _): (i64, i64, i64) = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(sql_error)?;
            if busy != 0 {
                return Err(StoreError::unavailable(
                    "the WAL checkpoint after an erasure was blocked by a reader; it is retried",
                ));
            }
            Ok(())
        })
        .await
    }

    async fn expire_exports_from(
        &self,
        account: AccountId,
        first_seq: u64,
    ) -> Result<Vec<ExportJob>> {
        self.expire_exports_reaching(account, first_seq).await
    }

    async fn export_in_progress(&self, account: AccountId) -> Result<bool> {
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM export_jobs WHERE account_id = ?1 \
                 AND status IN ('queued', 'running'))",
                [account],
                |r| r.get(0),
            )
            .map_err(sql_error)
        })
        .await
    }
}
