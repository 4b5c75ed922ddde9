//! The console's tables on PostgreSQL: sign-in sessions (by token hash) and
//! the actor and project lists that a trigger keeps up to date on append
//! (migration 0004).

use crate::sql::{pg_error, to_account};
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::{
    AccountId, ActorSummary, Facets, NewSession, Result, Role, SessionGrant, Sessions, StoreError,
    User,
};

#[async_trait]
impl Sessions for PgStore {
    async fn create_session(&self, session: NewSession) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO console_sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &&session.token_hash[..],
                    &session.user_id,
                    &session.csrf_token,
                    &session.created_at.micros(),
                    &session.expires_at.micros(),
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn session_by_token_hash(
        &self,
        token_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Option<SessionGrant>> {
        let client = self.client().await?;
        // Account columns first, in the order `to_account` reads them.
        let row = client
            .query_opt(
                "SELECT a.id, a.name, a.taxonomy, s.csrf_token, s.expires_at, \
                        u.id, u.email, u.password_hash, u.role \
                 FROM console_sessions s \
                 JOIN users u ON u.id = s.user_id \
                 JOIN accounts a ON a.id = u.account_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
                &[&&token_hash[..], &now.micros()],
            )
            .await
            .map_err(pg_error)?;
        let Some(row) = row else { return Ok(None) };
        let account = to_account(&row)?;
        let role: String = row.get(8);
        let role = Role::parse(&role)
            .ok_or_else(|| StoreError::internal(format!("unknown role {role:?}")))?;
        Ok(Some(SessionGrant {
            user: User {
                id: row.get(5),
                account_id: account.id,
                email: row.get(6),
                password_hash: row.get(7),
                role,
            },
            account,
            csrf_token: row.get(3),
            expires_at: Timestamp::from_micros(row.get(4)),
        }))
    }

    async fn delete_session(&self, token_hash: [u8; 32]) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM console_sessions WHERE token_hash = $1",
                &[&&token_hash[..]],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM console_sessions WHERE expires_at <= $1",
                &[&now.micros()],
            )
            .await
            .map_err(pg_error)
    }
}

#[async_trait]
impl Facets for PgStore {
    async fn actors(&self, account: AccountId, limit: usize) -> Result<Vec<ActorSummary>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT actor_id, name, email FROM actors \
                 WHERE account_id = $1 ORDER BY actor_id LIMIT $2",
                &[&account, &(limit as i64)],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| ActorSummary {
                id: r.get(0),
                name: r.get(1),
                email: r.get(2),
            })
            .collect())
    }

    async fn projects(&self, account: AccountId, limit: usize) -> Result<Vec<String>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT value ->> 0 AS project FROM log_values \
                 WHERE account_id = $1 AND kind = 2 AND value ->> 0 <> '' \
                 ORDER BY project LIMIT $2",
                &[&account, &(limit as i64)],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
