//! Console users on PostgreSQL (migration 0016): listing, inviting, role
//! changes, disabling under the last-admin rule, sign-in links and
//! passwords. A change that could remove an active admin first locks the
//! account's row (`FOR NO KEY UPDATE`, which appends' foreign-key checks do
//! not wait for), so two servers changing the same account's admins take
//! turns and the second sees the first's result.

use crate::sql::{is_unique_violation, pg_error, to_account};
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::Timestamp;
use auditlog_store::users::parse_session_id;
use auditlog_store::{
    Account, AccountId, ChangeOutcome, NewSignInLink, Result, Role, SessionInfo, StoreError,
    UserChange, UserInfo, Users,
};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

const COLUMNS: &str = "u.id, u.account_id, u.email, u.role, u.created_at, u.disabled_at, \
     u.password_changed_at, l.expires_at";
const FROM: &str = "FROM users u LEFT JOIN sign_in_links l ON l.user_id = u.id";

fn info_from_row(r: &Row) -> Result<UserInfo> {
    let at = |i: usize| r.get::<_, Option<i64>>(i).map(Timestamp::from_micros);
    let role: String = r.get(3);
    Ok(UserInfo {
        id: r.get(0),
        account_id: r.get(1),
        email: r.get(2),
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::internal(format!("unknown role {role:?}")))?,
        created_at: Timestamp::from_micros(r.get(4)),
        disabled_at: at(5),
        password_changed_at: at(6),
        sign_in_link_expires_at: at(7),
    })
}

async fn user<C: GenericClient + Sync>(
    client: &C,
    account: Option<AccountId>,
    user_id: i64,
) -> Result<Option<UserInfo>> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS} {FROM} WHERE u.id = $1 AND ($2::BIGINT IS NULL OR u.account_id = $2)"
            ),
            &[&user_id, &account],
        )
        .await
        .map_err(pg_error)?;
    row.as_ref().map(info_from_row).transpose()
}

fn found(info: Option<UserInfo>, user_id: i64) -> Result<UserInfo> {
    info.ok_or_else(|| StoreError::internal(format!("user {user_id} vanished in its transaction")))
}

async fn insert_link<C: GenericClient + Sync>(
    client: &C,
    user_id: i64,
    link: &NewSignInLink,
) -> Result<()> {
    client
        .execute("DELETE FROM sign_in_links WHERE user_id = $1", &[&user_id])
        .await
        .map_err(pg_error)?;
    client
        .execute(
            "INSERT INTO sign_in_links (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            &[
                &&link.token_hash[..],
                &user_id,
                &link.created_at.micros(),
                &link.expires_at.micros(),
            ],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// The link's account and user, if the link is live and its user enabled.
async fn link_user<C: GenericClient + Sync>(
    client: &C,
    token_hash: [u8; 32],
    now: Timestamp,
    lock: bool,
) -> Result<Option<(Account, UserInfo)>> {
    let row = client
        .query_opt(
            &format!(
                "SELECT l.user_id FROM sign_in_links l JOIN users u ON u.id = l.user_id \
                 WHERE l.token_hash = $1 AND l.expires_at > $2 AND u.disabled_at IS NULL{}",
                if lock { " FOR UPDATE OF l" } else { "" }
            ),
            &[&&token_hash[..], &now.micros()],
        )
        .await
        .map_err(pg_error)?;
    let Some(row) = row else { return Ok(None) };
    let user_id: i64 = row.get(0);
    let info = found(user(client, None, user_id).await?, user_id)?;
    let account = client
        .query_one(
            "SELECT id, name, taxonomy FROM accounts WHERE id = $1",
            &[&info.account_id],
        )
        .await
        .map_err(pg_error)?;
    Ok(Some((to_account(&account)?, info)))
}

pub(crate) async fn end_sessions<C: GenericClient + Sync>(client: &C, user_id: i64) -> Result<()> {
    for table in ["console_sessions", "sign_in_links"] {
        client
            .execute(
                &format!("DELETE FROM {table} WHERE user_id = $1"),
                &[&user_id],
            )
            .await
            .map_err(pg_error)?;
    }
    Ok(())
}

#[async_trait]
impl Users for PgStore {
    async fn list_users(&self, account: AccountId) -> Result<Vec<UserInfo>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} {FROM} WHERE u.account_id = $1 ORDER BY u.id"),
                &[&account],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(info_from_row).collect()
    }

    async fn user_info(&self, account: AccountId, user_id: i64) -> Result<Option<UserInfo>> {
        let client = self.client().await?;
        user(&client, Some(account), user_id).await
    }

    async fn invite_user(
        &self,
        account: AccountId,
        email: &str,
        role: Role,
        link: NewSignInLink,
    ) -> Result<UserInfo> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // An empty hash verifies no password: the user signs in only once
        // the link has set one.
        let id: i64 = match tx
            .query_one(
                "INSERT INTO users (account_id, email, password_hash, role, created_at) \
                 VALUES ($1, $2, '', $3, $4) RETURNING id",
                &[&account, &email, &role.as_str(), &link.created_at.micros()],
            )
            .await
        {
            Ok(row) => row.get(0),
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!("user {email:?}")))
            }
            Err(e) => return Err(pg_error(e)),
        };
        insert_link(&tx, id, &link).await?;
        let info = found(user(&tx, Some(account), id).await?, id)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(info)
    }

    async fn change_user(
        &self,
        account: AccountId,
        user_id: i64,
        change: UserChange,
    ) -> Result<ChangeOutcome> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // Every admin change of the account takes this lock first: the
        // count below cannot change under it, on this server or another.
        tx.execute(
            "SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE",
            &[&account],
        )
        .await
        .map_err(pg_error)?;
        let Some(before) = user(&tx, Some(account), user_id).await? else {
            return Ok(ChangeOutcome::NotFound);
        };
        let stays_active_admin = match change {
            UserChange::Role(role) => role == Role::Admin && before.disabled_at.is_none(),
            UserChange::Disable(_) => false,
            UserChange::Enable => before.role == Role::Admin,
        };
        if before.is_active_admin() && !stays_active_admin {
            let others: i64 = tx
                .query_one(
                    "SELECT count(*) FROM users WHERE account_id = $1 AND id <> $2 \
                     AND role = 'admin' AND disabled_at IS NULL",
                    &[&account, &user_id],
                )
                .await
                .map_err(pg_error)?
                .get(0);
            if others == 0 {
                return Ok(ChangeOutcome::LastAdmin);
            }
        }
        match change {
            UserChange::Role(role) => {
                tx.execute(
                    "UPDATE users SET role = $1 WHERE id = $2",
                    &[&role.as_str(), &user_id],
                )
                .await
                .map_err(pg_error)?;
            }
            UserChange::Disable(at) => {
                tx.execute(
                    "UPDATE users SET disabled_at = coalesce(disabled_at, $1) WHERE id = $2",
                    &[&at.micros(), &user_id],
                )
                .await
                .map_err(pg_error)?;
                end_sessions(&tx, user_id).await?;
            }
            UserChange::Enable => {
                tx.execute(
                    "UPDATE users SET disabled_at = NULL WHERE id = $1",
                    &[&user_id],
                )
                .await
                .map_err(pg_error)?;
            }
        }
        let after = found(user(&tx, Some(account), user_id).await?, user_id)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(ChangeOutcome::Changed {
            before: Box::new(before),
            after: Box::new(after),
        })
    }

    async fn set_sign_in_link(
        &self,
        account: AccountId,
        user_id: i64,
        link: NewSignInLink,
    ) -> Result<Option<(UserInfo, UserInfo)>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let Some(before) = user(&tx, Some(account), user_id).await? else {
            return Ok(None);
        };
        insert_link(&tx, user_id, &link).await?;
        let after = found(user(&tx, Some(account), user_id).await?, user_id)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(Some((before, after)))
    }

    async fn sign_in_link(
        &self,
        token_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Option<(Account, UserInfo)>> {
        let client = self.client().await?;
        link_user(&client, token_hash, now, false).await
    }

    async fn redeem_sign_in_link(
        &self,
        token_hash: [u8; 32],
        password_hash: &str,
        now: Timestamp,
    ) -> Result<Option<(Account, UserInfo, UserInfo)>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // Locking the link's row makes a second use wait, then find it gone.
        let Some((account, before)) = link_user(&tx, token_hash, now, true).await? else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3",
            &[&password_hash, &now.micros(), &before.id],
        )
        .await
        .map_err(pg_error)?;
        end_sessions(&tx, before.id).await?;
        let after = found(user(&tx, None, before.id).await?, before.id)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(Some((account, before, after)))
    }

    async fn change_password(
        &self,
        user_id: i64,
        password_hash: &str,
        now: Timestamp,
        keep: [u8; 32],
    ) -> Result<Option<(UserInfo, UserInfo)>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let Some(before) = user(&tx, None, user_id).await? else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3",
            &[&password_hash, &now.micros(), &user_id],
        )
        .await
        .map_err(pg_error)?;
        tx.execute(
            "DELETE FROM console_sessions WHERE user_id = $1 AND token_hash <> $2",
            &[&user_id, &&keep[..]],
        )
        .await
        .map_err(pg_error)?;
        let after = found(user(&tx, None, user_id).await?, user_id)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(Some((before, after)))
    }

    async fn user_sessions(&self, user_id: i64, now: Timestamp) -> Result<Vec<SessionInfo>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT encode(substring(token_hash from 1 for 8), 'hex'), created_at, expires_at \
                 FROM console_sessions WHERE user_id = $1 AND expires_at > $2 \
                 ORDER BY created_at DESC",
                &[&user_id, &now.micros()],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| SessionInfo {
                id: r.get(0),
                created_at: Timestamp::from_micros(r.get(1)),
                expires_at: Timestamp::from_micros(r.get(2)),
            })
            .collect())
    }

    async fn end_user_session(&self, user_id: i64, session_id: &str) -> Result<bool> {
        let Some(prefix) = parse_session_id(session_id) else {
            return Ok(false);
        };
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM console_sessions WHERE user_id = $1 \
                 AND substring(token_hash from 1 for 8) = $2",
                &[&user_id, &prefix],
            )
            .await
            .map_err(pg_error)?;
        Ok(n > 0)
    }

    async fn login_hash_key(&self, account: AccountId, candidate: [u8; 32]) -> Result<[u8; 32]> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO login_hash_keys (account_id, key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&account, &&candidate[..]],
            )
            .await
            .map_err(pg_error)?;
        let key: Vec<u8> = client
            .query_one(
                "SELECT key FROM login_hash_keys WHERE account_id = $1",
                &[&account],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        key.try_into()
            .map_err(|_| StoreError::internal("a login hash key is not 32 bytes"))
    }
}
