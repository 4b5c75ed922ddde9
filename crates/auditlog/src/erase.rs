//! `auditlog erase --account NAME --subject ID` (docs/ERASURE.md): the
//! erasure `POST /api/v1/erasures` starts, run on the store directly to its
//! end (or to `waiting` while legal holds keep events, which a server then
//! finishes when they are released). Its record names the operator
//! (`source.kind` `system`) as the one who asked.

use crate::config::Config;
use crate::error::CliResult;
use anyhow::{anyhow, Context};
use auditlog_core::leaf_v2::Source;
use auditlog_server::api::erasures;
use auditlog_server::erasure::job;
use auditlog_store::{Account, ErasureStatus, Store};

pub async fn run(
    store: &dyn Store,
    config: &Config,
    account: &Account,
    subject: &str,
) -> CliResult {
    if subject.is_empty() || subject.chars().count() > auditlog_core::event::MAX_NAME_CHARS {
        return Err(anyhow!(
            "--subject must be an actor id of 1 to {} characters",
            auditlog_core::event::MAX_NAME_CHARS
        ));
    }
    let settings = config
        .erasure_settings()
        .map_err(anyhow::Error::msg)
        .context("cannot set up erasure")?;
    let pseudonym = settings.key.pseudonym(&account.name, subject);
    let planned = erasures::plan(
        store,
        account,
        pseudonym,
        subject,
        "auditlog erase".into(),
        Source::System.to_json(),
        Some(settings.lease),
    )
    .await
    .context("cannot store the erasure")?;
    let active = store.holds(account.id, false).await?;
    let (holds, unreadable) = auditlog_server::holds::ActiveHolds::new(&active, &account.taxonomy);
    for hold in unreadable {
        eprintln!("warning: {hold}: it keeps every event");
    }
    job::run(store, account, planned.clone(), &holds, &settings)
        .await
        .with_context(|| {
            format!(
                "erasure {} stopped; run `auditlog serve` or this command again to finish it",
                planned.id
            )
        })?;
    let erasure = store
        .erasure(account.id, planned.id)
        .await?
        .ok_or_else(|| anyhow!("erasure {} does not read back", planned.id))?;
    println!(
        "erasure {} of {} in account {}: {}, {} events erased, {} held{}",
        erasure.id,
        erasure.plan.pseudonym,
        account.name,
        erasure.status.as_str(),
        erasure.erased,
        erasure.held,
        if erasure.status == ErasureStatus::Waiting {
            " (a server erases them once their holds are released)"
        } else {
            ""
        }
    );
    Ok(())
}
