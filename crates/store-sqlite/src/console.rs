//! The console's tables: sign-in sessions (by token hash), and the actor and
//! project lists: the log's `actors` (whose names and emails the writer
//! keeps as the latest event gives them) and the projects of its
//! `log_values` (migration 0010).

use crate::sql::{sql_error, to_account};
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::{
    AccountId, ActorSummary, Facets, NewSession, Result, Role, SessionGrant, Sessions, StoreError,
    User,
};
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl Sessions for SqliteStore {
    async fn create_session(&self, session: NewSession) -> Result<()> {
        self.with_write_conn(move |conn| {
            conn.execute(
                "INSERT INTO console_sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &session.token_hash[..],
                    session.user_id,
                    session.csrf_token,
                    session.created_at.micros(),
                    session.expires_at.micros()
                ],
            )
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn session_by_token_hash(
        &self,
        token_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Option<SessionGrant>> {
        self.with_conn(move |conn| {
            let row = conn
                .query_row(
                    "SELECT s.csrf_token, s.expires_at, u.id, u.email, u.password_hash, u.role, \
                            a.id, a.name, a.taxonomy \
                     FROM console_sessions s \
                     JOIN users u ON u.id = s.user_id \
                     JOIN accounts a ON a.id = u.account_id \
                     WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled_at IS NULL",
                    params![&token_hash[..], now.micros()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            (
                                r.get::<_, i64>(2)?,
                                r.get::<_, String>(3)?,
                                r.get::<_, String>(4)?,
                                r.get::<_, String>(5)?,
                            ),
                            (r.get(6)?, r.get(7)?, r.get(8)?),
                        ))
                    },
                )
                .optional()
                .map_err(sql_error)?;
            let Some((csrf_token, expires_at, user, account)) = row else {
                return Ok(None);
            };
            let account = to_account(account)?;
            let (id, email, password_hash, role) = user;
            let role = Role::parse(&role)
                .ok_or_else(|| StoreError::internal(format!("unknown role {role:?}")))?;
            Ok(Some(SessionGrant {
                user: User {
                    id,
                    account_id: account.id,
                    email,
                    password_hash,
                    role,
                },
                account,
                csrf_token,
                expires_at: Timestamp::from_micros(expires_at),
            }))
        })
        .await
    }

    async fn delete_session(&self, token_hash: [u8; 32]) -> Result<()> {
        self.with_write_conn(move |conn| {
            conn.execute(
                "DELETE FROM console_sessions WHERE token_hash = ?1",
                [&token_hash[..]],
            )
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        self.with_write_conn(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM console_sessions WHERE expires_at <= ?1",
                    [now.micros()],
                )
                .map_err(sql_error)?;
            Ok(n as u64)
        })
        .await
    }
}

#[async_trait]
impl Facets for SqliteStore {
    async fn actors(&self, account: AccountId, limit: usize) -> Result<Vec<ActorSummary>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT actor_id, name, email FROM actors \
                     WHERE account_id = ?1 ORDER BY actor_id LIMIT ?2",
                )
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![account, limit as i64], |r| {
                    Ok(ActorSummary {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        email: r.get(2)?,
                    })
                })
                .map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error)).collect()
        })
        .await
    }

    async fn projects(&self, account: AccountId, limit: usize) -> Result<Vec<String>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT DISTINCT project FROM (SELECT CASE WHEN json_valid(value) \
                     THEN json_extract(value, '$[0]') END AS project FROM log_values \
                     WHERE account_id = ?1 AND kind = 2) \
                     WHERE project IS NOT NULL AND project <> '' ORDER BY project LIMIT ?2",
                )
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![account, limit as i64], |r| r.get(0))
                .map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error)).collect()
        })
        .await
    }
}
