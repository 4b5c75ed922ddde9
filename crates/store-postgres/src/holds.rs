//! [`Holds`] on PostgreSQL (migration 0011): rows of `legal_holds`.

use crate::sql::{is_unique_violation, now_micros, pg_error};
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::{AccountId, Hold, HoldId, Holds, NewHold, Result, StoreError};
use tokio_postgres::Row;

const COLUMNS: &str =
    "id, account_id, name, reason, filters::text, q, tz, created_by, created_at, \
    released_by, released_at";

fn to_hold(r: &Row) -> Result<Hold> {
    let id: i64 = r.get(0);
    let filters: String = r.get(4);
    Ok(Hold {
        id,
        account_id: r.get(1),
        name: r.get(2),
        reason: r.get(3),
        filters: serde_json::from_str(&filters).map_err(|e| {
            StoreError::internal_caused_by(format!("legal hold {id} has unreadable filters"), e)
        })?,
        q: r.get(5),
        tz: r.get(6),
        created_by: r.get(7),
        created_at: Timestamp::from_micros(r.get(8)),
        released_by: r.get(9),
        released_at: r.get::<_, Option<i64>>(10).map(Timestamp::from_micros),
    })
}

#[async_trait]
impl Holds for PgStore {
    async fn create_hold(&self, account: AccountId, hold: &NewHold) -> Result<Hold> {
        let client = self.client().await?;
        let filters = hold.filters.to_string();
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO legal_holds (account_id, name, reason, filters, q, tz, created_by, created_at) \
                     VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7, $8) RETURNING {COLUMNS}"
                ),
                &[
                    &account,
                    &hold.name,
                    &hold.reason,
                    &filters,
                    &hold.q,
                    &hold.tz,
                    &hold.created_by,
                    &now_micros(),
                ],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists(format!("an active legal hold named {:?}", hold.name))
                } else {
                    pg_error(e)
                }
            })?;
        to_hold(&row)
    }

    async fn holds(&self, account: AccountId, include_released: bool) -> Result<Vec<Hold>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM legal_holds WHERE account_id = $1 \
                     AND ($2 OR released_at IS NULL) ORDER BY id DESC"
                ),
                &[&account, &include_released],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(to_hold).collect()
    }

    async fn hold(&self, account: AccountId, id: HoldId) -> Result<Option<Hold>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM legal_holds WHERE account_id = $1 AND id = $2"),
                &[&account, &id],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(to_hold).transpose()
    }

    async fn release_hold(&self, account: AccountId, id: HoldId, by: &str) -> Result<Hold> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE legal_holds SET released_by = $3, released_at = $4 \
                     WHERE account_id = $1 AND id = $2 AND released_at IS NULL RETURNING {COLUMNS}"
                ),
                &[&account, &id, &by, &now_micros()],
            )
            .await
            .map_err(pg_error)?;
        match row {
            Some(row) => to_hold(&row),
            None => Err(StoreError::NotFound(format!("active legal hold {id}"))),
        }
    }
}
