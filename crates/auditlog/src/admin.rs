//! Creating what the server serves: finding an account by name, API keys
//! and console users. Used by the `account`, `key` and `user` commands and
//! by the demo data.

use crate::error::CliResult;
use anyhow::{anyhow, bail, Context};
use auditlog_core::leaf_v2::Source;
use auditlog_core::{Email, Timestamp};
use auditlog_server::exports::audit::AuditActor;
use auditlog_server::key_cache::KeyCache;
use auditlog_server::{keys, tokens, users};
use auditlog_store::{Account, Role, Scope, Store, UserChange};

pub async fn find_account(store: &dyn Store, name: &str) -> CliResult<Account> {
    store
        .account_by_name(name)
        .await
        .with_context(|| format!("cannot look up account {name:?}"))?
        .ok_or_else(|| {
            anyhow!("no account named {name:?}; create it with `auditlog account create {name}`")
        })
}

/// The operator at the shell, as the actor of what the CLI changes.
pub fn operator() -> AuditActor {
    AuditActor {
        id: format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "operator".into())
        ),
        name: None,
        email: None,
        source: Source::System,
    }
}

/// `--expires`: a whole number and `m`, `h` or `d` (`90d`), from now.
pub fn parse_expiry(text: &str, now: Timestamp) -> CliResult<Timestamp> {
    let unit_micros: i64 = match text.chars().last() {
        Some('m') => 60_000_000,
        Some('h') => 3_600_000_000,
        Some('d') => 86_400_000_000,
        _ => bail!("--expires {text:?}: use a number and m, h or d, such as 90d or 12h"),
    };
    let count: i64 = text[..text.len() - 1]
        .parse()
        .ok()
        .filter(|n| *n > 0 && *n <= 3_650 * 24 * 60)
        .ok_or_else(|| {
            anyhow!(
                "--expires {text:?}: the number must be a whole number from 1 (at most ten years)"
            )
        })?;
    Ok(Timestamp::from_micros(now.micros() + count * unit_micros))
}

/// Creates a named key as the operator and returns its secret, which is
/// shown once and never stored. Not an audit event, unlike a key created
/// through the API or revoked here: keys made at the shell bootstrap an
/// account (its first admin key, a deployment's ingest key) before its log
/// has anything in it, and the log starts with the customer's own events.
pub async fn create_named_key(
    store: &dyn Store,
    account: &Account,
    name: &str,
    scopes: &[String],
    expires_at: Option<Timestamp>,
) -> CliResult<String> {
    let request = keys::check(name, scopes, expires_at, Timestamp::now())
        .map_err(|e| anyhow!("--{}: {}", e.field.replace('_', "-"), e.message))?;
    let (key, secret) = keys::new_key(account, request, &operator().id);
    store
        .create_named_api_key(key)
        .await
        .with_context(|| format!("cannot create a key in account {:?}", account.name))?;
    Ok(secret)
}

/// Revokes a key as the operator (audited).
pub async fn revoke_key(store: &dyn Store, account: &Account, public_id: &str) -> CliResult {
    // A fresh cache: the CLI's process serves nothing, servers see the
    // revocation in the store (at once, or within their cache's 4 s).
    keys::revoke(store, &KeyCache::default(), account, &operator(), public_id)
        .await
        .with_context(|| format!("cannot revoke key {public_id:?}"))?
        .ok_or_else(|| {
            anyhow!(
                "no key {public_id:?} in account {:?}; see `auditlog key list --account {}`",
                account.name,
                account.name
            )
        })?;
    Ok(())
}

/// The account's keys as a table (never a secret).
pub async fn list_keys(store: &dyn Store, account: &Account) -> CliResult<String> {
    let now = Timestamp::now();
    let keys = store
        .list_api_keys(account.id)
        .await
        .with_context(|| format!("cannot list the keys of account {:?}", account.name))?;
    let mut out =
        String::from("ID\tNAME\tPREFIX\tSCOPES\tSTATUS\tEXPIRES\tCREATED BY\tCREATED\tLAST USED\n");
    let time = |t: Option<Timestamp>| t.map_or("-".to_string(), Timestamp::to_rfc3339);
    for key in keys {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            key.public_id,
            if key.name.is_empty() { "-" } else { &key.name },
            if key.prefix.is_empty() {
                "-"
            } else {
                &key.prefix
            },
            key.scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(","),
            keys::status(&key, now),
            time(key.expires_at),
            if key.created_by.is_empty() {
                "-"
            } else {
                &key.created_by
            },
            key.created_at.to_rfc3339(),
            time(key.last_used_at),
        ));
    }
    Ok(out)
}

/// Creates a key and returns its secret, which is shown once and never stored.
pub async fn create_key(
    store: &dyn Store,
    account: &Account,
    scopes: &[Scope],
) -> CliResult<String> {
    let key = tokens::new_api_key();
    store
        .create_api_key(account.id, tokens::hash_api_key(&key), scopes)
        .await
        .with_context(|| format!("cannot create a key in account {:?}", account.name))?;
    Ok(key)
}

/// Creates a console user with an address already checked by `Email::parse`.
pub async fn create_user(
    store: &dyn Store,
    account: &Account,
    email: &Email,
    password: &str,
    role: Role,
) -> CliResult {
    if password.chars().count() < 12 {
        bail!("the password must be at least 12 characters");
    }
    let hash = tokens::hash_password(password)
        .map_err(anyhow::Error::msg)
        .context("cannot hash the password")?;
    store
        .create_user(account.id, email.as_ref(), &hash, role)
        .await
        .with_context(|| format!("cannot create user {email} in account {:?}", account.name))?;
    Ok(())
}

/// The account's user with this email, as the CLI names users.
async fn find_user(store: &dyn Store, account: &Account, email: &str) -> CliResult<i64> {
    let email = Email::parse(email).map_err(|e| anyhow!(e.message))?;
    store
        .user_by_email(account.id, email.as_ref())
        .await
        .with_context(|| format!("cannot look up user {email}"))?
        .map(|user| user.id)
        .ok_or_else(|| {
            anyhow!(
                "no user {email} in account {:?}; see `auditlog user list --account {}`",
                account.name,
                account.name
            )
        })
}

/// What a refused user change tells the operator.
fn user_error(error: users::UserError) -> anyhow::Error {
    match error {
        users::UserError::LastAdmin => {
            anyhow!("refused: the account must keep an active admin; make another user admin first")
        }
        other => anyhow::Error::new(other),
    }
}

/// `auditlog user list|disable|enable|set-role|reset-password`, each change
/// audited with the operator as actor (`source` system).
pub async fn user_command(store: &dyn Store, command: crate::cli::UserCommand) -> CliResult {
    use crate::cli::UserCommand;
    match command {
        UserCommand::Create { .. } => bail!("user create is handled with its password"),
        UserCommand::List { account } => {
            let account = find_account(store, &account).await?;
            let list = store
                .list_users(account.id)
                .await
                .with_context(|| format!("cannot list the users of account {:?}", account.name))?;
            let mut out = String::from("ID\tEMAIL\tROLE\tSTATUS\tCREATED\n");
            for user in list {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    user.id,
                    user.email,
                    user.role.as_str(),
                    users::status(&user),
                    user.created_at.to_rfc3339()
                ));
            }
            print!("{out}");
        }
        UserCommand::Disable { account, email } => {
            change_user(
                store,
                &account,
                &email,
                UserChange::Disable(Timestamp::now()),
            )
            .await?;
            println!("disabled {email} in account {account}; every session of theirs has ended");
        }
        UserCommand::Enable { account, email } => {
            change_user(store, &account, &email, UserChange::Enable).await?;
            println!("enabled {email} in account {account}");
        }
        UserCommand::SetRole {
            account,
            email,
            role,
        } => {
            let role = users::parse_role(&role).map_err(|e| anyhow!(e.message))?;
            change_user(store, &account, &email, UserChange::Role(role)).await?;
            println!("{email} in account {account} is now {}", role.as_str());
        }
        UserCommand::ResetPassword { account, email } => {
            let account = find_account(store, &account).await?;
            let id = find_user(store, &account, &email).await?;
            let (_, link) = users::reset_password(store, &account, &operator(), id)
                .await
                .map_err(user_error)?;
            println!("{}", link.path());
            eprintln!(
                "a one-time sign-in link for {email}: open it on the console's address (for \
                 example http://127.0.0.1:8080{}) before {}",
                link.path(),
                link.expires_at.to_rfc3339()
            );
        }
    }
    Ok(())
}

async fn change_user(
    store: &dyn Store,
    account: &str,
    email: &str,
    change: UserChange,
) -> CliResult {
    let account = find_account(store, account).await?;
    let id = find_user(store, &account, email).await?;
    users::change(store, &account, &operator(), id, change)
        .await
        .map_err(user_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_a_count_of_minutes_hours_or_days() {
        let now = Timestamp::from_micros(0);
        assert_eq!(parse_expiry("90m", now).unwrap().micros(), 90 * 60_000_000);
        assert_eq!(
            parse_expiry("12h", now).unwrap().micros(),
            12 * 3_600_000_000
        );
        assert_eq!(
            parse_expiry("30d", now).unwrap().micros(),
            30 * 86_400_000_000
        );
        for bad in ["", "d", "0d", "-1d", "1w", "1.5h", "99999999d"] {
            assert!(parse_expiry(bad, now).is_err(), "{bad}");
        }
    }
}
