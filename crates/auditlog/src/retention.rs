//! `auditlog retention` and `auditlog hold`: the retention policy and legal
//! holds, on the store directly. Each change goes through the functions the
//! API and the console use (`auditlog_server::retention::policy`), so the
//! rules and the audit events (`Auditlog Account` / Update, `Auditlog Legal
//! Hold` / Create and Release, with the operator as actor) are the same.

use crate::admin::{find_account, operator};
use crate::cli::{HoldCommand, HoldCreateCommand, RetentionCommand};
use crate::error::CliResult;
use anyhow::{anyhow, Context};
use auditlog_server::error::ApiError;
use auditlog_server::retention::policy::{self, RetentionView};
use auditlog_server::retention::RetentionSettings;
use auditlog_store::{Hold, Store};
use serde_json::{json, Map, Value};

/// The command-line flag that sets an API field, for error messages.
fn flag_of(field: &str) -> String {
    let field = field.strip_prefix("filters.").unwrap_or(field);
    match field {
        "retention_days" => "--days".into(),
        "q" => "--query".into(),
        "event_type" => "--event-type".into(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

/// An answer of the shared functions as the CLI's error: the flag it is
/// about (when it names a field) and the API's message.
fn refused(e: ApiError) -> anyhow::Error {
    let field = e
        .details
        .as_ref()
        .and_then(|d| d.get("field"))
        .and_then(Value::as_str)
        .map(flag_of);
    // An internal failure's message only gives a reference; the operator
    // at the shell is shown the cause.
    let cause = e
        .log
        .as_ref()
        .map(|log| format!(" ({}: {})", log.context, log.reason))
        .unwrap_or_default();
    match field {
        Some(flag) => anyhow!("{flag}: {}{cause}", e.message),
        None => anyhow!("{}{cause}", e.message),
    }
}

pub async fn run_retention(
    store: &dyn Store,
    settings: &RetentionSettings,
    command: RetentionCommand,
) -> CliResult {
    match command {
        RetentionCommand::Set { account, days } => {
            let account = find_account(store, &account).await?;
            let days = parse_days(&days)?;
            policy::set_days(store, settings, &account, &operator(), days)
                .await
                .map_err(refused)?;
            match days {
                Some(days) => println!(
                    "account {}: events are kept {days} days after receipt",
                    account.name
                ),
                None => println!("account {}: events are kept forever", account.name),
            }
            Ok(())
        }
        RetentionCommand::Show { account, format } => {
            let accounts = match account {
                Some(name) => vec![find_account(store, &name).await?],
                None => store.accounts().await.context("cannot list the accounts")?,
            };
            let mut all = Map::new();
            for account in accounts {
                let view = policy::view(store, settings, &account)
                    .await
                    .map_err(refused)
                    .with_context(|| {
                        format!("cannot read the retention of account {:?}", account.name)
                    })?;
                if format == "json" {
                    all.insert(
                        account.name.clone(),
                        serde_json::to_value(&view).context("cannot write the policy as JSON")?,
                    );
                } else {
                    print!("{}", show_text(&account.name, &view));
                }
            }
            if format == "json" {
                println!("{}", Value::Object(all));
            }
            Ok(())
        }
        RetentionCommand::Vacuum => {
            let space = store.compact().await.context("cannot vacuum the store")?;
            let size = |bytes: Option<u64>| bytes.map_or("unknown".to_string(), mib);
            println!(
                "vacuumed: {} before, {} after{}",
                size(space.bytes_before),
                size(space.bytes_after),
                if space.incremental {
                    "; each pruning now gives its space back by itself"
                } else {
                    ""
                }
            );
            Ok(())
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB ({bytes} bytes)", bytes as f64 / 1_048_576.0)
}

/// `--days`: whole days or `none`.
fn parse_days(text: &str) -> CliResult<Option<u32>> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    text.parse::<u32>().map(Some).map_err(|_| {
        anyhow!("--days {text:?}: give whole days (such as 90) or none to keep events forever")
    })
}

/// The policy and the next pruning as lines of text.
fn show_text(account: &str, view: &RetentionView) -> String {
    let next = &view.next;
    let mut out = format!("account {account}\n");
    out.push_str(&match view.retention_days {
        Some(days) => format!(
            "  retention: {days} days after receipt (this server allows {} to {})\n",
            view.min_days, view.max_days
        ),
        None => format!(
            "  retention: none, events are kept forever (this server allows {} to {} days)\n",
            view.min_days, view.max_days
        ),
    });
    if view.retention_days.is_some() {
        match (next["first_seq"].as_u64(), next["last_seq"].as_u64()) {
            (Some(first), Some(last)) => out.push_str(&format!(
                "  next pruning: seqs {first} to {last} (received before {}): removes {} bodies, keeps {} Auditlog records\n",
                next["cutoff"].as_str().unwrap_or("?"),
                next["removes"],
                next["records"],
            )),
            _ => out.push_str("  next pruning: nothing to remove now\n"),
        }
        for held in next["held"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "    kept by legal hold {} ({}): {} events\n",
                held["id"],
                held["name"].as_str().unwrap_or("?"),
                held["count"]
            ));
        }
        for reason in next["held_back_by"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  held back: {}\n",
                reason.as_str().unwrap_or_default()
            ));
        }
    }
    for pruning in &view.prunings {
        out.push_str(&format!(
            "  pruning {} {}: seqs {} to {}, removed {} of {} (next seq {}), record seq {}\n",
            pruning["id"],
            pruning["status"].as_str().unwrap_or("?"),
            pruning["first_seq"],
            pruning["last_seq"],
            pruning["removed"],
            pruning["planned"],
            pruning["next_seq"],
            pruning["record_seq"],
        ));
    }
    out
}

pub async fn run_hold(store: &dyn Store, command: HoldCommand) -> CliResult {
    match command {
        HoldCommand::Create(command) => {
            let account = find_account(store, &command.account).await?;
            let body = hold_body(&command);
            let hold = policy::create_hold(store, &account, &operator(), &body)
                .await
                .map_err(refused)?;
            println!(
                "created legal hold {} {:?} in account {}",
                hold.id, hold.name, account.name
            );
            Ok(())
        }
        HoldCommand::List { account, all } => {
            let account = find_account(store, &account).await?;
            let holds = store
                .holds(account.id, all)
                .await
                .with_context(|| format!("cannot list the holds of account {:?}", account.name))?;
            print!("{}", hold_table(&holds));
            Ok(())
        }
        HoldCommand::Release { account, id } => {
            let account = find_account(store, &account).await?;
            let hold = policy::release_hold(store, &account, &operator(), id)
                .await
                .map_err(refused)?;
            println!(
                "released legal hold {} {:?} in account {}",
                hold.id, hold.name, account.name
            );
            Ok(())
        }
    }
}

/// The body of `POST /api/v1/holds` that the flags make.
fn hold_body(command: &HoldCreateCommand) -> Value {
    let mut filters = Map::new();
    for (name, values) in [
        ("event_type", &command.event_types),
        ("action", &command.actions),
        ("user", &command.users),
        ("project", &command.projects),
    ] {
        if !values.is_empty() {
            filters.insert(name.into(), json!(values));
        }
    }
    for (name, value) in [
        ("app", &command.app),
        ("version", &command.version),
        ("target_id", &command.target_id),
        ("from", &command.from),
        ("to", &command.to),
    ] {
        if let Some(value) = value {
            filters.insert(name.into(), json!(value));
        }
    }
    let mut body = json!({"name": command.name, "reason": command.reason, "filters": filters});
    if let Some(q) = &command.query {
        body["q"] = json!(q);
    }
    if let Some(tz) = &command.tz {
        body["tz"] = json!(tz);
    }
    body
}

/// The holds as a table, newest first.
fn hold_table(holds: &[Hold]) -> String {
    let mut out =
        String::from("ID\tNAME\tSTATUS\tFILTERS\tQUERY\tREASON\tCREATED BY\tCREATED\tRELEASED\n");
    for hold in holds {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            hold.id,
            hold.name,
            if hold.is_active() {
                "active"
            } else {
                "released"
            },
            hold.filters,
            hold.q.as_deref().unwrap_or("-"),
            hold.reason,
            hold.created_by,
            hold.created_at.to_rfc3339(),
            match (&hold.released_by, hold.released_at) {
                (Some(by), Some(at)) => format!("{} by {by}", at.to_rfc3339()),
                _ => "-".into(),
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_whole_numbers_or_none() {
        assert_eq!(parse_days("30").unwrap(), Some(30));
        assert_eq!(parse_days("none").unwrap(), None);
        assert_eq!(parse_days("NONE").unwrap(), None);
        for bad in ["", "-1", "1.5", "30d", "forever"] {
            assert!(parse_days(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn api_fields_are_named_by_their_flags() {
        assert_eq!(flag_of("retention_days"), "--days");
        assert_eq!(flag_of("q"), "--query");
        assert_eq!(flag_of("filters.target_id"), "--target-id");
        assert_eq!(flag_of("filters.user"), "--user");
        assert_eq!(flag_of("reason"), "--reason");
    }
}
