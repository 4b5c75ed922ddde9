//! Console users' TOTP enrolments and recovery codes (migration 0017).
//! Each check-and-update is one statement, or one transaction holding the
//! row, so that a code is accepted once however many servers race.

use crate::sql::pg_error;
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::{AccountId, Result, StoreError, TwoFactor, TwoFactorRecord};

/// A step as stored (steps fit easily: 2^63 × 30 s is far beyond any clock).
fn stored_step(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

#[async_trait]
impl TwoFactor for PgStore {
    async fn two_factor(&self, user_id: i64) -> Result<Option<TwoFactorRecord>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT sealed_secret, confirmed_at, last_step FROM user_two_factor WHERE user_id = $1",
                &[&user_id],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.map(|r| TwoFactorRecord {
            user_id,
            sealed_secret: r.get(0),
            confirmed_at: r.get::<_, Option<i64>>(1).map(Timestamp::from_micros),
            last_step: r
                .get::<_, Option<i64>>(2)
                .and_then(|s| u64::try_from(s).ok()),
        }))
    }

    async fn begin_two_factor(
        &self,
        user_id: i64,
        sealed_secret: &[u8],
        now: Timestamp,
    ) -> Result<()> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "INSERT INTO user_two_factor (user_id, sealed_secret, confirmed_at, last_step, created_at) \
                 VALUES ($1, $2, NULL, NULL, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET sealed_secret = EXCLUDED.sealed_secret, \
                     last_step = NULL, created_at = EXCLUDED.created_at \
                 WHERE user_two_factor.confirmed_at IS NULL",
                &[&user_id, &sealed_secret, &now.micros()],
            )
            .await
            .map_err(pg_error)?;
        if changed == 0 {
            return Err(StoreError::AlreadyExists(format!(
                "a confirmed two-factor enrolment of user {user_id}"
            )));
        }
        Ok(())
    }

    async fn confirm_two_factor(
        &self,
        user_id: i64,
        step: u64,
        recovery_hashes: &[[u8; 32]],
        now: Timestamp,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let confirmed = tx
            .execute(
                "UPDATE user_two_factor SET confirmed_at = $2, last_step = $3 \
                 WHERE user_id = $1 AND confirmed_at IS NULL",
                &[&user_id, &now.micros(), &stored_step(step)],
            )
            .await
            .map_err(pg_error)?;
        if confirmed == 0 {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM user_recovery_codes WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .map_err(pg_error)?;
        for hash in recovery_hashes {
            tx.execute(
                "INSERT INTO user_recovery_codes (user_id, code_hash) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                &[&user_id, &&hash[..]],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(true)
    }

    async fn accept_two_factor_step(&self, user_id: i64, step: u64) -> Result<bool> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE user_two_factor SET last_step = $2 \
                 WHERE user_id = $1 AND confirmed_at IS NOT NULL \
                   AND (last_step IS NULL OR last_step < $2)",
                &[&user_id, &stored_step(step)],
            )
            .await
            .map_err(pg_error)?;
        Ok(changed == 1)
    }

    async fn use_recovery_code(
        &self,
        user_id: i64,
        code_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<bool> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE user_recovery_codes SET used_at = $3 \
                 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                &[&user_id, &&code_hash[..], &now.micros()],
            )
            .await
            .map_err(pg_error)?;
        Ok(changed == 1)
    }

    async fn recovery_codes_left(&self, user_id: i64) -> Result<u32> {
        let client = self.client().await?;
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM user_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                &[&user_id],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn disable_two_factor(&self, user_id: i64) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute(
            "DELETE FROM user_recovery_codes WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .map_err(pg_error)?;
        let removed = tx
            .execute(
                "DELETE FROM user_two_factor WHERE user_id = $1",
                &[&user_id],
            )
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(removed == 1)
    }

    async fn two_factor_required(&self, account: AccountId) -> Result<bool> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT required FROM account_two_factor WHERE account_id = $1",
                &[&account],
            )
            .await
            .map_err(pg_error)?
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(false))
    }

    async fn set_two_factor_required(&self, account: AccountId, required: bool) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let old = tx
            .query_opt(
                "SELECT required FROM account_two_factor WHERE account_id = $1 FOR UPDATE",
                &[&account],
            )
            .await
            .map_err(pg_error)?
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(false);
        tx.execute(
            "INSERT INTO account_two_factor (account_id, required) VALUES ($1, $2) \
             ON CONFLICT (account_id) DO UPDATE SET required = EXCLUDED.required",
            &[&account, &required],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(old)
    }
}
