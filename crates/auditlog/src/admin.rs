//! Creating what the server serves: finding an account by name, API keys
//! and console users. Used by the `account`, `key` and `user` commands and
//! by the demo data.

use crate::error::CliResult;
use anyhow::{anyhow, bail, Context};
use auditlog_core::Email;
use auditlog_server::tokens;
use auditlog_store::{Account, Role, Scope, Store};

pub async fn find_account(store: &dyn Store, name: &str) -> CliResult<Account> {
    store
        .account_by_name(name)
        .await
        .with_context(|| format!("cannot look up account {name:?}"))?
        .ok_or_else(|| {
            anyhow!("no account named {name:?}; create it with `auditlog account create {name}`")
        })
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
