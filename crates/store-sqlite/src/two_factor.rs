//! Console users' TOTP enrolments and recovery codes (migration 0018).
//! Each check-and-update is one statement, or one immediate transaction,
//! so that a code is accepted once however many requests race.

use crate::sql::sql_error;
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::{AccountId, Result, StoreError, TwoFactor, TwoFactorRecord};
use rusqlite::{params, OptionalExtension};

/// A step as stored (steps fit easily: 2^63 × 30 s is far beyond any clock).
fn stored_step(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

#[async_trait]
impl TwoFactor for SqliteStore {
    async fn two_factor(&self, user_id: i64) -> Result<Option<TwoFactorRecord>> {
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT sealed_secret, confirmed_at, last_step FROM user_two_factor WHERE user_id = ?1",
                [user_id],
                |r| {
                    Ok(TwoFactorRecord {
                        user_id,
                        sealed_secret: r.get(0)?,
                        confirmed_at: r.get::<_, Option<i64>>(1)?.map(Timestamp::from_micros),
                        last_step: r
                            .get::<_, Option<i64>>(2)?
                            .and_then(|s| u64::try_from(s).ok()),
                    })
                },
            )
            .optional()
            .map_err(sql_error)
        })
        .await
    }

    async fn begin_two_factor(
        &self,
        user_id: i64,
        sealed_secret: &[u8],
        now: Timestamp,
    ) -> Result<()> {
        let sealed = sealed_secret.to_vec();
        self.with_write_conn(move |conn| {
            let changed = conn
                .execute(
                    "INSERT INTO user_two_factor (user_id, sealed_secret, confirmed_at, last_step, created_at) \
                     VALUES (?1, ?2, NULL, NULL, ?3) \
                     ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
                         last_step = NULL, created_at = excluded.created_at \
                     WHERE user_two_factor.confirmed_at IS NULL",
                    params![user_id, sealed, now.micros()],
                )
                .map_err(sql_error)?;
            if changed == 0 {
                return Err(StoreError::AlreadyExists(format!(
                    "a confirmed two-factor enrolment of user {user_id}"
                )));
            }
            Ok(())
        })
        .await
    }

    async fn confirm_two_factor(
        &self,
        user_id: i64,
        step: u64,
        recovery_hashes: &[[u8; 32]],
        now: Timestamp,
    ) -> Result<bool> {
        let hashes = recovery_hashes.to_vec();
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let confirmed = tx
                .execute(
                    "UPDATE user_two_factor SET confirmed_at = ?2, last_step = ?3 \
                     WHERE user_id = ?1 AND confirmed_at IS NULL",
                    params![user_id, now.micros(), stored_step(step)],
                )
                .map_err(sql_error)?;
            if confirmed == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM user_recovery_codes WHERE user_id = ?1", [user_id])
                .map_err(sql_error)?;
            for hash in &hashes {
                tx.execute(
                    "INSERT OR IGNORE INTO user_recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
                    params![user_id, &hash[..]],
                )
                .map_err(sql_error)?;
            }
            tx.commit().map_err(sql_error)?;
            Ok(true)
        })
        .await
    }

    async fn accept_two_factor_step(&self, user_id: i64, step: u64) -> Result<bool> {
        self.with_write_conn(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE user_two_factor SET last_step = ?2 \
                     WHERE user_id = ?1 AND confirmed_at IS NOT NULL \
                       AND (last_step IS NULL OR last_step < ?2)",
                    params![user_id, stored_step(step)],
                )
                .map_err(sql_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn use_recovery_code(
        &self,
        user_id: i64,
        code_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<bool> {
        self.with_write_conn(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE user_recovery_codes SET used_at = ?3 \
                     WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
                    params![user_id, &code_hash[..], now.micros()],
                )
                .map_err(sql_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn recovery_codes_left(&self, user_id: i64) -> Result<u32> {
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT count(*) FROM user_recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
                [user_id],
                |r| r.get::<_, u32>(0),
            )
            .map_err(sql_error)
        })
        .await
    }

    async fn disable_two_factor(&self, user_id: i64) -> Result<bool> {
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            tx.execute(
                "DELETE FROM user_recovery_codes WHERE user_id = ?1",
                [user_id],
            )
            .map_err(sql_error)?;
            let removed = tx
                .execute("DELETE FROM user_two_factor WHERE user_id = ?1", [user_id])
                .map_err(sql_error)?;
            tx.commit().map_err(sql_error)?;
            Ok(removed == 1)
        })
        .await
    }

    async fn two_factor_required(&self, account: AccountId) -> Result<bool> {
        self.with_conn(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT required FROM account_two_factor WHERE account_id = ?1",
                    [account],
                    |r| r.get::<_, bool>(0),
                )
                .optional()
                .map_err(sql_error)?
                .unwrap_or(false))
        })
        .await
    }

    async fn set_two_factor_required(&self, account: AccountId, required: bool) -> Result<bool> {
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let old = tx
                .query_row(
                    "SELECT required FROM account_two_factor WHERE account_id = ?1",
                    [account],
                    |r| r.get::<_, bool>(0),
                )
                .optional()
                .map_err(sql_error)?
                .unwrap_or(false);
            tx.execute(
                "INSERT INTO account_two_factor (account_id, required) VALUES (?1, ?2) \
                 ON CONFLICT (account_id) DO UPDATE SET required = excluded.required",
                params![account, required],
            )
            .map_err(sql_error)?;
            tx.commit().map_err(sql_error)?;
            Ok(old)
        })
        .await
    }
}
