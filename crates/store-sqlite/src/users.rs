//! Console users (migration 0017): listing, inviting, role changes,
//! disabling under the last-admin rule, sign-in links and passwords. Every
//! change runs in an immediate transaction, which holds SQLite's write lock
//! from its first statement: two processes on one store cannot both see
//! "another admin remains" and then each remove one.

use crate::sql::{is_unique_violation, sql_error, to_account};
use crate::SqliteStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::users::parse_session_id;
use auditlog_store::{
    Account, AccountId, ChangeOutcome, NewSignInLink, Result, Role, SessionInfo, StoreError,
    UserChange, UserInfo, Users,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

const COLUMNS: &str = "u.id, u.account_id, u.email, u.role, u.created_at, u.disabled_at, \
     u.password_changed_at, l.expires_at";
const FROM: &str = "FROM users u LEFT JOIN sign_in_links l ON l.user_id = u.id";

fn info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(UserInfo, String)> {
    let at = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(Timestamp::from_micros))
    };
    let role: String = r.get(3)?;
    Ok((
        UserInfo {
            id: r.get(0)?,
            account_id: r.get(1)?,
            email: r.get(2)?,
            role: Role::Member,
            created_at: Timestamp::from_micros(r.get(4)?),
            disabled_at: at(5)?,
            password_changed_at: at(6)?,
            sign_in_link_expires_at: at(7)?,
        },
        role,
    ))
}

fn with_role((mut info, role): (UserInfo, String)) -> Result<UserInfo> {
    info.role =
        Role::parse(&role).ok_or_else(|| StoreError::internal(format!("unknown role {role:?}")))?;
    Ok(info)
}

fn user(conn: &Connection, account: Option<AccountId>, user_id: i64) -> Result<Option<UserInfo>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} {FROM} WHERE u.id = ?1 AND (?2 IS NULL OR u.account_id = ?2)"),
        params![user_id, account],
        info_from_row,
    )
    .optional()
    .map_err(sql_error)?
    .map(with_role)
    .transpose()
}

fn found(info: Option<UserInfo>, user_id: i64) -> Result<UserInfo> {
    info.ok_or_else(|| StoreError::internal(format!("user {user_id} vanished in its transaction")))
}

fn insert_link(conn: &Connection, user_id: i64, link: &NewSignInLink) -> Result<()> {
    conn.execute("DELETE FROM sign_in_links WHERE user_id = ?1", [user_id])
        .map_err(sql_error)?;
    conn.execute(
        "INSERT INTO sign_in_links (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            &link.token_hash[..],
            user_id,
            link.created_at.micros(),
            link.expires_at.micros()
        ],
    )
    .map_err(sql_error)?;
    Ok(())
}

#[async_trait]
impl Users for SqliteStore {
    async fn list_users(&self, account: AccountId) -> Result<Vec<UserInfo>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {COLUMNS} {FROM} WHERE u.account_id = ?1 ORDER BY u.id"
                ))
                .map_err(sql_error)?;
            let rows = stmt
                .query_map([account], info_from_row)
                .map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error).and_then(with_role))
                .collect()
        })
        .await
    }

    async fn user_info(&self, account: AccountId, user_id: i64) -> Result<Option<UserInfo>> {
        self.with_conn(move |conn| user(conn, Some(account), user_id))
            .await
    }

    async fn invite_user(
        &self,
        account: AccountId,
        email: &str,
        role: Role,
        link: NewSignInLink,
    ) -> Result<UserInfo> {
        let email = email.to_string();
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            // An empty hash verifies no password: the user signs in only
            // once the link has set one.
            match tx.execute(
                "INSERT INTO users (account_id, email, password_hash, role, created_at) \
                 VALUES (?1, ?2, '', ?3, ?4)",
                params![account, email, role.as_str(), link.created_at.micros()],
            ) {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::AlreadyExists(format!("user {email:?}")))
                }
                Err(e) => return Err(sql_error(e)),
            }
            let id = tx.last_insert_rowid();
            insert_link(&tx, id, &link)?;
            let info = found(user(&tx, Some(account), id)?, id)?;
            tx.commit().map_err(sql_error)?;
            Ok(info)
        })
        .await
    }

    async fn change_user(
        &self,
        account: AccountId,
        user_id: i64,
        change: UserChange,
    ) -> Result<ChangeOutcome> {
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let Some(before) = user(&tx, Some(account), user_id)? else {
                return Ok(ChangeOutcome::NotFound);
            };
            let stays_active_admin = match change {
                UserChange::Role(role) => role == Role::Admin && before.disabled_at.is_none(),
                UserChange::Disable(_) => false,
                UserChange::Enable => before.role == Role::Admin,
            };
            if before.is_active_admin() && !stays_active_admin {
                let others: i64 = tx
                    .query_row(
                        "SELECT count(*) FROM users WHERE account_id = ?1 AND id <> ?2 \
                         AND role = 'admin' AND disabled_at IS NULL",
                        params![account, user_id],
                        |r| r.get(0),
                    )
                    .map_err(sql_error)?;
                if others == 0 {
                    return Ok(ChangeOutcome::LastAdmin);
                }
            }
            match change {
                UserChange::Role(role) => {
                    tx.execute(
                        "UPDATE users SET role = ?1 WHERE id = ?2",
                        params![role.as_str(), user_id],
                    )
                    .map_err(sql_error)?;
                }
                UserChange::Disable(at) => {
                    tx.execute(
                        "UPDATE users SET disabled_at = coalesce(disabled_at, ?1) WHERE id = ?2",
                        params![at.micros(), user_id],
                    )
                    .map_err(sql_error)?;
                    for table in ["console_sessions", "sign_in_links"] {
                        tx.execute(
                            &format!("DELETE FROM {table} WHERE user_id = ?1"),
                            [user_id],
                        )
                        .map_err(sql_error)?;
                    }
                }
                UserChange::Enable => {
                    tx.execute(
                        "UPDATE users SET disabled_at = NULL WHERE id = ?1",
                        [user_id],
                    )
                    .map_err(sql_error)?;
                }
            }
            let after = found(user(&tx, Some(account), user_id)?, user_id)?;
            tx.commit().map_err(sql_error)?;
            Ok(ChangeOutcome::Changed {
                before: Box::new(before),
                after: Box::new(after),
            })
        })
        .await
    }

    async fn set_sign_in_link(
        &self,
        account: AccountId,
        user_id: i64,
        link: NewSignInLink,
    ) -> Result<Option<(UserInfo, UserInfo)>> {
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let Some(before) = user(&tx, Some(account), user_id)? else {
                return Ok(None);
            };
            insert_link(&tx, user_id, &link)?;
            let after = found(user(&tx, Some(account), user_id)?, user_id)?;
            tx.commit().map_err(sql_error)?;
            Ok(Some((before, after)))
        })
        .await
    }

    async fn sign_in_link(
        &self,
        token_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Option<(Account, UserInfo)>> {
        self.with_conn(move |conn| link_user(conn, token_hash, now))
            .await
    }

    async fn redeem_sign_in_link(
        &self,
        token_hash: [u8; 32],
        password_hash: &str,
        now: Timestamp,
    ) -> Result<Option<(Account, UserInfo, UserInfo)>> {
        let password_hash = password_hash.to_string();
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let Some((account, before)) = link_user(&tx, token_hash, now)? else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE users SET password_hash = ?1, password_changed_at = ?2 WHERE id = ?3",
                params![password_hash, now.micros(), before.id],
            )
            .map_err(sql_error)?;
            for table in ["console_sessions", "sign_in_links"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE user_id = ?1"),
                    [before.id],
                )
                .map_err(sql_error)?;
            }
            let after = found(user(&tx, None, before.id)?, before.id)?;
            tx.commit().map_err(sql_error)?;
            Ok(Some((account, before, after)))
        })
        .await
    }

    async fn change_password(
        &self,
        user_id: i64,
        password_hash: &str,
        now: Timestamp,
        keep: [u8; 32],
    ) -> Result<Option<(UserInfo, UserInfo)>> {
        let password_hash = password_hash.to_string();
        self.with_write_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let Some(before) = user(&tx, None, user_id)? else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE users SET password_hash = ?1, password_changed_at = ?2 WHERE id = ?3",
                params![password_hash, now.micros(), user_id],
            )
            .map_err(sql_error)?;
            tx.execute(
                "DELETE FROM console_sessions WHERE user_id = ?1 AND token_hash <> ?2",
                params![user_id, &keep[..]],
            )
            .map_err(sql_error)?;
            let after = found(user(&tx, None, user_id)?, user_id)?;
            tx.commit().map_err(sql_error)?;
            Ok(Some((before, after)))
        })
        .await
    }

    async fn user_sessions(&self, user_id: i64, now: Timestamp) -> Result<Vec<SessionInfo>> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT lower(hex(substr(token_hash, 1, 8))), created_at, expires_at \
                     FROM console_sessions WHERE user_id = ?1 AND expires_at > ?2 \
                     ORDER BY created_at DESC",
                )
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![user_id, now.micros()], |r| {
                    Ok(SessionInfo {
                        id: r.get(0)?,
                        created_at: Timestamp::from_micros(r.get(1)?),
                        expires_at: Timestamp::from_micros(r.get(2)?),
                    })
                })
                .map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error)).collect()
        })
        .await
    }

    async fn end_user_session(&self, user_id: i64, session_id: &str) -> Result<bool> {
        let Some(prefix) = parse_session_id(session_id) else {
            return Ok(false);
        };
        self.with_write_conn(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM console_sessions WHERE user_id = ?1 AND substr(token_hash, 1, 8) = ?2",
                    params![user_id, prefix],
                )
                .map_err(sql_error)?;
            Ok(n > 0)
        })
        .await
    }

    async fn login_hash_key(&self, account: AccountId, candidate: [u8; 32]) -> Result<[u8; 32]> {
        self.with_write_conn(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO login_hash_keys (account_id, key) VALUES (?1, ?2)",
                params![account, &candidate[..]],
            )
            .map_err(sql_error)?;
            let key: Vec<u8> = conn
                .query_row(
                    "SELECT key FROM login_hash_keys WHERE account_id = ?1",
                    [account],
                    |r| r.get(0),
                )
                .map_err(sql_error)?;
            key.try_into()
                .map_err(|_| StoreError::internal("a login hash key is not 32 bytes"))
        })
        .await
    }
}

/// The link's account and user, if the link is live and its user enabled.
fn link_user(
    conn: &Connection,
    token_hash: [u8; 32],
    now: Timestamp,
) -> Result<Option<(Account, UserInfo)>> {
    let user_id: Option<i64> = conn
        .query_row(
            "SELECT l.user_id FROM sign_in_links l JOIN users u ON u.id = l.user_id \
             WHERE l.token_hash = ?1 AND l.expires_at > ?2 AND u.disabled_at IS NULL",
            params![&token_hash[..], now.micros()],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_error)?;
    let Some(user_id) = user_id else {
        return Ok(None);
    };
    let info = found(user(conn, None, user_id)?, user_id)?;
    let account = conn
        .query_row(
            "SELECT id, name, taxonomy FROM accounts WHERE id = ?1",
            [info.account_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(sql_error)?;
    Ok(Some((to_account(account)?, info)))
}
