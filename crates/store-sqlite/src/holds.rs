//! [`Holds`] on SQLite (migration 0012): rows of `legal_holds`, written on
//! pooled connections (they are not events; their audit events are).

use crate::sql::{is_unique_violation, now_micros, sql_error};
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::{AccountId, Hold, HoldId, Holds, NewHold, Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row};

const COLUMNS: &str = "id, account_id, name, reason, filters, q, tz, created_by, created_at, \
    released_by, released_at";

type RawHold = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
);

fn raw_hold(r: &Row<'_>) -> rusqlite::Result<RawHold> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn to_hold(raw: RawHold) -> Result<Hold> {
    let (
        id,
        account_id,
        name,
        reason,
        filters,
        q,
        tz,
        created_by,
        created_at,
        released_by,
        released_at,
    ) = raw;
    let filters = serde_json::from_str(&filters).map_err(|e| {
        StoreError::internal_caused_by(format!("legal hold {id} has unreadable filters"), e)
    })?;
    Ok(Hold {
        id,
        account_id,
        name,
        reason,
        filters,
        q,
        tz,
        created_by,
        created_at: Timestamp::from_micros(created_at),
        released_by,
        released_at: released_at.map(Timestamp::from_micros),
    })
}

fn read_hold(conn: &Connection, account: AccountId, id: HoldId) -> Result<Option<Hold>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM legal_holds WHERE account_id = ?1 AND id = ?2"),
        params![account, id],
        raw_hold,
    )
    .optional()
    .map_err(sql_error)?
    .map(to_hold)
    .transpose()
}

#[async_trait]
impl Holds for SqliteStore {
    async fn create_hold(&self, account: AccountId, hold: &NewHold) -> Result<Hold> {
        let hold = hold.clone();
        self.with_write_conn(move |conn| {
            let filters = hold.filters.to_string();
            match conn.execute(
                "INSERT INTO legal_holds (account_id, name, reason, filters, q, tz, created_by, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![account, hold.name, hold.reason, filters, hold.q, hold.tz, hold.created_by, now_micros()],
            ) {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::AlreadyExists(format!("an active legal hold named {:?}", hold.name)))
                }
                Err(e) => return Err(sql_error(e)),
            }
            let id = conn.last_insert_rowid();
            read_hold(conn, account, id)?
                .ok_or_else(|| StoreError::internal("a legal hold vanished as it was created"))
        })
        .await
    }

    async fn holds(&self, account: AccountId, include_released: bool) -> Result<Vec<Hold>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM legal_holds WHERE account_id = ?1 \
                     AND (?2 OR released_at IS NULL) ORDER BY id DESC"
                ))
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![account, include_released], raw_hold)
                .map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error).and_then(to_hold))
                .collect()
        })
        .await
    }

    async fn hold(&self, account: AccountId, id: HoldId) -> Result<Option<Hold>> {
        self.with_conn(move |conn| read_hold(conn, account, id))
            .await
    }

    async fn release_hold(&self, account: AccountId, id: HoldId, by: &str) -> Result<Hold> {
        let by = by.to_string();
        self.with_write_conn(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE legal_holds SET released_by = ?3, released_at = ?4 \
                     WHERE account_id = ?1 AND id = ?2 AND released_at IS NULL",
                    params![account, id, by, now_micros()],
                )
                .map_err(sql_error)?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("active legal hold {id}")));
            }
            read_hold(conn, account, id)?
                .ok_or_else(|| StoreError::internal("a legal hold vanished as it was released"))
        })
        .await
    }
}
