//! `auditlog export`: an operator writes an account's events straight to a
//! file, with the same filters, formats and file writer as the background
//! exports. A progress bar is drawn only when standard error is a terminal.
//! The export is audited like any other, with the operator as actor.

use crate::admin::find_account;
use crate::cli::ExportCommand;
use crate::error::CliResult;
use anyhow::{anyhow, bail, Context};
use auditlog_core::leaf_v2::Source;
use auditlog_core::{EventFilter, Interval};
use auditlog_server::exports::audit::{self, AuditActor, ExportAction};
use auditlog_server::exports::file::{self, EventWalk, ExportWriter};
use auditlog_store::{Compression, ExportFormat, Store};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::io::IsTerminal;
use std::sync::Arc;

pub async fn run(store: Arc<dyn Store>, command: ExportCommand) -> CliResult {
    let account = find_account(store.as_ref(), &command.account).await?;
    let format = ExportFormat::parse(&command.format).ok_or_else(|| {
        anyhow!(
            "--format {:?} is not supported; use csv or jsonl",
            command.format
        )
    })?;
    if format == ExportFormat::Bundle {
        bail!(
            "--format bundle: verifiable bundles are made by the server (POST /api/v1/exports with \"format\": \"bundle\"), which holds the signing key and signs the checkpoint; use csv or jsonl here"
        );
    }
    let compression = if command.gzip {
        Compression::Gzip
    } else {
        Compression::None
    };
    let filter = filter(&command, &account.taxonomy)?;
    let seq_bound = store.last_seq(account.id).await?;
    let progress = progress_bar(store.as_ref(), account.id, &filter).await?;

    let output = command.output.clone();
    let temp = output.with_file_name(format!(
        ".{}.part",
        output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "export".into())
    ));
    let writer = ExportWriter::create(format, compression, temp.clone(), output.clone())
        .with_context(|| format!("cannot create {}", temp.display()))?;
    let walk = EventWalk::new(account.id, filter.clone(), seq_bound);
    let bar = progress.clone();
    let summary = file::write_all(store.as_ref(), walk, writer, move |rows| {
        bar.set_position(rows);
        async { true }
    })
    .await
    .map_err(anyhow::Error::msg)
    .with_context(|| format!("cannot write the export {}", output.display()))?
    .ok_or_else(|| anyhow!("the export stopped early"))?;
    progress.finish_and_clear();

    let actor = AuditActor {
        id: format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "operator".into())
        ),
        name: None,
        email: None,
        source: Source::System,
    };
    audit::record_with(
        store.as_ref(),
        &account,
        &actor,
        ExportAction::Export,
        json!({"id": "cli-export", "name": output.display().to_string()}),
        json!({
            "export_id": null,
            "format": format.as_str(),
            "compression": compression.as_str(),
            "filters": filter.to_json(),
            "row_count": summary.row_count,
            "sha256": summary.sha256,
        }),
    )
    .await?;
    if std::io::stderr().is_terminal() {
        eprintln!(
            "wrote {} events ({} bytes, sha256 {}) to {}",
            summary.row_count,
            summary.size_bytes,
            summary.sha256,
            output.display()
        );
    }
    Ok(())
}

/// The command's filters, checked as the API checks its own.
fn filter(command: &ExportCommand, taxonomy: &auditlog_core::Taxonomy) -> CliResult<EventFilter> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let lists = [
        ("event_type", &command.event_types),
        ("action", &command.actions),
        ("user", &command.users),
        ("project", &command.projects),
    ];
    for (name, values) in lists {
        pairs.extend(values.iter().map(|v| (name, v.as_str())));
    }
    let singles = [
        ("app", &command.app),
        ("version", &command.version),
        ("target_id", &command.target_id),
        ("from", &command.from),
        ("to", &command.to),
    ];
    for (name, value) in singles {
        if let Some(v) = value {
            pairs.push((name, v.as_str()));
        }
    }
    let mut filter = EventFilter::default();
    for (name, value) in pairs {
        filter
            .add_param(name, value, taxonomy)
            .map_err(|e| anyhow!("--{}: {}", name.replace('_', "-"), e.message))?;
    }
    filter.check().map_err(|e| anyhow!(e.message))?;
    Ok(filter)
}

/// A bar sized by the number of matching events, drawn only on a terminal.
async fn progress_bar(
    store: &dyn Store,
    account: i64,
    filter: &EventFilter,
) -> CliResult<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let total: u64 = store
        .histogram(account, filter, Interval::Week)
        .await?
        .iter()
        .map(|b| b.count)
        .sum();
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    Ok(bar)
}
